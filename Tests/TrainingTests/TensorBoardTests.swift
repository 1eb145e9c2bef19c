import XCTest
import Foundation
@testable import HDF5
@testable import RNN
import TestSupport
@_spi(Testing) @testable import Training

/// An event-file reader written independently of the product's writer: a bitwise CRC-32C (the
/// product uses a table) and a hand-rolled protobuf decoder. It throws on a bad length or data CRC,
/// a truncated record, or a malformed message.
enum EventReader {
    struct Value: Equatable {
        var tag: String
        var simple: Float?
        var text: String?
        var plugin: String?
    }
    struct Event {
        var wallTime: Double = 0
        var step: Int64 = 0
        var fileVersion: String?
        var values: [Value] = []
    }
    struct Damaged: Error, CustomStringConvertible { let description: String }

    static func crc32c<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = ~0
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0 ..< 8 { crc = (crc >> 1) ^ (0x82F6_3B78 & (0 &- (crc & 1))) }
        }
        return ~crc
    }
    static func masked<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        let c = crc32c(bytes)
        return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
    }

    private static func le<T: FixedWidthInteger>(_ b: ArraySlice<UInt8>, _ type: T.Type) -> T {
        b.reversed().reduce(T(0)) { $0 << 8 | T($1) }
    }

    static func records(_ file: [UInt8]) throws -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = [], i = 0
        while i < file.count {
            guard i + 12 <= file.count else { throw Damaged(description: "truncated header at \(i)") }
            let lenBytes = file[i ..< i + 8]
            guard le(file[i + 8 ..< i + 12], UInt32.self) == masked(lenBytes) else { throw Damaged(description: "length CRC at \(i)") }
            let n = Int(le(lenBytes, UInt64.self))
            guard i + 12 + n + 4 <= file.count else { throw Damaged(description: "truncated record at \(i)") }
            let data = file[i + 12 ..< i + 12 + n]
            guard le(file[i + 12 + n ..< i + 16 + n], UInt32.self) == masked(data) else { throw Damaged(description: "data CRC at \(i)") }
            out.append(data)
            i += 16 + n
        }
        return out
    }

    /// (field, wire type, varint value or bytes) of each field of a message.
    static func fields(_ m: ArraySlice<UInt8>) throws -> [(Int, Int, UInt64, ArraySlice<UInt8>)] {
        var out: [(Int, Int, UInt64, ArraySlice<UInt8>)] = []
        var i = m.startIndex
        func varint() throws -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard i < m.endIndex, shift < 64 else { throw Damaged(description: "bad varint") }
                let b = m[i]; i += 1
                v |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return v }
                shift += 7
            }
        }
        while i < m.endIndex {
            let key = try varint()
            let field = Int(key >> 3), wire = Int(key & 7)
            switch wire {
            case 0: out.append((field, 0, try varint(), []))
            case 1, 5:
                let n = wire == 1 ? 8 : 4
                guard i + n <= m.endIndex else { throw Damaged(description: "short fixed field") }
                out.append((field, wire, le(m[i ..< i + n], UInt64.self), m[i ..< i + n])); i += n
            case 2:
                let n = Int(try varint())
                guard n >= 0, i + n <= m.endIndex else { throw Damaged(description: "short bytes field") }
                out.append((field, 2, UInt64(n), m[i ..< i + n])); i += n
            default: throw Damaged(description: "wire type \(wire)")
            }
        }
        return out
    }

    static func event(_ record: ArraySlice<UInt8>) throws -> Event {
        var e = Event()
        for (f, _, v, b) in try fields(record) {
            switch f {
            case 1: e.wallTime = Double(bitPattern: v)
            case 2: e.step = Int64(bitPattern: v)
            case 3: e.fileVersion = String(decoding: b, as: UTF8.self)
            case 5:
                for (sf, _, _, vb) in try fields(b) where sf == 1 {
                    var value = Value(tag: "")
                    for (vf, _, vv, vbytes) in try fields(vb) {
                        switch vf {
                        case 1: value.tag = String(decoding: vbytes, as: UTF8.self)
                        case 2: value.simple = Float(bitPattern: UInt32(truncatingIfNeeded: vv))
                        case 9:
                            for (mf, _, _, mb) in try fields(vbytes) where mf == 1 {
                                for (pf, _, _, pb) in try fields(mb) where pf == 1 { value.plugin = String(decoding: pb, as: UTF8.self) }
                            }
                        case 8:
                            for (tf, _, _, tb) in try fields(vbytes) where tf == 8 { value.text = String(decoding: tb, as: UTF8.self) }
                        default: break
                        }
                    }
                    e.values.append(value)
                }
            default: break
            }
        }
        return e
    }

    /// Every event of every file in `directory` (each file must start with its file_version).
    static func read(directory: String) throws -> [[Event]] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("events.out.tfevents.") }.sorted()
        return try names.map { name in
            let events = try records([UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))).map(event)
            guard events.first?.fileVersion == "brain.Event:2" else { throw Damaged(description: "\(name): no file_version first") }
            return events
        }
    }
}

final class TensorBoardTests: XCTestCase {
    var tmp: TempDir!
    override func setUpWithError() throws { tmp = try TempDir("tb") }
    override func tearDown() { tmp.remove() }

    let epochTags = ["epoch_loss", "epoch_acc", "epoch_val_loss", "epoch_val_acc", "epoch_seconds", "epoch_mpi_share",
                     "epoch_learning_rate"]

