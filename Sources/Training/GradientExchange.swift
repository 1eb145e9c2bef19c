import MPI
import RNN

/// One batch's exchange between the ranks (docs/TRAINING.md §The exchange): every rank's gradient
/// sums and batch statistics in, the global ones out, in one collective per batch.
///
/// Wire layout, one Float buffer: the touched embedding rows packed in ascending id order, then
/// every other parameter in table order, then the `Statistic`s. Only the embedding rows some rank's
/// batch touched travel (a row no token used has a zero gradient on every rank): the ranks first
/// agree on those rows with a MAX all-reduce of V one-byte flags. The sums are the dense exchange's
/// (bit for bit at 2 ranks; with more, MPI may add in another order for another buffer size, as it
/// may for any); `dense` (a test and benchmark hook) sends every row instead.
/// With bf16 the values travel as bfloat16 and the statistics as their exact Float bits in two
/// UInt16 each, all-gathered and summed in Float in rank order on every rank. Where a step allows it
/// and `overlap` is on, the rows go behind backward instead (`ExchangeBehindBackward`): the same
/// sums, another wire order (rows by first step, latest first).
final class GradientExchange {
    /// The statistics after the gradients, in wire order.
    enum Statistic: Int, CaseIterable {
        /// The loss sum as a Float pair: hi = Float(sum), lo = Float(sum − hi).
        case lossHigh, lossLow
        case correct, count
        /// 1 when the rank wants to stop (a signal), else 0.
        case stop

        /// How many travel.
        static let total = allCases.count

        /// A rank's batch statistics and stop flag, in wire order.
        static func encode(_ local: BatchStats, stop: Bool) -> [Float] {
            let hi = Float(local.lossSum)
            var values = [Float](repeating: 0, count: total)
            values[lossHigh.rawValue] = hi
            values[lossLow.rawValue] = Float(local.lossSum - Double(hi))
            values[correct.rawValue] = Float(local.correct)
            values[count.rawValue] = Float(local.count)
            values[Self.stop.rawValue] = stop ? 1 : 0
            return values
        }

        /// The global statistics and whether any rank asked to stop, from the summed values.
        static func decode(_ value: (Statistic) -> Float) -> (stats: BatchStats, stop: Bool) {
            (BatchStats(lossSum: Double(value(.lossHigh)) + Double(value(.lossLow)),
                        correct: Int(value(.correct)), count: Int(value(.count))), value(.stop) > 0)
        }
    }

    let comm: Communicator
    let dtype: ExchangeDType
    /// Exchange every embedding row (the dense all-reduce).
    var dense = false
    private(set) var traffic = ExchangeTraffic()
    private var buffer: [Float] = []
    /// The step's wire length: the first `used` values of `buffer`.
    private var used = 0
    /// V one-byte flags: the embedding rows this step's batch touched on any rank.
    private var rowFlags: [UInt8]

    /// Send the embedding rows behind backward where a step allows it (`behindBackward`).
    var overlap = false
    /// `--timeline`: the exchange behind backward marks where it starts its all-reduces.
    var timeline: Timeline?
    private var behind: ExchangeBehindBackward?

    init(comm: Communicator, dtype: ExchangeDType, vocabulary: Int) {
        self.comm = comm
        self.dtype = dtype
        rowFlags = [UInt8](repeating: 0, count: comm.size > 1 ? vocabulary : 0)
    }

    /// The exchange behind backward for a step of `microBatches` micro-batches of a global batch of
    /// `globalRows`, or nil where it does not apply: one rank, bf16, the dense hook, accumulation,
    /// a rank without rows, a model whose first layer cannot report its rows
    /// (`Model.reportsEmbeddingRowsDuringBackward`), or T beyond UInt16. The same answer on every
    /// rank. The trainer makes it the model's `backwardObserver` for the step.
    func behindBackward(for model: Model, microBatches: Int, globalRows: Int, steps: Int) -> ExchangeBehindBackward? {
        guard overlap, comm.size > 1, dtype == .fp32, !dense, microBatches == 1, globalRows >= comm.size,
              steps < Int(ExchangeBehindBackward.absent), model.reportsEmbeddingRowsDuringBackward else { return nil }
        if behind == nil {
            behind = ExchangeBehindBackward(comm: comm, vocabulary: model.config.vocabularySize,
                                            width: model.config.embeddingWidth,
                                            restCount: model.gradients.count - model.embeddingRange.upperBound,
                                            statistics: Statistic.total)
        }
        behind?.timeline = timeline
        return behind
    }

    /// Starts a new epoch's traffic count.
    func resetTraffic() { traffic = ExchangeTraffic() }

