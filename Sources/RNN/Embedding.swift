// Embedding (Keras 3 `Embedding`, weights `embeddings` (V, E), uniform ±0.05), fused with the first
// recurrent layer's input projection.
//
// Shape letters: B batch, T time steps, V vocabulary, E embedding width, G = gates × H, and
// N ≤ min(V, B·T) the number of distinct tokens in the batch.
//
// Why fused: the first layer's projection x_t·W depends only on the token, so instead of
// gathering (B·T × E) embeddings and multiplying (B·T × E)·(E × G), we multiply only the N distinct
// tokens' rows, (N × E)·(E × G), and each position reads its row of that table in place
// (`ProjectionRows`; evaluation reads a table of the whole vocabulary the same way). Backward mirrors it:
// position gradients are summed per distinct token first (by the layer's BPTT, each step's as it is
// formed, in the layer's step order: `TokenRowGradients`), so dW = Embᵀ·dTable is an (N × ·) GEMM and
// dEmb = dTable·Wᵀ N rows (`tokenRowGradient`), and only the N used rows of the embedding gradient are touched.
// With the book's sizes (V = 10,000, B·T = 64,000) this removes most of the layer's big GEMM work.

import BLAS

final class EmbeddingLookup {
    /// V and E.
    let numWords: Int
    let width: Int
    /// The `embeddings` tensor in the flat buffers.
    let embeddings: ParameterView

    /// (B·T) time-major: which distinct-token row each position uses.
    private var slots = Int32Buffer(count: 0)
    /// (N): the distinct tokens in order of first appearance (so results are deterministic).
    private var tokens = Int32Buffer(count: 0)
    /// (V): token → its slot in the last lookup's batch, −1 if absent (reset at the next lookup).
    private var slotOfToken: Int32Buffer
    /// (N): the first step at which each distinct token occurs in the batch.
    private var firstSteps = Int32Buffer(count: 0)
    /// (N): 1 where backward already formed the slot's row of `dRows` for the exchange.
    private var formed = Int32Buffer(count: 0)
    /// (N × E): the used embedding rows; (N × E): their gradient.
    private var rows = FloatBuffer(count: 0)
    private var dRows = FloatBuffer(count: 0)
    /// (N × G): those rows times W in forward; the per-token sum of position gradients in backward.
    private var table = FloatBuffer(count: 0)
    /// N of the last lookup.
    private(set) var distinctCount = 0
    /// The width of the table the layer right after projects these rows into (G of a recurrent layer, k·F of a
    /// Conv1D), set by that layer's spec when it is made; 0 when no layer projects them (the sequence is materialized).
    var projectionWidth = 0
    /// (B, T) batch-major: the token ids of the current pass.
    private(set) var currentTokens = UnsafeBufferPointer<Int32>(start: nil, count: 0)
    /// Whether the layer outputs the sequence of vectors itself (T, B, E) because the next layer is
    /// not a recurrent layer that projects the rows (a Flatten, a Conv1D, a Dropout).
    var materializes = false
    /// Keras `trainable`: when false the embedding's gradient is never formed (it stays zero).
    var trainable = true
    /// (T, B, E): the materialized sequence; (N × E) scratch of its backward.
    private var sequence = FloatBuffer(count: 0)

    // Per-sample distinct tokens ("pairs" (sample, token)), for a first layer whose input is masked
    // per sample (dropout): a token's projection then differs between samples but not within one,
    // so each sample projects its own distinct tokens once (U = Σ_b N_b rows instead of B·T).
    /// (B·T) time-major: which pair each position uses.
    private var pairSlots = Int32Buffer(count: 0)
    /// (U): the token and the sample of each pair, samples in order, tokens in order of first appearance.
    private var pairTokens = Int32Buffer(count: 0)
    private var pairSampleBuffer = Int32Buffer(count: 0)
    /// (U × E): the pairs' embedding rows.
    private var pairRowBuffer = FloatBuffer(count: 0)
    /// (V): the pair of a token in the current sample, valid when `stampOfToken` is that sample + 1.
    private var pairOfToken: Int32Buffer
    private var stampOfToken: Int32Buffer
    /// U of the last `lookupPairs`.
    private(set) var pairCount = 0
    var pairSamples: UnsafePointer<Int32> { UnsafePointer(pairSampleBuffer.pointer) }
    var pairRows: UnsafePointer<Float> { UnsafePointer(pairRowBuffer.pointer) }