    func testCRC32CKnownAnswerAndAgreementWithTheBitwiseForm() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)   // the standard check value
        var g = SeededGenerator(seed: 4)
        for n in [0, 1, 7, 64, 1000] {
            let bytes = (0 ..< n).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            XCTAssertEqual(CRC32C.masked(bytes), EventReader.masked(bytes), "\(n) bytes")
        }
    }

    /// (tag, step) of every scalar and text event, over all files.
    private func tagSteps(_ files: [[EventReader.Event]]) -> [String: [Int64]] {
        var out: [String: [Int64]] = [:]
        for e in files.joined() { for v in e.values { out[v.tag, default: []].append(e.step) } }
        return out
    }

    private func trainer(_ c: TrainConfig, dir: String, tensorboard: String, every: Int) throws -> Trainer {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let t = try Trainer(config: c, comm: .single(), files: RunFiles(directory: dir), metadata: toyMetadata(c))
        return t
    }

    func testARunLogsEveryTagAtItsStepsAndTheCSVMatchesTheHistory() throws {
        let rows = toyRows(160)
        let c = toyConfig(epochs: 2)                    // 8 batches per epoch: steps 1…16
        let dir = tmp.file("run"), tb = tmp.file("run/tensorboard")
        let t = try trainer(c, dir: dir, tensorboard: tb, every: 3)
        t.observers.append(try TensorBoardLogger(directory: tb, every: 3, config: c, startStep: 0))
        try t.run(source: rows)

        let files = try EventReader.read(directory: tb)
        XCTAssertEqual(files.count, 1)
        let steps = tagSteps(files)
        XCTAssertEqual(steps["batch_loss"], [3, 6, 9, 12, 15])
        XCTAssertEqual(steps["learning_rate"], [3, 6, 9, 12, 15])
        for tag in epochTags { XCTAssertEqual(steps[tag], [0, 1], tag) }
        XCTAssertEqual(steps["config"], [0])
        let events = files[0]
        let config = events.flatMap(\.values).first { $0.tag == "config" }
        XCTAssertEqual(config?.plugin, "text")
        XCTAssertEqual(config?.text, c.json())
        // The values are the history's (as Float).
        let valLoss = events.filter { $0.values.first?.tag == "epoch_val_loss" }.map { $0.values[0].simple }
        XCTAssertEqual(valLoss, t.history.records.map { Float($0.valLoss) })
        let lr = events.flatMap(\.values).filter { $0.tag == "learning_rate" }.map(\.simple)
        XCTAssertEqual(Set(lr), [Float(c.learningRate)])

        // history.csv: Keras CSVLogger's columns first, epochs 0-based, the history's values exactly.
        let csv = try String(contentsOfFile: dir + "/history.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.first, "epoch,acc,learning_rate,loss,val_acc,val_loss,seconds,samples_per_second,mpi_share")
        XCTAssertEqual(csv.count, 3)
        for (i, line) in csv.dropFirst().enumerated() {
            let f = line.split(separator: ",").map(String.init)
            let r = t.history.records[i]
            XCTAssertEqual(f[0], "\(i)")
            XCTAssertEqual([Double(f[1]), Double(f[2]), Double(f[3]), Double(f[4]), Double(f[5])],
                           [r.acc, r.learningRate, r.loss, r.valAcc, r.valLoss])
            XCTAssertEqual(r.learningRate, c.learningRate)
        }
    }

    /// A run that dies mid-epoch (here: the injected fault at step 7, after the checkpoint at step 4)
    /// leaves no event past its checkpoint; resumed, every (tag, step) appears exactly once over the
    /// two files, as in an uninterrupted run, and history.csv has each epoch once.
    func testAResumedRunWritesNoStepTwice() throws {
        let rows = toyRows(160)
        var c = toyConfig(epochs: 2)
        c.checkpointEvery = 4
        let dir = tmp.file("resume"), tb = tmp.file("resume/tb")
        let first = try trainer(c, dir: dir, tensorboard: tb, every: 1)
        first.observers.append(try TensorBoardLogger(directory: tb, every: 1, config: c, startStep: 0))
        first.gradientFault = GradientFault(value: .nan, rank: 0, step: 7)
        XCTAssertThrowsError(try first.run(source: rows))
        let before = tagSteps(try EventReader.read(directory: tb))
        XCTAssertEqual(before["batch_loss"], [1, 2, 3, 4], "nothing past the checkpoint at step 4 reached the file")

        let ckpt = try Checkpoint.read(from: dir + "/checkpoint.h5")
        let second = try trainer(c, dir: dir, tensorboard: tb, every: 1)
        try second.restore(ckpt)
        second.observers.append(try TensorBoardLogger(directory: tb, every: 1, config: c, startStep: second.optimizer.iterations))
        try second.run(source: rows)

        let files = try EventReader.read(directory: tb)
        XCTAssertEqual(files.count, 2)
        let steps = tagSteps(files)
        XCTAssertEqual(steps["batch_loss"], Array(1 ... 16))
        for tag in epochTags { XCTAssertEqual(steps[tag], [0, 1], tag) }
        XCTAssertEqual(steps["config"], [0, 4], "the resumed run says where it started")
        let csv = try String(contentsOfFile: dir + "/history.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.dropFirst().map { $0.split(separator: ",")[0] }, ["0", "1"])
    }

    func testTheReaderRejectsADamagedOrTruncatedFile() throws {
        let tb = tmp.file("dmg")
        let w = try TensorBoardWriter(directory: tb)
        for s in 1 ... 5 { w.scalar("x", Double(s), step: s) }
        try w.flush()
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: w.path)))
        XCTAssertEqual(try EventReader.records(good).count, 6)
        for offset in [3, 10, 20, good.count / 2, good.count - 1] {
            var bad = good
            bad[offset] ^= 0x20
            XCTAssertThrowsError(try EventReader.records(bad), "flipped byte \(offset)")
        }
        XCTAssertThrowsError(try EventReader.records(Array(good.dropLast(3))))
    }
}
