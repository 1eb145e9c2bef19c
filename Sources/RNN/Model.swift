// The whole classifier: the config's layers in order, then its head.
//
// Shape letters: B batch, T time steps, V vocabulary, K the head's outputs. Input token ids x are
// batch-major (B, T) Int32, as the dataset stores them; labels y are (B) class indices.
//
// All weights live in one flat `[Float]` (`weights`) and all gradients in another of the same
// layout (`gradients`), described by `parameters`; so broadcasting, all-reducing, checkpointing and
// the optimizer are single loops or calls over one buffer.

import BLAS

/// The classifier with its flat weight and gradient buffers and its layers' (reused) workspaces.
///
/// Not thread-safe: one model per process (or per thread).
public final class Model {
    public let config: ModelConfig
    /// Where each Keras tensor lives in `weights` / `gradients` (see `ModelConfig.parameterTable`).
    let parameters: [ParameterView]
    /// All weights, in the layout of `parameters`.
    public var weights: [Float] {
        get { storedWeights }
        set {
            inferenceReady = false
            storedWeights = newValue
        }
        // An optimizer step (`&model.weights`) changes the buffer in place. With a `didSet` here
        // instead, every such access copied the whole buffer (1.3 MB a step for the book's model,
        // half the optimizer's time: `PaddingSkipTests`).
        _modify {
            inferenceReady = false
            yield &storedWeights
        }
    }
    private var storedWeights: [Float]
    /// Whether the layers' evaluation tables (`Layer.prepareInference`) and `paddingTrajectory` are
    /// those of the current weights: prediction (`serve`) computes them once, not per request.
    private var inferenceReady = false
    /// ∂(Σ loss)/∂weights, same layout; `accumulateGradients` adds to it, `zeroGradients` clears it.
    public var gradients: [Float]
    /// Output activation, loss and decision rule.
    public let head: any Head

    /// One runtime layer per spec of `config.layers`.
    let layers: [any Layer]
    /// The first layer.
    let embedding: EmbeddingLookup
    /// The recurrent layers, in order (tests look at their masks).
    var recurrentLayers: [Recurrent] { layers.compactMap { $0 as? Recurrent } }
    /// Each layer's input in the last forward, and its pass (T of its input), for its backward.
    private var inputs: [Activation] = []
    private var passes: [Pass] = []
    /// Whether a training batch draws dropout masks (some layer has a rate).
    private let usesDropout: Bool
    /// (B, K): ∂loss/∂z from the head.
    private var dLogits = FloatBuffer(count: 0)

    /// Time steps per block of an evaluation's forward pass (see `forward`); results do not depend on it.
    var inferenceBlockSteps = 25
    /// Whether evaluation skips the padding rows share (`logits`); results do not depend on it.
    var skipsSharedPadding = true
    /// Whether evaluation's recurrences run their forward-only loops (`RecurrentLayer.forwardOnly`:
    /// the LSTM's and the GRU's in C where the CPU has AVX2 and FMA); results do not depend on it.
    var fusedInference = true
    /// Whether the cells' gate loops run in C where the CPU has AVX2 and FMA (`RecurrentLayer.gatesInC`);
    /// results do not depend on it.
    var gateLoopsInC = true
    /// Row k − 1: every recurrent layer's state (`RecurrentLayer.carriedStateWidth` each, in layer
    /// order) after k steps of padding, for k = 1… as far as evaluation needed (`enterAfterPadding`).
    private var paddingTrajectory: [Float] = []
    /// `logits`' rows of one chunk, kept from call to call (evaluation calls it once per group).
    private var logitsChunk = Int32Buffer(count: 0)

