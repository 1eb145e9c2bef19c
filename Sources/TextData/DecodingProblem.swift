import Foundation

/// A `DecodingError` as one short line: what is wrong and where (a JSON path such as
/// `model.layers[1].units`), without Swift's coding-path dump.
public enum DecodingProblem {
    public static func describe(_ error: Error) -> String {
        func path(_ c: DecodingError.Context, _ last: CodingKey? = nil) -> String {
            var out = ""
            for k in c.codingPath + (last.map { [$0] } ?? []) {
                if let i = k.intValue, k.stringValue.hasPrefix("Index") { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + k.stringValue }
            }
            return out.isEmpty ? "the top level" : "'\(out)'"
        }
        guard let e = error as? DecodingError else { return "\(error)" }
        switch e {
        case .keyNotFound(let key, let c): return "no key \(path(c, key))"
        case .typeMismatch(let type, let c): return "\(path(c)) is not \(name(type))"
        case .valueNotFound(let type, let c): return "\(path(c)) is null, expected \(name(type))"
        case .dataCorrupted(let c):
            let under = (c.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            let what = under ?? c.debugDescription
            return c.codingPath.isEmpty ? what : "\(path(c)): \(what)"
        @unknown default: return "\(error)"
        }
    }

    private static func name(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        default:
            let n = "\(type)"
            return n.hasPrefix("Array") ? "a list" : n.hasPrefix("Dictionary") ? "an object" : "a \(n)"
        }
    }
}
