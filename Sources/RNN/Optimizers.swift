// Optimizers over the flat parameter buffer, with Keras 3's update formulas and defaults.
//
// State is plain named `[Float]` slots (each as long as the parameter buffer) plus an iteration
// count, so a checkpoint saves and restores it bit for bit.

import Foundation

/// One named optimizer state array, as long as the parameter buffer.
public struct OptimizerSlot: Sendable, Equatable {
    public var name: String
    public var values: [Float]

    public init(name: String, values: [Float]) {
        self.name = name
        self.values = values
    }
}

/// Why optimizer state from a checkpoint was refused.
public enum OptimizerError: Error, Equatable, CustomStringConvertible {
    case slotNames(optimizer: String, expected: [String], found: [String])
    case slotSize(optimizer: String, slot: String, expected: Int, found: Int)
    case negativeIterations(Int)

    public var description: String {
        switch self {
        case .slotNames(let o, let expected, let found):
            return "\(o) state: expected slots \(expected), found \(found)"
        case .slotSize(let o, let slot, let expected, let found):
            return "\(o) state: slot '\(slot)' holds \(found) values, the model has \(expected) parameters"
        case .negativeIterations(let n):
            return "optimizer state: iteration count \(n) is negative"
        }
    }
}

/// A gradient-descent rule on the flat buffers. `apply` sees the gradient of the MEAN loss.
public protocol Optimizer: AnyObject {
    /// Keras class name ("RMSprop", "Adam", "SGD").
    var name: String { get }
    var learningRate: Float { get set }
    /// Steps applied so far (Keras `optimizer.iterations`).
    var iterations: Int { get }
    /// The state arrays, in a fixed order.
    var slots: [OptimizerSlot] { get }
    /// Replaces the state, refusing slots whose names or sizes do not match.
    func restore(slots: [OptimizerSlot], iterations: Int) throws
    /// One step from `scale`·`gradients` (the trainer passes the global batch's gradient sums and
    /// 1/batch): updates `weights` and the state in one pass over the buffers; increments
    /// `iterations`. Scaling in the pass gives the bits that scaling the buffer first would.
    /// Reports whether every new weight is finite.
    @discardableResult
    func apply(gradients: [Float], scale: Float, to weights: inout [Float]) -> UpdateCheck
}

extension Optimizer {
    /// One step from the gradient of the mean loss.
    @discardableResult
    func apply(gradients: [Float], to weights: inout [Float]) -> UpdateCheck {
        apply(gradients: gradients, scale: 1, to: &weights)
    }
}

/// What an update pass saw: whether every weight it wrote is finite.
public struct UpdateCheck: Equatable, Sendable {
    public var weightsFinite: Bool
}

/// Runs an optimizer's element update over 0..<count, eight lanes at a time and then one by one
/// (the same IEEE operations either way, so the bits do not depend on the lane width or the CPU).
/// Each call returns the weights it wrote; their lane-wise 0·w sums stay 0 while every weight is
/// finite and turn NaN once one is not (0·±inf and 0·NaN are NaN). Why not a plain loop: with three
/// or four buffers that may alias, the auto-vectorizer gives up, and the update was a scalar loop
/// bounded by its division and square root (0.8 ms for the book's 328k parameters).
@inline(__always)
func updateElements(count: Int, _ vector: (Int) -> Vector, _ scalar: (Int) -> Float) -> UpdateCheck {
    var wide = Vector(repeating: 0), narrow: Float = 0
    forEachLane(count, { wide = wide + vector($0) * Vector(repeating: 0) }, { narrow = narrow + scalar($0) * 0 })
    return UpdateCheck(weightsFinite: wide.isAllZero && narrow.isAllZero)
}

/// Shared slot bookkeeping of the optimizers.
public class SlotOptimizer {
    let parameterCount: Int
    public var learningRate: Float
    public internal(set) var iterations = 0
    var state: [[Float]]
    let slotNames: [String]
    let displayName: String

    init(name: String, slotNames: [String], parameterCount: Int, learningRate: Float) {
        displayName = name
        self.slotNames = slotNames
        self.parameterCount = parameterCount
        self.learningRate = learningRate
        state = slotNames.map { _ in [Float](repeating: 0, count: parameterCount) }
    }

    public var name: String { displayName }

    public var slots: [OptimizerSlot] {
        zip(slotNames, state).map { OptimizerSlot(name: $0, values: $1) }
    }

    public func restore(slots: [OptimizerSlot], iterations: Int) throws {
        guard slots.map(\.name) == slotNames else {
            throw OptimizerError.slotNames(optimizer: displayName, expected: slotNames, found: slots.map(\.name))
        }
        for slot in slots where slot.values.count != parameterCount {
            throw OptimizerError.slotSize(optimizer: displayName, slot: slot.name,
                                          expected: parameterCount, found: slot.values.count)
        }
        guard iterations >= 0 else { throw OptimizerError.negativeIterations(iterations) }
        state = slots.map(\.values)
        self.iterations = iterations
    }

