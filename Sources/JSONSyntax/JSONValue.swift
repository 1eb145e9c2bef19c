// A parsed JSON value (Keras configs, serve's request bodies), read from text JSONSyntax accepted.

/// A JSON value with its exact type (JSONSerialization cannot tell `false` from `0` on Linux).
public enum JSONValue: Equatable, CustomStringConvertible, ExpressibleByStringLiteral, ExpressibleByBooleanLiteral {
    case null, bool(Bool), int(Int), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }

    /// The value of `json`, a text `JSONSyntax.problem` accepts (anything else is a precondition
    /// failure). A number written with a fraction or an exponent (`3.0`, `1e2`) is a `.number` even
    /// when integral, as Python's `json` reads a float (Keras refuses `"units": 3.0`; JSONDecoder gave
    /// an Int, so such a `--model-config` trained and wrote weights Keras cannot load); one beyond
    /// Double's range is ±∞, as in Python. A `\u` escape of a lone surrogate reads as U+FFFD
    /// (Foundation's parsers refused the whole text). Of a repeated key the last value is kept.
    public static func parse(checked json: UnsafeBufferPointer<UInt8>) -> JSONValue {
        var i = 0
        if json.count >= 3 && json[0] == 0xEF && json[1] == 0xBB && json[2] == 0xBF { i = 3 }   // as `JSONSyntax`
        return value(json, &i)
    }

    private static func skipSpace(_ t: UnsafeBufferPointer<UInt8>, _ i: inout Int) {
        while i < t.count && (t[i] == 0x20 || t[i] == 0x09 || t[i] == 0x0A || t[i] == 0x0D) { i += 1 }
    }

    private static func value(_ t: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> JSONValue {
        skipSpace(t, &i)
        switch t[i] {
        case UInt8(ascii: "{"):
            i += 1
            var members: [String: JSONValue] = [:]
            skipSpace(t, &i)
            while t[i] != UInt8(ascii: "}") {
                skipSpace(t, &i)
                let key = string(t, &i)
                skipSpace(t, &i)
                i += 1                                              // ':'
                members[key] = value(t, &i)
                skipSpace(t, &i)
                if t[i] == UInt8(ascii: ",") { i += 1 }
            }
            i += 1
            return .object(members)
        case UInt8(ascii: "["):
            i += 1
            var elements: [JSONValue] = []
            skipSpace(t, &i)
            while t[i] != UInt8(ascii: "]") {
                elements.append(value(t, &i))
                skipSpace(t, &i)
                if t[i] == UInt8(ascii: ",") { i += 1 }
            }
            i += 1
            return .array(elements)
        case UInt8(ascii: "\""):
            return .string(string(t, &i))
        case UInt8(ascii: "t"): i += 4; return .bool(true)
        case UInt8(ascii: "f"): i += 5; return .bool(false)
        case UInt8(ascii: "n"): i += 4; return .null
        default:
            let start = i
            var integral = true
            while i < t.count, let c = Optional(t[i]), c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".") ||
                    c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || (c >= 0x30 && c <= 0x39) {
                if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { integral = false }
                i += 1
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: t[start ..< i]), as: UTF8.self)
            if integral, let n = Int(text) { return .int(n) }
            return .number(Double(text) ?? .nan)
        }
    }

    /// The string whose opening quote is at `i`; `i` moves past its closing quote.
    private static func string(_ t: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> String {
        let start = i
        i += 1
        while t[i] != UInt8(ascii: "\"") { i += t[i] == UInt8(ascii: "\\") ? 2 : 1 }
        i += 1
        return JSONSyntax.string(start ..< i, in: t)
    }

    /// The first key that appears twice in one object (e.g. `"units"` in `{"units": 6, "units": 7}`)
    /// among `members` (`JSONSyntax.check`'s, of `json`), or nil. Keys are compared decoded
    /// (`"\u0075nits"` is `units`).
    public static func firstRepeatedKey(_ members: [JSONSyntax.Member], in json: UnsafeBufferPointer<UInt8>) -> String? {
        var seen = Set<KeyIn>()
        for m in members {
            let key = JSONSyntax.string(m.key, in: json)
            guard seen.insert(KeyIn(object: m.object, key: key)).inserted else { return key }
        }
        return nil
    }

    private struct KeyIn: Hashable {
        var object: Int
        var key: String
    }

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var int: Int? { if case .int(let i) = self { return i } else { return nil } }
    public var double: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .number(let d): return d
        default: return nil
        }
    }
    public var array: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var object: [String: JSONValue]? { if case .object(let o) = self { return o } else { return nil } }

    public var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return "\(i)"
        case .number(let d): return "\(d)"
        case .string(let s): return "'\(s)'"
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .object: return "{…}"
        }
    }
}
