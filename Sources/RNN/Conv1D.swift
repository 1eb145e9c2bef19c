// Keras `Conv1D(filters, kernel_size, padding, activation)` over time (chapter 6.4), stride 1 and
// dilation 1: y_t = f(b + Σ_j x_{t+j−left}·W_j), W (k, D, F) as Keras stores it, x zero outside the
// sequence. padding "valid" gives T − k + 1 steps, "same" T (left = (k−1)/2, the rest on the right,
// as TensorFlow pads), "causal" T (left = k − 1).
//
// Time-major sequences make each tap one GEMM over every (step, sample) row at once: the rows of
// output steps t that tap j reads are the contiguous rows of input steps t + j − left. Backward is
// the same k GEMMs transposed, for dW and for ∂x.
//
// Right after the embedding (6.4's convnet) x_t·W_j depends only on x_t's token, so, as the fused
// recurrent projection does (Embedding.swift), each distinct token of the batch is multiplied once:
// table (N × k·F), block j = Emb[token]·W_j, and y_t = b + Σ_j table[token at t + j − left][block j].
// Backward sums each position's ∂y into its token's blocks, then dW_j = rowsᵀ·dTable_j and
// dRows = Σ_j dTable_j·W_jᵀ are (N × ·) products: with the book's sizes (N ≈ 5,000 distinct tokens
// against B·T = 32,000 positions per rank) about a sixth of the unfused work.
//
// Shape letters: B batch, T input steps, T′ output steps, D input width, F filters, k kernel size.

import BLAS

final class Conv1D: Layer {
    let spec: Conv1DSpec
    let kernel: ParameterView
    /// nil without a bias (Keras `use_bias=False`).
    let bias: ParameterView?
    let inputWidth: Int
    /// (T′, B, F) the output; (T′, B, F) ∂loss/∂(pre-activation); (T, B, D) ∂loss/∂x.
    private var output = FloatBuffer(count: 0)
    private var dPre = FloatBuffer(count: 0)
    private var dInput = FloatBuffer(count: 0)

    /// The embedding whose distinct rows this layer projects (when it comes right after it).
    weak var embeddingInput: EmbeddingLookup?

    init(spec: Conv1DSpec, inputWidth: Int, kernel: ParameterView, bias: ParameterView?) {
        precondition(kernel.shape == [spec.kernelSize, inputWidth, spec.filters] && (bias.map { $0.shape == [spec.filters] } ?? true),
                     "Conv1D: kernel \(kernel.shape), bias \(bias?.shape ?? [])")
        self.spec = spec
        self.inputWidth = inputWidth
        self.kernel = kernel
        self.bias = bias
    }

    var runsInBlocks: Bool { false }
    func outputSteps(_ steps: Int) -> Int { spec.outputSteps(steps) }

    func reserve(_ p: Pass) {
        let out = spec.outputSteps(p.steps) * p.batch * spec.filters
        output = output.ensuring(out)
        dPre = dPre.ensuring(out)
        if embeddingInput == nil { dInput = dInput.ensuring(p.steps * p.batch * inputWidth) }
    }

    /// For tap j: the output steps whose input step t + j − left lies in 0..<T.
    private func taps(steps T: Int) -> [(j: Int, first: Int, count: Int)] {
        let left = spec.leftPadding, outSteps = spec.outputSteps(T)
        return (0..<spec.kernelSize).compactMap { j in
            let first = max(0, left - j), end = min(outSteps, T - j + left)
            return end > first ? (j, first, end - first) : nil
        }
    }

