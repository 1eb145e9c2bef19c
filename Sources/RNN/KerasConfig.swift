// A Keras 3 `Sequential` as `model.to_json()` writes it, read into a `ModelConfig` (`train
// --model-config`). Only what the model can run exactly as Keras does is accepted; every other layer,
// option value or structure is refused with one line naming the layer and the option
// (docs/FILES.md §Keras model configs).

import Foundation
import JSONSyntax

/// A Keras model config that rnn-dist cannot train as Keras would.
public struct KerasConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    init(_ d: String) { description = d }
}

extension ModelConfig {
    /// The model a Keras 3 `Sequential` JSON describes, and the sequence length its `InputLayer` (or
    /// the Embedding's Keras 2 length options) fixes (nil when it leaves it open).
    public static func fromKeras(json text: String) throws -> (config: ModelConfig, maxlen: Int?) {
        let read = try KerasModel(json: text)
        return (read.config, read.maxlen)
    }
}

/// A Keras 3 `Sequential` JSON read as a `ModelConfig`, with how its first and last layers are named
/// in messages (`layer 2 'embedding' (Embedding)`), for the checks against a dataset.
public struct KerasModel: Sendable {
    public let config: ModelConfig
    /// The sequence length the `InputLayer` (or the Embedding's Keras 2 options) fixes; nil: open.
    public let maxlen: Int?
    public let embeddingLayer: String
    public let outputLayer: String
    /// What `model.compile()` set (Keras writes it with the model once compiled): the optimizer
    /// `train` must be given to train as that model would be; nil when the JSON has none.
    public let compile: KerasCompile?

    public init(json text: String) throws {
        var utf8 = text
        let (problem, repeated) = utf8.withUTF8 { json in
            let (problem, members) = JSONSyntax.check(json, memberDepth: .max)
            return (problem, JSONValue.firstRepeatedKey(members, in: json))
        }
        if let problem { throw KerasConfigError(JSONSyntax.refusal(problem)) }
        let object = utf8.withUTF8 { JSONValue.parse(checked: $0) }
        // Python's json (model_from_json) keeps a repeated key's last value, JSONDecoder its first.
        if let key = repeated {
            throw KerasConfigError("the key '\(key)' appears twice in one object (Keras would read its last value)")
        }
        guard case .object(let top) = object else { throw KerasConfigError("the JSON is not an object") }
        let className = top["class_name"]?.string ?? "(no class_name)"
        guard className == "Sequential" else {
            throw KerasConfigError("a \(className) model: only Sequential models are supported (model.to_json() of keras.Sequential)")
        }
        guard let entries = top["config"]?.object?["layers"]?.array else {
            throw KerasConfigError("Sequential without config.layers")
        }
        // Each entry is a layer's object; another value was dropped, training a model without it.
        let layers = try entries.enumerated().map { i, entry in
            guard let layer = entry.object else {
                throw KerasConfigError("layer \(i + 1): \(entry) is not a layer (an object with class_name and config)")
            }
            return layer
        }
        if let trainable = top["config"]?.object?["trainable"], trainable != .bool(true) {
            throw KerasConfigError("the Sequential: option 'trainable' = \(trainable) is not supported (only true; freeze the Embedding alone)")
        }
        var reader = KerasReader()
        for (i, layer) in layers.enumerated() { try reader.add(layer, position: i + 1) }
        config = try reader.finish()
        compile = try KerasCompile(top["compile_config"], head: config.head)
        maxlen = reader.maxlen
        embeddingLayer = reader.origins.first?.label ?? "the Embedding"
        outputLayer = reader.origins.last?.label ?? "the output Dense"
    }
}

/// Reads the layers one by one, checking every option it does not map.
private struct KerasReader {
    var specs: [LayerSpec] = []
    /// The Keras layer each spec came from (for messages).
    var origins: [Layer] = []
    /// Each Dense's Keras activation, by its place in `specs`.
    var denseActivations: [Int: String] = [:]
    var maxlen: Int?
    var sawInput = false

