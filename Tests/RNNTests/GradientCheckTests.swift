// Central-difference gradient checks of every parameter and of the layer input, against the
// independent Double reference (Reference.swift).
//
// Tolerance: the numeric gradient is taken in Double with eps 1e-5, so its own error
// (truncation ~eps²·f''' and rounding ~1e-16/eps) is below 1e-9. The analytic gradient is computed
// in Float with fast tanh/sigmoid (absolute error ≤ 2.9e-7), so each component carries rounding of a
// few 1e-7 relative to the magnitudes it was summed from. Hence |analytic − numeric| must be at most
// 1e-3·|numeric| + 1e-5·‖numeric‖∞: the relative term checks every sizeable component to 0.1 %, the
// floor (1e-5 of the largest component, ~100× the Float noise) only spares components that are
// themselves almost zero. Any wrong term (a missing factor, a sign, a wrong index) is far outside.

@testable import RNN
import TestSupport
import XCTest

final class GradientCheckTests: XCTestCase {
    let rtol = 1e-3
    let floorFraction = 1e-5

    private func labels(_ config: ModelConfig) -> [String] {
        config.parameterTable.flatMap { view in (0..<view.count).map { "\(view.kerasPath)[\($0)]" } }
    }

    /// Whole model: every parameter, B=2, T=4, E=3, H=9, V=11. H = 9 runs both forms of the gate
    /// loops: one SIMD8 block and one scalar remainder per row.
    private func checkModel(_ kind: ModelConfig.Kind, layers: Int, classes: Int = 2, file: StaticString = #filePath, line: UInt = #line) {
        let config = ModelConfig(kind: kind, numWords: 11, embedDim: 3, units: 9, layers: layers, classes: classes)
        let batch = classes > 2 ? 4 : 2, steps = 4
        let model = Model(config: config, seed: 1)
        model.weights = Fixtures.randomWeights(count: config.parameterCount, scale: 0.5, seed: 2)
        var x = Fixtures.tokens(batch: batch, steps: steps, numWords: config.vocabularySize, seed: 3)
        x[5] = x[0]                                   // a repeated token: its rows' gradients add up
        let y: [Float] = classes > 2 ? [1, 0, 2, 1] : [1, 0]

        model.zeroGradients()
        let stats = model.accumulateGradients(x: x, y: y, batch: batch)
        let w = model.weights.map(Double.init)
        let referenceLoss = Reference.lossSum(config: config, weights: w, x: x, y: y, batch: batch)
        assertClose(stats.lossSum, referenceLoss, rtol: 1e-5, "\(kind) ×\(layers) loss", file: file, line: line)

        let numeric = Reference.numericGradient(w, indices: Array(0..<w.count)) {
            Reference.lossSum(config: config, weights: $0, x: x, y: y, batch: batch)
        }
        let analytic = model.gradients.map(Double.init)
        let scale = maxAbs(numeric)
        XCTAssertGreaterThan(scale, 1e-2, "gradient too small to test", file: file, line: line)
        // Every tensor must have a sizeable gradient, or a broken path could hide below the floor.
        for view in config.parameterTable {
            XCTAssertGreaterThan(maxAbs(Array(numeric[view.range])), 100 * floorFraction * scale,
                                 "\(view.kerasPath) has no sizeable gradient", file: file, line: line)
        }
        print("gradient check \(kind) ×\(layers): max |a−n|/max(|n|, 0.01‖n‖∞) = "
              + "\(maxRelativeError(analytic, numeric, floor: 0.01 * scale))")
        assertClose(analytic, numeric, rtol: rtol, atol: floorFraction * scale, labels: labels(config),
                    "\(kind) ×\(layers) gradient", file: file, line: line)
    }

