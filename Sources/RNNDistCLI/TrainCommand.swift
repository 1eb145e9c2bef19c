import ArgumentParser
import Foundation
import MPI
import POSIX
import RNN
import TextData
@_spi(Testing) import Training

/// Model and data flags shared by `train` (and, for the model kind, by `eval`).
struct ModelOptions: ParsableArguments {
    // The flags that describe the network are optional underneath, so that `--model-config` can
    // refuse one given at its default value too (`given`); the properties below apply the defaults.
    @Option(name: .customLong("model"), help: "Recurrent cell: simple-rnn, lstm or gru. (default: lstm)")
    var modelFlag: ModelConfig.Kind?
    @Option(parsing: .unconditional, help: "Vocabulary size V; must match the dataset (default: the dataset's num_words, 10000 from prepare).")
    var numWords: Int?
    @Option(parsing: .unconditional, help: "Sequence length T; must match the dataset (default: the dataset's maxlen, 500 from prepare).")
    var maxlen: Int?
    @Option(name: .customLong("embed-dim"), parsing: .unconditional, help: "Embedding width E. (default: 32)")
    var embedDimFlag: Int?
    @Option(name: .customLong("units"), parsing: .unconditional, help: "Units H of each recurrent layer. (default: 32)")
    var unitsFlag: Int?
    @Option(name: .customLong("layers"), parsing: .unconditional, help: "Stacked recurrent layers (all but the last return sequences). (default: 1)")
    var layersFlag: Int?
    @Flag(help: "Wrap every recurrent layer in Keras's Bidirectional (a forward and a backward copy, outputs concatenated).")
    var bidirectional = false
    @Option(name: .customLong("dropout"), parsing: .unconditional,
            help: "Dropout rate R in [0, 1) on each recurrent layer's input (Keras `dropout`; training only). (default: 0.0)")
    var dropoutFlag: Double?
    @Option(name: .customLong("recurrent-dropout"), parsing: .unconditional,
            help: "Dropout rate R in [0, 1) on the recurrent state h(t-1) (Keras `recurrent_dropout`; training only). (default: 0.0)")
    var recurrentDropoutFlag: Double?
    @Option(name: .customLong("gru-reset-after"),
            help: "GRU only: true is Keras 3's GRU; false the reset-before GRU of Keras 2 (the book's), bias (3*units,). (default: true)")
    var gruResetAfterFlag: Bool?

    var model: ModelConfig.Kind { modelFlag ?? .lstm }
    var embedDim: Int { embedDimFlag ?? 32 }
    var units: Int { unitsFlag ?? 32 }
    var layers: Int { layersFlag ?? 1 }
    var dropout: Double { dropoutFlag ?? 0 }
    var recurrentDropout: Double { recurrentDropoutFlag ?? 0 }
    var gruResetAfter: Bool { gruResetAfterFlag ?? true }

    /// The flags describing the network that the command line gives, at any value.
    var given: [String] {
        [("--model", modelFlag != nil), ("--embed-dim", embedDimFlag != nil), ("--units", unitsFlag != nil),
         ("--layers", layersFlag != nil), ("--bidirectional", bidirectional), ("--dropout", dropoutFlag != nil),
         ("--recurrent-dropout", recurrentDropoutFlag != nil), ("--gru-reset-after", gruResetAfterFlag != nil)].filter(\.1).map(\.0)
    }

    /// The preset these flags describe, for a dataset of `numWords` and `classes`.
    func preset(numWords: Int, classes: Int = 2) -> ModelConfig.Preset {
        ModelConfig.Preset(kind: model, numWords: numWords, embedDim: embedDim, units: units, layers: layers,
                           bidirectional: bidirectional, dropout: dropout, recurrentDropout: recurrentDropout,
                           resetAfter: gruResetAfter, classes: classes)
    }
}

extension ModelConfig.Kind: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension ExchangeDType: ExpressibleByArgument {}
extension ExchangeOverlap: ExpressibleByArgument {}

