// One direction of one recurrent layer: the cell, and how its input reaches it — time-reversed for
// the backward direction of a Bidirectional layer, masked by dropout in training.
//
// Shape letters: B batch, T time steps, I input width (E for the first layer, D = H or 2H above it),
// H units, G = gates × H, c the number of input masks per sample (1, or one per gate).
//
// With input dropout (Keras `dropout`) and c masks per sample, the projection is
//     P[:, block g] = (X ⊙ m_g)·W[:, block g]        blocks of G/c columns,
// so the first layer can no longer project each distinct token of the batch once (a token's
// projection depends on its sample's mask): it projects each sample's distinct tokens instead
// (`EmbeddingLookup.lookupPairs`), still far fewer rows than B·T positions.

import BLAS

final class LayerDirection {
    let cell: RecurrentLayer
    /// Which recurrent layer (0 = the first; part of the masks' key) and direction (0 forward, 1
    /// backward).
    let layer: Int
    let direction: Int
    /// Whether it reads the sequence from its end: a Bidirectional's backward direction, or a layer
    /// with Keras's `go_backwards` (whose outputs then stay in its reading order, as Keras's do).
    let reversed: Bool
    /// (B, c, I): this batch's input masks.
    let inputMasks: MaskSet
    /// h_{t−1}'s masks, handed to the cell while masks are active.
    let recurrentDropout: RecurrentDropout

    /// (T, B, I): the input as this direction reads it, when it is a copy (time-reversed).
    private var input = FloatBuffer(count: 0)
    /// (c, rows, I): the input rows ⊙ each mask, kept for dW (rows: T·B positions, or U pairs).
    private(set) var masked = FloatBuffer(count: 0)
    /// (rows, I): the input gradient of one mask block; (T, B, I): of the whole (reversed) direction.
    private var scratch = FloatBuffer(count: 0)
    private var dInput = FloatBuffer(count: 0)
    /// First layer with input masks: (U, G) the pairs' projections, then their gradient; (U, E) the
    /// pairs' row gradients.
    private var pairTable = FloatBuffer(count: 0)
    private var pairRowGradient = FloatBuffer(count: 0)
    /// (T, B, H) or (B, H): ∂loss/∂(this direction's outputs) in its own step order (bidirectional).
    private var dOutputBuffer = FloatBuffer(count: 0)
    var dOutputs: UnsafeMutablePointer<Float> { dOutputBuffer.pointer }

    /// Keras's rates of the layer (`dropout`, `recurrent_dropout`).
    let dropout: Double
    let recurrentDropoutRate: Double

    /// Whether the input is the embedding's rows (the fused projection), not a dense sequence.
    let readsEmbedding: Bool

    init(cell: RecurrentLayer, layer: Int, direction: Int, spec: RecurrentSpec, readsEmbedding: Bool) {
        self.cell = cell
        self.layer = layer
        self.direction = direction
        reversed = direction == 1 || spec.goBackwards
        self.readsEmbedding = readsEmbedding
        dropout = spec.dropout
        recurrentDropoutRate = spec.recurrentDropout
        inputMasks = MaskSet(count: spec.inputMaskCount, width: cell.inputSize)
        // h_{t−1} masks: one per gate (LSTM 4, GRU 3), SimpleRNN one.
        recurrentDropout = RecurrentDropout(masks: MaskSet(count: spec.kind.gateCount, width: cell.units))
    }

    /// Grows the buffers for (B, T); `inputMasks` / `recurrentMasks`: whether those masks are in use.
    func reserve(batch: Int, steps: Int, inputMasks: Bool, recurrentMasks: Bool, bidirectional: Bool) {
        cell.reserve(batch: batch, steps: steps)
        let sequence = steps * batch * cell.inputSize
        if reversed && !readsEmbedding {   // the embedding's rows are reversed by its lookup
            input = input.ensuring(sequence)
            dInput = dInput.ensuring(sequence)
        }
        if inputMasks {
            masked = masked.ensuring(self.inputMasks.count * sequence)
            scratch = scratch.ensuring(sequence)
            if readsEmbedding {
                pairTable = pairTable.ensuring(steps * batch * cell.gateWidth)
                pairRowGradient = pairRowGradient.ensuring(sequence)
            }
        }
        if recurrentMasks { recurrentDropout.reserve(batch: batch, steps: steps) }
        if bidirectional { dOutputBuffer = dOutputBuffer.ensuring(steps * batch * cell.units) }
    }

    /// Draws this batch's masks (those whose rate is positive).
    func drawMasks(key: DropoutKey) {
        if dropout > 0 {
            inputMasks.draw(key: key, rate: dropout, layer: layer, direction: direction, site: .input)
        }
        if recurrentDropoutRate > 0 {
            recurrentDropout.masks.draw(key: key, rate: recurrentDropoutRate, layer: layer, direction: direction,
                                        site: .recurrent)
        }
    }

