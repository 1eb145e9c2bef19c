import Foundation
import MPI
import POSIX

/// The rows a trainer or evaluator reads: token ids (rows, T) and labels.
///
/// The dataset file implements it (reading only the rows asked for); tests use `InMemoryRows`.
public protocol RowSource {
    /// Rows available.
    var rowCount: Int { get }
    /// T, ids per row.
    var maxlen: Int { get }
    /// Token ids (rows.count, T) row-major, in the order given, and labels 0/1.
    func read(rows: [Int]) throws -> (x: [Int32], y: [Float])
    /// A contiguous range of rows: their ids into `ids` (range.count × T, replacing what it held;
    /// its storage is reused when large enough) and their labels. Evaluation reads group after
    /// group into one buffer this way.
    func read(range: Range<Int>, into ids: inout [Int32]) throws -> [Float]
}

extension RowSource {
    public func read(range: Range<Int>, into ids: inout [Int32]) throws -> [Float] {
        let (x, y) = try read(rows: Array(range))
        ids = x
        return y
    }

    /// A contiguous range of rows.
    func read(range: Range<Int>) throws -> (x: [Int32], y: [Float]) {
        var ids = [Int32]()
        let y = try read(range: range, into: &ids)
        return (ids, y)
    }
}

/// Rows held in memory (tests, small data).
public struct InMemoryRows: RowSource {
    let x: [Int32]
    let y: [Float]
    public let maxlen: Int
    public var rowCount: Int { y.count }

    init(x: [Int32], y: [Float], maxlen: Int) {
        precondition(x.count == y.count * maxlen, "InMemoryRows: \(x.count) ids for \(y.count) rows of \(maxlen)")
        self.x = x; self.y = y; self.maxlen = maxlen
    }

    public func read(rows: [Int]) throws -> (x: [Int32], y: [Float]) {
        var xs = [Int32](); xs.reserveCapacity(rows.count * maxlen)
        var ys = [Float](); ys.reserveCapacity(rows.count)
        for r in rows {
            xs.append(contentsOf: x[(r * maxlen) ..< ((r + 1) * maxlen)])
            ys.append(y[r])
        }
        return (xs, ys)
    }
}

/// The first `rowCount` rows of another source, read once in slabs (the dataset file checks every
/// id and label as it reads) and then served from memory, with ids held as UInt16.
///
/// Why: the trainer reads random rows every batch, and each row read from the file decodes and
/// checksums its whole chunk: 2.0 ms of a SimpleRNN step of 11 ms at `-n 1` (measured). Held
/// here, the IMDB training split takes 2·T bytes a row: 25 MB for 25,000 rows of 500.
public struct PreloadedRows: RowSource {
    public let rowCount: Int
    public let maxlen: Int
    private let store: Store
    /// Whether the rows sit in one block shared by the ranks of this host.
    public var isShared: Bool { store.shared != nil }

    /// The largest vocabulary whose ids fit the UInt16 store.
    static let maxNumWords = Int(UInt16.max) + 1

    /// The ids (rows × T) and labels (rows), in memory of this process or in a host's shared block.
    final class Store {
        let ids: UnsafeMutablePointer<UInt16>
        let labels: UnsafeMutablePointer<Float>
        let shared: HostSharedMemory?

        init(rows: Int, maxlen: Int) {
            ids = .allocate(capacity: max(1, rows * maxlen))
            labels = .allocate(capacity: max(1, rows))
            shared = nil
        }

        init(block: HostSharedMemory, rows: Int, maxlen: Int) {
            ids = block.bytes.baseAddress!.bindMemory(to: UInt16.self, capacity: rows * maxlen)
            labels = (block.bytes.baseAddress! + Store.labelOffset(rows: rows, maxlen: maxlen)).bindMemory(to: Float.self, capacity: rows)
            shared = block
        }

        deinit {
            if shared == nil { ids.deallocate(); labels.deallocate() }
        }

        /// Bytes of the ids, rounded up to a multiple of 8 (where the labels start), and of the whole block.
        static func labelOffset(rows: Int, maxlen: Int) -> Int { (rows * maxlen * 2 + 7) / 8 * 8 }
        static func bytes(rows: Int, maxlen: Int) -> Int { labelOffset(rows: rows, maxlen: maxlen) + rows * 4 }

        /// Reads the first `rows` rows of `source` in slabs, checking every id.
        func fill(from source: RowSource, rows: Int, numWords: Int, slabRows: Int) throws {
            let T = source.maxlen
            var start = 0
            while start < rows {
                let end = min(rows, start + slabRows)
                let slab = try source.read(range: start ..< end)
                for (k, v) in slab.x.enumerated() {
                    // The dataset file checked 0 ≤ id < numWords as it read; other sources are checked here.
                    guard v >= 0 && Int(v) < numWords else {
                        throw TrainingError.invalid("row \(start + k / T), position \(k % T): token id \(v) is outside the vocabulary 0..<\(numWords)")
                    }
                    ids[start * T + k] = UInt16(truncatingIfNeeded: v)
                }
                for (k, label) in slab.y.enumerated() { labels[start + k] = label }
                start = end
            }
        }
    }