    /// One layer's config with the helpers that name it in messages.
    struct Layer {
        let className: String
        let name: String
        let position: Int
        let config: [String: JSONValue]

        /// `layer 3 'lstm' (LSTM)`: how messages name it.
        var label: String { "layer \(position) '\(name)' (\(className))" }
        func fail(_ what: String) -> KerasConfigError {
            KerasConfigError("\(label): \(what)")
        }

        /// Keras writes `"registered_name": null` for its own layers and the registered name of a
        /// custom class (which may well be called "LSTM"): such a layer's code is not Keras's.
        func requireBuiltIn(_ json: [String: JSONValue]) throws {
            guard let registered = json["registered_name"], registered != .null else { return }
            let module = json["module"]?.string.map { " from module '\($0)'" } ?? ""
            throw fail("a custom class (registered_name \(registered)\(module)); only Keras's built-in layers are supported")
        }

        func int(_ key: String) throws -> Int {
            guard let v = config[key]?.int else { throw fail("option '\(key)' must be an integer") }
            return v
        }

        func double(_ key: String, default d: Double) throws -> Double {
            guard let raw = config[key] else { return d }
            guard let v = raw.double else { throw fail("option '\(key)' must be a number") }
            return v
        }

        /// A one-element list (Keras 3 writes `kernel_size: [7]`) or a plain integer.
        func one(_ key: String) throws -> Int {
            if let v = config[key]?.int { return v }
            guard let list = config[key]?.array, list.count == 1, let v = list[0].int else {
                throw fail("option '\(key)' must be an integer or a list of one integer")
            }
            return v
        }

        /// `key` absent, or `value` (alone or as a one-element list).
        func requireOne(_ key: String, _ value: Int) throws {
            guard let raw = config[key] else { return }
            guard (try? one(key)) == value else { throw fail("option '\(key)' = \(raw) is not supported (only \(value))") }
        }

        /// The `activation` option's name: "linear" when absent or null. A layer object or a
        /// function's config (what `to_json()` writes for `activation=layers.ReLU()`) is refused:
        /// it may carry parameters (a slope, a cap) that the name alone would drop.
        func activationName() throws -> String {
            guard let raw = config["activation"], raw != .null else { return "linear" }
            guard let name = raw.string else {
                throw fail("option 'activation' = \(raw) is not supported (only an activation's name, e.g. \"relu\")")
            }
            return name
        }

        /// Every option of the config must be one rnn-dist knows (`known`, or one every layer may
        /// carry): an unknown one may change what the layer computes. The dtype must be float32.
        func checkOptions(_ known: Set<String>) throws {
            let everyLayer: Set<String> = ["name", "trainable", "dtype"]
            for key in config.keys.sorted() where !known.contains(key) && !everyLayer.contains(key) {
                throw fail("option '\(key)' is not one rnn-dist knows (it could change what the layer computes)")
            }
            guard className != "InputLayer", let raw = config["dtype"], raw != .null else { return }
            let policy = raw.string ?? raw.object?["config"]?.object?["name"]?.string
            guard policy == "float32" else {
                throw fail("option 'dtype' = \(policy.map { "'\($0)'" } ?? "\(raw)") is not supported (only float32: rnn-dist computes in float32)")
            }
        }

        /// The `activation` of a hidden layer.
        func activation() throws -> Nonlinearity {
            let name = try activationName()
            guard let a = Nonlinearity(rawValue: name) else {
                throw fail("option 'activation' = '\(name)' is not supported (relu, tanh, sigmoid or linear)")
            }
            return a
        }

        func bool(_ key: String, default d: Bool) throws -> Bool {
            guard let raw = config[key] else { return d }
            guard case .bool(let v) = raw else { throw fail("option '\(key)' must be true or false") }
            return v
        }

        /// `key` must be absent or equal `value` (what rnn-dist runs).
        func require(_ key: String, _ value: JSONValue, _ why: String? = nil) throws {
            guard let raw = config[key], raw != value else { return }
            throw fail("option '\(key)' = \(raw) is not supported (only \(value)\(why.map { "; \($0)" } ?? ""))")
        }