    func checkSizes(_ gradients: [Float], _ weights: [Float]) {
        precondition(gradients.count == parameterCount && weights.count == parameterCount,
                     "\(displayName): \(weights.count) weights and \(gradients.count) gradients, expected \(parameterCount)")
    }

    /// The step of an optimizer with one slot: checks the sizes, hands `pass` the base addresses of
    /// the weights, the gradients and the slot with the element count, and counts the step.
    @inline(__always)
    func stepWithOneSlot(_ weights: inout [Float], _ gradients: [Float],
                         _ pass: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> UpdateCheck)
        -> UpdateCheck {
        checkSizes(gradients, weights)
        let check = weights.withUnsafeMutableBufferPointer { wb in
            gradients.withUnsafeBufferPointer { gb in
                state[0].withUnsafeMutableBufferPointer { sb in pass(wb.baseAddress!, gb.baseAddress!, sb.baseAddress!, wb.count) }
            }
        }
        iterations += 1
        return check
    }
}

/// Keras 3 RMSprop (no momentum, not centered):
///     v ← ρ·v + (1 − ρ)·g²;   w ← w − lr·g / √(v + ε)
/// Defaults as Keras: lr 0.001, ρ 0.9, ε 1e-7 (inside the root, unlike Adam). Slot "velocity".
///
/// Hyperparameters are Double, as Keras's Python floats: 1 − ρ is formed in Double and then rounded
/// to Float (0.1f, not 1 − 0.9f), exactly as TensorFlow does when it meets the float32 tensors.
public final class RMSprop: SlotOptimizer, Optimizer {
    var rho: Double
    var epsilon: Double

    init(parameterCount: Int, learningRate: Float = 0.001, rho: Double = 0.9, epsilon: Double = 1e-7) {
        self.rho = rho
        self.epsilon = epsilon
        super.init(name: "RMSprop", slotNames: ["velocity"], parameterCount: parameterCount, learningRate: learningRate)
    }

    public func apply(gradients: [Float], scale: Float, to weights: inout [Float]) -> UpdateCheck {
        let lr = learningRate, rho = Float(rho), oneMinusRho = Float(1 - self.rho), eps = Float(epsilon)
        return stepWithOneSlot(&weights, gradients) { w, g, v, count in
            @inline(__always) func update<V: Lane>(_ i: Int) -> V {
                let gi = V.load(g + i) * V(repeating: scale)
                let vi = V(repeating: rho) * V.load(v + i) + V(repeating: oneMinusRho) * (gi * gi)
                vi.store(to: v + i)
                let wi = V.load(w + i) - (V(repeating: lr) * gi) / (vi + V(repeating: eps)).sqrt()
                wi.store(to: w + i)
                return wi
            }
            return updateElements(count: count, { update($0) }, { update($0) })
        }
    }
}

/// Keras 3 Adam (no amsgrad), with Keras's bias correction folded into the step size:
///     t = iterations + 1;  α = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)
///     m ← m + (g − m)(1 − β₁);  v ← v + (g² − v)(1 − β₂);  w ← w − α·m/(√v + ε)
/// Defaults as Keras: lr 0.001, β₁ 0.9, β₂ 0.999, ε 1e-7. Slots "momentum", "velocity".
/// Hyperparameters are Double, as Keras's Python floats (see `RMSprop`).
public final class Adam: SlotOptimizer, Optimizer {
    var beta1: Double
    var beta2: Double
    var epsilon: Double

    init(parameterCount: Int, learningRate: Float = 0.001, beta1: Double = 0.9, beta2: Double = 0.999,
                epsilon: Double = 1e-7) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        super.init(name: "Adam", slotNames: ["momentum", "velocity"], parameterCount: parameterCount,
                   learningRate: learningRate)
    }

    public func apply(gradients: [Float], scale: Float, to weights: inout [Float]) -> UpdateCheck {
        checkSizes(gradients, weights)
        let t = Float(iterations + 1)
        // Float powers of Float betas, as Keras computes them in the variable's dtype.
        let b1Power = Foundation.pow(Float(beta1), t), b2Power = Foundation.pow(Float(beta2), t)
        let alpha = learningRate * (1 - b2Power).squareRoot() / (1 - b1Power)
        let oneMinusB1 = Float(1 - beta1), oneMinusB2 = Float(1 - beta2), eps = Float(epsilon)
        // Take both slots out of `state` (uniquely, so no copy) to hold two mutable accesses at once.
        var momentum = state[0], velocity = state[1]
        state = []
        defer { state = [momentum, velocity] }
        let check = weights.withUnsafeMutableBufferPointer { wb in
            gradients.withUnsafeBufferPointer { gb in
                momentum.withUnsafeMutableBufferPointer { mb in
                    velocity.withUnsafeMutableBufferPointer { vb in
                        let w = wb.baseAddress!, g = gb.baseAddress!, m = mb.baseAddress!, v = vb.baseAddress!
                        @inline(__always) func update<V: Lane>(_ i: Int) -> V {
                            let gi = V.load(g + i) * V(repeating: scale)
                            let m0 = V.load(m + i), v0 = V.load(v + i)
                            let mi = m0 + (gi - m0) * V(repeating: oneMinusB1)
                            let vi = v0 + (gi * gi - v0) * V(repeating: oneMinusB2)
                            mi.store(to: m + i)
                            vi.store(to: v + i)
                            let wi = V.load(w + i) - (mi * V(repeating: alpha)) / (vi.sqrt() + V(repeating: eps))
                            wi.store(to: w + i)
                            return wi
                        }
                        return updateElements(count: wb.count, { update($0) }, { update($0) })
                    }
                }
            }
        }
        iterations += 1
        return check
    }
}

