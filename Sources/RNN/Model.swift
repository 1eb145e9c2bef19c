// The whole classifier: Embedding → recurrent layer(s) → Dense(1, sigmoid), binary cross-entropy.
//
// Shape letters: B batch, T time steps (sequence length), V vocabulary, E embedding width, H units.
// Input token ids x are batch-major (B, T) Int32, as the dataset stores them; labels y are (B) in {0, 1}.
//
// All weights live in one flat `[Float]` (`weights`) and all gradients in another of the same
// layout (`gradients`), described by `parameters`; so broadcasting, all-reducing, checkpointing and
// the optimizer are single loops or calls over one buffer.

import BLAS
import Foundation

/// Loss and accuracy counts of some samples; sums, so that ranks and batches combine exactly.
public struct BatchStats: Sendable, Equatable {
    /// Σ binary cross-entropy over the samples.
    public var lossSum: Double
    /// Number of samples with (p ≥ 0.5) == label.
    public var correct: Int
    /// Number of samples.
    public var count: Int

    public init(lossSum: Double = 0, correct: Int = 0, count: Int = 0) {
        self.lossSum = lossSum
        self.correct = correct
        self.count = count
    }

    public static let zero = BatchStats()

    /// Mean loss (NaN for no samples).
    public var loss: Double { count > 0 ? lossSum / Double(count) : .nan }
    /// Fraction correct (NaN for no samples).
    public var accuracy: Double { count > 0 ? Double(correct) / Double(count) : .nan }

    public static func + (a: BatchStats, b: BatchStats) -> BatchStats {
        BatchStats(lossSum: a.lossSum + b.lossSum, correct: a.correct + b.correct, count: a.count + b.count)
    }

    public static func += (a: inout BatchStats, b: BatchStats) { a = a + b }
}

/// The classifier with its flat weight and gradient buffers and its (reused) workspaces.
///
/// Not thread-safe: one model per process (or per thread).
public final class Model {
    public let config: ModelConfig
    /// Where each Keras tensor lives in `weights` / `gradients` (see `ModelConfig.parameterTable`).
    public let parameters: [ParameterView]
    /// All weights, in the layout of `parameters`.
    public var weights: [Float]
    /// ∂(Σ loss)/∂weights, same layout; `accumulateGradients` adds to it, `zeroGradients` clears it.
    public var gradients: [Float]

    let embedding: EmbeddingLookup
    /// stack[l][d]: direction d (0 forward, 1 backward when bidirectional) of recurrent layer l.
    let stack: [[LayerDirection]]
    /// The forward direction's cell of each layer.
    let recurrent: [RecurrentLayer]
    /// Dense kernel (D, 1) and bias (1), D = H or 2H.
    let denseKernel: ParameterView
    let denseBias: ParameterView
    /// Whether the current forward/backward runs with dropout masks (a training batch with a key).
    private var masksActive = false
    /// Whether the layers' inputs are masked in the current pass (masks active and dropout > 0).
    private var inputMasksActive: Bool { masksActive && config.dropout > 0 }
    /// (T, B, 2H) per layer but the last, when bidirectional: [forward h_t | backward h at step t].
    private var concatenated: [FloatBuffer] = []
    /// (B, 2H), when bidirectional: the last layer's [forward h_{T−1} | backward h after x_0].
    private var topOutput = FloatBuffer(count: 0)

    /// Time steps per block of an evaluation's forward pass (see `forward`); results do not depend on it.
    public var inferenceBlockSteps = 25
    /// (V × G): the whole vocabulary's first-layer projection, for evaluation (see `makeInferenceTable`).
    private var inferenceTable = FloatBuffer(count: 0)
    /// (B): logits z = h_{T−1}·w_d + b_d of the last forward.
    private var logitBuffer = FloatBuffer(count: 0)
    /// (B, D): ∂loss/∂(the last layer's output).
    private var dLast = FloatBuffer(count: 0)
    /// (T, B, D): ∂loss/∂(a layer's output sequence), passed down the stack.
    private var dSequence = FloatBuffer(count: 0)