        /// `key` must be absent or null.
        func requireNull(_ key: String) throws {
            if let raw = config[key], raw != .null { throw fail("option '\(key)' = \(raw) is not supported (only null)") }
        }

        /// An initializer option must be Keras's default (rnn-dist draws that one): its serialized
        /// class with only the options it has (`check` reads their values), or its name as Keras
        /// accepts it (`"glorot_uniform"`, or the class name).
        func requireInitializer(_ key: String, _ className: String, options: Set<String> = [],
                                _ check: ([String: JSONValue]) -> Bool = { _ in true }) throws {
            guard let raw = config[key] else { return }
            let aliases = ["GlorotUniform": "glorot_uniform", "Orthogonal": "orthogonal", "Zeros": "zeros", "RandomUniform": "random_uniform"]
            if let name = raw.string, name == className || name == aliases[className] || (className == "RandomUniform" && name == "uniform") {
                return
            }
            let given = raw.object?["class_name"]?.string
            guard given == className else {
                throw fail("option '\(key)' = \(given ?? "\(raw)") is not supported (only Keras's default \(className))")
            }
            guard check(raw.object?["config"]?.object ?? [:]) else {
                throw fail("option '\(key)' = \(className) with other \(options.sorted().joined(separator: ", ")) is not supported (only Keras's defaults)")
            }
            for option in (raw.object?["config"]?.object ?? [:]).keys.sorted() where option != "seed" && !options.contains(option) {
                throw fail("option '\(key)': \(className) option '\(option)' is not one rnn-dist knows")
            }
        }

        /// GlorotUniform with its fan axes at their default (null), as rnn-dist computes the fans.
        func requireGlorot(_ key: String) throws {
            try requireInitializer(key, "GlorotUniform", options: ["input_axes", "output_axes"]) {
                ($0["input_axes"] ?? .null) == .null && ($0["output_axes"] ?? .null) == .null
            }
        }

        /// `data_format` absent, null (Keras's default, channels_last) or channels_last.
        func requireChannelsLast() throws {
            guard let raw = config["data_format"], raw != .null else { return }
            try require("data_format", "channels_last")
        }
    }

    /// The sequence length a first layer fixes: `batch_shape` / `batch_input_shape` [batch, T],
    /// `input_shape` [T] or `input_length` T (Keras 2's Embedding), T null or absent leaving it open;
    /// where several are given they must agree.
    mutating func readLength(_ layer: Layer) throws {
        for key in ["batch_shape", "batch_input_shape", "input_shape", "input_length"] {
            guard let raw = layer.config[key], raw != .null else { continue }
            let length: JSONValue
            switch key {
            case "input_length": length = raw
            case "input_shape":
                guard let shape = raw.array, shape.count == 1 else {
                    throw layer.fail("option 'input_shape' must be [maxlen]: token ids, one sequence per row")
                }
                length = shape[0]
            default:
                guard let shape = raw.array, shape.count == 2 else {
                    throw layer.fail("option '\(key)' must be [null, maxlen]: token ids, one sequence per row")
                }
                length = shape[1]
            }
            guard length != .null else { continue }
            guard let t = length.int, t >= 1 else { throw layer.fail("option '\(key)' = \(raw): the length must be a positive integer or null") }
            if let m = maxlen, m != t { throw layer.fail("option '\(key)' = \(raw) disagrees with the length \(m) given before") }
            maxlen = t
        }
    }