    /// Turns the drawn masks on or off for the following passes: h_{t−1}'s reach the cell here,
    /// the input's are applied by the projections while `masks` is passed true.
    func setMasks(active: Bool) {
        cell.recurrentDropout = active && recurrentDropoutRate > 0 ? recurrentDropout : nil
    }

    // MARK: Forward

    /// The first layer's projection after `embedding.lookup`: fused (distinct tokens projected once)
    /// without masks, else each sample's distinct tokens, masked.
    func forwardFromEmbedding(_ embedding: EmbeddingLookup, tokens: UnsafeBufferPointer<Int32>, batch: Int, steps: Int,
                              weights w: UnsafePointer<Float>, masks: Bool) {
        if masks {
            // Both directions share the pairs (a sample's tokens are the same read either way).
            if direction == 0 { embedding.lookupPairs(tokens: tokens, batch: batch, steps: steps, weights: w) }
            let samples = embedding.pairSamples
            projectMasked(embedding.pairRows, rows: embedding.pairCount, sample: { Int(samples[$0]) },
                          into: pairTable.pointer, weights: w)
            embedding.projectPairs(pairTable.pointer, batch: batch, steps: steps, layer: cell, reversed: reversed)
        } else {
            cell.projectionRows = embedding.project(batch: batch, steps: steps, weights: w, layer: cell, reversed: reversed)
        }
    }

    /// A higher layer's projection from the layer below's output sequence x (T, B, I).
    func forwardFromSequence(_ x: UnsafePointer<Float>, batch: Int, steps: Int, weights w: UnsafePointer<Float>,
                             masks: Bool) {
        let source = readable(x, batch: batch, steps: steps)
        if masks {
            projectMasked(source, rows: steps * batch, sample: { $0 % batch }, into: cell.projection, weights: w)
        } else {
            cell.projectForward(input: source, weights: w, positions: batch * steps)
        }
    }

    /// x itself for the forward direction; for the backward one, x reversed in time (into `input`).
    private func readable(_ x: UnsafePointer<Float>, batch: Int, steps: Int) -> UnsafePointer<Float> {
        guard reversed else { return x }
        reverseSteps(x, into: input.pointer, batch: batch, steps: steps, width: cell.inputSize, add: false)
        return UnsafePointer(input.pointer)
    }

    /// out[:, block g] = (x ⊙ m_g)·W[:, block g] for `rows` rows of x (rows × I), row r belonging to
    /// sample `sample(r)`; each x ⊙ m_g stays in `masked` for dW.
    private func projectMasked(_ x: UnsafePointer<Float>, rows: Int, sample: (Int) -> Int,
                               into out: UnsafeMutablePointer<Float>, weights w: UnsafePointer<Float>) {
        let I = cell.inputSize, G = cell.gateWidth, c = inputMasks.count, width = G / c
        for g in 0..<c {
            let xg = masked.pointer + g * rows * I
            applyMask(x, mask: g, rows: rows, sample: sample, into: xg, add: false)
            BLAS.sgemm(m: rows, n: width, k: I, a: xg, lda: I, b: w + cell.kernel.offset + g * width, ldb: G,
                       beta: 0, c: out + g * width, ldc: G)
        }
    }

    /// out[r, :] (=|+=) x[r, :] ⊙ m_g[sample(r), :] for each of `rows` rows.
    private func applyMask(_ x: UnsafePointer<Float>, mask g: Int, rows: Int, sample: (Int) -> Int,
                           into out: UnsafeMutablePointer<Float>, add: Bool) {
        let I = cell.inputSize, c = inputMasks.count, m = inputMasks.pointer
        for r in 0..<rows {
            let xr = x + r * I, o = out + r * I, mb = m + (sample(r) * c + g) * I
            if add {
                for i in 0..<I { o[i] += xr[i] * mb[i] }
            } else {
                for i in 0..<I { o[i] = xr[i] * mb[i] }
            }
        }
    }

    // MARK: Backward (after `cell.backward`)

    /// The first layer: dW, db and the embedding rows' gradient.
    func backwardToEmbedding(_ embedding: EmbeddingLookup, batch: Int, steps: Int, weights w: UnsafePointer<Float>,
                             gradients dw: UnsafeMutablePointer<Float>, masks: Bool) {
        if masks {
            let samples = embedding.pairSamples, rows = embedding.pairCount
            embedding.sumPairGradients(cell.projectionGradient, into: pairTable.pointer, batch: batch, steps: steps,
                                       gateWidth: cell.gateWidth, reversed: reversed)
            projectMaskedBackward(UnsafePointer(pairTable.pointer), rows: rows, sample: { Int(samples[$0]) }, weights: w,
                                  gradients: dw, dInput: pairRowGradient.pointer)
            embedding.backwardPairs(pairRowGradient.pointer, gradients: dw)
        } else {
            precondition(cell.tokenInput != nil, "backwardToEmbedding: no beginBackwardToEmbedding before the cell's backward")
            embedding.finishBackward(weights: w, gradients: dw, layer: cell)
            cell.tokenInput = nil
        }
    }

