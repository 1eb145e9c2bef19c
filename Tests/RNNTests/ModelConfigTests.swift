// The model as a list of layer specs and a head: its JSON (old and new), its checks, the presets.

import Foundation
@testable import RNN
import XCTest

final class ModelConfigTests: XCTestCase {
    private func decode(_ json: String) throws -> ModelConfig {
        try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8))
    }

    /// The config JSON of files written before the layer list (2026-12-04), exactly as that build
    /// wrote it, reads as the same model; so does the JSON of files from before the 6.3 options.
    func testTheOldConfigJSONReadsAsTheSameModel() throws {
        let old = #"{"bidirectional":true,"dropout":0.2,"embedDim":32,"kind":"gru","layers":2,"numWords":10000,"recurrentDropout":0.1,"resetAfter":false,"units":16}"#
        let expected = ModelConfig(kind: .gru, numWords: 10_000, embedDim: 32, units: 16, layers: 2, bidirectional: true,
                                   dropout: 0.2, recurrentDropout: 0.1, resetAfter: false)
        XCTAssertEqual(try decode(old), expected)
        let before63 = #"{"embedDim":8,"kind":"lstm","layers":1,"numWords":100,"units":4}"#
        XCTAssertEqual(try decode(before63), ModelConfig(kind: .lstm, numWords: 100, embedDim: 8, units: 4))
        // The layers: Embedding, two GRUs (the first returns sequences), Dense(1), the sigmoid head.
        XCTAssertEqual(expected.layers.count, 4)
        XCTAssertEqual(expected.recurrentLayers.map(\.returnSequences), [true, false])
        XCTAssertEqual(expected.layers.last, .dense(DenseSpec(units: 1)))
        XCTAssertEqual(expected.head, .sigmoid)
        // A layer count out of range is refused before the stack is built (10⁹ layers allocated 48 GB
        // and aborted: a damaged file crashed inspect, eval, predict and train --resume).
        for layers in ["0", "1000000000", "9223372036854775807"] {
            XCTAssertThrowsError(try decode(#"{"embedDim":8,"kind":"lstm","layers":"# + layers + #","numWords":100,"units":4}"#)) {
                XCTAssertTrue("\($0)".contains("layers = \(layers) is outside 1…64"), "\($0)")
            }
        }
    }

    func testTheNewJSONRoundTripsAndNamesEveryLayer() throws {
        let config = ModelConfig(kind: .lstm, numWords: 50, embedDim: 4, units: 3, layers: 2, dropout: 0.25)
        let json = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        XCTAssertTrue(json.contains(#""type":"embedding""#) && json.contains(#""type":"recurrent""#)
                      && json.contains(#""type":"dense""#) && json.contains(#""head":"sigmoid_binary_crossentropy""#), json)
        XCTAssertFalse(json.contains(#""kind":"lstm","layers""#), json)
        XCTAssertEqual(try decode(json), config)
        XCTAssertThrowsError(try decode(#"{"layers":[{"type":"conv9d"}],"head":"sigmoid_binary_crossentropy"}"#))
    }

    /// The table a preset's layers imply is the one the weights files always had: Keras names,
    /// shapes, offsets and initializers in the same order (weight streams are numbered by it).
    func testThePresetsParameterTableIsKerasOrder() {
        let bi = ModelConfig(kind: .gru, numWords: 20, embedDim: 3, units: 2, layers: 2, bidirectional: true, resetAfter: false)
        XCTAssertEqual(bi.parameterTable.map(\.description), [
            "layers/embedding/vars/0 embeddings [20, 3] @0",
            "layers/bidirectional/forward_layer/cell/vars/0 kernel [3, 6] @60",
            "layers/bidirectional/forward_layer/cell/vars/1 recurrent_kernel [2, 6] @78",
            "layers/bidirectional/forward_layer/cell/vars/2 bias [6] @90",
            "layers/bidirectional/backward_layer/cell/vars/0 kernel [3, 6] @96",
            "layers/bidirectional/backward_layer/cell/vars/1 recurrent_kernel [2, 6] @114",
            "layers/bidirectional/backward_layer/cell/vars/2 bias [6] @126",
            "layers/bidirectional_1/forward_layer/cell/vars/0 kernel [4, 6] @132",
            "layers/bidirectional_1/forward_layer/cell/vars/1 recurrent_kernel [2, 6] @156",
            "layers/bidirectional_1/forward_layer/cell/vars/2 bias [6] @168",
            "layers/bidirectional_1/backward_layer/cell/vars/0 kernel [4, 6] @174",
            "layers/bidirectional_1/backward_layer/cell/vars/1 recurrent_kernel [2, 6] @198",
            "layers/bidirectional_1/backward_layer/cell/vars/2 bias [6] @210",
            "layers/dense/vars/0 kernel [4, 1] @216",
            "layers/dense/vars/1 bias [1] @220",
        ])
        XCTAssertEqual(bi.parameterTable.compactMap(\.innerLayerName), Array(repeating: "gru", count: 6) + Array(repeating: "gru_1", count: 6))
        let lstm = ModelConfig(kind: .lstm, numWords: 10, embedDim: 2, units: 3, layers: 2)
        XCTAssertEqual(lstm.parameterTable.map(\.layerName), ["embedding", "lstm", "lstm", "lstm", "lstm_1", "lstm_1", "lstm_1", "dense", "dense"])
        XCTAssertEqual(lstm.parameterTable[3].initializer, .lstmBias(units: 3))
        XCTAssertEqual(lstm.parameterCount, 10 * 2 + (2 * 12 + 3 * 12 + 12) + (3 * 12 + 3 * 12 + 12) + 3 + 1)
    }

    func testAConfigIsItsPresetAgainAndOtherShapesAreNot() {
        let preset = ModelConfig.Preset(kind: .simpleRNN, numWords: 30, embedDim: 4, units: 5, layers: 3, dropout: 0.1)
        XCTAssertEqual(preset.config.preset, preset)
        XCTAssertEqual(preset.config.label, "simple-rnn, dropout 0.1")
        var mixed = preset.config
        mixed.layers[1] = .recurrent(RecurrentSpec(kind: .lstm, units: 5, returnSequences: true))
        XCTAssertNil(mixed.preset)
        XCTAssertEqual(mixed.label, "embedding(30, 4), lstm(5), simple-rnn(5), simple-rnn(5), dense(1)")
        XCTAssertNoThrow(try mixed.validate())
        XCTAssertEqual(mixed.kindName, "sequential")
    }

    /// What no flag sets (go_backwards, use_bias=False) is not a preset's: such a model is named by its
    /// layers, and told apart from the preset when compared (a resume refuses it, naming both).
    func testOptionsNoFlagSetsAreNeverDroppedAsAPresets() {
        let plain = ModelConfig(kind: .lstm, numWords: 30, embedDim: 4, units: 6)
        XCTAssertNotNil(plain.preset)
        XCTAssertNil(plain.difference(from: plain))
        for (edit, label) in [({ (r: inout RecurrentSpec) in r.goBackwards = true }, "lstm(6) backwards"),
                              ({ (r: inout RecurrentSpec) in r.useBias = false }, "lstm(6) no bias")] {
            var other = plain
            guard case .recurrent(var r) = other.layers[1] else { return XCTFail("no recurrent layer") }
            edit(&r)
            other.layers[1] = .recurrent(r)
            XCTAssertNil(other.preset, label)
            XCTAssertEqual(other.kindName, "sequential")
            XCTAssertEqual(other.label, "embedding(30, 4), \(label), dense(1)")
            let d = plain.difference(from: other)
            XCTAssertEqual(d?.0, "the model")
            XCTAssertEqual(d?.2, other.label)
        }
        // Layers whose labels agree but whose settings do not: the layer and both settings, in full.
        var a = plain
        a.layers[1] = .recurrent(RecurrentSpec(kind: .lstm, units: 6, goBackwards: true))
        var b = a
        b.layers[1] = .recurrent(RecurrentSpec(kind: .lstm, units: 6, dropout: 0.25, goBackwards: true))
        XCTAssertEqual(a.label, b.label)
        let d = a.difference(from: b)
        XCTAssertEqual(d?.0, "layer 2 (lstm(6) backwards)")
        XCTAssertTrue(d?.1.contains("\"dropout\":0") == true && d?.2.contains("\"dropout\":0.25") == true, "\(String(describing: d))")
    }

    /// Layers that do not fit together are refused with one line naming the layer.
    func testLayersThatDoNotFitAreNamed() {
        func message(_ layers: [LayerSpec]) -> String {
            do { try ModelConfig(layers: layers).validate(); return "no error" } catch { return "\(error)" }
        }
        let embedding = LayerSpec.embedding(EmbeddingSpec(inputDim: 10, outputDim: 4))
        let last = LayerSpec.recurrent(RecurrentSpec(kind: .gru, units: 3))
        let sequence = LayerSpec.recurrent(RecurrentSpec(kind: .gru, units: 3, returnSequences: true))
        XCTAssertEqual(message([embedding, last, .dense(DenseSpec(units: 1))]), "no error")
        XCTAssertEqual(message([last, .dense(DenseSpec(units: 1))]), "model config: the first layer must be an Embedding")
        XCTAssertEqual(message([embedding, last, last, .dense(DenseSpec(units: 1))]),
                       "model config: layer 3 (gru(3)) cannot take a vector of width 3")
        XCTAssertEqual(message([embedding, sequence, .dense(DenseSpec(units: 1))]),
                       "model config: layer 3 (dense(1)) cannot take a sequence of width 3")
        XCTAssertEqual(message([embedding, last, .dense(DenseSpec(units: 2))]),
                       "model config: the head (sigmoid_binary_crossentropy) needs a vector of 1, the last layer gives a vector of width 2")
        XCTAssertEqual(message([embedding, .recurrent(RecurrentSpec(kind: .lstm, units: 3, resetAfter: false)), .dense(DenseSpec(units: 1))]),
                       "model config: reset_after = false applies to the GRU only")
        XCTAssertEqual(message([.embedding(EmbeddingSpec(inputDim: 10_000_000, outputDim: 65_536)), last, .dense(DenseSpec(units: 1))]),
                       // The whole model's count: 655,360,000,000 + the GRU's 3·3·(65,536 + 3) + 2·3·3 + the Dense's 4.
                       "model config: parameter count = 655360589873 is outside 1…268435456")
        XCTAssertEqual(message([embedding, .recurrent(RecurrentSpec(kind: .gru, units: 3, dropout: 1)), .dense(DenseSpec(units: 1))]),
                       "model config: dropout = 1.0 is outside [0, 1)")
    }
}
