import XCTest
@testable import HDF5
import TestSupport
import CHDF5

/// Damaged files are read by the real executable (`rnn-dist inspect`, which opens every object and
/// reads every byte of data) in a child process with a timeout, so a crash or a hang is detected.
final class MalformedFileTests: XCTestCase {
    var tmp: TempDir!
    override func setUpWithError() throws {
        tmp = try TempDir("malformed")
        guard FileManager.default.isExecutableFile(atPath: Subprocess.rnnDist) else {
            throw XCTSkip("rnn-dist is not built at \(Subprocess.rnnDist): run `swift build` first")
        }
    }
    override func tearDown() { tmp.remove() }

    /// A file like the ones rnn-dist writes: nested groups, several dtypes, attributes, a string list.
    func writeSample(_ path: String) throws {
        try H5File.writeAtomically(to: path) { f in
            try f.setAttribute("format", "rnn-dist-test-sample")   // no kind inspect knows: generic checks only
            try f.setAttribute("num_words", 100)
            try f.createDataset("train/x", shape: [40, 12], data: (0 ..< 480).map { Int32($0 % 97) }, chunkRows: 8)
            try f.createDataset("train/y", data: (0 ..< 40).map { Int8($0 % 2) })
            try f.createDataset("layers/lstm/cell/vars/0", shape: [8, 16], data: (0 ..< 128).map { Float($0) / 128 })
            try f.writeStringList("vocab", (0 ..< 50).map { "word\($0)" })
            try f.group("layers").setAttribute("config", #"{"kind":"lstm"}"#)
        }
    }

    struct Outcome { var clean = 0; var accepted = 0; var failures: [String] = [] }

    /// Runs inspect on `path`; a crash, hang, or an error that is not one line is a failure.
    func check(_ path: String, label: String, into o: inout Outcome) throws {
        let r = try Subprocess.rnnDist(["inspect", path], timeout: 20)
        if r.timedOut { o.failures.append("\(label): hang"); return }
        if r.signaled { o.failures.append("\(label): crashed with signal \(r.status)"); return }
        if r.status == 0 { o.accepted += 1; return }
        let lines = r.stderr.split(separator: "\n")
        if r.status == 1, lines.count == 1, lines[0].hasPrefix("rnn-dist: error: ") { o.clean += 1 }
        else { o.failures.append("\(label): status \(r.status), stderr: \(r.stderr.prefix(300))") }
    }

    func testGarbageEmptyAndTruncatedFilesFailCleanly() throws {
        let good = tmp.file("good.h5")
        try writeSample(good)
        let r0 = try Subprocess.rnnDist(["inspect", good])
        XCTAssertEqual(r0.status, 0, r0.stderr)

        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        var o = Outcome()
        let empty = tmp.file("empty.h5")
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        try check(empty, label: "empty", into: &o)
        var rng = SystemRandomNumberGenerator()
        let garbage = tmp.file("garbage.h5")
        try Data((0 ..< 4096).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }).write(to: URL(fileURLWithPath: garbage))
        try check(garbage, label: "garbage", into: &o)
        let sigOnly = tmp.file("sig.h5")
        try Data(bytes.prefix(8) + [UInt8](repeating: 0, count: 100)).write(to: URL(fileURLWithPath: sigOnly))
        try check(sigOnly, label: "signature only", into: &o)
        let cuts = [1, 8, 48, 100, 512, 1024, 2048, bytes.count / 2, bytes.count - 100, bytes.count - 1]
        for cut in cuts where cut < bytes.count {
            let p = tmp.file("cut\(cut).h5")
            try Data(bytes.prefix(cut)).write(to: URL(fileURLWithPath: p))
            try check(p, label: "truncated at \(cut)", into: &o)
        }
        XCTAssertEqual(o.failures, [])
        XCTAssertEqual(o.accepted, 0, "a damaged file was reported valid")
        print("malformed files: \(o.clean) clean errors (empty, garbage, signature-only, \(cuts.count) truncations)")
    }

