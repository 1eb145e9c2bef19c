import Foundation
import MPI
import RNN

/// Binary classification metrics whose sums are exact under any split of the rows across ranks:
/// counts are integers, and the loss sum is fixed-point (units of 2⁻³²), so that adding per-rank
/// sums in any order gives the same total — `-n 1` and `-n 3` print identical numbers.
public struct ClassificationCounts: Sendable, Equatable, Codable {
    public var truePositives = 0
    public var falsePositives = 0
    public var trueNegatives = 0
    public var falseNegatives = 0
    /// Σ per-sample binary cross-entropy, in units of 2⁻³².
    var lossFixed: Int64 = 0

    init() {}

    static let scale = 4_294_967_296.0

    /// Adds one sample: its logits z (the model's output before the head's activation) and its
    /// label, scored by `head` (class 1 is the positive class).
    mutating func add(logits z: UnsafePointer<Float>, label y: Float, head: any Head) {
        lossFixed += Int64((head.loss(logits: z, label: y) * Self.scale).rounded())
        switch (head.predictedClass(logits: z) == 1, y >= 0.5) {
        case (true, true): truePositives += 1
        case (true, false): falsePositives += 1
        case (false, false): trueNegatives += 1
        case (false, true): falseNegatives += 1
        }
    }

    public var count: Int { truePositives + falsePositives + trueNegatives + falseNegatives }
    public var loss: Double { count > 0 ? Double(lossFixed) / Self.scale / Double(count) : .nan }
    public var accuracy: Double { count > 0 ? Double(truePositives + trueNegatives) / Double(count) : .nan }
    public var precision: Double {
        truePositives + falsePositives > 0 ? Double(truePositives) / Double(truePositives + falsePositives) : 0
    }
    public var recall: Double {
        truePositives + falseNegatives > 0 ? Double(truePositives) / Double(truePositives + falseNegatives) : 0
    }
    public var f1: Double { precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0 }

    /// Sums the counts of every rank (one all-reduce of five integers).
    func reduced(_ comm: Communicator) throws -> ClassificationCounts {
        var v: [Int64] = [Int64(truePositives), Int64(falsePositives), Int64(trueNegatives), Int64(falseNegatives), lossFixed]
        try comm.allReduce(&v)
        var c = ClassificationCounts()
        c.truePositives = Int(v[0]); c.falsePositives = Int(v[1]); c.trueNegatives = Int(v[2])
        c.falseNegatives = Int(v[3]); c.lossFixed = v[4]
        return c
    }
}

/// Scores a model on rows of a source, shared among the ranks: the one evaluation path, used by
/// `eval` and by the trainer's validation at each epoch end.
public enum Evaluator {
    /// The rows are cut into global chunks of `batchSize` and each rank takes a contiguous run of
    /// chunks: every chunk is computed exactly as it would be by one process (a GEMM's rounding
    /// depends on its shape), so the reduced counts are identical for any number of ranks.
    public static func counts(model: Model, source: RowSource, rows: Range<Int>, comm: Communicator,
                              batchSize: Int = 128) throws -> ClassificationCounts {
        let chunks = (rows.count + batchSize - 1) / batchSize
        let mine = Schedule.part(of: 0 ..< chunks, rank: comm.rank, size: comm.size)
        var c = ClassificationCounts()
        // This rank's rows in slabs of whole chunks; `logits` cuts each slab into chunks of
        // `batchSize` from its start, which is a global chunk boundary.
        let slab = max(1, 4096 / batchSize)
        var k = mine.lowerBound
        while k < mine.upperBound {
            let kEnd = min(mine.upperBound, k + slab)
            let start = rows.lowerBound + k * batchSize
            let end = min(rows.upperBound, rows.lowerBound + kEnd * batchSize)
            let (x, y) = try source.read(range: start ..< end)
            let z = model.logits(x: x, batch: y.count, batchSize: batchSize), K = model.head.outputs
            z.withUnsafeBufferPointer { zp in
                for i in 0 ..< y.count { c.add(logits: zp.baseAddress! + i * K, label: y[i], head: model.head) }
            }
            k = kEnd
        }
        return try c.reduced(comm)
    }
}