    init(numWords: Int, width: Int, embeddings: ParameterView) {
        precondition(embeddings.shape == [numWords, width], "Embedding: shape \(embeddings.shape) ≠ [\(numWords), \(width)]")
        self.numWords = numWords
        self.width = width
        self.embeddings = embeddings
        slotOfToken = Int32Buffer(count: numWords, value: -1)
        pairOfToken = Int32Buffer(count: numWords, value: -1)
        stampOfToken = Int32Buffer(count: numWords, value: 0)
    }

    func reserve(positions: Int, gateWidth: Int) {
        let distinct = min(numWords, positions)
        slots = slots.ensuring(positions)
        tokens = tokens.ensuring(distinct)
        firstSteps = firstSteps.ensuring(distinct)
        formed = formed.ensuring(distinct)
        rows = rows.ensuring(distinct * width)
        dRows = dRows.ensuring(distinct * width)
        table = table.ensuring(distinct * gateWidth)
    }

    /// Finds the batch's distinct tokens and copies their embedding rows, which `project` (each
    /// direction of the layer after it) or `lookupPairs` (with input dropout) then use.
    func lookup(tokens x: UnsafeBufferPointer<Int32>, batch: Int, steps: Int, weights w: UnsafePointer<Float>,
                gateWidth G: Int) {
        precondition(x.count == batch * steps, "Embedding: \(x.count) token ids for B=\(batch) T=\(steps)")
        let E = width
        for u in 0..<distinctCount { slotOfToken.pointer[Int(tokens.pointer[u])] = -1 }   // the previous batch's
        reserve(positions: batch * steps, gateWidth: G)
        var n = 0
        for b in 0..<batch {
            for t in 0..<steps {
                let token = Int(x[b * steps + t])
                precondition(token >= 0 && token < numWords, "Embedding: token id \(token) outside 0..<\(numWords)")
                var slot = slotOfToken.pointer[token]
                if slot < 0 {
                    slot = Int32(n)
                    slotOfToken.pointer[token] = slot
                    tokens.pointer[n] = Int32(token)
                    firstSteps.pointer[n] = Int32(t)
                    n += 1
                } else if Int32(t) < firstSteps.pointer[Int(slot)] {
                    firstSteps.pointer[Int(slot)] = Int32(t)
                }
                slots.pointer[t * batch + b] = slot
            }
        }
        distinctCount = n
        let emb = w + embeddings.offset
        for u in 0..<n {
            (rows.pointer + u * E).update(from: emb + Int(tokens.pointer[u]) * E, count: E)
        }
    }

    /// After `lookup`: the batch's distinct tokens (in order of first appearance) and the first step
    /// at which each occurs.
    func reportLookUp(to observer: BackwardObserver, steps: Int) {
        observer.didLookUp(tokens: UnsafeBufferPointer(start: tokens.pointer, count: distinctCount),
                           firstSteps: UnsafeBufferPointer(start: firstSteps.pointer, count: distinctCount), steps: steps)
    }

    /// The slot (distinct-token row) that time-major position (t, b) of a direction reads: the
    /// backward direction of a bidirectional layer reads step T−1−t at its step t.
    @inline(__always)
    func slot(_ t: Int, _ b: Int, batch: Int, steps: Int, reversed: Bool = false) -> Int {
        Int(slots.pointer[(reversed ? steps - 1 - t : t) * batch + b])
    }

