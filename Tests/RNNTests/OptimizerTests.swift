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

    /// Gradient sums for the bitwise tests: 1,003 values (125 vectors of 8 and a 3-value tail), a
    /// spread of magnitudes, and exact +0 and −0 where a momentum or velocity is not zero, the
    /// places where a sign of zero can differ.
    private func sums(_ n: Int = 1003, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0 ..< n).map { i in
            if (i + Int(seed)) % 11 == 3 { return 0 }          // zeros move with the seed (the step)
            if (i + Int(seed)) % 13 == 5 { return -0.0 }
            let u = Float(g.next() % 2_000_001) / 1_000_000 - 1          // in [−1, 1]
            return u * Float(1 << (i % 7)) * 1e-3
        }
    }

    /// nil when `a` and `b` hold the same bits, else the first place they differ.
    private func bitDifference(_ a: [Float], _ b: [Float]) -> String? {
        guard a.count == b.count else { return "\(a.count) values against \(b.count)" }
        return a.indices.first { a[$0].bitPattern != b[$0].bitPattern }.map { "[\($0)]: \(a[$0]) against \(b[$0])" }
    }

    /// The vectorized update is the scalar formula evaluated in Float, bit for bit, over the whole
    /// buffer: the lanes and the tail agree, no multiply-add is fused, the square root is IEEE's, and
    /// −g keeps the sign of zero. The reference is the plain loop each optimizer ran before, applied
    /// to a buffer scaled first (as the trainer used to scale it).
    func testUpdatesAreTheScalarFormulasBitForBit() {
        let n = 1003, scale: Float = 1 / 96
        let w0 = sums(n, seed: 7).map { $0 * 100 }
        for (name, make) in [("rmsprop", { RMSprop(parameterCount: n) as any Optimizer }),
                             ("adam", { Adam(parameterCount: n) as any Optimizer }),
                             ("sgd", { SGD(parameterCount: n, learningRate: 0.1) as any Optimizer }),
                             ("sgd-momentum", { SGD(parameterCount: n, learningRate: 0.1, momentum: 0.9) as any Optimizer })] {
            let opt = make()
            var w = w0
            var rw = w0, slotA = [Float](repeating: 0, count: n), slotB = slotA
            for step in 1 ... 4 {
                let g = sums(n, seed: UInt64(step))
                let check = opt.apply(gradients: g, scale: scale, to: &w)
                XCTAssertEqual(check, UpdateCheck(weightsFinite: true), name)
                let mean = g.map { $0 * scale }
                for i in 0 ..< n {
                    let gi = mean[i]
                    switch name {
                    case "rmsprop":
                        let vi = Float(0.9) * slotA[i] + Float(1 - 0.9) * (gi * gi)
                        slotA[i] = vi
                        rw[i] -= (Float(0.001) * gi) / (vi + Float(1e-7)).squareRoot()
                    case "adam":
                        let t = Float(step)
                        let alpha = Float(0.001) * (1 - Foundation.pow(Float(0.999), t)).squareRoot() / (1 - Foundation.pow(Float(0.9), t))
                        let mi = slotA[i] + (gi - slotA[i]) * Float(1 - 0.9)
                        let vi = slotB[i] + (gi * gi - slotB[i]) * Float(1 - 0.999)
                        slotA[i] = mi; slotB[i] = vi
                        rw[i] -= (mi * alpha) / (vi.squareRoot() + Float(1e-7))
                    default:
                        let mu: Float = name == "sgd" ? 0 : 0.9
                        let mi = -gi * Float(0.1) + slotA[i] * mu
                        slotA[i] = mi
                        rw[i] += mi
                    }
                }
                XCTAssertNil(bitDifference(w, rw), "\(name) weights after step \(step)")
                XCTAssertNil(bitDifference(opt.slots[0].values, slotA), "\(name) \(opt.slots[0].name) after step \(step)")
                if name == "adam" { XCTAssertNil(bitDifference(opt.slots[1].values, slotB), "adam velocity after step \(step)") }
            }
            if name == "sgd" {
                // The case −g must get right: at g = +0 after a step that left the momentum negative,
                // −g·lr + m·0 is −0 + −0 = −0 (with 0 − g it would be +0).
                XCTAssertTrue(zip(sums(n, seed: 4), opt.slots[0].values).contains { $0.bitPattern == 0 && $1.bitPattern == 0x8000_0000 },
                              "the data holds a +0 gradient after a negative momentum")
            }
        }
    }

    /// What the trainer relies on to stop on a non-finite step: the update reports the weights a NaN
    /// or ±∞ gradient made non-finite (in the vector body or in the tail), and an update that
    /// overflowed them from a finite gradient.
    func testUpdateReportsNonFiniteGradientsAndWeights() {
        let n = 1003
        for kind in OptimizerKind.allCases {
            for (i, bad) in [(5, Float.nan), (n - 2, Float.infinity), (400, -Float.infinity)] {
                var g = sums(n, seed: 3), w = sums(n, seed: 9)
                g[i] = bad
                let check = kind.make(parameterCount: n).apply(gradients: g, scale: 0.5, to: &w)
                XCTAssertFalse(check.weightsFinite, "\(kind): \(bad) at \(i)")
            }
            var w = sums(n, seed: 9)
            let fine = kind.make(parameterCount: n).apply(gradients: sums(n, seed: 3), scale: 0.5, to: &w)
            XCTAssertEqual(fine, UpdateCheck(weightsFinite: true), "\(kind)")
        }
        // A finite gradient whose step overflows: SGD with a learning rate of 1e38.
        for i in [6, 1001] {
            var g = [Float](repeating: 0, count: 1003), w = g
            g[i] = 1e10
            let check = SGD(parameterCount: 1003, learningRate: 1e38).apply(gradients: g, scale: 1, to: &w)
            XCTAssertEqual(check, UpdateCheck(weightsFinite: false), "overflow at \(i)")
            XCTAssertEqual(w[i], -.infinity)
        }
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