    mutating func add(_ json: [String: JSONValue], position: Int) throws {
        let className = json["class_name"]?.string ?? "(no class_name)"
        let config = json["config"]?.object ?? [:]
        let layer = Layer(className: className, name: config["name"]?.string ?? className, position: position, config: config)
        defer { while origins.count < specs.count { origins.append(layer) } }
        try layer.requireBuiltIn(json)
        if className != "InputLayer" && className != "Embedding" {
            try layer.require("trainable", true, "only an Embedding can be frozen")
        }
        switch className {
        case "InputLayer":
            guard specs.isEmpty, !sawInput else { throw layer.fail("an InputLayer must come first") }
            sawInput = true
            try layer.checkOptions(["batch_shape", "batch_input_shape", "optional", "ragged", "sparse"])
            for k in ["optional", "ragged", "sparse"] { try layer.require(k, false) }
            guard config["batch_shape"] != nil || config["batch_input_shape"] != nil else {
                throw layer.fail("option 'batch_shape' must be [null, maxlen]: token ids, one sequence per row")
            }
            try readLength(layer)
        case "Embedding":
            guard specs.isEmpty else { throw layer.fail("only the first layer can be an Embedding") }
            try layer.checkOptions(["input_dim", "output_dim", "embeddings_initializer", "embeddings_regularizer", "activity_regularizer",
                                    "embeddings_constraint", "mask_zero", "quantization_config", "lora_rank", "lora_alpha",
                                    "input_length", "input_shape", "batch_input_shape", "batch_shape", "sparse"])
            try layer.require("mask_zero", false, "rnn-dist does not mask padding")
            try layer.require("sparse", false)
            for k in ["embeddings_regularizer", "activity_regularizer", "embeddings_constraint", "quantization_config", "lora_rank"] {
                try layer.requireNull(k)
            }
            try readLength(layer)
            try layer.requireInitializer("embeddings_initializer", "RandomUniform", options: ["minval", "maxval"]) {
                ($0["minval"]?.double ?? -0.05) == -0.05 && ($0["maxval"]?.double ?? 0.05) == 0.05
            }
            specs.append(.embedding(EmbeddingSpec(inputDim: try layer.int("input_dim"), outputDim: try layer.int("output_dim"),
                                                  trainable: try layer.bool("trainable", default: true))))
        case "SimpleRNN", "LSTM", "GRU":
            specs.append(.recurrent(try recurrent(layer)))
        case "Bidirectional":
            try layer.checkOptions(["layer", "backward_layer", "merge_mode"])
            try layer.require("merge_mode", "concat")
            guard let inner = layer.config["layer"]?.object else { throw layer.fail("option 'layer' is missing") }
            let innerLayer = Layer(className: inner["class_name"]?.string ?? "(no class_name)",
                                   name: inner["config"]?.object?["name"]?.string ?? layer.name,
                                   position: position, config: inner["config"]?.object ?? [:])
            try innerLayer.requireBuiltIn(inner)
            if let back = layer.config["backward_layer"]?.object { try innerLayer.requireBuiltIn(back) }
            guard ["SimpleRNN", "LSTM", "GRU"].contains(innerLayer.className) else {
                throw layer.fail("wraps a \(innerLayer.className); only SimpleRNN, LSTM and GRU are supported")
            }
            try innerLayer.require("go_backwards", false, "Bidirectional runs the backward direction itself")
            var r = try recurrent(innerLayer)
            if let back = layer.config["backward_layer"]?.object {
                // Keras writes the backward copy: the same layer reading the sequence reversed.
                var mirrored = back["config"]?.object ?? [:]
                guard back["class_name"]?.string == innerLayer.className, (mirrored["go_backwards"] ?? .bool(true)) == .bool(true) else {
                    throw layer.fail("option 'backward_layer' must be the forward layer's class with go_backwards true")
                }
                mirrored["go_backwards"] = .bool(false)
                let b = try recurrent(Layer(className: innerLayer.className, name: mirrored["name"]?.string ?? "backward",
                                            position: position, config: mirrored))
                guard b == r else { throw layer.fail("option 'backward_layer' differs from the forward layer; both directions must be alike") }
            }
            r.bidirectional = true
            specs.append(.recurrent(r))
        case "Dense":
            try layer.checkOptions(["units", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer",
                                    "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint",
                                    "quantization_config", "lora_rank", "lora_alpha"])
            for k in ["kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint",
                      "quantization_config", "lora_rank"] {
                try layer.requireNull(k)
            }
            try layer.requireGlorot("kernel_initializer")
            try layer.requireInitializer("bias_initializer", "Zeros")
            let units = try layer.int("units")
            denseActivations[specs.count] = try layer.activationName()
            specs.append(.dense(DenseSpec(units: units, useBias: try layer.bool("use_bias", default: true))))
        case "Flatten":
            try layer.checkOptions(["data_format"])
            try layer.requireChannelsLast()
            specs.append(.flatten(FlattenSpec()))
        case "Dropout":
            try layer.checkOptions(["rate", "noise_shape", "seed"])
            try layer.requireNull("noise_shape")
            // Keras requires it (a Dropout without one trained as rate 0).
            guard layer.config["rate"] != nil else { throw layer.fail("option 'rate' is missing") }
            let rate = try layer.double("rate", default: 0)
            guard rate >= 0 && rate < 1 else { throw layer.fail("option 'rate' = \(rate) is outside [0, 1)") }
            specs.append(.dropout(DropoutSpec(rate: rate)))
        case "Conv1D":
            try layer.checkOptions(["filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups", "activation",
                                    "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
                                    "activity_regularizer", "kernel_constraint", "bias_constraint", "lora_rank", "lora_alpha"])
            try layer.requireChannelsLast()
            try layer.require("groups", .int(1))
            for k in ["kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint",
                      "lora_rank"] {
                try layer.requireNull(k)
            }
            try layer.requireGlorot("kernel_initializer")
            try layer.requireInitializer("bias_initializer", "Zeros")
            try layer.requireOne("strides", 1)
            try layer.requireOne("dilation_rate", 1)
            let size = try layer.one("kernel_size")
            let padding = layer.config["padding"]?.string ?? "valid"
            guard let p = Conv1DSpec.Padding(rawValue: padding) else {
                throw layer.fail("option 'padding' = '\(padding)' is not supported (valid, same or causal)")
            }
            specs.append(.conv1D(Conv1DSpec(filters: try layer.int("filters"), kernelSize: size, padding: p,
                                            activation: try layer.activation(), useBias: try layer.bool("use_bias", default: true))))
        case "MaxPooling1D":
            try layer.checkOptions(["pool_size", "strides", "padding", "data_format"])
            try layer.requireChannelsLast()
            let size = layer.config["pool_size"] == nil ? 2 : try layer.one("pool_size")   // Keras's default
            let strides = layer.config["strides"] == nil || layer.config["strides"] == .null ? size : try layer.one("strides")
            let padding = layer.config["padding"]?.string ?? "valid"
            guard let p = Pooling1DSpec.Padding(rawValue: padding) else {
                throw layer.fail("option 'padding' = '\(padding)' is not supported (valid or same)")
            }
            specs.append(.pooling1D(Pooling1DSpec(poolSize: size, strides: strides, padding: p)))
        case "GlobalMaxPooling1D", "GlobalAveragePooling1D":
            try layer.checkOptions(["data_format", "keepdims"])
            try layer.requireChannelsLast()
            try layer.require("keepdims", false)
            specs.append(.globalPooling1D(GlobalPooling1DSpec(average: className == "GlobalAveragePooling1D")))
        default:
            throw layer.fail("layer type not supported (supported: InputLayer, Embedding, Flatten, Dropout, SimpleRNN, LSTM, GRU, "
                             + "Bidirectional, Conv1D, MaxPooling1D, GlobalMaxPooling1D, GlobalAveragePooling1D, Dense)")
        }
    }

