import Foundation
import RNN
import POSIX

// TensorBoard's event files, written by hand (no protobuf library): a TFRecord stream of `Event`
// messages (tensorflow/core/util/event.proto). Each record is
//     uint64 length, uint32 masked CRC-32C of the length, data, uint32 masked CRC-32C of the data
// (little-endian), the mask being ((crc >> 15) | (crc << 17)) + 0xa282ead8. The fields used:
//     Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//     Summary { repeated Value value = 1; }
//     Value   { string tag = 1; float simple_value = 2; SummaryMetadata metadata = 9; TensorProto tensor = 8; }
//     SummaryMetadata { PluginData plugin_data = 1; }   PluginData { string plugin_name = 1; }
//     TensorProto { DataType dtype = 1 (DT_STRING = 7); TensorShapeProto tensor_shape = 2; repeated bytes string_val = 8; }

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses it.
public enum CRC32C {
    private static let table: [UInt32] = (0 ..< 256).map { i in
        var c = UInt32(i)
        for _ in 0 ..< 8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked form, so a CRC stored inside data does not look like a CRC of itself.
    static func masked<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        let c = checksum(bytes)
        return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
    }
}

/// The few protobuf encodings an `Event` needs (wire types 0 varint, 1 fixed64, 2 bytes, 5 fixed32).
struct ProtoWriter {
    private(set) var bytes: [UInt8] = []

    private mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    private mutating func key(_ field: Int, _ wire: UInt64) { varint(UInt64(field) << 3 | wire) }

    mutating func int64(_ field: Int, _ v: Int64) { key(field, 0); varint(UInt64(bitPattern: v)) }
    mutating func double(_ field: Int, _ v: Double) {
        key(field, 1)
        withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
    }
    mutating func float(_ field: Int, _ v: Float) {
        key(field, 5)
        withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
    }
    mutating func data(_ field: Int, _ v: [UInt8]) { key(field, 2); varint(UInt64(v.count)); bytes += v }
    mutating func string(_ field: Int, _ v: String) { data(field, Array(v.utf8)) }
    mutating func message(_ field: Int, _ build: (inout ProtoWriter) -> Void) {
        var m = ProtoWriter()
        build(&m)
        data(field, m.bytes)
    }
}

/// One TensorBoard event file (`events.out.tfevents.<time>.<host>.<pid>.<n>.v2`, as TensorFlow 2 names
/// them) in `directory`. Records are kept in memory until `flush`, which appends them with one write
/// and fsyncs: the trainer flushes right after each checkpoint, so a file never holds events past
/// the last checkpoint, and a run resumed from it (which starts a new file in the same folder)
/// writes no step twice.
public final class TensorBoardWriter {
    let path: String
    private var pending: [UInt8] = []
    private let fd: Int32