/// How `train` reports its epochs on stdout.
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    /// A progress line and one Keras-like line per epoch, for people.
    case text
    /// One JSON object per epoch and no progress lines, for scripts (the bench reads it).
    case json
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Data-parallel training; run it under `mpirun -n N` (alone it is one rank).",
        discussion: """
        Every rank holds a replica of the model and trains on its contiguous part of each global batch; the gradient sums are all-reduced after every batch. Rank 0 writes into --run-dir:
          model.weights.h5  last weights (Keras 3 layout + config + vocabulary)
          best.weights.h5   lowest val_loss so far: the weights to keep
          checkpoint.h5     resume state, at each epoch end and --checkpoint-every
          history.h5        loss, acc, val_loss, val_acc, seconds per epoch
          history.csv       the same as Keras's CSVLogger writes it (epoch 0-based)
        SIGINT/SIGTERM/SIGUSR1 finish the current batch, write a checkpoint and exit with status 4 (a single process still setting up exits 4 at once, before training). Resume with the same command plus --resume RUN_DIR/checkpoint.h5, with any number of ranks.
        """)

    @Option(help: "Dataset written by `rnn-dist prepare`.")
    var data = "data/imdb.h5"
    @Option(help: "Folder for weights, checkpoint and history (created if missing).")
    var runDir = "runs"
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "A Keras 3 Sequential as model.to_json() writes it (Embedding, Flatten, Dropout, SimpleRNN/LSTM/GRU, Bidirectional, Conv1D, MaxPooling1D, GlobalMax/AveragePooling1D, Dense): trained instead of the --model flags' network; its weights load with model.load_weights. An Embedding with \"trainable\": false stays frozen.")
    var modelConfig: String?
    @Option(help: "Pretrained word vectors for the embedding's first weights (book 6.1.3): GloVe text (word v1 … vE per line) or word2vec text, plain or .gz/.bz2/.xz/.zst; words without a vector start at zero. Read by every rank; a resumed run keeps its checkpoint's.")
    var embeddings: String?
    @Flag(help: "Keep the embedding's weights as they start (Keras trainable=False, book 6.1.3 with --embeddings): no gradient is formed or exchanged for them.")
    var freezeEmbeddings = false
    // Defaults come from TrainConfig.Defaults, the one place they are set; the rules from TrainConfig.validate.
    @Option(parsing: .unconditional, help: "Global batch size B (split across ranks).")
    var batchSize = TrainConfig.Defaults.batchSize
    @Option(parsing: .unconditional, help: "K: each optimizer step trains K × B rows, each rank its share in K micro-batches, with one exchange (a large global batch in the memory of B).")
    var accumulate = 1
    @Option(parsing: .unconditional, help: "Epochs to train (the total, also when resuming).")
    var epochs = TrainConfig.Defaults.epochs
    @Option(help: "rmsprop, adam or sgd.")
    var optimizer = TrainConfig.Defaults.optimizer
    @Option(parsing: .unconditional, help: "Learning rate (default 0.001; 0.01 for sgd).")
    var lr: Double?
    @Option(parsing: .unconditional, help: "Momentum for sgd.")
    var momentum = TrainConfig.Defaults.momentum
    @Option(parsing: .unconditional, help: "Clip the gradient to this global norm (off by default).")
    var clipNorm: Double?
    @Option(help: "How the learning rate moves after any warm-up: constant, cosine (half a cosine towards 0 over --epochs: × ½(1 + cos(π·t/T)) at step t of T), or step:EVERY:FACTOR (× FACTOR every EVERY epochs).")
    var lrSchedule = "constant"
    @Option(parsing: .unconditional, help: "Epochs (may be fractional) over which the rate rises linearly to its value.")
    var warmupEpochs = 0.0
    @Option(help: "Scale --lr with the global batch B relative to 128: none, linear (× B/128) or sqrt (× √(B/128)).")
    var lrScaling = "none"
    @Option(help: "FACTOR:PATIENCE: multiply the rate by FACTOR when the validation loss has not improved (by 1e-4) for PATIENCE epochs, as Keras's ReduceLROnPlateau (off by default).")
    var reduceLrOnPlateau: String?
    @Option(parsing: .unconditional, help: "Trailing fraction of the training rows held out for validation, as Keras.")
    var validationSplit = TrainConfig.Defaults.validationSplit
    @Option(parsing: .unconditional, help: "Seed of the weights and of every epoch's shuffle.")
    var seed = TrainConfig.Defaults.seed
    @Option(parsing: .unconditional, help: "Train on the first N training rows only (quick runs and tests).")
    var limit: Int?
    @Option(parsing: .unconditional, help: "Also write a checkpoint every K batches.")
    var checkpointEvery: Int?
    @Option(parsing: .unconditional, help: "Stop after P epochs without val_loss improvement (off by default).")
    var patience: Int?
    @Option(name: .customLong("allreduce-dtype"),
            help: "How gradients travel between ranks: fp32 (all-reduce) or bf16 (half the bytes, summed in fp32 on arrival).")
    var allreduceDType: ExchangeDType = .fp32
    @Option(help: "When the embedding rows' all-reduce runs: on starts most of them during the first recurrent layer's backward pass, as they become final (the same sums); off after backward; auto (default) on when the ranks span more than one host.")
    var exchangeOverlap: ExchangeOverlap = .auto
    @Flag(help: "The same weights, optimizer state and history bits at any number of ranks, on one host or several: each step's rows are cut into chunks of --chunk-rows at fixed positions, each chunk's gradient is computed by one rank with the same shapes, and the chunks' sums are added in 64-bit integers (exact in any order). Twice the exchange bytes; fp32 only.")
    var reproducible = false
    @Option(parsing: .unconditional, help: "With --reproducible: C, the rows of a chunk (default 16: up to 8 busy ranks at --batch-size 128; ranks beyond ⌈B/C⌉ wait).")
    var chunkRows: Int?
    @Option(help: "Continue from this checkpoint.")
    var resume: String?
    @Flag(help: "Start afresh in a --run-dir whose checkpoint.h5 an unfinished run wrote (refused without it: that checkpoint is the only way to continue that run).")
    var overwrite = false
    @Option(help: "Write TensorBoard event files into this folder (off by default); `tensorboard --logdir` it.")
    var tensorboard: String?
    @Option(parsing: .unconditional, help: "With --tensorboard: log batch_loss and learning_rate every K optimizer steps (default 20; a step is --accumulate batches).")
    var logEvery: Int?
    @Option(help: "Write a Chrome trace (chrome://tracing, Perfetto) of every rank's work to this file (off by default).")
    var timeline: String?
    @Option(help: "text: progress and a Keras-like line per epoch; json: stdout holds one JSON object per epoch and nothing else (epoch, epochs, seconds, samples_per_second, loss, acc, val_loss, val_acc, mpi_share, vocabulary; with more than one rank also exchange_bytes_per_batch, embedding_rows_per_batch, embedding_rows_behind_backward_per_batch), the other lines (the run's start, the files written) go to stderr.")
    var logFormat: LogFormat = .text
    @Option(help: ArgumentHelp("Test hook: stop as if interrupted after K batches.", visibility: .private))
    var stopAfterBatches: Int?
    @Option(help: ArgumentHelp("Test hook: VALUE@RANK:STEP writes nan, inf or -inf into that rank's gradient at that optimizer step.",
                               visibility: .private))
    var injectFault: String?
    @Flag(help: ArgumentHelp("Benchmark hook: all-reduce every embedding row, not only the touched ones.", visibility: .private))
    var denseExchange = false
    @Option(help: ArgumentHelp("Test hook: RANK:STEP stops that rank (SIGSTOP to itself) before the exchange of that optimizer step.",
                               visibility: .private))
    var injectStall: String?
    @Option(help: ArgumentHelp("Test hook: RANK:STEP stops that rank (SIGSTOP to itself) inside the first collective of that optimizer step's exchange, once it has started it.",
                               visibility: .private))
    var injectStallInside: String?
    @Option(help: ArgumentHelp("Test hook: RANK stops that rank (SIGSTOP to itself) before MPI_Init.", visibility: .private))
    var injectStallStart: Int?
    @Option(help: ArgumentHelp("Test hook: RANK sends itself SIGUSR1 before MPI_Init.", visibility: .private))
    var injectStopStart: Int?
    @Flag(help: ArgumentHelp("Test hook: the process sends itself SIGUSR1 first thing in main, before the command line is parsed (RNNDist.catchStopSignalsOfTrain).",
                             visibility: .private))
    var injectStopMain = false
    @Option(help: ArgumentHelp("Test hook: RANK:SECONDS makes that rank sleep before every exchange.", visibility: .private))
    var injectDelay: String?
    @Option(parsing: .unconditional,
            help: "Seconds a collective may wait for the slowest rank before the job stops, naming the ranks that did not arrive (exit status 6; Launch/supervise restarts from the last checkpoint): 1 to 86400; 0 turns the watchdog off.")
    var collectiveTimeout: Double = 600

    /// The rules are `TrainConfig.validate`'s: here they run on the flags alone (with the book's
    /// dataset sizes where the flags leave them open), before any MPI work; `run` checks again
    /// against the real dataset.
    func validate() throws {
        if let logEvery {
            guard logEvery >= 1 else { throw ValidationError("--log-every \(logEvery) is outside 1…") }
            guard tensorboard != nil else { throw ValidationError("--log-every sets how often --tensorboard logs; give --tensorboard DIR too") }
        }
        if chunkRows != nil && !reproducible { throw ValidationError("--chunk-rows needs --reproducible") }
        guard !runDir.isEmpty else { throw ValidationError("--run-dir is empty: name the folder for the run's files") }
        if tensorboard?.isEmpty == true { throw ValidationError("--tensorboard is empty: name the folder for the event files") }
        if let f = injectFault, GradientFault(f) == nil {
            throw ValidationError("--inject-fault must be VALUE@RANK:STEP with VALUE nan, inf or -inf (got '\(f)')")
        }
        guard LearningRateSchedule.parse(lrSchedule) != nil else {
            throw ValidationError("--lr-schedule must be constant, cosine or step:EVERY:FACTOR with EVERY ≥ 1 and FACTOR > 0 (got '\(lrSchedule)')")
        }
        if let p = reduceLrOnPlateau, PlateauRule.parse(p) == nil {
            throw ValidationError("--reduce-lr-on-plateau must be FACTOR:PATIENCE with 0 < FACTOR < 1 and PATIENCE ≥ 1 (got '\(p)')")
        }
        guard LearningRateSchedule.Scaling(rawValue: lrScaling) != nil else {
            throw ValidationError("--lr-scaling must be none, linear or sqrt (got '\(lrScaling)')")
        }
        guard collectiveTimeout.isFinite, collectiveTimeout >= 0, collectiveTimeout <= 86_400 else {
            throw ValidationError("--collective-timeout \(collectiveTimeout) is outside 0…86400 seconds (0 turns it off)")
        }
        // Below a second, MPI_Init alone outlasts it: every start "stalled" (exit 6), and was restarted.
        guard collectiveTimeout == 0 || collectiveTimeout >= 1 else {
            throw ValidationError("--collective-timeout \(collectiveTimeout) is below 1 second (starting the job takes longer; 0 turns it off)")
        }
        for (flag, value) in [("--inject-stall", injectStall), ("--inject-stall-inside", injectStallInside), ("--inject-delay", injectDelay)] {
            if let v = value, Self.rankAndNumber(v) == nil { throw ValidationError("\(flag) must be RANK:NUMBER (got '\(v)')") }
        }
        for (flag, path) in [("--data", data), ("--resume", resume), ("--model-config", modelConfig),
                             ("--embeddings", embeddings), ("--timeline", timeline)] where path?.isEmpty == true {
            throw ValidationError("\(flag) needs a path, not an empty string")
        }
        let m = modelOptions
        if modelConfig != nil {
            if let flag = m.given.first {
                throw ValidationError("\(flag) describes the network, which --model-config sets; give one or the other")
            }
        }
        do {
            // Without --num-words the dataset's vocabulary is not known yet: the smallest one (4 ids)
            // here, so that only what no dataset could fix is a bad command line; prepare() checks
            // the model again with the dataset's (exit 2: a 10,000-word guess refused models that
            // fit a small vocabulary).
            try checkPreset(numWords: m.numWords ?? 4)
            let flags = config(numWords: m.numWords ?? 4, maxlen: m.maxlen ?? 500, dataRows: TrainConfig.maxRows)
            try flags.validate()
            try flags.validateRates(dataKnown: false)
        } catch { throw ValidationError("\(error)") }
        if momentum != TrainConfig.Defaults.momentum && optimizer != .sgd {
            throw ValidationError("--momentum is --optimizer sgd's; \(optimizer.rawValue) would ignore it")
        }
    }

    /// `RANK:NUMBER` of the test hooks.
    static func rankAndNumber(_ text: String) -> (rank: Int, value: Double)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let r = Int(parts[0]), r >= 0, let v = Double(parts[1]), v.isFinite, v >= 0 else { return nil }
        return (r, v)
    }

    /// A line that is not an epoch's record: on stdout, on stderr with `--log-format json` (whose
    /// stdout holds JSON only, for scripts).
    private func report(_ line: String) {
        if logFormat == .json { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
    }

    func run() throws {
        // A rank that stalls while the job starts: MPI_Init and the watchdog's set-up, guarded apart.
        // Whether --resume is this run folder's own checkpoint (decided before it is replaced).
        let resumedInPlace = resume.map { sameFile($0, RunFiles(directory: runDir).checkpoint) } ?? false
        let startUp = StartUpGuard(seconds: collectiveTimeout)
        Trainer.catchStopSignals()
        if let r = injectStallStart, ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"] == "\(r)" { kill(getpid(), SIGSTOP) }
        if let r = injectStopStart, (ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"] ?? "0") == "\(r)" { kill(getpid(), SIGUSR1) }
        let comm = try Communicator.world()
        try runDistributed(comm: comm) {
            if collectiveTimeout > 0 { try comm.startWatchdog(timeout: collectiveTimeout, hostName: hostName()) }
            startUp.cancel()
            Trainer.installSignalHandlers(exitDuringSetUp: comm.size == 1)
            // Everything that can fail on bad input happens here, before any collective of the
            // training loop; a failure on any rank is reported once and every rank exits cleanly.
            let (data, config, checkpoint, vectors) = try CollectiveError.agree(comm) { try prepare(comm) }
            // The rows this run uses, once per host in shared memory (a failure is agreed on inside).
            let rows = try PreloadedRows.load(data.train, rows: config.schedule.trainCount + config.schedule.valCount,
                                              numWords: data.numWords, comm: comm)
            try printHostLoadNote(comm)
            let metadata = WeightsMetadata(config: config, tokenizerJSON: data.tokenizerJSON, vocabulary: data.vocabulary,
                                           classNames: data.classNames)
            let trainer = try Trainer(config: config, comm: comm, files: RunFiles(directory: runDir), metadata: metadata)
            trainer.stopAfterBatches = stopAfterBatches
            trainer.gradientFault = injectFault.flatMap(GradientFault.init)
            trainer.stallFault = injectStall.flatMap(Self.rankAndNumber).map { ($0.rank, Int($0.value)) }
            trainer.insideStallFault = injectStallInside.flatMap(Self.rankAndNumber).map { ($0.rank, Int($0.value)) }
            trainer.delayFault = injectDelay.flatMap(Self.rankAndNumber)
            if let timeline { trainer.timeline = try Timeline(path: timeline, comm: comm) }
            if resume != nil { try trainer.restore(checkpoint) } else if let vectors {
                // Every rank read the same file: the replicas start alike without a broadcast.
                trainer.startEmbedding(from: vectors.matrix)
                if comm.isRoot { report("embeddings: \(vectors.coverage)") }
            }
            trainer.denseExchange = denseExchange
            trainer.exchangeOverlap = exchangeOverlap
            if comm.isRoot {
                let printer = ProgressPrinter(format: logFormat)
                // One rank exchanges nothing (--reproducible's chunk sums counted as traffic: "exchange: 0.000 MB/batch").
                if comm.size > 1 { printer.traffic = { [unowned trainer] in trainer.traffic } }
                printer.vocabulary = config.model.vocabularySize
                trainer.observers.append(printer)
                if let tensorboard {
                    let logger = try TensorBoardLogger(directory: tensorboard, every: logEvery ?? 20, config: config,
                                                       startStep: trainer.optimizer.iterations)
                    logger.rate = { [unowned trainer] in trainer.learningRate(atStep: $0) }
                    trainer.observers.append(logger)
                }
            }
            if comm.isRoot {
                let s = trainer.schedule
                report("rnn-dist train: \(config.model.label), \(comm.size) rank\(comm.size == 1 ? "" : "s"), " +
                      "\(s.trainCount) training and \(s.valCount) validation rows, global batch \(config.stepBatch)\(accumulate > 1 ? " (\(accumulate) × \(batchSize))" : ""), " +
                      "\(config.model.parameterCount) parameters" +
                      (resume.map { trainer.isFinished ? ", resumed from \($0), which has finished" : ", resumed from \($0) at epoch \(trainer.state.epoch + 1) batch \(trainer.state.nextBatch + 1)" } ?? "") +
                      (limit.flatMap { $0 > data.train.rowCount ? " (--limit \($0) is above the dataset's \(data.train.rowCount) rows: all are used)" : nil } ?? ""))
            }
            if trainer.isFinished {
                if comm.isRoot {
                    // Early stopping: decided by the run that wrote the checkpoint, or by a --patience
                    // lowered on this resume (then also in the middle of an epoch).
                    let early = trainer.state.epoch < config.epochs ? config.patience : nil
                    let without = trainer.state.epochsWithoutImprovement
                    // Numbered as `inspect` numbers it: the epoch in progress and its next batch.
                    let s = trainer.state
                    let at = s.nextBatch > 0 ? "at epoch \(s.epoch + 1) of --epochs \(config.epochs), next batch \(s.nextBatch + 1)"
                                             : "at the end of epoch \(s.epoch) of --epochs \(config.epochs)"
                    report("nothing to train: the checkpoint is \(at)" +
                          (early.map { ", after \(without) epoch\(without == 1 ? "" : "s") without improvement of \(config.monitoredLoss), which ends a run at --patience \($0); raise --patience to continue" }
                           ?? "; raise --epochs to continue"))
                }
                return
            }
            Trainer.setUpDone()
            ProductCounting.begin()
            try trainer.run(source: rows)
            try ProductCounting.finish(isRoot: comm.isRoot)
            if comm.isRoot, trainer.state.epoch < config.epochs, let patience = config.patience {
                report("early stopping after epoch \(trainer.state.epoch) of \(config.epochs): \(config.monitoredLoss) did not improve for "
                       + "\(patience) epoch\(patience == 1 ? "" : "s") (--patience \(patience))")
            }
            let rss = try comm.allReduce(peakResidentMegabytes(), op: .max)
            let pss = try comm.allReduce(proportionalSetMegabytes(), op: .sum)
            if comm.isRoot {
                report(String(format: "peak RSS per rank: %.0f MB", rss) + " (max over \(comm.size) rank\(comm.size == 1 ? "" : "s"))"
                      + String(format: "; PSS summed over the ranks: %.0f MB", pss)
                      + ((rows as? PreloadedRows)?.isShared == true ? " (rows shared per host)" : ""))
                for p in trainer.files.all where FileManager.default.fileExists(atPath: p) {
                    if trainer.written.contains(p) { report("wrote \(p)") } else if p != trainer.files.best || resumedInPlace {
                        report("kept \(p) (from before the resume)")      // best weights no later epoch beat
                    }
                }
                // Best weights this run did not write: those of an epoch before a resume from
                // another folder (beside that checkpoint), never a file another run left here.
                if !trainer.written.contains(trainer.files.best), !resumedInPlace {
                    let stale = FileManager.default.fileExists(atPath: trainer.files.best)
                    if let resume {
                        report("no best weights written: this run's best epoch came before the resume; its weights are the best.weights.h5 "
                              + "beside \(resume)" + (stale ? " (\(trainer.files.best) is another run's)" : ""))
                    } else if stale {
                        report("no best weights written: \(trainer.files.best) is another run's")
                    }
                }
            }
        }
    }

    /// Opens the dataset (every rank), builds the config, on rank 0 reads and checks the
    /// checkpoint and creates the run folder, and on every rank reads the rows the run uses into
    /// memory (checking every id and label before training starts).
    func prepare(_ comm: Communicator) throws -> (TrainingDataset, TrainConfig, Checkpoint?, PretrainedVectors?) {
        let data = try TrainingDataset.open(self.data)
        try checkPreset(numWords: data.numWords)
        var config = try makeConfig(data)
        if let modelConfig {
            let (model, compile) = try kerasModel(modelConfig, data: data)
            config.model = model
            // A compiled model's JSON names its optimizer: trained with another one, without a word.
            // The rate compared is --lr's, before --lr-scaling (and any --lr-schedule) act on it.
            if let compile, !compile.matches(optimizer: config.optimizer, learningRate: config.learningRate, momentum: config.momentum,
                                             clipNorm: config.clipNorm) {
                let lr = Float(compile.learningRate)
                let run = OptimizerKind.kerasLabel(config.optimizer, learningRate: config.learningRate, momentum: config.momentum, clipNorm: config.clipNorm)
                throw CLIError("\(modelConfig): its compile_config trains with \(compile.label), this run with \(run): "
                    + "give --optimizer \(compile.optimizer.rawValue) --lr \(lr)\(compile.optimizer == .sgd ? " --momentum \(Float(compile.momentum))" : "")"
                    + "\(compile.globalClipNorm.map { " --clip-norm \(Float($0))" } ?? "") (or remove compile_config from the JSON)")
            }
        }
        if freezeEmbeddings { config.model = config.model.embedding(trainable: false) }
        var vectors: PretrainedVectors?
        if let embeddings {
            let v = try PretrainedVectors.load(path: embeddings, vocabulary: data.vocabulary, width: config.model.embeddingWidth)
            config.embeddings = .init(file: v.fileName, checksum: v.checksum, found: v.found, words: v.words)
            vectors = v
        }
        try config.validate()
        try config.validateRates()
        var checkpoint: Checkpoint?
        if comm.isRoot {
            /// Reads and checks the --resume checkpoint against this run's flags and dataset.
            func readResume(_ resume: String) throws {
                let c = try Checkpoint.read(from: resume)
                // The checkpoint holds the weights the vectors started; --embeddings, if given, must be that file.
                if embeddings == nil { config.embeddings = c.metadata.config.embeddings }
                if let (field, was, now) = c.metadata.config.resumeMismatches(against: config).first {
                    throw TrainingError.mismatch(path: resume, field: field, checkpoint: was, requested: now)
                }
                guard c.metadata.classNames == data.classNames else {
                    throw CLIError("\(self.data) has the classes \(data.classNames.joined(separator: ", ")); \(resume) was trained on "
                                   + "\(c.metadata.classNames.joined(separator: ", ")): resume with the run's dataset, or start a new run")
                }
                if let difference = c.metadata.vocabularyDifference(from: data.vocabulary) {
                    throw CLIError("\(self.data) has another vocabulary than \(resume) was trained with (\(difference)): "
                                   + "its token ids would mean other words")
                }
                if let was = c.metadata.config.dataChecksum, let now = data.trainChecksum, was != now {
                    throw CLIError("\(self.data) holds other training rows than \(resume) was trained on (train_checksum \(now), "
                                   + "the checkpoint's \(was)): a resume continues on the same rows; use the run's dataset or start a new run")
                }
                config.dataPath = c.metadata.config.dataPath
                // The rows the run started on: kept where this dataset file does not record them.
                config.dataChecksum = c.metadata.config.dataChecksum ?? data.trainChecksum
                checkpoint = c
            }
            let before = resume.map(fileStamp)
            if let resume { try readResume(resume) }
            // Locked first: a run that is still going holds the folder (exit 5), it is not an unfinished one.
            try RunDirectory(runDir)
            // The lock may have waited (up to 10 s) for the ranks of a job just killed, which may
            // have replaced the checkpoint meanwhile: the newest one is the one to continue.
            if let resume, fileStamp(resume) != before { try readResume(resume) }
            try refuseOutputsThatAreInputs()
            if !overwrite { try refuseToReplaceUnfinishedRun() }
            if let tensorboard { try RunDirectory.createWritableFolder(tensorboard, what: "TensorBoard folder") }
        }
        return (data, config, checkpoint, vectors)
    }

    /// What the run writes (its run files, --timeline) must not be what it reads (--data, --resume,
    /// --embeddings, --model-config), under any spelling or link: the write would destroy the
    /// input, and the run would still exit 0. Resuming the run folder's own checkpoint is the one
    /// overlap meant. --timeline must also be a path a file can be written at (not a folder).
    func refuseOutputsThatAreInputs() throws {
        let inputs: [(String, String)] = [(data, "--data"), (resume, "--resume"), (embeddings, "--embeddings"),
                                          (modelConfig, "--model-config")].compactMap { path, flag in path.map { ($0, flag) } }
        let files = RunFiles(directory: runDir)
        var outputs = files.all.map { ($0, "the run's \(splitFolder($0).name)") }
        if let timeline {
            var st = stat()
            if stat(timeline, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                throw CLIError("--timeline \(timeline) is a folder: name the file to write")
            }
            outputs.append((timeline, "--timeline"))
        }
        // The timeline is truncated at set-up and written apart: it must not be a run file either.
        if let timeline, let file = files.all.first(where: { samePlace(timeline, $0) }) {
            throw CLIError("--timeline \(timeline) is the run's \(splitFolder(file).name), which this run writes: choose another --timeline")
        }
        for (output, what) in outputs {
            for (input, flag) in inputs where sameFile(output, input) {
                if flag == "--resume" && what == "the run's checkpoint.h5" { continue }   // resuming in place
                throw CLIError("\(flag) \(input) is \(what == "--timeline" ? "the --timeline file" : what), which this run writes: "
                               + (what == "--timeline" ? "choose another --timeline" : "move it out of \(runDir), or choose another --run-dir"))
            }
        }
    }

    /// Whether two paths name one place, existing or not: one file (device and inode), or, where
    /// either is missing, the same name in the same folder (the folders compared by identity).
    func samePlace(_ a: String, _ b: String) -> Bool {
        if sameFile(a, b) { return true }
        let (pa, pb) = (splitFolder(a), splitFolder(b))
        return pa.name == pb.name && sameFile(pa.folder, pb.folder)
    }

    /// A new run, or one resumed from another file, writes its first checkpoint over
    /// --run-dir/checkpoint.h5: refused (without --overwrite) when an unfinished run wrote that
    /// file, or when it cannot be read to tell.
    func refuseToReplaceUnfinishedRun() throws {
        let path = RunFiles(directory: runDir).checkpoint
        var existing = stat()
        guard lstat(path, &existing) == 0 else { return }
        if let resume, sameFile(resume, path) { return }    // resuming that very checkpoint
        let c: Checkpoint
        do { c = try Checkpoint.read(from: path) } catch {
            throw CLIError("\(runDir) holds a checkpoint.h5 this build cannot read (\(error)), which this run would overwrite: "
                           + "pass --overwrite to replace it, or choose another --run-dir")
        }
        guard !c.isFinished else { return }
        throw CLIError("\(runDir) holds an unfinished run (its checkpoint is at \(c.progress)), which this run would overwrite: "
                       + "continue it with --resume \(path), pass --overwrite to start afresh there, or choose another --run-dir")
    }

    /// The model flags' rules, named as flags, before they become layers (a layer count out of
    /// range must not become that many layer specs).
    func checkPreset(numWords: Int) throws {
        do { try modelOptions.preset(numWords: numWords).validate() } catch let e as ModelConfigError {
            throw TrainConfig.flagError(e)
        }
    }

    /// The run's config from the flags and the dataset's sizes (the one place flags become a config).
    func config(numWords: Int, maxlen: Int, dataRows: Int, classes: Int = 2) -> TrainConfig {
        let m = modelOptions
        var c = TrainConfig(model: m.preset(numWords: numWords, classes: classes).config, maxlen: maxlen)
        c.batchSize = batchSize
        c.accumulate = accumulate == 1 ? nil : accumulate
        c.epochs = epochs
        c.optimizer = optimizer
        c.learningRate = lr ?? optimizer.defaultLearningRate
        c.momentum = momentum
        c.clipNorm = clipNorm
        let schedule = LearningRateSchedule(shape: LearningRateSchedule.parse(lrSchedule) ?? .constant, warmupEpochs: warmupEpochs,
                                            scaling: LearningRateSchedule.Scaling(rawValue: lrScaling) ?? .none)
        c.lrSchedule = schedule == LearningRateSchedule() ? nil : schedule
        c.reduceLROnPlateau = reduceLrOnPlateau.flatMap(PlateauRule.parse)
        c.validationSplit = validationSplit
        c.seed = seed
        c.limit = limit.map { min($0, dataRows) }
        c.checkpointEvery = checkpointEvery
        c.patience = patience
        c.dataPath = data
        c.dataRows = dataRows
        c.allreduceDType = allreduceDType == .fp32 ? nil : allreduceDType
        c.reproducibleChunk = reproducible ? chunkRows ?? TrainConfig.defaultChunkRows : nil
        return c
    }

    /// The network of a Keras `model.to_json()` file, checked against the dataset it trains on.
    func kerasModel(_ path: String, data: TrainingDataset) throws -> (ModelConfig, KerasCompile?) {
        let text: String
        if let kind = notAnInputFile(path) { throw CLIError("\(path): is \(kind), not a Keras model config file") }
        // Read through a handle: a pipe (`--model-config <(python make_model.py)`) works too.
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CLIError("\(path): cannot be read (\(FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file"))")
        }
        defer { try? handle.close() }
        var bytes = Data()
        let limit = 64 << 20   // a Keras config is kilobytes; a stream without end is not one
        do {
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                bytes += chunk
                guard bytes.count <= limit else { throw CLIError("\(path): over 64 MB, not a Keras model config") }
            }
        } catch let e as CLIError { throw e } catch { throw CLIError("\(path): cannot be read (\(error.localizedDescription))") }
        guard let decoded = String(data: bytes, encoding: .utf8) else { throw CLIError("\(path): cannot be read (not UTF-8 text)") }
        text = decoded
        let read: KerasModel
        do { read = try KerasModel(json: text) } catch let e as KerasConfigError {
            throw CLIError("\(path): \(e)")
        }
        let model = read.config
        if let maxlen = read.maxlen, maxlen != data.maxlen {
            throw CLIError("\(path): the model takes sequences of \(maxlen) but \(self.data) has maxlen \(data.maxlen)")
        }
        guard model.vocabularySize == data.numWords else {
            throw CLIError("\(path): \(read.embeddingLayer): option 'input_dim' = \(model.vocabularySize) but \(self.data) has num_words \(data.numWords)")
        }
        guard model.classCount == data.classNames.count else {
            let out = model.head == .softmax ? "a softmax over \(model.classCount) classes" : "one unit (2 classes)"
            throw CLIError("\(path): \(read.outputLayer): option 'units' gives \(out) but \(self.data) has \(data.classNames.count) classes (\(data.classNames.joined(separator: ", ")))")
        }
        do { try model.validate(steps: data.maxlen) } catch let e as ModelConfigError {
            throw CLIError("\(path): at \(self.data)'s maxlen \(data.maxlen): \("\(e)".replacingOccurrences(of: "model config: ", with: ""))")
        }
        return (model, read.compile)
    }

    func makeConfig(_ data: TrainingDataset) throws -> TrainConfig {
        let m = modelOptions
        if let n = m.numWords, n != data.numWords {
            throw CLIError("--num-words \(n) disagrees with \(self.data), which was prepared with num_words \(data.numWords)")
        }
        if let t = m.maxlen, t != data.maxlen {
            throw CLIError("--maxlen \(t) disagrees with \(self.data), which was prepared with maxlen \(data.maxlen)")
        }
        var c = config(numWords: data.numWords, maxlen: data.maxlen, dataRows: data.train.rowCount, classes: data.classNames.count)
        c.dataSeed = data.seed
        c.dataChecksum = data.trainChecksum
        let s = c.schedule
        guard s.trainCount >= 1 else {
            throw CLIError("no training rows: \(s.trainCount + s.valCount) rows with --validation-split \(validationSplit)")
        }
        guard validationSplit == 0 || s.valCount >= 1 else {
            throw CLIError("--validation-split \(validationSplit) of \(s.trainCount + s.valCount) rows leaves no validation row; use 0 to train without validation")
        }
        return c
    }
}