    /// After `lookup`: the distinct rows' projection, table (N × G) = rows (N × E) · W (E × G), and
    /// where each position (t, b) finds its row of it (time-reversed when `reversed`), for the layer
    /// to read in place.
    func project(batch: Int, steps: Int, weights w: UnsafePointer<Float>, layer: RecurrentLayer,
                 reversed: Bool) -> ProjectionRows {
        precondition(layer.inputSize == width, "Embedding: width \(width) ≠ layer input \(layer.inputSize)")
        let G = layer.gateWidth, E = width, n = distinctCount
        BLAS.sgemm(m: n, n: G, k: E, a: rows.pointer, lda: E, b: w + layer.kernel.offset, ldb: G,
                   beta: 0, c: table.pointer, ldc: G)
        return slotRows(batch: batch, steps: steps, reversed: reversed, width: G)
    }

    /// Where each position (t, b) finds its slot's row of the (N × `width`) table: the projection in
    /// forward, the per-token gradient sums in backward.
    private func slotRows(batch: Int, steps: Int, reversed: Bool, width G: Int) -> ProjectionRows {
        ProjectionRows(table: table.pointer, indices: slots.pointer, sampleStride: 1, stepStride: batch,
                       totalSteps: steps, start: 0, reversed: reversed, width: G)
    }

    /// After `lookup`: each sample's distinct tokens and their embedding rows (`pairRows`, U × E).
    func lookupPairs(tokens x: UnsafeBufferPointer<Int32>, batch: Int, steps: Int, weights w: UnsafePointer<Float>) {
        let E = width, positions = batch * steps
        pairSlots = pairSlots.ensuring(positions)
        pairTokens = pairTokens.ensuring(positions)
        pairSampleBuffer = pairSampleBuffer.ensuring(positions)
        var u = 0
        for b in 0..<batch {
            let stamp = Int32(b + 1)
            for t in 0..<steps {
                let token = Int(x[b * steps + t])
                if stampOfToken.pointer[token] != stamp {
                    stampOfToken.pointer[token] = stamp
                    pairOfToken.pointer[token] = Int32(u)
                    pairTokens.pointer[u] = Int32(token)
                    pairSampleBuffer.pointer[u] = Int32(b)
                    u += 1
                }
                pairSlots.pointer[t * batch + b] = pairOfToken.pointer[token]
            }
        }
        for b in 0..<batch {   // stamps back to 0 for the next batch
            for t in 0..<steps { stampOfToken.pointer[Int(x[b * steps + t])] = 0 }
        }
        pairCount = u
        pairRowBuffer = pairRowBuffer.ensuring(u * E)
        let emb = w + embeddings.offset
        for k in 0..<u {
            (pairRowBuffer.pointer + k * E).update(from: emb + Int(pairTokens.pointer[k]) * E, count: E)
        }
    }

    /// The pair that time-major position (t, b) of a direction reads.
    @inline(__always)
    private func pair(_ t: Int, _ b: Int, batch: Int, steps: Int, reversed: Bool) -> Int {
        Int(pairSlots.pointer[(reversed ? steps - 1 - t : t) * batch + b])
    }

    /// P (T, B, G) from the pairs' projections `table` (U × G), time-reversed when `reversed`.
    func projectPairs(_ table: UnsafePointer<Float>, batch: Int, steps: Int, layer: RecurrentLayer, reversed: Bool) {
        let G = layer.gateWidth, p = layer.projection
        for t in 0..<steps {
            for b in 0..<batch {
                (p + (t * batch + b) * G).update(from: table + pair(t, b, batch: batch, steps: steps, reversed: reversed) * G,
                                                 count: G)
            }
        }
    }

