// An rnn-dist classifier as an ONNX inference graph (opset 17, IR version 8): token ids in
// (`input_ids`, int64 [batch, maxlen]), the probabilities `rnn-dist predict` prints out
// (`probabilities`, float [batch, K]).
//
// Layer by layer:
//   Embedding           Gather on the table → (B, T, E)
//   SimpleRNN/LSTM/GRU  ONNX RNN/LSTM/GRU, time-major (T, B, ·), weights as RecurrentWeights.swift
//                       converts them; Bidirectional → direction "bidirectional" (forward first, as
//                       Keras's concat); go_backwards → direction "reverse", a returned sequence then
//                       flipped into reading order (Slice, step −1), as rnn-dist and Keras return it.
//                       Without return_sequences Y_h (dirs, B, H) → (B, dirs·H); with it
//                       Y (T, dirs, B, H) → (T, B, dirs·H).
//   Dense               MatMul + Add (+ Relu | Tanh | Sigmoid)
//   Conv1D              Conv on (B, D, T), Keras's kernel (k, D, F) as (F, D, k), padding as explicit pads
//   MaxPooling1D        MaxPool on (B, D, T), TensorFlow's same padding as explicit pads
//   GlobalMax/Average   ReduceMax / ReduceMean over the time axis
//   Flatten             Flatten of (B, T, D) (step by step, as Keras's)
//   Dropout             nothing (inference)
// then the head: Sigmoid and [1 − p, p] for one logit (sigmoid or logit head), Softmax for K.
// A value is kept in whichever layout its last layer gave and transposed only when the next layer
// reads another one (one Transpose between the embedding and a recurrent stack).

import Foundation
import RNN

/// A model the export cannot write (the message names what and why).
public struct ONNXExportError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Builds the ONNX model of an rnn-dist classifier.
public enum ONNXExport {
    public static let opsetVersion: Int64 = 17
    public static let irVersion: Int64 = 8
    public static let inputName = "input_ids"
    public static let outputName = "probabilities"
    /// The symbolic batch dimension of the input and the output.
    public static let batchDimension = "batch"

    /// The graph of `config` with `weights` (Keras layout, the parameter table's flat buffer) for rows
    /// of `maxlen` token ids; `classNames` go into the model's metadata (key "class_names", a JSON
    /// list in the order of the probabilities).
    /// - Throws: `ModelConfigError` when the config does not run on `maxlen` steps, `ONNXExportError`
    ///   when the weights do not fit it. Nothing is written here; the caller writes `serialized()`.
    public static func model(config: ModelConfig, weights: [Float], maxlen: Int, classNames: [String],
                             producerVersion: String) throws -> ONNXModel {
        try config.validate(steps: maxlen)
        guard weights.count == config.parameterCount else {
            throw ONNXExportError("the weights hold \(weights.count) values, the model has \(config.parameterCount) parameters")
        }
        var b = GraphBuilder(weights: weights, maxlen: maxlen)
        for entry in config.layerTable(steps: maxlen) { b.add(entry) }
        b.head(config.head, classes: config.classCount)
        var metadata = [(key: "maxlen", value: "\(maxlen)"), (key: "rnn_dist_model", value: config.summary)]
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        if let json = try? encoder.encode(classNames) {
            metadata.append((key: "class_names", value: String(decoding: json, as: UTF8.self)))
        }
        return ONNXModel(irVersion: irVersion, opsetVersion: opsetVersion, producerName: "rnn-dist",
                         producerVersion: producerVersion, graph: b.graph, metadata: metadata)
    }
}

/// How a value of the graph holds a batch: a sequence in one of three axis orders, or a vector.
enum Layout: Equatable {
    /// (B, T, D): the embedding's output, what Flatten reads.
    case batchMajor
    /// (T, B, D): what the recurrent operators read and return.
    case timeMajor
    /// (B, D, T): what Conv and MaxPool read and return.
    case channels
    /// (B, D).
    case vector

    enum Axis { case batch, time, width }

    /// The axes in order (nil for a vector).
    var axes: [Axis]? {
        switch self {
        case .batchMajor: return [.batch, .time, .width]
        case .timeMajor: return [.time, .batch, .width]
        case .channels: return [.batch, .width, .time]
        case .vector: return nil
        }
    }

    /// Transpose's perm from `self` to `target` (both sequences): output axis i is input axis perm[i].
    func permutation(to target: Layout) -> [Int64] {
        guard let from = axes, let to = target.axes else { preconditionFailure("no permutation between \(self) and \(target)") }
        return to.map { Int64(from.firstIndex(of: $0)!) }
    }
}

/// The graph under construction and the value the next layer reads.
struct GraphBuilder {
    private(set) var graph = ONNXGraph(name: "rnn_dist")
    private let weights: [Float]
    /// The current value: its name and layout (its width and steps are the layer table's shapes).
    private var value = ONNXExport.inputName
    private var layout = Layout.batchMajor

