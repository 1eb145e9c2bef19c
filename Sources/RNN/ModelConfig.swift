// The model's description: a list of layer specs and a head (Keras's `Sequential` and its loss), and
// the parameter table it implies: where each Keras weight lives in the one flat parameter buffer.
//
// Shape letters: V vocabulary size, E embedding width, H units, G = gates × H, D a layer's output
// width (H, or 2H when bidirectional), K the head's outputs.

/// Embedding → layers → Dense → head, as a list. The book's IMDB classifiers of chapters 6.2 and 6.3
/// are `Preset`s, built into this form (Preset.swift).
public struct ModelConfig: Codable, Hashable, Sendable {
    /// The layers in order; the first reads token ids, the last feeds the head.
    var layers: [LayerSpec]
    /// The output activation, loss and decision rule on the last layer's output.
    var head: HeadSpec

    init(layers: [LayerSpec], head: HeadSpec = .sigmoid) {
        self.layers = layers
        self.head = head
    }

    /// The recurrent cell of a recurrent layer.
    public enum Kind: String, Codable, CaseIterable, Sendable {
        case simpleRNN = "simple-rnn"
        case lstm
        case gru

        /// Keras's snake_case layer name ("simple_rnn", "lstm", "gru"); a second layer gets "_1", …
        var kerasName: String {
            switch self {
            case .simpleRNN: return "simple_rnn"
            case .lstm: return "lstm"
            case .gru: return "gru"
            }
        }

        /// Number of gate blocks in the kernel's columns: 1 (SimpleRNN), 4 (LSTM i,f,c,o), 3 (GRU z,r,h).
        var gateCount: Int {
            switch self {
            case .simpleRNN: return 1
            case .lstm: return 4
            case .gru: return 3
            }
        }
    }

    private enum CodingKeys: String, CodingKey { case layers, head, kind }

