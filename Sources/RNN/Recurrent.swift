// A recurrent layer as the model sees it: SimpleRNN, LSTM or GRU (the cell), alone or wrapped in
// Keras's `Bidirectional` (merge mode concat: [forward | backward], the backward direction's
// sequence flipped back to time order), returning the whole sequence or only its last step, with
// Keras's dropout masks while training.
//
// Shape letters: B batch, T time steps, I input width, H units, D = H or 2H (bidirectional).

import BLAS

final class Recurrent: Layer {
    let spec: RecurrentSpec
    /// One direction, or [forward, backward] when bidirectional.
    let directions: [LayerDirection]
    /// Per direction, the whole vocabulary's projection through its kernel (V × G), when the input
    /// is the embedding's rows: blocked evaluation copies rows of it (`prepareInference`).
    private var inferenceTables: [FloatBuffer] = []
    /// Whether the current pass applies the input masks (a training batch with dropout > 0).
    private var inputMasks = false
    /// Bidirectional: (T, B, 2H) or (B, 2H), the concatenated output.
    private var output = FloatBuffer(count: 0)
    /// ∂loss/∂(the input sequence) (T, B, I), when the input is a sequence.
    private var dInput = FloatBuffer(count: 0)

    /// - Parameters:
    ///   - index: the layer's place among the model's recurrent layers (part of the masks' key).
    ///   - tensors: each direction's kernel, recurrent kernel and bias, in the parameter table's order.
    init(spec: RecurrentSpec, index: Int, inputSize: Int, tensors: [ParameterView], readsEmbedding: Bool) {
        self.spec = spec
        let n = spec.useBias ? 3 : 2
        directions = (0..<(spec.bidirectional ? 2 : 1)).map { d in
            let cell = makeRecurrentLayer(kind: spec.kind, inputSize: inputSize, units: spec.units, kernel: tensors[n * d],
                                          recurrentKernel: tensors[n * d + 1], bias: spec.useBias ? tensors[n * d + 2] : nil,
                                          resetAfter: spec.resetAfter)
            return LayerDirection(cell: cell, layer: index, direction: d, spec: spec, readsEmbedding: readsEmbedding)
        }
    }

    /// A bidirectional layer's backward direction (and a go_backwards layer) starts from the
    /// sequence's end: it runs in blocks when it reads the tokens (its blocks then read them from
    /// the end) and hands on only its final state (no sequence a following layer would need in
    /// time order before the last block).
    var runsInBlocks: Bool {
        (!spec.bidirectional && !spec.goBackwards) || (!spec.returnSequences && directions[0].readsEmbedding)
    }

    /// One direction reading forward in time (a backward direction starts from the sequence's end).
    var causal: Bool { !spec.bidirectional && !spec.goBackwards }

    /// Bidirectional, reading the embedding's rows, returning no sequence: in blocked evaluation
    /// its forward direction can start after the shared padding while the backward direction runs
    /// the skipped steps first (`Pass.reversedPrefix`).
    var catchesUpReversed: Bool { spec.bidirectional && !spec.goBackwards && runsInBlocks }

    /// Floats of one row's kept state over the directions (`keepFinalState`).
    var carriedStateWidth: Int { directions.reduce(0) { $0 + $1.cell.carriedStateWidth } }

    /// Row 0 of each direction's kept state, one after the other (`Model.logits`).
    func copyCarriedRow(into p: UnsafeMutablePointer<Float>) {
        var offset = 0
        for d in directions {
            d.cell.copyCarriedRow(into: p + offset)
            offset += d.cell.carriedStateWidth
        }
    }

    /// Makes a `copyCarriedRow` the kept state of rows 0..<batch.
    func fillCarriedState(from p: UnsafePointer<Float>, batch: Int) {
        var offset = 0
        for d in directions {
            d.cell.fillCarriedState(from: p + offset, batch: batch)
            offset += d.cell.carriedStateWidth
        }
    }

    func reserve(_ p: Pass) {
        let D = spec.outputWidth
        let steps = p.reversedPrefix > 0 ? max(p.steps, min(p.prefixBlock, p.reversedPrefix)) : p.steps
        for d in directions {
            d.reserve(batch: p.batch, steps: steps, inputMasks: p.masks && spec.dropout > 0,
                      recurrentMasks: p.masks && spec.recurrentDropout > 0, bidirectional: spec.bidirectional)
        }
        if spec.bidirectional { output = output.ensuring((spec.returnSequences ? p.steps : 1) * p.batch * D) }
        if !directions[0].readsEmbedding { dInput = dInput.ensuring(p.steps * p.batch * directions[0].cell.inputSize) }
    }