    /// A model with freshly initialised weights (Keras's initializers, seeded: the same seed gives
    /// the same weights in every process).
    /// - Parameters:
    ///   - config: the layers and the head (validated: `ModelConfig.validate`).
    ///   - seed: weight seed; each tensor draws from its own stream of it.
    public init(config: ModelConfig, seed: UInt64) {
        self.config = config
        parameters = config.parameterTable
        let total = parameters.last.map { $0.offset + $0.count } ?? 0
        storedWeights = [Float](repeating: 0, count: total)
        gradients = [Float](repeating: 0, count: total)
        head = config.head.head(width: config.outputWidth)
        usesDropout = config.usesDropout
        var built: [any Layer] = []
        var views = parameters[...]
        var shape = config.inputShape, kinds: [String: Int] = [:]
        for spec in config.layers.map(\.specification) {
            let count = spec.parameters(input: shape).count
            let kind = type(of: spec).type
            built.append(spec.makeLayer(input: shape, tensors: Array(views.prefix(count)), previous: built.last,
                                        index: kinds[kind, default: 0]))
            views = views.dropFirst(count)
            kinds[kind, default: 0] += 1
            shape = spec.output(from: shape) ?? shape
        }
        layers = built
        guard let first = built.first as? EmbeddingLookup else { preconditionFailure("Model: the first layer must be an Embedding") }
        embedding = first
        // A layer that projects the embedding's rows itself (a recurrent or convolution layer right
        // after it) set their width when it was made; without one the embedding hands on the sequence.
        first.materializes = first.projectionWidth == 0
        first.trainable = config.embeddingTrainable
        initializeWeights(seed: seed)
    }

    /// Overwrites `weights` with a fresh initialisation from `seed` (parameter k uses stream k).
    func initializeWeights(seed: UInt64) {
        weights.withUnsafeMutableBufferPointer { w in
            for (k, view) in parameters.enumerated() {
                var generator = SeededGenerator(seed: seed, stream: UInt64(k))
                let slice = UnsafeMutableBufferPointer(rebasing: w[view.range])
                view.initializer.fill(slice, shape: view.shape, generator: &generator)
            }
        }
    }

    /// The view of Keras tensor `layerName/vars/varIndex`, if the model has it.
    func parameter(layer layerName: String, index varIndex: Int) -> ParameterView? {
        parameters.first { $0.layerName == layerName && $0.varIndex == varIndex }
    }

    /// Sets every gradient to zero (once per optimizer step; backward only adds).
    public func zeroGradients() {
        gradients.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        clearTouchedRows()
    }

    /// `zeroGradients` for a gradient that only `accumulateGradients` has added to since the last
    /// `zeroGradients`: zeroes the embedding rows those batches touched and every other parameter,
    /// not the untouched rows (already zero). Between the chunks of a reproducible step it saves a
    /// pass over the whole V × E table per chunk.
    public func zeroAccumulatedGradients() {
        let e = embedding.embeddings.range, width = embedding.width
        gradients.withUnsafeMutableBufferPointer { g in
            for v in touchedList { (g.baseAddress! + e.lowerBound + Int(v) * width).update(repeating: 0, count: width) }
            UnsafeMutableBufferPointer(rebasing: g[e.upperBound...]).update(repeating: 0)
        }
        clearTouchedRows()
    }

    /// The embedding rows the batches since `zeroGradients` touched, in the order first touched.
    public var touchedEmbeddingRows: [Int32] { touchedList }

    /// (V) 1 for each embedding row some batch since `zeroGradients` touched (allocated on first
    /// use), and those rows. Not a `lazy var`: writing an element of one copied the whole array
    /// (its getter hands out a second reference), V bytes per newly touched row.
    private var touched: [UInt8] = []
    private var touchedList: [Int32] = []

    private func clearTouchedRows() {
        touched.withUnsafeMutableBufferPointer { t in
            for v in touchedList { t[Int(v)] = 0 }
        }
        touchedList.removeAll(keepingCapacity: true)
    }

    /// Sets `rows[v] = 1` (V bytes) for each embedding row whose gradient the batches accumulated
    /// since `zeroGradients` touched; every other row of the embedding gradient is exactly zero.
    public func markTouchedEmbeddingRows(_ rows: inout [UInt8]) {
        precondition(rows.count == embedding.numWords, "markTouchedEmbeddingRows: \(rows.count) flags for V = \(embedding.numWords)")
        for v in touchedList { rows[Int(v)] = 1 }
    }

    /// Adds the rows the last batch touched to `touched`.
    private func recordTouchedRows() {
        if touched.isEmpty { touched = [UInt8](repeating: 0, count: embedding.numWords) }
        var list = touchedList
        touchedList = []
        touched.withUnsafeMutableBufferPointer { t in
            embedding.forEachUsedRow { v in
                if t[v] == 0 {
                    t[v] = 1
                    list.append(Int32(v))
                }
            }
        }
        touchedList = list
    }

    /// The trainer's exchange behind backward: while set, training passes report the embedding rows
    /// as they become final in the first layer's BPTT, when `reportsEmbeddingRowsDuringBackward`.
    public var backwardObserver: BackwardObserver?

