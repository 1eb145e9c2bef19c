import Foundation
import RNN

/// Everything that defines a training run. Stored as JSON in checkpoints, weights and history, and
/// compared field by field on `--resume`.
public struct TrainConfig: Codable, Sendable, Equatable {
    public var model: ModelConfig
    /// Sequence length T of the dataset.
    public var maxlen: Int
    public var batchSize: Int = 128
    public var epochs: Int = 10
    public var optimizer: String = "rmsprop"
    public var learningRate: Double = 0.001
    public var momentum: Double = 0.0
    public var clipNorm: Double? = nil
    public var validationSplit: Double = 0.2
    public var seed: UInt64 = 1
    /// Train on the first `limit` training rows only.
    public var limit: Int? = nil
    /// Checkpoint every K batches (besides every epoch end); nil: epoch ends only.
    public var checkpointEvery: Int? = nil
    /// Early stopping on val_loss after this many epochs without improvement; nil: off.
    public var patience: Int? = nil
    /// The dataset's path, its `seed` attribute and training row count: which data this run used.
    public var dataPath: String = ""
    public var dataRows: Int = 0
    public var dataSeed: Int64 = 0

    public init(model: ModelConfig, maxlen: Int) {
        self.model = model
        self.maxlen = maxlen
    }

    public func json() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: (try? e.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// Reads a config stored in a file and checks every value (a damaged or crafted file must not
    /// make later arithmetic trap or allocate without bound).
    public static func from(json: String, path: String) throws -> TrainConfig {
        let c: TrainConfig
        do {
            c = try JSONDecoder().decode(TrainConfig.self, from: Data(json.utf8))
        } catch {
            throw TrainingError.badFile(path: path, object: "/rnn_dist@config", detail: "unreadable config JSON (\(error))")
        }
        do { try c.validate() } catch {
            throw TrainingError.badFile(path: path, object: "/rnn_dist@config", detail: "\(error)")
        }
        return c
    }

    /// Largest values accepted for the run's sizes.
    public static let maxMaxlen = 1 << 20
    public static let maxEpochs = 1_000_000
    public static let maxRows = 1 << 30

    /// Throws a one-line reason for the first value out of range.
    public func validate() throws {
        try model.validate()
        func need(_ ok: Bool, _ what: String) throws { if !ok { throw TrainingError.invalid(what) } }
        try need((1 ... Self.maxMaxlen).contains(maxlen), "maxlen \(maxlen) is outside 1…\(Self.maxMaxlen)")
        try need((1 ... Self.maxRows).contains(batchSize), "batch size \(batchSize) is outside 1…\(Self.maxRows)")
        try need((1 ... Self.maxEpochs).contains(epochs), "epochs \(epochs) is outside 1…\(Self.maxEpochs)")
        try need(["rmsprop", "adam", "sgd"].contains(optimizer), "unknown optimizer '\(optimizer)'")
        try need(learningRate.isFinite && learningRate > 0, "learning rate \(learningRate) is not positive")
        try need(momentum >= 0 && momentum < 1, "momentum \(momentum) is outside [0, 1)")
        try need(clipNorm.map { $0.isFinite && $0 > 0 } ?? true, "clip norm \(clipNorm ?? 0) is not positive")
        try need(validationSplit >= 0 && validationSplit < 1, "validation split \(validationSplit) is outside [0, 1)")
        try need(limit.map { (1 ... Self.maxRows).contains($0) } ?? true, "limit \(limit ?? 0) is outside 1…\(Self.maxRows)")
        try need(checkpointEvery.map { (1 ... Self.maxRows).contains($0) } ?? true, "checkpoint cadence out of range")
        try need(patience.map { (1 ... Self.maxEpochs).contains($0) } ?? true, "patience out of range")
        try need((0 ... Self.maxRows).contains(dataRows), "dataset rows \(dataRows) out of range")
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
        cmp("--model", \.model.kind.rawValue)
        cmp("--num-words", \.model.numWords)
        cmp("--embed-dim", \.model.embedDim)
        cmp("--units", \.model.units)
        cmp("--layers", \.model.layers)
        cmp("--maxlen", \.maxlen)
        cmp("--batch-size", \.batchSize)
        cmp("--optimizer", \.optimizer)
        cmp("--lr", \.learningRate)
        cmp("--momentum", \.momentum)
        cmp("--validation-split", \.validationSplit)
        cmp("--seed", \.seed)
        cmp("--limit", \.limit.debugDescription)
        cmp("--clip-norm", \.clipNorm.debugDescription)
        cmp("dataset rows", \.dataRows)
        cmp("dataset seed", \.dataSeed)
        return out
    }
}
