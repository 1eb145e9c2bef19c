import XCTest
@testable import TextData

/// docs/DATASET.md: `<br />` → space, Unicode lowercase, runs of letters/digits with inner apostrophes.
final class TokenizerTests: XCTestCase {
    private func tokens(_ s: String) -> [String] { Tokenizer().tokens(s) }

    func testApostrophesInsideAndAtWordEdges() {
        XCTAssertEqual(tokens("Don't stop: it's the Director's cut"), ["don't", "stop", "it's", "the", "director's", "cut"])
        XCTAssertEqual(tokens("rock'n'roll"), ["rock'n'roll"])
        XCTAssertEqual(tokens("'quoted' words' 'tis"), ["quoted", "words", "tis"])
        XCTAssertEqual(tokens("a''b"), ["a", "b"], "two apostrophes do not sit between two letters")
        XCTAssertEqual(tokens("o' ''hello'' '"), ["o", "hello"])
        XCTAssertEqual(tokens("80's 9'1"), ["80's", "9'1"], "digits count as word characters")
        XCTAssertEqual(tokens("it’s"), ["it", "s"], "only the ASCII apostrophe joins (U+2019 separates)")
    }

    func testLineBreakTagsBecomeSpaces() {
        XCTAssertEqual(tokens("Good<br />bad"), ["good", "bad"])
        XCTAssertEqual(tokens("end.<br /><br />Next<br />"), ["end", "next"])
        XCTAssertEqual(tokens("it<br />'s"), ["it", "s"])
        // Only the exact `<br />` is replaced, before lowercasing.
        XCTAssertEqual(tokens("a<BR />b <br/>c <br  />d"), ["a", "br", "b", "br", "c", "br", "d"])
        XCTAssertEqual(tokens("<br /"), ["br"], "an incomplete tag at the end is ordinary text")
    }

    func testAccentedAndNonLatinLetters() {
        XCTAssertEqual(tokens("Café CRÈME, Ärger über Öl"), ["café", "crème", "ärger", "über", "öl"])
        XCTAssertEqual(tokens("Москва ПРИВЕТ"), ["москва", "привет"])
        XCTAssertEqual(tokens("東京タワー、最高！"), ["東京タワー", "最高"])
        XCTAssertEqual(tokens("ΟΔΟΣ"), ["οδοσ"], "per-scalar lowercase: no final-sigma rule")
        XCTAssertEqual(tokens("\u{212A}elvin"), ["kelvin"], "KELVIN SIGN lowercases to ASCII k")
        // İ lowercases to i + U+0307 (a combining mark, not a letter): the token splits there.
        XCTAssertEqual(tokens("İstanbul"), ["i", "stanbul"])
        XCTAssertEqual(tokens("cafe\u{301} naïve"), ["cafe", "naïve"], "decomposed accents (Mn) separate")
    }

    func testDigitsAndNumbers() {
        XCTAssertEqual(tokens("10/10, 7.5 stars in 1999"), ["10", "10", "7", "5", "stars", "in", "1999"])
        XCTAssertEqual(tokens("½ ² Ⅻ ٣"), ["½", "²", "ⅻ", "٣"], "No, Nl and Nd are word characters")
        XCTAssertEqual(tokens("2nd"), ["2nd"])
    }

    func testPunctuationRunsAndSymbols() {
        XCTAssertEqual(tokens("...!!!---???"), [])
        XCTAssertEqual(tokens("hello---world!!!(really)"), ["hello", "world", "really"])
        XCTAssertEqual(tokens("under_score e-mail a.k.a."), ["under", "score", "e", "mail", "a", "k", "a"])
        XCTAssertEqual(tokens("great👍movie\t\nnew\u{A0}line"), ["great", "movie", "new", "line"])
    }

    func testEmptyReview() {
        XCTAssertEqual(tokens(""), [])
        XCTAssertEqual(tokens("   \n"), [])
        XCTAssertEqual(tokens("<br /><br />"), [])
    }

    func testInvalidUTF8IsReplacedAndCounted() {
        let t = Tokenizer()
        XCTAssertEqual(t.tokenize([0x61, 0x62, 0xFF, 0x63, 0x64, 0xC3]).tokens, ["ab", "cd"])
        XCTAssertEqual(t.tokenize([0x61, 0x62, 0xFF, 0x63, 0x64, 0xC3]).invalidBytes, 2)
        let truncated = t.tokenize([0xE2, 0x82, 0x78])            // 3-byte sequence cut short, then x
        XCTAssertEqual(truncated.tokens, ["x"]); XCTAssertEqual(truncated.invalidBytes, 2)
        XCTAssertEqual(t.tokenize([0xC0, 0xAF, 0x61]).invalidBytes, 2, "overlong encodings are invalid")
        XCTAssertEqual(t.tokenize([0xED, 0xA0, 0x80]).invalidBytes, 3, "surrogates are invalid")
        XCTAssertEqual(t.tokenize([0xF4, 0x90, 0x80, 0x80]).invalidBytes, 4, "beyond U+10FFFF is invalid")
        let ok = t.tokenize(Array("é€𝒜".utf8))
        XCTAssertEqual(ok.invalidBytes, 0)
        XCTAssertEqual(ok.tokens, ["é", "𝒜"])
        // An invalid byte separates, even between two letters.
        XCTAssertEqual(t.tokenize([0x61, 0x80, 0x62]).tokens, ["a", "b"])
    }

    /// The ASCII fast path and the Unicode path agree with the one definition, scalar by scalar.
    func testEveryScalarFollowsTheDefinition() {
        var checked = 0
        for v in UInt32(1) ..< 0x3400 {
            guard let s = Unicode.Scalar(v), v != 0x27, v != 0x3C else { continue }
            let lower = Array(s.properties.lowercaseMapping.unicodeScalars)
            var expected: [String] = []
            var run = ""
            for m in lower {
                if Tokenizer.isWordScalar(m) { run.unicodeScalars.append(m) } else if !run.isEmpty { expected.append(run); run = "" }
            }
            if !run.isEmpty { expected.append(run) }
            let got = tokens(String(s))
            if got != expected { XCTFail("U+\(String(v, radix: 16)): \(got) != \(expected)"); return }
            // Inside a word too.
            if Tokenizer.isWordScalar(s) && lower.count == 1 {
                XCTAssertEqual(tokens("x\(String(s))y"), ["x" + expected[0] + "y"])
            }
            checked += 1
        }
        XCTAssertGreaterThan(checked, 10_000)
    }

    func testWordScalarCategories() {
        XCTAssertTrue(Tokenizer.isWordScalar("a"))
        XCTAssertTrue(Tokenizer.isWordScalar("7"))
        XCTAssertTrue(Tokenizer.isWordScalar("ʰ"), "Lm")
        XCTAssertFalse(Tokenizer.isWordScalar("_"))
        XCTAssertFalse(Tokenizer.isWordScalar("\u{301}"), "Mn")
        XCTAssertFalse(Tokenizer.isWordScalar("€"))
    }
}
