// Evaluation skips the padding that a chunk's rows share at their front (`Model.logits`): the same
// logits as computing every step, on rows with every amount of padding, in chunks whose rows pad
// differently, and fewer products.

@testable import BLAS
@testable import RNN
import TestSupport
import XCTest

final class PaddingSkipTests: XCTestCase {
    /// T = 30 and 13 rows: no padding, all padding, and amounts between, in no order.
    private let leads = [0, 29, 30, 5, 17, 12, 30, 1, 22, 8, 25, 3, 14]
    private let steps = 30, numWords = 13

    /// Row r: `leads[r]` padding tokens (0), then tokens in 1..<V.
    private func paddedRows() -> [Int32] {
        var x = Fixtures.tokens(batch: leads.count, steps: steps, numWords: numWords - 1, seed: 9).map { $0 + 1 }
        for (r, lead) in leads.enumerated() {
            for t in 0..<lead { x[r * steps + t] = 0 }
        }
        return x
    }

    /// The logits in chunks of 4 rows and blocks of 7 steps, with or without the skip, and the
    /// FLOP of the products that took.
    private func logits(_ model: Model, skipping: Bool, _ x: [Int32]) -> (logits: [Float], flop: Double) {
        model.inferenceBlockSteps = 7
        model.skipsSharedPadding = skipping
        let w = model.weights
        model.weights = w                             // each call computes its tables again
        BLAS.startCounting()
        let z = model.logits(x: x, batch: leads.count, batchSize: 4)
        let flop = BLAS.stopCounting().reduce(0.0) { $0 + $1.key.flop * Double($1.value) }
        return (z, flop)
    }

    private func model(_ config: ModelConfig) -> Model {
        let model = Model(config: config, seed: 7)
        model.weights = Fixtures.randomWeights(count: config.parameterCount, scale: 0.6, seed: 8)
        return model
    }

    func testSkippingSharedPaddingKeepsTheLogits() {
        let withDropout = ModelConfig(layers: [.embedding(EmbeddingSpec(inputDim: numWords, outputDim: 4)),
                                               .dropout(DropoutSpec(rate: 0.5)),
                                               .recurrent(RecurrentSpec(kind: .lstm, units: 6)),
                                               .dense(DenseSpec(units: 1))])
        var configs = ModelConfig.Kind.allCases.flatMap { kind in
            [1, 2].map { ModelConfig(kind: kind, numWords: numWords, embedDim: 4, units: 11, layers: $0) }
        }
        configs += [ModelConfig(kind: .gru, numWords: numWords, embedDim: 4, units: 5, resetAfter: false),
                    ModelConfig(kind: .lstm, numWords: numWords, embedDim: 4, units: 5, classes: 3), withDropout]
        // Bidirectional: the forward direction skips, the backward one catches up.
        let bidirectional = ModelConfig.Kind.allCases.map {
            ModelConfig(kind: $0, numWords: numWords, embedDim: 4, units: 7, bidirectional: true)
        }
        configs += bidirectional
        let x = paddedRows()
        for config in configs {
            let m = model(config)
            let every = logits(m, skipping: false, x), skipped = logits(m, skipping: true, x)
            // Chunks [30 30 29 25] [22 17 14 12] [8 5 3 1] [0] start at steps 25, 12, 1 and 0.
            // Bidirectional: only the forward direction's half of the recurrent products shrinks, and
            // the padding states (2 rows × 29 steps, computed once per evaluation) run both directions:
            // here they take most of what the skip saves (152 row-steps of 780 skipped, 116 added).
            let bound = bidirectional.contains(config) ? 0.98 : 0.85
            XCTAssertLessThan(skipped.flop, bound * every.flop, "\(config.label): the padding was computed")
            // The same bits where a row of a matrix product does not depend on the others (as here);
            // a kernel that sums rows of different chunk shapes in another order may differ in the last bits.
            assertClose(skipped.logits.map(Double.init), every.logits.map(Double.init), rtol: 1e-5, atol: 1e-6, config.label)
            let reference = SequentialReference.logits(config: config, weights: m.weights.map(Double.init), x: x,
                                                       batch: leads.count).flatMap { $0 }
            assertClose(skipped.logits.map(Double.init), reference, rtol: 1e-4, atol: 1e-5, "\(config.label) against the reference")
        }
    }

    /// With the own kernel, a row's logits are the same bits alone as among other rows (`predict` of
    /// one text, a `serve` request, an evaluation group): the two-class head's product went to
    /// OpenBLAS's sgemv, whose sums depend on the number of rows (predict of "good film" alone and
    /// beside another text differed in the last bits).
    func testARowsLogitsDoNotDependOnTheRowsBesideIt() throws {
        try XCTSkipUnless(BLAS.ownKernel, "the own kernel is off here (CPU, OpenBLAS kernel or RNN_DIST_OWN_GEMM)")
        var configs = ModelConfig.Kind.allCases.map { ModelConfig(kind: $0, numWords: numWords, embedDim: 4, units: 11) }
        configs += [ModelConfig(kind: .lstm, numWords: numWords, embedDim: 4, units: 7, bidirectional: true),
                    ModelConfig(kind: .gru, numWords: numWords, embedDim: 4, units: 5, classes: 3)]
        let x = paddedRows()
        for config in configs {
            let m = model(config)
            let together = m.logits(x: x, batch: leads.count, batchSize: 4)
            let outputs = together.count / leads.count
            for r in 0 ..< leads.count {
                let alone = m.logits(x: Array(x[(r * steps) ..< ((r + 1) * steps)]), batch: 1, batchSize: 1)
                XCTAssertEqual(alone.map(\.bitPattern), together[(r * outputs) ..< ((r + 1) * outputs)].map(\.bitPattern),
                               "\(config.label), row \(r)")
            }
        }
    }

