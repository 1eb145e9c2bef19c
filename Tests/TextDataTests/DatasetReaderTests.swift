import XCTest
@testable import HDF5
import TestSupport
@testable import TextData

/// `TextDataset` refuses every file that is not exactly what `prepare` writes (docs/DATASET.md §Reading it back), with one
/// line naming the file, the object and the problem.
final class DatasetReaderTests: XCTestCase {
    var dir: TempDir!

    override func setUpWithError() throws { dir = try TempDir("imdb-reader") }
    override func tearDown() { dir?.remove() }

    /// A valid hand-written dataset: num_words 10, maxlen 4, 3 train rows and 2 test rows;
    /// `change` runs last and may replace anything.
    private func write(_ name: String, trainX: [Int32]? = nil, trainY: [Int8] = [0, 1, 1],
                       complete: Bool = true, testRows: Int = 2, _ change: (H5File) throws -> Void = { _ in }) throws -> String {
        let path = dir.file(name)
        func body(_ f: H5File) throws {
            try f.setAttribute("format", "rnn-dist-imdb")
            try f.setAttribute("format_version", 1)
            try f.setAttribute("num_words", 10)
            try f.setAttribute("maxlen", 4)
            try f.setAttribute("index_from", 3)
            try f.setAttribute("start_char", 1)
            try f.setAttribute("oov_char", 2)
            try f.setAttribute("seed", 113)
            try f.setAttribute("source", "hand-made")
            try f.setAttribute("tokenizer", Tokenizer.version)
            try f.writeStringList("vocab", ["the", "a", "movie", "good", "bad", "plot"])
            try f.createDataset("train/x", shape: [3, 4], data: trainX ?? [0, 1, 4, 5, 1, 9, 9, 2, 0, 0, 1, 6], chunkRows: 1)
            try f.createDataset("train/y", shape: [trainY.count], data: trainY)
            try f.createDataset("test/x", shape: [testRows, 4], data: [Int32](repeating: 1, count: 4 * testRows))
            try f.createDataset("test/y", shape: [testRows], data: (0 ..< testRows).map { Int8(($0 + 1) % 2) })
            try change(f)
        }
        if complete {
            try H5File.writeAtomically(to: path, body)
        } else {
            let f = try H5File.create(path)
            try body(f)
            try f.close()
        }
        return path
    }

