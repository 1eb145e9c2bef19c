import Foundation

// The model's description: a list of layer specs and a head (Keras's `Sequential` and its loss), and
// the parameter table it implies: where each Keras weight lives in the one flat parameter buffer.
//
// Shape letters: V vocabulary size, E embedding width, H units, G = gates × H, D a layer's output
// width (H, or 2H when bidirectional), K the head's outputs.

/// Embedding → layers → Dense → head, as a list. The book's IMDB classifiers of chapters 6.2 and 6.3
/// are `Preset`s, built into this form (Preset.swift).
public struct ModelConfig: Codable, Hashable, Sendable {
    /// The layers in order; the first reads token ids, the last feeds the head.
    public internal(set) var layers: [LayerSpec]
    /// The output activation, loss and decision rule on the last layer's output.
    public internal(set) var head: HeadSpec

    /// T when a layer's weights depend on it (a `Flatten` feeding a `Dense`): the InputLayer's
    /// sequence length, which the dataset's maxlen must equal; nil when any length runs.
    public internal(set) var inputLength: Int?

    init(layers: [LayerSpec], head: HeadSpec = .sigmoid, inputLength: Int? = nil) {
        self.layers = layers
        self.head = head
        self.inputLength = inputLength
    }

    /// The model's input: token ids, `inputLength` of them when fixed.
    var inputShape: Shape { .tokens(steps: inputLength) }

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

    private enum CodingKeys: String, CodingKey { case layers, head, kind, inputLength = "input_length" }

