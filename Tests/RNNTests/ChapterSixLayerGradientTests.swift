// Central-difference gradient checks of the chapter-6 layers (Flatten, Dropout, Conv1D, pooling,
// hidden Dense, go_backwards, a frozen embedding), each in the Keras model that uses it, against the
// independent Double implementation (SequentialReference.swift). Tolerances as in
// GradientCheckTests.swift: |analytic − numeric| ≤ 1e-3·|numeric| + 1e-5·‖numeric‖∞.

import Foundation
@testable import RNN
import TestSupport
import XCTest

final class ChapterSixLayerGradientTests: XCTestCase {
    let rtol = 1e-3
    let floorFraction = 1e-5

    func fixture(_ name: String) throws -> ModelConfig {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/keras-\(name).json")
        return try ModelConfig.fromKeras(json: try String(contentsOf: url, encoding: .utf8)).config
    }

    /// Every parameter (up to 150 spread over each tensor), B = 3, T = 40, in a training pass with the
    /// batch's masks; the loss must equal the reference's, the masks must matter, and a frozen
    /// embedding's gradient must be exactly zero.
    private func check(_ config: ModelConfig, steps: Int = 40, file: StaticString = #filePath, line: UInt = #line) {
        let batch = 3
        let model = Model(config: config, seed: 1)
        model.weights = Fixtures.randomWeights(count: config.parameterCount, scale: 0.5, seed: 2)
        var x = Fixtures.tokens(batch: batch, steps: steps, numWords: config.vocabularySize, seed: 3)
        x[5] = x[0]
        let y: [Float] = [1, 0, 1]
        let key = DropoutKey(seed: 7, epoch: 2, positions: [40, 3, 17])

        model.zeroGradients()
        let stats = model.accumulateGradients(x: x, y: y, batch: batch, dropout: key)
        let masks = config.usesDropout ? ReferenceMasks.drawn(by: model, batch: batch) : nil
        let dropout: DropoutKey? = config.usesDropout ? key : nil
        let w = model.weights.map(Double.init)
        func loss(_ w: [Double]) -> Double {
            SequentialReference.lossSum(config: config, weights: w, x: x, y: y, batch: batch, recurrentMasks: masks, dropout: dropout)
        }
        assertClose(stats.lossSum, loss(w), rtol: 1e-5, "\(config.label) loss", file: file, line: line)
        if dropout != nil {
            let plain = SequentialReference.lossSum(config: config, weights: w, x: x, y: y, batch: batch)
            XCTAssertGreaterThan(abs(plain - loss(w)), 1e-4, "the masks change nothing", file: file, line: line)
        }
        let frozen = config.embeddingTrainable ? nil : config.parameterTable[0].range
        if let frozen {
            XCTAssertTrue(model.gradients[frozen].allSatisfy { $0 == 0 }, "a frozen embedding got a gradient", file: file, line: line)
            var rows = [UInt8](repeating: 0, count: config.vocabularySize)
            model.markTouchedEmbeddingRows(&rows)
            XCTAssertEqual(rows.filter { $0 != 0 }.count, 0, "a frozen embedding reports touched rows", file: file, line: line)
        }
        let views = config.parameterTable.filter { $0.range != frozen }
        let indices = views.flatMap { view -> [Int] in
            let n = min(view.count, 150)
            return (0..<n).map { view.offset + $0 * view.count / n }
        }
        let numeric = Reference.numericGradient(w, indices: indices, loss)
        let analytic = indices.map { Double(model.gradients[$0]) }
        let scale = maxAbs(numeric)
        XCTAssertGreaterThan(scale, 1e-2, "gradient too small to test", file: file, line: line)
        for view in views {
            let part = indices.enumerated().filter { view.range.contains($0.element) }.map { numeric[$0.offset] }
            XCTAssertGreaterThan(maxAbs(part), 100 * floorFraction * scale, "\(view.kerasPath) has no sizeable gradient",
                                 file: file, line: line)
        }
        let labels = indices.map { k in
            let view = views.first { $0.range.contains(k) }!
            return "\(view.kerasPath)[\(k - view.offset)]"
        }
        print("gradient check \(config.label): max |a−n|/max(|n|, 0.01‖n‖∞) = "
              + "\(maxRelativeError(analytic, numeric, floor: 0.01 * scale))")
        assertClose(analytic, numeric, rtol: rtol, atol: floorFraction * scale, labels: labels, "gradient", file: file, line: line)
    }