    /// Flips one byte at many offsets spread over the whole file. Every flip must give a clean error,
    /// or — where it hits a byte nobody reads (padding, free space) — a file that still reads back
    /// exactly the original data.
    func testBitFlipsAnywhereGiveATypedErrorOrIdenticalData() throws {
        let good = tmp.file("good.h5")
        try writeSample(good)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        let count = Int(ProcessInfo.processInfo.environment["RNN_DIST_FLIPS"] ?? "") ?? 200
        var offsets = Set<Int>()
        var state: UInt64 = 0x9E3779B97F4A7C15
        while offsets.count < min(count, bytes.count) {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            offsets.insert(Int(state >> 33) % bytes.count)
        }
        var o = Outcome()
        var unchanged = 0
        for off in offsets.sorted() {
            var b = bytes
            b[off] ^= 0x5A
            let p = tmp.file("flip.h5")
            try Data(b).write(to: URL(fileURLWithPath: p))
            let before = o.accepted
            try check(p, label: "flip at \(off)", into: &o)
            if o.accepted > before {
                // Accepted: then every value must be the original one (no silent change).
                if (try? sameContent(p, as: good)) == true { unchanged += 1 } else {
                    try? FileManager.default.copyItem(atPath: p, toPath: "/tmp/flip-debug-\(off).h5")
                    o.failures.append("flip at \(off): data changed silently") }
            }
        }
        XCTAssertEqual(o.failures, [])
        print("bit flips: \(offsets.count) offsets of \(bytes.count) bytes: \(o.clean) clean errors, \(unchanged) harmless (unread bytes)")
        XCTAssertGreaterThan(o.clean, offsets.count / 3, "most flips should be detected")
    }

    func sameContent(_ a: String, as b: String) throws -> Bool {
        let fa = try H5File.open(a), fb = try H5File.open(b)
        guard try fa.readStringList("vocab") == fb.readStringList("vocab") else { return false }
        for n in ["train/x"] { guard try fa.dataset(n).read(as: Int32.self) == fb.dataset(n).read(as: Int32.self) else { return false } }
        guard try fa.dataset("train/y").read(as: Int8.self) == fb.dataset("train/y").read(as: Int8.self) else { return false }
        guard try fa.dataset("layers/lstm/cell/vars/0").read(as: Float.self) == fb.dataset("layers/lstm/cell/vars/0").read(as: Float.self) else { return false }
        guard try fa.stringAttribute("format") == fb.stringAttribute("format"),
              try fa.intAttribute("num_words") == fb.intAttribute("num_words"),
              try fa.group("layers").stringAttribute("config") == fb.group("layers").stringAttribute("config") else { return false }
        return true
    }

