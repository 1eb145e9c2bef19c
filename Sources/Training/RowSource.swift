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
}

extension RowSource {
    /// A contiguous range of rows.
    func read(range: Range<Int>) throws -> (x: [Int32], y: [Float]) { try read(rows: Array(range)) }
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
    private let ids: [UInt16]
    private let labels: [Float]

    /// The largest vocabulary whose ids fit the UInt16 store.
    static let maxNumWords = Int(UInt16.max) + 1

    /// Nil when the ids may not fit in 16 bits (`numWords` above 65,536): read from `source` then.
    public init?(_ source: RowSource, rows: Int, numWords: Int, slabRows: Int = 1024) throws {
        guard numWords <= Self.maxNumWords else { return nil }
        precondition(rows >= 0 && rows <= source.rowCount, "PreloadedRows: \(rows) of \(source.rowCount) rows")
        let T = source.maxlen
        var ids = [UInt16](repeating: 0, count: rows * T)
        var labels = [Float](repeating: 0, count: rows)
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
            labels.replaceSubrange(start ..< end, with: slab.y)
            start = end
        }
        self.rowCount = rows
        self.maxlen = T
        self.ids = ids
        self.labels = labels
    }

    public func read(rows: [Int]) throws -> (x: [Int32], y: [Float]) {
        let T = maxlen
        var x = [Int32](repeating: 0, count: rows.count * T)
        var y = [Float](repeating: 0, count: rows.count)
        x.withUnsafeMutableBufferPointer { xp in
            ids.withUnsafeBufferPointer { ip in
                for (k, r) in rows.enumerated() {
                    precondition(r >= 0 && r < rowCount, "PreloadedRows: row \(r) of \(rowCount)")
                    let from = ip.baseAddress! + r * T, to = xp.baseAddress! + k * T
                    for j in 0 ..< T { to[j] = Int32(from[j]) }
                    y[k] = labels[r]
                }
            }
        }
        return (x, y)
    }
}