    /// 6.1: Embedding → Flatten → Dense(1, sigmoid).
    func testFlattenModel() throws { check(try fixture("flatten")) }
    /// 6.4: Conv1D(relu) → MaxPooling1D → Conv1D(relu) → GlobalMaxPooling1D → Dense(1) logits.
    func testConvnet() throws { check(try fixture("convnet")) }
    /// 6.4.4: the convnet's front feeding a GRU with input and recurrent dropout.
    func testConvolutionsIntoAGRUWithDropout() throws { check(try fixture("convgru")) }
    /// Dropout layers, same and causal padding, strided same pooling, go_backwards, average
    /// pooling, hidden Dense activations; the embedding frozen, then trainable.
    func testEveryOtherOptionWithAFrozenEmbedding() throws { check(try fixture("mixed")) }
    func testEveryOtherOptionWithATrainableEmbedding() throws { check(try fixture("mixed").embedding(trainable: true)) }
    /// A linear Conv1D straight into GlobalMaxPooling1D (the conv fixture), and a sequence-length
    /// free model at another T.
    func testLinearConvolutionAtAnotherLength() throws { check(try fixture("conv"), steps: 23) }
    /// go_backwards LSTM alone (its last output read x_0), and a trainable embedding feeding a
    /// Dropout before a recurrent layer.
    func testGoBackwardsAlone() throws { check(try fixture("backwards")) }
    /// use_bias=False on a Conv1D right after the embedding, a Bidirectional reset-after GRU, a
    /// SimpleRNN, an LSTM and two Dense layers: no bias tensors, and the gradients still right.
    func testLayersWithoutBias() throws {
        let config = try fixture("nobias")
        XCTAssertFalse(config.parameterTable.contains { $0.varName == "bias" }, "\(config.parameterTable)")
        XCTAssertEqual(config.parameterTable.count, 1 + 1 + 4 + 2 + 2 + 1 + 1)
        check(config, steps: 12)
    }
    func testDropoutBetweenEmbeddingAndRecurrent() {
        check(ModelConfig(layers: [.embedding(EmbeddingSpec(inputDim: 11, outputDim: 3)), .dropout(DropoutSpec(rate: 0.4)),
                                   .recurrent(RecurrentSpec(kind: .gru, units: 9, goBackwards: true)),
                                   .dense(DenseSpec(units: 3, activation: .tanh)), .dense(DenseSpec(units: 1))], head: .sigmoid),
              steps: 6)
    }

    /// Evaluation (`Model.logits`, dropout off; in blocks of steps where every layer allows it) gives
    /// the reference's logits for every chapter-6 fixture and for a Dropout between the embedding
    /// and a forward LSTM, which runs in blocks (T = 40 > the 25-step block).
    func testEvaluationLogitsMatchTheReference() throws {
        var configs = try ["flatten", "convnet", "convgru", "mixed", "conv", "backwards", "nobias"].map(fixture)
        configs.append(ModelConfig(layers: [.embedding(EmbeddingSpec(inputDim: 18, outputDim: 5)), .dropout(DropoutSpec(rate: 0.3)),
                                            .recurrent(RecurrentSpec(kind: .lstm, units: 6)), .dense(DenseSpec(units: 4, activation: .relu)),
                                            .dense(DenseSpec(units: 1))]))
        for config in configs {
            let model = Model(config: config, seed: 1)
            model.weights = Fixtures.randomWeights(count: config.parameterCount, scale: 0.5, seed: 2)
            let x = Fixtures.tokens(batch: 5, steps: 40, numWords: config.vocabularySize, seed: 4)
            let ours = model.logits(x: x, batch: 5, batchSize: 2).map(Double.init)
            let reference = SequentialReference.logits(config: config, weights: model.weights.map(Double.init), x: x, batch: 5).flatMap { $0 }
            assertClose(ours, reference, rtol: 1e-4, atol: 1e-5, "\(config.label) logits")
        }
        // A Conv1D right after the embedding projects its distinct rows (the fused path); after a
        // Dropout it reads the materialized sequence.
        for (name, fused) in [("convnet", true), ("conv", true), ("convgru", true), ("mixed", false), ("flatten", false)] {
            let model = Model(config: try fixture(name), seed: 1)
            XCTAssertEqual(!model.embedding.materializes, fused, name)
            XCTAssertEqual((model.layers.first { $0 is Conv1D } as? Conv1D)?.embeddingInput != nil, fused, name)
        }
        let blocked = Model(config: configs.last!, seed: 1)
        XCTAssertTrue(blocked.layers.allSatisfy(\.runsInBlocks), "the last config should run in blocks")
    }
}
