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

    /// The reduce hook sees the local sum and returns the global count; the step divides by it.
    /// Two "ranks" with half a batch each must end where one process with the whole batch ends.
    func testTrainingStepWithReduceHookMatchesSingleProcess() {
        let config = ModelConfig(kind: .lstm, numWords: 15, embedDim: 4, units: 5)
        let x = Fixtures.tokens(batch: 6, steps: 5, numWords: 15, seed: 1)
        let y: [Float] = [1, 0, 1, 1, 0, 0]

        let single = TrainingLoop(model: Model(config: config, seed: 2),
                                  optimizer: RMSprop(parameterCount: config.parameterCount), clipNorm: 0.5)
        let singleStats = single.step(Batch(x: x, y: y))

        // Rank 1's contribution, computed on a replica.
        let replica = Model(config: config, seed: 2)
        replica.zeroGradients()
        let remote = replica.accumulateGradients(x: Array(x[15...]), y: Array(y[3...]), batch: 3)
        let remoteGradients = replica.gradients
        let distributed = TrainingLoop(model: Model(config: config, seed: 2),
                                       optimizer: RMSprop(parameterCount: config.parameterCount), clipNorm: 0.5) {
            gradients, local in
            for i in 0..<gradients.count { gradients[i] += remoteGradients[i] }
            return local + remote
        }
        let stats = distributed.step(Batch(x: Array(x[..<15]), y: Array(y[..<3])))
        XCTAssertEqual(stats.count, 6)
        XCTAssertEqual(stats.correct, singleStats.correct)
        assertClose(stats.lossSum, singleStats.lossSum, rtol: 1e-6)
        assertClose(distributed.model.weights.map(Double.init), single.model.weights.map(Double.init),
                    rtol: 0, atol: 1e-6, "weights after one step")
        XCTAssertNotEqual(single.model.weights, Model(config: config, seed: 2).weights)
    }

    func testStepWithNoLocalRows() {
        let config = ModelConfig(kind: .gru, numWords: 5, embedDim: 2, units: 2)
        let loop = TrainingLoop(model: Model(config: config, seed: 1),
                                optimizer: SGD(parameterCount: config.parameterCount))
        let before = loop.model.weights
        let stats = loop.step(Batch(x: [], y: []))
        XCTAssertEqual(stats.count, 0)
        XCTAssertEqual(loop.model.weights, before)
        XCTAssertEqual(loop.optimizer.iterations, 0)
    }
}