    func drawMasks(key: DropoutKey) {
        for d in directions { d.drawMasks(key: key) }
    }

    func setMasks(active: Bool) {
        inputMasks = active && spec.dropout > 0
        for d in directions { d.setMasks(active: active) }
    }

    func prepareInference(weights w: UnsafePointer<Float>) {
        guard directions[0].readsEmbedding, let embedding = embeddingInput else { return }
        if inferenceTables.count != directions.count { inferenceTables = directions.map { _ in FloatBuffer(count: 0) } }
        for (k, d) in directions.enumerated() {
            inferenceTables[k] = embedding.fullTable(weights: w, layer: d.cell, into: inferenceTables[k])
        }
    }

    /// The embedding whose rows this layer projects (set where the model pairs them).
    weak var embeddingInput: EmbeddingLookup?

    func forward(_ input: Activation, _ p: Pass) -> Activation {
        for (k, d) in directions.enumerated() {
            d.cell.forwardOnly = p.inference && p.fusedInference
            d.cell.gatesInC = p.gateLoopsInC && gateLoopsSupported
            switch input {
            case .embedded(let e) where p.inference:
                let table = inferenceTables[k].pointer
                func rows(from t0: Int, count n: Int) -> ProjectionRows {
                    e.tableRows(tokens: e.currentTokens, batch: p.batch, steps: p.totalSteps, table: table, layer: d.cell,
                                from: t0, count: n, reversed: d.reversed)
                }
                if d.reversed && p.reversedPrefix > 0 {
                    // The steps before this block, from the sequence's end (the text, then the padding
                    // the forward direction skipped), from a zero state; the block then continues.
                    var s = 0
                    while s < p.reversedPrefix {
                        let n = min(max(p.prefixBlock, 1), p.reversedPrefix - s)
                        d.cell.projectionRows = rows(from: s, count: n)
                        d.cell.forward(weights: p.weights, batch: p.batch, steps: n, carry: s > 0)
                        d.cell.keepFinalState(batch: p.batch, steps: n)
                        s += n
                    }
                }
                d.cell.projectionRows = rows(from: p.start, count: p.steps)
            case .embedded(let e):
                d.forwardFromEmbedding(e, tokens: e.currentTokens, batch: p.batch, steps: p.steps, weights: p.weights,
                                       masks: inputMasks)
            case .sequence(let x):
                d.forwardFromSequence(x, batch: p.batch, steps: p.steps, weights: p.weights, masks: inputMasks)
            default:
                preconditionFailure("\(spec.kind.rawValue): the input must be a sequence")
            }
            d.cell.forward(weights: p.weights, batch: p.batch, steps: p.steps, carry: p.carry)
            d.cell.projectionRows = nil
            if p.continues { d.cell.keepFinalState(batch: p.batch, steps: p.steps) }
        }
        let BH = p.batch * spec.units
        guard spec.bidirectional else {
            let h = UnsafePointer(directions[0].cell.outputs)
            return spec.returnSequences ? .sequence(h) : .vector(h + (p.steps - 1) * BH)
        }
        concatenate(batch: p.batch, steps: p.steps)
        return spec.returnSequences ? .sequence(UnsafePointer(output.pointer)) : .vector(UnsafePointer(output.pointer))
    }

    /// [forward | backward] with the backward direction's sequence flipped back to time order; a
    /// layer that returns no sequence keeps each direction's final outputs (the backward one's
    /// after reading x_0).
    private func concatenate(batch: Int, steps: Int) {
        let H = spec.units, D = 2 * H, BH = batch * H
        let forward = directions[0].cell.outputs, backward = directions[1].cell.outputs
        let out = output.pointer
        guard spec.returnSequences else {
            for b in 0..<batch {
                (out + b * D).update(from: forward + (steps - 1) * BH + b * H, count: H)
                (out + b * D + H).update(from: backward + (steps - 1) * BH + b * H, count: H)
            }
            return
        }
        for t in 0..<steps {
            for b in 0..<batch {
                let row = out + (t * batch + b) * D
                row.update(from: forward + t * BH + b * H, count: H)
                (row + H).update(from: backward + (steps - 1 - t) * BH + b * H, count: H)
            }
        }
    }

