// Optimizer steps against Keras 3's formulas (evaluated here in Double), state save/restore,
// global-norm clipping, and the training step's reduce hook.

@testable import RNN
import Foundation
import TestSupport
import XCTest

final class OptimizerTests: XCTestCase {
    let w0: [Float] = [0.5, -1.0, 2.0, 0.0]
    let g1: [Float] = [0.1, -0.2, 3.0, 0.0]
    let g2: [Float] = [-0.3, 0.05, 1.0, 1e-4]

    func testRMSpropTwoSteps() {
        let opt = RMSprop(parameterCount: 4)
        var w = w0
        opt.apply(gradients: g1, to: &w)
        opt.apply(gradients: g2, to: &w)
        var expected = w0.map(Double.init), v = [Double](repeating: 0, count: 4)
        for g in [g1, g2] {
            for i in 0..<4 {
                let gi = Double(g[i])
                v[i] = 0.9 * v[i] + 0.1 * gi * gi
                expected[i] -= 0.001 * gi / (v[i] + 1e-7).squareRoot()
            }
        }
        assertClose(w.map(Double.init), expected, rtol: 1e-6, atol: 1e-7, "RMSprop weights")
        assertClose(opt.slots[0].values.map(Double.init), v, rtol: 1e-6, "RMSprop velocity")
        XCTAssertEqual(opt.iterations, 2)
        XCTAssertEqual(opt.slots.map(\.name), ["velocity"])
        // First step of RMSprop is lr·g/√(0.1 g² + ε) ≈ lr·√10·sign(g): a known property.
        var w1 = w0
        RMSprop(parameterCount: 4).apply(gradients: g1, to: &w1)
        XCTAssertEqual(Double(w0[2] - w1[2]), 0.001 * 10.0.squareRoot(), accuracy: 1e-7)
        XCTAssertEqual(w1[3], w0[3])                             // zero gradient, no move
    }

    func testAdamTwoSteps() {
        let opt = Adam(parameterCount: 4, learningRate: 0.01)
        var w = w0
        opt.apply(gradients: g1, to: &w)
        opt.apply(gradients: g2, to: &w)
        var expected = w0.map(Double.init)
        var m = [Double](repeating: 0, count: 4), v = m
        for (step, g) in [g1, g2].enumerated() {
            let t = Double(step + 1)
            let alpha = 0.01 * (1 - pow(0.999, t)).squareRoot() / (1 - pow(0.9, t))
            for i in 0..<4 {
                let gi = Double(g[i])
                m[i] += (gi - m[i]) * 0.1
                v[i] += (gi * gi - v[i]) * 0.001
                expected[i] -= alpha * m[i] / (v[i].squareRoot() + 1e-7)
            }
        }
        assertClose(w.map(Double.init), expected, rtol: 1e-5, atol: 1e-7, "Adam weights")
        XCTAssertEqual(opt.slots.map(\.name), ["momentum", "velocity"])
        assertClose(opt.slots[0].values.map(Double.init), m, rtol: 1e-5, "Adam momentum")
        assertClose(opt.slots[1].values.map(Double.init), v, rtol: 1e-5, "Adam velocity")
        // Bias correction makes the first step ≈ lr·sign(g) for every nonzero g.
        var w1 = w0
        Adam(parameterCount: 4, learningRate: 0.01).apply(gradients: g1, to: &w1)
        for i in 0..<3 { XCTAssertEqual(Double(w0[i] - w1[i]), 0.01 * (g1[i] > 0 ? 1 : -1), accuracy: 1e-5) }
    }

    func testSGDMomentum() {
        let opt = SGD(parameterCount: 4, learningRate: 0.1, momentum: 0.9)
        var w = w0
        opt.apply(gradients: g1, to: &w)
        opt.apply(gradients: g2, to: &w)
        var expected = w0.map(Double.init), m = [Double](repeating: 0, count: 4)
        for g in [g1, g2] {
            for i in 0..<4 {
                m[i] = 0.9 * m[i] - 0.1 * Double(g[i])
                expected[i] += m[i]
            }
        }
        assertClose(w.map(Double.init), expected, rtol: 1e-6, atol: 1e-7, "SGD weights")
        // momentum 0 is plain gradient descent, bit for bit.
        var plain = w0
        SGD(parameterCount: 4, learningRate: 0.1).apply(gradients: g1, to: &plain)
        XCTAssertEqual(plain, zip(w0, g1).map { $0 - 0.1 * $1 })
    }

