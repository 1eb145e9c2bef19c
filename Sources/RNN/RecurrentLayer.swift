// What the model needs from every recurrent layer kind, and the input projection shared by all.
//
// Shape letters: B batch, T time steps, I input width (E for the first layer, H above it), H units,
// G = gates × H (H SimpleRNN, 4H LSTM, 3H GRU).
//
// Layout: sequences are time-major, (T, B, ·), so step t is one contiguous (B, ·) block that BLAS
// multiplies in place. A layer's forward is split in two:
//   1. the input projection P = X·W for all T·B positions at once — one big GEMM (or, for the first
//      layer, an embedding-table lookup: see `EmbeddingLookup`);
//   2. the recurrence, which adds h_{t−1}·U step by step and applies the gates (the input bias is
//      added inside the gate loop, where it is free).
// Backward mirrors it: the recurrence leaves dP = ∂loss/∂(x·W + b) for every position, and the
// projection turns that into dW = Xᵀ·dP, db = Σ dP and dX = dP·Wᵀ with big GEMMs.

import BLAS

/// One recurrent layer (SimpleRNN, LSTM or GRU) over time-major sequences. Each cell keeps its own
/// gate loops (forward and backward) in its own file; what they share is below.
protocol RecurrentLayer: AnyObject {
    /// I: input width.
    var inputSize: Int { get }
    /// H: units.
    var units: Int { get }
    /// W (I, G), U (H, G) and the bias, as views into the flat buffers.
    var tensors: RecurrentTensors { get }
    /// (T, B, G): the projection writes X·W here before `forward`.
    var projection: UnsafeMutablePointer<Float> { get }
    /// (T, B, H): the hidden states h_0 … h_{T−1} after `forward`.
    var outputs: UnsafeMutablePointer<Float> { get }
    /// (T, B, G): ∂loss/∂(X·W + b) after `backward`.
    var projectionGradient: UnsafeMutablePointer<Float> { get }

    /// Makes every buffer large enough for (B, T); allocates only when they grow.
    func reserve(batch: Int, steps: Int)
    /// Runs the recurrence over `projection`, filling the cache: from h_{−1} = 0 (and c_{−1} = 0),
    /// or with `carry` from the state `keepFinalState` set aside (evaluation in blocks of steps).
    func forward(weights: UnsafePointer<Float>, batch: Int, steps: Int, carry: Bool)
    /// Copies h_{T−1} (and c_{T−1}) of the last forward aside, for a following `forward(carry: true)`.
    func keepFinalState(batch: Int, steps: Int)
    /// BPTT: adds the recurrent weights' gradients into `gradients` and leaves `projectionGradient`.
    /// - Parameters:
    ///   - dOutputs: ∂loss/∂h — (T, B, H) if `sequence`, else (B, H) for the last step only.
    func backward(weights: UnsafePointer<Float>, gradients: UnsafeMutablePointer<Float>,
                  dOutputs: UnsafePointer<Float>, sequence: Bool, batch: Int, steps: Int)
}

/// A recurrent layer's three Keras tensors as views into the flat buffers: kernel W (I, G),
/// recurrent_kernel U (H, G), bias (G), or (2, G) for a GRU's input and recurrent rows.
struct RecurrentTensors {
    let kernel: ParameterView
    let recurrentKernel: ParameterView
    let bias: ParameterView

    /// Checks the shapes a `cell` of `gates` gates needs for input width I and H units.
    init(_ cell: String, inputSize: Int, units: Int, gates: Int, biasRows: Int = 1,
         kernel: ParameterView, recurrentKernel: ParameterView, bias: ParameterView) {
        let g = gates * units
        precondition(kernel.shape == [inputSize, g] && recurrentKernel.shape == [units, g]
                     && bias.shape == (biasRows == 1 ? [g] : [biasRows, g]),
                     "\(cell): weight shapes do not match I=\(inputSize) H=\(units)")
        self.kernel = kernel
        self.recurrentKernel = recurrentKernel
        self.bias = bias
    }
}

/// A layer's named Float buffers: one per case of `Slot`, grown (never shrunk, zeroed when new) to
/// what a (B, T) needs and reused across batches.
struct Workspace<Slot: CaseIterable & RawRepresentable> where Slot.RawValue == Int {
    private var buffers = Slot.allCases.map { _ in FloatBuffer(count: 0) }

    /// Makes each slot hold at least `size(slot)` values.
    mutating func reserve(_ size: (Slot) -> Int) {
        for slot in Slot.allCases { buffers[slot.rawValue] = buffers[slot.rawValue].ensuring(size(slot)) }
    }

    subscript(slot: Slot) -> UnsafeMutablePointer<Float> { buffers[slot.rawValue].pointer }
}

/// The state one block of steps hands to the next in blocked evaluation: h_{T−1}, and c_{T−1} for
/// an LSTM, each (B, H).
struct CarriedState {
    private var buffers: [FloatBuffer]

    init(tensors: Int) { buffers = (0..<tensors).map { _ in FloatBuffer(count: 0) } }

    /// Copies the last step of each (T, B, H) sequence aside, in order.
    mutating func keep(lastStepOf sequences: [UnsafeMutablePointer<Float>], batch: Int, steps: Int, units: Int) {
        let BH = batch * units
        for (i, sequence) in sequences.enumerated() {
            buffers[i] = buffers[i].ensuring(BH)
            buffers[i].pointer.update(from: sequence + (steps - 1) * BH, count: BH)
        }
    }

    subscript(i: Int) -> UnsafeMutablePointer<Float> { buffers[i].pointer }
}

