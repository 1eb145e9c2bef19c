import XCTest
import Foundation
@testable import HDF5
@testable import TextData
@testable import RNN
import TestSupport
@testable import Training

/// The rows `train` holds in memory, and the finiteness scan of the training step.
final class PreloadedRowsTests: XCTestCase {
    var tmp: TempDir!
    override func setUpWithError() throws { tmp = try TempDir("preload") }
    override func tearDown() { tmp?.remove() }

    /// A small dataset file in the layout `prepare` writes: `rows` training rows of 4 ids from
    /// 3..<10 (num_words 10), test rows likewise; `bad` puts an id at (row, position) of train/x.
    func writeDataset(_ name: String, rows: Int, bad: (row: Int, position: Int, id: Int32)? = nil, blocks: Bool = true) throws -> String {
        let path = tmp.file(name), T = 4
        var g = SeededGenerator(seed: 5)
        var x = (0 ..< rows * T).map { _ in Int32(3 + g.next() % 7) }
        if let bad { x[bad.row * T + bad.position] = bad.id }
        let y = (0 ..< rows).map { Int8($0 % 2) }
        try H5File.writeAtomically(to: path) { f in
            try f.setAttribute("format", "rnn-dist-imdb"); try f.setAttribute("format_version", 1)
            try f.setAttribute("num_words", 10); try f.setAttribute("maxlen", T)
            try f.setAttribute("index_from", 3); try f.setAttribute("start_char", 1); try f.setAttribute("oov_char", 2)
            try f.setAttribute("seed", 1); try f.setAttribute("source", "s"); try f.setAttribute("tokenizer", "t")
            try f.writeStringList("vocab", ["a", "b", "c", "d", "e", "f"])
            try f.createDataset("train/x", shape: [rows, T], data: x, chunkRows: 8, blockChecksums: blocks)
            try f.createDataset("train/y", shape: [rows], data: y)
            try f.createDataset("test/x", shape: [rows, T], data: x.map { $0 % 10 }, chunkRows: 8, blockChecksums: blocks)
            try f.createDataset("test/y", shape: [rows], data: y)
        }
        return path
    }

    /// Any rows, in any order and with repeats, come back as the file gives them.
    func testRowsAreTheFilesRows() throws {
        let data = try TrainingDataset.open(try writeDataset("ok.h5", rows: 100))
        guard let held = try PreloadedRows(data.train, rows: 90, numWords: 10, slabRows: 16) else {
            return XCTFail("num_words 10 fits the UInt16 store")
        }
        XCTAssertEqual(held.rowCount, 90)
        XCTAssertEqual(held.maxlen, 4)
        var g = SeededGenerator(seed: 2)
        for _ in 0 ..< 5 {
            let rows = (0 ..< 37).map { _ in Int(g.next() % 90) }
            let a = try held.read(rows: rows), b = try data.train.read(rows: rows)
            XCTAssertEqual(a.x, b.x)
            XCTAssertEqual(a.y, b.y)
        }
        XCTAssertEqual(try held.read(rows: []).x, [])
    }

    /// Evaluation reads group after group into one buffer (`read(range:into:)`): whatever the buffer
    /// held before — more rows, fewer, none — it comes back with exactly the range's rows, the same
    /// as a fresh read, from the file and from the rows held in memory; its storage is reused.
    func testARangeReadIntoAReusedBufferIsAFreshRead() throws {
        let data = try TrainingDataset.open(try writeDataset("ok.h5", rows: 100))
        guard let held = try PreloadedRows(data.train, rows: 100, numWords: 10, slabRows: 16) else {
            return XCTFail("num_words 10 fits the UInt16 store")
        }
        for source in [data.train as RowSource, held, data.test] {
            var ids = [Int32]()
            for range in [0 ..< 64, 64 ..< 100, 3 ..< 4, 10 ..< 90, 99 ..< 100, 0 ..< 100] {
                let y = try source.read(range: range, into: &ids)
                let fresh = try source.read(rows: Array(range))
                XCTAssertEqual(ids, fresh.x, "\(range)")
                XCTAssertEqual(y, fresh.y, "\(range)")
            }
            let storage = ids.withUnsafeBufferPointer { $0.baseAddress }
            _ = try source.read(range: 20 ..< 52, into: &ids)
            XCTAssertEqual(ids.withUnsafeBufferPointer { $0.baseAddress }, storage, "a smaller group reuses the buffer")
        }
    }

