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
// Backward mirrors it: each BPTT step forms dP_t = ∂loss/∂(x_t·W + b) and, while it is in cache,
// its share of the input's backward (`backpropagateInput`: the embedding's per-token sums, or
// dW += x_tᵀ·dP_t, db += Σ dP_t and dX_t = dP_t·Wᵀ). Only with input dropout, whose masked products
// run over the whole sequence, is dP kept for every position (`keepsProjectionGradient`).

import BLAS
import CGates

/// Whether the gate loops in C (Sources/CGates) can run here: a CPU with AVX2 and FMA.
let gateLoopsSupported = rd_gates_supported() != 0

/// One recurrent layer (SimpleRNN, LSTM or GRU) over time-major sequences. Each cell keeps its own
/// gate loops (forward and backward) in its own file; what they share is below.
protocol RecurrentLayer: AnyObject {
    /// W (I, G), U (H, G) and the bias, as views into the flat buffers, with I and H.
    var tensors: RecurrentTensors { get }
    /// (T, B, G): the projection writes X·W here before `forward`.
    var projection: UnsafeMutablePointer<Float> { get }
    /// (T, B, H): the hidden states h_0 … h_{T−1} after `forward`.
    var outputs: UnsafeMutablePointer<Float> { get }
    /// (T, B, G): ∂loss/∂(X·W + b) after `backward`.
    var projectionGradient: UnsafeMutablePointer<Float> { get }
    /// The masks on h_{t−1} for the current training batch, or nil (no recurrent dropout, evaluation).
    var recurrentDropout: RecurrentDropout? { get set }
    /// The first layer without input dropout: where each position's x·W row is read in place (the
    /// batch's distinct-token table in training, the vocabulary's in evaluation); `projection` is then
    /// not filled, and `forward` adds the row itself. Set before each `forward`, nil otherwise.
    var projectionRows: ProjectionRows? { get set }
    /// A dense input sequence without input dropout, whose gradients BPTT forms step by step
    /// (`backpropagateInput`) while each step's dP_t is in cache. Set before `backward`, nil otherwise.
    var sequenceInput: SequenceInput? { get set }
    /// The first layer over the embedding's fused projection without input dropout: BPTT adds each
    /// step's dP_t rows into their tokens' rows of the batch's table (`backpropagateInput`) while they
    /// are in cache. Set before `backward`, nil otherwise.
    var tokenInput: TokenRowGradients? { get set }
    /// No backward follows the next `forward` (evaluation): it may keep only the states (h, and an
    /// LSTM's c), not what BPTT reads. Its results are the same bits either way.
    var forwardOnly: Bool { get set }
    /// The gate loops in C run (`gateLoopsSupported`, and the model's `Model.gateLoopsInC`): the
    /// forward-only loops of the LSTM and the GRU, and the SimpleRNN's forward. The same bits either way.
    var gatesInC: Bool { get set }

    /// Makes every buffer large enough for (B, T); allocates only when they grow.
    func reserve(batch: Int, steps: Int)
    /// Runs the recurrence over `projection`, filling the cache: from h_{−1} = 0 (and c_{−1} = 0),
    /// or with `carry` from the state `keepFinalState` set aside (evaluation in blocks of steps).
    func forward(weights: UnsafePointer<Float>, batch: Int, steps: Int, carry: Bool)
    /// Copies h_{T−1} (and c_{T−1}) of the last forward aside, for a following `forward(carry: true)`.
    func keepFinalState(batch: Int, steps: Int)
    /// Floats of one row's kept state: H, or 2H with an LSTM's c.
    var carriedStateWidth: Int { get }
    /// Row 0 of each kept state tensor, one after the other (`carriedStateWidth` floats).
    func copyCarriedRow(into p: UnsafeMutablePointer<Float>)
    /// Makes the row `p` (as `copyCarriedRow` writes it) the kept state of rows 0..<batch.
    func fillCarriedState(from p: UnsafePointer<Float>, batch: Int)
    /// BPTT: adds the recurrent weights' gradients into `gradients` and leaves `projectionGradient`
    /// when `keepsProjectionGradient`.
    /// - Parameters:
    ///   - dOutputs: ∂loss/∂h — (T, B, H) if `sequence`, else (B, H) for the last step only.
    func backward(weights: UnsafePointer<Float>, gradients: UnsafeMutablePointer<Float>,
                  dOutputs: UnsafePointer<Float>, sequence: Bool, batch: Int, steps: Int)
}