    /// Files written before 2026-12-04 hold the preset's fields ("kind", "units", …): converted here.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if c.contains(.kind) {
            self = try Preset(from: decoder).config
            return
        }
        layers = try c.decode([LayerSpec].self, forKey: .layers)
        head = try c.decode(HeadSpec.self, forKey: .head)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(layers, forKey: .layers)
        try c.encode(head, forKey: .head)
    }

    /// V: the embedding's vocabulary (token ids are 0..<V); 0 without an embedding.
    public var vocabularySize: Int {
        if case .embedding(let e)? = layers.first { return e.inputDim }
        return 0
    }

    /// E: the embedding's width; 0 without an embedding.
    public var embeddingWidth: Int {
        if case .embedding(let e)? = layers.first { return e.outputDim }
        return 0
    }

    /// The recurrent layers, in order.
    var recurrentLayers: [RecurrentSpec] {
        layers.compactMap { if case .recurrent(let r) = $0 { return r } else { return nil } }
    }

    /// Whether training draws dropout masks at all.
    var usesDropout: Bool { recurrentLayers.contains { $0.dropout > 0 || $0.recurrentDropout > 0 } }

    /// The model in a few words for banners, titles and summaries: a preset's ("bidirectional gru
    /// (reset before), dropout 0.2"), else the layers ("embedding, lstm(32), dense(1)").
    public var label: String {
        preset?.label ?? layers.map(\.label).joined(separator: ", ")
    }

    /// Limits that keep every buffer size far inside `Int` and memory (sizes may come from files).
    public static let maxNumWords = 10_000_000
    static let maxWidth = 65_536
    static let maxLayers = 64
    /// The most parameters a model may have (2²⁸ floats = 1 GiB per flat buffer).
    static let maxParameters = 1 << 28

    /// Throws `ModelConfigError` naming the first value out of range or the first layer whose input
    /// does not fit. Sizes are checked before any product of them is formed.
    public func validate() throws {
        func check(_ name: String, _ value: Int, _ limit: Int) throws {
            guard value >= 1 && value <= limit else {
                throw ModelConfigError.outOfRange(name: name, value: value, limit: limit)
            }
        }
        guard case .embedding? = layers.first else { throw ModelConfigError.badStack("the first layer must be an Embedding") }
        try check("layers", recurrentLayers.count, Self.maxLayers)
        var shape = Shape.tokens
        var total = 0
        for (i, layer) in layers.enumerated() {
            switch layer {
            case .embedding(let e):
                try check("num_words", e.inputDim, Self.maxNumWords)
                try check("embed_dim", e.outputDim, Self.maxWidth)
            case .recurrent(let r):
                try check("units", r.units, Self.maxWidth)
                for (name, rate) in [("dropout", r.dropout), ("recurrent_dropout", r.recurrentDropout)]
                where !(rate >= 0 && rate < 1) {
                    throw ModelConfigError.badRate(name: name, value: rate)
                }
                if !r.resetAfter && r.kind != .gru { throw ModelConfigError.resetAfterNeedsGRU }
            case .dense(let d):
                try check("dense units", d.units, Self.maxWidth)
            }
            guard let next = layer.output(from: shape) else {
                throw ModelConfigError.badStack("layer \(i + 1) (\(layer.label)) cannot take a \(shape)")
            }
            // Every factor is at most maxWidth or maxNumWords here, so each product fits in Int.
            total += layer.parameterShapes(input: shape).reduce(0) { $0 + $1.shape.reduce(1, *) }
            if total > Self.maxParameters {
                throw ModelConfigError.outOfRange(name: "parameter count", value: total, limit: Self.maxParameters)
            }
            shape = next
        }
        guard shape == .vector(head.outputs) else {
            throw ModelConfigError.badStack("the head (\(head.rawValue)) needs a vector of \(head.outputs), the last layer gives a \(shape)")
        }
    }

    /// The parameter table in Keras order, layer by layer (a recurrent layer: kernel, recurrent
    /// kernel, bias; forward then backward direction when bidirectional); offsets into one dense
    /// flat buffer. Layer names are Keras's: a class's first layer "lstm", its next "lstm_1", …
    public var parameterTable: [ParameterView] {
        var views: [ParameterView] = []
        var offset = 0
        var used: [String: Int] = [:]
        func name(_ base: String) -> String {
            let n = used[base, default: 0]
            used[base] = n + 1
            return n == 0 ? base : "\(base)_\(n)"
        }
        var shape = Shape.tokens
        for layer in layers {
            let layerName = name(layer.kerasBaseName)
            let inner = layer.wrappedBaseName.map(name)
            for p in layer.parameterShapes(input: shape) {
                let view = ParameterView(layerName: layerName, sublayer: p.sublayer, innerLayerName: p.sublayer == nil ? nil : inner,
                                         varIndex: p.index, varName: p.name, shape: p.shape, offset: offset,
                                         isRecurrentCell: p.cell, initializer: p.initializer)
                views.append(view)
                offset += view.count
            }
            shape = layer.output(from: shape) ?? shape
        }
        return views
    }

    /// Total number of parameters (the length of the flat buffers).
    public var parameterCount: Int {
        parameterTable.last.map { $0.offset + $0.count } ?? 0
    }
}

/// What flows from one layer to the next, per sample.
public enum Shape: Hashable, Sendable, CustomStringConvertible {
    /// T token ids.
    case tokens
    /// T steps of `width` features.
    case sequence(Int)
    /// `width` features.
    case vector(Int)

    public var description: String {
        switch self {
        case .tokens: return "sequence of token ids"
        case .sequence(let w): return "sequence of width \(w)"
        case .vector(let w): return "vector of width \(w)"
        }
    }
}

/// One layer of a `ModelConfig`.
public enum LayerSpec: Codable, Hashable, Sendable {
    case embedding(EmbeddingSpec)
    case recurrent(RecurrentSpec)
    case dense(DenseSpec)

    private enum TypeKey: String, CodingKey { case type }

