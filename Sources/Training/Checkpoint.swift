import HDF5
import RNN

/// Where a run stands: enough to continue at the next batch with bit-identical results.
public struct TrainingState: Sendable, Equatable {
    /// The epoch in progress (0-based) and the next global batch of it to train.
    public var epoch: Int = 0
    public var nextBatch: Int = 0
    /// Sums over the epoch's batches so far (exact across ranks), for the epoch's reported loss/acc.
    public var epochLossSum: Double = 0
    public var epochCorrect: Int = 0
    public var epochCount: Int = 0
    /// Seconds spent in the epoch so far (training steps), and in MPI during them.
    public var epochSeconds: Double = 0
    public var epochMPISeconds: Double = 0
    /// Lowest validation loss so far, and epochs since it improved (early stopping).
    public var bestValLoss: Double = .infinity
    public var epochsWithoutImprovement: Int = 0
    /// The world size the checkpoint was written with.
    public var worldSize: Int = 1

    public init() {}
}

/// A checkpoint: weights, every optimizer slot and its iteration count, the training state, the
/// config and the history so far (SPEC §5). Written atomically by rank 0.
public struct Checkpoint: Sendable {
    public static let format = "rnn-dist-checkpoint"
    public var weights: [Float]
    public var optimizerName: String
    public var slots: [OptimizerSlot]
    public var iterations: Int
    public var state: TrainingState
    public var history: History
    public var metadata: WeightsMetadata

    public init(weights: [Float], optimizerName: String, slots: [OptimizerSlot], iterations: Int,
                state: TrainingState, history: History, metadata: WeightsMetadata) {
        self.weights = weights; self.optimizerName = optimizerName; self.slots = slots
        self.iterations = iterations; self.state = state; self.history = history; self.metadata = metadata
    }

    public func write(to path: String) throws {
        try H5File.writeAtomically(to: path) { f in
            try WeightsFile.writeTensors(weights, table: metadata.config.model.parameterTable, into: f)
            try WeightsFile.writeMetadata(metadata, into: f, kind: Self.format)
            let o = try f.createGroup("rnn_dist/optimizer")
            try o.setAttribute("name", optimizerName)
            try o.setAttribute("iterations", iterations)
            try o.writeStringList("slot_names", slots.map(\.name))
            for (i, s) in slots.enumerated() { try o.createDataset("slot_\(i)", data: s.values) }
            let st = try f.createGroup("rnn_dist/state")
            try st.setAttribute("epoch", state.epoch)
            try st.setAttribute("next_batch", state.nextBatch)
            try st.setAttribute("epoch_loss_sum", state.epochLossSum)
            try st.setAttribute("epoch_correct", state.epochCorrect)
            try st.setAttribute("epoch_count", state.epochCount)
            try st.setAttribute("epoch_seconds", state.epochSeconds)
            try st.setAttribute("epoch_mpi_seconds", state.epochMPISeconds)
            try st.setAttribute("best_val_loss", state.bestValLoss)
            try st.setAttribute("epochs_without_improvement", state.epochsWithoutImprovement)
            try st.setAttribute("world_size", state.worldSize)
            try history.write(to: try f.createGroup("rnn_dist/history"))
        }
    }

    /// Reads and validates a checkpoint; every number is checked against the config it records.
    public static func read(from path: String) throws -> Checkpoint {
        let f = try H5File.open(path, requireComplete: true)
        let meta = try WeightsFile.readMetadata(from: f, expecting: format)
        let weights = try WeightsFile.readTensors(table: meta.config.model.parameterTable, from: f)
        let o = try f.group("rnn_dist/optimizer")
        let names = try o.readStringList("slot_names")
        guard names.count <= 8 else {
            throw TrainingError.badFile(path: path, object: "/rnn_dist/optimizer", detail: "\(names.count) slots")
        }
        var slots: [OptimizerSlot] = []
        for (i, n) in names.enumerated() {
            let v: [Float] = try o.dataset("slot_\(i)").read()
            guard v.count == weights.count else {
                throw TrainingError.badFile(path: path, object: "/rnn_dist/optimizer/slot_\(i)",
                                            detail: "holds \(v.count) values, the model has \(weights.count) parameters")
            }
            slots.append(OptimizerSlot(name: n, values: v))
        }
        let st = try f.group("rnn_dist/state")
        var s = TrainingState()
        func int(_ n: String) throws -> Int { Int(try st.intAttribute(n)) }
        s.epoch = try int("epoch")
        s.nextBatch = try int("next_batch")
        s.epochLossSum = try st.doubleAttribute("epoch_loss_sum")
        s.epochCorrect = try int("epoch_correct")
        s.epochCount = try int("epoch_count")
        s.epochSeconds = try st.doubleAttribute("epoch_seconds")
        s.epochMPISeconds = try st.doubleAttribute("epoch_mpi_seconds")
        s.bestValLoss = try st.doubleAttribute("best_val_loss")
        s.epochsWithoutImprovement = try int("epochs_without_improvement")
        s.worldSize = try int("world_size")
        // Every number against what the recorded config allows, before anything is computed from it.
        let cfg = meta.config
        let schedule = Schedule(rows: min(cfg.limit ?? cfg.dataRows, cfg.dataRows), validationSplit: cfg.validationSplit,
                                batchSize: cfg.batchSize, seed: cfg.seed)
        let sums = [s.epochLossSum, s.epochSeconds, s.epochMPISeconds]
        guard (0 ... TrainConfig.maxEpochs).contains(s.epoch), (0 ... schedule.batchesPerEpoch).contains(s.nextBatch),
              (0 ... schedule.trainCount).contains(s.epochCount), (0 ... s.epochCount).contains(s.epochCorrect),
              (1 ... 1 << 20).contains(s.worldSize), (0 ... TrainConfig.maxEpochs).contains(s.epochsWithoutImprovement),
              !s.bestValLoss.isNaN, sums.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw TrainingError.badFile(path: path, object: "/rnn_dist/state", detail: "values out of range for the recorded config")
        }
        let iterations = Int(try o.intAttribute("iterations"))
        guard (0 ... 1 << 40).contains(iterations) else {
            throw TrainingError.badFile(path: path, object: "/rnn_dist/optimizer@iterations", detail: "\(iterations) is out of range")
        }
        // The slots must be those of the recorded optimizer, so that restoring cannot fail later.
        let optimizer = OptimizerKind(rawValue: cfg.optimizer)!.make(parameterCount: weights.count)
        do { try optimizer.restore(slots: slots, iterations: iterations) } catch {
            throw TrainingError.badFile(path: path, object: "/rnn_dist/optimizer", detail: "\(error)")
        }
        let history = try History.read(from: try f.group("rnn_dist/history"))
        guard history.records.count <= TrainConfig.maxEpochs else {
            throw TrainingError.badFile(path: path, object: "/rnn_dist/history", detail: "\(history.records.count) epochs")
        }
        return Checkpoint(weights: weights, optimizerName: optimizer.name, slots: slots,
                          iterations: iterations, state: s, history: history, metadata: meta)
    }
}