    /// Two writes of one layout (the same objects, sizes and attribute lengths; other values).
    func writeVariant(_ path: String, _ v: Int) throws {
        try H5File.writeAtomically(to: path) { f in
            try f.setAttribute("format", "rnn-dist-test-sample")
            try f.setAttribute("num_words", 100 + v)
            try f.createDataset("layers/embedding/vars/0", shape: [64, 16], data: (0 ..< 1024).map { Float($0 + v) / 7 }, chunkRows: 16)
            try f.createDataset("layers/lstm/cell/vars/0", shape: [16, 64], data: (0 ..< 1024).map { Float($0 * (v + 2)) / 9 })
            try f.createDataset("layers/dense/vars/0", shape: [16, 1], data: (0 ..< 16).map { Float($0 - v) })
            try f.writeStringList("vocab", (0 ..< 50).map { "w\(v)-\($0)" })
            try f.group("layers").setAttribute("config", #"{"kind":"lstm","seed":\#(v)}"#)
        }
    }

    struct Values: Equatable {
        var floats: [[Float]], vocab: [String], format: String, words: Int64, config: String
        init(_ path: String) throws {
            let f = try H5File.open(path, requireComplete: true)
            floats = try ["layers/embedding/vars/0", "layers/lstm/cell/vars/0", "layers/dense/vars/0"].map { try f.dataset($0).read(as: Float.self) }
            vocab = try f.readStringList("vocab")
            format = try f.stringAttribute("format")
            words = try f.intAttribute("num_words")
            config = try f.group("layers").stringAttribute("config")
        }
    }

    /// One file copied over another of the same layout in place (`dd conv=notrunc`, `rsync
    /// --inplace`), stopped at any byte: each dataset still matches its own checksum, but the file
    /// is no write's. Every such file is refused, or reads as one whole write (the cut past every
    /// byte that differs), never as a mix.
    func testPartsOfTwoWritesAreRefusedNotMixed() throws {
        let a = tmp.file("a.h5"), b = tmp.file("b.h5")
        try writeVariant(a, 1)
        try writeVariant(b, 2)
        let (va, vb) = (try Values(a), try Values(b))
        XCTAssertNotEqual(va, vb)
        let ba = [UInt8](try Data(contentsOf: URL(fileURLWithPath: a))), bb = [UInt8](try Data(contentsOf: URL(fileURLWithPath: b)))
        XCTAssertEqual(ba.count, bb.count, "the two writes are laid out alike")
        var refused = 0, whole = 0, mixed: [Int] = [], firstRefused: Int?
        let p = tmp.file("mixed.h5")
        for cut in stride(from: 0, through: ba.count, by: 32) {
            try Data(bb.prefix(cut) + ba.suffix(from: cut)).write(to: URL(fileURLWithPath: p))
            guard let v = try? Values(p) else { refused += 1; firstRefused = firstRefused ?? cut; continue }
            if v == va || v == vb { whole += 1 } else { mixed.append(cut) }
        }
        XCTAssertEqual(mixed, [], "read as a mix of the two writes at these cuts")
        XCTAssertGreaterThan(refused, 50, "refused \(refused), whole \(whole)")
        // What inspect says of such a file: damaged, exit 1, one line.
        let cut = try XCTUnwrap(firstRefused)
        try Data(bb.prefix(cut) + ba.suffix(from: cut)).write(to: URL(fileURLWithPath: p))
        let r = try Subprocess.rnnDist(["inspect", p], timeout: 20)
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        print("copies over in place: \(refused) refused, \(whole) whole, \(mixed.count) mixed, of \(ba.count / 32 + 1) cuts")
    }

    func testMissingAndUnreadablePaths() throws {
        for (p, expect) in [(tmp.file("nope.h5"), "missing"), (tmp.path, "not a regular file")] {
            let r = try Subprocess.rnnDist(["inspect", p])
            XCTAssertEqual(r.status, 1)
            XCTAssertTrue(r.stderr.contains(expect), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        }
    }

    /// Links rnn-dist never writes, crafted with the C library: a hard-link cycle, a soft link and an
    /// external link to a FIFO (following it would block forever). Each is one clean error, fast.
    func testLinkCyclesAndSoftOrExternalLinksAreRefused() throws {
        let fifo = tmp.file("fifo")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        for kind in ["cycle", "soft", "external"] {
            let p = tmp.file("\(kind).h5")
            try H5File.writeAtomically(to: p) { f in
                let g = try f.createGroup("g")
                try g.createDataset("d", data: [Float(1)])
            }
            let f = H5Fopen(p, rd_h5f_acc_rdwr(), rd_h5p_default())
            XCTAssertGreaterThanOrEqual(f, 0)
            switch kind {
            case "cycle": XCTAssertGreaterThanOrEqual(H5Lcreate_hard(f, "/g", f, "/g/loop", rd_h5p_default(), rd_h5p_default()), 0)
            case "soft": XCTAssertGreaterThanOrEqual(H5Lcreate_soft("/g/d", f, "/g/alias", rd_h5p_default(), rd_h5p_default()), 0)
            default: XCTAssertGreaterThanOrEqual(H5Lcreate_external(fifo, "/x", f, "/g/ext", rd_h5p_default(), rd_h5p_default()), 0)
            }
            H5Fclose(f)
            let r = try Subprocess.rnnDist(["inspect", p], timeout: 20)
            XCTAssertFalse(r.timedOut || r.signaled, "\(kind): hang or crash")
            XCTAssertEqual(r.status, 1, "\(kind): \(r.stdout.suffix(300))")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(kind == "cycle" ? "cycle" : "soft or external link"), "\(kind): \(r.stderr)")
        }
    }

    /// A chunk zeroed together with its Fletcher-32 checksum (a zero-filled disk block) passes HDF5's
    /// check — the Fletcher-32 of zeros is 0 — and read as zeros, exit 0: each dataset's content
    /// checksum (`rnn_dist_checksum`) now makes it an error, in `read`, a full `readRows` and inspect.
    func testAChunkZeroedWithItsChecksumIsAnError() throws {
        let p = tmp.file("zeroed.h5")
        try H5File.writeAtomically(to: p) { f in
            try f.setAttribute("format", "rnn-dist-test-sample")
            try f.createDataset("w", shape: [64, 4], data: (0 ..< 256).map { Float($0) / 7 + 1 }, chunkRows: 16)
        }
        // The second chunk (rows 16–31), its data and checksum.
        XCTAssertEqual(try zeroStoredChunk(of: "w", containingRow: 16, in: p), 16 * 4 * 4 + 4, "a chunk of 16 × 4 floats and its Fletcher-32")
        let f = try H5File.open(p)
        let d = try f.dataset("w")
        XCTAssertThrowsError(try d.read(as: Float.self)) { XCTAssertTrue("\($0)".contains("do not match their checksum"), "\($0)") }
        XCTAssertThrowsError(try d.readRows(0 ..< 64, as: Float.self))
        XCTAssertEqual(try d.readRows(0 ..< 16, as: Float.self).count, 64, "a part is read unchecked (its chunks pass)")
        let r = try Subprocess.rnnDist(["inspect", p], timeout: 20)
        XCTAssertEqual(r.status, 1, r.stdout)
        XCTAssertTrue(r.stderr.contains("/w: its values do not match their checksum"), r.stderr)
    }

    /// A root object header whose checksum fails was reported as "incomplete file (no 'complete'
    /// mark)" by every reader that asks for the mark (eval, predict, train --resume): the header's
    /// damage is named instead, as the library reports it.
    func testADamagedRootHeaderIsNotCalledIncomplete() throws {
        let p = tmp.file("root.h5")
        try writeSample(p)
        var info = H5O_info_t()
        do {
            let f = H5Fopen(p, rd_h5f_acc_rdonly(), rd_h5p_default())
            defer { H5Fclose(f) }
            XCTAssertGreaterThanOrEqual(H5Oget_info2(f, &info, UInt32(H5O_INFO_BASIC)), 0)
        }
        let h = try XCTUnwrap(FileHandle(forUpdatingAtPath: p))
        let at = UInt64(info.addr) + 12   // past the prefix, inside the first chunk's messages
        try h.seek(toOffset: at)
        let byte = try XCTUnwrap(h.readData(ofLength: 1).first)
        try h.seek(toOffset: at)
        try h.write(contentsOf: Data([byte ^ 0x10]))
        try h.close()
        XCTAssertThrowsError(try H5File.open(p, requireComplete: true)) { e in
            XCTAssertFalse("\(e)".contains("incomplete"), "\(e)")
            XCTAssertTrue("\(e)".contains("checksum"), "\(e)")
        }
    }

    /// A root group whose Link Info message points at a fractal heap that is not there, its header's
    /// checksum recomputed: HDF5 1.10.8 trusts it and crashed (SIGSEGV in H5Literate, exit 139). The
    /// fault guard makes that one line naming the file, exit 2; the same file is still refused.
    func testMetadataThatCrashesHDF5IsOneLineAndExitStatus2() throws {
        // HDF5 1.10 (Debian 12's 1.10.8, this project's) crashes on all three; a later one may refuse
        // them cleanly (exit 1), which passes too.
        var major: UInt32 = 0, minor: UInt32 = 0, release: UInt32 = 0
        XCTAssertGreaterThanOrEqual(H5get_libversion(&major, &minor, &release), 0)
        var crashed = 0
        for address: UInt64 in [0x100, 0x30, 0xFFFF_0000] {
            let p = tmp.file("crafted-\(address).h5")
            try writeSample(p)
            XCTAssertTrue(try redirectLinkHeap(in: p, to: address), "no root Link Info message found")
            let r = try Subprocess.rnnDist(["inspect", p], timeout: 20)
            XCTAssertFalse(r.timedOut, "hang")
            XCTAssertFalse(r.signaled, "crashed with signal \(r.status): \(r.stderr.prefix(300))")
            XCTAssertEqual(r.status, r.stderr.contains("crashed") ? 2 : 1, r.stderr)
            if r.status == 2 { crashed += 1 }
            let lines = r.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, r.stderr.prefix(600) + "")
            XCTAssertTrue(lines.first?.hasPrefix("rnn-dist: error: \(p): ") ?? false, r.stderr)
        }
        if (major, minor) < (1, 12) {
            XCTAssertEqual(crashed, 3, "HDF5 \(major).\(minor).\(release) no longer crashes on them?")
            // RNN_DIST_FAULT_GUARD=0: the crash itself (a backtrace, for a report).
            var env = ProcessInfo.processInfo.environment
            env["RNN_DIST_FAULT_GUARD"] = "0"
            env["SWIFT_BACKTRACE"] = "enable=no"
            let off = try Subprocess.run(Subprocess.rnnDist, ["inspect", tmp.file("crafted-256.h5")], environment: env, timeout: 20)
            XCTAssertTrue(off.signaled && off.status == SIGSEGV, "status \(off.status), signaled \(off.signaled): \(off.stderr.prefix(300))")
        }
        // A name with a line break is still one line (the break as a space), as other errors write it.
        let broken = tmp.file("two\nlines.h5")
        try writeSample(broken)
        XCTAssertTrue(try redirectLinkHeap(in: broken))
        let r = try Subprocess.rnnDist(["inspect", broken], timeout: 20)
        XCTAssertFalse(r.signaled || r.timedOut, r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        if r.status == 2 { XCTAssertTrue(r.stderr.contains("two lines.h5: the HDF5 library crashed"), r.stderr) }
        // The guard claims only faults with HDF5 on the stack: an intact file still reads.
        let good = tmp.file("good.h5")
        try writeSample(good)
        XCTAssertEqual(try Subprocess.rnnDist(["inspect", good], timeout: 20).status, 0)
    }

    /// A file whose writer was killed before closing it (a temporary checkpoint of a run killed
    /// mid-write) still has HDF5's open-for-write mark in its superblock: named incomplete, not
    /// HDF5's "file is already open for write (may use <h5clear file> …)".
    func testAFileItsWriterNeverClosedIsCalledIncomplete() throws {
        let p = tmp.file("writing.h5"), copy = tmp.file("killed.h5")
        let f = try H5File.create(p)
        try f.setAttribute("format", "rnn-dist-test-sample")
        try f.flush()
        try FileManager.default.copyItem(atPath: p, toPath: copy)   // the bytes a kill -9 would leave
        try f.close()
        XCTAssertThrowsError(try H5File.open(copy)) { e in
            XCTAssertEqual("\(e)", "\(copy): \(H5File.unclosedDetail)")
        }
        let r = try Subprocess.rnnDist(["inspect", copy], timeout: 20)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "rnn-dist: error: \(copy): \(H5File.unclosedDetail)\n")
    }

