// The model's configuration and its parameter table: where each Keras weight lives in the one flat
// parameter buffer.
//
// Shape letters: V vocabulary size (num_words), E embedding width, H units, G = gates × H.

/// Embedding(V, E) → `layers` × recurrent(H) (optionally Bidirectional, with dropout) → Dense(1,
/// sigmoid): the book's IMDB classifiers of chapters 6.2 and 6.3.
public struct ModelConfig: Codable, Hashable, Sendable {
    /// The recurrent cell.
    public enum Kind: String, Codable, CaseIterable, Sendable {
        case simpleRNN = "simple-rnn"
        case lstm
        case gru

        /// Keras's snake_case layer name ("simple_rnn", "lstm", "gru"); a second layer gets "_1", …
        public var kerasName: String {
            switch self {
            case .simpleRNN: return "simple_rnn"
            case .lstm: return "lstm"
            case .gru: return "gru"
            }
        }

        /// Number of gate blocks in the kernel's columns: 1 (SimpleRNN), 4 (LSTM i,f,c,o), 3 (GRU z,r,h).
        public var gateCount: Int {
            switch self {
            case .simpleRNN: return 1
            case .lstm: return 4
            case .gru: return 3
            }
        }
    }

    /// The recurrent cell; default LSTM as in the book.
    public var kind: Kind
    /// V: vocabulary size, token ids are 0..<V; default 10,000.
    public var numWords: Int
    /// E: embedding width; default 32.
    public var embedDim: Int
    /// H: units of every recurrent layer; default 32.
    public var units: Int
    /// Number of stacked recurrent layers (all but the last return sequences); default 1.
    public var layers: Int
    /// Keras `Bidirectional(layer)` with merge_mode "concat" around every recurrent layer; default false.
    public var bidirectional: Bool
    /// Keras `dropout`: the rate of the inverted-dropout mask on each recurrent layer's input, in [0, 1).
    public var dropout: Double
    /// Keras `recurrent_dropout`: the rate of the masks on h_{t−1}, in [0, 1).
    public var recurrentDropout: Double
    /// GRU only: Keras 3's `reset_after=True` (default) or Keras 2's reset-before GRU (bias (3H,)).
    public var resetAfter: Bool

    public init(kind: Kind = .lstm, numWords: Int = 10_000, embedDim: Int = 32, units: Int = 32, layers: Int = 1,
                bidirectional: Bool = false, dropout: Double = 0, recurrentDropout: Double = 0,
                resetAfter: Bool = true) {
        self.kind = kind
        self.numWords = numWords
        self.embedDim = embedDim
        self.units = units
        self.layers = layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.recurrentDropout = recurrentDropout
        self.resetAfter = resetAfter
    }

    private enum CodingKeys: String, CodingKey {
        case kind, numWords, embedDim, units, layers, bidirectional, dropout, recurrentDropout, resetAfter
    }

