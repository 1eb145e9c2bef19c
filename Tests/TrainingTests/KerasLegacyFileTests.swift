import XCTest
import Foundation
@testable import HDF5
@testable import RNN
import TestSupport
@testable import Training

/// `rnn-dist export --keras-legacy`: the Keras 2 HDF5 layout (KerasLegacyFile.swift).
final class KerasLegacyFileTests: XCTestCase {
    var tmp: TempDir!
    override func setUpWithError() throws { tmp = try TempDir("legacy") }
    override func tearDown() { tmp.remove() }

    func testTheKeras2ExportHoldsEveryTensorUnderItsKeras2Name() throws {
        for kind in ModelConfig.Kind.allCases {
            var c = toyConfig(kind)
            c.model = ModelConfig(kind: kind, numWords: 30, embedDim: 4, units: 5, layers: 2)
            let m = Model(config: c.model, seed: 9)
            let weights = tmp.file("\(kind).weights.h5"), legacy = tmp.file("\(kind).legacy.h5")
            try WeightsFile.write(to: weights, weights: m.weights, metadata: toyMetadata(c))
            let r = try Subprocess.rnnDist(["export", "--keras-legacy", weights, "-o", legacy])
            XCTAssertEqual(r.status, 0, r.stderr)
            let f = try H5File.open(legacy, requireComplete: true)
            let base = ["simpleRNN": "simple_rnn", "lstm": "lstm", "gru": "gru"]["\(kind)"]!
            XCTAssertEqual(try f.fixedStringsAttribute("layer_names"), ["embedding", base, base + "_1", "dense"])
            XCTAssertEqual(try f.stringAttribute("backend"), "tensorflow")
            XCTAssertTrue(try f.stringAttribute("keras_version").hasPrefix("2."))
            XCTAssertEqual(try f.group(base + "_1").fixedStringsAttribute("weight_names"),
                           ["kernel", "recurrent_kernel", "bias"].map { "\(base)_1/\(base)_cell_1/\($0):0" })
            XCTAssertEqual(try f.group("embedding").fixedStringsAttribute("weight_names"), ["embedding/embeddings:0"])
            // Every tensor, in the table's order, holds the model's values.
            var flat: [Float] = []
            for layer in try f.fixedStringsAttribute("layer_names") {
                let g = try f.group(layer)
                for name in try g.fixedStringsAttribute("weight_names") { flat += try g.dataset(name).read() as [Float] }
            }
            XCTAssertEqual(flat, m.weights, "\(kind)")
        }
        // Layers other than recurrent ones have no cell: a Conv1D's are `conv1d/kernel:0`, `conv1d/bias:0`.
        let conv = ModelConfig(layers: [.embedding(EmbeddingSpec(inputDim: 30, outputDim: 4)),
                                        .conv1D(Conv1DSpec(filters: 3, kernelSize: 2, activation: .relu)),
                                        .globalPooling1D(GlobalPooling1DSpec(average: false)), .dense(DenseSpec(units: 1))])
        let names = conv.parameterTable.map(KerasLegacyFile.weightName)
        XCTAssertEqual(names, ["embedding/embeddings:0", "conv1d/kernel:0", "conv1d/bias:0", "dense/kernel:0", "dense/bias:0"])
        // A bad call: one line, non-zero.
        // Keras chooses its reader by the name: these names made files Keras 3 would not read as Keras 2's.
        for name in ["x.weights.h5", "x.keras", "x.bin"] {
            let r = try Subprocess.rnnDist(["export", "--keras-legacy", tmp.file("none.h5"), "-o", tmp.file(name)])
            XCTAssertEqual(r.status, 64, "\(name): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("rnn-dist: error: -o \(tmp.file(name)): Keras ") && r.stderr.contains("name the Keras 2 file *.h5"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.file(name)))
        }
        let missing = try Subprocess.rnnDist(["export", "--keras-legacy", tmp.file("none.h5"), "-o", tmp.file("x.h5")])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderr.split(separator: "\n").count, 1, missing.stderr)
        XCTAssertEqual(try Subprocess.rnnDist(["export", tmp.file("none.h5"), "-o", tmp.file("x.h5")]).status, 64)
    }

    /// A layer after a Bidirectional that wraps one of its class: Keras 3's file path counts the
    /// model's own layers ("layers/lstm" for LSTM after Bidirectional(LSTM)), Keras 2's names
    /// count the wrapped one too ("lstm_1"). rnn-dist wrote "layers/lstm_1", which Keras 3's
    /// `load_weights` refused (1 object not loaded); files written so are still read, every tensor
    /// from its own group (in LSTM, Bidirectional(LSTM), LSTM, LSTM the last's new path,
    /// "layers/lstm_2", is the third's earlier one).
    func testKeras3PathsCountTheModelsOwnLayersAndEarlierFilesStillRead() throws {
        func lstm(_ bidirectional: Bool = false) -> LayerSpec {
            .recurrent(RecurrentSpec(kind: .lstm, units: 3, returnSequences: true, bidirectional: bidirectional))
        }
        let model = ModelConfig(layers: [.embedding(EmbeddingSpec(inputDim: 30, outputDim: 4)), lstm(), lstm(true), lstm(),
                                         .recurrent(RecurrentSpec(kind: .lstm, units: 3)), .dense(DenseSpec(units: 1))])
        let table = model.parameterTable
        XCTAssertEqual(Array(Set(table.map { $0.layerPath })).sorted(), [
            "layers/bidirectional/backward_layer", "layers/bidirectional/forward_layer", "layers/dense", "layers/embedding",
            "layers/lstm", "layers/lstm_1", "layers/lstm_2"])
        XCTAssertEqual(table.filter { $0.varIndex == 0 }.map(\.layerName),
                       ["embedding", "lstm", "bidirectional", "bidirectional", "lstm_2", "lstm_3", "dense"], "Keras 2 names")
        XCTAssertEqual(table.first { $0.sublayer == "forward_layer" }?.innerLayerName, "lstm_1")
        var c = toyConfig(.lstm)
        c.model = model
        let m = Model(config: model, seed: 3)
        let now = tmp.file("now.weights.h5"), earlier = tmp.file("earlier.weights.h5")
        try WeightsFile.write(to: now, weights: m.weights, metadata: toyMetadata(c))
        XCTAssertEqual(try WeightsFile.read(from: now).0, m.weights)
        // The layout of an earlier rnn-dist: every tensor under its layer's name.
        try H5File.writeAtomically(to: earlier) { f in
            for view in table { try f.createDataset(view.earlierPath, shape: view.shape, data: Array(m.weights[view.range])) }
            try WeightsFile.writeMetadata(toyMetadata(c), into: f, kind: WeightsFile.format)
        }
        XCTAssertTrue(try H5File.open(earlier).exists("layers/lstm_3"))
        XCTAssertEqual(try WeightsFile.read(from: earlier).0, m.weights)
        // The Keras 2 export keeps Keras 2's names.
        let legacy = tmp.file("legacy.h5")
        XCTAssertEqual(try Subprocess.rnnDist(["export", "--keras-legacy", now, "-o", legacy]).status, 0)
        XCTAssertEqual(try H5File.open(legacy).fixedStringsAttribute("layer_names"),
                       ["embedding", "lstm", "bidirectional", "lstm_2", "lstm_3", "dense"])
    }
}
