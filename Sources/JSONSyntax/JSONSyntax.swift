/// A strict check of JSON text against RFC 8259's grammar, byte by byte.
///
/// Foundation's parser on Linux accepts more than JSON: a trailing comma (`[1,]`, `{"a":1,}`), a
/// number such as `1.`, an escape such as `\x41`. Python's `json` (what `model_from_json` and most
/// JSON Lines writers use) refuses them, and so does rnn-dist, before decoding: a file that only
/// one reader accepts is a file two programs read differently. (Python's `json` accepts `NaN` and
/// `Infinity`, which are not JSON; they are refused here, as Foundation refuses them.) UTF-8 is not
/// checked here (the callers check strings' UTF-8 where they use them).
public enum JSONSyntax {
    /// Deepest nesting of arrays and objects accepted (Python's default recursion limit is about 1,000).
    public static let maxDepth = 512

    /// How messages call a refused text: `not valid JSON (…)`, or, where arrays and objects nest
    /// deeper than `maxDepth` (RFC 8259 §9 lets a parser limit the nesting; the text is not read
    /// further, so whether the rest is valid is not known), `arrays and objects nested deeper than
    /// the 512 levels rnn-dist reads (…)`.
    public static func refusal(_ problem: String) -> String {
        isTooDeep(problem) ? "arrays and objects nested deeper than the \(maxDepth) levels rnn-dist reads (\(problem))"
                           : "not valid JSON (\(problem))"
    }
    /// Whether `problem` (from `check` or `problem`) is the nesting limit, not a fault of the JSON.
    public static func isTooDeep(_ problem: String) -> Bool { problem.hasPrefix(depthProblem) }
    static let depthProblem = "nested deeper than \(maxDepth)"

    /// nil when `text` is one JSON value with optional white space around it (and an optional UTF-8
    /// byte-order mark before it, which RFC 8259 §8.1 lets a parser ignore, as Foundation's decoder
    /// and Python's `json.loads` of bytes do); else what is wrong and where (`a trailing comma at
    /// byte 27`), bytes counted from 1.
    public static func problem(_ text: UnsafeBufferPointer<UInt8>) -> String? {
        check(text).problem
    }

    /// `problem` of a string's UTF-8.
    public static func problem(_ text: String) -> String? {
        var s = text
        return s.withUTF8 { problem($0) }
    }

    /// One member (`"key": value`) of an object in a JSON text, by its place in the text.
    public struct Member: Equatable, Sendable {
        /// The object it is in: objects are numbered from 0 in the order their '{' comes.
        public var object: Int
        /// That object's depth: 1 for the whole text's value, 2 for a value in it, and so on.
        public var depth: Int
        /// The key's string, quotes included (`string(_:in:)` reads it).
        public var key: Range<Int>
        /// The value's JSON text (without the white space around it).
        public var value: Range<Int>
    }

    /// `problem`, and when there is none, the members of the objects at depth ≤ `memberDepth`, in
    /// the order of their keys in the text (duplicates included: a decoder keeps one of them). The
    /// text is read once.
    public static func check(_ text: UnsafeBufferPointer<UInt8>, memberDepth: Int = 0) -> (problem: String?, members: [Member]) {
        var p = Parser(text: text, memberDepth: memberDepth)
        if text.count >= 3 && text[0] == 0xEF && text[1] == 0xBB && text[2] == 0xBF { p.i = 3 }
        do {
            p.skipSpace()
            try p.value(depth: 0)
            p.skipSpace()
            if p.i < text.count { throw Failure(what: "text after the JSON value", at: p.i) }
            return (nil, p.members)
        } catch let f as Failure {
            return ("\(f.what) at byte \(f.at + 1)", [])
        } catch {
            return ("\(error)", [])
        }
    }

