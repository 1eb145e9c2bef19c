import HDF5
import RNN

/// A checkpoint: weights, every optimizer slot and its iteration count, the training state, the
/// config and the history so far (docs/FILES.md §Checkpoint). Written atomically by rank 0.
public struct Checkpoint: Sendable {
    static let format = "rnn-dist-checkpoint"
    public var weights: [Float]
    var optimizerName: String
    var slots: [OptimizerSlot]
    var iterations: Int
    var state: TrainingState
    var history: History
    public var metadata: WeightsMetadata

    init(weights: [Float], optimizerName: String, slots: [OptimizerSlot], iterations: Int,
                state: TrainingState, history: History, metadata: WeightsMetadata) {
        self.weights = weights; self.optimizerName = optimizerName; self.slots = slots
        self.iterations = iterations; self.state = state; self.history = history; self.metadata = metadata
    }

    /// Whether the run that wrote it has nothing left to train (`TrainConfig.isFinished(at:)`); an
    /// unfinished run's checkpoint is the only way to continue it.
    public var isFinished: Bool { metadata.config.isFinished(at: state) }

    /// Where the run stands, as `inspect` says it: "epoch 2 of 5, next batch 38" (1-based).
    /// A finished run's: "finished: 5 epochs of 5" (or "…, ended by early stopping").
    public var progress: String {
        let epochs = metadata.config.epochs
        if isFinished {
            return "finished: \(state.epoch) epoch\(state.epoch == 1 ? "" : "s") of \(epochs)" + (state.epoch < epochs ? ", ended by early stopping" : "")
        }
        return "epoch \(state.epoch + 1) of \(epochs), next batch \(state.nextBatch + 1)"
    }

    func write(to path: String) throws {
        try H5File.writeAtomically(to: path) { f in
            try WeightsFile.writeTensors(weights, table: metadata.config.model.parameterTable, into: f)
            try WeightsFile.writeMetadata(metadata, into: f, kind: Self.format)
            let o = try f.createGroup("rnn_dist/optimizer")
            try o.setAttribute("name", optimizerName)
            try o.setAttribute("iterations", iterations)
            try o.writeStringList("slot_names", slots.map(\.name))
            for (i, s) in slots.enumerated() { try o.createDataset("slot_\(i)", data: s.values) }
            try f.createGroup("rnn_dist/state").setAttribute("json", try state.json())
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
            // A velocity is a running mean of squares: finite and never negative; any slot finite.
            if let bad = v.firstIndex(where: { !$0.isFinite || (n == "velocity" && $0 < 0) }) {
                throw TrainingError.badFile(path: path, object: "/rnn_dist/optimizer/slot_\(i)",
                                            detail: "'\(n)' holds \(v[bad]) at index \(bad)\(n == "velocity" ? " (must be finite and ≥ 0)" : " (must be finite)")")
            }
            slots.append(OptimizerSlot(name: n, values: v))
        }
        let st = try f.group("rnn_dist/state")
        guard st.hasAttribute("json") else {
            throw TrainingError.badFile(path: path, object: "/rnn_dist/state@json",
                                        detail: "missing: a checkpoint of an rnn-dist before 2026-11-30; start a new run")
        }
        let s: TrainingState
        do { s = try TrainingState(json: try st.stringAttribute("json")) } catch let e as HDF5Error { throw e } catch {
            throw TrainingError.badFile(path: path, object: "/rnn_dist/state@json", detail: "unreadable state JSON (\(error))")
        }
        // Every number against what the recorded config allows, before anything is computed from it.
        let cfg = meta.config
        let schedule = cfg.schedule
        let sums = [s.epochLossSum, s.epochSeconds, s.epochMPISeconds]
        // A checkpoint is written before an epoch's last batch or after its end, never between: the
        // next batch is one of the epoch's, and the running count is that of the batches before it.
        let checks: [(String, Bool)] = [
            ("epoch", (0 ... TrainConfig.maxEpochs).contains(s.epoch)),
            ("next_batch", (0 ..< schedule.batchesPerEpoch).contains(s.nextBatch)),
            ("epoch_count", s.epochCount == schedule.batch(0).count * s.nextBatch),
            ("epoch_correct", (0 ... s.epochCount).contains(s.epochCorrect)),
            ("world_size", TrainingState.worldSizes.contains(s.worldSize)),
            ("epochs_without_improvement", (0 ... TrainConfig.maxEpochs).contains(s.epochsWithoutImprovement)),
            ("best_val_loss", !s.bestValLoss.isNaN),
            ("epoch_loss_sum, epoch_seconds, epoch_mpi_seconds", sums.allSatisfy({ $0.isFinite && $0 >= 0 })),
            ("lr_factor", s.lrFactor > 0 && s.lrFactor <= 1),
            ("plateau_best", !s.plateauBest.isNaN),
            ("plateau_wait", (0 ... TrainConfig.maxEpochs).contains(s.plateauWait)),
        ]
        let bad = checks.filter { !$0.1 }.map(\.0)
        guard bad.isEmpty else {
            throw TrainingError.badFile(path: path, object: "/rnn_dist/state",
                                        detail: "values out of range for the recorded config (\(bad.joined(separator: "; ")))")
        }
        let iterations = Int(try o.intAttribute("iterations"))
        guard (0 ... 1 << 40).contains(iterations) else {
            throw TrainingError.badFile(path: path, object: "/rnn_dist/optimizer@iterations", detail: "\(iterations) is out of range")
        }
        // The slots must be those of the recorded optimizer, so that restoring cannot fail later.
        let optimizer = cfg.optimizer.make(parameterCount: weights.count)
        let name = try o.stringAttribute("name")
        guard name == optimizer.name else {
            throw TrainingError.badFile(path: path, object: "/rnn_dist/optimizer@name",
                                        detail: "'\(name)', but the recorded config's optimizer is \(optimizer.name)")
        }
        do { try optimizer.restore(slots: slots, iterations: iterations) } catch {
            throw TrainingError.badFile(path: path, object: "/rnn_dist/optimizer", detail: "\(error)")
        }
        let history = try History.read(from: try f.group("rnn_dist/history"), learningRate: cfg.learningRate)
        guard history.records.count <= TrainConfig.maxEpochs else {
            throw TrainingError.badFile(path: path, object: "/rnn_dist/history", detail: "\(history.records.count) epochs")
        }
        // The history holds the epochs before the state's: a checkpoint written after epoch k ends
        // says epoch k (0-based, next batch 0) and holds k rows, one written during epoch k as many.
        guard history.records.count == s.epoch else {
            throw TrainingError.badFile(path: path, object: "/rnn_dist/history",
                                        detail: "\(history.records.count) epochs recorded, but the state is at epoch \(s.epoch) (0-based): they must agree")
        }
        return Checkpoint(weights: weights, optimizerName: optimizer.name, slots: slots,
                          iterations: iterations, state: s, history: history, metadata: meta)
    }
}
