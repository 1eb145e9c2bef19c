// Keras `Dropout(rate)` as a layer: while training, each feature of each sample (every step's, on a
// sequence) is kept with probability 1 − rate and scaled by 1/(1 − rate), else zeroed; otherwise the
// identity. The masks come from the same counter-based hash as the recurrent layers' (Dropout.swift):
// a pure function of (seed, epoch, the sample's position in the epoch, the layer, the feature), so
// they do not depend on the number of ranks or on a resume.
//
// Shape letters: B batch, T time steps, D width. Sequences are time-major (T, B, D).

final class DropoutLayer: Layer {
    let rate: Double
    /// Which Dropout layer of the model (0 = the first): part of the masks' key.
    let index: Int
    let width: Int
    private var key: DropoutKey?
    private var active = false
    /// (B, T·D) per sample, step-major: this batch's masks; (T, B, D) or (B, D) output and ∂input.
    private var masks = FloatBuffer(count: 0)
    private var output = FloatBuffer(count: 0)
    private var dInput = FloatBuffer(count: 0)

    /// The identity in evaluation.
    var causal: Bool { true }

    init(rate: Double, index: Int, width: Int) {
        self.rate = rate
        self.index = index
        self.width = width
    }

    func reserve(_ p: Pass) {
        guard active else { return }
        let n = p.batch * p.steps * width
        masks = masks.ensuring(n)
        output = output.ensuring(n)
        dInput = dInput.ensuring(n)
    }

    func drawMasks(key: DropoutKey) { self.key = key }
    func setMasks(active: Bool) { self.active = active && rate > 0 && key != nil }

    /// The masks of a pass's samples: sample b's (T·D) features, step by step.
    private func fill(batch: Int, features: Int) {
        guard let key else { return }
        precondition(key.positions.count == batch, "Dropout: \(key.positions.count) mask keys for batch \(batch)")
        for (b, position) in key.positions.enumerated() {
            DropoutMask.fill(masks.pointer + b * features, count: features, rate: rate, seed: key.seed, epoch: key.epoch,
                             position: position, layer: index, direction: 0, site: .layer, gate: 0)
        }
    }

    func forward(_ input: Activation, _ p: Pass) -> Activation {
        guard active else { return input }
        let x: UnsafePointer<Float>, steps: Int
        switch input {
        case .sequence(let s): x = s; steps = p.steps
        case .vector(let v): x = v; steps = 1
        default: preconditionFailure("Dropout: the input must be a sequence or a vector")
        }
        let D = width, B = p.batch, features = steps * D
        fill(batch: B, features: features)
        let out = output.pointer, m = masks.pointer
        for t in 0..<steps {
            for b in 0..<B {
                let row = (t * B + b) * D, mask = m + b * features + t * D
                for j in 0..<D { out[row + j] = x[row + j] * mask[j] }
            }
        }
        if case .vector = input { return .vector(UnsafePointer(out)) }
        return .sequence(UnsafePointer(out))
    }

    func backward(_ dOutput: UnsafePointer<Float>, input: Activation, _ p: Pass,
                  gradients: UnsafeMutablePointer<Float>) -> UnsafePointer<Float>? {
        guard active else { return dOutput }
        var steps = p.steps
        if case .vector = input { steps = 1 }
        let D = width, B = p.batch, features = steps * D, dx = dInput.pointer, m = masks.pointer
        for t in 0..<steps {
            for b in 0..<B {
                let row = (t * B + b) * D, mask = m + b * features + t * D
                for j in 0..<D { dx[row + j] = dOutput[row + j] * mask[j] }
            }
        }
        return UnsafePointer(dx)
    }
}

/// Keras `Dropout(rate)` (noise_shape None).
public struct DropoutSpec: LayerSpecification {
    var rate: Double

    init(rate: Double) { self.rate = rate }

    static let type = "dropout"
    var kerasBaseName: String { "dropout" }
    var kerasClassName: String { "Dropout" }
    var label: String { "dropout(\(rate))" }

    func output(from shape: Shape) -> Shape? {
        if case .tokens = shape { return nil }
        return shape
    }

    func parameters(input shape: Shape) -> [LayerParameter] { [] }

    func validate() throws {
        guard ModelConfigError.isRate(rate) else { throw ModelConfigError.badRate(name: "dropout rate", value: rate) }
    }

    func makeLayer(input: Shape, tensors: [ParameterView], previous: (any Layer)?, index: Int) -> any Layer {
        switch input {
        case .sequence(let w, _), .vector(let w): return DropoutLayer(rate: rate, index: index, width: w)
        case .tokens: preconditionFailure("Dropout: the input must be a sequence or a vector")
        }
    }
}