    /// The backward of `projectPairs`: dTable (U × G) = Σ over each pair's positions of dP.
    func sumPairGradients(_ dP: UnsafePointer<Float>, into dTable: UnsafeMutablePointer<Float>, batch: Int, steps: Int,
                          gateWidth G: Int, reversed: Bool) {
        dTable.update(repeating: 0, count: pairCount * G)
        for t in 0..<steps {
            for b in 0..<batch {
                addVector(dP + (t * batch + b) * G,
                          into: dTable + pair(t, b, batch: batch, steps: steps, reversed: reversed) * G, count: G)
            }
        }
    }

    /// Adds the pairs' row gradients dRows (U × E) into the embedding gradient.
    func backwardPairs(_ dRows: UnsafePointer<Float>, gradients dw: UnsafeMutablePointer<Float>) {
        guard trainable else { return }
        let E = width, dEmb = dw + embeddings.offset
        for k in 0..<pairCount {
            addVector(dRows + k * E, into: dEmb + Int(pairTokens.pointer[k]) * E, count: E)
        }
    }

    /// The whole vocabulary's projection, Emb (V × E) · W (E × G), into `table` (V × G): for forward
    /// passes with fixed weights (evaluation, prediction) one GEMM replaces every batch's lookup.
    func fullTable(weights w: UnsafePointer<Float>, layer: RecurrentLayer, into table: FloatBuffer) -> FloatBuffer {
        let G = layer.gateWidth
        let t = table.ensuring(numWords * G)
        BLAS.sgemm(m: numWords, n: G, k: width, a: w + embeddings.offset, lda: width, b: w + layer.kernel.offset,
                   ldb: G, beta: 0, c: t.pointer, ldc: G)
        return t
    }

    /// Where steps `t0 ..< t0 + n` of batch-major token ids x (B, T) find their rows of a `fullTable`,
    /// for the layer to read in place; `reversed`: steps of the time-reversed sequence (a backward
    /// direction's own order). Checks every id of those steps against the table.
    func tableRows(tokens x: UnsafeBufferPointer<Int32>, batch: Int, steps: Int, table: UnsafePointer<Float>,
                   layer: RecurrentLayer, from t0: Int, count n: Int, reversed: Bool = false) -> ProjectionRows {
        precondition(x.count == batch * steps && t0 >= 0 && t0 + n <= steps,
                     "Embedding: \(x.count) token ids for B=\(batch) T=\(steps), steps \(t0)..<\(t0 + n)")
        for b in 0..<batch {
            for t in t0..<(t0 + n) {
                let token = Int(x[b * steps + (reversed ? steps - 1 - t : t)])
                precondition(token >= 0 && token < numWords, "Embedding: token id \(token) outside 0..<\(numWords)")
            }
        }
        return ProjectionRows(table: table, indices: x.baseAddress!, sampleStride: steps, stepStride: 1, totalSteps: steps,
                              start: t0, reversed: reversed, width: layer.gateWidth)
    }

    // For a Conv1D right after the embedding (its fused projection, Conv1D.swift).
    /// After `lookup`: the N distinct rows (N × E), the (N × G) table, and their gradient (N × E).
    var distinctRows: UnsafePointer<Float> { UnsafePointer(rows.pointer) }
    var distinctTable: UnsafeMutablePointer<Float> { table.pointer }
    var distinctRowGradients: UnsafeMutablePointer<Float> { dRows.pointer }

    /// Adds `distinctRowGradients` (N × E) into the used rows of the embedding gradient (nothing when frozen).
    func addDistinctRowGradients(into dw: UnsafeMutablePointer<Float>) {
        guard trainable else { return }
        let E = width, dEmb = dw + embeddings.offset
        for u in 0..<distinctCount { addVector(dRows.pointer + u * E, into: dEmb + Int(tokens.pointer[u]) * E, count: E) }
    }

    /// Calls `body` with each token of the last `forward`: the rows whose gradient `backward`
    /// touched, all others staying exactly zero (none when frozen: no row gets a gradient).
    func forEachUsedRow(_ body: (Int) -> Void) {
        guard trainable else { return }
        for u in 0..<distinctCount { body(Int(tokens.pointer[u])) }
    }

