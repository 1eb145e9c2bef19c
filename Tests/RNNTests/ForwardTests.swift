// Forward values: each cell on hand-set weights against its equations written out by hand
// (I = H = 1, two steps), and the whole model against the Double reference.

@testable import RNN
import Foundation
import TestSupport
import XCTest

final class ForwardTests: XCTestCase {
    /// Runs the layer of a (E=1, H=1) model with `weights` on inputs x_0, x_1 (B = 1); returns h_0, h_1.
    private func run(_ kind: ModelConfig.Kind, kernel: [Float], recurrent: [Float], bias: [Float],
                     inputs: [Float]) -> [Double] {
        let config = ModelConfig(kind: kind, numWords: 2, embedDim: 1, units: 1)
        let model = Model(config: config, seed: 1)
        let table = config.parameterTable
        model.weights.replaceSubrange(table[1].range, with: kernel)
        model.weights.replaceSubrange(table[2].range, with: recurrent)
        model.weights.replaceSubrange(table[3].range, with: bias)
        let layer = model.recurrentLayers[0].directions[0].cell
        layer.reserve(batch: 1, steps: inputs.count)
        model.weights.withUnsafeBufferPointer { w in
            inputs.withUnsafeBufferPointer { x in
                layer.projectForward(input: x.baseAddress!, weights: w.baseAddress!, positions: inputs.count)
                layer.forward(weights: w.baseAddress!, batch: 1, steps: inputs.count)
            }
        }
        return (0..<inputs.count).map { Double(layer.outputs[$0]) }
    }

    func testSimpleRNNCellByHand() {
        let (w, u, b) = (0.7, -1.3, 0.2), x = [0.5, -1.5]
        let h0 = tanh(x[0] * w + b)
        let h1 = tanh(x[1] * w + h0 * u + b)
        let h = run(.simpleRNN, kernel: [0.7], recurrent: [-1.3], bias: [0.2], inputs: [0.5, -1.5])
        assertClose(h, [h0, h1], rtol: 1e-6, atol: 1e-7, "SimpleRNN")
    }

    func testLSTMCellByHand() {
        // Gate order i, f, c, o in every tensor.
        let w = [0.5, -0.4, 0.9, 0.3], u = [0.2, 0.6, -0.7, -0.5], b = [0.1, 1.0, -0.2, 0.05]
        let x = [0.8, -0.6]
        var h = 0.0, c = 0.0, expected: [Double] = []
        for xt in x {
            let i = sigmoid(xt * w[0] + h * u[0] + b[0])
            let f = sigmoid(xt * w[1] + h * u[1] + b[1])
            let cHat = tanh(xt * w[2] + h * u[2] + b[2])
            let o = sigmoid(xt * w[3] + h * u[3] + b[3])
            c = f * c + i * cHat
            h = o * tanh(c)
            expected.append(h)
        }
        let got = run(.lstm, kernel: w.map(Float.init), recurrent: u.map(Float.init), bias: b.map(Float.init),
                      inputs: x.map(Float.init))
        assertClose(got, expected, rtol: 1e-6, atol: 1e-7, "LSTM")
    }

    func testGRUCellByHand() {
        // Gate order z, r, h; bias rows: input, recurrent (reset_after=True).
        let w = [0.5, -0.4, 0.9], u = [0.2, 0.6, -0.7], bIn = [0.1, -0.3, 0.2], bRec = [-0.05, 0.4, 0.3]
        let x = [0.8, -0.6]
        var h = 0.0, expected: [Double] = []
        for xt in x {
            let z = sigmoid(xt * w[0] + bIn[0] + h * u[0] + bRec[0])
            let r = sigmoid(xt * w[1] + bIn[1] + h * u[1] + bRec[1])
            let hHat = tanh(xt * w[2] + bIn[2] + r * (h * u[2] + bRec[2]))
            h = z * h + (1 - z) * hHat
            expected.append(h)
        }
        let got = run(.gru, kernel: w.map(Float.init), recurrent: u.map(Float.init),
                      bias: (bIn + bRec).map(Float.init), inputs: x.map(Float.init))
        assertClose(got, expected, rtol: 1e-6, atol: 1e-7, "GRU")
    }