    /// A SimpleRNN, LSTM or GRU config: the options rnn-dist runs, the others only at Keras's defaults.
    func recurrent(_ layer: Layer) throws -> RecurrentSpec {
        let kind: ModelConfig.Kind = layer.className == "LSTM" ? .lstm : layer.className == "GRU" ? .gru : .simpleRNN
        // unroll, implementation (Keras 2) and zero_output_for_mask (no mask here) do not change the results.
        var known: Set<String> = ["units", "activation", "use_bias", "kernel_initializer", "recurrent_initializer", "bias_initializer",
                                  "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
                                  "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout",
                                  "return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask",
                                  "seed", "implementation", "time_major"]
        if kind != .simpleRNN { known.insert("recurrent_activation") }
        if kind == .lstm { known.insert("unit_forget_bias") }
        if kind == .gru { known.insert("reset_after") }
        if kind != .gru && layer.config["reset_after"] != nil { throw layer.fail("option 'reset_after' applies to GRU only") }
        try layer.checkOptions(known)
        try layer.require("time_major", false)
        try layer.require("trainable", true, "only an Embedding can be frozen")
        try layer.require("return_state", false)
        try layer.require("stateful", false)
        try layer.require("activation", "tanh")
        if kind != .simpleRNN {
            try layer.require("recurrent_activation", "sigmoid")
        }
        if kind == .lstm { try layer.require("unit_forget_bias", true) }
        for k in ["kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
                  "kernel_constraint", "recurrent_constraint", "bias_constraint"] {
            try layer.requireNull(k)
        }
        try layer.requireGlorot("kernel_initializer")
        try layer.requireInitializer("recurrent_initializer", "Orthogonal", options: ["gain"]) { ($0["gain"]?.double ?? 1) == 1 }
        try layer.requireInitializer("bias_initializer", "Zeros")
        let resetAfter = try layer.bool("reset_after", default: true)
        return RecurrentSpec(kind: kind, units: try layer.int("units"),
                             returnSequences: try layer.bool("return_sequences", default: false),
                             dropout: try layer.double("dropout", default: 0),
                             recurrentDropout: try layer.double("recurrent_dropout", default: 0), resetAfter: resetAfter,
                             goBackwards: try layer.bool("go_backwards", default: false),
                             useBias: try layer.bool("use_bias", default: true))
    }

