import Foundation
import RNN
import TextData

/// Everything that defines a training run: the one place where its defaults and its rules live.
/// `train` builds it from its flags and validates it once; it is stored as JSON in checkpoints,
/// weights and history, validated again when read back, and compared field by field on `--resume`.
public struct TrainConfig: Codable, Sendable, Equatable {
    /// The book's settings, which `train` offers as its defaults.
    public enum Defaults {
        public static let batchSize = 128
        public static let epochs = 10
        public static let optimizer = OptimizerKind.rmsprop
        public static let momentum = 0.0
        public static let validationSplit = 0.2
        public static let seed: UInt64 = 1
    }

    public var model: ModelConfig
    /// Sequence length T of the dataset.
    public var maxlen: Int
    public var batchSize: Int = Defaults.batchSize
    public var epochs: Int = Defaults.epochs
    public var optimizer: OptimizerKind = Defaults.optimizer
    public var learningRate: Double = Defaults.optimizer.defaultLearningRate
    public var momentum: Double = Defaults.momentum
    public var clipNorm: Double? = nil
    public var validationSplit: Double = Defaults.validationSplit
    public var seed: UInt64 = Defaults.seed
    /// Train on the first `limit` training rows only.
    public var limit: Int? = nil
    /// Checkpoint every K batches (besides every epoch end); nil: epoch ends only.
    public var checkpointEvery: Int? = nil
    /// Early stopping on val_loss after this many epochs without improvement; nil: off.
    public var patience: Int? = nil
    /// How gradients travel (`--allreduce-dtype`); nil, as in files written before it existed, is fp32.
    public var allreduceDType: ExchangeDType? = nil
    var exchange: ExchangeDType { allreduceDType ?? .fp32 }
    /// The dataset's path, its `seed` attribute and training row count: which data this run used.
    public var dataPath: String = ""
    public var dataRows: Int = 0
    public var dataSeed: Int64 = 0
    /// The dataset's `train_checksum` (its training rows); nil where the dataset or the config
    /// predates it, and then not compared.
    public var dataChecksum: String?
    /// The pretrained vectors the embedding started from (`--embeddings`); nil: Keras's random start.
    public var embeddings: EmbeddingsSource? = nil
    /// How the learning rate moves (`--lr-schedule`, `--warmup-epochs`, `--lr-scaling`); nil, as in
    /// files written before it existed, is `--lr` throughout.
    public var lrSchedule: LearningRateSchedule? = nil
    var learningRateSchedule: LearningRateSchedule { lrSchedule ?? LearningRateSchedule() }
    /// `--accumulate K`: each optimizer step trains K × `batchSize` rows, each rank its share in K
    /// micro-batches, with one exchange; nil (as in older files) is 1.
    public var accumulate: Int? = nil
    /// Rows per optimizer step: `batchSize` × `accumulate`.
    public var stepBatch: Int { batchSize * microBatches }
    /// K of `--accumulate`.
    public var microBatches: Int { accumulate ?? 1 }
    /// `--reduce-lr-on-plateau FACTOR:PATIENCE`; nil: off.
    public var reduceLROnPlateau: PlateauRule? = nil
    /// `--reproducible`: C, the rows of each fixed chunk of a step whose gradient sum one rank
    /// computes alone, the chunks' sums added exactly (ReproducibleExchange); nil: off.
    public var reproducibleChunk: Int? = nil
    /// The chunk size `--reproducible` uses unless `--chunk-rows` says otherwise: `-n 8` at B = 128.
    public static let defaultChunkRows = 16

    /// The learning rate of optimizer step `t` (0-based over the run).
    public func learningRate(atStep t: Int) -> Double {
        learningRateSchedule.rate(base: learningRate, step: t, stepsPerEpoch: schedule.batchesPerEpoch, epochs: epochs,
                                  globalBatch: stepBatch)
    }

    /// Which word-vector file gave the embedding its first weights, and how much of the vocabulary it had.
    public struct EmbeddingsSource: Codable, Hashable, Sendable {
        public var file: String
        /// FNV-1a 64 of the file's (decompressed) bytes, hex.
        public var checksum: String
        public var found: Int
        public var words: Int

        public init(file: String, checksum: String, found: Int, words: Int) {
            self.file = file
            self.checksum = checksum
            self.found = found
            self.words = words
        }
    }

    public init(model: ModelConfig, maxlen: Int) {
        self.model = model
        self.maxlen = maxlen
    }

