import XCTest
import Foundation
@testable import HDF5
import TestSupport

final class HDF5RoundTripTests: XCTestCase {
    var tmp: TempDir!
    override func setUpWithError() throws { tmp = try TempDir("h5") }
    override func tearDown() { tmp.remove() }

    func roundTrip<T: H5Element & Equatable>(_ type: T.Type, _ values: [T], shape: [Int], chunkRows: Int? = nil) throws {
        let path = tmp.file("rt-\(T.self)-\(shape.count).h5")
        try H5File.writeAtomically(to: path) { f in
            try f.createDataset("g/sub/data", shape: shape, data: values, chunkRows: chunkRows)
        }
        let f = try H5File.open(path, requireComplete: true)
        let d = try f.dataset("g/sub/data")
        XCTAssertEqual(d.shape, shape)
        XCTAssertEqual(d.elementType, T.h5Type)
        XCTAssertEqual(try d.read(as: T.self), values)
    }

    func testEveryDtypeAndRankRoundTrips() throws {
        let n = 2 * 3 * 4
        for shape in [[n], [6, 4], [2, 3, 4]] {
            try roundTrip(Float.self, (0 ..< n).map { Float($0) * 0.5 - 3.25 }, shape: shape)
            try roundTrip(Double.self, (0 ..< n).map { Double($0) / 7 }, shape: shape)
            try roundTrip(Int64.self, (0 ..< n).map { Int64($0) << 33 - 5 }, shape: shape)
            try roundTrip(Int32.self, (0 ..< n).map { Int32($0) * -1000 }, shape: shape)
            try roundTrip(Int8.self, (0 ..< n).map { Int8($0) - 12 }, shape: shape)
            try roundTrip(UInt8.self, (0 ..< n).map { UInt8($0 * 10) }, shape: shape, chunkRows: 1)
        }
        // Empty datasets are legal (an empty split) and read back empty.
        try roundTrip(Int32.self, [], shape: [0, 5])
    }

    func testReadingWithTheWrongTypeIsAnError() throws {
        let path = tmp.file("t.h5")
        try H5File.writeAtomically(to: path) { f in try f.createDataset("y", data: [Int8(0), 1, 1]) }
        let d = try H5File.open(path).dataset("y")
        XCTAssertThrowsError(try d.read(as: Float.self)) { e in
            XCTAssertTrue("\(e)".contains("holds int8, expected float32"), "\(e)")
            XCTAssertTrue("\(e)".contains(path) && "\(e)".contains("/y"), "\(e)")
        }
    }

    func testRowRangesAndIndexSetsReadTheRightRows() throws {
        let path = tmp.file("rows.h5")
        let rows = 37, cols = 5
        let values = (0 ..< rows * cols).map { Int32($0) }
        try H5File.writeAtomically(to: path) { f in
            try f.createDataset("x", shape: [rows, cols], data: values, chunkRows: 4)
        }
        let d = try H5File.open(path).dataset("x")
        func row(_ r: Int) -> [Int32] { Array(values[r * cols ..< (r + 1) * cols]) }
        XCTAssertEqual(try d.readRows(3 ..< 9, as: Int32.self), (3 ..< 9).flatMap(row))
        XCTAssertEqual(try d.readRows(36 ..< 37, as: Int32.self), row(36))
        XCTAssertEqual(try d.readRows(0 ..< 0, as: Int32.self), [])
        let idx = [30, 2, 3, 4, 17, 0, 36, 36]
        XCTAssertEqual(try d.readRows(idx, as: Int32.self), idx.flatMap(row))
        XCTAssertThrowsError(try d.readRows(30 ..< 38, as: Int32.self))
        XCTAssertThrowsError(try d.readRows([37], as: Int32.self))
    }

    func testAttributesOfEveryKind() throws {
        let path = tmp.file("attrs.h5")
        let json = #"{"model":"lstm","units":32,"words":["é","日本"]}"#
        try H5File.writeAtomically(to: path) { f in
            try f.setAttribute("format", "rnn-dist-imdb")
            try f.setAttribute("num_words", 10000)
            try f.setAttribute("lr", 0.001)
            try f.setAttribute("empty", "")
            let g = try f.createGroup("rnn_dist")
            try g.setAttribute("config", json)
            try g.setAttribute("config", json + " ")  // replacing keeps one attribute
            let d = try g.createDataset("v", data: [Float(1)])
            try d.setAttribute("big", Int64.min)
        }
        let f = try H5File.open(path, requireComplete: true)
        XCTAssertEqual(try f.stringAttribute("format"), "rnn-dist-imdb")
        XCTAssertEqual(try f.intAttribute("num_words"), 10000)
        XCTAssertEqual(try f.doubleAttribute("lr"), 0.001)
        XCTAssertEqual(try f.doubleAttribute("num_words"), 10000)
        XCTAssertEqual(try f.stringAttribute("empty"), "")
        XCTAssertEqual(try f.group("rnn_dist").stringAttribute("config"), json + " ")
        XCTAssertEqual(try f.group("rnn_dist").attributeNames(), ["config"])
        XCTAssertEqual(try f.dataset("rnn_dist/v").intAttribute("big"), Int64.min)
        XCTAssertThrowsError(try f.intAttribute("format"))      // a string is not an integer
        XCTAssertThrowsError(try f.stringAttribute("lr"))       // a double is not a string
        XCTAssertThrowsError(try f.intAttribute("nope")) { e in
            XCTAssertEqual((e as? HDF5Error)?.kind, .missing)
        }
        XCTAssertEqual(Set(try f.attributeNames()), ["format", "num_words", "lr", "empty", H5File.completeAttribute, H5File.digestAttribute])
    }