    /// The config, checked: an Embedding first and the output Dense last, every Dense before it
    /// with an activation rnn-dist runs.
    mutating func finish() throws -> ModelConfig {
        guard case .embedding? = specs.first else {
            throw KerasConfigError("the model must start with an Embedding (after an optional InputLayer): rnn-dist reads token ids")
        }
        guard case .dense(let last)? = specs.last, let lastActivation = denseActivations[specs.count - 1] else {
            throw KerasConfigError("the model must end with its output Dense (sigmoid, linear or softmax)")
        }
        let head: HeadSpec
        switch (lastActivation, last.units) {
        case ("sigmoid", 1): head = .sigmoid
        case ("linear", 1): head = .logit
        case ("softmax", 2...): head = .softmax
        default:
            throw origins[specs.count - 1].fail("activation '\(lastActivation)' with \(last.units) unit\(last.units == 1 ? "" : "s") "
                + "is not supported as the output (Dense(1, 'sigmoid'), Dense(1) for logits, or Dense(K ≥ 2, 'softmax'))")
        }
        for (i, activation) in denseActivations where i != specs.count - 1 {
            guard let a = Nonlinearity(rawValue: activation), case .dense(var d) = specs[i] else {
                throw origins[i].fail("option 'activation' = '\(activation)' is not supported before the output (relu, tanh, sigmoid or linear)")
            }
            d.activation = a
            specs[i] = .dense(d)
        }
        // A Flatten's width depends on the sequence's length: the model then fixes it.
        let fixed = specs.contains { if case .flatten = $0 { return true } else { return false } }
        if fixed && maxlen == nil {
            throw KerasConfigError("a Flatten needs the sequence length: give the InputLayer batch_shape [null, maxlen]")
        }
        var shape = Shape.tokens(steps: maxlen)
        for (spec, layer) in zip(specs, origins) {
            // Each layer's own limits before its output is worked out (a stride of 0 would divide by 0).
            do { try spec.specification.validate() } catch let e as ModelConfigError {
                throw layer.fail(e.description.replacingOccurrences(of: "model config: ", with: ""))
            }
            guard let next = spec.output(from: shape) else {
                let why: String
                switch (spec, shape) {
                case (.dense, .sequence): why = " (a Dense reads a vector: return_sequences of the layer before, or a Flatten or pooling missing)"
                case (_, .vector): why = " (return_sequences of the layer before, or a pooling to a vector)"
                case (.conv1D, .sequence), (.pooling1D, .sequence): why = ": too few steps for its window"
                default: why = ""
                }
                throw layer.fail("cannot take a \(shape)\(why)")
            }
            shape = next
        }
        let config = ModelConfig(layers: specs, head: head, inputLength: fixed ? maxlen : nil)
        do { try config.validate() } catch let e as ModelConfigError {
            throw KerasConfigError("\(e)".replacingOccurrences(of: "model config: ", with: ""))
        }
        return config
    }
}

