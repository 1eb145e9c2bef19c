import Foundation
import RNN

/// Where a run stands: enough to continue at the next batch with bit-identical results. One
/// serialisation (JSON, `Codable`) serves the checkpoint file and the broadcast of a restored state.
public struct TrainingState: Codable, Sendable, Equatable {
    /// The epoch in progress (0-based) and the next global batch of it to train.
    public var epoch: Int = 0
    public var nextBatch: Int = 0
    /// Sums over the epoch's batches so far (exact across ranks), for the epoch's reported loss/acc.
    var epochLossSum: Double = 0
    var epochCorrect: Int = 0
    var epochCount: Int = 0
    /// Seconds spent in the epoch so far (training steps), and in MPI during them.
    var epochSeconds: Double = 0
    var epochMPISeconds: Double = 0
    /// Lowest monitored loss so far, and epochs since it improved (early stopping).
    var bestValLoss: Double = .infinity
    public internal(set) var epochsWithoutImprovement: Int = 0
    /// The world size the state was written with.
    var worldSize: Int = 1
    /// The world sizes a checkpoint or history may record.
    static let worldSizes = 1 ... 1 << 20
    /// Set in the checkpoint a stop signal made (e.g. "SIGTERM"): the mark by which a script tells a
    /// clean interruption from a failure, whatever exit status `mpirun` reported. Nil otherwise.
    var interruptedBy: String?
    /// `--reduce-lr-on-plateau`: the factor applied to the schedule's rate so far, the best
    /// monitored loss it compares with, and the epochs since that improved.
    var lrFactor: Double = 1
    var plateauBest: Double = .infinity
    var plateauWait: Int = 0

    init() {}

    /// Checkpoints written before the plateau rule existed lack its three fields: their defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        epoch = try c.decode(Int.self, forKey: .epoch)
        nextBatch = try c.decode(Int.self, forKey: .nextBatch)
        epochLossSum = try c.decode(Double.self, forKey: .epochLossSum)
        epochCorrect = try c.decode(Int.self, forKey: .epochCorrect)
        epochCount = try c.decode(Int.self, forKey: .epochCount)
        epochSeconds = try c.decode(Double.self, forKey: .epochSeconds)
        epochMPISeconds = try c.decode(Double.self, forKey: .epochMPISeconds)
        bestValLoss = try c.decode(Double.self, forKey: .bestValLoss)
        epochsWithoutImprovement = try c.decode(Int.self, forKey: .epochsWithoutImprovement)
        worldSize = try c.decode(Int.self, forKey: .worldSize)
        interruptedBy = try c.decodeIfPresent(String.self, forKey: .interruptedBy)
        lrFactor = try c.decodeIfPresent(Double.self, forKey: .lrFactor) ?? 1
        plateauBest = try c.decodeIfPresent(Double.self, forKey: .plateauBest) ?? .infinity
        plateauWait = try c.decodeIfPresent(Int.self, forKey: .plateauWait) ?? 0
    }

    enum CodingKeys: String, CodingKey {
        case epoch, nextBatch = "next_batch", epochLossSum = "epoch_loss_sum", epochCorrect = "epoch_correct"
        case epochCount = "epoch_count", epochSeconds = "epoch_seconds", epochMPISeconds = "epoch_mpi_seconds"
        case bestValLoss = "best_val_loss", epochsWithoutImprovement = "epochs_without_improvement"
        case worldSize = "world_size", interruptedBy = "interrupted_by"
        case lrFactor = "lr_factor", plateauBest = "plateau_best", plateauWait = "plateau_wait"
    }

    /// Adds one step's global stats and timings to the epoch's running sums.
    mutating func record(_ stats: BatchStats, seconds: Double, mpiSeconds: Double) {
        epochLossSum += stats.lossSum
        epochCorrect += stats.correct
        epochCount += stats.count
        epochSeconds += seconds
        epochMPISeconds += mpiSeconds
        nextBatch += 1
    }

    /// Moves to the start of `epoch`: no batch trained, empty running sums.
    mutating func beginEpoch(_ epoch: Int) {
        self.epoch = epoch
        nextBatch = 0
        epochLossSum = 0; epochCorrect = 0; epochCount = 0
        epochSeconds = 0; epochMPISeconds = 0
    }

    /// JSON with every Double exact (shortest round-trip digits; ±∞ as "inf"/"-inf", which the
    /// best loss is before the first epoch ends).
    func json() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try e.encode(self), as: UTF8.self)
    }

    init(json: String) throws {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        self = try d.decode(TrainingState.self, from: Data(json.utf8))
    }
}