/// Rank 0 prints progress and one Keras-like line per epoch. A redrawn progress bar only on a
/// terminal and outside mpirun (whose ranks see a pseudo-terminal even when the output goes to a
/// file); otherwise a plain line every 10 seconds.
final class ProgressPrinter: TrainingObserver {
    let format: LogFormat
    let bar: Bool
    var lastPrint = 0.0
    /// What this rank exchanged per batch in the epoch (shown when ranks exchanged anything).
    var traffic: (() -> ExchangeTraffic)?
    var vocabulary = 0

    init(format: LogFormat) {
        self.format = format
        bar = format == .text && isatty(1) != 0 && !Communicator.launchedByMPI
    }

    func batchDone(epoch: Int, batch: Int, of batches: Int, step: Int, stats: BatchStats, running: BatchStats,
                   elapsed: Double) {
        guard format == .text else { return }
        let interval = bar ? 0.2 : 10
        guard elapsed - lastPrint >= interval || batch == batches else { return }
        lastPrint = batch == batches ? 0 : elapsed
        let eta = batch > 0 ? elapsed / Double(batch) * Double(batches - batch) : 0
        let line = String(format: "epoch %d  %d/%d  ETA %.0fs  loss: %.4f  acc: %.4f",
                          epoch + 1, batch, batches, eta, running.loss, running.accuracy)
        if bar {
            FileHandle.standardOutput.write(Data(("\r" + line + "   ").utf8))
        } else if batch < batches {
            print(line)
            fflush(nil)
        }
    }