    /// Before the layer's BPTT (after the `lookup` of the same batch): zeroes the (N × G) table, which
    /// the forward no longer needs, for BPTT to sum each distinct token's position gradients into
    /// (`TokenRowGradients`), as the layer (its direction `reversed`) reads them.
    func beginBackward(batch: Int, steps: Int, weights w: UnsafePointer<Float>, layer: RecurrentLayer, reversed: Bool,
                       observer: BackwardObserver?) -> TokenRowGradients {
        let G = layer.gateWidth
        table.pointer.update(repeating: 0, count: distinctCount * G)
        formed.pointer.update(repeating: 0, count: distinctCount)
        layer.tensors.transposeKernel(w)         // Wᵀ for the rows' gradient (`tokenRowGradient`)
        let rows = EmbeddingRowGradients(table: table.pointer, slotOfToken: slotOfToken.pointer,
                                         kernelTransposed: layer.tensors.kernelTransposed.pointer, gateWidth: G, width: width,
                                         rows: dRows.pointer, formed: formed.pointer)
        return TokenRowGradients(rows: slotRows(batch: batch, steps: steps, reversed: reversed, width: G),
                                 afterStep: observer.map { o in { t in o.didBackpropagate(step: t, rows: rows) } })
    }

    /// After that BPTT: adds dW, db and dEmb (only the used rows) from the per-token sums dTable (N × G)
    /// (`beginBackward` made Wᵀ).
    func finishBackward(weights w: UnsafePointer<Float>, gradients dw: UnsafeMutablePointer<Float>, layer: RecurrentLayer) {
        let G = layer.gateWidth, E = width, n = distinctCount
        let dTable = table.pointer
        addColumnSums(dTable, rows: n, cols: G, into: layer.tensors.biasGradient(dw))
        // dW (E × G) += rowsᵀ (E × N) · dTable (N × G)
        BLAS.sgemm(transA: true, m: E, n: G, k: n, a: rows.pointer, lda: E, b: dTable, ldb: G,
                   beta: 1, c: dw + layer.kernel.offset, ldc: G)
        guard trainable else { return }
        // dRows (N × E) = dTable (N × G) · Wᵀ (G × E), row by row in a fixed order of operations (the
        // rows the exchange forms during BPTT, `EmbeddingRowGradients`, are these bits), then into
        // the used rows of dEmb.
        let wT = UnsafePointer(layer.tensors.kernelTransposed.pointer)
        // Counted (the floor benchmark) as the one product it is, however its rows were formed.
        BLAS.countProduct(ProductShape(gemv: false, transA: false, transB: false, m: n, n: E, k: G, lda: G, ldb: E, ldc: E,
                                       betaZero: true))
        for u in 0..<n where formed.pointer[u] == 0 {    // the others the exchange formed already
            tokenRowGradient(dTable + u * G, kernelTransposed: wT, gates: G, width: E, into: dRows.pointer + u * E)
        }
        addDistinctRowGradients(into: dw)
    }
}

// As a layer, the embedding only finds the batch's rows: the layer after it projects them (the
// fused projection above), and adds their gradient in its backward. Before any other layer it
// materializes the sequence (T, B, E) and, in backward, sums each distinct token's position
// gradients (in a fixed order) before adding them to its row.
extension EmbeddingLookup: Layer {
    /// Each step's rows are its own tokens' (there is no mask_zero).
    var causal: Bool { true }

    func reserve(_ p: Pass) {
        if materializes { sequence = sequence.ensuring(p.steps * p.batch * width) }
    }