    private func assertOpenFails(_ path: String, _ expected: (Error) -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try TextDataset(path: path), file: file, line: line) { e in
            XCTAssertTrue(expected(e), "\(e)", file: file, line: line)
            XCTAssertTrue("\(e)".hasPrefix(path), "names the file: \(e)", file: file, line: line)
        }
    }

    func testAValidFileReadsAnyRows() throws {
        let d = try TextDataset(path: try write("ok.h5"))
        XCTAssertEqual(d.numWords, 10)
        XCTAssertEqual(d.maxlen, 4)
        XCTAssertEqual(d.vocabulary.word(for: 6), "movie")
        let train = d.split(.train)
        XCTAssertEqual(train.count, 3)
        let r = try train.read(rows: [2, 0])
        XCTAssertEqual(r.x, [0, 0, 1, 6, 0, 1, 4, 5])
        XCTAssertEqual(r.y, [1, 0])
        XCTAssertEqual(try train.read(rows: 1 ..< 3).y, [1, 1])
        XCTAssertEqual(try train.labels(), [0, 1, 1])
        XCTAssertNil(try train.origin(row: 0), "no review_id/rating in this file")
        XCTAssertEqual(try train.validateAll(), 3)
        XCTAssertEqual(d.encode("The GOOD plot"), [1, 4, 7, 9])
        XCTAssertEqual(d.encode("The GOOD plot, unknown"), [4, 7, 9, 2])
        XCTAssertThrowsError(try train.read(rows: [3])) { XCTAssertTrue("\($0)".contains("row 3 out of 0..<3"), "\($0)") }
    }

    func testWrongFormatAttribute() throws {
        let wrong = try write("wrong.h5") { try $0.setAttribute("format", "keras-weights") }
        assertOpenFails(wrong) { ($0 as? DatasetError) == .wrongFormat(path: wrong, found: "keras-weights") }
        let missing = dir.file("plain.h5")
        try H5File.writeAtomically(to: missing) { try $0.createDataset("x", data: [Int32(1)]) }
        assertOpenFails(missing) { "\($0)".contains("/@format is missing, expected 'rnn-dist-imdb'") }
        let version = try write("v2.h5") { try $0.setAttribute("format_version", 2) }
        assertOpenFails(version) { ($0 as? DatasetError) == .unsupportedVersion(path: version, found: 2) }
        let index = try write("index.h5") { try $0.setAttribute("index_from", 2) }
        assertOpenFails(index) { "\($0)".contains("/@index_from: 2 is outside 3...3") }
    }

    /// prepare never writes an empty split: one is refused on opening (eval of an empty test split
    /// printed nan, exit 0), as is a train_checksum that is not a string (it was taken for none).
    func testAnEmptySplitAndAChecksumOfAnotherTypeAreRefused() throws {
        let empty = try write("empty.h5", testRows: 0)
        assertOpenFails(empty) { "\($0)".contains("/test/x") && "\($0)".contains("N ≥ 1 (prepare writes no empty split)") }
        let typed = try write("typed.h5") { try $0.setAttribute("train_checksum", 1234) }
        assertOpenFails(typed) { "\($0)".contains("train_checksum") }
        XCTAssertEqual(try TextDataset(path: try write("string.h5") { try $0.setAttribute("train_checksum", "4d2") }).trainChecksum, "4d2")
    }

    func testIncompleteFile() throws {
        let partial = try write("partial.h5", complete: false)
        assertOpenFails(partial) { ($0 as? HDF5Error)?.kind == .incomplete }
    }

    func testWrongDtype() throws {
        let extra = try write("extra.h5") { f in
            try f.createDataset("test/x2", shape: [2, 4], data: [Float](repeating: 1, count: 8))
            try f.writeStringList("unused", [])
        }
        XCTAssertNoThrow(try TextDataset(path: extra), "extra objects are ignored")
        let path = dir.file("float.h5")
        try H5File.writeAtomically(to: path) { f in
            try f.setAttribute("format", "rnn-dist-imdb"); try f.setAttribute("format_version", 1)
            try f.setAttribute("num_words", 10); try f.setAttribute("maxlen", 2)
            try f.setAttribute("index_from", 3); try f.setAttribute("start_char", 1); try f.setAttribute("oov_char", 2)
            try f.setAttribute("seed", 1); try f.setAttribute("source", "s"); try f.setAttribute("tokenizer", "t")
            try f.writeStringList("vocab", ["a", "b", "c", "d", "e", "f"])
            try f.createDataset("train/x", shape: [1, 2], data: [Float(1), 4])
            try f.createDataset("train/y", shape: [1], data: [Int8(0)])
        }
        assertOpenFails(path) { ($0 as? DatasetError) == .wrongType(path: path, object: "/train/x", expected: "int32", found: "float32") }
        let wrongY = try writeWithTestY(Int64.self)
        assertOpenFails(wrongY) { ($0 as? DatasetError) == .wrongType(path: wrongY, object: "/test/y", expected: "int8 or int32", found: "int64") }
    }

    /// A valid file except that `/test/y` holds `T`.
    private func writeWithTestY<T: H5Element>(_: T.Type) throws -> String {
        let path = dir.file("testy-\(T.self).h5")
        try H5File.writeAtomically(to: path) { f in
            try f.setAttribute("format", "rnn-dist-imdb"); try f.setAttribute("format_version", 1)
            try f.setAttribute("num_words", 4); try f.setAttribute("maxlen", 1)
            try f.setAttribute("index_from", 3); try f.setAttribute("start_char", 1); try f.setAttribute("oov_char", 2)
            try f.setAttribute("seed", 1); try f.setAttribute("source", "s"); try f.setAttribute("tokenizer", "t")
            try f.writeStringList("vocab", [])
            try f.createDataset("train/x", shape: [1, 1], data: [Int32(1)])
            try f.createDataset("train/y", shape: [1], data: [Int8(0)])
            try f.createDataset("test/x", shape: [1, 1], data: [Int32(1)])
            try f.createDataset("test/y", shape: [1], data: [T(exactly: 1)!])
        }
        return path
    }

    func testWrongShapes() throws {
        let maxlen = try write("maxlen.h5") { try $0.setAttribute("maxlen", 5) }
        assertOpenFails(maxlen) { "\($0)".contains("/train/x: shape [3, 4], expected [N, 5]") }
        let rows = try write("rows.h5", trainY: [0, 1])
        assertOpenFails(rows) { ($0 as? DatasetError) == .wrongShape(path: rows, object: "/train/y", expected: "[3] (one label per row of x)", found: [2]) }
        let vocab = try write("vocab.h5") { try $0.setAttribute("num_words", 11) }
        assertOpenFails(vocab) { "\($0)".contains("/vocab/offsets: shape [7], expected [8] for num_words 11") }
    }

    func testOutOfRangeTokenIdIsReportedWithRowAndColumn() throws {
        let path = try write("oov.h5", trainX: [0, 1, 4, 5, 1, 9, 10, 2, 0, 0, 1, -1])
        let d = try TextDataset(path: path)   // ids are checked as rows are read
        let train = d.split(.train)
        XCTAssertEqual(try train.read(rows: [0]).x, [0, 1, 4, 5])
        XCTAssertThrowsError(try train.read(rows: [0, 1])) { e in
            XCTAssertEqual(e as? DatasetError, .tokenOutOfRange(path: path, object: "/train/x", row: 1, column: 2, id: 10, numWords: 10))
            XCTAssertEqual("\(e)", "\(path): /train/x: row 1, position 2: token id 10 is outside the vocabulary 0..<10")
        }
        XCTAssertThrowsError(try train.read(rows: 2 ..< 3)) { e in
            XCTAssertEqual(e as? DatasetError, .tokenOutOfRange(path: path, object: "/train/x", row: 2, column: 3, id: -1, numWords: 10))
        }
        XCTAssertThrowsError(try train.validateAll())
        XCTAssertThrowsError(try DatasetSummary(path: path))
    }

    func testBadLabel() throws {
        let path = try write("label.h5", trainY: [0, 2, 1])
        let train = try TextDataset(path: path).split(.train)
        XCTAssertNoThrow(try train.read(rows: [0, 2]))
        XCTAssertThrowsError(try train.read(rows: [2, 1])) { e in
            XCTAssertEqual(e as? DatasetError, .badLabel(path: path, object: "/train/y", row: 1, value: 2, classes: 2))
        }
        XCTAssertThrowsError(try train.labels())
    }

    func testDuplicateVocabularyWord() throws {
        let dup = dir.file("dup2.h5")
        try H5File.writeAtomically(to: dup) { f in
            try f.setAttribute("format", "rnn-dist-imdb"); try f.setAttribute("format_version", 1)
            try f.setAttribute("num_words", 6); try f.setAttribute("maxlen", 1)
            try f.setAttribute("index_from", 3); try f.setAttribute("start_char", 1); try f.setAttribute("oov_char", 2)
            try f.setAttribute("seed", 1); try f.setAttribute("source", "s"); try f.setAttribute("tokenizer", "t")
            try f.writeStringList("vocab", ["same", "same"])
            try f.createDataset("train/x", shape: [1, 1], data: [Int32(1)])
            try f.createDataset("train/y", shape: [1], data: [Int8(0)])
            try f.createDataset("test/x", shape: [1, 1], data: [Int32(1)])
            try f.createDataset("test/y", shape: [1], data: [Int8(0)])
        }
        assertOpenFails(dup) { "\($0)".contains("/vocab: entry 1 'same' repeats an earlier entry") }
    }

    func testSummaryOfAPreparedDataset() throws {
        try RawIMDB.writeFolder(PrepareTests.reviews, at: dir.path + "/src")
        _ = try Preparer.prepare(PrepareOptions(source: dir.path + "/src", output: dir.file("p.h5"), numWords: 9, maxlen: 5))
        let s = try DatasetSummary(path: dir.file("p.h5"), firstWords: 3)
        XCTAssertEqual(s.firstWords, ["a", "b", "c"])
        XCTAssertEqual(s.splits.map(\.rows), [4, 3])
        XCTAssertEqual(s.splits.map(\.classCounts), [[2, 2], [1, 2]])
        XCTAssertEqual(s.classNames, ["neg", "pos"])
        XCTAssertEqual(s.sample?.reviewID, 7, "train row 0 is review 7 (seed 113)")
        XCTAssertEqual(s.sample?.words, ["<start>", "<oov>"])
        let text = s.lines().joined(separator: "\n")
        XCTAssertTrue(text.contains("train: 4 rows × 5 ids; labels 2 neg / 2 pos"), text)
        XCTAssertTrue(text.contains("train row 0 (label 1 pos = train/pos/7_8.txt, 3 padding): <start> <oov>"), text)
        let json = s.json
        XCTAssertEqual(json["num_words"] as? Int, 9)
        XCTAssertEqual((json["sample"] as? [String: Any])?["review_id"] as? Int, 7)
    }
}
