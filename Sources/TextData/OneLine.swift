import Foundation
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

/// What a class name must be, as `prepare` makes labels: not empty, at most 1,024 bytes, on one line
/// (`OneLine.breaks`). Readers of datasets and weights apply it too: a name with a line feed or an
/// escape sequence, from a damaged or edited file, printed extra lines or drove the terminal.
public enum ClassName {
    /// Why `name` cannot be a class name, or nil.
    public static func problem(_ name: String) -> String? {
        if name.isEmpty { return "an empty class name" }
        if name.utf8.count > PrepareLimits.maxLabelBytes { return "a class name of \(name.utf8.count) bytes, over \(PrepareLimits.maxLabelBytes)" }
        if let c = SourceContext.controlCharacter(name.utf8) { return "a class name holding the control character \(c)" }
        return nil
    }
}