    /// Files written before 2026-12-04 hold the preset's fields ("kind", "units", …): converted here.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if c.contains(.kind) {
            self = try Preset(from: decoder).config
            return
        }
        layers = try c.decode([LayerSpec].self, forKey: .layers)
        head = try c.decode(HeadSpec.self, forKey: .head)
        inputLength = try c.decodeIfPresent(Int.self, forKey: .inputLength)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(layers, forKey: .layers)
        try c.encode(head, forKey: .head)
        try c.encodeIfPresent(inputLength, forKey: .inputLength)
    }

    /// The last layer's width: the logits per sample the head reads.
    var outputWidth: Int {
        if case .dense(let d)? = layers.last { return d.units }
        return 0
    }

    /// The number of classes the model tells apart: the softmax's width, else 2 (one logit).
    public var classCount: Int { head == .softmax ? outputWidth : 2 }

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
    var usesDropout: Bool {
        recurrentLayers.contains { $0.dropout > 0 || $0.recurrentDropout > 0 }
            || layers.contains { if case .dropout(let d) = $0 { return d.rate > 0 } else { return false } }
    }

    /// Whether the embedding's weights train (Keras `trainable`; `--freeze-embeddings`).
    public var embeddingTrainable: Bool {
        if case .embedding(let e)? = layers.first { return e.trainable }
        return true
    }

    /// The parameters that do not train (a frozen embedding's), for summaries.
    public var frozenParameterCount: Int { embeddingTrainable ? 0 : vocabularySize * embeddingWidth }

    /// The same model with the embedding frozen or trainable.
    public func embedding(trainable: Bool) -> ModelConfig {
        var c = self
        if case .embedding(var e)? = c.layers.first {
            e.trainable = trainable
            c.layers[0] = .embedding(e)
        }
        return c
    }

    /// The model in a few words for banners, titles and summaries: a preset's ("bidirectional gru
    /// (reset before), dropout 0.2"), else the layers ("embedding, lstm(32), dense(1)").
    public var label: String {
        cellPreset.map { $0.label + frozenMark } ?? layers.map(\.label).joined(separator: ", ")
    }

    /// Where `other` differs from this model, for a one-line refusal: ("the model", this label, the
    /// other's) when the labels differ, else the first layer (or head, or input length) that differs,
    /// in full ("layer 2", its settings here, there) — so that a difference the labels leave out
    /// (a dropout rate, `reset_after`) is still named. Nil when the models are equal.
    public func difference(from other: ModelConfig) -> (String, String, String)? {
        guard self != other else { return nil }
        if label != other.label { return ("the model", label, other.label) }
        func json<T: Encodable>(_ value: T) -> String {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? e.encode(value)).flatMap { String(data: $0, encoding: .utf8) } ?? "\(value)"
        }
        for (i, (a, b)) in zip(layers, other.layers).enumerated() where a != b {
            return ("layer \(i + 1) (\(a.label))", json(a), json(b))
        }
        if head != other.head { return ("the head", head.rawValue, other.head.rawValue) }
        if inputLength != other.inputLength {
            return ("the input length", inputLength.map { "\($0)" } ?? "any", other.inputLength.map { "\($0)" } ?? "any")
        }
        return ("the model", json(self), json(other))
    }

    /// Limits that keep every buffer size far inside `Int` and memory (sizes may come from files).
    public static let maxNumWords = 10_000_000
    static let maxWidth = 65_536
    static let maxLayers = 64
    /// The longest input sequence a config may fix.
    static let maxSteps = 1 << 20
    /// The most parameters a model may have (2²⁸ floats = 1 GiB per flat buffer).
    static let maxParameters = 1 << 28

    /// Throws `ModelConfigError` naming the first value out of range or the first layer whose input
    /// does not fit. Sizes are checked before any product of them is formed.
    public func validate() throws {
        guard case .embedding? = layers.first else { throw ModelConfigError.badStack("the first layer must be an Embedding") }
        if recurrentLayers.count > Self.maxLayers {
            throw ModelConfigError.outOfRange(name: "layers", value: recurrentLayers.count, limit: Self.maxLayers)
        }
        try ModelConfigError.check("layer count", layers.count, 4 * Self.maxLayers)
        if let t = inputLength { try ModelConfigError.check("input_length", t, Self.maxSteps) }
        try check(shapes: inputShape)
    }

    /// Throws unless every layer takes what the one before gives, for rows of `steps` tokens (the
    /// dataset's maxlen; convolutions and pooling shorten the sequence) — the parameters' limits too.
    public func validate(steps: Int) throws {
        try validate()
        if let t = inputLength, t != steps {
            throw ModelConfigError.badStack("the model's input length is \(t) (its InputLayer), the data's maxlen is \(steps)")
        }
        try check(shapes: .tokens(steps: steps))
    }

    private func check(shapes input: Shape) throws {
        var shape = input
        var total = 0
        for (i, layer) in layers.enumerated() {
            try layer.specification.validate()
            guard let next = layer.output(from: shape) else {
                throw ModelConfigError.badStack("layer \(i + 1) (\(layer.label)) cannot take a \(shape)")
            }
            // Every factor is at most maxWidth or maxNumWords here, so each product fits in Int; the
            // sum is the whole model's (the message quotes it), saturating rather than overflowing.
            let own = layer.specification.parameters(input: shape).reduce(0) { $0 + $1.shape.reduce(1, *) }
            let (sum, overflow) = total.addingReportingOverflow(own)
            total = overflow ? .max : sum
            shape = next
        }
        if total > Self.maxParameters {
            throw ModelConfigError.outOfRange(name: "parameter count", value: total, limit: Self.maxParameters)
        }
        guard case .vector(let width) = shape, head.accepts(width: width) else {
            throw ModelConfigError.badStack("the head (\(head.rawValue)) needs \(head.needs), the last layer gives a \(shape)")
        }
        guard case .dense(let output)? = layers.last, output.activation == .linear else {
            throw ModelConfigError.badStack("the last layer must be a Dense without an activation of its own (the head's applies)")
        }
    }

    /// The parameter table in Keras order, layer by layer (a recurrent layer: kernel, recurrent
    /// kernel, bias; forward then backward direction when bidirectional); offsets into one dense
    /// flat buffer. Layer names are Keras's: a class's first layer "lstm", its next "lstm_1", …
    public var parameterTable: [ParameterView] { layerTable().flatMap(\.tensors) }

    /// The parameter table grouped by layer, each layer with the shape it reads, for rows of `steps`
    /// tokens (nil: the InputLayer's length, when fixed). For exporters that walk the layers with
    /// their tensors; the shapes are only meaningful for a config that validates for them.
    public func layerTable(steps: Int? = nil) -> [LayerTensors] {
        var rows: [LayerTensors] = []
        var offset = 0
        // Two namings. A layer's name (`layer.name`, Keras 2's files, the summary) counts every layer
        // of a class made, the one a Bidirectional wraps included: Bidirectional(LSTM) then LSTM are
        // "bidirectional" (wrapping "lstm") and "lstm_1". A Keras 3 `.weights.h5` path counts the
        // classes of the model's own layers only (saving_lib's `_get_unique_name`): "layers/lstm".
        var used: [String: Int] = [:], usedInPaths: [String: Int] = [:]
        func unique(_ base: String, _ counts: inout [String: Int]) -> String {
            let n = counts[base, default: 0]
            counts[base] = n + 1
            return n == 0 ? base : "\(base)_\(n)"
        }
        var shape = Shape.tokens(steps: steps ?? inputLength)
        for layer in layers {
            let spec = layer.specification
            let layerName = unique(spec.kerasBaseName, &used)
            let pathName = unique(spec.kerasBaseName, &usedInPaths)
            let inner = spec.wrappedBaseName.map { unique($0, &used) }
            var views: [ParameterView] = []
            for p in spec.parameters(input: shape) {
                let view = ParameterView(layerName: layerName, pathName: pathName, sublayer: p.sublayer,
                                         innerLayerName: p.sublayer == nil ? nil : inner,
                                         varIndex: p.index, varName: p.name, shape: p.shape, offset: offset,
                                         isRecurrentCell: p.cell, initializer: p.initializer)
                views.append(view)
                offset += view.count
            }
            rows.append(LayerTensors(layer: layer, name: layerName, input: shape, tensors: views))
            shape = spec.output(from: shape) ?? shape
        }
        return rows
    }

    /// The table of Keras's `model.summary()` for rows of `maxlen` tokens: "layer (Type)", output
    /// shape, parameter count, then the totals (every parameter is trainable).
    public func kerasSummary(maxlen: Int) -> [String] {
        var used: [String: Int] = [:]
        var rows: [(String, String, Int)] = []
        var shape = Shape.tokens(steps: inputLength ?? maxlen)
        func text(_ s: Shape) -> String {
            switch s {
            case .tokens(let t): return "(None, \(t.map(String.init) ?? "None"))"
            case .sequence(let w, let t): return "(None, \(t.map(String.init) ?? "None"), \(w))"
            case .vector(let w): return "(None, \(w))"
            }
        }
        for layer in layers {
            let spec = layer.specification
            let n = used[spec.kerasBaseName, default: 0]
            used[spec.kerasBaseName] = n + 1
            if let inner = spec.wrappedBaseName { used[inner, default: 0] += 1 }
            let name = n == 0 ? spec.kerasBaseName : "\(spec.kerasBaseName)_\(n)"
            let count = spec.parameters(input: shape).reduce(0) { $0 + $1.shape.reduce(1, *) }
            shape = spec.output(from: shape) ?? shape
            rows.append(("\(name) (\(spec.kerasClassName))", text(shape), count))
        }
        func grouped(_ n: Int) -> String {
            let digits = Array(String(n))
            return String(digits.enumerated().flatMap { i, c in (i > 0 && (digits.count - i) % 3 == 0) ? [",", c] : [c] })
        }
        func size(_ n: Int) -> String {
            let bytes = Double(n * 4)
            if bytes >= 1_048_576 { return String(format: "%.2f MB", bytes / 1_048_576) }
            return bytes >= 1024 ? String(format: "%.2f KB", bytes / 1024) : String(format: "%.2f B", bytes)
        }
        let w0 = max(12, rows.map(\.0.count).max() ?? 0), w1 = max(12, rows.map(\.1.count).max() ?? 0), w2 = 13
        func pad(_ s: String, _ w: Int, right: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, w - s.count))
            return right ? fill + s : s + fill
        }
        let rule = String(repeating: "─", count: w0 + w1 + w2 + 4)
        var out = ["Model: \"sequential\"", rule,
                   pad("Layer (type)", w0) + "  " + pad("Output Shape", w1) + "  " + pad("Param #", w2, right: true), rule]
        for (l, s, c) in rows { out.append(pad(l, w0) + "  " + pad(s, w1) + "  " + pad(grouped(c), w2, right: true)) }
        let total = parameterCount, frozen = frozenParameterCount
        out += [rule, " Total params: \(grouped(total)) (\(size(total)))",
                " Trainable params: \(grouped(total - frozen)) (\(size(total - frozen)))",
                " Non-trainable params: \(grouped(frozen)) (\(size(frozen)))"]
        return out
    }

    /// Total number of parameters (the length of the flat buffers).
    public var parameterCount: Int {
        parameterTable.last.map { $0.offset + $0.count } ?? 0
    }
}