    func testStringListsRoundTripWithoutVariableLengthStrings() throws {
        let path = tmp.file("vocab.h5")
        let words = ["the", "", "don't", "café", "日本語", String(repeating: "x", count: 300)]
        try H5File.writeAtomically(to: path) { f in try f.writeStringList("vocab", words) }
        let f = try H5File.open(path)
        XCTAssertEqual(try f.readStringList("vocab"), words)
        XCTAssertEqual(try f.dataset("vocab/bytes").elementType, .uint8)
        XCTAssertEqual(try f.dataset("vocab/offsets").shape, [words.count + 1])
    }

    func testStringListWithBrokenOffsetsIsRejected() throws {
        let path = tmp.file("badvocab.h5")
        try H5File.writeAtomically(to: path) { f in
            try f.createDataset("vocab/bytes", data: Array("abcdef".utf8))
            try f.createDataset("vocab/offsets", data: [Int64(0), 4, 2, 6])
        }
        XCTAssertThrowsError(try H5File.open(path).readStringList("vocab")) { e in
            XCTAssertTrue("\(e)".contains("offsets decrease"), "\(e)")
        }
        // An offset past the end before the last (which is right): an error, not a trap.
        let far = tmp.file("farvocab.h5")
        try H5File.writeAtomically(to: far) { f in
            try f.createDataset("vocab/bytes", data: Array("abcdef".utf8))
            try f.createDataset("vocab/offsets", data: [Int64(0), 1_000_000_000, 6])
        }
        XCTAssertThrowsError(try H5File.open(far).readStringList("vocab")) { e in
            XCTAssertTrue("\(e)".contains("beyond the 6 bytes"), "\(e)")
        }
        // Bytes that are not UTF-8 (a damaged vocabulary word) are refused, not read as U+FFFD.
        let latin1 = tmp.file("latin1vocab.h5")
        try H5File.writeAtomically(to: latin1) { f in
            try f.createDataset("vocab/bytes", data: Array("abc".utf8) + [0xE9] + Array("f".utf8))
            try f.createDataset("vocab/offsets", data: [Int64(0), 3, 5])
        }
        XCTAssertThrowsError(try H5File.open(latin1).readStringList("vocab")) { e in
            XCTAssertTrue("\(e)".contains("entry 2 is not UTF-8"), "\(e)")
        }
    }