    func json() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: (try? e.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// Reads a config stored in a file and checks every value (a damaged or crafted file must not
    /// make later arithmetic trap or allocate without bound).
    /// The config of a file's `object` attribute (weights and checkpoints: /rnn_dist@config).
    static func from(json: String, path: String, object: String = "/rnn_dist@config") throws -> TrainConfig {
        let c: TrainConfig
        do {
            c = try JSONDecoder().decode(TrainConfig.self, from: Data(json.utf8))
        } catch {
            throw TrainingError.badFile(path: path, object: object, detail: "unreadable config JSON: \(DecodingProblem.describe(error))")
        }
        do { try c.validate() } catch {
            throw TrainingError.badFile(path: path, object: object, detail: "\(error)")
        }
        return c
    }

    /// Largest values accepted for the run's sizes.
    static let maxMaxlen = 1 << 20
    static let maxEpochs = 1_000_000
    public static let maxRows = 1 << 30

    /// What early stopping watches, for messages: val_loss, or the training loss without validation rows.
    public var monitoredLoss: String { validationSplit > 0 ? "val_loss" : "the training loss" }

    /// Whether a run of this config at `state` is over: all epochs done, or early stopping already
    /// decided (a run resumed from the checkpoint written at that point has nothing left to do).
    public func isFinished(at state: TrainingState) -> Bool {
        state.epoch >= epochs || (patience.map { state.epochsWithoutImprovement >= $0 } ?? false)
    }

    /// The rows this run uses (the first `limit`, or all) cut into training and validation rows
    /// and global batches.
    public var schedule: Schedule {
        Schedule(rows: min(limit ?? dataRows, dataRows), validationSplit: validationSplit, batchSize: stepBatch, seed: seed)
    }

    /// Throws a one-line reason, naming the flag, for the first value out of range. The same rules
    /// serve `train`'s command line and every config read back from a file.
    public func validate() throws {
        func need(_ ok: Bool, _ flag: String, _ value: Any, _ allowed: String) throws {
            if !ok { throw TrainingError.invalid("\(flag) \(value) is outside \(allowed)") }
        }
        try need((1 ... Self.maxMaxlen).contains(maxlen), "--maxlen", maxlen, "1…\(Self.maxMaxlen)")
        do { try model.validate(steps: maxlen) } catch let e as ModelConfigError { throw Self.flagError(e) }
        try need(model.vocabularySize >= 4, "--num-words", model.vocabularySize, "4…\(ModelConfig.maxNumWords) (ids 0–3 are reserved)")
        try need((1 ... Self.maxRows).contains(batchSize), "--batch-size", batchSize, "1…\(Self.maxRows)")
        try need((1 ... 4096).contains(accumulate ?? 1), "--accumulate", accumulate ?? 1, "1…4096")
        try need(stepBatch <= Self.maxRows, "--batch-size × --accumulate", stepBatch, "1…\(Self.maxRows)")
        try need((1 ... Self.maxEpochs).contains(epochs), "--epochs", epochs, "1…\(Self.maxEpochs)")
        // Values used as 32-bit floats must be normal ones: 1e-50 is 0 as a Float (weights never
        // change), and a subnormal one cannot be read back from the config (JSON readers refuse it).
        let smallest = Float.leastNormalMagnitude
        // Float(x) is finite: 1e39 became +∞ (a non-finite step at the first batch, exit 3; a clip
        // norm that clipped nothing).
        try need(learningRate.isFinite && Float(learningRate) >= smallest && Float(learningRate).isFinite, "--lr", learningRate,
                 "(0, ∞), at least 1.2e-38 and at most 3.4e38 (a smaller rate is 0 as a float, a larger one ∞)")
        try need(ModelConfigError.isRate(momentum), "--momentum", momentum, "[0, 1), 0 or at least 1.2e-38")
        try need(clipNorm.map { $0.isFinite && Float($0) >= smallest && Float($0).isFinite } ?? true, "--clip-norm", clipNorm ?? 0,
                 "(0, ∞), at least 1.2e-38 and at most 3.4e38")
        try need(ModelConfigError.isRate(validationSplit), "--validation-split", validationSplit, "[0, 1), 0 or at least 1.2e-38")
        // A limit above the dataset's rows is taken as all of them (the config records the rows used).
        try need(limit.map { (2 ... Self.maxRows).contains($0) } ?? true, "--limit", limit ?? 0, "2…∞ (above the dataset's rows, all are used)")
        try need(checkpointEvery.map { (1 ... Self.maxRows).contains($0) } ?? true, "--checkpoint-every", checkpointEvery ?? 0,
                 "1…\(Self.maxRows)")
        try need(patience.map { (1 ... Self.maxEpochs).contains($0) } ?? true, "--patience", patience ?? 0, "1…\(Self.maxEpochs)")
        try need((0 ... Self.maxRows).contains(dataRows), "dataset rows", dataRows, "0…\(Self.maxRows)")
        try learningRateSchedule.validate(epochs: epochs)
        // --lr-scaling raises the rate with the global batch: it must stay a finite Float too.
        let scaled = learningRateSchedule.scaled(learningRate, globalBatch: stepBatch)
        try need(Float(scaled).isFinite, "--lr × --lr-scaling", scaled, "(0, 3.4e38] (larger is ∞ as a float)")
        try need(reproducibleChunk.map { (1 ... 4096).contains($0) } ?? true, "--chunk-rows", reproducibleChunk ?? 0, "1…4096")
        if reproducibleChunk != nil && exchange == .bf16 {
            throw TrainingError.invalid("--reproducible needs --allreduce-dtype fp32 (bf16 rounds each rank's partial sum, so the bits depend on the rank count)")
        }
        if let p = reduceLROnPlateau, PlateauRule.parse(p.description) == nil {
            throw TrainingError.invalid("--reduce-lr-on-plateau \(p) needs 0 < FACTOR < 1 and PATIENCE ≥ 1")
        }
    }

    /// The rates a run will use, for `train` (a run starting or resuming), not for files read back
    /// (a file written by an earlier rnn-dist stays readable): the scaled rate and, after warm-up, a
    /// step schedule's rate at the last epoch must be normal, finite Floats — step:1:1e-300 trained at
    /// a rate of 0 and exited 0, step:1:1e300 reached ∞; a scaled rate below 1.2e-38 was blamed on
    /// the schedule.
    /// - Parameter dataKnown: whether `dataRows` is the dataset's (else the step schedule is checked
    ///   only where warm-up surely ends before the last epoch; the run checks it again with the data).
    public func validateRates(dataKnown: Bool = true) throws {
        let smallest = Float.leastNormalMagnitude
        let scaled = learningRateSchedule.scaled(learningRate, globalBatch: stepBatch)
        if !(Float(scaled).isFinite && Float(scaled) >= smallest) {
            throw TrainingError.invalid("--lr × --lr-scaling \(String(format: "%.3g", scaled)) is outside 1.2e-38…3.4e38, "
                                        + "where it is a float other than 0 and ∞")
        }
        // Warm-up over the whole run applies no factor: its steps counted as `rate` counts them.
        let perEpoch = max(1, schedule.batchesPerEpoch)
        let warmsAll = dataKnown ? Int((learningRateSchedule.warmupEpochs * Double(perEpoch)).rounded()) >= epochs * perEpoch
                                 : learningRateSchedule.warmupEpochs > Double(epochs - 1)
        if case .step(let every, let factor) = learningRateSchedule.shape, epochs > every, !warmsAll {
            let k = (epochs - 1) / every, last = scaled * pow(factor, Double(k))
            if !(Float(last).isFinite && Float(last) >= smallest) {
                throw TrainingError.invalid("--lr-schedule \(learningRateSchedule.shape.flag) takes the rate to \(String(format: "%.3g", last)) by epoch "
                    + "\(k * every + 1) (the rate × FACTOR^\(k)): outside 1.2e-38…3.4e38, where it is a float other than 0 and ∞")
            }
        }
    }

    /// A model config error as `train`'s flags name it: num_words → --num-words.
    public static func flagError(_ error: ModelConfigError) -> TrainingError {
        switch error {
        case .outOfRange(let name, let value, let limit):
            let flag = name.contains(" ") ? name : "--" + name.replacingOccurrences(of: "_", with: "-")
            // num_words's ids 0–3 are reserved (as the check of the dataset's vocabulary says).
            let least = name == "num_words" ? "4" : "1"
            return .invalid("\(flag) \(value) is outside \(least)…\(limit)" + (name == "num_words" ? " (ids 0–3 are reserved)" : ""))
        case .badRate(let name, let value):
            return .invalid("--\(name.replacingOccurrences(of: "_", with: "-")) \(value) is \(ModelConfigError.rateProblem(value))")
        case .resetAfterNeedsGRU:
            return .invalid("--gru-reset-after false needs --model gru (the setting exists for the GRU only)")
        case .badStack:
            return .invalid("\(error)")
        }
    }

    /// The fields a resumed run must share with its checkpoint (model, data, batching, optimizer):
    /// (name, checkpoint value, requested value) for each that differs. Epochs, checkpoint cadence
    /// and patience may change.
    public func resumeMismatches(against requested: TrainConfig) -> [(String, String, String)] {
        var out: [(String, String, String)] = []
        func cmp<T: Equatable>(_ name: String, _ kp: KeyPath<TrainConfig, T>) {
            if self[keyPath: kp] != requested[keyPath: kp] {
                out.append((name, "\(self[keyPath: kp])", "\(requested[keyPath: kp])"))
            }
        }
        /// An optional setting: its value, or "none" (not Swift's `Optional(…)`).
        func cmp<T: Equatable>(_ name: String, _ kp: KeyPath<TrainConfig, T?>) {
            let (was, now) = (self[keyPath: kp], requested[keyPath: kp])
            if was != now { out.append((name, was.map { "\($0)" } ?? "none", now.map { "\($0)" } ?? "none")) }
        }
        // A frozen embedding is its own flag; the rest of the model is compared as if it trained.
        if model.embeddingTrainable != requested.model.embeddingTrainable {
            out.append(("--freeze-embeddings", model.embeddingTrainable ? "off" : "on", requested.model.embeddingTrainable ? "off" : "on"))
        }
        let (model, requestedModel) = (model.embedding(trainable: true), requested.model.embedding(trainable: true))
        if let was = model.preset, let now = requestedModel.preset {
            func preset<T: Equatable>(_ name: String, _ kp: KeyPath<ModelConfig.Preset, T>) {
                if was[keyPath: kp] != now[keyPath: kp] { out.append((name, "\(was[keyPath: kp])", "\(now[keyPath: kp])")) }
            }
            preset("--model", \.kind.rawValue)
            preset("--num-words", \.numWords)
            preset("--embed-dim", \.embedDim)
            preset("--units", \.units)
            preset("--layers", \.layers)
            preset("--bidirectional", \.bidirectional)
            preset("--dropout", \.dropout)
            preset("--recurrent-dropout", \.recurrentDropout)
            preset("--gru-reset-after", \.resetAfter)
        } else if let (name, was, now) = model.difference(from: requestedModel) {
            // A network read from --model-config is no preset; a resume without that flag asks for one.
            let hint = model.preset == nil && requestedModel.preset != nil ? " (from --model-config: give that file again)" : ""
            out.append((name + hint, was, now))
        }
        cmp("--maxlen", \.maxlen)
        cmp("--batch-size", \.batchSize)
        cmp("--accumulate", \.microBatches)
        cmp("--optimizer", \.optimizer)
        cmp("--lr", \.learningRate)
        cmp("--momentum", \.momentum)
        cmp("--validation-split", \.validationSplit)
        cmp("--seed", \.seed)
        // The rows used: a limit at or above the dataset's rows is recorded as those rows, and no
        // limit uses them all, so `--limit 1000` on 480 rows resumes a run without one, and back.
        // (On another dataset's rows the mismatch is "dataset rows", below.)
        if dataRows == requested.dataRows && (limit ?? dataRows) != (requested.limit ?? requested.dataRows) {
            func rows(_ c: TrainConfig) -> String { c.limit.map { "\($0)" } ?? "none (all \(c.dataRows) rows)" }
            out.append(("--limit", rows(self), rows(requested)))
        }
        cmp("--clip-norm", \.clipNorm)
        cmp("--allreduce-dtype", \.exchange.rawValue)
        cmp("dataset rows", \.dataRows)
        cmp("dataset seed", \.dataSeed)
        if embeddings?.checksum != requested.embeddings?.checksum {
            func show(_ e: EmbeddingsSource?) -> String { e.map { "\($0.file) (checksum \($0.checksum))" } ?? "none" }
            out.append(("--embeddings", show(embeddings), show(requested.embeddings)))
        }
        cmp("--lr-schedule, --warmup-epochs, --lr-scaling", \.learningRateSchedule.description)
        cmp("--reduce-lr-on-plateau", \.reduceLROnPlateau)
        switch (reproducibleChunk, requested.reproducibleChunk) {
        case (nil, nil): break
        case (let was?, let now?): if was != now { out.append(("--chunk-rows", "\(was)", "\(now)")) }
        case (let was, let now):
            out.append(("--reproducible", was.map { "on (--chunk-rows \($0))" } ?? "off", now.map { "on (--chunk-rows \($0))" } ?? "off"))
        }
        return out
    }
}