    /// The buffered read checks what the fresh one checks: an id outside the vocabulary names its
    /// file row and position, a zeroed chunk fails its block checksum, and a range past the end is
    /// refused.
    func testARangeReadIntoABufferChecksItsRows() throws {
        let path = try writeDataset("bad.h5", rows: 40, bad: (row: 37, position: 2, id: 10))
        let data = try TrainingDataset.open(path)
        var ids = [Int32](repeating: 7, count: 1000)
        XCTAssertNoThrow(try data.train.read(range: 0 ..< 32, into: &ids))
        XCTAssertThrowsError(try data.train.read(range: 32 ..< 40, into: &ids)) { e in
            XCTAssertTrue("\(e)".contains("row 37, position 2: token id 10 is outside the vocabulary 0..<10"), "\(e)")
        }
        XCTAssertThrowsError(try data.train.read(range: 30 ..< 41, into: &ids)) { e in
            XCTAssertEqual("\(e)", "\(path): /train/x: row 40 out of 0..<40")
        }
        let damaged = try writeDataset("damaged.h5", rows: 40)
        _ = try zeroStoredChunk(of: "test/x", containingRow: 9, in: damaged)
        var fresh = [Int32]()
        XCTAssertNoThrow(try TrainingDataset.open(damaged).test.read(range: 0 ..< 8, into: &fresh))
        XCTAssertThrowsError(try TrainingDataset.open(damaged).test.read(range: 8 ..< 16, into: &fresh)) { e in
            XCTAssertTrue("\(e)".contains("/test/x: rows 8..<16 do not match their checksum"), "\(e)")
        }
        // The whole split: its blocks are checked (naming the rows); a file without block checksums
        // has its whole content checked instead, and a part of it is read unchecked.
        XCTAssertThrowsError(try TrainingDataset.open(damaged).test.read(range: 0 ..< 40, into: &fresh)) { e in
            XCTAssertTrue("\(e)".contains("/test/x: rows 8..<16 do not match their checksum"), "\(e)")
        }
        let unblocked = try writeDataset("unblocked.h5", rows: 40, blocks: false)
        _ = try zeroStoredChunk(of: "test/x", containingRow: 9, in: unblocked)
        XCTAssertThrowsError(try TrainingDataset.open(unblocked).test.read(range: 0 ..< 40, into: &fresh)) { e in
            XCTAssertTrue("\(e)".contains("/test/x: its values do not match their checksum"), "\(e)")
        }
        XCTAssertNoThrow(try TrainingDataset.open(unblocked).test.read(range: 0 ..< 16, into: &fresh))
    }

    /// Ids that do not fit 16 bits are left to the file; a source that is not the checked file gets
    /// its ids checked on the way in, with one line naming the place.
    func testVocabulariesAndIdsOutsideTheStore() throws {
        let rows = InMemoryRows(x: [1, 2, 3, 4, 5, 6, 70_000, 8], y: [0, 1], maxlen: 4)
        XCTAssertNil(try PreloadedRows(rows, rows: 2, numWords: PreloadedRows.maxNumWords + 1))
        XCTAssertThrowsError(try PreloadedRows(rows, rows: 2, numWords: PreloadedRows.maxNumWords)) { e in
            XCTAssertEqual("\(e)", "row 1, position 2: token id 70000 is outside the vocabulary 0..<65536")
        }
        let wide = InMemoryRows(x: [0, 65_535, 9, 1], y: [1], maxlen: 4)
        XCTAssertEqual(try PreloadedRows(wide, rows: 1, numWords: 65_536)?.read(rows: [0]).x, [0, 65_535, 9, 1])
    }

    /// `train` reads its rows before the first batch: a bad id in a validation row (read only at
    /// the epoch's end before) stops the run at set-up, at any number of ranks, with one line
    /// naming the file, the row, the position and the id, and no checkpoint.
    func testABadIdStopsTrainBeforeTheFirstBatch() throws {
        guard FileManager.default.isExecutableFile(atPath: Subprocess.rnnDist) else { throw XCTSkip("rnn-dist is not built") }
        let path = try writeDataset("bad.h5", rows: 40, bad: (row: 37, position: 2, id: 10))
        for ranks in [1, 2] {
            let run = tmp.file("run\(ranks)")
            let r = try Subprocess.mpiRun(ranks, ["train", "--data", path, "--run-dir", run, "--epochs", "1", "--batch-size", "8",
                                                  "--embed-dim", "4", "--units", "4", "--checkpoint-every", "1"])
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertEqual(r.stderr.components(separatedBy: "rnn-dist: error:").count, 2, "reported once: \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("\(path): /train/x: row 37, position 2: token id 10 is outside the vocabulary 0..<10"),
                          r.stderr)
            XCTAssertFalse(r.stdout.contains("Epoch 1/1"), r.stdout)
            XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/checkpoint.h5"), "no batch ran")
        }
    }

    /// The step's finiteness scan: every exponent pattern of ±∞ and NaN is caught, in any position,
    /// and no finite value (subnormals, the largest, −0) is.
    func testAllFiniteFindsEveryNonFiniteValue() {
        var v = (0 ..< 1001).map { Float($0) * 1e-3 - 0.5 }
        v[3] = .leastNonzeroMagnitude; v[4] = -.greatestFiniteMagnitude; v[5] = -0.0; v[6] = .greatestFiniteMagnitude
        XCTAssertTrue(Trainer.allFinite(v))
        XCTAssertTrue(Trainer.allFinite([]))
        for bad in [Float.infinity, -.infinity, .nan, -.nan, .signalingNaN, Float(bitPattern: 0x7fc0_0001)] {
            for i in [0, 17, 1000] {
                var w = v
                w[i] = bad
                XCTAssertFalse(Trainer.allFinite(w), "\(bad) at \(i)")
            }
        }
    }
}