    /// A bidirectional layer that returns its sequence to another (its backward direction's outputs
    /// at the padded steps are part of the next layer's input) computes every step.
    func testNonCausalModelsComputeEveryStep() {
        let config = ModelConfig(kind: .gru, numWords: numWords, embedDim: 4, units: 5, layers: 2, bidirectional: true)
        let m = model(config), x = paddedRows()
        let every = logits(m, skipping: false, x), skipped = logits(m, skipping: true, x)
        XCTAssertEqual(skipped.flop, every.flop)
        XCTAssertEqual(skipped.logits, every.logits)
    }

    /// The tables and padding states evaluation keeps between calls follow the weights: after an
    /// optimizer step (an in-place change) or an assignment, the logits are a fresh model's. The
    /// step changes the buffer in place: no copy of the weights per step.
    func testKeptTablesFollowTheWeights() {
        let config = ModelConfig(kind: .gru, numWords: numWords, embedDim: 4, units: 6, layers: 2)
        let m = model(config), x = paddedRows()
        let before = m.logits(x: x, batch: leads.count, batchSize: 4)
        XCTAssertEqual(m.logits(x: x, batch: leads.count, batchSize: 4), before, "kept tables, same weights")
        let optimizer = RMSprop(parameterCount: config.parameterCount, learningRate: 0.01)
        let gradients = Fixtures.randomWeights(count: config.parameterCount, scale: 1, seed: 5)
        let buffer = m.weights.withUnsafeBufferPointer { $0.baseAddress }
        _ = optimizer.apply(gradients: gradients, to: &m.weights)
        XCTAssertEqual(m.weights.withUnsafeBufferPointer { $0.baseAddress }, buffer, "the step copied the weights")
        let fresh = Model(config: config, seed: 1)
        fresh.weights = m.weights
        let after = m.logits(x: x, batch: leads.count, batchSize: 4)
        XCTAssertNotEqual(after, before)
        XCTAssertEqual(after, fresh.logits(x: x, batch: leads.count, batchSize: 4), "after an optimizer step")
        m.weights = Fixtures.randomWeights(count: config.parameterCount, scale: 0.6, seed: 11)
        fresh.weights = m.weights
        XCTAssertEqual(m.logits(x: x, batch: leads.count, batchSize: 4),
                       fresh.logits(x: x, batch: leads.count, batchSize: 4), "after an assignment")
    }

    /// Prediction skips the padding too, and its rows come back in the input's order.
    func testPredictionKeepsRowOrder() {
        let config = ModelConfig(kind: .lstm, numWords: numWords, embedDim: 4, units: 6)
        let m = model(config), x = paddedRows()
        let all = m.predict(x: x, batch: leads.count, batchSize: 4)
        for r in leads.indices {
            let one = m.predict(x: Array(x[(r * steps)..<((r + 1) * steps)]), batch: 1)
            assertClose(Double(all[r]), Double(one[0]), rtol: 1e-5, atol: 1e-6, "row \(r)")
        }
    }

    /// A training step's counted products (the `floor` benchmark's numerator) include the embedding
    /// rows' gradient dRows (N × E) = dTable (N × G) · Wᵀ, formed by hand outside `sgemm`: once per
    /// batch and recurrent direction, N the batch's distinct tokens; none when the embedding is frozen.
    func testATrainingStepCountsTheEmbeddingRowsGradient() {
        let x = paddedRows(), y = (0 ..< leads.count).map { Float($0 % 2) }
        let distinct = Set(x).count
        for (frozen, bidirectional) in [(false, false), (false, true), (true, false)] {
            var config = ModelConfig(kind: .lstm, numWords: numWords, embedDim: 8, units: 4, bidirectional: bidirectional)
            if frozen { config.layers[0] = .embedding(EmbeddingSpec(inputDim: numWords, outputDim: 8, trainable: false)) }
            let model = model(config)
            model.zeroGradients()
            BLAS.startCounting()
            _ = model.accumulateGradients(x: x, y: y, batch: leads.count)
            let counts = BLAS.stopCounting()
            let rows = ProductShape(gemv: false, transA: false, transB: false, m: distinct, n: 8, k: 16, lda: 16, ldb: 8, ldc: 8,
                                    betaZero: true)
            XCTAssertEqual(counts[rows] ?? 0, frozen ? 0 : (bidirectional ? 2 : 1), "frozen \(frozen), bidirectional \(bidirectional): \(counts)")
        }
    }
}