/// The first layer's input projection, read in place instead of gathered: position (t, b) of the
/// pass is row `index` of a projection table (G wide), index being entry `b·sampleStride + s·stepStride`
/// of `indices`, s = `start + t` (or `totalSteps − 1 − (start + t)` when `reversed`). Training reads
/// the batch's distinct-token table through the lookup's time-major slots; evaluation reads the
/// whole vocabulary's table through the batch-major token ids. A cell adds that row to h_{t−1}·U,
/// which it computes with beta 0: fl(h·U + x·W) is the sum the beta-1 product gave over a gathered
/// x·W, so the bits are the same, and the gather (a tenth of evaluation) is gone.
struct ProjectionRows {
    let table: UnsafePointer<Float>
    /// Row indices into `table`, each checked to be in it.
    let indices: UnsafePointer<Int32>
    let sampleStride: Int
    let stepStride: Int
    let totalSteps: Int
    let start: Int
    let reversed: Bool
    /// G.
    let width: Int

    @inline(__always)
    func row(step t: Int, sample b: Int) -> UnsafePointer<Float> {
        table + Int(indices(step: t)[b * sampleStride]) * width
    }

    /// Step t's index list: sample b's row index at `[b · sampleStride]`.
    @inline(__always)
    func indices(step t: Int) -> UnsafePointer<Int32> {
        let s = start + t
        return indices + (reversed ? totalSteps - 1 - s : s) * stepStride
    }
}

/// Where BPTT sums the first layer's projection gradient per distinct token: position (t, b) of the
/// cell's own step order adds its dP row into the row of the lookup's (N × G) table that the forward
/// read its projection from (`rows`; `EmbeddingLookup.beginBackward`).
struct TokenRowGradients {
    let rows: ProjectionRows
    /// Called after each step's rows are added (the exchange behind backward, `BackwardObserver`).
    let afterStep: ((Int) -> Void)?

    /// Adds step t's dP_t (B, G) into its tokens' rows.
    @inline(__always)
    func add(step t: Int, _ dP: UnsafePointer<Float>, batch: Int) {
        let G = rows.width
        for b in 0..<batch { addVector(dP + b * G, into: UnsafeMutablePointer(mutating: rows.row(step: t, sample: b)), count: G) }
        afterStep?(t)
    }
}

/// The input sequence X (T, B, I) of a layer's backward, in the cell's own step order, where
/// ∂loss/∂X goes (overwritten, or added to when `accumulate`), and the bias's Σ dP so far.
struct SequenceInput {
    let x: UnsafePointer<Float>
    let dX: UnsafeMutablePointer<Float>
    let accumulate: Bool
    /// G: Σ_t Σ_b dP_t, which the caller adds into the bias's gradient after BPTT.
    let bias: ColumnSums
}

/// A recurrent layer's three Keras tensors as views into the flat buffers: kernel W (I, G),
/// recurrent_kernel U (H, G), bias (G), or (2, G) for a GRU's input and recurrent rows — or no bias
/// (Keras `use_bias=False`): the cell then reads zeros and its bias gradient goes to a discarded sink.
struct RecurrentTensors {
    let kernel: ParameterView
    let recurrentKernel: ParameterView
    let biasView: ParameterView?
    /// Without a bias: (rows × G) zeros to read and a scratch to write the unused gradient into.
    private let zeros: FloatBuffer
    private let sink: FloatBuffer
    /// Uᵀ (G, H), refilled from the weights at the start of each BPTT (`transposeRecurrentKernel`).
    let recurrentKernelTransposed: FloatBuffer
    /// Wᵀ (G, I), refilled at the start of a BPTT over a `SequenceInput` or the embedding's rows
    /// (`EmbeddingLookup.beginBackward`).
    let kernelTransposed: FloatBuffer
    /// I and H.
    let inputSize: Int
    let units: Int

    /// Checks the shapes a `cell` of `gates` gates needs for input width I and H units.
    init(_ cell: String, inputSize: Int, units: Int, gates: Int, biasRows: Int = 1,
         kernel: ParameterView, recurrentKernel: ParameterView, bias: ParameterView?) {
        let g = gates * units
        precondition(kernel.shape == [inputSize, g] && recurrentKernel.shape == [units, g]
                     && (bias.map { $0.shape == (biasRows == 1 ? [g] : [biasRows, g]) } ?? true),
                     "\(cell): weight shapes do not match I=\(inputSize) H=\(units)")
        self.kernel = kernel
        self.recurrentKernel = recurrentKernel
        biasView = bias
        zeros = FloatBuffer(count: bias == nil ? biasRows * g : 0)
        sink = FloatBuffer(count: bias == nil ? biasRows * g : 0)
        recurrentKernelTransposed = FloatBuffer(count: units * g)
        kernelTransposed = FloatBuffer(count: inputSize * g)
        self.inputSize = inputSize
        self.units = units
    }