    /// Replaces `model.gradients` by the sums over every rank and returns the global statistics
    /// and whether any rank asked to stop.
    func exchange(_ model: Model, local: BatchStats, stop: Bool) throws -> (stats: BatchStats, stop: Bool) {
        guard comm.size > 1 else { return (local, stop) }
        if let b = behind, b.active { return try finishBehindBackward(b, model, local: local, stop: stop) }
        let e = model.embeddingRange, width = model.config.embeddingWidth
        let touched: [Int]
        if !model.config.embeddingTrainable {
            touched = []                               // frozen: its gradient is never formed
        } else if dense {
            touched = Array(0 ..< model.config.vocabularySize)
        } else {
            rowFlags.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            model.markTouchedEmbeddingRows(&rowFlags)
            try comm.allReduce(&rowFlags, op: .max)
            touched = rowFlags.indices.filter { rowFlags[$0] != 0 }
        }
        let embeddingCount = touched.count * width
        let rest = e.upperBound ..< model.gradients.count
        let n = embeddingCount + rest.count
        // The buffer grows and never shrinks: a fresh allocation per step (the touched-row count
        // changes every step) cost page faults on every exchange.
        if buffer.count < n + Statistic.total { buffer = [Float](repeating: 0, count: n + Statistic.total + n / 4) }
        used = n + Statistic.total
        buffer.withUnsafeMutableBufferPointer { r in
            model.gradients.withUnsafeBufferPointer { g in
                let out = r.baseAddress!, grad = g.baseAddress!
                for (i, row) in touched.enumerated() { (out + i * width).update(from: grad + e.lowerBound + row * width, count: width) }
                (out + embeddingCount).update(from: grad + rest.lowerBound, count: rest.count)
            }
            for (j, value) in Statistic.encode(local, stop: stop).enumerated() { r[n + j] = value }
        }
        let payloadBytes = dtype == .bf16 ? try exchangeInBFloat16(values: n) : try allReduceFloat()
        buffer.withUnsafeBufferPointer { r in
            model.gradients.withUnsafeMutableBufferPointer { g in
                let from = r.baseAddress!, grad = g.baseAddress!
                for (i, row) in touched.enumerated() { (grad + e.lowerBound + row * width).update(from: from + i * width, count: width) }
                (grad + rest.lowerBound).update(from: from + embeddingCount, count: rest.count)
            }
        }
        traffic.batches += 1
        traffic.bytes += (dense || !model.config.embeddingTrainable ? 0 : rowFlags.count) + payloadBytes
        traffic.touchedRows += touched.count
        return Statistic.decode { buffer[n + $0.rawValue] }
    }

    /// The rest of a step whose rows went behind backward.
    private func finishBehindBackward(_ b: ExchangeBehindBackward, _ model: Model, local: BatchStats,
                                      stop: Bool) throws -> (stats: BatchStats, stop: Bool) {
        var stats = Statistic.encode(local, stop: stop)
        let e = model.embeddingRange
        let (bytes, rows, behind) = try b.finish(gradients: &model.gradients, embedding: e,
                                                 rest: e.upperBound ..< model.gradients.count, stats: &stats)
        traffic.batches += 1
        traffic.bytes += bytes
        traffic.touchedRows += rows
        traffic.rowsBehindBackward += behind
        return Statistic.decode { stats[$0.rawValue] }
    }

    /// fp32: one all-reduce (sum) of the buffer. Returns the bytes this rank sent.
    private func allReduceFloat() throws -> Int {
        try buffer.withUnsafeMutableBufferPointer { try comm.allReduce(UnsafeMutableBufferPointer(rebasing: $0[..<used])) }
        return used * MemoryLayout<Float>.size
    }

    /// bf16: the first `values` of the buffer travel as bfloat16, the statistics after them as
    /// exact Float bits (two UInt16 each); every rank receives every rank's (all-gather) and sums
    /// them in Float in rank order: the same sums on every rank, never accumulated in bfloat16.
    /// Returns the bytes this rank sent.
    private func exchangeInBFloat16(values n: Int) throws -> Int {
        let statistics = Statistic.total
        let width = n + 2 * statistics
        var wire = [UInt16](repeating: 0, count: width)
        buffer.withUnsafeBufferPointer { r in
            for i in 0 ..< n { wire[i] = BFloat16.encode(r[i]) }
            for j in 0 ..< statistics {
                let bits = r[n + j].bitPattern
                wire[n + 2 * j] = UInt16(truncatingIfNeeded: bits); wire[n + 2 * j + 1] = UInt16(bits >> 16)
            }
        }
        let all = try comm.allGather(wire)
        buffer.withUnsafeMutableBufferPointer { r in
            all.withUnsafeBufferPointer { a in
                for i in 0 ..< n { r[i] = BFloat16.decode(a[i]) }
                for rank in 1 ..< comm.size {
                    let base = a.baseAddress! + rank * width
                    for i in 0 ..< n { r[i] += BFloat16.decode(base[i]) }
                }
                for j in 0 ..< statistics {
                    var sum: Float = 0
                    for rank in 0 ..< comm.size {
                        let base = rank * width + n + 2 * j
                        sum += Float(bitPattern: UInt32(a[base]) | UInt32(a[base + 1]) << 16)
                    }
                    r[n + j] = sum
                }
            }
        }
        return wire.count * MemoryLayout<UInt16>.size
    }
}

/// `train --exchange-overlap`: whether the embedding rows' all-reduce starts during backward
/// (`ExchangeBehindBackward`). `auto` does it when the job spans more than one host: on one host the
/// ranks exchange through shared memory, where the copies cost the same CPU time during backward as
/// after it, and the progress calls cost about 2% more (measured, docs/BENCHMARKS.md).
public enum ExchangeOverlap: String, CaseIterable, Sendable {
    case auto, on, off

    /// Collective (every rank calls it, at the same point): on or off for this job.
    func resolved(comm: Communicator) throws -> Bool {
        switch self {
        case .on: return true
        case .off: return false
        case .auto:
            guard comm.size > 1 else { return false }
            return try comm.ranksOnThisHost() < comm.size
        }
    }
}

/// What one rank sent per batch in the current epoch (exchange inputs), for the epoch line.
public struct ExchangeTraffic: Sendable {
    public var batches = 0
    var bytes = 0
    var touchedRows = 0
    /// Of those, the rows whose all-reduce started during the first layer's BPTT.
    var rowsBehindBackward = 0
    public var bytesPerBatch: Double { batches > 0 ? Double(bytes) / Double(batches) : 0 }
    public var rowsPerBatch: Double { batches > 0 ? Double(touchedRows) / Double(batches) : 0 }
    public var rowsBehindBackwardPerBatch: Double { batches > 0 ? Double(rowsBehindBackward) / Double(batches) : 0 }
}