    func forward(_ input: Activation, _ p: Pass) -> Activation {
        let B = p.batch, D = inputWidth, F = spec.filters, rows = spec.outputSteps(p.steps) * B
        let y = output.pointer, w = p.weights
        if let bias {
            for r in 0..<rows { (y + r * F).update(from: w + bias.offset, count: F) }
        } else {
            y.update(repeating: 0, count: rows * F)
        }
        if case .embedded(let e) = input {
            forwardFromEmbedding(e, p)
            spec.activation.apply(y, count: rows * F)
            return .sequence(UnsafePointer(y))
        }
        guard case .sequence(let x) = input else { preconditionFailure("Conv1D: the input must be a sequence") }
        for (j, first, count) in taps(steps: p.steps) {
            BLAS.sgemm(m: count * B, n: F, k: D, a: x + (first + j - spec.leftPadding) * B * D, lda: D,
                       b: w + kernel.offset + j * D * F, ldb: F, beta: 1, c: y + first * B * F, ldc: F)
        }
        spec.activation.apply(y, count: rows * F)
        return .sequence(UnsafePointer(y))
    }

    /// y (T′, B, F) += Σ_j table[slot(t + j − left)][block j], after the embedding's `lookup`.
    private func forwardFromEmbedding(_ e: EmbeddingLookup, _ p: Pass) {
        let B = p.batch, E = inputWidth, F = spec.filters, k = spec.kernelSize, n = e.distinctCount
        let table = e.distinctTable, y = output.pointer
        for j in 0..<k {
            BLAS.sgemm(m: n, n: F, k: E, a: e.distinctRows, lda: E, b: p.weights + kernel.offset + j * E * F, ldb: F,
                       beta: 0, c: table + j * F, ldc: k * F)
        }
        for (j, first, count) in taps(steps: p.steps) {
            for t in first..<(first + count) {
                let source = t + j - spec.leftPadding
                for b in 0..<B {
                    addVector(table + e.slot(source, b, batch: B, steps: p.steps) * k * F + j * F, into: y + (t * B + b) * F, count: F)
                }
            }
        }
    }

    /// The fused backward: dTable from dZ, then dW_j, dRows and the embedding rows' gradient.
    private func backwardToEmbedding(_ e: EmbeddingLookup, dZ: UnsafePointer<Float>, _ p: Pass, gradients dw: UnsafeMutablePointer<Float>) {
        let B = p.batch, E = inputWidth, F = spec.filters, k = spec.kernelSize, n = e.distinctCount
        let dTable = e.distinctTable, w = p.weights + kernel.offset
        dTable.update(repeating: 0, count: n * k * F)
        for (j, first, count) in taps(steps: p.steps) {
            for t in first..<(first + count) {
                let source = t + j - spec.leftPadding
                for b in 0..<B {
                    addVector(dZ + (t * B + b) * F, into: dTable + e.slot(source, b, batch: B, steps: p.steps) * k * F + j * F, count: F)
                }
            }
        }
        for j in 0..<k {
            // dW_j (E × F) += rowsᵀ (E × N) · dTable_j (N × F)
            BLAS.sgemm(transA: true, m: E, n: F, k: n, a: e.distinctRows, lda: E, b: dTable + j * F, ldb: k * F,
                       beta: 1, c: dw + kernel.offset + j * E * F, ldc: F)
        }
        guard e.trainable else { return }
        for j in 0..<k {
            // dRows (N × E) (=|+=) dTable_j (N × F) · W_jᵀ (F × E)
            BLAS.sgemm(transB: true, m: n, n: E, k: F, a: dTable + j * F, lda: k * F, b: w + j * E * F, ldb: F,
                       beta: j == 0 ? 0 : 1, c: e.distinctRowGradients, ldc: E)
        }
        e.addDistinctRowGradients(into: dw)
    }

