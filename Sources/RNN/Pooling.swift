// Keras `MaxPooling1D(pool_size, strides, padding)` over time, and `GlobalMaxPooling1D` /
// `GlobalAveragePooling1D` (chapter 6.4's convnet). Max pooling keeps, for each output, which step
// won (the first of equal ones), and its backward routes the gradient there.
//
// Shape letters: B batch, T input steps, T′ output steps, D width. Sequences are time-major (T, B, D).

final class MaxPooling1D: Layer {
    let spec: Pooling1DSpec
    let width: Int
    /// (T′, B, D) the maxima and the input step of each; (T, B, D) ∂loss/∂x.
    private var output = FloatBuffer(count: 0)
    private var winners = Int32Buffer(count: 0)
    private var dInput = FloatBuffer(count: 0)

    init(spec: Pooling1DSpec, width: Int) {
        self.spec = spec
        self.width = width
    }

    var runsInBlocks: Bool { false }
    func outputSteps(_ steps: Int) -> Int { spec.outputSteps(steps) }

    func reserve(_ p: Pass) {
        let n = spec.outputSteps(p.steps) * p.batch * width
        output = output.ensuring(n)
        winners = winners.ensuring(n)
        dInput = dInput.ensuring(p.steps * p.batch * width)
    }

    func forward(_ input: Activation, _ p: Pass) -> Activation {
        guard case .sequence(let x) = input else { preconditionFailure("MaxPooling1D: the input must be a sequence") }
        let B = p.batch, D = width, T = p.steps, left = spec.leftPadding(steps: T)
        let y = output.pointer, arg = winners.pointer
        for o in 0..<spec.outputSteps(T) {
            // The window's steps inside the sequence (padding never wins: Keras pads with −∞).
            let first = max(0, o * spec.strides - left), end = min(T, o * spec.strides - left + spec.poolSize)
            for b in 0..<B {
                let out = y + (o * B + b) * D, win = arg + (o * B + b) * D
                out.update(from: x + (first * B + b) * D, count: D)
                for j in 0..<D { win[j] = Int32(first) }
                for t in (first + 1)..<max(first + 1, end) {
                    let row = x + (t * B + b) * D, step = Int32(t)
                    for j in 0..<D {              // branch-free, so the loop vectorizes
                        let v = row[j], better = v > out[j]
                        out[j] = better ? v : out[j]
                        win[j] = better ? step : win[j]
                    }
                }
            }
        }
        return .sequence(UnsafePointer(y))
    }

    func backward(_ dY: UnsafePointer<Float>, input: Activation, _ p: Pass,
                  gradients: UnsafeMutablePointer<Float>) -> UnsafePointer<Float>? {
        let B = p.batch, D = width, dx = dInput.pointer, arg = winners.pointer
        dx.update(repeating: 0, count: p.steps * B * D)
        for o in 0..<spec.outputSteps(p.steps) {
            for b in 0..<B {
                let r = (o * B + b) * D
                for j in 0..<D { dx[(Int(arg[r + j]) * B + b) * D + j] += dY[r + j] }
            }
        }
        return UnsafePointer(dx)
    }
}

/// Keras `MaxPooling1D(pool_size, strides (default pool_size), padding valid|same)`.
public struct Pooling1DSpec: LayerSpecification {
    public enum Padding: String, Codable, Sendable { case valid, same }

    public internal(set) var poolSize: Int
    public internal(set) var strides: Int
    public internal(set) var padding: Padding

    init(poolSize: Int, strides: Int? = nil, padding: Padding = .valid) {
        self.poolSize = poolSize
        self.strides = strides ?? poolSize
        self.padding = padding
    }

    private enum CodingKeys: String, CodingKey { case poolSize = "pool_size", strides, padding }

    /// T′: valid ⌊(T − p)/s⌋ + 1, same ⌈T/s⌉ (≤ 0 when the pool is longer than a valid input).
    public func outputSteps(_ steps: Int) -> Int {
        switch padding {
        case .valid: return steps >= poolSize ? (steps - poolSize) / strides + 1 : 0
        case .same: return (steps + strides - 1) / strides
        }
    }

    /// Same padding's steps before the first (TensorFlow's split: the smaller half on the left).
    public func leftPadding(steps: Int) -> Int {
        guard padding == .same else { return 0 }
        return max((outputSteps(steps) - 1) * strides + poolSize - steps, 0) / 2
    }