    public init(from decoder: Decoder) throws {
        let type = try decoder.container(keyedBy: TypeKey.self).decode(String.self, forKey: .type)
        switch type {
        case "embedding": self = .embedding(try EmbeddingSpec(from: decoder))
        case "recurrent": self = .recurrent(try RecurrentSpec(from: decoder))
        case "dense": self = .dense(try DenseSpec(from: decoder))
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: try decoder.container(keyedBy: TypeKey.self),
                                                   debugDescription: "unknown layer type '\(type)'")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: TypeKey.self)
        switch self {
        case .embedding(let e): try c.encode("embedding", forKey: .type); try e.encode(to: encoder)
        case .recurrent(let r): try c.encode("recurrent", forKey: .type); try r.encode(to: encoder)
        case .dense(let d): try c.encode("dense", forKey: .type); try d.encode(to: encoder)
        }
    }

    /// The layer's output for an input of `shape`, or nil where it cannot take that input.
    func output(from shape: Shape) -> Shape? {
        switch (self, shape) {
        case (.embedding(let e), .tokens): return .sequence(e.outputDim)
        case (.recurrent(let r), .sequence): return r.returnSequences ? .sequence(r.outputWidth) : .vector(r.outputWidth)
        case (.dense(let d), .vector): return .vector(d.units)
        default: return nil
        }
    }

    /// Keras's name for the layer's class ("embedding", "lstm", "bidirectional", "dense").
    var kerasBaseName: String {
        switch self {
        case .embedding: return "embedding"
        case .recurrent(let r): return r.bidirectional ? "bidirectional" : r.kind.kerasName
        case .dense: return "dense"
        }
    }

    /// The class name of the layer a wrapper holds (Bidirectional's cell), which Keras numbers too.
    var wrappedBaseName: String? {
        if case .recurrent(let r) = self, r.bidirectional { return r.kind.kerasName }
        return nil
    }

    /// A few words: "embedding(10000, 32)", "bidirectional lstm(32)", "dense(1)".
    var label: String {
        switch self {
        case .embedding(let e): return "embedding(\(e.inputDim), \(e.outputDim))"
        case .recurrent(let r): return (r.bidirectional ? "bidirectional " : "") + "\(r.kind.rawValue)(\(r.units))"
        case .dense(let d): return "dense(\(d.units))"
        }
    }

    /// One Keras variable of the layer.
    struct Parameter {
        var sublayer: String?
        var index: Int
        var name: String
        var shape: [Int]
        var cell: Bool
        var initializer: Initializer
    }

    /// The layer's Keras variables, in Keras's order, for an input of `shape`.
    func parameterShapes(input shape: Shape) -> [Parameter] {
        switch (self, shape) {
        case (.embedding(let e), _):
            return [Parameter(index: 0, name: "embeddings", shape: [e.inputDim, e.outputDim], cell: false,
                              initializer: .uniform(limit: 0.05))]
        case (.recurrent(let r), .sequence(let input)):
            let h = r.units, g = r.kind.gateCount * h
            let bias: Parameter
            switch r.kind {
            case .simpleRNN: bias = Parameter(index: 2, name: "bias", shape: [h], cell: true, initializer: .zeros)
            case .lstm: bias = Parameter(index: 2, name: "bias", shape: [4 * h], cell: true, initializer: .lstmBias(units: h))
            case .gru: bias = Parameter(index: 2, name: "bias", shape: r.resetAfter ? [2, 3 * h] : [3 * h], cell: true, initializer: .zeros)
            }
            let cell = [Parameter(index: 0, name: "kernel", shape: [input, g], cell: true, initializer: .glorotUniform),
                        Parameter(index: 1, name: "recurrent_kernel", shape: [h, g], cell: true, initializer: .orthogonal(gain: 1)),
                        bias]
            guard r.bidirectional else { return cell }
            return ["forward_layer", "backward_layer"].flatMap { side in cell.map { var p = $0; p.sublayer = side; return p } }
        case (.dense(let d), .vector(let input)):
            return [Parameter(index: 0, name: "kernel", shape: [input, d.units], cell: false, initializer: .glorotUniform),
                    Parameter(index: 1, name: "bias", shape: [d.units], cell: false, initializer: .zeros)]
        default:
            return []
        }
    }
}

/// Keras `Embedding(input_dim, output_dim)`.
public struct EmbeddingSpec: Codable, Hashable, Sendable {
    /// V: token ids are 0..<V.
    var inputDim: Int
    /// E: the width of each token's vector.
    var outputDim: Int

    init(inputDim: Int, outputDim: Int) {
        self.inputDim = inputDim
        self.outputDim = outputDim
    }

    private enum CodingKeys: String, CodingKey { case inputDim = "input_dim", outputDim = "output_dim" }
}

/// Keras `SimpleRNN`, `LSTM` or `GRU` (default activations), optionally in `Bidirectional` (concat).
public struct RecurrentSpec: Codable, Hashable, Sendable {
    var kind: ModelConfig.Kind
    /// H.
    var units: Int
    /// Whether the layer outputs every step's h (T, D) or only the last (D).
    var returnSequences: Bool
    /// Keras `Bidirectional(layer)`, merge mode "concat".
    var bidirectional: Bool
    /// Keras `dropout`: the rate of the inverted-dropout masks on the layer's input, in [0, 1).
    var dropout: Double
    /// Keras `recurrent_dropout`: the rate of the masks on h_{t−1}, in [0, 1).
    var recurrentDropout: Double
    /// GRU only: Keras 3's `reset_after=True`, or Keras 2's reset-before GRU (bias (3H,)).
    var resetAfter: Bool