    /// The string whose JSON text (quotes included, valid JSON) is at `range` in `text`, its escapes
    /// decoded; a `\u` escape of a lone surrogate and bytes that are not UTF-8 read as U+FFFD.
    public static func string(_ range: Range<Int>, in text: UnsafeBufferPointer<UInt8>) -> String {
        let body = UnsafeBufferPointer(rebasing: text[range.lowerBound + 1 ..< range.upperBound - 1])
        guard body.contains(UInt8(ascii: "\\")) else { return String(decoding: body, as: UTF8.self) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(body.count)
        var i = 0
        func hex4(_ at: Int) -> UInt32 {
            body[at ..< at + 4].reduce(0) { v, h in v << 4 | UInt32(h <= 0x39 ? h - 0x30 : (h | 0x20) - 0x57) }
        }
        while i < body.count {
            let c = body[i]
            guard c == UInt8(ascii: "\\") else { bytes.append(c); i += 1; continue }
            let e = body[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(i)
                i += 4
                if scalar >= 0xD800 && scalar < 0xDC00, i + 6 <= body.count, body[i] == UInt8(ascii: "\\"),
                   body[i + 1] == UInt8(ascii: "u"), case let low = hex4(i + 2), low >= 0xDC00 && low < 0xE000 {
                    scalar = 0x10000 + (scalar - 0xD800) << 10 + (low - 0xDC00)
                    i += 6
                }
                UTF8.encode(Unicode.Scalar(scalar) ?? "\u{FFFD}") { bytes.append($0) }
            default: bytes.append(e)   // " \ /
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    struct Failure: Error {
        var what: String
        var at: Int
    }

    struct Parser {
        let text: UnsafeBufferPointer<UInt8>
        var i = 0
        /// Members are recorded for objects at this depth or less.
        let memberDepth: Int
        var members: [Member] = []
        var objects = 0

        init(text: UnsafeBufferPointer<UInt8>, memberDepth: Int = 0) {
            self.text = text
            self.memberDepth = memberDepth
        }

        var current: UInt8? { i < text.count ? text[i] : nil }

        mutating func skipSpace() {
            while let c = current, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { i += 1 }
        }

        func unexpected(_ expected: String) -> Failure {
            guard let c = current else { return Failure(what: "the text ends where \(expected) should be", at: i) }
            let shown = c >= 0x21 && c < 0x7F ? "'\(Character(Unicode.Scalar(c)))'" : "byte 0x\(String(c, radix: 16))"
            return Failure(what: "\(shown) where \(expected) should be", at: i)
        }

        mutating func expect(_ byte: UInt8, _ what: String) throws {
            guard current == byte else { throw unexpected(what) }
            i += 1
        }

        mutating func value(depth: Int) throws {
            guard let c = current else { throw unexpected("a value") }
            switch c {
            case UInt8(ascii: "{"): try container(depth: depth + 1, close: UInt8(ascii: "}"))
            case UInt8(ascii: "["): try container(depth: depth + 1, close: UInt8(ascii: "]"))
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"): try number()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            default: throw unexpected("a value")
            }
        }

        mutating func literal(_ word: StaticString) throws {
            let start = i
            for b in UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount) {
                guard current == b else { throw Failure(what: "not a JSON value (\(word)?)", at: start) }
                i += 1
            }
        }

        /// An object (`close` '}': members `"key": value`) or an array (`close` ']': values), from its
        /// opening bracket: empty, or elements separated by commas, none after the last.
        mutating func container(depth: Int, close: UInt8) throws {
            guard depth <= JSONSyntax.maxDepth else { throw Failure(what: JSONSyntax.depthProblem, at: i) }
            let isObject = close == UInt8(ascii: "}")
            let object = isObject ? objects : -1
            if isObject { objects += 1 }
            i += 1
            skipSpace()
            if current == close { i += 1; return }
            var comma = 0
            while true {
                skipSpace()
                if current == close { throw Failure(what: "a trailing comma", at: comma) }
                var member: Int?
                if isObject {
                    guard current == UInt8(ascii: "\"") else { throw unexpected("a key (a string)") }
                    let key = i
                    try string()
                    if depth <= memberDepth {
                        member = members.count
                        members.append(Member(object: object, depth: depth, key: key ..< i, value: i ..< i))
                    }
                    skipSpace()
                    try expect(UInt8(ascii: ":"), "':'")
                    skipSpace()
                }
                let start = i
                try value(depth: depth)
                if let m = member { members[m].value = start ..< i }
                skipSpace()
                if current == UInt8(ascii: ",") { comma = i; i += 1; continue }
                try expect(close, "',' or '\(Character(Unicode.Scalar(close)))'")
                return
            }
        }

        /// Moves `i` past the bytes that need no look (not '"', '\\' or a control character), eight
        /// at a time where a whole word has none: a string's body is most of a JSON Lines file.
        mutating func skipPlainBytes() {
            guard let base = text.baseAddress else { return }
            let n = text.count
            let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
            while i + 8 <= n {
                let w = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
                let control = (w &- ones &* 0x20) & ~w & highs   // some byte < 0x20 (exact for "some")
                let q = w ^ (ones &* 0x22), b = w ^ (ones &* 0x5C)
                let quote = (q &- ones) & ~q & highs, backslash = (b &- ones) & ~b & highs
                if control | quote | backslash != 0 { break }
                i += 8
            }
            while i < n {
                let c = base[i]
                if c == 0x22 || c == 0x5C || c < 0x20 { return }
                i += 1
            }
        }

        mutating func string() throws {
            let start = i
            i += 1
            while true {
                skipPlainBytes()
                guard let c = current else { throw Failure(what: "a string that does not end", at: start) }
                switch c {
                case UInt8(ascii: "\""):
                    i += 1
                    return
                case UInt8(ascii: "\\"):
                    i += 1
                    guard let e = current else { throw Failure(what: "a string that does not end", at: start) }
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                         UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        i += 1
                    case UInt8(ascii: "u"):
                        i += 1
                        for _ in 0 ..< 4 {
                            guard let h = current, (h >= 0x30 && h <= 0x39) || ((h | 0x20) >= 0x61 && (h | 0x20) <= 0x66) else {
                                throw Failure(what: "an escape \\u without four hex digits in a string", at: i)
                            }
                            i += 1
                        }
                    default:
                        throw Failure(what: "an invalid escape in a string (only \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)", at: i - 1)
                    }
                case 0x00 ..< 0x20:
                    throw Failure(what: "a control character (0x\(String(c, radix: 16))) in a string: JSON needs it escaped", at: i)
                default:
                    i += 1
                }
            }
        }

        mutating func digits() -> Int {
            let start = i
            while let c = current, c >= 0x30 && c <= 0x39 { i += 1 }
            return i - start
        }

        mutating func number() throws {
            let start = i
            if current == UInt8(ascii: "-") { i += 1 }
            guard let first = current, first >= 0x30 && first <= 0x39 else { throw Failure(what: "a number without digits", at: start) }
            if first == UInt8(ascii: "0") {
                i += 1
                if let c = current, c >= 0x30 && c <= 0x39 { throw Failure(what: "a number with a leading zero", at: start) }
            } else {
                _ = digits()
            }
            if current == UInt8(ascii: ".") {
                i += 1
                guard digits() > 0 else { throw Failure(what: "a number without digits after its '.'", at: start) }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                i += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { throw Failure(what: "a number without digits in its exponent", at: start) }
            }
        }
    }
}