    /// A model with freshly initialised weights (Keras's initializers, seeded: the same seed gives
    /// the same weights in every process).
    /// - Parameters:
    ///   - config: sizes and cell kind.
    ///   - seed: weight seed; each tensor draws from its own stream of it.
    public init(config: ModelConfig, seed: UInt64) {
        self.config = config
        let table = config.parameterTable
        parameters = table
        let count = config.parameterCount
        weights = [Float](repeating: 0, count: count)
        gradients = [Float](repeating: 0, count: count)
        embedding = EmbeddingLookup(numWords: config.numWords, width: config.embedDim, embeddings: table[0])
        var layers: [[LayerDirection]] = []
        for l in 0..<config.layers {
            let input = l == 0 ? config.embedDim : config.outputWidth
            layers.append((0..<config.directions).map { d in
                let k = 1 + 3 * (l * config.directions + d)
                let cell = makeRecurrentLayer(kind: config.kind, inputSize: input, units: config.units, kernel: table[k],
                                              recurrentKernel: table[k + 1], bias: table[k + 2],
                                              resetAfter: config.resetAfter)
                return LayerDirection(cell: cell, layer: l, direction: d, config: config)
            })
        }
        stack = layers
        recurrent = layers.map { $0[0].cell }
        denseKernel = table[table.count - 2]
        denseBias = table[table.count - 1]
        initializeWeights(seed: seed)
    }

    /// Overwrites `weights` with a fresh initialisation from `seed` (parameter k uses stream k).
    public func initializeWeights(seed: UInt64) {
        weights.withUnsafeMutableBufferPointer { w in
            for (k, view) in parameters.enumerated() {
                var generator = SeededGenerator(seed: seed, stream: UInt64(k))
                let slice = UnsafeMutableBufferPointer(rebasing: w[view.range])
                view.initializer.fill(slice, shape: view.shape, generator: &generator)
            }
        }
    }

    /// The view of Keras tensor `layerName/vars/varIndex`, if the model has it.
    public func parameter(layer layerName: String, index varIndex: Int) -> ParameterView? {
        parameters.first { $0.layerName == layerName && $0.varIndex == varIndex }
    }

    /// Sets every gradient to zero (once per optimizer step; backward only adds).
    public func zeroGradients() {
        gradients.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        gradientRowsValid = false
    }

    /// Whether `markTouchedEmbeddingRows` describes the gradients (a batch ran since they were zeroed).
    private var gradientRowsValid = false

    /// Sets `rows[v] = 1` (V bytes) for each embedding row whose gradient the batches accumulated
    /// since `zeroGradients` touched; every other row of the embedding gradient is exactly zero. (The
    /// rows of the last batch: call it after one `accumulateGradients`.)
    public func markTouchedEmbeddingRows(_ rows: inout [UInt8]) {
        precondition(rows.count == config.numWords, "markTouchedEmbeddingRows: \(rows.count) flags for V = \(config.numWords)")
        guard gradientRowsValid else { return }
        rows.withUnsafeMutableBufferPointer { embedding.markUsedRows($0) }
    }

    /// Where the embedding gradient (V × E, row-major) sits in `gradients`: it comes first.
    public var embeddingRange: Range<Int> { parameters[0].range }

    // MARK: - Forward and backward

    private func reserve(batch: Int, steps: Int) {
        let D = config.outputWidth
        logitBuffer = logitBuffer.ensuring(batch)
        dLast = dLast.ensuring(batch * D)
        if config.layers > 1 { dSequence = dSequence.ensuring(batch * steps * D) }
        if config.bidirectional {
            topOutput = topOutput.ensuring(batch * D)
            if concatenated.count < config.layers - 1 {
                concatenated = (0..<(config.layers - 1)).map { _ in FloatBuffer(count: 0) }
            }
            for l in 0..<(config.layers - 1) { concatenated[l] = concatenated[l].ensuring(steps * batch * D) }
        }
        for layer in stack.joined() {
            layer.reserve(batch: batch, steps: steps, inputMasks: inputMasksActive,
                          recurrentMasks: masksActive && config.recurrentDropout > 0, bidirectional: config.bidirectional)
        }
    }

    /// The output sequence (T, B, D) of layer l (the input of layer l + 1).
    private func sequenceOutput(_ l: Int) -> UnsafeMutablePointer<Float> {
        config.bidirectional ? concatenated[l].pointer : stack[l][0].cell.outputs
    }