    func backward(_ dOutput: UnsafePointer<Float>, input: Activation, _ p: Pass,
                  gradients dw: UnsafeMutablePointer<Float>) -> UnsafePointer<Float>? {
        if spec.bidirectional { splitGradient(dOutput, batch: p.batch, steps: p.steps) }
        if case .sequence(let x) = input, !inputMasks {
            for (k, d) in directions.enumerated() { d.beginBackwardToSequence(x, dInput: dInput.pointer, accumulate: k > 0) }
        }
        // Each direction's input backward follows its own BPTT: over the embedding, the directions
        // share the lookup's table, which each one's BPTT fills.
        for (k, d) in directions.enumerated() {
            if case .embedded(let e) = input, !inputMasks {
                d.beginBackwardToEmbedding(e, batch: p.batch, steps: p.steps, weights: p.weights, observer: p.observer)
            }
            d.cell.backward(weights: p.weights, gradients: dw, dOutputs: spec.bidirectional ? UnsafePointer(d.dOutputs) : dOutput,
                            sequence: spec.returnSequences, batch: p.batch, steps: p.steps)
            switch input {
            case .embedded(let e):
                d.backwardToEmbedding(e, batch: p.batch, steps: p.steps, weights: p.weights, gradients: dw, masks: inputMasks)
            case .sequence(let x):
                d.backwardToSequence(x, dInput: dInput.pointer, accumulate: k > 0, batch: p.batch, steps: p.steps,
                                     weights: p.weights, gradients: dw, masks: inputMasks)
            default:
                preconditionFailure("\(spec.kind.rawValue): the input must be a sequence")
            }
        }
        if case .sequence = input { return UnsafePointer(dInput.pointer) }
        return nil
    }

    /// Splits ∂loss/∂(the concatenated output) into each direction's ∂loss/∂(its own outputs), in
    /// the direction's own step order: (B, 2H) → 2 × (B, H), or (T, B, 2H) → 2 × (T, B, H).
    private func splitGradient(_ d: UnsafePointer<Float>, batch: Int, steps: Int) {
        let H = spec.units, D = 2 * H, BH = batch * H
        for (k, direction) in directions.enumerated() {
            let out = direction.dOutputs
            guard spec.returnSequences else {
                for b in 0..<batch { (out + b * H).update(from: d + b * D + k * H, count: H) }
                continue
            }
            for t in 0..<steps {
                let source = k == 0 ? t : steps - 1 - t
                for b in 0..<batch {
                    (out + t * BH + b * H).update(from: d + (source * batch + b) * D + k * H, count: H)
                }
            }
        }
    }
}

/// Keras `SimpleRNN`, `LSTM` or `GRU` (default activations), optionally in `Bidirectional` (concat).
public struct RecurrentSpec: LayerSpecification {
    public internal(set) var kind: ModelConfig.Kind
    /// H.
    public internal(set) var units: Int
    /// Whether the layer outputs every step's h (T, D) or only the last (D).
    public internal(set) var returnSequences: Bool
    /// Keras `Bidirectional(layer)`, merge mode "concat".
    public internal(set) var bidirectional: Bool
    /// Keras `dropout`: the rate of the inverted-dropout masks on the layer's input, in [0, 1).
    var dropout: Double
    /// Keras `recurrent_dropout`: the rate of the masks on h_{t−1}, in [0, 1).
    var recurrentDropout: Double
    /// GRU only: Keras 3's `reset_after=True`, or Keras 2's reset-before GRU (bias (3H,)).
    public internal(set) var resetAfter: Bool
    /// Keras `go_backwards` (not bidirectional): reads x_{T−1} first; a returned sequence stays in
    /// that reading order, and the last step's output is the one after reading x_0.
    public internal(set) var goBackwards: Bool
    /// Keras `use_bias` (false: no bias tensor; the gates read zeros).
    public internal(set) var useBias: Bool

    init(kind: ModelConfig.Kind, units: Int, returnSequences: Bool = false, bidirectional: Bool = false,
                dropout: Double = 0, recurrentDropout: Double = 0, resetAfter: Bool = true, goBackwards: Bool = false,
                useBias: Bool = true) {
        self.useBias = useBias
        self.kind = kind
        self.units = units
        self.returnSequences = returnSequences
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.recurrentDropout = recurrentDropout
        self.resetAfter = resetAfter
        self.goBackwards = goBackwards
    }

    private enum CodingKeys: String, CodingKey {
        case kind, units, returnSequences = "return_sequences", bidirectional, dropout
        case recurrentDropout = "recurrent_dropout", resetAfter = "reset_after", goBackwards = "go_backwards", useBias = "use_bias"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(ModelConfig.Kind.self, forKey: .kind)
        units = try c.decode(Int.self, forKey: .units)
        returnSequences = try c.decode(Bool.self, forKey: .returnSequences)
        bidirectional = try c.decode(Bool.self, forKey: .bidirectional)
        dropout = try c.decode(Double.self, forKey: .dropout)
        recurrentDropout = try c.decode(Double.self, forKey: .recurrentDropout)
        resetAfter = try c.decode(Bool.self, forKey: .resetAfter)
        goBackwards = try c.decodeIfPresent(Bool.self, forKey: .goBackwards) ?? false
        useBias = try c.decodeIfPresent(Bool.self, forKey: .useBias) ?? true
    }

