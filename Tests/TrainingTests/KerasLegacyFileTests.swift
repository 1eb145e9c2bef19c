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
        let missing = try Subprocess.rnnDist(["export", "--keras-legacy", tmp.file("none.h5"), "-o", tmp.file("x.h5")])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderr.split(separator: "\n").count, 1, missing.stderr)
        XCTAssertEqual(try Subprocess.rnnDist(["export", tmp.file("none.h5"), "-o", tmp.file("x.h5")]).status, 64)
    }
}