/// What flows from one layer to the next, per sample.
public enum Shape: Hashable, Sendable, CustomStringConvertible {
    /// T token ids (T when known).
    case tokens(steps: Int?)
    /// T steps of `width` features (T when known).
    case sequence(Int, steps: Int?)
    /// `width` features.
    case vector(Int)

    /// T, when the shape is a sequence of known length.
    var steps: Int? {
        switch self {
        case .tokens(let t), .sequence(_, let t): return t
        case .vector: return nil
        }
    }

    public var description: String {
        switch self {
        case .tokens: return "sequence of token ids"
        case .sequence(let w, let t): return "sequence of width \(w)" + (t.map { " and length \($0)" } ?? "")
        case .vector(let w): return "vector of width \(w)"
        }
    }
}

/// One layer of a `ModelConfig`. Each kind's spec lives beside its layer (Embedding.swift,
/// Recurrent.swift, Dense.swift) and conforms to `LayerSpecification`; here they are named and
/// decoded. A new kind of layer is one case here, in `specification` and in `init(from:)`.
public enum LayerSpec: Codable, Hashable, Sendable {
    case embedding(EmbeddingSpec)
    case recurrent(RecurrentSpec)
    case dense(DenseSpec)
    case flatten(FlattenSpec)
    case dropout(DropoutSpec)
    case conv1D(Conv1DSpec)
    case pooling1D(Pooling1DSpec)
    case globalPooling1D(GlobalPooling1DSpec)