    /// The bias in the weights `w` (its rows one after the other), or zeros.
    func bias(_ w: UnsafePointer<Float>) -> UnsafePointer<Float> {
        biasView.map { w + $0.offset } ?? UnsafePointer(zeros.pointer)
    }

    /// Copies U (H, G) of the weights `w` into `recurrentKernelTransposed` as Uᵀ (G, H).
    func transposeRecurrentKernel(_ w: UnsafePointer<Float>) {
        transpose(w + recurrentKernel.offset, rows: units, into: recurrentKernelTransposed.pointer)
    }

    /// Copies W (I, G) of the weights `w` into `kernelTransposed` as Wᵀ (G, I).
    func transposeKernel(_ w: UnsafePointer<Float>) {
        transpose(w + kernel.offset, rows: inputSize, into: kernelTransposed.pointer)
    }

    private func transpose(_ m: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>) {
        let G = kernel.shape[1]
        for g in 0..<G {
            for j in 0..<rows { out[g * rows + j] = m[j * G + g] }
        }
    }

    /// Where the bias gradient is added in `dw`, or the discarded sink.
    func biasGradient(_ dw: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        biasView.map { dw + $0.offset } ?? sink.pointer
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

    /// Row 0 of each kept (·, H) state, one after the other.
    func copyFirstRows(into p: UnsafeMutablePointer<Float>, units: Int) {
        for (i, buffer) in buffers.enumerated() { (p + i * units).update(from: buffer.pointer, count: units) }
    }

    /// Makes the rows at `p` (as `copyFirstRows` writes them) rows 0..<batch of each kept state.
    mutating func fill(from p: UnsafePointer<Float>, batch: Int, units: Int) {
        for i in buffers.indices {
            buffers[i] = buffers[i].ensuring(batch * units)
            for b in 0..<batch { (buffers[i].pointer + b * units).update(from: p + i * units, count: units) }
        }
    }

    /// The number of state tensors kept.
    var count: Int { buffers.count }

    subscript(i: Int) -> UnsafeMutablePointer<Float> { buffers[i].pointer }
}

extension RecurrentLayer {
    /// I: input width.
    var inputSize: Int { tensors.inputSize }
    /// H: units.
    var units: Int { tensors.units }
    /// The kernel (I, G) in the flat buffers.
    var kernel: ParameterView { tensors.kernel }
    /// G: columns of the kernel (gates × H).
    var gateWidth: Int { tensors.kernel.shape[1] }

    /// The recurrence from a zero state.
    func forward(weights: UnsafePointer<Float>, batch: Int, steps: Int) {
        forward(weights: weights, batch: batch, steps: steps, carry: false)
    }

    // MARK: BPTT plumbing every cell shares (its gate loop stays its own)

    /// Whether BPTT must leave the whole (T, B, G) `projectionGradient`: only when the input's
    /// backward is not formed step by step (`tokenInput`, `sequenceInput`), i.e. with input dropout.
    /// Otherwise each step's dP_t may go to a (B, G) scratch, and the sequence's stores are saved.
    var keepsProjectionGradient: Bool { tokenInput == nil && sequenceInput == nil }

    /// Starts BPTT: the running ∂loss/∂h (B, H) at the last step (the head's gradient, or the last
    /// step of the layer above's sequence gradient), Uᵀ for the steps' dh products, and Wᵀ for their
    /// dX products over a `sequenceInput`.
    func seedHiddenGradient(_ dh: UnsafeMutablePointer<Float>, dOutputs: UnsafePointer<Float>, sequence: Bool,
                            batch: Int, steps: Int, weights: UnsafePointer<Float>) {
        let BH = batch * units
        tensors.transposeRecurrentKernel(weights)
        if sequenceInput != nil { tensors.transposeKernel(weights) }
        dh.update(from: sequence ? dOutputs + (steps - 1) * BH : dOutputs, count: BH)
    }

    /// Columns per h_{t−1} mask: G with one mask, H with one per gate.
    private var maskBlockWidth: Int { gateWidth / (recurrentDropout?.masks.count ?? 1) }

