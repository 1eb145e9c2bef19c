// Central-difference gradient checks of the chapter 6.3 paths — dropout and recurrent dropout with
// the masks held fixed, bidirectional layers, the reset-before GRU — against the Double reference
// (Reference.swift), with the tolerance argued in GradientCheckTests.swift.

@testable import RNN
import TestSupport
import XCTest

final class ChapterSixThreeGradientTests: XCTestCase {
    let rtol = 1e-3
    let floorFraction = 1e-5

    /// Whole model, every parameter: B=3, T=4, E=3, H=9 (one SIMD8 block and a scalar remainder), V=11.
    private func check(_ config: ModelConfig, file: StaticString = #filePath, line: UInt = #line) {
        let batch = 3, steps = 4
        let model = Model(config: config, seed: 1)
        model.weights = Fixtures.randomWeights(count: config.parameterCount, scale: 0.5, seed: 2)
        var x = Fixtures.tokens(batch: batch, steps: steps, numWords: config.vocabularySize, seed: 3)
        x[5] = x[0]                                   // a repeated token: its rows' gradients add up
        let y: [Float] = [1, 0, 1]
        let key = DropoutKey(seed: 7, epoch: 2, positions: [40, 3, 17])

        model.zeroGradients()
        let stats = model.accumulateGradients(x: x, y: y, batch: batch, dropout: key)
        let masks = config.usesDropout ? ReferenceMasks.drawn(by: model, batch: batch) : nil
        if let masks {
            // The masks must drop some units and keep others, or the check proves nothing about them.
            let all = masks.joined().flatMap { ($0.input ?? []) + ($0.recurrent ?? []) }.joined().joined()
            XCTAssertTrue(all.contains(0) && all.contains { $0 > 1 }, "masks are trivial", file: file, line: line)
        }
        let w = model.weights.map(Double.init)
        let referenceLoss = Reference.lossSum(config: config, weights: w, x: x, y: y, batch: batch, masks: masks)
        assertClose(stats.lossSum, referenceLoss, rtol: 1e-5, "\(config) loss", file: file, line: line)
        if masks != nil {
            let unmasked = Reference.lossSum(config: config, weights: w, x: x, y: y, batch: batch)
            XCTAssertGreaterThan(abs(unmasked - referenceLoss), 1e-4, "the masks change nothing", file: file, line: line)
        }

        // Every element of each tensor up to 150, else 150 spread over it (a wrong term shows in
        // whole rows or columns, so a spread sample finds it; the bigger models stay fast).
        let indices = config.parameterTable.flatMap { view -> [Int] in
            let n = min(view.count, 150)
            return (0..<n).map { view.offset + $0 * view.count / n }
        }
        let numeric = Reference.numericGradient(w, indices: indices) {
            Reference.lossSum(config: config, weights: $0, x: x, y: y, batch: batch, masks: masks)
        }
        let analytic = indices.map { Double(model.gradients[$0]) }
        let scale = maxAbs(numeric)
        XCTAssertGreaterThan(scale, 1e-2, "gradient too small to test", file: file, line: line)
        for view in config.parameterTable {
            let part = indices.enumerated().filter { view.range.contains($0.element) }.map { numeric[$0.offset] }
            XCTAssertGreaterThan(maxAbs(part), 100 * floorFraction * scale,
                                 "\(view.kerasPath) has no sizeable gradient", file: file, line: line)
        }
        let labels = indices.map { k in
            let view = config.parameterTable.first { $0.range.contains(k) }!
            return "\(view.kerasPath)[\(k - view.offset)]"
        }
        print("gradient check \(config.label) ×\(config.recurrentLayers.count): max |a−n|/max(|n|, 0.01‖n‖∞) = "
              + "\(maxRelativeError(analytic, numeric, floor: 0.01 * scale))")
        assertClose(analytic, numeric, rtol: rtol, atol: floorFraction * scale, labels: labels,
                    "gradient", file: file, line: line)
    }

    private func config(_ kind: ModelConfig.Kind, layers: Int = 1, bidirectional: Bool = false, dropout: Double = 0,
                        recurrent: Double = 0, resetAfter: Bool = true) -> ModelConfig {
        ModelConfig(kind: kind, numWords: 11, embedDim: 3, units: 9, layers: layers, bidirectional: bidirectional,
                    dropout: dropout, recurrentDropout: recurrent, resetAfter: resetAfter)
    }

    // Input dropout only: one mask shared by all gates.
    func testSimpleRNNDropout() { check(config(.simpleRNN, dropout: 0.3)) }
    func testLSTMDropout() { check(config(.lstm, dropout: 0.3)) }
    func testGRUDropout() { check(config(.gru, dropout: 0.3)) }
    // Recurrent dropout (with and without input dropout): one mask per gate.
    func testSimpleRNNRecurrentDropout() { check(config(.simpleRNN, dropout: 0.3, recurrent: 0.4)) }
    func testLSTMRecurrentDropout() { check(config(.lstm, dropout: 0.3, recurrent: 0.4)) }
    func testLSTMRecurrentDropoutOnly() { check(config(.lstm, recurrent: 0.4)) }
    func testGRURecurrentDropout() { check(config(.gru, dropout: 0.3, recurrent: 0.4)) }
    /// Two layers: the second layer's masked input is the first's output sequence.
    func testStackedLSTMDropout() { check(config(.lstm, layers: 2, dropout: 0.3, recurrent: 0.4)) }
    func testStackedGRUDropout() { check(config(.gru, layers: 2, dropout: 0.3)) }

    // Bidirectional, 1 and 2 layers (the second reads the concatenation, reversed for its backward copy).
    func testBidirectionalSimpleRNN() { check(config(.simpleRNN, bidirectional: true)) }
    func testBidirectionalLSTM() { check(config(.lstm, bidirectional: true)) }
    func testBidirectionalGRU() { check(config(.gru, bidirectional: true)) }
    func testBidirectionalStackedLSTM() { check(config(.lstm, layers: 2, bidirectional: true)) }
    func testBidirectionalStackedGRU() { check(config(.gru, layers: 2, bidirectional: true)) }
    func testBidirectionalStackedLSTMWithDropout() {
        check(config(.lstm, layers: 2, bidirectional: true, dropout: 0.3, recurrent: 0.4))
    }

    // The reset-before GRU (Keras 2), alone, stacked, with dropout, bidirectional.
    func testResetBeforeGRU() { check(config(.gru, resetAfter: false)) }
    func testResetBeforeGRUStacked() { check(config(.gru, layers: 2, resetAfter: false)) }
    func testResetBeforeGRUWithDropout() { check(config(.gru, dropout: 0.3, recurrent: 0.4, resetAfter: false)) }
    func testResetBeforeGRUBidirectional() { check(config(.gru, layers: 2, bidirectional: true, resetAfter: false)) }
}
