import Foundation
import MPI
import RNN

/// Classification metrics whose sums are exact under any split of the rows across ranks: the K × K
/// confusion matrix holds integers, and the loss sum is fixed-point (units of 2⁻³²), so that adding
/// per-rank sums in any order gives the same total — `-n 1` and `-n 3` print identical numbers.
public struct ClassificationCounts: Sendable, Equatable, Codable {
    /// K, the classes.
    public let classes: Int
    /// `confusion[a * K + p]`: samples of actual class a predicted as p.
    public private(set) var confusion: [Int]
    /// Σ per-sample cross-entropy in units of 2⁻³², as three exact sums: with w = ⌊loss⌋ (whole nats),
    /// of ⌊w / 2³¹⌋, of w mod 2³¹, and of the fraction's (loss − w)·2³² rounded. None can overflow
    /// for up to 2³⁰ rows (`TrainConfig.maxRows`), on one rank or summed over all, for a loss of up to
    /// 2⁶² nats a sample. (A single Int64 held only 2³¹ nats in all; then two sums held 2³⁰ nats a
    /// sample, and a diverged model whose rows lost more was reported with a loss of +∞.)
    var lossHigh: Int64 = 0, lossLow: Int64 = 0, lossFraction: Int64 = 0
    /// Samples whose loss is not a number of at most `maxLoss` nats: not in the sums; the loss is
    /// then +∞.
    var lossOverflow: Int64 = 0

    /// The largest per-sample loss summed, 2⁶² nats (a logit that far off has diverged).
    static let maxLoss = 4_611_686_018_427_387_904.0

    init(classes: Int) {
        self.classes = classes
        confusion = [Int](repeating: 0, count: classes * classes)
    }

    static let scale = 4_294_967_296.0

    /// Adds one sample: its logits z (the model's output before the head's activation) and its
    /// label, scored by `head`.
    mutating func add(logits z: UnsafePointer<Float>, label y: Float, head: any Head) {
        let loss = head.loss(logits: z, label: y)
        if loss.isFinite && loss <= Self.maxLoss {
            // loss ≥ 0: w and the fraction are exact in Double, and w·2³² + fraction is
            // round(loss·2³²), the one fixed-point value a sample had before.
            let whole = loss.rounded(.down)
            let w = Int64(whole)
            lossHigh += w >> 31
            lossLow += w & 0x7FFF_FFFF
            lossFraction += Int64(((loss - whole) * Self.scale).rounded())
        } else {
            lossOverflow += 1
        }
        confusion[Int(y) * classes + head.predictedClass(logits: z)] += 1
    }

    /// Samples of actual class `a` predicted as `p`.
    public func count(actual a: Int, predicted p: Int) -> Int { confusion[a * classes + p] }

    public var count: Int { confusion.reduce(0, +) }
    public var correct: Int { (0 ..< classes).reduce(0) { $0 + confusion[$1 * classes + $1] } }
    public var loss: Double {
        guard count > 0 else { return .nan }
        guard lossOverflow == 0 else { return .infinity }
        // The one Int64 sum of 2⁻³² units where it fits (the same bits as ever), else the parts in Double.
        let (high, o1) = lossHigh.multipliedReportingOverflow(by: 1 << 31)
        let (whole, o2) = high.addingReportingOverflow(lossLow)
        let (shifted, o3) = whole.multipliedReportingOverflow(by: 1 << 32)
        let (total, o4) = shifted.addingReportingOverflow(lossFraction)
        let nats = o1 || o2 || o3 || o4
            ? Double(lossHigh) * 0x1p31 + Double(lossLow) + Double(lossFraction) / Self.scale
            : Double(total) / Self.scale
        return nats / Double(count)
    }
    public var accuracy: Double { count > 0 ? Double(correct) / Double(count) : .nan }