    init(weights: [Float], maxlen: Int) {
        self.weights = weights
        graph.inputs = [ONNXValueInfo(name: ONNXExport.inputName, elementType: .int64,
                                      shape: [.param(ONNXExport.batchDimension), .value(maxlen)])]
    }

    /// One layer of the model (of a layer table for a fixed number of steps, so every sequence's T is known).
    mutating func add(_ entry: LayerTensors) {
        let name = entry.name, t = entry.tensors
        let width: Int, steps: Int
        switch entry.input {
        case .tokens(let T): (width, steps) = (0, T ?? 0)
        case .sequence(let D, let T): (width, steps) = (D, T ?? 0)
        case .vector(let D): (width, steps) = (D, 0)
        }
        switch entry.layer {
        case .embedding(let e):
            let table = initializer("\(name)/embeddings", dims: [e.inputDim, e.outputDim], t[0])
            value = node("Gather", "\(name)/Gather", [table, ONNXExport.inputName])
            layout = .batchMajor
        case .dropout:
            break                                                         // the identity at inference
        case .recurrent(let r):
            recurrent(r, name: name, tensors: t, inputWidth: width)
        case .dense(let d):
            var z = node("MatMul", "\(name)/MatMul", [value, initializer("\(name)/kernel", dims: t[0].shape, t[0])])
            if d.useBias { z = node("Add", "\(name)/Add", [z, initializer("\(name)/bias", dims: t[1].shape, t[1])]) }
            value = activation(d.activation, z, name: name)
        case .flatten:
            guard layout != .vector else { break }                        // Keras: (None, D) stays (None, D)
            arrange(.batchMajor, name: name)
            value = node("Flatten", "\(name)/Flatten", [value], [ONNXAttribute("axis", .int(1))])
            layout = .vector
        case .conv1D(let c):
            conv(c, name: name, tensors: t, inputWidth: width, steps: steps)
        case .pooling1D(let p):
            arrange(.channels, name: name)
            let out = p.outputSteps(steps), left = p.leftPadding(steps: steps)
            let total = max(0, (out - 1) * p.strides + p.poolSize - steps)
            value = node("MaxPool", "\(name)/MaxPool", [value], [
                ONNXAttribute("kernel_shape", .ints([Int64(p.poolSize)])), ONNXAttribute("strides", .ints([Int64(p.strides)])),
                ONNXAttribute("pads", .ints([Int64(left), Int64(total - left)])),
            ])
        case .globalPooling1D(let g):
            let axis = layout.axes!.firstIndex(of: .time)!
            value = node(g.average ? "ReduceMean" : "ReduceMax", "\(name)/\(g.average ? "ReduceMean" : "ReduceMax")", [value],
                         [ONNXAttribute("axes", .ints([Int64(axis)])), ONNXAttribute("keepdims", .int(0))])
            layout = .vector
        }
    }

    /// ONNX RNN, LSTM or GRU over the time-major sequence, its output reshaped to (B, dirs·H) or
    /// (T, B, dirs·H).
    private mutating func recurrent(_ r: RecurrentSpec, name: String, tensors t: [ParameterView], inputWidth I: Int) {
        arrange(.timeMajor, name: name)
        let dirs = r.bidirectional ? 2 : 1, H = r.units, blocks = RecurrentWeights.kerasBlocks(r.kind)
        let G = blocks.count * H, perDirection = r.useBias ? 3 : 2
        var w: [Float] = [], u: [Float] = [], bias: [Float] = []
        for d in 0..<dirs {
            let kernel = t[perDirection * d], recurrentKernel = t[perDirection * d + 1]
            w += RecurrentWeights.gateRows(weights[kernel.range], rows: I, units: H, blocks: blocks)
            u += RecurrentWeights.gateRows(weights[recurrentKernel.range], rows: H, units: H, blocks: blocks)
            bias += RecurrentWeights.biasRow(r.useBias ? weights[t[perDirection * d + 2].range] : nil,
                                             kind: r.kind, resetAfter: r.resetAfter, units: H)
        }
        let op: String
        switch r.kind {
        case .simpleRNN: op = "RNN"
        case .lstm: op = "LSTM"
        case .gru: op = "GRU"
        }
        var attributes = [ONNXAttribute("hidden_size", .int(Int64(H))),
                          ONNXAttribute("direction", .string(r.bidirectional ? "bidirectional" : r.goBackwards ? "reverse" : "forward"))]
        if r.kind == .gru { attributes.append(ONNXAttribute("linear_before_reset", .int(r.resetAfter ? 1 : 0))) }
        let inputs = [value, constant("\(name)/W", dims: [dirs, G, I], w), constant("\(name)/R", dims: [dirs, G, H], u),
                      constant("\(name)/B", dims: [dirs, 2 * G], bias)]
        let D = dirs * H
        if r.returnSequences {
            var y = "\(name)/Y"
            graph.nodes.append(ONNXNode(op, name: "\(name)/\(op)", inputs: inputs, outputs: [y], attributes: attributes))
            if r.goBackwards {
                // Y is in time order (Y[t] after reading x_{T−1} … x_t); Keras and rnn-dist return the reading order.
                y = node("Slice", "\(name)/Slice", [y, int64s("\(name)/slice_starts", [-1]), int64s("\(name)/slice_ends", [Int64.min]),
                                                     int64s("\(name)/slice_axes", [0]), int64s("\(name)/slice_steps", [-1])])
            }
            let merged = node("Transpose", "\(name)/Transpose", [y], [ONNXAttribute("perm", .ints([0, 2, 1, 3]))])
            value = node("Reshape", "\(name)/Reshape", [merged, int64s("\(name)/shape", [0, 0, Int64(D)])])
            layout = .timeMajor
        } else {
            let h = "\(name)/Y_h"
            graph.nodes.append(ONNXNode(op, name: "\(name)/\(op)", inputs: inputs, outputs: ["", h], attributes: attributes))
            let merged = node("Transpose", "\(name)/Transpose", [h], [ONNXAttribute("perm", .ints([1, 0, 2]))])
            value = node("Reshape", "\(name)/Reshape", [merged, int64s("\(name)/shape", [0, Int64(D)])])
            layout = .vector
        }
    }