    /// The content checksum checks whole reads only; the rows that training and evaluation read in
    /// parts are checked by block (`rnn_dist_block_checksums`): every block a read completes, also one
    /// begun by the previous read of the same dataset, and none that a read leaves partly unread.
    func testAZeroedChunkIsFoundByTheReadsOfRowsThatCompleteItsBlocks() throws {
        let p = tmp.file("blocks.h5")
        try H5File.writeAtomically(to: p) { f in
            try f.setAttribute("format", "rnn-dist-test-sample")
            try f.createDataset("x", shape: [100, 4], data: (0 ..< 400).map { Int32($0 + 1) }, chunkRows: 16, blockChecksums: true)
        }
        XCTAssertEqual(H5Dataset.blockRows(rows: 100), 8)
        XCTAssertEqual(H5Dataset.blockRows(rows: 4096 * 8 + 1), 16, "at most 4,096 blocks")
        do {
            let d = try H5File.open(p).dataset("x")
            XCTAssertEqual(try d.readRows(0 ..< 100, as: Int32.self).count, 400)
            XCTAssertEqual(try d.readRows(5 ..< 99, as: Int32.self).count, 376, "intact: every block passes")
        }
        try zeroStoredChunk(of: "x", containingRow: 16, in: p)   // rows 16–31: blocks 2 and 3
        func reads(_ ranges: [Range<Int>]) throws -> String {
            let d = try H5File.open(p).dataset("x")
            do { for r in ranges { _ = try d.readRows(r, as: Int32.self) }; return "read" } catch { return "\(error)" }
        }
        XCTAssertEqual(try reads([0 ..< 16, 32 ..< 100]), "read", "blocks outside the chunk")
        XCTAssertTrue(try reads([10 ..< 30]).contains("/x: rows 16..<24 do not match their checksum"))
        // A block begun by one read and finished by the next (slabs or groups off the blocks' edges).
        XCTAssertEqual(try reads([12 ..< 20]), "read")
        XCTAssertTrue(try reads([12 ..< 20, 20 ..< 26]).contains("rows 16..<24 do not match"))
        XCTAssertEqual(try reads([12 ..< 20, 21 ..< 24]), "read", "not a continuation: the block is not checked")
        // Sets of rows are checked run by run.
        do {
            let d = try H5File.open(p).dataset("x")
            XCTAssertThrowsError(try d.readRows([1, 2, 24, 25, 26, 27, 28, 29, 30, 31], as: Int32.self)) {
                XCTAssertTrue("\($0)".contains("rows 24..<32 do not match"), "\($0)")
            }
            XCTAssertEqual(try d.readRows([1, 17, 30], as: Int32.self).count, 12, "no block completed: unchecked")
        }
        // Block attributes that do not fit the rows are refused, never trusted (nor overflowed).
        for rows in [Int64.max, 0, 4] {
            let f = try H5File.open(p, writable: true)
            try f.dataset("x").setAttribute(H5Dataset.blockRowsAttribute, rows)
            try f.close()
            XCTAssertThrowsError(try H5File.open(p).dataset("x").readRows(40 ..< 48, as: Int32.self)) {
                XCTAssertTrue("\($0)".contains("block checksums of \(rows) rows do not fit its 100 rows"), "\($0)")
            }
        }
    }