    /// Whether training passes can report final embedding rows during backward: a trainable embedding
    /// whose rows the next layer projects, that layer a recurrent one reading forward in time in one
    /// direction (not Bidirectional, not go_backwards) without input dropout.
    public var reportsEmbeddingRowsDuringBackward: Bool {
        guard embedding.trainable, !embedding.materializes, layers.count > 1,
              let first = layers[1] as? Recurrent else { return false }
        return !first.spec.bidirectional && !first.spec.goBackwards && first.spec.dropout == 0
    }

    /// Where the embedding gradient (V × E, row-major) sits in `gradients`.
    public var embeddingRange: Range<Int> { embedding.embeddings.range }

    // MARK: - Forward and backward

    /// Runs every layer on x (B, T) and returns the logits (B, K). In evaluation (`inference`) the
    /// steps run in blocks whose activations stay in the CPU's caches, each continuing from the
    /// state the previous one left, when every layer allows it; layers after the sequence is
    /// reduced to a vector run once, on the last block.
    private func forward(_ x: UnsafeBufferPointer<Int32>, _ p: Pass) -> UnsafePointer<Float> {
        var pass = p
        let block = p.inference ? min(p.totalSteps, inferenceBlockSteps) : p.totalSteps
        inputs.removeAll(keepingCapacity: true)
        passes.removeAll(keepingCapacity: true)
        var a = Activation.tokens(x)
        if p.inference && p.start > 0 {                 // the padding skipped (`logits`)
            pass.reversedPrefix = p.start
            pass.prefixBlock = block
        }
        while pass.start < p.totalSteps {
            pass.steps = min(block, p.totalSteps - pass.start)
            a = forwardBlock(x, pass)
            pass.start += pass.steps
            pass.reversedPrefix = 0
        }
        guard case .vector(let z) = a else { preconditionFailure("Model: the last layer must output a vector") }
        return z
    }

    /// The layers on one block of steps (evaluation) or on the whole batch (training, which records
    /// each layer's input and pass for backward). A block that another follows stops at the
    /// sequence's reduction: the rest waits for the last block.
    private func forwardBlock(_ x: UnsafeBufferPointer<Int32>, _ pass: Pass) -> Activation {
        var a = Activation.tokens(x), layerPass = pass
        for layer in layers {
            if case .vector = a, pass.continues { break }
            layer.reserve(layerPass)
            if !pass.inference { inputs.append(a); passes.append(layerPass) }
            a = layer.forward(a, layerPass)
            if !pass.inference {                                   // blocked layers keep T
                layerPass.steps = layer.outputSteps(layerPass.steps)
                layerPass.totalSteps = layerPass.steps
            }
        }
        return a
    }

    /// Forward and backward on one batch: ADDS Σ over the batch of per-sample gradients to
    /// `gradients` (not the mean — the caller divides by the global batch size after reducing).
    /// - Parameters:
    ///   - x: token ids (B, T), batch-major, each in 0..<V (a precondition: validate data when loading it).
    ///   - y: labels (B), class indices.
    ///   - batch: B; T = x.count / B.
    ///   - dropout: the batch's mask key (training); nil runs without dropout whatever the config says.
    /// - Returns: the batch's loss sum and correct count (before the update).
    @discardableResult
    func accumulateGradients(x: UnsafeBufferPointer<Int32>, y: UnsafeBufferPointer<Float>,
                                    batch: Int, dropout: DropoutKey? = nil) -> BatchStats {
        guard batch > 0 else { return .zero }
        precondition(y.count == batch && x.count % batch == 0 && x.count > 0,
                     "accumulateGradients: \(x.count) ids and \(y.count) labels for batch \(batch)")
        precondition(dropout.map { $0.positions.count == batch } ?? true,
                     "accumulateGradients: the dropout key has \(dropout?.positions.count ?? 0) positions for batch \(batch)")
        let masks = dropout != nil && usesDropout
        if let key = dropout, masks {
            for layer in layers { layer.drawMasks(key: key) }
        }
        setMasks(active: masks)
        defer { setMasks(active: false) }
        let stats = runForwardBackward(x: x, y: y, batch: batch, masks: masks)
        recordTouchedRows()
        return stats
    }

    /// Turns the drawn (or test-set) masks on or off for the following passes.
    func setMasks(active: Bool) {
        for layer in layers { layer.setMasks(active: active) }
    }

