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

/// One recurrent layer (SimpleRNN, LSTM or GRU) over time-major sequences.
protocol RecurrentLayer: AnyObject {
    /// I: input width.
    var inputSize: Int { get }
    /// H: units.
    var units: Int { get }
    /// G: columns of the kernel (gates × H).
    var gateWidth: Int { get }
    /// The kernel (I, G) in the flat buffers.
    var kernel: ParameterView { get }
    /// Offset of the input-side bias (G values) in the flat buffers.
    var inputBiasOffset: Int { get }
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

extension RecurrentLayer {
    /// The recurrence from a zero state.
    func forward(weights: UnsafePointer<Float>, batch: Int, steps: Int) {
        forward(weights: weights, batch: batch, steps: steps, carry: false)
    }

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