    /// A format mark stored as a variable-length string (h5py's default for a str) is refused unread
    /// by eval and predict; inspect said "not a … file of rnn-dist: its objects only", exit 0.
    func testAFormatMarkThatCannotBeReadMakesInspectFail() throws {
        for object in [".", "rnn_dist"] {
            let p = tmp.file("vlen.h5")
            try H5File.writeAtomically(to: p) { f in try f.createGroup("rnn_dist") }
            do {
                let f = H5Fopen(p, rd_h5f_acc_rdwr(), rd_h5p_default())
                defer { H5Fclose(f) }
                let o = H5Oopen(f, object, rd_h5p_default())
                defer { H5Oclose(o) }
                let t = H5Tcopy(rd_h5t_c_s1())
                defer { H5Tclose(t) }
                XCTAssertGreaterThanOrEqual(H5Tset_size(t, -1), 0)   // H5T_VARIABLE
                let space = H5Screate(H5S_SCALAR)
                defer { H5Sclose(space) }
                let a = H5Acreate2(o, "format", t, space, rd_h5p_default(), rd_h5p_default())
                defer { H5Aclose(a) }
                "rnn-dist-weights".withCString { c in
                    var pointer: UnsafePointer<CChar>? = c
                    XCTAssertGreaterThanOrEqual(H5Awrite(a, t, &pointer), 0)
                }
            }
            let r = try Subprocess.rnnDist(["inspect", p], timeout: 20)
            XCTAssertEqual(r.status, 1, "\(object): \(r.stdout)")
            XCTAssertTrue(r.stderr.contains("@format: variable-length string attributes are not read"), r.stderr)
        }
    }