    /// Runs the network on x (B, T), leaving the logits (B) in `logitBuffer` and the caches filled.
    /// - Parameter table: a `fullTable` of these weights (evaluation), or nil to project only the
    ///   batch's distinct tokens (training).
    private func forward(x: UnsafeBufferPointer<Int32>, batch: Int, steps: Int, weights w: UnsafePointer<Float>,
                         table: UnsafePointer<Float>? = nil) {
        var lastBlock = steps
        if let table {
            // Evaluation keeps nothing for BPTT, so it runs in blocks of steps whose activations
            // stay in the CPU's caches, each block continuing from the state the previous one left.
            let block = min(steps, inferenceBlockSteps)
            reserve(batch: batch, steps: block)
            var t0 = 0
            while t0 < steps {
                let n = min(block, steps - t0)
                embedding.forward(tokens: x, batch: batch, steps: steps, table: table, layer: recurrent[0],
                                  from: t0, count: n)
                for l in 0..<recurrent.count {
                    if l > 0 {
                        recurrent[l].projectForward(input: recurrent[l - 1].outputs, weights: w, positions: batch * n)
                    }
                    recurrent[l].forward(weights: w, batch: batch, steps: n, carry: t0 > 0)
                    if t0 + n < steps { recurrent[l].keepFinalState(batch: batch, steps: n) }
                }
                t0 += n
                lastBlock = n
            }
        } else if !config.bidirectional && !inputMasksActive {
            reserve(batch: batch, steps: steps)
            embedding.forward(tokens: x, batch: batch, steps: steps, weights: w, layer: recurrent[0])
            recurrent[0].forward(weights: w, batch: batch, steps: steps)
            for l in 1..<recurrent.count {
                recurrent[l].projectForward(input: recurrent[l - 1].outputs, weights: w, positions: batch * steps)
                recurrent[l].forward(weights: w, batch: batch, steps: steps)
            }
        } else {
            // Bidirectional layers and/or dropout masks: each direction builds its own input.
            reserve(batch: batch, steps: steps)
            embedding.lookup(tokens: x, batch: batch, steps: steps, weights: w, gateWidth: recurrent[0].gateWidth)
            for l in 0..<stack.count {
                for direction in stack[l] {
                    if l == 0 {
                        direction.forwardFromEmbedding(embedding, tokens: x, batch: batch, steps: steps, weights: w,
                                                       masks: inputMasksActive)
                    } else {
                        direction.forwardFromSequence(sequenceOutput(l - 1), batch: batch, steps: steps, weights: w,
                                                      masks: inputMasksActive)
                    }
                    direction.cell.forward(weights: w, batch: batch, steps: steps)
                }
                if config.bidirectional { concatenate(layer: l, batch: batch, steps: steps) }
            }
        }
        // Dense head: z = last·w_d + b_d, last (B, D) the top layer's output at the end of the sequence.
        let D = config.outputWidth
        BLAS.sgemv(m: batch, n: D, a: lastOutput(batch: batch, lastBlock: lastBlock), lda: D,
                   x: w + denseKernel.offset, beta: 0, y: logitBuffer.pointer)
        let bias = w[denseBias.offset]
        for b in 0..<batch { logitBuffer.pointer[b] += bias }
    }

    /// (B, D): the Dense head's input after a forward whose last block had `lastBlock` steps.
    private func lastOutput(batch: Int, lastBlock: Int) -> UnsafeMutablePointer<Float> {
        config.bidirectional ? topOutput.pointer
            : stack[stack.count - 1][0].cell.outputs + (lastBlock - 1) * batch * config.units
    }

    /// Keras `Bidirectional(merge_mode="concat")`: [forward | backward] with the backward direction's
    /// sequence flipped back to time order; the last layer keeps only its final outputs.
    private func concatenate(layer l: Int, batch: Int, steps: Int) {
        let H = config.units, D = 2 * H, BH = batch * H
        let forward = stack[l][0].cell.outputs, backward = stack[l][1].cell.outputs
        if l == stack.count - 1 {
            for b in 0..<batch {
                (topOutput.pointer + b * D).update(from: forward + (steps - 1) * BH + b * H, count: H)
                (topOutput.pointer + b * D + H).update(from: backward + (steps - 1) * BH + b * H, count: H)
            }
            return
        }
        let out = concatenated[l].pointer
        for t in 0..<steps {
            for b in 0..<batch {
                let row = out + (t * batch + b) * D
                row.update(from: forward + t * BH + b * H, count: H)
                (row + H).update(from: backward + (steps - 1 - t) * BH + b * H, count: H)
            }
        }
    }