    /// Step t's recurrent term: out (B, G) = beta·out + h_{t−1}·U, over the gate blocks `blocks` (of
    /// width H; all when nil). One GEMM; with recurrent dropout one GEMM per gate on h_{t−1} ⊙ m_g,
    /// whose copies stay in `recurrentDropout.masked` for BPTT.
    func addRecurrentProduct(step t: Int, hPrev: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                             beta: Float, batch: Int, weights w: UnsafePointer<Float>, blocks: Range<Int>? = nil) {
        let H = units, G = gateWidth, U = w + tensors.recurrentKernel.offset
        guard let rd = recurrentDropout else {
            let columns = blocks.map { ($0.lowerBound * H)..<($0.upperBound * H) } ?? 0..<G
            // (B × H)·(H × columns)
            BLAS.sgemm(m: batch, n: columns.count, k: H, a: hPrev, lda: H, b: U + columns.lowerBound, ldb: G,
                       beta: beta, c: out + columns.lowerBound, ldc: G)
            return
        }
        let count = rd.masks.count, width = maskBlockWidth
        let masked = rd.masked.pointer + t * batch * count * H, m = rd.masks.pointer
        for b in 0..<batch {
            for g in 0..<count {
                let row = (b * count + g) * H
                for j in 0..<H { masked[row + j] = hPrev[b * H + j] * m[row + j] }
            }
        }
        let range = blocks.map { ($0.lowerBound * H / width)..<($0.upperBound * H / width) } ?? 0..<count
        for g in range {
            BLAS.sgemm(m: batch, n: width, k: H, a: masked + g * H, lda: count * H, b: U + g * width, ldb: G,
                       beta: beta, c: out + g * width, ldc: G)
        }
    }

    /// dh_{t−1} (B, H) from step t's recurrent pre-activation gradient dA_t (B, G) over the gate
    /// blocks `blocks` (all when nil): `dh = dA_t·Uᵀ`, or `dh += dA_t·Uᵀ` when `accumulate` (dh already
    /// holds the other paths into h_{t−1}); with recurrent dropout Σ_g (dA_g·U_gᵀ) ⊙ m_g.
    func backpropagateThroughRecurrentKernel(_ dA: UnsafePointer<Float>, into dh: UnsafeMutablePointer<Float>,
                                             accumulate: Bool, batch: Int, weights w: UnsafePointer<Float>,
                                             blocks: Range<Int>? = nil) {
        let H = units, G = gateWidth, U = w + tensors.recurrentKernel.offset
        guard let rd = recurrentDropout else {
            let columns = blocks.map { ($0.lowerBound * H)..<($0.upperBound * H) } ?? 0..<G
            // (B × columns)·(columns × H), Uᵀ's rows read as stored
            BLAS.sgemm(m: batch, n: H, k: columns.count, a: dA + columns.lowerBound, lda: G,
                       b: tensors.recurrentKernelTransposed.pointer + columns.lowerBound * H, ldb: H,
                       beta: accumulate ? 1 : 0, c: dh, ldc: H)
            return
        }
        let count = rd.masks.count, width = maskBlockWidth
        let scratch = rd.scratch.pointer, m = rd.masks.pointer
        let range = blocks.map { ($0.lowerBound * H / width)..<($0.upperBound * H / width) } ?? 0..<count
        var first = !accumulate
        for g in range {
            BLAS.sgemm(transB: true, m: batch, n: H, k: width, a: dA + g * width, lda: G, b: U + g * width, ldb: G,
                       beta: 0, c: scratch, ldc: H)
            for b in 0..<batch {
                let mr = m + (b * count + g) * H, s = scratch + b * H, d = dh + b * H
                if first {
                    for j in 0..<H { d[j] = s[j] * mr[j] }
                } else {
                    for j in 0..<H { d[j] += s[j] * mr[j] }
                }
            }
            first = false
        }
    }

    /// dh_{t−1} = (the layer above's ∂/∂h_{t−1}, when it reads the whole sequence) + dA_t·Uᵀ, for
    /// cells whose h_{t−1} reaches step t only through U (SimpleRNN, LSTM).
    func hiddenGradient(before t: Int, from dA: UnsafePointer<Float>, into dh: UnsafeMutablePointer<Float>,
                        dOutputs: UnsafePointer<Float>, sequence: Bool, batch: Int, weights w: UnsafePointer<Float>) {
        if sequence { dh.update(from: dOutputs + (t - 1) * batch * units, count: batch * units) }
        backpropagateThroughRecurrentKernel(dA, into: dh, accumulate: sequence, batch: batch, weights: w)
    }

