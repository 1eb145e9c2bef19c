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
    public func read(range: Range<Int>) throws -> (x: [Int32], y: [Float]) { try read(rows: Array(range)) }
}

/// Rows held in memory (tests, small data).
public struct InMemoryRows: RowSource {
    public let x: [Int32]
    public let y: [Float]
    public let maxlen: Int
    public var rowCount: Int { y.count }

    public init(x: [Int32], y: [Float], maxlen: Int) {
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