    /// The spec itself.
    var specification: any LayerSpecification {
        switch self {
        case .embedding(let e): return e
        case .recurrent(let r): return r
        case .dense(let d): return d
        case .flatten(let f): return f
        case .dropout(let d): return d
        case .conv1D(let c): return c
        case .pooling1D(let p): return p
        case .globalPooling1D(let g): return g
        }
    }

    private enum TypeKey: String, CodingKey { case type }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: TypeKey.self)
        let type = try c.decode(String.self, forKey: .type)
        switch type {
        case EmbeddingSpec.type: self = .embedding(try EmbeddingSpec(from: decoder))
        case RecurrentSpec.type: self = .recurrent(try RecurrentSpec(from: decoder))
        case DenseSpec.type: self = .dense(try DenseSpec(from: decoder))
        case FlattenSpec.type: self = .flatten(try FlattenSpec(from: decoder))
        case DropoutSpec.type: self = .dropout(try DropoutSpec(from: decoder))
        case Conv1DSpec.type: self = .conv1D(try Conv1DSpec(from: decoder))
        case Pooling1DSpec.type: self = .pooling1D(try Pooling1DSpec(from: decoder))
        case GlobalPooling1DSpec.type: self = .globalPooling1D(try GlobalPooling1DSpec(from: decoder))
        default: throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "unknown layer type '\(type)'")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: TypeKey.self)
        try c.encode(Swift.type(of: specification).type, forKey: .type)
        try specification.encode(to: encoder)
    }

    /// The layer's output for an input of `shape`, or nil where it cannot take that input.
    func output(from shape: Shape) -> Shape? { specification.output(from: shape) }
    /// A few words: "embedding(10000, 32)", "bidirectional lstm(32)", "dense(1)".
    var label: String { specification.label }
}

/// The config's half of a kind of layer: what it is called, what it takes and gives, its Keras
/// variables, its limits, and the runtime layer it builds.
protocol LayerSpecification: Codable, Hashable, Sendable {
    /// The JSON `type` of the kind.
    static var type: String { get }
    /// The output for an input of `shape`, or nil where the layer cannot take that input.
    func output(from shape: Shape) -> Shape?
    /// Keras's name for the layer's class ("embedding", "lstm", "bidirectional", "dense"), and for
    /// the class of a layer it wraps (Bidirectional's cell), which Keras numbers too.
    var kerasBaseName: String { get }
    var wrappedBaseName: String? { get }
    /// Keras's class name ("Embedding", "LSTM", "Bidirectional", "Dense"), as `model.summary()` shows it.
    var kerasClassName: String { get }
    /// A few words: "bidirectional lstm(32)".
    var label: String { get }
    /// The Keras variables, in Keras's order, for an input of `shape` (one the layer takes).
    func parameters(input shape: Shape) -> [LayerParameter]
    /// Throws `ModelConfigError` for the first size or rate out of range.
    func validate() throws
    /// The runtime layer on these tensors (the parameter table's views of `parameters`).
    /// - Parameters:
    ///   - previous: the layer before it (nil for the first).
    ///   - index: how many layers of this kind come before it (a recurrent layer's masks' key).
    func makeLayer(input: Shape, tensors: [ParameterView], previous: (any Layer)?, index: Int) -> any Layer
    /// Keras's `trainable`: false for a frozen layer (its weights get no gradient and never change).
    var trainable: Bool { get }
}