    /// predict == σ(reference logits) for every kind, one and two layers, with default init.
    func testModelPredictMatchesReference() {
        for kind in ModelConfig.Kind.allCases {
            for layers in 1...2 {
                let config = ModelConfig(kind: kind, numWords: 13, embedDim: 4, units: 11, layers: layers)
                let model = Model(config: config, seed: 7)
                // Larger than the default init so outputs are far from 0.5 and differ per sample.
                model.weights = Fixtures.randomWeights(count: config.parameterCount, scale: 0.6, seed: 8)
                let x = Fixtures.tokens(batch: 3, steps: 7, numWords: 13, seed: 9)
                let p = model.predict(x: x, batch: 3).map(Double.init)
                let z = Reference.logits(config: config, weights: model.weights.map(Double.init), x: x, batch: 3)
                assertClose(p, z.map(sigmoid), rtol: 1e-5, atol: 1e-7, "\(kind) ×\(layers)")
            }
        }
    }

    /// Evaluation runs in blocks of steps, each continuing from the state the previous block left:
    /// with one layer any block length gives exactly the logits of one block, on every BLAS kernel:
    /// the input projection is one lookup table made by the same GEMM call whatever the block, and
    /// every step's h·U is the same (B×H)·(H×gH) call. A stacked layer's input projection is a GEMM
    /// over fewer rows per block, which a kernel may sum in another order, so there they agree to
    /// Float rounding (1e-5 relative: a few ulp per step over 40 steps). Both match the reference.
    func testBlockedEvaluationCarriesTheStateExactly() {
        for kind in ModelConfig.Kind.allCases {
            for layers in 1...2 {
                let config = ModelConfig(kind: kind, numWords: 13, embedDim: 4, units: 11, layers: layers)
                let model = Model(config: config, seed: 7)
                model.weights = Fixtures.randomWeights(count: config.parameterCount, scale: 0.6, seed: 8)
                let x = Fixtures.tokens(batch: 3, steps: 40, numWords: 13, seed: 9)
                let (whole, runs) = logitsInBlocks(model, x)
                for (block, blocked) in runs {
                    if layers == 1 {
                        XCTAssertEqual(blocked, whole, "\(kind), blocks of \(block)")
                    } else {
                        assertClose(blocked.map(Double.init), whole.map(Double.init), rtol: 1e-5, atol: 1e-6,
                                    "\(kind) ×\(layers), blocks of \(block)")
                    }
                }
                let z = Reference.logits(config: config, weights: model.weights.map(Double.init), x: x, batch: 3)
                assertClose(whole.map(Double.init), z, rtol: 1e-4, atol: 1e-5, "\(kind) ×\(layers)")
            }
        }
    }

    /// The logits of x (3 rows) in one block, and in blocks of 1, 7 and 39 steps.
    private func logitsInBlocks(_ model: Model, _ x: [Int32]) -> (whole: [Float], blocked: [(Int, [Float])]) {
        model.inferenceBlockSteps = 1_000
        let whole = model.logits(x: x, batch: 3)
        let blocked = [1, 7, 39].map { block in
            model.inferenceBlockSteps = block
            return (block, model.logits(x: x, batch: 3))
        }
        return (whole, blocked)
    }

