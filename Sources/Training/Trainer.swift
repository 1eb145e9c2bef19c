import Foundation
import MPI
import RNN

/// Set by SIGINT/SIGTERM; read once per batch and agreed on by all ranks through the all-reduce.
nonisolated(unsafe) private var stopSignal: Int32 = 0
/// 1 until the run's set-up is done, when a stop signal should end a single process at once (exit
/// 4, before training) instead of waiting for a first batch that a set-up blocked in an open (a FIFO
/// without a writer) would never reach.
nonisolated(unsafe) private var settingUp: Int32 = 0
/// Whether `catchStopSignals` has run in this process (a second call keeps what the first caught).
nonisolated(unsafe) private var catching = false

/// A stop signal's handler: during a single process's set-up, a line on stderr and exit 4
/// (async-signal-safe calls only); otherwise the flag the training loop checks at each batch.
private func stopRequested(_ s: Int32) {
    if settingUp != 0 {
        let line: StaticString = "rnn-dist: stopped by a signal during set-up, before training: no checkpoint written\n"
        _ = write(2, line.utf8Start, line.utf8CodeUnitCount)
        _exit(4)
    }
    stopSignal = s
}

/// The data-parallel trainer (docs/TRAINING.md §Training semantics): the same seeded permutation on
/// every rank, each rank its contiguous part of every global batch, one all-reduce of a single flat
/// buffer per batch, the same optimizer step everywhere; rank 0 writes the files.
///
/// Errors it throws are `CollectiveError`s when every rank meets them alike (a non-finite loss,
/// gradient or weight; diverged replicas; an agreed stop) and plain errors when they are this
/// rank's alone (a failed read, write or MPI call), which must end the job.
public final class Trainer {
    let config: TrainConfig
    let comm: Communicator
    let model: Model
    public let optimizer: any Optimizer
    public let schedule: Schedule
    public let files: RunFiles
    let metadata: WeightsMetadata
    public var state = TrainingState()
    var history = History()
    /// Rank 0's observers (the others have none).
    public var observers: [TrainingObserver] = []
    /// Test hook: behave as if interrupted after this many batches of this process's run.
    @_spi(Testing) public var stopAfterBatches: Int?
    /// Test hook: write a non-finite value into this rank's gradient sum before the all-reduce.
    @_spi(Testing) public var gradientFault: GradientFault?
    /// Test hooks of the watchdog: this rank stops itself (SIGSTOP) before the exchange of that
    /// optimizer step; this rank sleeps that many seconds before every exchange.
    @_spi(Testing) public var stallFault: (rank: Int, step: Int)?
    @_spi(Testing) public var delayFault: (rank: Int, value: Double)?
    /// `--inject-stall-inside RANK:STEP`: that rank stops inside the step's first collective.
    @_spi(Testing) public var insideStallFault: (rank: Int, step: Int)?
    /// The run files rank 0 has written (the others of `files` that exist are older: a resumed
    /// run's best weights from before the resume).
    public private(set) var written: Set<String> = []
    /// `--timeline`: spans of this rank's work, gathered on rank 0 at every checkpoint.
    public var timeline: Timeline?