    /// One epoch for scripts; Doubles in the shortest digits that read back the same.
    struct EpochJSON: Encodable {
        var epoch, epochs: Int
        var seconds, samples_per_second, loss, acc, val_loss, val_acc, mpi_share: Double
        var exchange_bytes_per_batch, embedding_rows_per_batch, embedding_rows_behind_backward_per_batch: Double?
        var vocabulary: Int
    }

    func epochDone(_ r: EpochRecord, epochs: Int) {
        let t = traffic?()
        if format == .json {
            let exchanged = (t?.batches ?? 0) > 0
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys]
            e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            let record = EpochJSON(epoch: r.epoch, epochs: epochs, seconds: r.seconds, samples_per_second: r.samplesPerSecond,
                                   loss: r.loss, acc: r.acc, val_loss: r.valLoss, val_acc: r.valAcc, mpi_share: r.mpiShare,
                                   exchange_bytes_per_batch: exchanged ? t?.bytesPerBatch : nil,
                                   embedding_rows_per_batch: exchanged ? t?.rowsPerBatch : nil,
                                   embedding_rows_behind_backward_per_batch: exchanged ? t?.rowsBehindBackwardPerBatch : nil,
                                   vocabulary: vocabulary)
            print(String(decoding: (try? e.encode(record)) ?? Data(), as: UTF8.self))
            fflush(nil)
            return
        }
        if bar { FileHandle.standardOutput.write(Data("\r".utf8)) }
        var line = String(format: "Epoch %d/%d - %.2fs - %.0f samples/s - loss: %.4f - acc: %.4f - val_loss: %.4f - val_acc: %.4f - mpi: %.1f%%",
                          r.epoch, epochs, r.seconds, r.samplesPerSecond, r.loss, r.acc, r.valLoss, r.valAcc, r.mpiShare * 100)
        if let t, t.batches > 0 {
            line += String(format: " - exchange: %.3f MB/batch, %.0f of %d embedding rows", t.bytesPerBatch / 1e6, t.rowsPerBatch, vocabulary)
            if t.rowsBehindBackwardPerBatch > 0 { line += String(format: " (%.0f behind backward)", t.rowsBehindBackwardPerBatch) }
        }
        print(line)
        fflush(nil)
    }

    func wrote(_ path: String, what: String) throws {}
}

/// This process's peak resident set size (VmHWM of /proc/self/status), in MB; 0 where unavailable.
func peakResidentMegabytes() -> Double { Double(procValue("/proc/self/status", field: "VmHWM:") ?? 0) / 1024 }

/// This process's proportional set size now (Pss of /proc/self/smaps_rollup: pages shared with
/// other processes count in part), in MB; 0 where unavailable. Summed over a host's ranks it is what
/// the host holds for them.
func proportionalSetMegabytes() -> Double { Double(procValue("/proc/self/smaps_rollup", field: "Pss:") ?? 0) / 1024 }


