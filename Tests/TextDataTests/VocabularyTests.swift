import XCTest
@testable import HDF5
import TestSupport
@testable import TextData

/// Ids, padding and truncation (docs/DATASET.md) on the `Vocabulary` API that `predict` uses.
final class VocabularyTests: XCTestCase {
    func testIdsFollowKerasConventions() throws {
        let v = try Vocabulary(words: ["the", "movie", "don't"])
        XCTAssertEqual(v.numWords, 7)
        XCTAssertEqual(v.id(of: "the"), 4)
        XCTAssertEqual(v.id(of: "don't"), 6)
        XCTAssertEqual(v.id(of: "unknown"), 2)
        XCTAssertEqual(v.word(for: 5), "movie")
        XCTAssertEqual(v.word(for: 1), "<start>")
        XCTAssertEqual(v.sequence("The MOVIE, don't... the end"), [1, 4, 5, 6, 4, 2])
    }

    func testPrePaddingAndPreTruncation() {
        XCTAssertEqual(Vocabulary.pad([1, 5, 6], maxlen: 5), [0, 0, 1, 5, 6])
        XCTAssertEqual(Vocabulary.pad([1, 5, 6], maxlen: 3), [1, 5, 6])
        XCTAssertEqual(Vocabulary.pad([1, 5, 6], maxlen: 2), [5, 6], "the start mark is cut first")
        XCTAssertEqual(Vocabulary.pad([1, 5, 6, 7, 8], maxlen: 1), [8])
        XCTAssertEqual(Vocabulary.pad([1], maxlen: 4), [0, 0, 0, 1])
    }

    func testEncodeIsTokenizeLookupPad() throws {
        let v = try Vocabulary(words: ["a", "b"])
        XCTAssertEqual(v.encode("B a c<br />A", maxlen: 6), [0, 1, 5, 4, 2, 4])
        XCTAssertEqual(v.encode("B a c<br />A", maxlen: 3), [4, 2, 4])
        XCTAssertEqual(v.encode("", maxlen: 3), [0, 0, 1])
        XCTAssertEqual(v.decode([0, 0, 1, 5, 4, 2]), ["<start>", "b", "a", "<oov>"])
    }

    func testWordsAreComparedAsBytes() throws {
        // Canonically equivalent, different bytes: distinct words (Swift `String ==` would merge them).
        let v = try Vocabulary(words: ["\u{AC00}", "\u{1100}\u{1161}"])
        XCTAssertEqual(v.id(of: "\u{AC00}"), 4)
        XCTAssertEqual(v.id(of: "\u{1100}\u{1161}"), 5)
        XCTAssertThrowsError(try Vocabulary(words: ["a", "b", "a"]))
        XCTAssertThrowsError(try Vocabulary(words: ["a", ""]))
    }

    func testWriteAndReadBack() throws {
        let dir = try TempDir("imdb-vocab")
        defer { dir.remove() }
        let v = try Vocabulary(words: ["the", "ébène", "東京"])
        try H5File.writeAtomically(to: dir.file("v.h5")) { f in try v.write(to: f.createGroup("meta")) }
        let f = try H5File.open(dir.file("v.h5"), requireComplete: true)
        XCTAssertEqual(try Vocabulary.read(from: f.group("meta"), numWords: 7), v)
        XCTAssertThrowsError(try Vocabulary.read(from: f.group("meta"), numWords: 8)) { e in
            XCTAssertTrue("\(e)".contains("/meta/vocab/offsets"), "\(e)")
        }
    }
}