/// Keras 3 SGD with (non-Nesterov) momentum:
///     m ← momentum·m − lr·g;  w ← w + m
/// Defaults as Keras: lr 0.01, momentum 0 (then the step is plain w − lr·g). Slot "momentum".
public final class SGD: SlotOptimizer, Optimizer {
    var momentum: Double

    init(parameterCount: Int, learningRate: Float = 0.01, momentum: Double = 0) {
        self.momentum = momentum
        super.init(name: "SGD", slotNames: ["momentum"], parameterCount: parameterCount, learningRate: learningRate)
    }

    public func apply(gradients: [Float], scale: Float, to weights: inout [Float]) -> UpdateCheck {
        let lr = learningRate, mu = Float(momentum)
        return stepWithOneSlot(&weights, gradients) { w, g, m, count in
            @inline(__always) func update<V: Lane>(_ i: Int) -> V {
                let gi = V.load(g + i) * V(repeating: scale)
                // −g as (−1)·g: the standard library's SIMD negation is 0 − g, which is +0, not −0, at g = +0.
                let mi = V(repeating: -1) * gi * V(repeating: lr) + V.load(m + i) * V(repeating: mu)
                mi.store(to: m + i)
                let wi = V.load(w + i) + mi
                wi.store(to: w + i)
                return wi
            }
            return updateElements(count: count, { update($0) }, { update($0) })
        }
    }
}

/// Which optimizer, by the CLI's names.
public enum OptimizerKind: String, Codable, CaseIterable, Sendable {
    case rmsprop, adam, sgd

    /// Keras's default learning rate: 0.001 for RMSprop and Adam, 0.01 for SGD.
    public var defaultLearningRate: Double {
        switch self {
        case .rmsprop, .adam: return 0.001
        case .sgd: return 0.01
        }
    }

    /// A fresh optimizer for `parameterCount` parameters; `learningRate` nil means the default.
    public func make(parameterCount: Int, learningRate: Float? = nil, momentum: Double = 0) -> any Optimizer {
        let lr = learningRate ?? Float(defaultLearningRate)
        switch self {
        case .rmsprop: return RMSprop(parameterCount: parameterCount, learningRate: lr)
        case .adam: return Adam(parameterCount: parameterCount, learningRate: lr)
        case .sgd: return SGD(parameterCount: parameterCount, learningRate: lr, momentum: momentum)
        }
    }
}

/// Gradient clipping by global norm (Keras `global_clipnorm`, `tf.clip_by_global_norm`).
///
/// Why: an RNN's gradient can explode through many time steps; rescaling the whole gradient keeps
/// its direction and bounds the step.
public enum GradientClipping {
    /// ‖g‖₂ over the whole buffer, accumulated in Double.
    static func globalNorm(_ g: [Float]) -> Double {
        var sum = 0.0
        g.withUnsafeBufferPointer { p in
            // Float partial sums over blocks, Double totals: fast and accurate enough for a norm.
            var start = 0
            while start < p.count {
                let end = min(p.count, start + 1024)
                var partial: Float = 0
                for i in start..<end { partial += p[i] * p[i] }
                sum += Double(partial)
                start = end
            }
        }
        return sum.squareRoot()
    }

    /// Scales g by maxNorm/‖g‖ when ‖g‖ > maxNorm. Returns ‖g‖ before clipping.
    @discardableResult
    public static func clip(_ g: inout [Float], maxNorm: Float) -> Double {
        precondition(maxNorm > 0, "clipNorm must be positive")
        let norm = globalNorm(g)
        if norm > Double(maxNorm) {
            let scale = Float(Double(maxNorm) / norm)
            g.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count { p[i] *= scale }
            }
        }
        return norm
    }
}