    static let type = "max_pooling1d"
    var kerasBaseName: String { "max_pooling1d" }
    var kerasClassName: String { "MaxPooling1D" }
    var label: String { "max_pooling1d(\(poolSize)" + (strides == poolSize ? "" : ", strides \(strides)")
        + (padding == .valid ? ")" : ", same)") }

    func output(from shape: Shape) -> Shape? {
        guard case .sequence(let w, let steps) = shape else { return nil }
        guard let t = steps else { return .sequence(w, steps: nil) }
        let out = outputSteps(t)
        return out >= 1 ? .sequence(w, steps: out) : nil
    }

    func parameters(input shape: Shape) -> [LayerParameter] { [] }

    func validate() throws {
        try ModelConfigError.check("pool_size", poolSize, 4096)
        try ModelConfigError.check("pooling strides", strides, 4096)
    }

    func makeLayer(input: Shape, tensors: [ParameterView], previous: (any Layer)?, index: Int) -> any Layer {
        guard case .sequence(let w, _) = input else { preconditionFailure("MaxPooling1D: the input must be a sequence") }
        return MaxPooling1D(spec: self, width: w)
    }
}

/// `GlobalMaxPooling1D` / `GlobalAveragePooling1D`: (T, B, D) → (B, D).
final class GlobalPooling1D: Layer {
    let average: Bool
    let width: Int
    private var output = FloatBuffer(count: 0)
    private var winners = Int32Buffer(count: 0)
    private var dInput = FloatBuffer(count: 0)

    init(average: Bool, width: Int) {
        self.average = average
        self.width = width
    }

    var runsInBlocks: Bool { false }

    func reserve(_ p: Pass) {
        output = output.ensuring(p.batch * width)
        winners = winners.ensuring(p.batch * width)
        dInput = dInput.ensuring(p.steps * p.batch * width)
    }

    func forward(_ input: Activation, _ p: Pass) -> Activation {
        guard case .sequence(let x) = input else { preconditionFailure("GlobalPooling1D: the input must be a sequence") }
        let B = p.batch, D = width, T = p.steps, y = output.pointer, arg = winners.pointer
        y.update(from: x, count: B * D)
        if average {
            for t in 1..<max(1, T) { addVector(x + t * B * D, into: y, count: B * D) }
            let scale = 1 / Float(T)
            for i in 0..<(B * D) { y[i] *= scale }
        } else {
            for i in 0..<(B * D) { arg[i] = 0 }
            for t in 1..<max(1, T) {
                let row = x + t * B * D, step = Int32(t)
                for i in 0..<(B * D) {
                    let v = row[i], better = v > y[i]
                    y[i] = better ? v : y[i]
                    arg[i] = better ? step : arg[i]
                }
            }
        }
        return .vector(UnsafePointer(y))
    }

    func backward(_ dY: UnsafePointer<Float>, input: Activation, _ p: Pass,
                  gradients: UnsafeMutablePointer<Float>) -> UnsafePointer<Float>? {
        let B = p.batch, D = width, T = p.steps, dx = dInput.pointer, n = B * D
        if average {
            let scale = 1 / Float(T)
            for t in 0..<T {
                for i in 0..<n { dx[t * n + i] = dY[i] * scale }
            }
        } else {
            dx.update(repeating: 0, count: T * n)
            for i in 0..<n { dx[Int(winners.pointer[i]) * n + i] = dY[i] }
        }
        return UnsafePointer(dx)
    }
}

/// Keras `GlobalMaxPooling1D()` or `GlobalAveragePooling1D()` (channels last, keepdims false).
public struct GlobalPooling1DSpec: LayerSpecification {
    public internal(set) var average: Bool

    init(average: Bool) { self.average = average }

    static let type = "global_pooling1d"
    var kerasBaseName: String { average ? "global_average_pooling1d" : "global_max_pooling1d" }
    var kerasClassName: String { average ? "GlobalAveragePooling1D" : "GlobalMaxPooling1D" }
    var label: String { average ? "global_average_pooling1d" : "global_max_pooling1d" }

    func output(from shape: Shape) -> Shape? {
        guard case .sequence(let w, _) = shape else { return nil }
        return .vector(w)
    }

    func parameters(input shape: Shape) -> [LayerParameter] { [] }
    func validate() throws {}

    func makeLayer(input: Shape, tensors: [ParameterView], previous: (any Layer)?, index: Int) -> any Layer {
        guard case .sequence(let w, _) = input else { preconditionFailure("GlobalPooling1D: the input must be a sequence") }
        return GlobalPooling1D(average: average, width: w)
    }
}