    /// Runs `body`, as a timeline span called `name` when there is a timeline.
    private func timed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        if let timeline { return try timeline.span(name, body) }
        return try body()
    }

    /// The gradients and statistics between the ranks, once per batch.
    private let exchange: GradientExchange
    /// Under `--reproducible`, the exchange instead: chunk sums added exactly.
    private let reproducible: ReproducibleExchange?
    /// Steps this process has run (for `stopAfterBatches`).
    private var stepsRun = 0

    public init(config: TrainConfig, comm: Communicator, files: RunFiles, metadata: WeightsMetadata) throws {
        self.config = config
        self.comm = comm
        self.files = files
        self.metadata = metadata
        try config.validate()
        model = Model(config: config.model, seed: config.seed)
        optimizer = config.optimizer.make(parameterCount: model.weights.count, learningRate: Float(config.learningRate),
                                          momentum: config.momentum)
        schedule = config.schedule
        exchange = GradientExchange(comm: comm, dtype: config.exchange, vocabulary: config.model.vocabularySize)
        reproducible = config.reproducibleChunk.map { ReproducibleExchange(comm: comm, chunkRows: $0) }
        state.worldSize = comm.size
        // Rank 0's weights are the replicas' weights, whatever the others computed.
        try comm.broadcast(&model.weights, root: 0)
    }

    /// Sets the embedding's weights (V × E, row-major) before training starts (`--embeddings`).
    public func startEmbedding(from matrix: [Float]) {
        guard let view = model.config.parameterTable.first, view.count == matrix.count else {
            preconditionFailure("startEmbedding: \(matrix.count) values for the embedding's \(model.config.parameterTable.first?.count ?? 0)")
        }
        model.weights.replaceSubrange(view.range, with: matrix)
    }

    /// Restores a checkpoint read on rank 0 (pass nil on the other ranks): weights, optimizer slots,
    /// iterations and state are broadcast so every replica starts identical.
    public func restore(_ ckpt: Checkpoint?) throws {
        if let ckpt {
            model.weights = ckpt.weights
            try optimizer.restore(slots: ckpt.slots, iterations: ckpt.iterations)
            state = ckpt.state
            history = ckpt.history
        }
        try comm.broadcast(&model.weights, root: 0)
        var slots = optimizer.slots
        for i in slots.indices { try comm.broadcast(&slots[i].values, root: 0) }
        var iterations = [Int64(optimizer.iterations)]
        try comm.broadcast(&iterations, root: 0)
        try optimizer.restore(slots: slots, iterations: Int(iterations[0]))
        let json = try comm.broadcast(comm.isRoot ? Array(try state.json().utf8) : [], root: 0)
        state = try TrainingState(json: String(decoding: json, as: UTF8.self))
        state.worldSize = comm.size
        state.interruptedBy = nil
    }

    /// The set-up is over: from now on a stop signal stops training cleanly at the next batch.
    public static func setUpDone() { settingUp = 0 }

    /// Installs SIGINT, SIGTERM and SIGUSR1 handlers that ask the loop to stop after the current batch.
    /// - Parameter exitDuringSetUp: whether a stop signal before `setUpDone` ends the process at
    ///   once (one process only: ranks of a job could be signalled apart and leave the others
    ///   waiting in a set-up collective; mpirun and Slurm end those jobs themselves).
    ///
    /// A signal caught since `catchStopSignals` is kept: the loop stops at its first batch, or, when
    /// `exitDuringSetUp`, the process ends at once as it would have had the signal come now.
    public static func installSignalHandlers(exitDuringSetUp: Bool) {
        // Written here, before any signal: the handler then reads initialised globals only.
        settingUp = exitDuringSetUp ? 1 : 0
        if exitDuringSetUp && stopSignal != 0 { stopRequested(stopSignal) }
        // Again after MPI_Init, which may have set handlers of its own; but not SIGINT's after a
        // SIGINT, whose handler has given way to the default action.
        installHandlers(interrupt: stopSignal != SIGINT)
    }

    /// Catches the stop signals from the start of `train`, before MPI_Init (which takes a while under
    /// a launcher: SIGUSR1's default action ended ranks signalled in their first 0.3 s): a signal is
    /// recorded until `installSignalHandlers` decides what it does.
    ///
    /// `main` calls it first thing for `train` (the rest of a process's start — the libraries'
    /// constructors, the command line's parsing — took about 60 ms during which a stop signal had
    /// its default action); `train` again; a second call keeps what the first caught. It unblocks the
    /// stop signals too: one sent across `KernelChoice`'s re-execution waited there, blocked.
    public static func catchStopSignals() {
        if !catching {
            catching = true
            settingUp = 0
            stopSignal = 0
            installHandlers()
        }
        var stops = stopSignalSet()
        sigprocmask(SIG_UNBLOCK, &stops, nil)
    }

    /// SIGINT, SIGTERM and SIGUSR1.
    private static func stopSignalSet() -> sigset_t {
        var stops = sigset_t()
        sigemptyset(&stops)
        for s in [SIGINT, SIGTERM, SIGUSR1] { sigaddset(&stops, s) }
        return stops
    }

    /// Before the process executes itself again (`KernelChoice`): blocks the stop signals — blocked
    /// and pending signals survive `execve`, handlers do not — and raises again one already caught,
    /// so the new image (`catchStopSignals`) receives it.
    public static func keepStopSignalsAcrossExec() {
        var stops = stopSignalSet()
        sigprocmask(SIG_BLOCK, &stops, nil)
        if catching && stopSignal != 0 { raise(stopSignal) }
    }

    /// The execution `keepStopSignalsAcrossExec` prepared failed: the signals pending meanwhile are
    /// taken as caught (a SIGINT's handler has given way to the default action after the first, so
    /// unblocking it pending would end the process), then unblocked.
    public static func stopSignalsAfterAFailedExec() {
        var stops = stopSignalSet()
        var now = timespec(tv_sec: 0, tv_nsec: 0)
        while true {
            let s = sigtimedwait(&stops, nil, &now)
            guard s > 0 else { break }
            if stopSignal == 0 { stopSignal = s }
        }
        catchStopSignals()
    }

    private static func installHandlers(interrupt: Bool = true) {
        // The first SIGINT asks for a clean stop; the handler then gives way to the default action,
        // so a second Ctrl-C ends the process at once.
        if interrupt { signal(SIGINT) { s in stopRequested(s); signal(SIGINT, SIG_DFL) } }
        // SIGTERM stays caught: under a launcher a rank often gets it twice — scancel sends it to
        // every process of the job, and mpirun, itself terminated, sends its own to its ranks — and
        // the second must not end the batch and the checkpoint the first asked for (SIGKILL, a
        // grace period later, is the hard stop).
        signal(SIGTERM) { s in stopRequested(s) }
        // SIGUSR1 is the way to stop a job: mpirun and Slurm pass it to the ranks without killing
        // them (mpirun answers SIGTERM with SIGKILL after a grace period). It stays caught.
        signal(SIGUSR1) { s in stopRequested(s) }
    }

    /// Whether training is over (`TrainConfig.isFinished(at:)`).
    public var isFinished: Bool { config.isFinished(at: state) }

    /// Trains to `config.epochs` (or early stop). Throws a `CollectiveError` wrapping
    /// `TrainingError.interrupted` (exit 4) after writing a checkpoint when stopped, or
    /// `.nonFinite` when the loss, the reduced gradient or the weights stop being finite (no file
    /// is written from that step on, so the last checkpoint stays loadable).
    public func run(source: RowSource) throws {
        exchange.overlap = try exchangeOverlap.resolved(comm: comm)
        exchange.timeline = timeline
        let batches = schedule.batchesPerEpoch
        var stopAgreed = false
        while !isFinished {
            let permutation = schedule.permutation(epoch: state.epoch)
            while state.nextBatch < batches {
                let t0 = comm.wallTime()
                let batch = schedule.batch(state.nextBatch)
                let part = reproducible.map { Schedule.chunkPart(of: batch, chunkRows: $0.chunkRows, rank: comm.rank, size: comm.size) }
                    ?? Schedule.part(of: batch, rank: comm.rank, size: comm.size)
                let step = try timed("step") {
                    try self.step(rows: Array(permutation[part]), positions: Array(part), globalRows: batch.count, source: source)
                }
                stopAgreed = step.stop
                state.record(step.stats, seconds: comm.wallTime() - t0, mpiSeconds: step.mpiSeconds)
                let running = BatchStats(lossSum: state.epochLossSum, correct: state.epochCorrect, count: state.epochCount)
                for o in observers {
                    o.batchDone(epoch: state.epoch, batch: state.nextBatch, of: batches, step: optimizer.iterations,
                                stats: step.stats, running: running, elapsed: state.epochSeconds)
                }
                guard state.nextBatch < batches else { break }   // the epoch end writes a checkpoint
                if stopAgreed {
                    state.interruptedBy = stopName
                    try writeCheckpoint()
                    throw interrupted()
                }
                if let k = config.checkpointEvery, state.nextBatch % k == 0 { try writeCheckpoint() }
            }
            try endEpoch(source: source)
            if stopAgreed && !isFinished {
                state.interruptedBy = stopName
                try writeCheckpoint()   // the epoch end's checkpoint again, marked as interrupted
                throw interrupted()
            }
        }
        try timeline?.finish()
    }

    /// What one step reports: the global batch's stats (before the update, as Keras reports them),
    /// whether the ranks agreed to stop, and the seconds spent in the all-reduce.
    struct StepResult {
        var stats: BatchStats
        var stop: Bool
        var mpiSeconds: Double
    }

    /// One optimizer step on this rank's `rows` of the current global batch (possibly none), which
    /// sit at `positions` of the epoch's permutation (the key of their dropout masks); the global
    /// batch has `globalRows` rows.
    private func step(rows: [Int], positions: [Int], globalRows: Int, source: RowSource) throws -> StepResult {
        // 1. Forward and backward: this rank's sum of per-sample gradients, over its share of the
        //    step's rows in `--accumulate` K micro-batches (contiguous parts, as ranks split a batch),
        //    or under `--reproducible` chunk by chunk, each chunk's sum kept apart.
        model.zeroGradients()
        reproducible?.begin()
        var local = BatchStats.zero
        let parts: [Range<Int>]
        if let r = reproducible {
            parts = stride(from: 0, to: rows.count, by: r.chunkRows).map { $0 ..< min($0 + r.chunkRows, rows.count) }
        } else {
            let k = config.microBatches
            parts = k == 1 ? [0 ..< rows.count] : (0 ..< k).map { Schedule.part(of: 0 ..< rows.count, rank: $0, size: k) }.filter { !$0.isEmpty }
        }
        let fault = gradientFault.flatMap { $0.rank == comm.rank && $0.step == optimizer.iterations + 1 ? $0.value : nil }
        defer { model.backwardObserver = nil }
        for (i, part) in parts.enumerated() {
            if i > 0 && reproducible != nil { model.zeroAccumulatedGradients() }
            let (x, y) = try timed("read") { try source.read(rows: Array(rows[part])) }
            // The embedding rows' exchange behind backward, where it applies (the same on every rank).
            if reproducible == nil && !y.isEmpty {
                model.backwardObserver = exchange.behindBackward(for: model, microBatches: config.microBatches,
                                                                 globalRows: globalRows, steps: x.count / y.count)
            }
            let stats = timed("forward_backward") {
                let key = DropoutKey(seed: config.seed, epoch: state.epoch, positions: Array(positions[part]))
                return model.accumulateGradients(x: x, y: y, batch: y.count, dropout: key)
            }
            local += stats
            // The fault goes into the head's last gradient, which every exchange carries.
            if let fault, i == parts.count - 1 { model.gradients[model.gradients.count - 1] = fault }
            reproducible?.keep(model, stats: stats)
        }
        if let fault, parts.isEmpty {                      // a rank without rows this step
            model.gradients[model.gradients.count - 1] = fault
            reproducible?.keep(model, stats: .zero)
        }
        stepsRun += 1
        if let s = stallFault, s.rank == comm.rank, s.step == optimizer.iterations + 1 { kill(getpid(), SIGSTOP) }
        if let s = insideStallFault, s.rank == comm.rank, s.step == optimizer.iterations + 1 { comm.stopInsideNextCollective = true }
        if let d = delayFault, d.rank == comm.rank { usleep(UInt32(d.value * 1e6)) }
        // 2. One all-reduce makes them the global batch's, with the loss, counts and stop flag.
        // The watchdog's label: the step being exchanged, then (below) the steps completed.
        comm.watchdogStep = optimizer.iterations + 1
        defer { comm.watchdogStep = optimizer.iterations }
        let t = comm.wallTime()
        let wantsStop = stopSignal != 0 || stopAfterBatches.map { stepsRun >= $0 } ?? false
        let (global, stop) = try timed("allreduce") {
            if let r = reproducible { return try r.reduce(model, stop: wantsStop, chunksInStep: r.chunkCount(rows: globalRows)) }
            return try exchange.exchange(model, local: local, stop: wantsStop)
        }
        // At one rank nothing travels: the reproducible mode's fixed-point sums there are compute, not MPI.
        let mpiSeconds = comm.size > 1 ? comm.wallTime() - t : 0
        // 3. Every rank holds the same sums, so every rank stops here alike, before the update.
        try requireFinite(global.lossSum.isFinite, "loss")
        try requireFinite(Self.allFinite(model.gradients), "gradient")
        guard global.count > 0 else { return StepResult(stats: global, stop: stop, mpiSeconds: mpiSeconds) }
        // 4. The mean over the global batch, clipping, the same update on every rank. Without
        //    clipping, the optimizer takes the sums and 1/count and scales in its one pass.
        // The schedule's rate for this step (a pure function of the step: resume continues it).
        optimizer.learningRate = Float(learningRate(atStep: optimizer.iterations))
        let check = timed("optimizer") {
            let scale = 1 / Float(global.count)
            guard let clipNorm = config.clipNorm else {
                return optimizer.apply(gradients: model.gradients, scale: scale, to: &model.weights)
            }
            model.gradients.withUnsafeMutableBufferPointer { g in
                for i in 0..<g.count { g[i] *= scale }
            }
            GradientClipping.clip(&model.gradients, maxNorm: Float(clipNorm))
            return optimizer.apply(gradients: model.gradients, scale: 1, to: &model.weights)
        }
        // A finite gradient can still give an update that overflows (a huge learning rate).
        try requireFinite(check.weightsFinite, "weights")
        return StepResult(stats: global, stop: stop, mpiSeconds: mpiSeconds)
    }

    /// The rate of optimizer step `t` (0-based): the schedule's, times what `--reduce-lr-on-plateau`
    /// has made of it so far.
    public func learningRate(atStep t: Int) -> Double {
        config.learningRate(atStep: t) * state.lrFactor
    }

    /// What this rank sent per batch in the current epoch.
    public var traffic: ExchangeTraffic { reproducible?.traffic ?? exchange.traffic }
    /// `--exchange-overlap`: when the embedding rows go behind backward (resolved when `run` starts).
    public var exchangeOverlap = ExchangeOverlap.auto
    /// Test and benchmark hook: exchange every embedding row (the dense all-reduce).
    @_spi(Testing) public var denseExchange: Bool {
        get { exchange.dense }
        set { exchange.dense = newValue; reproducible?.dense = newValue }
    }

    private func requireFinite(_ ok: Bool, _ what: String) throws {
        guard ok else {
            throw CollectiveError(TrainingError.nonFinite(what: what, epoch: state.epoch + 1, batch: state.nextBatch + 1),
                                  exitCode: CollectiveError.trainingFailed)
        }
    }

    /// What stopped the run: this rank's signal, else the test hook, else another rank's signal.
    private var stopName: String {
        switch stopSignal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        case SIGUSR1: return "SIGUSR1"
        default: return stopAfterBatches != nil ? "--stop-after-batches" : "a signal to another rank"
        }
    }

    private func interrupted() -> CollectiveError {
        CollectiveError(TrainingError.interrupted(signal: stopName, checkpoint: files.checkpoint),
                        exitCode: CollectiveError.interrupted)
    }

    /// Whether every value is finite: no exponent field is all ones (±inf, NaN). An integer max,
    /// which the compiler vectorizes (a Float sum would have to run in order).
    static func allFinite(_ v: [Float]) -> Bool {
        v.withUnsafeBufferPointer { p in
            var exponent: UInt32 = 0
            for x in p { exponent = max(exponent, x.bitPattern & 0x7f80_0000) }
            return exponent != 0x7f80_0000
        }
    }

    /// Validation over all ranks (the trailing rows of `source`, the split being trained on):
    /// `Evaluator`, as `eval --split val` computes it — exact, so identical for any number of ranks.
    func validate(source: RowSource) throws -> ClassificationCounts {
        try Evaluator.counts(model: model, source: source, rows: schedule.validationRows, comm: comm,
                             batchSize: config.batchSize)
    }

    /// Validation, history, replica check, files. The validation rows are the trailing rows of
    /// `source`, the split being trained on.
    private func endEpoch(source: RowSource) throws {
        let t0 = comm.wallTime()
        let val = try timed("validation") { try validate(source: source) }   // count 0 without validation rows: NaN metrics
        let valSeconds = comm.wallTime() - t0
        try checkReplicas()
        let train = BatchStats(lossSum: state.epochLossSum, correct: state.epochCorrect, count: state.epochCount)
        let rec = EpochRecord(
            epoch: state.epoch + 1, loss: train.loss, acc: train.accuracy, valLoss: val.loss, valAcc: val.accuracy,
            seconds: state.epochSeconds + valSeconds,
            samplesPerSecond: state.epochSeconds > 0 ? Double(state.epochCount) / state.epochSeconds : 0,
            mpiShare: state.epochSeconds > 0 ? state.epochMPISeconds / state.epochSeconds : 0,
            learningRate: learningRate(atStep: max(0, optimizer.iterations - 1)))
        history.records.append(rec)
        let monitored = val.count > 0 ? rec.valLoss : rec.loss
        if let rule = config.reduceLROnPlateau {
            // After the epoch's rate was recorded, as Keras's callback logs it before reducing.
            (state.lrFactor, state.plateauBest, state.plateauWait) = rule.update(loss: monitored, factor: state.lrFactor,
                                                                                 best: state.plateauBest, wait: state.plateauWait)
        }
        let improved = monitored < state.bestValLoss
        if improved {
            state.bestValLoss = monitored
            state.epochsWithoutImprovement = 0
        } else {
            state.epochsWithoutImprovement += 1
        }
        state.beginEpoch(rec.epoch)
        for o in observers { o.epochDone(rec, epochs: config.epochs) }
        exchange.resetTraffic()
        reproducible?.resetTraffic()
        if comm.isRoot { try timed("files") {
            try WeightsFile.write(to: files.weights, weights: model.weights, metadata: metadata)
            if improved {
                try WeightsFile.write(to: files.best, weights: model.weights, metadata: metadata)
            }
            try HistoryFile.write(to: files.history, history: history, config: config, worldSize: comm.size)
            try HistoryCSV.write(to: files.csv, history: history)
            written.formUnion([files.weights, files.history, files.csv] + (improved ? [files.best] : []))
        } }
        try writeCheckpoint()
    }

    /// Compares a hash of every weight's bits across ranks (min and max must agree).
    private func checkReplicas() throws {
        guard comm.size > 1 else { return }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        model.weights.withUnsafeBufferPointer { w in
            for v in w { h = (h ^ UInt64(v.bitPattern)) &* 0x100_0000_01b3 }
        }
        var lo = [Int64(bitPattern: h)], hi = [Int64(bitPattern: h)]
        try comm.allReduce(&lo, op: .min)
        try comm.allReduce(&hi, op: .max)
        guard lo == hi else {
            throw CollectiveError(TrainingError.replicasDiverged(epoch: state.epoch + 1), exitCode: CollectiveError.trainingFailed)
        }
    }

    /// Rank 0 writes the checkpoint atomically; then the timeline gathers (every rank calls this).
    func writeCheckpoint() throws {
        if comm.isRoot {
            try timed("checkpoint") {
                let c = Checkpoint(weights: model.weights, optimizerName: optimizer.name, slots: optimizer.slots,
                                   iterations: optimizer.iterations, state: state, history: history, metadata: metadata)
                try c.write(to: files.checkpoint)
            }
            written.insert(files.checkpoint)
            for o in observers { try o.wrote(files.checkpoint, what: "checkpoint") }
        }
        try timeline?.flush()
    }
}