    /// Splits ∂loss/∂(layer l's concatenated output) into each direction's ∂loss/∂(its own outputs),
    /// in the direction's own step order: (B, 2H) → 2 × (B, H) for the last layer, (T, B, 2H) →
    /// 2 × (T, B, H) below it.
    private func splitGradient(layer l: Int, from d: UnsafePointer<Float>, batch: Int, steps: Int) {
        let H = config.units, D = 2 * H, BH = batch * H
        let isTop = l == stack.count - 1
        for (k, direction) in stack[l].enumerated() {
            let out = direction.dOutputs
            if isTop {
                for b in 0..<batch { (out + b * H).update(from: d + b * D + k * H, count: H) }
            } else {
                for t in 0..<steps {
                    let source = k == 0 ? t : steps - 1 - t
                    for b in 0..<batch {
                        (out + t * BH + b * H).update(from: d + (source * batch + b) * D + k * H, count: H)
                    }
                }
            }
        }
    }

    /// Binary cross-entropy of logit z against label y, stable for any z:
    /// max(z, 0) − z·y + log(1 + e^{−|z|}) (TensorFlow's `sigmoid_cross_entropy_with_logits`, which
    /// Keras 3 uses when the output layer is a sigmoid). The one loss of training, validation and `eval`.
    @inline(__always)
    public static func crossEntropy(logit z: Float, label y: Float) -> Double {
        let zd = Double(z), yd = Double(y)
        return max(zd, 0) - zd * yd + Foundation.log1p(Foundation.exp(-abs(zd)))
    }

    /// The one decision rule of training, validation and `eval`: positive when σ(z) ≥ ½, i.e. z ≥ 0
    /// (decided on the logit, so no rounding of σ near ½ can flip it).
    @inline(__always)
    public static func predictsPositive(logit z: Float) -> Bool { z >= 0 }

    /// σ(z), the probability of a positive review.
    public static func probability(logit z: Float) -> Float { exactSigmoid(z) }

    private func statistics(labels y: UnsafeBufferPointer<Float>, batch: Int) -> BatchStats {
        var stats = BatchStats(count: batch)
        for b in 0..<batch {
            let z = logitBuffer.pointer[b]
            stats.lossSum += Self.crossEntropy(logit: z, label: y[b])
            if Self.predictsPositive(logit: z) == (y[b] >= 0.5) { stats.correct += 1 }
        }
        return stats
    }

    /// Forward and backward on one batch: ADDS Σ over the batch of per-sample gradients to
    /// `gradients` (not the mean — the caller divides by the global batch size after reducing).
    /// - Parameters:
    ///   - x: token ids (B, T), batch-major, each in 0..<V (a precondition: validate data when loading it).
    ///   - y: labels (B), 0 or 1.
    ///   - batch: B; T = x.count / B.
    ///   - dropout: the batch's mask key (training); nil runs without dropout whatever the config says.
    /// - Returns: the batch's loss sum and correct count (before the update).
    @discardableResult
    public func accumulateGradients(x: UnsafeBufferPointer<Int32>, y: UnsafeBufferPointer<Float>,
                                    batch: Int, dropout: DropoutKey? = nil) -> BatchStats {
        guard batch > 0 else { return .zero }
        precondition(y.count == batch && x.count % batch == 0 && x.count > 0,
                     "accumulateGradients: \(x.count) ids and \(y.count) labels for batch \(batch)")
        precondition(dropout.map { $0.positions.count == batch } ?? true,
                     "accumulateGradients: the dropout key has \(dropout?.positions.count ?? 0) positions for batch \(batch)")
        let steps = x.count / batch
        gradientRowsValid = true
        if let key = dropout, config.usesDropout {
            for direction in stack.joined() { direction.drawMasks(key: key, config: config) }
            setMasks(active: true)
        }
        defer { setMasks(active: false) }
        return runForwardBackward(x: x, y: y, batch: batch, steps: steps)
    }

    /// Turns the drawn (or test-set) masks on or off for the following passes.
    func setMasks(active: Bool) {
        masksActive = active
        for direction in stack.joined() {
            direction.cell.recurrentDropout = active && config.recurrentDropout > 0 ? direction.recurrentDropout : nil
        }
    }

