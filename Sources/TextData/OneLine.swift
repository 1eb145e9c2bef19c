/// What keeps a printed name or text on one line of output.
public enum OneLine {
    /// Whether a character would break a line or drive the terminal: a control character (C0, DEL,
    /// C1: line feeds, tabs, escape sequences' ESC and CSI), a line or a paragraph separator.
    public static func breaks(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator: return true
        default: return false
        }
    }

    /// `text` with every such character as a space.
    public static func flattened(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { breaks($0) ? " " : $0 }))
    }
}