    /// dU += h_{t−1}ᵀ·dA_t for step t ≥ 1 (nothing at t = 0: h_{−1} = 0), dA_t (B, G) step t's
    /// recurrent pre-activation gradient, over the gate blocks `blocks` (all when nil): (H × B)·(B × G),
    /// with recurrent dropout one product per gate on the masked copies h_{t−1} ⊙ m_g. Called in BPTT
    /// right after step t's gate loop, while dA_t is still in cache: one product over all T·B rows at
    /// the end re-read the whole (T, B, G) sequence from memory, 61 GFLOP/s against these 110 (the
    /// floor benchmark's shapes, docs/BENCHMARKS.md).
    func accumulateRecurrentKernelGradient(step t: Int, _ dA: UnsafePointer<Float>, into dw: UnsafeMutablePointer<Float>,
                                           batch: Int, blocks: Range<Int>? = nil) {
        guard t > 0 else { return }
        let H = units, G = gateWidth, dU = dw + tensors.recurrentKernel.offset
        guard let rd = recurrentDropout else {
            let columns = blocks.map { ($0.lowerBound * H)..<($0.upperBound * H) } ?? 0..<G
            BLAS.sgemm(transA: true, m: H, n: columns.count, k: batch,
                       a: outputs + (t - 1) * batch * H, lda: H, b: dA + columns.lowerBound, ldb: G,
                       beta: 1, c: dU + columns.lowerBound, ldc: G)
            return
        }
        let count = rd.masks.count, width = maskBlockWidth
        let masked = rd.masked.pointer + t * batch * count * H
        let range = blocks.map { ($0.lowerBound * H / width)..<($0.upperBound * H / width) } ?? 0..<count
        for g in range {
            BLAS.sgemm(transA: true, m: H, n: width, k: batch,
                       a: masked + g * H, lda: count * H, b: dA + g * width, ldb: G,
                       beta: 1, c: dU + g * width, ldc: G)
        }
    }

    /// Step t's share of the input projection's backward, dP_t (B, G) the step's projection gradient:
    /// over the embedding's projection (`tokenInput`), dP_t's rows added into their tokens' rows; over
    /// a `sequenceInput`, dW += x_tᵀ·dP_t, dX_t (=|+=) dP_t·Wᵀ and the bias's column sums; nothing without
    /// either. Called in BPTT once step t's dP_t is final, while it is in cache; the rest (for tokens,
    /// dW, db and dEmb from the table) stays with `LayerDirection`. A pass over the whole (T, B, G) dP after BPTT
    /// re-read it from memory.
    func backpropagateInput(step t: Int, _ dP: UnsafePointer<Float>, batch: Int, gradients dw: UnsafeMutablePointer<Float>) {
        if let tokens = tokenInput { tokens.add(step: t, dP, batch: batch) }
        guard let input = sequenceInput else { return }
        input.bias.add(dP, rows: batch)
        let I = inputSize, G = gateWidth, rows = t * batch * I
        BLAS.sgemm(transA: true, m: I, n: G, k: batch, a: input.x + rows, lda: I, b: dP, ldb: G,
                   beta: 1, c: dw + kernel.offset, ldc: G)
        BLAS.sgemm(m: batch, n: I, k: G, a: dP, lda: G, b: tensors.kernelTransposed.pointer, ldb: I,
                   beta: input.accumulate ? 1 : 0, c: input.dX + rows, ldc: I)
    }

    // MARK: The input projection

    /// Forward of the projection from a dense input sequence X (T, B, I): P = X·W.
    func projectForward(input x: UnsafePointer<Float>, weights w: UnsafePointer<Float>, positions: Int) {
        BLAS.sgemm(m: positions, n: gateWidth, k: inputSize,
                   a: x, lda: inputSize, b: w + kernel.offset, ldb: gateWidth,
                   beta: 0, c: projection, ldc: gateWidth)
    }
}

/// Builds the layer of `kind` whose weights are the three views `kernel`, `recurrentKernel`, `bias`
/// (their shapes checked against I and H).
func makeRecurrentLayer(kind: ModelConfig.Kind, inputSize: Int, units: Int,
                        kernel: ParameterView, recurrentKernel: ParameterView,
                        bias: ParameterView?, resetAfter: Bool = true) -> RecurrentLayer {
    func tensors(_ cell: String, biasRows: Int = 1) -> RecurrentTensors {
        RecurrentTensors(cell, inputSize: inputSize, units: units, gates: kind.gateCount, biasRows: biasRows,
                         kernel: kernel, recurrentKernel: recurrentKernel, bias: bias)
    }
    switch kind {
    case .simpleRNN: return SimpleRNNLayer(tensors: tensors("SimpleRNN"))
    case .lstm: return LSTMLayer(tensors: tensors("LSTM"))
    case .gru: return GRULayer(tensors: tensors("GRU", biasRows: resetAfter ? 2 : 1), resetAfter: resetAfter)
    }
}