    /// A bidirectional layer, and a go_backwards one, that read the tokens and hand on their final
    /// state run in blocks too: the backward direction reads its blocks from the sequence's end.
    /// Any block length gives exactly the one-block logits (the same table GEMM, the same h·U
    /// calls), which match the Double reference; one returning sequences stays whole-sequence.
    func testBidirectionalAndBackwardsLayersEvaluateInBlocks() {
        for kind in ModelConfig.Kind.allCases {
            let bidirectional = ModelConfig(kind: kind, numWords: 13, embedDim: 4, units: 11, bidirectional: true)
            let backwards = ModelConfig(layers: [.embedding(EmbeddingSpec(inputDim: 13, outputDim: 4)),
                                                 .recurrent(RecurrentSpec(kind: kind, units: 11, goBackwards: true)),
                                                 .dense(DenseSpec(units: 1))])
            for config in [bidirectional, backwards] {
                let model = Model(config: config, seed: 7)
                XCTAssertTrue(model.layers.allSatisfy(\.runsInBlocks), config.label)
                model.weights = Fixtures.randomWeights(count: config.parameterCount, scale: 0.6, seed: 8)
                let x = Fixtures.tokens(batch: 3, steps: 40, numWords: 13, seed: 9)
                let (whole, runs) = logitsInBlocks(model, x)
                for (block, blocked) in runs {
                    XCTAssertEqual(blocked, whole, "\(config.label), blocks of \(block)")
                }
                let z = SequentialReference.logits(config: config, weights: model.weights.map(Double.init), x: x, batch: 3).flatMap { $0 }
                assertClose(whole.map(Double.init), z, rtol: 1e-4, atol: 1e-5, config.label)
            }
        }
        let stacked = ModelConfig(kind: .lstm, numWords: 13, embedDim: 4, units: 5, layers: 2, bidirectional: true)
        XCTAssertFalse(Model(config: stacked, seed: 1).layers.allSatisfy(\.runsInBlocks), "a sequence-returning bidirectional layer")
    }

    /// Workspaces grow and shrink with (B, T) without changing results.
    func testWorkspaceReuseAcrossShapes() {
        let config = ModelConfig(kind: .lstm, numWords: 20, embedDim: 4, units: 6, layers: 2)
        let model = Model(config: config, seed: 3)
        let small = Fixtures.tokens(batch: 2, steps: 5, numWords: 20, seed: 1)
        let large = Fixtures.tokens(batch: 5, steps: 9, numWords: 20, seed: 2)
        let first = model.predict(x: small, batch: 2)
        _ = model.predict(x: large, batch: 5)
        // Exact on any kernel: the same calls on the same shapes (only the buffers were reused).
        XCTAssertEqual(model.predict(x: small, batch: 2), first)
        let fresh = Model(config: config, seed: 3)
        XCTAssertEqual(fresh.predict(x: large, batch: 5), model.predict(x: large, batch: 5))
        // Chunked prediction equals one batch (up to GEMM kernels that may sum in another order).
        assertClose(model.predict(x: large, batch: 5, batchSize: 2).map(Double.init),
                    model.predict(x: large, batch: 5).map(Double.init), rtol: 1e-6, "chunked")
    }

    func testEvaluateCountsAndStableLoss() {
        let config = ModelConfig(kind: .simpleRNN, numWords: 5, embedDim: 2, units: 3)
        let model = Model(config: config, seed: 1)
        let x: [Int32] = [1, 2, 3, 4, 0, 1]
        let p = model.predict(x: x, batch: 2)
        let y: [Float] = [1, 0]
        let stats = model.evaluate(x: x, y: y, rows: 2, batchSize: 1)
        XCTAssertEqual(stats.count, 2)
        XCTAssertEqual(stats.correct, (p[0] >= 0.5 ? 1 : 0) + (p[1] < 0.5 ? 1 : 0))
        let expected = -log(Double(p[0])) - log(1 - Double(p[1]))
        assertClose(stats.lossSum, expected, rtol: 1e-5)
        // Extreme logits: the stable form neither overflows nor loses the small tail.
        assertClose(SigmoidHead.crossEntropy(logit: 100, label: 0), 100, rtol: 1e-12)
        assertClose(SigmoidHead.crossEntropy(logit: -100, label: 0), exp(-100.0), rtol: 1e-9)
        assertClose(SigmoidHead.crossEntropy(logit: 0, label: 1), log(2.0), rtol: 1e-12)
    }
}