    init(kind: ModelConfig.Kind, units: Int, returnSequences: Bool = false, bidirectional: Bool = false,
                dropout: Double = 0, recurrentDropout: Double = 0, resetAfter: Bool = true) {
        self.kind = kind
        self.units = units
        self.returnSequences = returnSequences
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.recurrentDropout = recurrentDropout
        self.resetAfter = resetAfter
    }

    private enum CodingKeys: String, CodingKey {
        case kind, units, returnSequences = "return_sequences", bidirectional, dropout
        case recurrentDropout = "recurrent_dropout", resetAfter = "reset_after"
    }

    /// D: H, or 2H when bidirectional.
    var outputWidth: Int { (bidirectional ? 2 : 1) * units }
    /// Input masks per sample of one direction: one per gate when recurrent dropout is on (Keras's
    /// implementation 1), else one shared by all gates; SimpleRNN always one.
    var inputMaskCount: Int { recurrentDropout > 0 ? kind.gateCount : 1 }
}

/// Keras `Dense(units)`; its activation is the head's.
public struct DenseSpec: Codable, Hashable, Sendable {
    var units: Int

    init(units: Int) { self.units = units }
}

/// A configuration value out of its allowed range, or layers that do not fit together.
public enum ModelConfigError: Error, Equatable, CustomStringConvertible {
    case outOfRange(name: String, value: Int, limit: Int)
    /// A dropout rate outside [0, 1).
    case badRate(name: String, value: Double)
    /// reset_after = false on a cell that is not a GRU.
    case resetAfterNeedsGRU
    /// The layers do not form a model (what is wrong, naming the layer).
    case badStack(String)

    public var description: String {
        switch self {
        case .outOfRange(let name, let value, let limit):
            return "model config: \(name) = \(value) is outside 1…\(limit)"
        case .badRate(let name, let value):
            return "model config: \(name) = \(value) is outside [0, 1)"
        case .resetAfterNeedsGRU:
            return "model config: reset_after = false applies to the GRU only"
        case .badStack(let what):
            return "model config: \(what)"
        }
    }
}

/// One Keras weight tensor as a view into the flat parameter (and gradient) buffer.
public struct ParameterView: Sendable, Equatable, CustomStringConvertible {
    /// Keras layer name: "embedding", "lstm", "lstm_1", "bidirectional", "dense", …
    public let layerName: String
    /// Inside a `Bidirectional` layer: "forward_layer" or "backward_layer"; else nil.
    public let sublayer: String?
    /// Inside a `Bidirectional` layer: the wrapped layer's own name ("lstm", "gru_1"); else nil.
    public let innerLayerName: String?
    /// Index in the layer's Keras `vars/` list (kernel 0, recurrent_kernel 1, bias 2; embeddings 0).
    public let varIndex: Int
    /// Keras variable name: "embeddings", "kernel", "recurrent_kernel", "bias".
    let varName: String
    /// Keras shape, row-major.
    public let shape: [Int]
    /// First element in the flat buffer.
    public let offset: Int
    /// Keras 3 keeps a recurrent layer's weights under `cell/vars`, other layers' under `vars`.
    public let isRecurrentCell: Bool
    /// How the tensor starts.
    let initializer: Initializer

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// Elements `offset ..< offset + count` of the flat buffer.
    public var range: Range<Int> { offset..<(offset + count) }
    /// The group of the layer that owns the tensor: "layers/lstm", "layers/bidirectional/forward_layer".
    public var layerPath: String { "layers/\(layerName)" + (sublayer.map { "/" + $0 } ?? "") }
    /// The dataset path in a Keras 3 `.weights.h5` file, e.g. "layers/lstm/cell/vars/0" or
    /// "layers/bidirectional/backward_layer/cell/vars/2".
    public var kerasPath: String {
        layerPath + "/" + (isRecurrentCell ? "cell/" : "") + "vars/\(varIndex)"
    }

    public var description: String {
        "\(kerasPath) \(varName) \(shape) @\(offset)"
    }
}
