import Foundation
import XCTest
import TestSupport
@testable import TextData

/// `--embeddings`' reader: GloVe and word2vec text, plain or gzip'ed, into the book's embedding matrix.
final class PretrainedVectorsTests: XCTestCase {
    var dir: TempDir!
    override func setUpWithError() throws { dir = try TempDir("vectors") }
    override func tearDown() { dir?.remove() }

    let vocabulary = ["the", "movie", "great", "zz"]    // ids 4, 5, 6, 7

    func write(_ text: String, _ name: String) throws -> String {
        let path = dir.file(name)
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    func testGloVeRowsGoToTheirIdsAndTheRestStayZero() throws {
        let path = try write("the 0.5 -1 2\nother 9 9 9\ngreat 1e-3 0 -0.25\r\nthe 1 2 3\n", "glove.3d.txt")
        let v = try PretrainedVectors.load(path: path, vocabulary: vocabulary, width: 3)
        XCTAssertEqual(v.matrix.count, 8 * 3)
        XCTAssertEqual(Array(v.matrix[0 ..< 12]), [Float](repeating: 0, count: 12), "reserved ids 0–3 stay zero")
        XCTAssertEqual(Array(v.matrix[12 ..< 15]), [1, 2, 3], "a repeated word keeps its last vector")
        XCTAssertEqual(Array(v.matrix[15 ..< 18]), [0, 0, 0], "movie has no vector")
        XCTAssertEqual(Array(v.matrix[18 ..< 21]), [0.001, 0, -0.25])
        XCTAssertEqual(v.coverage, "2 of 4 words found in glove.3d.txt")
        XCTAssertEqual(v.lines, 4)

        // word2vec's header line; the same vectors gzip'ed; the checksum follows the content.
        let w2v = try write("3 3\nthe 1 2 3\nmovie 4 5 6\nzz 7 8 9\n", "w2v.txt")
        let a = try PretrainedVectors.load(path: w2v, vocabulary: vocabulary, width: 3)
        XCTAssertEqual(a.found, 3)
        XCTAssertEqual(Array(a.matrix[21 ..< 24]), [7, 8, 9])
        let r = try Subprocess.run("/usr/bin/env", ["gzip", "-k", w2v])
        XCTAssertEqual(r.status, 0, r.stderr)
        let gz = try PretrainedVectors.load(path: w2v + ".gz", vocabulary: vocabulary, width: 3)
        XCTAssertEqual(gz.matrix, a.matrix)
        XCTAssertEqual(gz.checksum, a.checksum, "the checksum is of the decompressed bytes")
        XCTAssertNotEqual(a.checksum, v.checksum)
    }

    /// A UTF-8 byte-order mark before the first word (a file saved by a Windows editor) is not part
    /// of the word: "the" got no vector, silently, with the mark.
    func testAByteOrderMarkIsNotPartOfTheFirstWord() throws {
        let path = try write("\u{FEFF}the 1 2 3\ngreat 4 5 6\n", "bom.txt")
        let v = try PretrainedVectors.load(path: path, vocabulary: vocabulary, width: 3)
        XCTAssertEqual(v.found, 2)
        XCTAssertEqual(Array(v.matrix[12 ..< 15]), [1, 2, 3])
        // Only at the file's start: elsewhere the bytes belong to the word (here one not in the vocabulary).
        let inner = try write("great 4 5 6\n\u{FEFF}the 1 2 3\n", "inner.txt")
        XCTAssertEqual(try PretrainedVectors.load(path: inner, vocabulary: vocabulary, width: 3).found, 1)
    }

    func testBadFilesNameTheLine() throws {
        let cases: [(String, String)] = [
            ("the 1 2 3\nmovie 1 2\n", " line 2: 2 values after the word, the embedding's width is 3"),
            ("5 4\nthe 1 2 3 4\n", " line 1: vectors of 4 values, the embedding's width is 3"),
            ("the 1 2 3\ngreat 1 x 3\n", " line 2: value 2 'x' is not a finite number"),
            ("the 1 nan 3\n", " line 1: value 2 'nan' is not a finite number"),
            ("the 1 0x10 3\n", " line 1: value 2 '0x10' is not a finite number"),   // Swift's parser read 16
            ("", ": holds no vectors"),
            ("\n\n \n", ": holds no vectors"),            // only blank lines: a zero embedding was trained, exit 0
            ("5 3\n", ": holds no vectors"),               // a word2vec header alone
            ("3 3\nthe 1 2 3\nmovie 4 5 6\n", ": its word2vec header declares 3 vectors, the file holds 2 (cut short?)"),
            ("1 3\nthe 1 2 3\nmovie 4 5 6\n", ": its word2vec header declares 1 vectors, the file holds 2"),
            ("the 1 2\u{0}3 4\n", " line 1: value 2 '2\\x003' is not a finite number"),   // a NUL or an escape is shown
            ("the 1 \u{1B}[31m 3\n", " line 1: value 2 '\\x1b[31m' is not a finite number"),
        ]
        for (k, (text, expect)) in cases.enumerated() {
            let path = try write(text, "bad\(k).txt")
            XCTAssertThrowsError(try PretrainedVectors.load(path: path, vocabulary: vocabulary, width: 3)) {
                XCTAssertEqual("\($0)", path + expect)
            }
        }
        // Fields apart by tabs or any run of white space, as the book's line.split() reads them; an
        // empty gzip file holds no vectors, as an empty plain one.
        let tabs = try write("the\t1\t2 \t 3\r\r\ngreat 4\u{0B}5\u{0C}6 \r\n", "tabs.txt")
        let t = try PretrainedVectors.load(path: tabs, vocabulary: vocabulary, width: 3)
        XCTAssertEqual(Array(t.matrix[12 ..< 15]) + Array(t.matrix[18 ..< 21]), [1, 2, 3, 4, 5, 6])
        let empty = try write("", "empty.txt")
        XCTAssertEqual(try Subprocess.run("/usr/bin/env", ["gzip", empty]).status, 0)
        XCTAssertThrowsError(try PretrainedVectors.load(path: empty + ".gz", vocabulary: vocabulary, width: 3)) {
            XCTAssertEqual("\($0)", empty + ".gz: holds no vectors")
        }
        // Every decimal notation a vectors file uses is read.
        let decimal = try write("the 1e-3 -2.5E+1 +.5\n", "decimal.txt")
        XCTAssertEqual(Array(try PretrainedVectors.load(path: decimal, vocabulary: vocabulary, width: 3).matrix[12 ..< 15]), [1e-3, -25, 0.5])
        XCTAssertThrowsError(try PretrainedVectors.load(path: dir.file("none.txt"), vocabulary: vocabulary, width: 3)) {
            XCTAssertTrue("\($0)".contains("none.txt: no such file"), "\($0)")
        }
    }
}
