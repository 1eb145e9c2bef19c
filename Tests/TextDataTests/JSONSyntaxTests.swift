// The strict JSON check that JSON Lines and --model-config go through before decoding.

import JSONSyntax
import XCTest

final class JSONSyntaxTests: XCTestCase {
    func testJSONIsAcceptedAndWhatPythonRefusesIsNot() {
        for text in ["{}", "[]", " \t\r\n{} ", "0", "-0", "-0.5e+10", "1E-2", "true", "null", "\"\"",
                     #"{"a": [1, -0, 0.5, 1e5, true, false, null, "\u00e9\n\"\\\/\b\f\r\t"], "b": {"c": {}}}"#,
                     "\"é ü 😀\"", "\u{FEFF}{\"a\": 1}", String(repeating: "[", count: 512) + String(repeating: "]", count: 512)] {
            XCTAssertNil(JSONSyntax.problem(text), text)
        }
        let refused: [(String, String)] = [
            ("[1,]", "a trailing comma at byte 3"),
            (#"{"a": 1,}"#, "a trailing comma at byte 8"),
            (#"{"a": 1 ,  }"#, "a trailing comma at byte 9"),
            ("1.", "a number without digits after its '.' at byte 1"),
            (".5", "'.' where a value should be at byte 1"),
            ("01", "a number with a leading zero at byte 1"),
            ("-", "a number without digits at byte 1"),
            ("1e", "a number without digits in its exponent at byte 1"),
            ("+1", "'+' where a value should be at byte 1"),
            (#""\x41""#, "an invalid escape in a string (only \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX) at byte 2"),
            (#""\u12G4""#, "an escape \\u without four hex digits in a string at byte 6"),
            ("\"a\tb\"", "a control character (0x9) in a string: JSON needs it escaped at byte 3"),
            ("\"abc", "a string that does not end at byte 1"),
            (#"{"a" 1}"#, "'1' where ':' should be at byte 6"),
            ("[1 2]", "'2' where ',' or ']' should be at byte 4"),
            ("{1: 2}", "'1' where a key (a string) should be at byte 2"),
            ("tru", "not a JSON value (true?) at byte 1"),
            ("NaN", "'N' where a value should be at byte 1"),
            ("{} {}", "text after the JSON value at byte 4"),
            ("{}\u{FEFF}", "text after the JSON value at byte 3"),   // a byte-order mark only at the start
            ("", "the text ends where a value should be at byte 1"),
            ("[", "the text ends where a value should be at byte 2"),
            (String(repeating: "[", count: 513) + String(repeating: "]", count: 513), "nested deeper than 512 at byte 513"),
        ]
        for (text, problem) in refused {
            XCTAssertEqual(JSONSyntax.problem(text), problem, text)
        }
        // The nesting limit is rnn-dist's, not a fault of the text: messages say which.
        let deep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        XCTAssertEqual(JSONSyntax.refusal(try XCTUnwrap(JSONSyntax.problem(deep))),
                       "arrays and objects nested deeper than the 512 levels rnn-dist reads (nested deeper than 512 at byte 513)")
        XCTAssertEqual(JSONSyntax.refusal(try XCTUnwrap(JSONSyntax.problem("[1,]"))), "not valid JSON (a trailing comma at byte 3)")
    }

    /// Strings are skipped eight bytes at a time where a word holds no byte that needs a look (a
    /// control character, '"', '\\'): each such byte at every offset of a 24-byte string body, among
    /// plain bytes (0x20, 0x7F and ≥ 0x80 too), is found where a byte-by-byte reading finds it.
    func testTheWordAtATimeSkipFindsEveryByteThatNeedsALook() {
        let plain: [UInt8] = [0x20, 0x21, 0x41, 0x7F, 0x80, 0xC3, 0xA9, 0xFF, 0x5B, 0x5D, 0x23, 0x5D]
        for special: UInt8 in [0x00, 0x01, 0x09, 0x1F, 0x22, 0x5C] {
            for offset in 0 ..< 24 {
                var body = (0 ..< 24).map { plain[($0 * 7 + Int(special)) % plain.count] }
                body[offset] = special
                let text = [0x22] + body + [0x22]   // "…"
                let got = text.withUnsafeBufferPointer { JSONSyntax.problem($0) }
                let want: String?
                switch special {
                case 0x22:   // the string ends early; what follows (past white space) is extra
                    var k = offset + 1
                    while k < 24 && body[k] == 0x20 { k += 1 }
                    want = "text after the JSON value at byte \(k + 2)"
                case 0x5C: want = body[offset + 1 ..< 24].isEmpty ? "a string that does not end at byte 1"
                                  : "an invalid escape in a string (only \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX) at byte \(offset + 2)"
                default: want = "a control character (0x\(String(special, radix: 16))) in a string: JSON needs it escaped at byte \(offset + 2)"
                }
                XCTAssertEqual(got, want, "byte 0x\(String(special, radix: 16)) at offset \(offset)")
            }
        }
        // Plain bytes only: accepted whatever their place relative to the words.
        for length in 0 ..< 40 {
            let text = [0x22] + (0 ..< length).map { plain[$0 % plain.count] } + [0x22]
            XCTAssertNil(text.withUnsafeBufferPointer { JSONSyntax.problem($0) }, "length \(length)")
        }
    }

    /// `check` reports each object's members where they are in the text, down to `memberDepth`, and
    /// `string` decodes a key as JSON does.
    func testMembersAreReportedWhereTheyAreInTheText() {
        let text = #"{"a" : [1, {"b": true}] , "c":{"d": "x\"y", "b": {}},"e":-1.5e3 }"#
        let bytes = Array(text.utf8)
        bytes.withUnsafeBufferPointer { json in
            func shown(_ depth: Int) -> [String] {
                JSONSyntax.check(json, memberDepth: depth).members.map {
                    "\($0.object)/\($0.depth) \(JSONSyntax.string($0.key, in: json))=\(String(decoding: json[$0.value], as: UTF8.self))"
                }
            }
            XCTAssertEqual(shown(0), [])
            XCTAssertEqual(shown(1), [#"0/1 a=[1, {"b": true}]"#, #"0/1 c={"d": "x\"y", "b": {}}"#, "0/1 e=-1.5e3"])
            XCTAssertEqual(shown(.max), [#"0/1 a=[1, {"b": true}]"#, "1/3 b=true", #"0/1 c={"d": "x\"y", "b": {}}"#,
                                         #"2/2 d="x\"y""#, "2/2 b={}", "0/1 e=-1.5e3"])
            XCTAssertNotNil(JSONSyntax.check(UnsafeBufferPointer(rebasing: json.dropLast()), memberDepth: 1).problem)
            XCTAssertEqual(JSONSyntax.check(UnsafeBufferPointer(rebasing: json.dropLast()), memberDepth: 1).members, [])
        }
        let strings: [(String, String)] = [
            (#""plain é""#, "plain é"), (#""\u0074ext""#, "text"), (#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{8}\u{C}\n\r\t"),
            (#""\u00E9\u00e9""#, "éé"), (#""\ud83d\ude00!""#, "😀!"), (#""\ud83d!""#, "\u{FFFD}!"), (#""\ude00\ud83d""#, "\u{FFFD}\u{FFFD}"),
        ]
        for (json, want) in strings {
            let bytes = Array(json.utf8)
            XCTAssertNil(JSONSyntax.problem(json), json)
            XCTAssertEqual(bytes.withUnsafeBufferPointer { JSONSyntax.string(0 ..< $0.count, in: $0) }, want, json)
        }
    }
}
