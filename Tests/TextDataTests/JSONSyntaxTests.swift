// The strict JSON check that JSON Lines and --model-config go through before decoding.

import JSONSyntax
import XCTest

final class JSONSyntaxTests: XCTestCase {
    func testJSONIsAcceptedAndWhatPythonRefusesIsNot() {
        for text in ["{}", "[]", " \t\r\n{} ", "0", "-0", "-0.5e+10", "1E-2", "true", "null", "\"\"",
                     #"{"a": [1, -0, 0.5, 1e5, true, false, null, "\u00e9\n\"\\\/\b\f\r\t"], "b": {"c": {}}}"#,
                     "\"é ü 😀\"", String(repeating: "[", count: 512) + String(repeating: "]", count: 512)] {
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
            ("", "the text ends where a value should be at byte 1"),
            ("[", "the text ends where a value should be at byte 2"),
            (String(repeating: "[", count: 513) + String(repeating: "]", count: 513), "nested deeper than 512 at byte 513"),
        ]
        for (text, problem) in refused {
            XCTAssertEqual(JSONSyntax.problem(text), problem, text)
        }
    }
}