    func testSlotsRestoreBitForBit() throws {
        for kind in OptimizerKind.allCases {
            let a = kind.make(parameterCount: 4)
            var wa = w0
            a.apply(gradients: g1, to: &wa)
            let b = kind.make(parameterCount: 4)
            try b.restore(slots: a.slots, iterations: a.iterations)
            var wb = wa
            a.apply(gradients: g2, to: &wa)
            b.apply(gradients: g2, to: &wb)
            XCTAssertEqual(wa, wb, "\(kind)")
            XCTAssertEqual(a.slots, b.slots, "\(kind)")
            XCTAssertEqual(b.iterations, 2)
        }
        let opt = Adam(parameterCount: 4)
        XCTAssertThrowsError(try opt.restore(slots: [OptimizerSlot(name: "velocity", values: [0, 0, 0, 0])],
                                             iterations: 1))
        XCTAssertThrowsError(try opt.restore(slots: [OptimizerSlot(name: "momentum", values: [0, 0, 0]),
                                                     OptimizerSlot(name: "velocity", values: [0, 0, 0, 0])],
                                             iterations: 1))
        XCTAssertThrowsError(try opt.restore(slots: opt.slots, iterations: -1))
        XCTAssertEqual(opt.iterations, 0)                          // refused state leaves it untouched
    }

    func testGlobalNormClipping() {
        var g: [Float] = [3, 4, 0]
        let norm = GradientClipping.clip(&g, maxNorm: 1)
        XCTAssertEqual(norm, 5, accuracy: 1e-12)
        assertClose(g.map(Double.init), [0.6, 0.8, 0], rtol: 1e-6)
        var small: [Float] = [0.3, 0.4]
        GradientClipping.clip(&small, maxNorm: 1)
        XCTAssertEqual(small, [0.3, 0.4])                          // below the threshold: untouched
    }

    /// What the data-parallel step relies on: the gradient sums of two parts of a batch add up to
    /// the whole batch's (up to Float rounding: the parts are summed in another order), and so do
    /// their loss sums and counts.
    func testGradientSumsOfPartsAddUpToTheWholeBatch() {
        for kind in ModelConfig.Kind.allCases {
            let config = ModelConfig(kind: kind, numWords: 15, embedDim: 4, units: 5, layers: 2)
            let x = Fixtures.tokens(batch: 6, steps: 5, numWords: 15, seed: 1)
            let y: [Float] = [1, 0, 1, 1, 0, 0]
            let whole = Model(config: config, seed: 2)
            whole.weights = Fixtures.randomWeights(count: config.parameterCount, scale: 0.5, seed: 3)
            whole.zeroGradients()
            let all = whole.accumulateGradients(x: x, y: y, batch: 6)

            let parts = Model(config: config, seed: 2)
            parts.weights = whole.weights
            parts.zeroGradients()
            let first = parts.accumulateGradients(x: Array(x[..<10]), y: Array(y[..<2]), batch: 2)
            let second = parts.accumulateGradients(x: Array(x[10...]), y: Array(y[2...]), batch: 4)
            XCTAssertEqual((first + second).count, all.count)
            XCTAssertEqual((first + second).correct, all.correct)
            assertClose((first + second).lossSum, all.lossSum, rtol: 1e-6)
            assertClose(parts.gradients.map(Double.init), whole.gradients.map(Double.init), rtol: 1e-5, atol: 1e-6, "\(kind)")
            XCTAssertGreaterThan(whole.gradients.map { abs($0) }.max() ?? 0, 1e-3, "the gradient is not trivially zero")
        }
    }

    /// A rank whose part of a global batch is empty adds nothing and reports nothing.
    func testNoRowsAddNothing() {
        let config = ModelConfig(kind: .gru, numWords: 5, embedDim: 2, units: 2)
        let model = Model(config: config, seed: 1)
        model.zeroGradients()
        let stats = model.accumulateGradients(x: [], y: [], batch: 0)
        XCTAssertEqual(stats, .zero)
        XCTAssertEqual(model.gradients, [Float](repeating: 0, count: config.parameterCount))
    }

    /// The rows `markTouchedEmbeddingRows` reports are exactly the batch's tokens, and every other
    /// row of the embedding gradient is exactly zero (what lets ranks exchange only those rows).
    func testTouchedEmbeddingRowsAreTheBatchsTokensAndTheOthersAreZero() {
        let config = ModelConfig(kind: .gru, numWords: 20, embedDim: 3, units: 4)
        let model = Model(config: config, seed: 1)
        let x: [Int32] = [3, 5, 5, 0, 9, 3, 17, 1]
        model.zeroGradients()
        var flags = [UInt8](repeating: 0, count: 20)
        model.markTouchedEmbeddingRows(&flags)
        XCTAssertEqual(flags, [UInt8](repeating: 0, count: 20), "nothing before a batch")
        model.accumulateGradients(x: x, y: [1, 0], batch: 2)
        model.markTouchedEmbeddingRows(&flags)
        XCTAssertEqual(flags.indices.filter { flags[$0] != 0 }, [0, 1, 3, 5, 9, 17])
        let e = model.embeddingRange
        for row in 0 ..< 20 where flags[row] == 0 {
            XCTAssertEqual(Array(model.gradients[(e.lowerBound + row * 3) ..< (e.lowerBound + row * 3 + 3)]), [0, 0, 0], "row \(row)")
        }
        XCTAssertGreaterThan(flags.indices.filter { flags[$0] != 0 }.map { row in
            model.gradients[(e.lowerBound + row * 3) ..< (e.lowerBound + row * 3 + 3)].map(abs).max()! }.max()!, 0)
    }
}