    /// Files written before the 6.3 options existed lack their keys: they mean the defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(Kind.self, forKey: .kind)
        numWords = try c.decode(Int.self, forKey: .numWords)
        embedDim = try c.decode(Int.self, forKey: .embedDim)
        units = try c.decode(Int.self, forKey: .units)
        layers = try c.decode(Int.self, forKey: .layers)
        bidirectional = try c.decodeIfPresent(Bool.self, forKey: .bidirectional) ?? false
        dropout = try c.decodeIfPresent(Double.self, forKey: .dropout) ?? 0
        recurrentDropout = try c.decodeIfPresent(Double.self, forKey: .recurrentDropout) ?? 0
        resetAfter = try c.decodeIfPresent(Bool.self, forKey: .resetAfter) ?? true
    }

    /// Directions per layer: 2 when bidirectional.
    public var directions: Int { bidirectional ? 2 : 1 }
    /// D: width of a layer's output (and of the Dense head's input): H, or 2H when bidirectional.
    public var outputWidth: Int { directions * units }
    /// The model in a few words for banners, titles and summaries: "lstm", "bidirectional gru
    /// (reset before), dropout 0.2, recurrent dropout 0.2".
    public var label: String {
        var out = (bidirectional ? "bidirectional " : "") + kind.rawValue + (kind == .gru && !resetAfter ? " (reset before)" : "")
        if dropout > 0 { out += ", dropout \(dropout)" }
        if recurrentDropout > 0 { out += ", recurrent dropout \(recurrentDropout)" }
        return out
    }
    /// Whether training draws dropout masks at all.
    public var usesDropout: Bool { dropout > 0 || recurrentDropout > 0 }
    /// Input masks per sample of one layer direction: one per gate when recurrent dropout is on
    /// (Keras's implementation 1), else one shared by all gates; SimpleRNN always one.
    public var inputMaskCount: Int { recurrentDropout > 0 ? kind.gateCount : 1 }
    /// h_{t−1} masks per sample: one per gate (LSTM 4, GRU 3), SimpleRNN one.
    public var recurrentMaskCount: Int { kind.gateCount }
    /// The Keras layer name of recurrent layer `l`: "lstm", "lstm_1", … or "bidirectional", "bidirectional_1", …
    public func layerName(_ l: Int) -> String {
        let base = bidirectional ? "bidirectional" : kind.kerasName
        return l == 0 ? base : "\(base)_\(l)"
    }

    /// Limits that keep every buffer size far inside `Int` and memory (sizes may come from files).
    public static let maxNumWords = 10_000_000
    public static let maxWidth = 65_536
    public static let maxLayers = 64
    /// The most parameters a model may have (2²⁸ floats = 1 GiB per flat buffer).
    public static let maxParameters = 1 << 28

    /// Throws `ModelConfigError` naming the first value out of range.
    public func validate() throws {
        func check(_ name: String, _ value: Int, _ limit: Int) throws {
            guard value >= 1 && value <= limit else {
                throw ModelConfigError.outOfRange(name: name, value: value, limit: limit)
            }
        }
        try check("num_words", numWords, Self.maxNumWords)
        try check("embed_dim", embedDim, Self.maxWidth)
        try check("units", units, Self.maxWidth)
        try check("layers", layers, Self.maxLayers)
        for (name, rate) in [("dropout", dropout), ("recurrent_dropout", recurrentDropout)]
        where !(rate >= 0 && rate < 1) {
            throw ModelConfigError.badRate(name: name, value: rate)
        }
        if !resetAfter && kind != .gru { throw ModelConfigError.resetAfterNeedsGRU }
        // Each size can be in range while their products are not: bound the total before any
        // buffer is allocated (sizes may come from a file).
        let g = kind.gateCount * units
        let (embed, o1) = numWords.multipliedReportingOverflow(by: embedDim)
        let (perLayer, o2) = (max(embedDim, 2 * units) + units + 2).multipliedReportingOverflow(by: g)
        let (stack, o3) = perLayer.multipliedReportingOverflow(by: layers * directions)
        let (total, o4) = embed.addingReportingOverflow(stack)
        if o1 || o2 || o3 || o4 || total > Self.maxParameters {
            throw ModelConfigError.outOfRange(name: "parameter count", value: o1 || o2 || o3 || o4 ? Int.max : total,
                                              limit: Self.maxParameters)
        }
    }

    /// The parameter table in Keras order: embedding, the recurrent layers (kernel, recurrent
    /// kernel, bias each; forward then backward direction when bidirectional), dense (kernel,
    /// bias); offsets into one dense flat buffer.
    public var parameterTable: [ParameterView] {
        var views: [ParameterView] = []
        var offset = 0
        func add(_ layer: String, _ sublayer: String?, _ index: Int, _ name: String, _ shape: [Int], _ cell: Bool,
                 _ initializer: Initializer) {
            // The wrapped layer's name is the one it would have alone: "lstm", "lstm_1", …
            let inner = sublayer.map { _ in layer == "bidirectional" ? kind.kerasName
                                          : kind.kerasName + layer.dropFirst("bidirectional".count) }
            let view = ParameterView(layerName: layer, sublayer: sublayer, innerLayerName: inner, varIndex: index,
                                     varName: name, shape: shape,
                                     offset: offset, isRecurrentCell: cell, initializer: initializer)
            views.append(view)
            offset += view.count
        }
        let h = units, g = kind.gateCount * units
        add("embedding", nil, 0, "embeddings", [numWords, embedDim], false, .uniform(limit: 0.05))
        for l in 0..<layers {
            let name = layerName(l)
            let input = l == 0 ? embedDim : outputWidth
            for sublayer in bidirectional ? ["forward_layer", "backward_layer"] : [nil] {
                add(name, sublayer, 0, "kernel", [input, g], true, .glorotUniform)
                add(name, sublayer, 1, "recurrent_kernel", [h, g], true, .orthogonal(gain: 1))
                switch kind {
                case .simpleRNN: add(name, sublayer, 2, "bias", [h], true, .zeros)
                case .lstm: add(name, sublayer, 2, "bias", [4 * h], true, .lstmBias(units: h))
                case .gru: add(name, sublayer, 2, "bias", resetAfter ? [2, 3 * h] : [3 * h], true, .zeros)
                }
            }
        }
        add("dense", nil, 0, "kernel", [outputWidth, 1], false, .glorotUniform)
        add("dense", nil, 1, "bias", [1], false, .zeros)
        return views
    }

    /// Total number of parameters (the length of the flat buffers).
    public var parameterCount: Int {
        parameterTable.last.map { $0.offset + $0.count } ?? 0
    }
}

/// A configuration value out of its allowed range.
public enum ModelConfigError: Error, Equatable, CustomStringConvertible {
    case outOfRange(name: String, value: Int, limit: Int)
    /// A dropout rate outside [0, 1).
    case badRate(name: String, value: Double)
    /// reset_after = false on a cell that is not a GRU.
    case resetAfterNeedsGRU

    public var description: String {
        switch self {
        case .outOfRange(let name, let value, let limit):
            return "model config: \(name) = \(value) is outside 1…\(limit)"
        case .badRate(let name, let value):
            return "model config: \(name) = \(value) is outside [0, 1)"
        case .resetAfterNeedsGRU:
            return "model config: reset_after = false applies to the GRU only"
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
    public let varName: String
    /// Keras shape, row-major.
    public let shape: [Int]
    /// First element in the flat buffer.
    public let offset: Int
    /// Keras 3 keeps a recurrent layer's weights under `cell/vars`, other layers' under `vars`.
    public let isRecurrentCell: Bool
    /// How the tensor starts.
    public let initializer: Initializer

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