    /// Before the cell's BPTT over the embedding's projection without input masks: BPTT sums each
    /// distinct token's dP rows into the lookup's table step by step (`RecurrentLayer.backpropagateInput`).
    /// The directions of a layer share that table, so each one's `backwardToEmbedding` must follow
    /// its own BPTT before the next direction begins.
    /// `observer`: told after each step which rows are final (a forward-reading single direction only).
    func beginBackwardToEmbedding(_ embedding: EmbeddingLookup, batch: Int, steps: Int, weights w: UnsafePointer<Float>,
                                  observer: BackwardObserver?) {
        precondition(observer == nil || !reversed, "beginBackwardToEmbedding: rows are reported in forward step order only")
        cell.tokenInput = embedding.beginBackward(batch: batch, steps: steps, weights: w, layer: cell, reversed: reversed,
                                                  observer: observer)
    }

    /// Before the cell's BPTT over a dense input without input masks: the cell forms dW and ∂loss/∂x
    /// step by step (`RecurrentLayer.backpropagateInput`), into `dX` (added to when `accumulate`) or,
    /// for the backward direction, into its own reversed copy that `backwardToSequence` flips back.
    func beginBackwardToSequence(_ x: UnsafePointer<Float>, dInput dX: UnsafeMutablePointer<Float>, accumulate: Bool) {
        // `input` still holds the reversed copy the forward made.
        cell.sequenceInput = SequenceInput(x: reversed ? UnsafePointer(input.pointer) : x, dX: reversed ? dInput.pointer : dX,
                                           accumulate: accumulate && !reversed, bias: ColumnSums(count: cell.gateWidth))
    }

    /// A higher layer, after the cell's BPTT: dW, db, and ∂loss/∂x (T, B, I) in time order into `dX`
    /// (added when `accumulate`) — without input masks BPTT formed them, and only the bias's sums and
    /// the backward direction's flip are left. `x` is the same layer-below sequence the forward read.
    func backwardToSequence(_ x: UnsafePointer<Float>, dInput dX: UnsafeMutablePointer<Float>, accumulate: Bool,
                            batch: Int, steps: Int, weights w: UnsafePointer<Float>,
                            gradients dw: UnsafeMutablePointer<Float>, masks: Bool) {
        // The backward direction works in its own (reversed) step order, then flips its result back.
        let target = reversed ? dInput.pointer : dX
        if masks {
            projectMaskedBackward(cell.projectionGradient, rows: steps * batch, sample: { $0 % batch }, weights: w,
                                  gradients: dw, dInput: target, accumulate: accumulate && !reversed)
        } else {
            // BPTT formed dW, ∂loss/∂x and the bias's Σ dP (`beginBackwardToSequence`).
            guard let input = cell.sequenceInput else { preconditionFailure("backwardToSequence: no beginBackwardToSequence before the cell's backward") }
            input.bias.add(into: cell.tensors.biasGradient(dw))
            cell.sequenceInput = nil
        }
        if reversed {
            reverseSteps(UnsafePointer(dInput.pointer), into: dX, batch: batch, steps: steps, width: cell.inputSize,
                         add: accumulate)
        }
    }

    /// dW[:, block g] += (x ⊙ m_g)ᵀ·dP[:, block g], db += Σ dP, dX (=|+=) Σ_g (dP_g·W_gᵀ) ⊙ m_g, over the
    /// `rows` rows of the last `projectMasked`.
    private func projectMaskedBackward(_ dP: UnsafePointer<Float>, rows: Int, sample: (Int) -> Int,
                                       weights w: UnsafePointer<Float>, gradients dw: UnsafeMutablePointer<Float>,
                                       dInput dX: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        let I = cell.inputSize, G = cell.gateWidth, c = inputMasks.count, width = G / c
        for g in 0..<c {
            BLAS.sgemm(transA: true, m: I, n: width, k: rows, a: masked.pointer + g * rows * I, lda: I,
                       b: dP + g * width, ldb: G, beta: 1, c: dw + cell.kernel.offset + g * width, ldc: G)
        }
        addColumnSums(dP, rows: rows, cols: G, into: cell.tensors.biasGradient(dw))
        for g in 0..<c {
            BLAS.sgemm(transB: true, m: rows, n: I, k: width, a: dP + g * width, lda: G,
                       b: w + cell.kernel.offset + g * width, ldb: G, beta: 0, c: scratch.pointer, ldc: I)
            applyMask(scratch.pointer, mask: g, rows: rows, sample: sample, into: dX, add: accumulate || g > 0)
        }
    }
}

/// out[t] (=|+=) x[T−1−t] for each step's (B, width) block.
func reverseSteps(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, batch: Int, steps: Int, width: Int,
                  add: Bool) {
    let block = batch * width
    for t in 0..<steps {
        let source = x + (steps - 1 - t) * block, target = out + t * block
        if add {
            addVector(source, into: target, count: block)
        } else {
            target.update(from: source, count: block)
        }
    }
}