    /// Forward and backward with whatever masks are active (tests hold masks fixed through this).
    func runForwardBackward(x: UnsafeBufferPointer<Int32>, y: UnsafeBufferPointer<Float>, batch: Int,
                            steps: Int) -> BatchStats {
        let D = config.outputWidth
        return weights.withUnsafeBufferPointer { wBuffer in
            gradients.withUnsafeMutableBufferPointer { gBuffer in
                let w = wBuffer.baseAddress!, dw = gBuffer.baseAddress!
                forward(x: x, batch: batch, steps: steps, weights: w)
                let stats = statistics(labels: y, batch: batch)

                // Dense head backward: dz = σ(z) − y per sample (summed, not averaged).
                let last = UnsafePointer(lastOutput(batch: batch, lastBlock: steps))
                let wd = w + denseKernel.offset
                var dBias: Double = 0
                for b in 0..<batch {
                    let dz = exactSigmoid(logitBuffer.pointer[b]) - y[b]
                    logitBuffer.pointer[b] = dz                    // reuse: logits now hold dz
                    dBias += Double(dz)
                    let dh = dLast.pointer + b * D
                    for j in 0..<D { dh[j] = dz * wd[j] }
                }
                dw[denseBias.offset] += Float(dBias)
                // dW_d (D) += lastᵀ·dz
                BLAS.sgemv(trans: true, m: batch, n: D, a: last, lda: D, x: logitBuffer.pointer, beta: 1,
                           y: dw + denseKernel.offset)

                if !config.bidirectional && !inputMasksActive {
                    backwardUnidirectional(batch: batch, steps: steps, weights: w, gradients: dw)
                } else {
                    backwardGeneral(batch: batch, steps: steps, weights: w, gradients: dw)
                }
                return stats
            }
        }
    }

    /// The recurrent layers' backward, top to bottom; each hands ∂loss/∂(its input sequence) down.
    private func backwardUnidirectional(batch: Int, steps: Int, weights w: UnsafePointer<Float>,
                                        gradients dw: UnsafeMutablePointer<Float>) {
        for l in stride(from: recurrent.count - 1, through: 0, by: -1) {
            let layer = recurrent[l]
            let isTop = l == recurrent.count - 1
            layer.backward(weights: w, gradients: dw,
                           dOutputs: isTop ? dLast.pointer : dSequence.pointer,
                           sequence: !isTop, batch: batch, steps: steps)
            if l > 0 {
                // Writes over dSequence, which `backward` has finished reading.
                layer.projectBackward(input: recurrent[l - 1].outputs, dInput: dSequence.pointer,
                                      weights: w, gradients: dw, positions: batch * steps)
            } else {
                embedding.backward(batch: batch, steps: steps, weights: w, gradients: dw, layer: layer)
            }
        }
    }

    /// The same for bidirectional layers and/or dropout masks.
    private func backwardGeneral(batch: Int, steps: Int, weights w: UnsafePointer<Float>,
                                 gradients dw: UnsafeMutablePointer<Float>) {
        for l in stride(from: stack.count - 1, through: 0, by: -1) {
            let isTop = l == stack.count - 1
            let dAbove = isTop ? dLast.pointer : dSequence.pointer
            if config.bidirectional { splitGradient(layer: l, from: dAbove, batch: batch, steps: steps) }
            for direction in stack[l] {
                direction.cell.backward(weights: w, gradients: dw,
                                        dOutputs: config.bidirectional ? direction.dOutputs : dAbove,
                                        sequence: !isTop, batch: batch, steps: steps)
            }
            // Every direction has read its output gradient: dSequence now becomes this layer's input gradient.
            for (k, direction) in stack[l].enumerated() {
                if l > 0 {
                    direction.backwardToSequence(sequenceOutput(l - 1), dInput: dSequence.pointer, accumulate: k > 0,
                                                 batch: batch, steps: steps, weights: w, gradients: dw,
                                                 masks: inputMasksActive)
                } else {
                    direction.backwardToEmbedding(embedding, batch: batch, steps: steps, weights: w, gradients: dw,
                                                  masks: inputMasksActive)
                }
            }
        }
    }