    /// Forward and backward with whatever masks are active (tests hold masks fixed through this).
    func runForwardBackward(x: UnsafeBufferPointer<Int32>, y: UnsafeBufferPointer<Float>, batch: Int,
                            masks: Bool) -> BatchStats {
        weights.withUnsafeBufferPointer { wBuffer in
            gradients.withUnsafeMutableBufferPointer { gBuffer in
                var p = Pass(batch: batch, steps: x.count / batch, weights: wBuffer.baseAddress!)
                p.masks = masks
                p.gateLoopsInC = gateLoopsInC
                if reportsEmbeddingRowsDuringBackward { p.observer = backwardObserver }
                let z = forward(x, p)
                let stats = head.statistics(logits: z, labels: y)
                dLogits = dLogits.ensuring(batch * head.outputs)
                head.backward(logits: z, labels: y, into: dLogits.pointer)
                var d: UnsafePointer<Float>? = UnsafePointer(dLogits.pointer)
                for i in layers.indices.reversed() {
                    guard let dOutput = d else { break }
                    d = layers[i].backward(dOutput, input: inputs[i], passes[i], gradients: gBuffer.baseAddress!)
                }
                return stats
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

    /// Loss and accuracy summed over `rows` samples (x is (rows, T)), in chunks of `batchSize`.
    func evaluate(x: [Int32], y: [Float], rows: Int, batchSize: Int = 128) -> BatchStats {
        precondition(rows >= 0 && y.count == rows && (rows == 0 || x.count % rows == 0) && batchSize > 0,
                     "evaluate: \(x.count) ids and \(y.count) labels for \(rows) rows")
        let z = logits(x: x, batch: rows, batchSize: batchSize), K = head.outputs
        var total = BatchStats.zero
        z.withUnsafeBufferPointer { zp in
            y.withUnsafeBufferPointer { yp in
                for start in stride(from: 0, to: rows, by: batchSize) {
                    let labels = UnsafeBufferPointer(rebasing: yp[start..<min(rows, start + batchSize)])
                    total += head.statistics(logits: zp.baseAddress! + start * K, labels: labels)
                }
            }
        }
        return total
    }

    /// Logits (rows, K) for x (rows, T), forward only, in chunks of `batchSize` rows. When every
    /// layer runs in blocks, the layers first compute what is fixed for the whole evaluation (the
    /// vocabulary's projection table: one GEMM instead of a lookup and a GEMM per chunk).
    ///
    /// Rows padded at the front (`prepare` pads with token 0 before the text, as Keras's
    /// `pad_sequences`) share their state up to where their text starts: when the layers up to the
    /// sequence's reduction are causal (`Layer.causal`), the rows are taken in order of their leading
    /// padding, and each chunk's recurrence starts at the chunk's shortest padding from the state two
    /// rows of padding reach there, instead of computing that state for every row (on the IMDB test
    /// reviews 57% of all steps). A bidirectional reduction's forward direction skips too; its
    /// backward direction, which reads the padding last, first runs the skipped steps
    /// (`Pass.reversedPrefix`). Each row's logits are the same bits either way where a row of a
    /// matrix product does not depend on how many rows share it (rnn-dist's own kernel for the
    /// products it takes, `BLAS.ownKernel`; OpenBLAS's SkylakeX and Cooperlake kernels); on
    /// OpenBLAS's Haswell kernel they can differ in the last bits. Either way a row's logits
    /// depend only on the rows of the call, never on anything else: `Evaluator` fixes which rows
    /// share a call, so evaluation stays the same bits at any number of ranks.
    /// - Parameters:
    ///   - batch: the number of rows in x; T = x.count / batch.
    public func logits(x: [Int32], batch rows: Int, batchSize: Int = 128) -> [Float] {
        precondition(rows >= 0 && (rows == 0 || (x.count % rows == 0 && x.count > 0)) && batchSize > 0,
                     "logits: \(x.count) ids for \(rows) rows")
        guard rows > 0 else { return [] }
        let steps = x.count / rows, K = head.outputs
        let blocked = layers.allSatisfy(\.runsInBlocks)
        let skipping = blocked && skipsSharedPadding && steps > 1 && causalUpToReduction
        var out = [Float](repeating: 0, count: rows * K)
        // Rows by leading padding, most first; each chunk skips its last row's padding.
        let leads = skipping ? (0..<rows).map { r in x[(r * steps)..<((r + 1) * steps)].prefix { $0 == 0 }.count } : []
        let order = skipping ? (0..<rows).sorted { leads[$0] > leads[$1] || (leads[$0] == leads[$1] && $0 < $1) } : Array(0..<rows)
        logitsChunk = logitsChunk.ensuring(min(batchSize, rows) * steps)
        let chunk = logitsChunk.pointer
        x.withUnsafeBufferPointer { xp in
            weights.withUnsafeBufferPointer { w in
                if blocked && !inferenceReady {
                    for layer in layers { layer.prepareInference(weights: w.baseAddress!) }
                    paddingTrajectory = []
                    inferenceReady = true
                }
                var start = 0
                while start < rows {
                    let n = min(batchSize, rows - start), members = order[start..<(start + n)]
                    for (i, r) in members.enumerated() { (chunk + i * steps).update(from: xp.baseAddress! + r * steps, count: steps) }
                    var p = Pass(batch: n, steps: steps, weights: w.baseAddress!)
                    p.inference = blocked
                    p.fusedInference = fusedInference
                    p.gateLoopsInC = gateLoopsInC
                    p.start = skipping ? min(leads[members.last!], steps - 1) : 0
                    if p.start > 0 { enterAfterPadding(steps: p.start, of: steps, batch: n, weights: w.baseAddress!) }
                    let z = forward(UnsafeBufferPointer(start: chunk, count: n * steps), p)
                    for (i, r) in members.enumerated() {
                        for k in 0..<K { out[r * K + k] = z[i * K + k] }
                    }
                    start += n
                }
            }
        }
        return out
    }

    /// Whether every layer up to the one that reduces the sequence to a vector (a recurrent layer
    /// returning its last step) is causal, so that rows agreeing on their first steps share state.
    /// A bidirectional reduction qualifies when it runs in blocks: its forward direction skips the
    /// padding, its backward direction catches up on it (`Pass.reversedPrefix`).
    private var causalUpToReduction: Bool {
        for layer in layers {
            if let recurrent = layer as? Recurrent, !recurrent.spec.returnSequences {
                return recurrent.causal || recurrent.catchesUpReversed
            }
            guard layer.causal else { return false }
        }
        return false
    }

    /// Sets every recurrent layer's carried state, for `batch` rows, to the state after `steps` steps
    /// of padding (< T): what a chunk whose rows all start with that much padding continues from.
    /// The states come from `paddingTrajectory`, computed first (up to T − 1 steps) if it is shorter:
    /// two rows of padding run step by step, in evaluation's blocks of one step, up to the
    /// sequence's reduction (any block length gives the same bits: `ForwardTests`).
    private func enterAfterPadding(steps: Int, of totalSteps: Int, batch: Int, weights w: UnsafePointer<Float>) {
        let recurrent = layers.compactMap { $0 as? Recurrent }
        let width = recurrent.reduce(0) { $0 + $1.carriedStateWidth }
        if paddingTrajectory.count < steps * width {
            // From scratch (the cells' kept state is a chunk's by now).
            let total = max(totalSteps, steps + 1), computed = total - 1
            var trajectory = [Float](repeating: 0, count: computed * width)
            let padding = [Int32](repeating: 0, count: 2 * total)
            var pass = Pass(batch: 2, steps: 1, weights: w)
            pass.totalSteps = total
            pass.inference = true
            pass.fusedInference = fusedInference
            pass.gateLoopsInC = gateLoopsInC
            padding.withUnsafeBufferPointer { tokens in
                trajectory.withUnsafeMutableBufferPointer { out in
                    for k in 0..<computed {
                        pass.start = k
                        _ = forwardBlock(tokens, pass)    // pass.continues: each layer keeps its final state
                        var offset = k * width
                        for layer in recurrent {
                            layer.copyCarriedRow(into: out.baseAddress! + offset)
                            offset += layer.carriedStateWidth
                        }
                    }
                }
            }
            paddingTrajectory = trajectory
        }
        paddingTrajectory.withUnsafeBufferPointer { states in
            var offset = (steps - 1) * width
            for layer in recurrent {
                layer.fillCarriedState(from: states.baseAddress! + offset, batch: batch)
                offset += layer.carriedStateWidth
            }
        }
    }

    /// Probabilities σ(z) (rows) for x (rows, T) of a sigmoid head, in chunks of `batchSize` rows.
    func predict(x: [Int32], batch rows: Int, batchSize: Int = 128) -> [Float] {
        logits(x: x, batch: rows, batchSize: batchSize).map(SigmoidHead.probability)
    }
}