    /// A float type of the right size but another layout (here IEEE single with exponent bias 124:
    /// every value read ×8) was read as float32, converting silently; it is refused as unsupported.
    func testAFloatOfAnotherLayoutIsRefused() throws {
        let p = tmp.file("bias.h5")
        try H5File.writeAtomically(to: p) { f in try f.setAttribute("format", "rnn-dist-test-sample") }
        do {
            let f = H5Fopen(p, rd_h5f_acc_rdwr(), rd_h5p_default())
            defer { H5Fclose(f) }
            let t = H5Tcopy(rd_h5t_ieee_f32le())
            defer { H5Tclose(t) }
            XCTAssertGreaterThanOrEqual(H5Tset_ebias(t, 124), 0)
            var dims: [hsize_t] = [4]
            let space = H5Screate_simple(1, &dims, nil)
            defer { H5Sclose(space) }
            let d = H5Dcreate2(f, "/v", t, space, rd_h5p_default(), rd_h5p_default(), rd_h5p_default())
            XCTAssertGreaterThanOrEqual(d, 0)
            var values: [Float] = [1, 2, 3, 4]
            XCTAssertGreaterThanOrEqual(H5Dwrite(d, rd_h5t_native_float(), rd_h5s_all(), rd_h5s_all(), rd_h5p_default(), &values), 0)
            H5Dclose(d)
        }
        XCTAssertThrowsError(try H5File.open(p).dataset("v")) { XCTAssertTrue("\($0)".contains("unsupported element type"), "\($0)") }
    }
}