    /// Precision, recall, F1 and support of one class (one-vs-rest; 0 where undefined, as
    /// scikit-learn's `zero_division=0`).
    public struct ClassMetrics: Sendable, Equatable {
        public var precision, recall, f1: Double
        public var support: Int
    }

    public func metrics(of k: Int) -> ClassMetrics {
        let tp = confusion[k * classes + k]
        let predicted = (0 ..< classes).reduce(0) { $0 + confusion[$1 * classes + k] }
        let support = (0 ..< classes).reduce(0) { $0 + confusion[k * classes + $1] }
        let p = predicted > 0 ? Double(tp) / Double(predicted) : 0
        let r = support > 0 ? Double(tp) / Double(support) : 0
        return ClassMetrics(precision: p, recall: r, f1: p + r > 0 ? 2 * p * r / (p + r) : 0, support: support)
    }

    /// The unweighted mean over classes (macro) and the support-weighted mean (weighted).
    public func averages() -> (macro: ClassMetrics, weighted: ClassMetrics) {
        let all = (0 ..< classes).map(metrics(of:))
        let n = Double(max(count, 1)), k = Double(classes)
        func mean(_ f: (ClassMetrics) -> Double, weighted: Bool) -> Double {
            all.reduce(0) { $0 + f($1) * (weighted ? Double($1.support) / n : 1 / k) }
        }
        func avg(_ w: Bool) -> ClassMetrics {
            ClassMetrics(precision: mean(\.precision, weighted: w), recall: mean(\.recall, weighted: w),
                         f1: mean(\.f1, weighted: w), support: count)
        }
        return (avg(false), avg(true))
    }

    /// Sums the counts of every rank (one all-reduce of K² + 4 integers).
    func reduced(_ comm: Communicator) throws -> ClassificationCounts {
        var v = confusion.map { Int64($0) } + [lossHigh, lossLow, lossFraction, lossOverflow]
        try comm.allReduce(&v)
        var c = ClassificationCounts(classes: classes)
        c.confusion = v.dropLast(4).map { Int($0) }
        let n = v.count
        (c.lossHigh, c.lossLow, c.lossFraction, c.lossOverflow) = (v[n - 4], v[n - 3], v[n - 2], v[n - 1])
        return c
    }
}

/// Scores a model on rows of a source, shared among the ranks: the one evaluation path, used by
/// `eval` and by the trainer's validation at each epoch end.
public enum Evaluator {
    /// The rows are cut into global groups of whole chunks of `batchSize` (about 1,024 rows) and each
    /// rank takes a contiguous run of groups, scoring each group with one `Model.logits` call. What a
    /// row's logits are computed with — the rows that share its chunk, their order and the step its
    /// chunk starts at (`logits` orders a call's rows by their leading padding) — then depends on its
    /// group only, never on the number of ranks; a GEMM's rounding can depend on its shape and, on
    /// some BLAS kernels (OpenBLAS's Haswell), on the other rows in it. So the reduced counts are
    /// identical for any number of ranks.
    public static func counts(model: Model, source: RowSource, rows: Range<Int>, comm: Communicator,
                              batchSize: Int = 128) throws -> ClassificationCounts {
        let groupRows = batchSize * max(1, 1024 / batchSize)
        let groups = (rows.count + groupRows - 1) / groupRows
        let mine = Schedule.part(of: 0 ..< groups, rank: comm.rank, size: comm.size)
        var c = ClassificationCounts(classes: model.head.classes)
        var x = [Int32]()                                   // one buffer for every group
        for g in mine {
            let start = rows.lowerBound + g * groupRows, end = min(rows.upperBound, start + groupRows)
            let y = try source.read(range: start ..< end, into: &x)
            let z = model.logits(x: x, batch: y.count, batchSize: batchSize), K = model.head.outputs
            z.withUnsafeBufferPointer { zp in
                for i in 0 ..< y.count { c.add(logits: zp.baseAddress! + i * K, label: y[i], head: model.head) }
            }
        }
        return try c.reduced(comm)
    }
}
