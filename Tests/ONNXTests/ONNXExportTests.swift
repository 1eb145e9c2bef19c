import XCTest
import Foundation
import ONNX
@testable import RNN
import TestSupport
@testable import Training

/// `rnn-dist export --onnx`: the file read back with the tests' own protobuf decoder
/// (ProtobufReader.swift): its structure, and each initializer against the Keras tensors it comes
/// from, reordered as ONNX lays them out. The numbers themselves (onnxruntime against `predict`) are
/// Launch/onnx_check.py's.
final class ONNXExportTests: XCTestCase {
    var tmp: TempDir!

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: Subprocess.rnnDist) else {
            throw XCTSkip("rnn-dist is not built at \(Subprocess.rnnDist)")
        }
        tmp = try TempDir("onnx")
    }

    override func tearDown() { tmp?.remove() }

    /// A model of `layers` with seeded weights, written as a weights file, exported by the binary and read back.
    private func export(_ layers: [LayerSpec], head: HeadSpec = .sigmoid, classes: [String] = ["neg", "pos"],
                        maxlen: Int = 12, inputLength: Int? = nil, file: StaticString = #filePath,
                        line: UInt = #line) throws -> (onnx: DecodedONNX, model: Model) {
        let config = ModelConfig(layers: layers, head: head, inputLength: inputLength)
        try config.validate(steps: maxlen)
        let m = Model(config: config, seed: 9)
        let metadata = WeightsMetadata(config: TrainConfig(model: config, maxlen: maxlen), tokenizerJSON: WeightsMetadata.tokenizerJSON(numWords: config.vocabularySize, maxlen: maxlen),
                                       vocabulary: (4 ..< config.vocabularySize).map { "w\($0)" }, classNames: classes)
        let weights = tmp.file("model.weights.h5"), out = tmp.file("model.onnx")
        try WeightsFile.write(to: weights, weights: m.weights, metadata: metadata)
        let r = try Subprocess.rnnDist(["export", "--onnx", weights, "-o", out])
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stdout.hasPrefix("wrote \(out) (ONNX opset 17"), r.stdout, file: file, line: line)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: out)))
        return (try DecodedONNX(bytes), m)
    }

    /// The Keras tensor at `path` ("layers/lstm/cell/vars/0") of the model's weights.
    private func keras(_ m: Model, _ path: String) throws -> (shape: [Int], values: [Float]) {
        let view = try XCTUnwrap(m.config.parameterTable.first { $0.kerasPath == path }, "no tensor \(path)")
        return (view.shape, Array(m.weights[view.range]))
    }

    /// ONNX's gate blocks (rows of W, R; entries of Wb) as Keras's gate blocks (columns), by gate name.
    private func kerasBlock(_ gate: Character, kind: ModelConfig.Kind) -> Int {
        let keras: [Character] = kind == .lstm ? ["i", "f", "c", "o"] : kind == .gru ? ["z", "r", "h"] : ["h"]
        return keras.firstIndex(of: gate)!
    }

    /// Checks one direction of an ONNX W or R (G × rows at `direction`) against a Keras kernel (rows × G):
    /// row g·H + j of ONNX gate `gates[g]` is the Keras column of that gate's block, unit j.
    private func checkGateRows(_ onnx: [Float], direction: Int, keras: [Float], rows: Int, units H: Int, gates: [Character],
                               kind: ModelConfig.Kind, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let G = gates.count * H
        XCTAssertEqual(keras.count, rows * G, what, file: file, line: line)
        for (g, gate) in gates.enumerated() {
            let block = kerasBlock(gate, kind: kind)
            var got: [Float] = [], want: [Float] = []
            for j in 0..<H {
                for r in 0..<rows {
                    got.append(onnx[direction * G * rows + (g * H + j) * rows + r])
                    want.append(keras[r * G + block * H + j])
                }
            }
            XCTAssertEqual(got, want, "\(what): gate \(gate)", file: file, line: line)
        }
    }

    private func checkInputsAndOutputs(_ onnx: DecodedONNX, maxlen: Int, classes: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(onnx.irVersion, 8, file: file, line: line)
        XCTAssertEqual(onnx.producerName, "rnn-dist", file: file, line: line)
        XCTAssertEqual(onnx.opsets.map(\.domain), [""], file: file, line: line)
        XCTAssertEqual(onnx.opsets.map(\.version), [17], file: file, line: line)
        XCTAssertEqual(onnx.inputs.map(\.name), ["input_ids"], file: file, line: line)
        XCTAssertEqual(onnx.inputs.first?.elementType, 7, "int64", file: file, line: line)
        XCTAssertEqual(onnx.inputs.first?.dims, ["batch", "\(maxlen)"], file: file, line: line)
        XCTAssertEqual(onnx.outputs.map(\.name), ["probabilities"], file: file, line: line)
        XCTAssertEqual(onnx.outputs.first?.elementType, 1, "float", file: file, line: line)
        XCTAssertEqual(onnx.outputs.first?.dims, ["batch", "\(classes)"], file: file, line: line)
        XCTAssertEqual(onnx.nodes.last?.outputs, ["probabilities"], file: file, line: line)
        // Every node input is the graph's input, an initializer or an earlier node's output.
        var known = Set(onnx.initializers.keys).union(["input_ids", ""])
        for n in onnx.nodes {
            for i in n.inputs { XCTAssertTrue(known.contains(i), "\(n.name) reads \(i) before it exists", file: file, line: line) }
            known.formUnion(n.outputs)
        }
        for t in onnx.initializers.values {
            XCTAssertEqual(t.raw.count, t.dims.reduce(1, *) * (t.dataType == 1 ? 4 : 8), file: file, line: line)
        }
    }

    func testTheWriterEncodesProtobufsWireFormat() throws {
        // The examples of protobuf's encoding guide: field 1 = 150 is 08 96 01; field 2 = "testing"
        // is 12 07 74 65 73 74 69 6e 67; a negative int64 takes ten bytes.
        var graph = ONNXGraph(name: "testing")
        graph.nodes = [ONNXNode("Neg", name: "n", inputs: ["x"], outputs: ["y"],
                                attributes: [ONNXAttribute("i", .int(-2)), ONNXAttribute("big", .ints([300, Int64.min])),
                                             ONNXAttribute("f", .float(0.5)), ONNXAttribute("s", .string("é"))])]
        graph.initializers = [ONNXTensor(name: "t", dims: [2], floats: [1, -2.5]), ONNXTensor(name: "k", dims: [1], int64s: [-1])]
        let bytes = ONNXModel(irVersion: 150, opsetVersion: 17, producerName: "p", producerVersion: "v", graph: graph).serialized()
        XCTAssertEqual(Array(bytes.prefix(3)), [0x08, 0x96, 0x01])
        let model = try ProtoMessage(bytes)
        let g = try XCTUnwrap(model.message(7))
        XCTAssertEqual(try g.string(2), "testing")
        let node = try XCTUnwrap(g.message(1))
        let attributes = try node.messages(5)
        XCTAssertEqual(try attributes.map { try $0.string(1) }, ["i", "big", "f", "s"])
        XCTAssertEqual(try attributes[0].int(3), -2)
        XCTAssertEqual(try attributes[0].int(20), 2)
        XCTAssertEqual(try attributes[1].ints(8), [300, Int64.min])
        XCTAssertEqual(try attributes[1].int(20), 7)
        XCTAssertEqual(try attributes[2].float(2), 0.5)
        XCTAssertEqual(try attributes[2].int(20), 1)
        XCTAssertEqual(try attributes[3].string(4), "é")
        XCTAssertEqual(try attributes[3].int(20), 3)
        // −2 as a varint: ten bytes, 0xfe then 0xff × 8 then 0x01, after the name (0a 01 'i') and the key of i (0x18).
        XCTAssertEqual(try node.bytes(5)[0].prefix(14), [0x0a, 0x01, 0x69, 0x18, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
        let tensors = try g.messages(5)
        XCTAssertEqual(try tensors[0].bytes(9), [[0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0]])   // 1.0, −2.5 little-endian
        XCTAssertEqual(try tensors[1].bytes(9), [[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]])
        XCTAssertEqual(try tensors.map { try $0.int(2) }, [1, 7])
    }

    func testAnLSTMClassifierBecomesGatherLSTMMatMulAndTheSigmoidPair() throws {
        let (onnx, m) = try export([.embedding(EmbeddingSpec(inputDim: 30, outputDim: 4)), .recurrent(RecurrentSpec(kind: .lstm, units: 5)),
                                    .dense(DenseSpec(units: 1))])
        checkInputsAndOutputs(onnx, maxlen: 12, classes: 2)
        XCTAssertEqual(onnx.opTypes, ["Gather", "Transpose", "LSTM", "Transpose", "Reshape", "MatMul", "Add", "Sigmoid", "Sub", "Concat"])
        XCTAssertEqual(onnx.metadata["class_names"], #"["neg","pos"]"#)
        XCTAssertEqual(onnx.metadata["maxlen"], "12")
        XCTAssertEqual(onnx.metadata["rnn_dist_model"], "lstm, 1 layer of 5 units, embedding 30×4", "the model's summary, as inspect gives it")
        XCTAssertEqual(try onnx.node("lstm/Transpose_in").ints("perm"), [1, 0, 2])
        let lstm = try onnx.node("lstm/LSTM")
        XCTAssertEqual(try lstm.int("hidden_size"), 5)
        XCTAssertEqual(try lstm.string("direction"), "forward")
        XCTAssertEqual(lstm.outputs, ["", "lstm/Y_h"])
        XCTAssertEqual(lstm.inputs, ["lstm/Transpose_in", "lstm/W", "lstm/R", "lstm/B"])
        XCTAssertEqual(try onnx.node("lstm/Transpose").ints("perm"), [1, 0, 2])
        XCTAssertEqual(try onnx.tensor("lstm/shape").int64s, [0, 5])

        let W = try onnx.tensor("lstm/W"), R = try onnx.tensor("lstm/R"), B = try onnx.tensor("lstm/B")
        XCTAssertEqual([W.dims, R.dims, B.dims], [[1, 20, 4], [1, 20, 5], [1, 40]])
        XCTAssertEqual([W.dataType, R.dataType, B.dataType], [1, 1, 1])
        let kernel = try keras(m, "layers/lstm/cell/vars/0"), recurrent = try keras(m, "layers/lstm/cell/vars/1")
        let bias = try keras(m, "layers/lstm/cell/vars/2").values
        // Gate o: ONNX's second block of rows, Keras's fourth block of columns.
        let H = 5
        for j in 0..<H {
            for r in 0..<4 { XCTAssertEqual(W.floats[(1 * H + j) * 4 + r], kernel.values[r * 4 * H + 3 * H + j], "W o[\(j)][\(r)]") }
        }
        checkGateRows(W.floats, direction: 0, keras: kernel.values, rows: 4, units: H, gates: ["i", "o", "f", "c"], kind: .lstm, "W")
        checkGateRows(R.floats, direction: 0, keras: recurrent.values, rows: H, units: H, gates: ["i", "o", "f", "c"], kind: .lstm, "R")
        let gates = Array(bias[0..<5]) + Array(bias[15..<20]) + Array(bias[5..<10]) + Array(bias[10..<15])
        XCTAssertEqual(B.floats, gates + [Float](repeating: 0, count: 20))
        XCTAssertNotEqual(bias[5..<10].reduce(0, +), 0, "Keras's LSTM forget bias starts at 1: the gates are told apart")
        // The rest as Keras keeps it.
        XCTAssertEqual(try onnx.tensor("embedding/embeddings").floats, try keras(m, "layers/embedding/vars/0").values)
        XCTAssertEqual(try onnx.tensor("embedding/embeddings").dims, [30, 4])
        XCTAssertEqual(try onnx.tensor("dense/kernel").floats, try keras(m, "layers/dense/vars/0").values)
        XCTAssertEqual(try onnx.tensor("dense/kernel").dims, [5, 1])
        XCTAssertEqual(try onnx.tensor("dense/bias").dims, [1])
        XCTAssertEqual(try onnx.node("head/Sub").inputs, ["head/one", "head/Sigmoid"])
        XCTAssertEqual(try onnx.tensor("head/one").floats, [1])
        XCTAssertEqual(try onnx.node("head/Concat").inputs, ["head/Sub", "head/Sigmoid"])
        XCTAssertEqual(try onnx.node("head/Concat").int("axis"), 1)
    }

    func testGRUBiasesFollowResetAfterAndNoBiasIsZeros() throws {
        for resetAfter in [true, false] {
            let (onnx, m) = try export([.embedding(EmbeddingSpec(inputDim: 30, outputDim: 4)),
                                        .recurrent(RecurrentSpec(kind: .gru, units: 3, resetAfter: resetAfter)), .dense(DenseSpec(units: 1))])
            checkInputsAndOutputs(onnx, maxlen: 12, classes: 2)
            let gru = try onnx.node("gru/GRU")
            XCTAssertEqual(try gru.int("linear_before_reset"), resetAfter ? 1 : 0)
            XCTAssertEqual(try gru.int("hidden_size"), 3)
            checkGateRows(try onnx.tensor("gru/W").floats, direction: 0, keras: try keras(m, "layers/gru/cell/vars/0").values,
                          rows: 4, units: 3, gates: ["z", "r", "h"], kind: .gru, "W reset_after \(resetAfter)")
            checkGateRows(try onnx.tensor("gru/R").floats, direction: 0, keras: try keras(m, "layers/gru/cell/vars/1").values,
                          rows: 3, units: 3, gates: ["z", "r", "h"], kind: .gru, "R reset_after \(resetAfter)")
            // Keras starts GRU biases at zero: give them values so the check can tell rows apart.
            var w = m.weights
            let biasView = try XCTUnwrap(m.config.parameterTable.first { $0.kerasPath == "layers/gru/cell/vars/2" })
            XCTAssertEqual(biasView.shape, resetAfter ? [2, 9] : [9])
            for k in biasView.range { w[k] = Float(k - biasView.offset + 1) }
            let weights = tmp.file("bias.weights.h5"), out = tmp.file("bias.onnx")
            try WeightsFile.write(to: weights, weights: w, metadata: WeightsMetadata(
                config: TrainConfig(model: m.config, maxlen: 12), tokenizerJSON: WeightsMetadata.tokenizerJSON(numWords: m.config.vocabularySize, maxlen: 12), vocabulary: (4 ..< 30).map { "w\($0)" }))
            XCTAssertEqual(try Subprocess.rnnDist(["export", "--onnx", weights, "-o", out]).status, 0)
            let B = try DecodedONNX([UInt8](Data(contentsOf: URL(fileURLWithPath: out)))).tensor("gru/B")
            XCTAssertEqual(B.dims, [1, 18])
            let want: [Float] = resetAfter ? (1...18).map(Float.init) : (1...9).map(Float.init) + [Float](repeating: 0, count: 9)
            XCTAssertEqual(B.floats, want, "reset_after \(resetAfter): [input row | recurrent row]")
        }
        let (onnx, _) = try export([.embedding(EmbeddingSpec(inputDim: 30, outputDim: 4)),
                                    .recurrent(RecurrentSpec(kind: .lstm, units: 3, useBias: false)), .dense(DenseSpec(units: 1, useBias: false))])
        XCTAssertEqual(try onnx.tensor("lstm/B").floats, [Float](repeating: 0, count: 24))
        XCTAssertEqual(onnx.opTypes, ["Gather", "Transpose", "LSTM", "Transpose", "Reshape", "MatMul", "Sigmoid", "Sub", "Concat"])
    }

    func testABidirectionalSequenceFeedsAStackedGRU() throws {
        let (onnx, m) = try export([.embedding(EmbeddingSpec(inputDim: 30, outputDim: 4)), .dropout(DropoutSpec(rate: 0.3)),
                                    .recurrent(RecurrentSpec(kind: .gru, units: 3, returnSequences: true, bidirectional: true, dropout: 0.2)),
                                    .recurrent(RecurrentSpec(kind: .gru, units: 2, recurrentDropout: 0.1)), .dense(DenseSpec(units: 1))])
        checkInputsAndOutputs(onnx, maxlen: 12, classes: 2)
        XCTAssertEqual(onnx.opTypes, ["Gather", "Transpose", "GRU", "Transpose", "Reshape", "GRU", "Transpose", "Reshape",
                                      "MatMul", "Add", "Sigmoid", "Sub", "Concat"])
        let bi = try onnx.node("bidirectional/GRU")
        XCTAssertEqual(try bi.string("direction"), "bidirectional")
        XCTAssertEqual(bi.outputs, ["bidirectional/Y"])
        XCTAssertEqual(try onnx.node("bidirectional/Transpose").ints("perm"), [0, 2, 1, 3])
        XCTAssertEqual(try onnx.tensor("bidirectional/shape").int64s, [0, 0, 6])
        let W = try onnx.tensor("bidirectional/W"), R = try onnx.tensor("bidirectional/R")
        XCTAssertEqual(W.dims, [2, 9, 4])
        XCTAssertEqual(R.dims, [2, 9, 3])
        XCTAssertEqual(try onnx.tensor("bidirectional/B").dims, [2, 18])
        for (d, side) in ["forward_layer", "backward_layer"].enumerated() {
            checkGateRows(W.floats, direction: d, keras: try keras(m, "layers/bidirectional/\(side)/cell/vars/0").values,
                          rows: 4, units: 3, gates: ["z", "r", "h"], kind: .gru, "W \(side)")
            checkGateRows(R.floats, direction: d, keras: try keras(m, "layers/bidirectional/\(side)/cell/vars/1").values,
                          rows: 3, units: 3, gates: ["z", "r", "h"], kind: .gru, "R \(side)")
        }
        // The second GRU ("gru_1": Keras counted the wrapped one) reads the time-major (T, B, 6) sequence as it is.
        let second = try onnx.node("gru_1/GRU")
        XCTAssertEqual(second.inputs.first, "bidirectional/Reshape")
        XCTAssertEqual(try second.string("direction"), "forward")
        XCTAssertEqual(try onnx.tensor("gru_1/W").dims, [1, 6, 6])
        XCTAssertEqual(second.outputs, ["", "gru_1/Y_h"])
    }

    func testGoBackwardsRunsInReverseAndReturnsTheReadingOrder() throws {
        let (onnx, m) = try export([.embedding(EmbeddingSpec(inputDim: 30, outputDim: 4)),
                                    .recurrent(RecurrentSpec(kind: .simpleRNN, units: 3, returnSequences: true, goBackwards: true)),
                                    .recurrent(RecurrentSpec(kind: .simpleRNN, units: 2, goBackwards: true)), .dense(DenseSpec(units: 3))],
                                   head: .softmax, classes: ["a", "b", "c"])
        checkInputsAndOutputs(onnx, maxlen: 12, classes: 3)
        XCTAssertEqual(onnx.opTypes, ["Gather", "Transpose", "RNN", "Slice", "Transpose", "Reshape", "RNN", "Transpose", "Reshape",
                                      "MatMul", "Add", "Softmax"])
        XCTAssertEqual(try onnx.node("simple_rnn/RNN").string("direction"), "reverse")
        XCTAssertEqual(try onnx.node("simple_rnn_1/RNN").string("direction"), "reverse")
        let slice = try onnx.node("simple_rnn/Slice")
        XCTAssertEqual(slice.inputs.first, "simple_rnn/Y")
        XCTAssertEqual(try slice.inputs.dropFirst().map { try onnx.tensor($0).int64s }, [[-1], [Int64.min], [0], [-1]])
        XCTAssertEqual(try onnx.node("head/Softmax").int("axis"), 1)
        XCTAssertEqual(onnx.metadata["class_names"], #"["a","b","c"]"#)
        checkGateRows(try onnx.tensor("simple_rnn/W").floats, direction: 0, keras: try keras(m, "layers/simple_rnn/cell/vars/0").values,
                      rows: 4, units: 3, gates: ["h"], kind: .simpleRNN, "W")
        checkGateRows(try onnx.tensor("simple_rnn_1/R").floats, direction: 0, keras: try keras(m, "layers/simple_rnn_1/cell/vars/1").values,
                      rows: 2, units: 2, gates: ["h"], kind: .simpleRNN, "R")
    }

    func testConvolutionsPoolingAndFlattenBecomeConvMaxPoolReduceAndFlatten() throws {
        let (onnx, m) = try export([.embedding(EmbeddingSpec(inputDim: 30, outputDim: 4)),
                                    .conv1D(Conv1DSpec(filters: 6, kernelSize: 4, padding: .same, activation: .relu)),
                                    .pooling1D(Pooling1DSpec(poolSize: 3, strides: 2, padding: .same)),
                                    .conv1D(Conv1DSpec(filters: 5, kernelSize: 3, useBias: false)),
                                    .globalPooling1D(GlobalPooling1DSpec(average: false)),
                                    .dense(DenseSpec(units: 7, activation: .tanh)), .dropout(DropoutSpec(rate: 0.5)), .dense(DenseSpec(units: 1))],
                                   head: .logit, maxlen: 11)
        checkInputsAndOutputs(onnx, maxlen: 11, classes: 2)
        XCTAssertEqual(onnx.opTypes, ["Gather", "Transpose", "Conv", "Relu", "MaxPool", "Conv", "ReduceMax",
                                      "MatMul", "Add", "Tanh", "MatMul", "Add", "Sigmoid", "Sub", "Concat"])
        XCTAssertEqual(try onnx.node("conv1d/Transpose_in").ints("perm"), [0, 2, 1])
        let conv = try onnx.node("conv1d/Conv")
        XCTAssertEqual(try conv.ints("kernel_shape"), [4])
        XCTAssertEqual(try conv.ints("pads"), [1, 2], "TensorFlow's same padding: the smaller half first")
        XCTAssertEqual(conv.inputs.count, 3)
        let pool = try onnx.node("max_pooling1d/MaxPool")
        XCTAssertEqual(try pool.ints("kernel_shape"), [3])
        XCTAssertEqual(try pool.ints("strides"), [2])
        XCTAssertEqual(try pool.ints("pads"), [1, 1], "11 steps, pool 3 stride 2 same: 6 outputs, 2 padded")
        XCTAssertEqual(try onnx.node("conv1d_1/Conv").ints("pads"), [0, 0])
        XCTAssertEqual(try onnx.node("conv1d_1/Conv").inputs.count, 2)
        XCTAssertEqual(try onnx.node("global_max_pooling1d/ReduceMax").ints("axes"), [2])
        XCTAssertEqual(try onnx.node("global_max_pooling1d/ReduceMax").int("keepdims"), 0)
        // Keras's kernel (k, D, F) as ONNX's (F, D, k).
        let W = try onnx.tensor("conv1d/kernel"), kernel = try keras(m, "layers/conv1d/vars/0")
        XCTAssertEqual(kernel.shape, [4, 4, 6])
        XCTAssertEqual(W.dims, [6, 4, 4])
        for f in 0..<6 {
            for d in 0..<4 {
                for j in 0..<4 { XCTAssertEqual(W.floats[(f * 4 + d) * 4 + j], kernel.values[(j * 4 + d) * 6 + f], "[\(f)][\(d)][\(j)]") }
            }
        }
        XCTAssertEqual(try onnx.tensor("conv1d_1/kernel").dims, [5, 6, 3])

        let (flat, fm) = try export([.embedding(EmbeddingSpec(inputDim: 30, outputDim: 4)), .flatten(FlattenSpec()),
                                     .dense(DenseSpec(units: 1))], inputLength: 12)
        checkInputsAndOutputs(flat, maxlen: 12, classes: 2)
        XCTAssertEqual(flat.opTypes, ["Gather", "Flatten", "MatMul", "Add", "Sigmoid", "Sub", "Concat"])
        XCTAssertEqual(try flat.node("flatten/Flatten").int("axis"), 1)
        XCTAssertEqual(try flat.tensor("dense/kernel").dims, [48, 1])
        XCTAssertEqual(try flat.tensor("dense/kernel").floats, try keras(fm, "layers/dense/vars/0").values)

        let (avg, _) = try export([.embedding(EmbeddingSpec(inputDim: 30, outputDim: 4)),
                                   .recurrent(RecurrentSpec(kind: .lstm, units: 3, returnSequences: true)),
                                   .globalPooling1D(GlobalPooling1DSpec(average: true)), .dense(DenseSpec(units: 1))])
        XCTAssertEqual(avg.opTypes, ["Gather", "Transpose", "LSTM", "Transpose", "Reshape", "ReduceMean", "MatMul", "Add",
                                     "Sigmoid", "Sub", "Concat"])
        XCTAssertEqual(try avg.node("global_average_pooling1d/ReduceMean").ints("axes"), [0], "time-major: time is axis 0")
    }

    func testExportTakesExactlyOneFormatAndFailsOnOneLine() throws {
        let missing = tmp.file("none.h5"), out = tmp.file("x.onnx")
        let neither = try Subprocess.rnnDist(["export", missing, "-o", out])
        XCTAssertEqual(neither.status, 64)
        XCTAssertTrue(neither.stderr.contains("--keras-legacy or --onnx"), neither.stderr)
        let both = try Subprocess.rnnDist(["export", "--keras-legacy", "--onnx", missing, "-o", out])
        XCTAssertEqual(both.status, 64)
        XCTAssertTrue(both.stderr.contains("exclude each other"), both.stderr)
        let absent = try Subprocess.rnnDist(["export", "--onnx", missing, "-o", out])
        XCTAssertEqual(absent.status, 1)
        XCTAssertEqual(absent.stderr.split(separator: "\n").count, 1, absent.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}