    /// Nil when the ids may not fit in 16 bits (`numWords` above 65,536): read from `source` then.
    public init?(_ source: RowSource, rows: Int, numWords: Int, slabRows: Int = 1024) throws {
        guard numWords <= Self.maxNumWords else { return nil }
        precondition(rows >= 0 && rows <= source.rowCount, "PreloadedRows: \(rows) of \(source.rowCount) rows")
        store = Store(rows: rows, maxlen: source.maxlen)
        try store.fill(from: source, rows: rows, numWords: numWords, slabRows: slabRows)
        rowCount = rows
        maxlen = source.maxlen
    }

    private init(store: Store, rows: Int, maxlen: Int) {
        self.store = store
        rowCount = rows
        self.maxlen = maxlen
    }

    /// Collective: the rows in one block per host (`Communicator.hostSharedMemory`), written by the
    /// host's first rank and mapped by the others, so a host holds one copy whatever its rank
    /// count. A failure to read on any writer is agreed on (`CollectiveError`). Without MPI, the
    /// rows in this process's memory; with ids above 16 bits, or a block that does not fit
    /// (`sharedBlockFits`) on some host, `source` itself (a file read per batch), its rows read once
    /// first (`checked`).
    public static func load(_ source: RowSource, rows: Int, numWords: Int, comm: Communicator) throws -> RowSource {
        guard numWords <= maxNumWords else { return try checked(source, rows: rows, comm: comm) }
        guard comm.size > 1 else {
            let own = try CollectiveError.agree(comm) { try PreloadedRows(source, rows: rows, numWords: numWords) }
            return own ?? source
        }
        let bytes = Store.bytes(rows: rows, maxlen: source.maxlen)
        let fits = try comm.allReduce(Int32(sharedBlockFits(bytes: bytes) ? 1 : 0), op: .min) == 1
        guard fits, let block = try comm.hostSharedMemory(count: bytes) else { return try checked(source, rows: rows, comm: comm) }
        let store = Store(block: block, rows: rows, maxlen: source.maxlen)
        try CollectiveError.agree(comm) {
            if block.isWriter { try store.fill(from: source, rows: rows, numWords: numWords, slabRows: 1024) }
        }
        try block.publish()
        return PreloadedRows(store: store, rows: rows, maxlen: source.maxlen)
    }

    /// Collective: `source` after rank 0 has read its first `rows` rows once, in slabs, the others
    /// waiting for its verdict: a run that reads batches from the file checks the rows as a loaded
    /// one does (their ids, labels and the dataset's block checksums, which a batch's scattered rows
    /// seldom complete). A zeroed chunk in the rows of a run with more than 65,536 words trained on
    /// without a word.
    static func checked(_ source: RowSource, rows: Int, comm: Communicator, slabRows: Int = 1024) throws -> RowSource {
        try CollectiveError.agree(comm) {
            guard comm.rank == 0 else { return }
            var start = 0
            while start < rows {
                _ = try source.read(range: start ..< min(rows, start + slabRows))
                start += slabRows
            }
        }
        return source
    }

    /// Whether a host's block of `bytes` is made: at most half the host's MemAvailable, and room for
    /// it (and 1 MiB) where Open MPI backs shared windows, `sharedMemoryFolder` — Docker's default
    /// /dev/shm of 64 MB failed `MPI_Win_allocate_shared` (an MPI error, exit 1) instead.
    static func sharedBlockFits(bytes: Int) -> Bool {
        let memory = availableMemoryBytes().map { bytes <= $0 / 2 } ?? true
        let room = freeBytes(atPath: sharedMemoryFolder()).map { bytes <= $0 - (1 << 20) } ?? false
        return memory && room
    }

    /// Where Open MPI's shared windows have their backing files: `osc_sm_backing_directory`, /dev/shm
    /// on Linux unless the environment sets it.
    static func sharedMemoryFolder() -> String {
        getenv("OMPI_MCA_osc_sm_backing_directory").map { String(cString: $0) } ?? "/dev/shm"
    }

    /// MemAvailable of /proc/meminfo, in bytes (nil where unreadable).
    static func availableMemoryBytes() -> Int? { procValue("/proc/meminfo", field: "MemAvailable:").map { $0 * 1024 } }

    public func read(range: Range<Int>, into ids: inout [Int32]) throws -> [Float] {
        precondition(range.lowerBound >= 0 && range.upperBound <= rowCount, "PreloadedRows: rows \(range) of \(rowCount)")
        let T = maxlen, n = range.count * T
        if ids.count > n { ids.removeLast(ids.count - n) }
        if ids.count < n { ids.append(contentsOf: repeatElement(0, count: n - ids.count)) }
        ids.withUnsafeMutableBufferPointer { xp in
            let from = store.ids + range.lowerBound * T
            for j in 0 ..< n { xp[j] = Int32(from[j]) }
        }
        return Array(UnsafeBufferPointer(start: store.labels + range.lowerBound, count: range.count))
    }

    public func read(rows: [Int]) throws -> (x: [Int32], y: [Float]) {
        let T = maxlen
        var x = [Int32](repeating: 0, count: rows.count * T)
        var y = [Float](repeating: 0, count: rows.count)
        x.withUnsafeMutableBufferPointer { xp in
            for (k, r) in rows.enumerated() {
                precondition(r >= 0 && r < rowCount, "PreloadedRows: row \(r) of \(rowCount)")
                let from = store.ids + r * T, to = xp.baseAddress! + k * T
                for j in 0 ..< T { to[j] = Int32(from[j]) }
                y[k] = store.labels[r]
            }
        }
        return (x, y)
    }
}