    func backward(_ dY: UnsafePointer<Float>, input: Activation, _ p: Pass,
                  gradients dw: UnsafeMutablePointer<Float>) -> UnsafePointer<Float>? {
        let B = p.batch, D = inputWidth, F = spec.filters, rows = spec.outputSteps(p.steps) * B
        let dZ = dPre.pointer, w = p.weights + kernel.offset, dx = dInput.pointer
        spec.activation.backward(dY, outputs: output.pointer, into: dZ, count: rows * F)
        if let bias { addColumnSums(dZ, rows: rows, cols: F, into: dw + bias.offset) }
        if case .embedded(let e) = input {
            backwardToEmbedding(e, dZ: UnsafePointer(dZ), p, gradients: dw)
            return nil
        }
        guard case .sequence(let x) = input else { preconditionFailure("Conv1D: the input must be a sequence") }
        dx.update(repeating: 0, count: p.steps * B * D)
        for (j, first, count) in taps(steps: p.steps) {
            let xRows = (first + j - spec.leftPadding) * B * D
            // dW_j (D × F) += x_shiftedᵀ · dZ;  dx_shifted (rows × D) += dZ · W_jᵀ
            BLAS.sgemm(transA: true, m: D, n: F, k: count * B, a: x + xRows, lda: D, b: dZ + first * B * F, ldb: F,
                       beta: 1, c: dw + kernel.offset + j * D * F, ldc: F)
            BLAS.sgemm(transB: true, m: count * B, n: D, k: F, a: dZ + first * B * F, lda: F, b: w + j * D * F, ldb: F,
                       beta: 1, c: dx + xRows, ldc: D)
        }
        return UnsafePointer(dx)
    }
}

/// Keras `Conv1D`: stride 1, dilation 1, channels last, with a bias.
public struct Conv1DSpec: LayerSpecification {
    public enum Padding: String, Codable, Sendable { case valid, same, causal }

    public internal(set) var filters: Int
    public internal(set) var kernelSize: Int
    public internal(set) var padding: Padding
    public internal(set) var activation: Nonlinearity
    /// Keras `use_bias`.
    public internal(set) var useBias: Bool

    init(filters: Int, kernelSize: Int, padding: Padding = .valid, activation: Nonlinearity = .linear, useBias: Bool = true) {
        self.filters = filters
        self.kernelSize = kernelSize
        self.padding = padding
        self.activation = activation
        self.useBias = useBias
    }

    private enum CodingKeys: String, CodingKey { case filters, kernelSize = "kernel_size", padding, activation, useBias = "use_bias" }

    /// Zeros before the first step.
    public var leftPadding: Int {
        switch padding {
        case .valid: return 0
        case .same: return (kernelSize - 1) / 2
        case .causal: return kernelSize - 1
        }
    }

    /// T′ for T input steps (≤ 0 when a valid convolution's kernel is longer than the sequence).
    public func outputSteps(_ steps: Int) -> Int { padding == .valid ? steps - kernelSize + 1 : steps }

    static let type = "conv1d"
    var kerasBaseName: String { "conv1d" }
    var kerasClassName: String { "Conv1D" }
    var label: String { "conv1d(\(filters), \(kernelSize)" + (padding == .valid ? "" : ", \(padding.rawValue)")
        + (activation == .linear ? "" : ", \(activation.rawValue)") + (useBias ? ")" : ", no bias)") }

    func output(from shape: Shape) -> Shape? {
        guard case .sequence(_, let steps) = shape else { return nil }
        if let t = steps {
            let out = outputSteps(t)
            return out >= 1 ? .sequence(filters, steps: out) : nil
        }
        return .sequence(filters, steps: nil)
    }

    func parameters(input shape: Shape) -> [LayerParameter] {
        guard case .sequence(let d, _) = shape else { return [] }
        return [LayerParameter(index: 0, name: "kernel", shape: [kernelSize, d, filters], cell: false, initializer: .glorotUniform)]
            + (useBias ? [LayerParameter(index: 1, name: "bias", shape: [filters], cell: false, initializer: .zeros)] : [])
    }

    func validate() throws {
        try ModelConfigError.check("conv1d filters", filters, ModelConfig.maxWidth)
        try ModelConfigError.check("conv1d kernel_size", kernelSize, 4096)
    }

    func makeLayer(input: Shape, tensors: [ParameterView], previous: (any Layer)?, index: Int) -> any Layer {
        guard case .sequence(let d, _) = input else { preconditionFailure("Conv1D: the input must be a sequence") }
        let layer = Conv1D(spec: self, inputWidth: d, kernel: tensors[0], bias: useBias ? tensors[1] : nil)
        if let embedding = previous as? EmbeddingLookup {          // the fused projection (see the top)
            layer.embeddingInput = embedding
            embedding.projectionWidth = kernelSize * filters
        }
        return layer
    }
}