    init(directory: String, now: Date = Date()) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.invalid("\(directory): cannot create the TensorBoard folder (\(error.localizedDescription))")
        }
        // A new file each time (O_EXCL; a counter as TensorFlow's when the same process starts two
        // in one second): every file starts with its own file_version record.
        let stem = directory + "/events.out.tfevents.\(Int(now.timeIntervalSince1970)).\(hostName()).\(getpid())"
        var n = 0, fd: Int32 = -1, path = ""
        repeat {
            path = stem + ".\(n).v2"
            fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
            n += 1
        } while fd < 0 && errno == EEXIST && n < 1000
        guard fd >= 0 else {
            throw TrainingError.invalid("\(path): cannot create the TensorBoard event file (\(SystemError().description))")
        }
        self.path = path
        self.fd = fd
        var first = ProtoWriter()
        first.double(1, now.timeIntervalSince1970)
        first.string(3, "brain.Event:2")
        record(first.bytes)
        try flush()
    }

    deinit { close(fd) }

    /// A scalar (`Summary.Value.simple_value`) at `step`.
    func scalar(_ tag: String, _ value: Double, step: Int, at time: Date = Date()) {
        event(step: step, time: time) { v in
            v.string(1, tag)
            v.float(2, Float(value))
        }
    }

    /// A text summary (the text plugin: a scalar DT_STRING tensor) at `step`.
    func text(_ tag: String, _ value: String, step: Int, at time: Date = Date()) {
        event(step: step, time: time) { v in
            v.string(1, tag)
            v.message(9) { meta in meta.message(1) { plugin in plugin.string(1, "text") } }
            v.message(8) { tensor in
                tensor.int64(1, 7)                   // DT_STRING
                tensor.message(2) { _ in }           // scalar shape
                tensor.data(8, Array(value.utf8))
            }
        }
    }

    private func event(step: Int, time: Date, value: (inout ProtoWriter) -> Void) {
        var e = ProtoWriter()
        e.double(1, time.timeIntervalSince1970)
        e.int64(2, Int64(step))
        e.message(5) { summary in summary.message(1, value) }
        record(e.bytes)
    }

    private func record(_ data: [UInt8]) {
        let length = UInt64(data.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: length) { Array($0) }
        pending += lengthBytes
        withUnsafeBytes(of: CRC32C.masked(lengthBytes).littleEndian) { pending += $0 }
        pending += data
        withUnsafeBytes(of: CRC32C.masked(data).littleEndian) { pending += $0 }
    }

    /// Appends every pending record (one write) and fsyncs.
    func flush() throws {
        let whole = lseek(fd, 0, SEEK_END)
        let failed = TextFile.writeAll(fd, pending)
        guard failed == 0 else {
            // Back to the last whole record (a full disk left a record cut short, which readers stop at).
            if whole >= 0 { _ = ftruncate(fd, whole) }
            throw TrainingError.invalid("\(path): writing TensorBoard events failed (\(SystemError(failed).description))")
        }
        pending.removeAll(keepingCapacity: true)
        guard fsync(fd) == 0 else {
            throw TrainingError.invalid("\(path): fsync failed (\(SystemError().description))")
        }
    }
}

/// Follows a run for TensorBoard (rank 0): `batch_loss` and `learning_rate` every `every` steps
/// (step = the global batch index over the run, 1-based, as the optimizer counts), and per epoch
/// `epoch_loss`, `epoch_acc`, `epoch_val_loss`, `epoch_val_acc`, `epoch_seconds`, `epoch_mpi_share`,
/// `epoch_learning_rate`
/// (step = the epoch, 0-based, as Keras's TensorBoard callback writes them). Events reach the file
/// when a checkpoint has been written (see `TensorBoardWriter`).
public final class TensorBoardLogger: TrainingObserver {
    let writer: TensorBoardWriter
    let every: Int
    let config: TrainConfig
    /// The rate of a (0-based) step, as the trainer applies it (the schedule times any plateau factor).
    public var rate: ((Int) -> Double)?

    public init(directory: String, every: Int, config: TrainConfig, startStep: Int) throws {
        precondition(every >= 1, "log every must be at least 1")
        writer = try TensorBoardWriter(directory: directory)
        self.every = every
        self.config = config
        writer.text("config", config.json(), step: startStep)
        try writer.flush()
    }

    public func batchDone(epoch: Int, batch: Int, of batches: Int, step: Int, stats: BatchStats,
                          running: BatchStats, elapsed: Double) {
        guard step % every == 0 else { return }
        writer.scalar("batch_loss", stats.loss, step: step)
        writer.scalar("learning_rate", rate?(step - 1) ?? config.learningRate(atStep: step - 1), step: step)
    }

    public func epochDone(_ r: EpochRecord, epochs: Int) {
        let step = r.epoch - 1
        for (tag, value) in [("epoch_loss", r.loss), ("epoch_acc", r.acc), ("epoch_val_loss", r.valLoss),
                             ("epoch_val_acc", r.valAcc), ("epoch_seconds", r.seconds), ("epoch_mpi_share", r.mpiShare),
                             ("epoch_learning_rate", r.learningRate)] {
            writer.scalar(tag, value, step: step)
        }
    }

    public func wrote(_ path: String, what: String) throws {
        if what == "checkpoint" { try writer.flush() }
    }
}