/// A Keras `compile_config`: the optimizer it names (class, learning rate, SGD's momentum; every other
/// option at Keras's default, which is what rnn-dist runs) and a loss that is the output layer's own
/// (`binary_crossentropy` for a sigmoid, with `from_logits` for a logit, `sparse_categorical_crossentropy`
/// for a softmax). Anything else is refused: rnn-dist would train otherwise without a word. Metrics
/// and execution options (`steps_per_execution`, `jit_compile`, …) do not change the training and are
/// not read.
public struct KerasCompile: Sendable, Equatable {
    public let optimizer: OptimizerKind
    public let learningRate: Double
    public let momentum: Double
    /// `global_clipnorm` (nil: none), which `--clip-norm` gives.
    public let globalClipNorm: Double?
    /// How the JSON writes it, for messages: `Adam(learning_rate=0.01)` (Keras writes the rates as
    /// float32 values, 0.0010000000474974513: shown as such).
    public var label: String {
        OptimizerKind.kerasLabel(optimizer, learningRate: learningRate, momentum: momentum, clipNorm: globalClipNorm)
    }

    /// Whether a run with these settings trains with this optimizer (the rates compared as float32).
    public func matches(optimizer o: OptimizerKind, learningRate lr: Double, momentum m: Double, clipNorm: Double?) -> Bool {
        o == optimizer && Float(lr) == Float(learningRate) && (o != .sgd || Float(m) == Float(momentum))
            && clipNorm.map(Float.init) == globalClipNorm.map(Float.init)
    }