    func testSimpleRNNModelGradient() { checkModel(.simpleRNN, layers: 1) }
    func testLSTMModelGradient() { checkModel(.lstm, layers: 1) }
    func testGRUModelGradient() { checkModel(.gru, layers: 1) }
    func testStackedSimpleRNNModelGradient() { checkModel(.simpleRNN, layers: 2) }
    func testStackedLSTMModelGradient() { checkModel(.lstm, layers: 2) }
    func testStackedGRUModelGradient() { checkModel(.gru, layers: 2) }
    /// Three layers: the middle one both receives and passes on sequence gradients.
    func testThreeLayerLSTMModelGradient() { checkModel(.lstm, layers: 3) }
    /// The softmax head over 3 classes: Dense(3) and sparse categorical cross-entropy.
    func testSoftmaxLSTMModelGradient() { checkModel(.lstm, layers: 1, classes: 3) }
    func testSoftmaxStackedGRUModelGradient() { checkModel(.gru, layers: 2, classes: 4) }

    /// One layer on a dense input X (T, B, I): checks dW, dU, db and dX (the input gradient), for
    /// a loss on all outputs (`sequence`) or on the last step only. Loss L = Σ C ⊙ h with fixed C.
    private func checkLayer(_ kind: ModelConfig.Kind, sequence: Bool, file: StaticString = #filePath, line: UInt = #line) {
        let config = ModelConfig(kind: kind, numWords: 11, embedDim: 3, units: 9, layers: 1)
        let B = 2, T = 4, I = 3, H = 9
        let model = Model(config: config, seed: 1)
        let weights = Fixtures.randomWeights(count: config.parameterCount, scale: 0.5, seed: 4)
        let layer = model.recurrentLayers[0].directions[0].cell
        let views = [layer.kernel, config.parameterTable[2], config.parameterTable[3]]
        var g = SeededGenerator(seed: 5)
        let xTimeMajor = (0..<(T * B * I)).map { _ in Float(g.nextUniform(-1, 1)) }
        let coefficients = (0..<((sequence ? T : 1) * B * H)).map { _ in Float(g.nextUniform(-1, 1)) }

        // Analytic, through the real code path.
        var gradients = [Float](repeating: 0, count: config.parameterCount)
        var dX = [Float](repeating: 0, count: T * B * I)
        var outputs = [Float](repeating: 0, count: T * B * H)
        layer.reserve(batch: B, steps: T)
        weights.withUnsafeBufferPointer { w in
            gradients.withUnsafeMutableBufferPointer { dw in
                xTimeMajor.withUnsafeBufferPointer { x in
                    layer.projectForward(input: x.baseAddress!, weights: w.baseAddress!, positions: B * T)
                    layer.forward(weights: w.baseAddress!, batch: B, steps: T)
                    outputs.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: layer.outputs, count: T * B * H) }
                    // BPTT forms dW, dX and the bias's Σ dP step by step (as LayerDirection sets it up).
                    dX.withUnsafeMutableBufferPointer { d in
                        let bias = ColumnSums(count: layer.gateWidth)
                        layer.sequenceInput = SequenceInput(x: x.baseAddress!, dX: d.baseAddress!, accumulate: false, bias: bias)
                        coefficients.withUnsafeBufferPointer { c in
                            layer.backward(weights: w.baseAddress!, gradients: dw.baseAddress!, dOutputs: c.baseAddress!,
                                           sequence: sequence, batch: B, steps: T)
                        }
                        layer.sequenceInput = nil
                        bias.add(into: layer.tensors.biasGradient(dw.baseAddress!))
                    }
                }
            }
        }

        // Reference: parameters p = [W, U, b, X (time-major)] in Double.
        let tensors = views.map { v in weights[v.range].map(Double.init) }
        let p0 = tensors.flatMap { $0 } + xTimeMajor.map(Double.init)
        let sizes = views.map(\.count)
        func unpack(_ p: [Double]) -> (W: [Double], U: [Double], b: [Double], x: Sequence3) {
            let w = Array(p[0..<sizes[0]]), u = Array(p[sizes[0]..<(sizes[0] + sizes[1])])
            let b = Array(p[(sizes[0] + sizes[1])..<(sizes[0] + sizes[1] + sizes[2])])
            let xs = p[(sizes[0] + sizes[1] + sizes[2])...]
            let base = xs.startIndex
            let x = (0..<B).map { b in (0..<T).map { t in (0..<I).map { i in xs[base + (t * B + b) * I + i] } } }
            return (w, u, b, x)
        }
        func referenceOutputs(_ p: [Double]) -> Sequence3 {
            let (w, u, b, x) = unpack(p)
            return Reference.layer(kind: kind, input: x, kernel: w, recurrent: u, bias: b, units: H)
        }
        func loss(_ p: [Double]) -> Double {
            let h = referenceOutputs(p)
            var sum = 0.0
            for b in 0..<B {
                for t in (sequence ? 0 : T - 1)..<T {
                    let row = sequence ? t * B + b : b
                    for j in 0..<H { sum += Double(coefficients[row * H + j]) * h[b][t][j] }
                }
            }
            return sum
        }

        // Forward values (time-major) against the reference.
        let hRef = referenceOutputs(p0)
        let hRefTimeMajor = (0..<T).flatMap { t in (0..<B).flatMap { b in hRef[b][t] } }
        assertClose(outputs.map(Double.init), hRefTimeMajor, rtol: 1e-5, atol: 1e-6, "\(kind) layer outputs",
                    file: file, line: line)

        let numeric = Reference.numericGradient(p0, indices: Array(0..<p0.count), loss)
        let analytic = views.flatMap { v in gradients[v.range].map(Double.init) } + dX.map(Double.init)
        let names = ["W", "U", "b"].enumerated().flatMap { k, n in (0..<sizes[k]).map { "\(n)[\($0)]" } }
            + (0..<dX.count).map { "dX[\($0)]" }
        let scale = maxAbs(numeric)
        let dXNumeric = Array(numeric[(sizes.reduce(0, +))...])
        XCTAssertGreaterThan(maxAbs(dXNumeric), 100 * floorFraction * scale, "dX has no sizeable gradient",
                             file: file, line: line)
        print("gradient check \(kind) layer (sequence: \(sequence)): max |a−n|/max(|n|, 0.01‖n‖∞) = "
              + "\(maxRelativeError(analytic, numeric, floor: 0.01 * scale))")
        assertClose(analytic, numeric, rtol: rtol, atol: floorFraction * scale, labels: names,
                    "\(kind) layer gradient (sequence: \(sequence))", file: file, line: line)
    }

    func testSimpleRNNLayerGradientSequence() { checkLayer(.simpleRNN, sequence: true) }
    func testSimpleRNNLayerGradientLastStep() { checkLayer(.simpleRNN, sequence: false) }
    func testLSTMLayerGradientSequence() { checkLayer(.lstm, sequence: true) }
    func testLSTMLayerGradientLastStep() { checkLayer(.lstm, sequence: false) }
    func testGRULayerGradientSequence() { checkLayer(.gru, sequence: true) }
    func testGRULayerGradientLastStep() { checkLayer(.gru, sequence: false) }

    /// The gradient is a sum over samples: two batches accumulated = one batch of both.
    func testGradientIsSumOverBatch() {
        let config = ModelConfig(kind: .gru, numWords: 11, embedDim: 3, units: 5)
        let model = Model(config: config, seed: 1)
        let x = Fixtures.tokens(batch: 4, steps: 4, numWords: 11, seed: 9)
        let y: [Float] = [1, 0, 0, 1]
        model.zeroGradients()
        let whole = model.accumulateGradients(x: x, y: y, batch: 4)
        let together = model.gradients
        model.zeroGradients()
        let first = model.accumulateGradients(x: Array(x[0..<8]), y: Array(y[0..<2]), batch: 2)
        let second = model.accumulateGradients(x: Array(x[8..<16]), y: Array(y[2..<4]), batch: 2)
        assertClose(model.gradients.map(Double.init), together.map(Double.init), rtol: 1e-5, atol: 1e-7,
                    "two halves vs whole")
        assertClose((first + second).lossSum, whole.lossSum, rtol: 1e-6)
        XCTAssertEqual(first.count + second.count, whole.count)
    }
}