    /// The atomic writers (HDF5 here, text files in TextFileTests) never rename over a node that is
    /// not a file — a FIFO, a folder, a device behind a link — and write through a link to a file,
    /// which stays a link. (`export -o /dev/null` as root used to replace the device.)
    func testAtomicWritesRefuseWhatIsNotAFileAndFollowLinksToFiles() throws {
        let fifo = tmp.file("fifo.h5"), folder = tmp.file("folder.h5"), toDevice = tmp.file("null.h5")
        let target = tmp.file("target.h5"), link = tmp.file("link.h5"), dangling = tmp.file("dangling.h5")
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: toDevice, withDestinationPath: "/dev/null")
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: tmp.file("nothing"))
        // `-o /dev/stdout` into a pipe: a link through /proc to "pipe:[…]" (called a missing file).
        var ends: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&ends), 0)
        defer { close(ends[0]); close(ends[1]) }
        let toPipe = tmp.file("stdout.h5")
        try FileManager.default.createSymbolicLink(atPath: toPipe, withDestinationPath: "/proc/self/fd/\(ends[1])")
        for (path, what) in [(fifo, "is a FIFO"), (folder, "is a folder"), (toDevice, "is a symbolic link to a device"),
                             (dangling, "is a symbolic link to a missing file"), (toPipe, "is a symbolic link to a FIFO")] {
            XCTAssertThrowsError(try H5File.writeAtomically(to: path) { try $0.createDataset("x", data: [Float(1)]) }) { e in
                XCTAssertTrue("\(e)".contains(what), "\(path): \(e)")
                XCTAssertFalse("\(e)".contains("\n"))
            }
        }
        var s = stat()
        XCTAssertEqual(lstat(fifo, &s), 0); XCTAssertEqual(s.st_mode & S_IFMT, S_IFIFO)
        XCTAssertEqual(lstat(toDevice, &s), 0); XCTAssertEqual(s.st_mode & S_IFMT, S_IFLNK)
        XCTAssertEqual(stat("/dev/null", &s), 0); XCTAssertEqual(s.st_mode & S_IFMT, S_IFCHR)
        // Through a link to a file: the file gets the contents, the link stays.
        try H5File.writeAtomically(to: target) { try $0.createDataset("x", data: [Float(1)]) }
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        try H5File.writeAtomically(to: link) { try $0.createDataset("x", data: [Float(2)]) }
        XCTAssertEqual(lstat(link, &s), 0); XCTAssertEqual(s.st_mode & S_IFMT, S_IFLNK)
        XCTAssertEqual(try H5File.open(target).dataset("x").read() as [Float], [2])
    }

    func testWalkListsEveryObject() throws {
        let path = tmp.file("walk.h5")
        try H5File.writeAtomically(to: path) { f in
            try f.createDataset("a/x", shape: [2, 2], data: [Float](repeating: 1, count: 4))
            try f.createDataset("b", data: [Int64(1)])
            try f.createGroup("c/d")
        }
        let names = try H5File.open(path).walk(verifyData: true).map(\.name)
        XCTAssertEqual(names, ["/a", "/a/x", "/b", "/c", "/c/d"])
    }

    /// A group of many links ("dense" storage, visited in hash order) is listed in name order too.
    func testAGroupOfManyChildrenIsListedInNameOrder() throws {
        let path = tmp.file("dense.h5")
        let created = (0 ..< 40).map { "n\(($0 * 17) % 40)" }     // not in name order
        try H5File.writeAtomically(to: path) { f in
            for n in created { try f.createDataset("g/" + n, data: [Int64(1)]) }
        }
        let names = try H5File.open(path).walk(verifyData: false).map(\.name).filter { $0.hasPrefix("/g/") }
        XCTAssertEqual(names, created.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { "/g/" + $0 })
    }

    func testGroupsAndDatasetsAreNotConfused() throws {
        let path = tmp.file("kinds.h5")
        try H5File.writeAtomically(to: path) { f in try f.createDataset("g/d", data: [Float(1)]) }
        let f = try H5File.open(path)
        XCTAssertThrowsError(try f.dataset("g"))
        XCTAssertThrowsError(try f.group("g/d"))
        XCTAssertFalse(f.exists("g/nope/deeper"))
        XCTAssertTrue(f.exists("g/d"))
    }
}

final class HDF5AtomicWriteTests: XCTestCase {
    struct Boom: Error {}

    func testFailedWriteLeavesThePreviousFileIntactAndNoTemporaryFiles() throws {
        let tmp = try TempDir("atomic")
        defer { tmp.remove() }
        let path = tmp.file("model.weights.h5")
        try H5File.writeAtomically(to: path) { f in try f.createDataset("w", data: [Float](repeating: 1, count: 100)) }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        XCTAssertThrowsError(try H5File.writeAtomically(to: path) { f in
            try f.createDataset("w", data: [Float](repeating: 2, count: 50))  // half-written new content…
            throw Boom()                                                      // …then a failure midway
        }) { XCTAssertTrue($0 is Boom) }

        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        XCTAssertEqual(try H5File.open(path, requireComplete: true).dataset("w").read(as: Float.self),
                       [Float](repeating: 1, count: 100))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path), ["model.weights.h5"])
    }

    func testAFileWithoutTheCompletionMarkIsRefusedWhenCompletenessIsRequired() throws {
        let tmp = try TempDir("partial")
        defer { tmp.remove() }
        let path = tmp.file("partial.h5")
        do {
            let f = try H5File.create(path)
            try f.createDataset("w", data: [Float(1)])
            try f.close()
        }
        XCTAssertNoThrow(try H5File.open(path))
        XCTAssertThrowsError(try H5File.open(path, requireComplete: true)) { e in
            XCTAssertEqual((e as? HDF5Error)?.kind, .incomplete)
        }
    }

    func testWritingIntoAMissingFolderFailsCleanly() throws {
        XCTAssertThrowsError(try H5File.writeAtomically(to: "/nonexistent-folder-rd/x.h5") { _ in }) { e in
            XCTAssertTrue("\(e)".contains("does not exist"), "\(e)")
        }
    }

    func testFilesAreWrittenWithChecksumsAndV110Bounds() throws {
        // h5py or h5dump are not dependencies; check the on-disk bytes instead: the Fletcher-32
        // filter's name is stored in each dataset's pipeline message, and a V110 file has a
        // version-3 superblock (byte 8 after the signature).
        let tmp = try TempDir("fmt")
        defer { tmp.remove() }
        let path = tmp.file("f.h5")
        try H5File.writeAtomically(to: path) { f in try f.createDataset("w", data: [Float](repeating: 3, count: 10)) }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(Array(bytes[0 ..< 8]), [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a])
        XCTAssertEqual(bytes[8], 3, "superblock version")
    }
}
