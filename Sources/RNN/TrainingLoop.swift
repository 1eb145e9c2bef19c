// One training step, and an epoch of them, for a single process; the distributed trainer reuses it
// by injecting the gradient reduction (an MPI all-reduce). Mirrors llm.c's step: forward,
// zero grads, backward, (all-reduce), update, log.

/// One batch of this process's rows: token ids (B, T) batch-major and labels (B).
public struct Batch: Sendable {
    public var x: [Int32]
    public var y: [Float]
    /// B.
    public var size: Int { y.count }

    public init(x: [Int32], y: [Float]) {
        precondition(y.isEmpty ? x.isEmpty : x.count % y.count == 0, "Batch: \(x.count) ids for \(y.count) labels")
        self.x = x
        self.y = y
    }
}

/// Turns this process's gradient sum into the global batch's: e.g. MPI_Allreduce(SUM) of the
/// buffer, and of the stats (whose `count` is then the global batch size). Gets the local stats,
/// returns the global ones. The identity (one process) is the default.
public typealias GradientReducer = (_ gradients: inout [Float], _ local: BatchStats) -> BatchStats

/// Forward, backward (sum), reduce, mean, clip, optimizer step.
public final class TrainingLoop {
    public let model: Model
    public let optimizer: any Optimizer
    /// Global-norm clipping threshold (Keras `global_clipnorm`); nil for none (the default).
    public var clipNorm: Float?
    public var reduce: GradientReducer

    public init(model: Model, optimizer: any Optimizer, clipNorm: Float? = nil,
                reduce: @escaping GradientReducer = { _, local in local }) {
        precondition(clipNorm.map { $0 > 0 } ?? true, "clipNorm must be positive")
        self.model = model
        self.optimizer = optimizer
        self.clipNorm = clipNorm
        self.reduce = reduce
    }

    /// One optimizer step on one global batch, of which x (B_local, T) and y (B_local) are this
    /// process's rows (B_local may be 0 on some ranks). Returns the global batch's stats, measured
    /// before the update (as Keras reports them).
    @discardableResult
    public func step(x: UnsafeBufferPointer<Int32>, y: UnsafeBufferPointer<Float>) -> BatchStats {
        model.zeroGradients()
        let local = model.accumulateGradients(x: x, y: y, batch: y.count)
        let global = reduce(&model.gradients, local)
        guard global.count > 0 else { return global }
        // The sum over the global batch divided by its size: the gradient of the mean loss.
        let scale = 1 / Float(global.count)
        model.gradients.withUnsafeMutableBufferPointer { g in
            for i in 0..<g.count { g[i] *= scale }
        }
        if let clipNorm { GradientClipping.clip(&model.gradients, maxNorm: clipNorm) }
        optimizer.apply(gradients: model.gradients, to: &model.weights)
        return global
    }

    /// `step` on a `Batch`.
    @discardableResult
    public func step(_ batch: Batch) -> BatchStats {
        batch.x.withUnsafeBufferPointer { x in
            batch.y.withUnsafeBufferPointer { y in step(x: x, y: y) }
        }
    }

    /// Steps through `batches` in order; `onBatch(index, batchStats, runningStats)` after each.
    /// Returns the stats summed over the epoch (Keras's epoch loss and accuracy).
    @discardableResult
    public func fit<S: Sequence>(batches: S,
                                 onBatch: ((Int, BatchStats, BatchStats) -> Void)? = nil) -> BatchStats
    where S.Element == Batch {
        var total = BatchStats.zero
        for (index, batch) in batches.enumerated() {
            let stats = step(batch)
            total += stats
            onBatch?(index, stats, total)
        }
        return total
    }
}