    init?(_ raw: JSONValue?, head: HeadSpec) throws {
        guard let raw, raw != .null else { return nil }
        func fail(_ what: String) -> KerasConfigError { KerasConfigError("compile_config: \(what)") }
        guard let compile = raw.object else { throw fail("\(raw) is not an object") }
        if compile.isEmpty { return nil }   // what an uncompiled model writes
        if let weights = compile["loss_weights"], weights != .null {
            throw fail("option 'loss_weights' = \(weights) is not supported (only null)")
        }
        // The optimizer: a name ("rmsprop") or a serialized optimizer.
        let name: String, options: [String: JSONValue]
        switch compile["optimizer"] {
        case .string(let s)?: name = s.lowercased(); options = [:]
        case .object(let o)?:
            guard o["registered_name"] == nil || o["registered_name"] == .null else {
                throw fail("the optimizer is a custom class (registered_name \(o["registered_name"]!)); only Keras's RMSprop, Adam and SGD are supported")
            }
            name = (o["class_name"]?.string ?? "").lowercased()
            options = o["config"]?.object ?? [:]
        default: throw fail("option 'optimizer' = \(compile["optimizer"] ?? .null) is not an optimizer")
        }
        guard let kind = OptimizerKind(rawValue: name) else {
            throw fail("optimizer '\(name)' is not supported (RMSprop, Adam or SGD)")
        }
        var defaults: [String: JSONValue] = ["weight_decay": .null, "clipnorm": .null, "clipvalue": .null,
                                             "use_ema": .bool(false), "ema_overwrite_frequency": .null, "loss_scale_factor": .null,
                                             "gradient_accumulation_steps": .null]
        switch kind {
        case .rmsprop: defaults.merge(["rho": .number(0.9), "momentum": .number(0), "epsilon": .number(1e-7), "centered": .bool(false)]) { a, _ in a }
        case .adam: defaults.merge(["beta_1": .number(0.9), "beta_2": .number(0.999), "epsilon": .number(1e-7), "amsgrad": .bool(false)]) { a, _ in a }
        case .sgd: defaults.merge(["nesterov": .bool(false)]) { a, _ in a }
        }
        // Read, not compared: the name; EMA's rate when EMA is off.
        let free: Set<String> = Set(["name", "learning_rate", "ema_momentum", "global_clipnorm"] + (kind == .sgd ? ["momentum"] : []))
        for key in options.keys.sorted() where !free.contains(key) {
            guard let d = defaults[key] else { throw fail("optimizer option '\(key)' is not one rnn-dist knows") }
            let same = options[key] == d || (options[key]?.double != nil && options[key]?.double == d.double)
            guard same else { throw fail("optimizer option '\(key)' = \(options[key]!) is not supported (only Keras's default \(d))") }
        }
        func number(_ key: String, _ d: Double) throws -> Double {
            guard let v = options[key] else { return d }
            guard let x = v.double else { throw fail("optimizer option '\(key)' = \(v) is not supported (only a number; no schedule)") }
            return x
        }
        optimizer = kind
        learningRate = try number("learning_rate", kind.defaultLearningRate)
        momentum = kind == .sgd ? try number("momentum", 0) : 0
        // Clipping by the global norm is --clip-norm's.
        if let g = options["global_clipnorm"], g != .null {
            guard let x = g.double, x > 0 else { throw fail("optimizer option 'global_clipnorm' = \(g) is not supported (a positive number or null)") }
            globalClipNorm = x
        } else {
            globalClipNorm = nil
        }
        // The loss must be the output layer's own.
        let want: (name: String, className: String, logits: Bool) = switch head {
        case .sigmoid: ("binary_crossentropy", "BinaryCrossentropy", false)
        case .logit: ("binary_crossentropy", "BinaryCrossentropy", true)
        case .softmax: ("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy", false)
        }
        let lossText = compile["loss"].map { "\($0)" } ?? "none"
        let refused = fail("loss \(lossText) is not this output layer's (rnn-dist trains it with \(want.className)(from_logits=\(want.logits ? "True" : "False"))")
        switch compile["loss"] {
        case .string(let s)? where s == want.name && !want.logits: break
        case .object(let o)?:
            let c = o["config"]?.object ?? [:]
            guard o["class_name"]?.string == want.className, o["registered_name"] ?? .null == .null,
                  c["from_logits"] ?? .bool(false) == .bool(want.logits),
                  (c["reduction"] ?? .string("sum_over_batch_size")) == .string("sum_over_batch_size"),
                  (c["label_smoothing"]?.double ?? 0) == 0, c["ignore_class"] ?? .null == .null,
                  (c["axis"]?.int ?? -1) == -1 else { throw refused }
        default: throw refused
        }
    }
}

extension OptimizerKind {
    /// `Adam(learning_rate=0.01, global_clipnorm=1.0)`: an optimizer as Keras would be given it.
    public static func kerasLabel(_ kind: OptimizerKind, learningRate: Double, momentum: Double, clipNorm: Double?) -> String {
        "\(kind.kerasName)(learning_rate=\(Float(learningRate))\(kind == .sgd ? ", momentum=\(Float(momentum))" : "")"
            + "\(clipNorm.map { ", global_clipnorm=\(Float($0))" } ?? ""))"
    }

    /// Keras's class name.
    public var kerasName: String {
        switch self {
        case .rmsprop: return "RMSprop"
        case .adam: return "Adam"
        case .sgd: return "SGD"
        }
    }
}