    /// Conv over (B, D, T): Keras's kernel (k, D, F) as (F, D, k), pads [left, right] that give
    /// Keras's output length.
    private mutating func conv(_ c: Conv1DSpec, name: String, tensors t: [ParameterView], inputWidth D: Int, steps: Int) {
        arrange(.channels, name: name)
        let k = c.kernelSize, F = c.filters
        let kernel = weights[t[0].range], base = kernel.startIndex
        var w = [Float](repeating: 0, count: F * D * k)
        for j in 0..<k {
            for d in 0..<D {
                for f in 0..<F { w[(f * D + d) * k + j] = kernel[base + (j * D + d) * F + f] }
            }
        }
        let out = c.outputSteps(steps), left = c.leftPadding, right = out + k - 1 - steps - left
        var inputs = [value, constant("\(name)/kernel", dims: [F, D, k], w)]
        if c.useBias { inputs.append(initializer("\(name)/bias", dims: t[1].shape, t[1])) }
        let y = node("Conv", "\(name)/Conv", inputs, [
            ONNXAttribute("kernel_shape", .ints([Int64(k)])), ONNXAttribute("pads", .ints([Int64(left), Int64(right)])),
            ONNXAttribute("strides", .ints([1])), ONNXAttribute("dilations", .ints([1])),
        ])
        value = activation(c.activation, y, name: name)
    }

    /// The probabilities from the last layer's logits (B, K).
    mutating func head(_ spec: HeadSpec, classes: Int) {
        let out = ONNXExport.outputName
        switch spec {
        case .sigmoid, .logit:
            let p = node("Sigmoid", "head/Sigmoid", [value])
            let q = node("Sub", "head/Sub", [constant("head/one", dims: [1], [1]), p])
            graph.nodes.append(ONNXNode("Concat", name: "head/Concat", inputs: [q, p], outputs: [out],
                                        attributes: [ONNXAttribute("axis", .int(1))]))
        case .softmax:
            graph.nodes.append(ONNXNode("Softmax", name: "head/Softmax", inputs: [value], outputs: [out],
                                        attributes: [ONNXAttribute("axis", .int(1))]))
        }
        graph.outputs = [ONNXValueInfo(name: out, elementType: .float, shape: [.param(ONNXExport.batchDimension), .value(classes)])]
    }

    /// Transposes the current sequence into `target`'s layout (nothing when it is already there).
    private mutating func arrange(_ target: Layout, name: String) {
        guard layout != target else { return }
        value = node("Transpose", "\(name)/Transpose_in", [value], [ONNXAttribute("perm", .ints(layout.permutation(to: target)))])
        layout = target
    }

    /// `z` through a Dense's or Conv1D's activation.
    private mutating func activation(_ a: Nonlinearity, _ z: String, name: String) -> String {
        switch a {
        case .linear: return z
        case .relu: return node("Relu", "\(name)/Relu", [z])
        case .tanh: return node("Tanh", "\(name)/Tanh", [z])
        case .sigmoid: return node("Sigmoid", "\(name)/Sigmoid", [z])
        }
    }

    /// Appends a node with one output named as the node; returns that name.
    private mutating func node(_ op: String, _ name: String, _ inputs: [String], _ attributes: [ONNXAttribute] = []) -> String {
        graph.nodes.append(ONNXNode(op, name: name, inputs: inputs, outputs: [name], attributes: attributes))
        return name
    }

    /// A Keras tensor as it is, as an initializer; returns its name.
    private mutating func initializer(_ name: String, dims: [Int], _ view: ParameterView) -> String {
        constant(name, dims: dims, Array(weights[view.range]))
    }

    private mutating func constant(_ name: String, dims: [Int], _ values: [Float]) -> String {
        graph.initializers.append(ONNXTensor(name: name, dims: dims, floats: values))
        return name
    }

    private mutating func int64s(_ name: String, _ values: [Int64]) -> String {
        graph.initializers.append(ONNXTensor(name: name, dims: [values.count], int64s: values))
        return name
    }
}