extension LayerSpecification {
    var wrappedBaseName: String? { nil }
    var trainable: Bool { true }
}

/// One Keras variable of a layer.
struct LayerParameter {
    var sublayer: String?
    var index: Int
    var name: String
    var shape: [Int]
    var cell: Bool
    var initializer: Initializer
}

/// A configuration value out of its allowed range, or layers that do not fit together.
public enum ModelConfigError: Error, Equatable, CustomStringConvertible {
    case outOfRange(name: String, value: Int, limit: Int)
    /// A dropout rate outside [0, 1).
    case badRate(name: String, value: Double)

    /// A dropout rate: 0, or in [1.2e-38, 1): a smaller positive rate is 0 as a float and cannot be
    /// written to a config and read back (JSON readers refuse subnormal numbers).
    public static func isRate(_ r: Double) -> Bool { r == 0 || (r > 0 && r < 1 && Float(r).isNormal) }

    /// Why a rate is not one, for messages.
    public static func rateProblem(_ r: Double) -> String {
        r > 0 && r < 1 ? "too small: 0 or at least 1.2e-38 (the smallest normal 32-bit float)" : "outside [0, 1)"
    }
    /// reset_after = false on a cell that is not a GRU.
    case resetAfterNeedsGRU
    /// The layers do not form a model (what is wrong, naming the layer).
    case badStack(String)

    /// Throws `outOfRange` unless 1 ≤ value ≤ limit.
    static func check(_ name: String, _ value: Int, _ limit: Int) throws {
        guard value >= 1 && value <= limit else { throw outOfRange(name: name, value: value, limit: limit) }
    }

    public var description: String {
        switch self {
        case .outOfRange(let name, let value, let limit):
            return "model config: \(name) = \(value) is outside 1…\(limit)"
        case .badRate(let name, let value):
            return "model config: \(name) = \(value) is " + Self.rateProblem(value)
        case .resetAfterNeedsGRU:
            return "model config: reset_after = false applies to the GRU only"
        case .badStack(let what):
            return "model config: \(what)"
        }
    }
}

/// One Keras weight tensor as a view into the flat parameter (and gradient) buffer.
public struct ParameterView: Sendable, Equatable, CustomStringConvertible {
    /// Keras layer name: "embedding", "lstm", "lstm_1", "bidirectional", "dense", … (`layer.name`:
    /// a wrapped layer takes a number too).
    public let layerName: String
    /// The layer's group under `layers/` in a Keras 3 file: its class's count among the model's
    /// own layers ("lstm" for an LSTM after a Bidirectional(LSTM), whose name is "lstm_1").
    public let pathName: String
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
    let initializer: Initializer

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// Elements `offset ..< offset + count` of the flat buffer.
    public var range: Range<Int> { offset..<(offset + count) }
    /// The group of the layer that owns the tensor: "layers/lstm", "layers/bidirectional/forward_layer".
    public var layerPath: String { layerPath(under: pathName) }
    /// The dataset path in a Keras 3 `.weights.h5` file, e.g. "layers/lstm/cell/vars/0" or
    /// "layers/bidirectional/backward_layer/cell/vars/2".
    public var kerasPath: String { path(under: pathName) }
    /// Where rnn-dist before 2026-12-06 wrote the tensor: under the layer's name, which differs
    /// from `kerasPath` only after a Bidirectional that wraps a layer of a class used again.
    public var earlierPath: String { path(under: layerName) }

    private func layerPath(under group: String) -> String { "layers/\(group)" + (sublayer.map { "/" + $0 } ?? "") }

    private func path(under group: String) -> String {
        layerPath(under: group) + "/" + (isRecurrentCell ? "cell/" : "") + "vars/\(varIndex)"
    }

    public var description: String {
        "\(kerasPath) \(varName) \(shape) @\(offset)"
    }
}

/// One layer of a model with its Keras name, the shape it reads per sample and its tensors (its
/// rows of the parameter table), as `ModelConfig.layerTable` lists them.
public struct LayerTensors: Sendable {
    public let layer: LayerSpec
    /// Keras's layer name: "embedding", "lstm_1", "bidirectional", …
    public let name: String
    public let input: Shape
    /// Keras's order: kernel, recurrent kernel, bias (forward then backward when bidirectional).
    public let tensors: [ParameterView]
}