    func forward(_ input: Activation, _ p: Pass) -> Activation {
        guard case .tokens(let x) = input else { preconditionFailure("Embedding: the input must be token ids") }
        currentTokens = x
        guard materializes else {
            // Evaluation reads the whole vocabulary's projection table instead (`fullTable`).
            if !p.inference {
                lookup(tokens: x, batch: p.batch, steps: p.steps, weights: p.weights, gateWidth: projectionWidth)
                if let observer = p.observer { reportLookUp(to: observer, steps: p.steps) }
            }
            return .embedded(self)
        }
        let E = width, T = p.totalSteps, out = sequence.pointer, emb = p.weights + embeddings.offset
        if !p.inference { lookup(tokens: x, batch: p.batch, steps: p.steps, weights: p.weights, gateWidth: 0) }
        for t in 0..<p.steps {
            for b in 0..<p.batch {
                let token = Int(x[b * T + p.start + t])
                precondition(token >= 0 && token < numWords, "Embedding: token id \(token) outside 0..<\(numWords)")
                (out + (t * p.batch + b) * E).update(from: emb + token * E, count: E)
            }
        }
        return .sequence(UnsafePointer(out))
    }

    func backward(_ dOutput: UnsafePointer<Float>, input: Activation, _ p: Pass,
                  gradients dw: UnsafeMutablePointer<Float>) -> UnsafePointer<Float>? {
        guard materializes, trainable else { return nil }
        let E = width, d = dRows.pointer
        d.update(repeating: 0, count: distinctCount * E)
        for t in 0..<p.steps {
            for b in 0..<p.batch {
                addVector(dOutput + (t * p.batch + b) * E, into: d + slot(t, b, batch: p.batch, steps: p.steps) * E, count: E)
            }
        }
        addDistinctRowGradients(into: dw)
        return nil
    }
}

/// Keras `Embedding(input_dim, output_dim)`.
public struct EmbeddingSpec: LayerSpecification {
    /// V: token ids are 0..<V.
    public internal(set) var inputDim: Int
    /// E: the width of each token's vector.
    public internal(set) var outputDim: Int
    /// Keras `trainable` (false: frozen, e.g. pretrained vectors kept as they are).
    var trainable: Bool

    init(inputDim: Int, outputDim: Int, trainable: Bool = true) {
        self.inputDim = inputDim
        self.outputDim = outputDim
        self.trainable = trainable
    }

    private enum CodingKeys: String, CodingKey { case inputDim = "input_dim", outputDim = "output_dim", trainable }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inputDim = try c.decode(Int.self, forKey: .inputDim)
        outputDim = try c.decode(Int.self, forKey: .outputDim)
        trainable = try c.decodeIfPresent(Bool.self, forKey: .trainable) ?? true
    }

    /// `trainable` is written only when false, so trainable configs read as before.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(inputDim, forKey: .inputDim)
        try c.encode(outputDim, forKey: .outputDim)
        if !trainable { try c.encode(false, forKey: .trainable) }
    }

    static let type = "embedding"
    var kerasBaseName: String { "embedding" }
    var kerasClassName: String { "Embedding" }
    var label: String { "embedding(\(inputDim), \(outputDim))" + (trainable ? "" : " frozen") }

    func output(from shape: Shape) -> Shape? {
        guard case .tokens(let steps) = shape else { return nil }
        return .sequence(outputDim, steps: steps)
    }

    func parameters(input shape: Shape) -> [LayerParameter] {
        [LayerParameter(index: 0, name: "embeddings", shape: [inputDim, outputDim], cell: false, initializer: .uniform(limit: 0.05))]
    }

    func validate() throws {
        try ModelConfigError.check("num_words", inputDim, ModelConfig.maxNumWords)
        try ModelConfigError.check("embed_dim", outputDim, ModelConfig.maxWidth)
    }

    func makeLayer(input: Shape, tensors: [ParameterView], previous: (any Layer)?, index: Int) -> any Layer {
        EmbeddingLookup(numWords: inputDim, width: outputDim, embeddings: tensors[0])
    }
}