extension RecurrentLayer {
    /// The kernel (I, G) in the flat buffers.
    var kernel: ParameterView { tensors.kernel }
    /// G: columns of the kernel (gates × H).
    var gateWidth: Int { tensors.kernel.shape[1] }
    /// Offset of the input-side bias (G values) in the flat buffers.
    var inputBiasOffset: Int { tensors.bias.offset }

    /// The recurrence from a zero state.
    func forward(weights: UnsafePointer<Float>, batch: Int, steps: Int) {
        forward(weights: weights, batch: batch, steps: steps, carry: false)
    }

    // MARK: BPTT plumbing every cell shares (its gate loop stays its own)

    /// Starts BPTT's running ∂loss/∂h (B, H) at the last step: the head's gradient, or the last
    /// step of the layer above's sequence gradient.
    func seedHiddenGradient(_ dh: UnsafeMutablePointer<Float>, dOutputs: UnsafePointer<Float>, sequence: Bool,
                            batch: Int, steps: Int) {
        let BH = batch * units
        dh.update(from: sequence ? dOutputs + (steps - 1) * BH : dOutputs, count: BH)
    }

    /// dh_{t−1} (B, H) from step t's recurrent pre-activation gradient dA_t (B, G): `dh = dA_t·Uᵀ`,
    /// or `dh += dA_t·Uᵀ` when `accumulate` (dh already holds the other paths into h_{t−1}).
    func backpropagateThroughRecurrentKernel(_ dA: UnsafePointer<Float>, into dh: UnsafeMutablePointer<Float>,
                                             accumulate: Bool, batch: Int, weights w: UnsafePointer<Float>) {
        // (B × G)·(G × H)
        BLAS.sgemm(transB: true, m: batch, n: units, k: gateWidth, a: dA, lda: gateWidth,
                   b: w + tensors.recurrentKernel.offset, ldb: gateWidth,
                   beta: accumulate ? 1 : 0, c: dh, ldc: units)
    }

    /// dh_{t−1} = (the layer above's ∂/∂h_{t−1}, when it reads the whole sequence) + dA_t·Uᵀ, for
    /// cells whose h_{t−1} reaches step t only through U (SimpleRNN, LSTM).
    func hiddenGradient(before t: Int, from dA: UnsafePointer<Float>, into dh: UnsafeMutablePointer<Float>,
                        dOutputs: UnsafePointer<Float>, sequence: Bool, batch: Int, weights w: UnsafePointer<Float>) {
        if sequence { dh.update(from: dOutputs + (t - 1) * batch * units, count: batch * units) }
        backpropagateThroughRecurrentKernel(dA, into: dh, accumulate: sequence, batch: batch, weights: w)
    }

    /// dU += Σ_{t≥1} h_{t−1}ᵀ·dA_t over all steps in one GEMM, dA (T, B, G): (H × (T−1)B)·((T−1)B × G).
    /// h_{−1}·U contributes nothing (h_{−1} = 0).
    func accumulateRecurrentKernelGradient(_ dA: UnsafePointer<Float>, into dw: UnsafeMutablePointer<Float>,
                                           batch: Int, steps: Int) {
        guard steps > 1 else { return }
        BLAS.sgemm(transA: true, m: units, n: gateWidth, k: (steps - 1) * batch,
                   a: outputs, lda: units, b: dA + batch * gateWidth, ldb: gateWidth,
                   beta: 1, c: dw + tensors.recurrentKernel.offset, ldc: gateWidth)
    }

    // MARK: The input projection

    /// Forward of the projection from a dense input sequence X (T, B, I): P = X·W.
    func projectForward(input x: UnsafePointer<Float>, weights w: UnsafePointer<Float>, positions: Int) {
        BLAS.sgemm(m: positions, n: gateWidth, k: inputSize,
                   a: x, lda: inputSize, b: w + kernel.offset, ldb: gateWidth,
                   beta: 0, c: projection, ldc: gateWidth)
    }

    /// Backward of the projection from a dense input: dW += Xᵀ·dP, db += Σ dP, and, if `dInput` is
    /// given, dX = dP·Wᵀ (overwritten, (T, B, I)).
    func projectBackward(input x: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?,
                         weights w: UnsafePointer<Float>, gradients dw: UnsafeMutablePointer<Float>,
                         positions: Int) {
        let dP = UnsafePointer(projectionGradient)
        BLAS.sgemm(transA: true, m: inputSize, n: gateWidth, k: positions,
                   a: x, lda: inputSize, b: dP, ldb: gateWidth,
                   beta: 1, c: dw + kernel.offset, ldc: gateWidth)
        addColumnSums(dP, rows: positions, cols: gateWidth, into: dw + inputBiasOffset)
        if let dX = dInput {
            BLAS.sgemm(transB: true, m: positions, n: inputSize, k: gateWidth,
                       a: dP, lda: gateWidth, b: w + kernel.offset, ldb: gateWidth,
                       beta: 0, c: dX, ldc: inputSize)
        }
    }
}

/// Builds the layer of `kind` whose weights are the three views `kernel`, `recurrentKernel`, `bias`.
func makeRecurrentLayer(kind: ModelConfig.Kind, inputSize: Int, units: Int,
                        kernel: ParameterView, recurrentKernel: ParameterView,
                        bias: ParameterView) -> RecurrentLayer {
    switch kind {
    case .simpleRNN:
        return SimpleRNNLayer(inputSize: inputSize, units: units, kernel: kernel,
                              recurrentKernel: recurrentKernel, bias: bias)
    case .lstm:
        return LSTMLayer(inputSize: inputSize, units: units, kernel: kernel,
                         recurrentKernel: recurrentKernel, bias: bias)
    case .gru:
        return GRULayer(inputSize: inputSize, units: units, kernel: kernel,
                        recurrentKernel: recurrentKernel, bias: bias)
    }
}
