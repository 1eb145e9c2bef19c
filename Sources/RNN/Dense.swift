// Keras `Dense(K)` on a vector: z = x·W + b, W (D, K), b (K), then its activation: a hidden layer's
// own (relu, tanh, sigmoid, linear), the output layer's is the head's (linear here).
//
// Shape letters: B batch, D input width, K units.

import BLAS

final class Dense: Layer {
    let kernel: ParameterView
    /// nil without a bias (Keras `use_bias=False`).
    let bias: ParameterView?
    /// D and K.
    let inputSize: Int
    let units: Int
    /// (B, K): z of the last forward.
    private var output = FloatBuffer(count: 0)
    /// (B, D): ∂loss/∂x; (B, K): ∂loss/∂z of a hidden layer with an activation.
    private var dInput = FloatBuffer(count: 0)
    private var dPre = FloatBuffer(count: 0)
    let activation: Nonlinearity

    init(kernel: ParameterView, bias: ParameterView?, activation: Nonlinearity = .linear) {
        self.activation = activation
        precondition(kernel.shape.count == 2 && (bias.map { $0.shape == [kernel.shape[1]] } ?? true),
                     "Dense: kernel \(kernel.shape), bias \(bias?.shape ?? [])")
        self.kernel = kernel
        self.bias = bias
        inputSize = kernel.shape[0]
        units = kernel.shape[1]
    }

    func reserve(_ p: Pass) {
        output = output.ensuring(p.batch * units)
        dInput = dInput.ensuring(p.batch * inputSize)
        if activation != .linear { dPre = dPre.ensuring(p.batch * units) }
    }

    func forward(_ input: Activation, _ p: Pass) -> Activation {
        guard case .vector(let x) = input else { preconditionFailure("Dense: the input must be a vector") }
        let z = output.pointer, w = p.weights
        // One unit (the two-class head) is a product in the own kernel where it takes it: OpenBLAS's
        // sgemv sums a row's products in an order that depends on the number of rows (`predict` of
        // one text and of two differed in the last bits), the own kernel never does (BLAS.ownKernel).
        // Beyond it (a head after a Flatten: k = T·E), sgemv as before: OpenBLAS's sgemm keeps no
        // row apart either, and packs the whole input first.
        if units == 1 && !(BLAS.ownKernel && BLAS.takesOwnKernel(transB: false, m: p.batch, n: 1, k: inputSize, alpha: 1, beta: 0)) {
            BLAS.sgemv(m: p.batch, n: inputSize, a: x, lda: inputSize, x: w + kernel.offset, beta: 0, y: z)
        } else {
            BLAS.sgemm(m: p.batch, n: units, k: inputSize, a: x, lda: inputSize, b: w + kernel.offset, ldb: units,
                       beta: 0, c: z, ldc: units)
        }
        if let bias {
            for b in 0..<p.batch {
                for k in 0..<units { z[b * units + k] += w[bias.offset + k] }
            }
        }
        activation.apply(z, count: p.batch * units)
        return .vector(UnsafePointer(z))
    }

    /// db += Σ_b dZ (summed in Double), dW += xᵀ·dZ, dX = dZ·Wᵀ.
    func backward(_ dY: UnsafePointer<Float>, input: Activation, _ p: Pass,
                  gradients dw: UnsafeMutablePointer<Float>) -> UnsafePointer<Float>? {
        guard case .vector(let x) = input else { preconditionFailure("Dense: the input must be a vector") }
        var dZ = dY
        if activation != .linear {
            activation.backward(dY, outputs: output.pointer, into: dPre.pointer, count: p.batch * units)
            dZ = UnsafePointer(dPre.pointer)
        }
        let D = inputSize, K = units, w = p.weights + kernel.offset, dx = dInput.pointer
        if let bias {
            for k in 0..<K {
                var sum: Double = 0
                for b in 0..<p.batch { sum += Double(dZ[b * K + k]) }
                dw[bias.offset + k] += Float(sum)
            }
        }
        if K == 1 {
            for b in 0..<p.batch {
                let dz = dZ[b], row = dx + b * D
                for j in 0..<D { row[j] = dz * w[j] }
            }
            BLAS.sgemv(trans: true, m: p.batch, n: D, a: x, lda: D, x: dZ, beta: 1, y: dw + kernel.offset)
        } else {
            BLAS.sgemm(transA: true, m: D, n: K, k: p.batch, a: x, lda: D, b: dZ, ldb: K, beta: 1, c: dw + kernel.offset, ldc: K)
            BLAS.sgemm(transB: true, m: p.batch, n: D, k: K, a: dZ, lda: K, b: w, ldb: K, beta: 0, c: dx, ldc: D)
        }
        return UnsafePointer(dx)
    }
}

/// Keras `Dense(units, activation)`; the output layer's activation is the head's (linear here).
public struct DenseSpec: LayerSpecification {
    public internal(set) var units: Int
    public internal(set) var activation: Nonlinearity
    /// Keras `use_bias`.
    public internal(set) var useBias: Bool

    init(units: Int, activation: Nonlinearity = .linear, useBias: Bool = true) {
        self.units = units
        self.activation = activation
        self.useBias = useBias
    }

    private enum CodingKeys: String, CodingKey { case units, activation, useBias = "use_bias" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        units = try c.decode(Int.self, forKey: .units)
        activation = try c.decodeIfPresent(Nonlinearity.self, forKey: .activation) ?? .linear
        useBias = try c.decodeIfPresent(Bool.self, forKey: .useBias) ?? true
    }

    /// `activation` is written only when not linear, so output layers read as before.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(units, forKey: .units)
        if activation != .linear { try c.encode(activation, forKey: .activation) }
        if !useBias { try c.encode(false, forKey: .useBias) }
    }

    static let type = "dense"
    var kerasBaseName: String { "dense" }
    var kerasClassName: String { "Dense" }
    var label: String { "dense(\(units)" + (activation == .linear ? "" : ", \(activation.rawValue)") + (useBias ? ")" : ", no bias)") }

    func output(from shape: Shape) -> Shape? {
        if case .vector = shape { return .vector(units) }
        return nil
    }

    func parameters(input shape: Shape) -> [LayerParameter] {
        guard case .vector(let input) = shape else { return [] }
        return [LayerParameter(index: 0, name: "kernel", shape: [input, units], cell: false, initializer: .glorotUniform)]
            + (useBias ? [LayerParameter(index: 1, name: "bias", shape: [units], cell: false, initializer: .zeros)] : [])
    }

    func validate() throws { try ModelConfigError.check("dense units", units, ModelConfig.maxWidth) }

    func makeLayer(input: Shape, tensors: [ParameterView], previous: (any Layer)?, index: Int) -> any Layer {
        Dense(kernel: tensors[0], bias: useBias ? tensors[1] : nil, activation: activation)
    }
}