    /// `accumulateGradients` on arrays.
    @discardableResult
    public func accumulateGradients(x: [Int32], y: [Float], batch: Int, dropout: DropoutKey? = nil) -> BatchStats {
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in accumulateGradients(x: xp, y: yp, batch: batch, dropout: dropout) }
        }
    }

    /// Loss and accuracy of one batch, forward only.
    public func evaluate(x: UnsafeBufferPointer<Int32>, y: UnsafeBufferPointer<Float>, batch: Int) -> BatchStats {
        guard batch > 0 else { return .zero }
        precondition(y.count == batch && x.count % batch == 0 && x.count > 0,
                     "evaluate: \(x.count) ids and \(y.count) labels for batch \(batch)")
        weights.withUnsafeBufferPointer { w in
            forward(x: x, batch: batch, steps: x.count / batch, weights: w.baseAddress!)
        }
        return statistics(labels: y, batch: batch)
    }

    /// Forward passes over x (rows, T) in chunks of `batchSize` rows with the current weights (the
    /// vocabulary's projection table computed once, for unidirectional models); after each,
    /// `chunkDone(start, n)` reads the chunk's logits from `logitBuffer`.
    private func forwardInChunks(x: [Int32], rows: Int, batchSize: Int, _ chunkDone: (Int, Int) -> Void) {
        let steps = x.count / rows
        // A bidirectional layer's backward direction starts from the sequence's end, so it cannot
        // run in blocks of steps: it takes the training forward (one lookup per chunk).
        let table = config.bidirectional ? nil : makeInferenceTable()
        x.withUnsafeBufferPointer { xp in
            weights.withUnsafeBufferPointer { w in
                var start = 0
                while start < rows {
                    let n = min(batchSize, rows - start)
                    forward(x: UnsafeBufferPointer(rebasing: xp[(start * steps)..<((start + n) * steps)]),
                            batch: n, steps: steps, weights: w.baseAddress!, table: table?.pointer)
                    chunkDone(start, n)
                    start += n
                }
            }
        }
    }

    /// Loss and accuracy summed over `rows` samples (x is (rows, T)), in chunks of `batchSize`.
    public func evaluate(x: [Int32], y: [Float], rows: Int, batchSize: Int = 128) -> BatchStats {
        precondition(rows >= 0 && y.count == rows && (rows == 0 || x.count % rows == 0) && batchSize > 0,
                     "evaluate: \(x.count) ids and \(y.count) labels for \(rows) rows")
        guard rows > 0 else { return .zero }
        var total = BatchStats.zero
        y.withUnsafeBufferPointer { yp in
            forwardInChunks(x: x, rows: rows, batchSize: batchSize) { start, n in
                total += statistics(labels: UnsafeBufferPointer(rebasing: yp[start..<(start + n)]), batch: n)
            }
        }
        return total
    }

    /// Logits z (rows) for x (rows, T), in chunks of `batchSize` rows (forward only).
    /// - Parameters:
    ///   - batch: the number of rows in x; T = x.count / batch.
    public func logits(x: [Int32], batch rows: Int, batchSize: Int = 128) -> [Float] {
        precondition(rows >= 0 && (rows == 0 || (x.count % rows == 0 && x.count > 0)) && batchSize > 0,
                     "logits: \(x.count) ids for \(rows) rows")
        guard rows > 0 else { return [] }
        var out = [Float](repeating: 0, count: rows)
        forwardInChunks(x: x, rows: rows, batchSize: batchSize) { start, n in
            for b in 0..<n { out[start + b] = logitBuffer.pointer[b] }
        }
        return out
    }

    /// Probabilities σ(z) (rows) for x (rows, T), in chunks of `batchSize` rows.
    /// - Parameters:
    ///   - batch: the number of rows in x; T = x.count / batch.
    public func predict(x: [Int32], batch rows: Int, batchSize: Int = 128) -> [Float] {
        logits(x: x, batch: rows, batchSize: batchSize).map(exactSigmoid)
    }

    /// Emb·W for the whole vocabulary with the current weights (V × G), reused across the chunks of
    /// one evaluation: one GEMM instead of a lookup and a GEMM per chunk.
    private func makeInferenceTable() -> FloatBuffer {
        inferenceTable = weights.withUnsafeBufferPointer { w in
            embedding.fullTable(weights: w.baseAddress!, layer: recurrent[0], into: inferenceTable)
        }
        return inferenceTable
    }
}
