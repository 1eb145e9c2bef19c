// Keras `Flatten` (chapter 6.1's Embedding → Flatten → Dense): each sample's (T, D) sequence
// becomes one vector of T·D features, step by step ([x_0 | x_1 | …]), as Keras's row-major reshape.
//
// Shape letters: B batch, T time steps, D width. Sequences are time-major (T, B, D); vectors (B, T·D).

final class Flatten: Layer {
    /// (B, T·D) the output; (T, B, D) ∂loss/∂input.
    private var output = FloatBuffer(count: 0)
    private var dInput = FloatBuffer(count: 0)
    let width: Int

    init(width: Int) { self.width = width }

    /// The whole sequence is one vector: no blocks.
    var runsInBlocks: Bool { false }

    func reserve(_ p: Pass) {
        output = output.ensuring(p.batch * p.steps * width)
        dInput = dInput.ensuring(p.batch * p.steps * width)
    }

    func forward(_ input: Activation, _ p: Pass) -> Activation {
        switch input {
        case .vector: return input                       // Keras: (None, D) stays (None, D)
        case .sequence(let x):
            let D = width, T = p.steps, B = p.batch, out = output.pointer
            for t in 0..<T {
                for b in 0..<B { (out + (b * T + t) * D).update(from: x + (t * B + b) * D, count: D) }
            }
            return .vector(UnsafePointer(out))
        default: preconditionFailure("Flatten: the input must be a sequence")
        }
    }

    func backward(_ dOutput: UnsafePointer<Float>, input: Activation, _ p: Pass,
                  gradients: UnsafeMutablePointer<Float>) -> UnsafePointer<Float>? {
        guard case .sequence = input else { return dOutput }
        let D = width, T = p.steps, B = p.batch, dx = dInput.pointer
        for t in 0..<T {
            for b in 0..<B { (dx + (t * B + b) * D).update(from: dOutput + (b * T + t) * D, count: D) }
        }
        return UnsafePointer(dx)
    }
}

/// Keras `Flatten()`: needs the sequence's length, so the model's InputLayer must fix it.
public struct FlattenSpec: LayerSpecification {
    init() {}

    static let type = "flatten"
    var kerasBaseName: String { "flatten" }
    var kerasClassName: String { "Flatten" }
    var label: String { "flatten" }

    func output(from shape: Shape) -> Shape? {
        switch shape {
        case .sequence(let w, let steps?): return .vector(w * steps)
        case .vector: return shape
        default: return nil
        }
    }

    func parameters(input shape: Shape) -> [LayerParameter] { [] }
    func validate() throws {}

    func makeLayer(input: Shape, tensors: [ParameterView], previous: (any Layer)?, index: Int) -> any Layer {
        switch input {
        case .sequence(let w, _), .vector(let w): return Flatten(width: w)
        case .tokens: preconditionFailure("Flatten: the input must be a sequence")
        }
    }
}