    /// `go_backwards` and `use_bias` are written only when not Keras's defaults, so other configs read as before.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(units, forKey: .units)
        try c.encode(returnSequences, forKey: .returnSequences)
        try c.encode(bidirectional, forKey: .bidirectional)
        try c.encode(dropout, forKey: .dropout)
        try c.encode(recurrentDropout, forKey: .recurrentDropout)
        try c.encode(resetAfter, forKey: .resetAfter)
        if goBackwards { try c.encode(true, forKey: .goBackwards) }
        if !useBias { try c.encode(false, forKey: .useBias) }
    }

    /// D: H, or 2H when bidirectional.
    var outputWidth: Int { (bidirectional ? 2 : 1) * units }
    /// Input masks per sample of one direction: one per gate when recurrent dropout is on (Keras's
    /// implementation 1), else one shared by all gates; SimpleRNN always one.
    var inputMaskCount: Int { recurrentDropout > 0 ? kind.gateCount : 1 }

    static let type = "recurrent"
    var kerasBaseName: String { bidirectional ? "bidirectional" : kind.kerasName }
    var kerasClassName: String {
        bidirectional ? "Bidirectional" : kind == .simpleRNN ? "SimpleRNN" : kind == .lstm ? "LSTM" : "GRU"
    }
    var wrappedBaseName: String? { bidirectional ? kind.kerasName : nil }
    var label: String { (bidirectional ? "bidirectional " : "") + "\(kind.rawValue)(\(units))" + (goBackwards ? " backwards" : "") + (useBias ? "" : " no bias") }

    func output(from shape: Shape) -> Shape? {
        guard case .sequence(_, let steps) = shape else { return nil }
        return returnSequences ? .sequence(outputWidth, steps: steps) : .vector(outputWidth)
    }

    /// Kernel, recurrent kernel, bias; the forward layer's then the backward layer's when bidirectional.
    func parameters(input shape: Shape) -> [LayerParameter] {
        guard case .sequence(let input, _) = shape else { return [] }
        let h = units, g = kind.gateCount * h
        let bias: LayerParameter
        switch kind {
        case .simpleRNN: bias = LayerParameter(index: 2, name: "bias", shape: [h], cell: true, initializer: .zeros)
        case .lstm: bias = LayerParameter(index: 2, name: "bias", shape: [4 * h], cell: true, initializer: .lstmBias(units: h))
        case .gru: bias = LayerParameter(index: 2, name: "bias", shape: resetAfter ? [2, 3 * h] : [3 * h], cell: true, initializer: .zeros)
        }
        let cell = [LayerParameter(index: 0, name: "kernel", shape: [input, g], cell: true, initializer: .glorotUniform),
                    LayerParameter(index: 1, name: "recurrent_kernel", shape: [h, g], cell: true, initializer: .orthogonal(gain: 1))]
            + (useBias ? [bias] : [])
        guard bidirectional else { return cell }
        return ["forward_layer", "backward_layer"].flatMap { side in cell.map { var p = $0; p.sublayer = side; return p } }
    }

    func validate() throws {
        try ModelConfigError.check("units", units, ModelConfig.maxWidth)
        for (name, rate) in [("dropout", dropout), ("recurrent_dropout", recurrentDropout)] where !ModelConfigError.isRate(rate) {
            throw ModelConfigError.badRate(name: name, value: rate)
        }
        if !resetAfter && kind != .gru { throw ModelConfigError.resetAfterNeedsGRU }
        if goBackwards && bidirectional { throw ModelConfigError.badStack("go_backwards applies to a layer outside Bidirectional") }
    }

    /// The one place the fused (Embedding, recurrent) projection is chosen: a recurrent layer right
    /// after the embedding projects the batch's distinct rows itself.
    func makeLayer(input: Shape, tensors: [ParameterView], previous: (any Layer)?, index: Int) -> any Layer {
        guard case .sequence(let width, _) = input else { preconditionFailure("\(label): the input must be a sequence") }
        let embedding = previous as? EmbeddingLookup
        let layer = Recurrent(spec: self, index: index, inputSize: width, tensors: tensors, readsEmbedding: embedding != nil)
        layer.embeddingInput = embedding
        embedding?.projectionWidth = layer.directions[0].cell.gateWidth
        return layer
    }
}
