import Foundation

/// Keras's `ReduceLROnPlateau(monitor="val_loss", factor, patience)` (min_delta 1e-4, cooldown 0,
/// min_lr 0): at an epoch's end, when the monitored loss has not fallen below the best so far by
/// more than 1e-4 for `patience` epochs, the rate is multiplied by `factor` and the count restarts.
public struct PlateauRule: Codable, Sendable, Equatable, CustomStringConvertible {
    public var factor: Double
    public var patience: Int
    public static let minDelta = 1e-4

    public init(factor: Double, patience: Int) {
        self.factor = factor
        self.patience = patience
    }

    /// `FACTOR:PATIENCE`, 0 < FACTOR < 1, PATIENCE ≥ 1; nil otherwise.
    public static func parse(_ text: String) -> PlateauRule? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        // FACTOR a normal number: a subnormal one could not be read back from the config's JSON.
        guard parts.count == 2, let f = Double(parts[0]), f.isNormal, f > 0, f < 1, let p = Int(parts[1]), p >= 1 else { return nil }
        return PlateauRule(factor: f, patience: p)
    }

    public var description: String { "\(factor):\(patience)" }

    /// The reductions stop here (the smallest normal float): below it the factor would become
    /// subnormal, then 0, and the checkpoint holding it could not be read back.
    static let smallestFactor = Double(Float.leastNormalMagnitude)

    /// After an epoch whose monitored loss is `loss`: the new (factor, best, wait).
    func update(loss: Double, factor current: Double, best: Double, wait: Int) -> (factor: Double, best: Double, wait: Int) {
        if loss < best - Self.minDelta { return (current, loss, 0) }
        if wait + 1 >= patience { return (max(current * factor, min(current, Self.smallestFactor)), best, 0) }
        return (current, best, wait + 1)
    }
}

/// How the learning rate moves over a run (`--lr-schedule`, `--warmup-epochs`, `--lr-scaling`;
/// docs/TRAINING.md §Learning rate): a pure function of the optimizer step, so a resumed run
/// continues it exactly, at any rank count.
public struct LearningRateSchedule: Codable, Sendable, Equatable, CustomStringConvertible {
    public enum Shape: Codable, Sendable, Equatable {
        /// The (scaled) rate throughout.
        case constant
        /// Half a cosine from the rate down to 0 over the steps after warm-up (Loshchilov & Hutter).
        case cosine
        /// The rate × factor^⌊epoch / every⌋ (Keras's step decay), epochs counted from 0.
        case step(every: Int, factor: Double)
    }

    /// The rate relative to the book's global batch of 128: none, × B/128 (Goyal et al. 2017), or × √(B/128).
    public enum Scaling: String, Codable, Sendable, CaseIterable {
        case none, linear, sqrt
    }

    public var shape: Shape = .constant
    /// Epochs (may be fractional) over which the rate rises linearly from rate/steps to the rate.
    public var warmupEpochs: Double = 0
    public var scaling: Scaling = .none
    /// The global batch the scaling is relative to.
    public static let referenceBatch = 128

    public init(shape: Shape = .constant, warmupEpochs: Double = 0, scaling: Scaling = .none) {
        self.shape = shape
        self.warmupEpochs = warmupEpochs
        self.scaling = scaling
    }

    /// `constant`, `cosine` or `step:EVERY:FACTOR` (EVERY ≥ 1 epochs, FACTOR > 0); nil otherwise.
    public static func parse(_ text: String) -> Shape? {
        switch text {
        case "constant": return .constant
        case "cosine": return .cosine
        default:
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0] == "step", let every = Int(parts[1]), every >= 1,
                  let factor = Double(parts[2]), factor.isNormal, factor > 0 else { return nil }
            return .step(every: every, factor: factor)
        }
    }

    public var description: String {
        shape.flag + (warmupEpochs > 0 ? ", warm-up \(warmupEpochs) epochs" : "") + (scaling == .none ? "" : ", \(scaling.rawValue) scaling")
    }

    /// `base` × the scaling's factor for `globalBatch` samples per step: the rate before warm-up and schedule.
    func scaled(_ base: Double, globalBatch: Int) -> Double {
        let ratio = Double(globalBatch) / Double(Self.referenceBatch)
        return base * (scaling == .linear ? ratio : scaling == .sqrt ? ratio.squareRoot() : 1)
    }

    /// The rate of optimizer step `t` (0-based, over the whole run).
    /// - Parameters:
    ///   - base: `--lr`; stepsPerEpoch: optimizer steps per epoch; epochs: the run's `--epochs`;
    ///     globalBatch: samples per optimizer step.
    public func rate(base: Double, step t: Int, stepsPerEpoch: Int, epochs: Int, globalBatch: Int) -> Double {
        let scaled = scaled(base, globalBatch: globalBatch)
        let perEpoch = max(1, stepsPerEpoch)
        let warm = Int((warmupEpochs * Double(perEpoch)).rounded())
        if t < warm { return scaled * Double(t + 1) / Double(warm) }
        switch shape {
        case .constant:
            return scaled
        case .cosine:
            let span = max(1, epochs * perEpoch - warm)
            let progress = min(1, Double(t - warm) / Double(span))
            return scaled * 0.5 * (1 + cos(Double.pi * progress))
        case .step(let every, let factor):
            return scaled * pow(factor, Double((t / perEpoch) / every))
        }
    }

    /// Throws a one-line reason for a value out of range.
    func validate(epochs: Int) throws {
        guard warmupEpochs == 0 || warmupEpochs.isNormal, warmupEpochs >= 0, warmupEpochs <= Double(epochs) else {
            throw TrainingError.invalid("--warmup-epochs \(warmupEpochs) is outside 0…\(epochs) (the run's --epochs)")
        }
        if case .step(let every, let factor) = shape, !(every >= 1 && factor.isNormal && factor > 0) {
            throw TrainingError.invalid("--lr-schedule step:\(every):\(factor) needs EVERY ≥ 1 and FACTOR > 0")
        }
    }
}

extension LearningRateSchedule.Shape {
    /// `constant`, `cosine` or `step:EVERY:FACTOR`, as `--lr-schedule` takes it.
    public var flag: String {
        switch self {
        case .constant: return "constant"
        case .cosine: return "cosine"
        case .step(let every, let factor): return "step:\(every):\(factor)"
        }
    }
}
