// An independent Double reference of the whole model, written straight from the equations:
// batch-major loops, no BLAS, no time-major layout, no fused embedding lookup, exact exp/tanh.
// Gradient checks take central differences of it; forward checks compare against it.

import Foundation
@testable import RNN
import TestSupport
import XCTest

/// Asserts `closenessFailure` is nil.
func assertClose(_ actual: [Double], _ expected: [Double], rtol: Double, atol: Double = 0,
                 labels: [String]? = nil, _ message: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    if let failure = closenessFailure(actual, expected, rtol: rtol, atol: atol, labels: labels) {
        XCTFail("\(message): \(failure)", file: file, line: line)
    }
}

func assertClose(_ actual: Double, _ expected: Double, rtol: Double, atol: Double = 0, _ message: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    assertClose([actual], [expected], rtol: rtol, atol: atol, message, file: file, line: line)
}

func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

/// Sequence (B][T][features).
typealias Sequence3 = [[[Double]]]

/// One layer direction's dropout masks per sample: input [b][mask][i], recurrent [b][mask][j]
/// (one mask shared by all gates when a sample has one).
struct ReferenceMasks {
    var input: [[[Double]]]?
    var recurrent: [[[Double]]]?
}

extension ReferenceMasks {
    /// The masks `model` drew for its last batch of `batch` rows, per layer and direction, as the
    /// reference takes them (nil where that dropout is off).
    static func drawn(by model: Model, batch: Int) -> [[ReferenceMasks]] {
        func reshape(_ set: MaskSet) -> [[[Double]]] {
            let v = set.values.map(Double.init), n = set.width
            return (0..<batch).map { b in
                (0..<set.count).map { g in Array(v[((b * set.count + g) * n)..<((b * set.count + g + 1) * n)]) }
            }
        }
        return model.recurrentLayers.map { layer in
            layer.directions.map { d in
                ReferenceMasks(input: layer.spec.dropout > 0 ? reshape(d.inputMasks) : nil,
                               recurrent: layer.spec.recurrentDropout > 0 ? reshape(d.recurrentDropout.masks) : nil)
            }
        }
    }
}

enum Reference {
    /// One recurrent layer over input (B][T][I) from zero state; returns all h (B][T][H).
    /// Weights are Keras-shaped row-major: kernel (I, G), recurrent (H, G), bias (G) or (2, 3H).
    static func layer(kind: ModelConfig.Kind, input: Sequence3, kernel W: [Double], recurrent U: [Double],
                      bias: [Double], units H: Int, resetAfter: Bool = true,
                      masks: ReferenceMasks? = nil) -> Sequence3 {
        let I = input.first?.first?.count ?? 0
        let G = kind.gateCount * H
        var out: Sequence3 = []
        for (b, sample) in input.enumerated() {
            // Inputs and h_{t−1} as gate block g sees them (masked when masks are given).
            func xMasked(_ x: [Double], _ g: Int) -> [Double] {
                guard let m = masks?.input?[b] else { return x }
                let mask = m[m.count == 1 ? 0 : g]
                return (0..<I).map { x[$0] * mask[$0] }
            }
            func hMasked(_ h: [Double], _ g: Int) -> [Double] {
                guard let m = masks?.recurrent?[b] else { return h }
                let mask = m[m.count == 1 ? 0 : g]
                return (0..<H).map { h[$0] * mask[$0] }
            }
            var h = [Double](repeating: 0, count: H)
            var c = [Double](repeating: 0, count: H)
            var hs: [[Double]] = []
            for x in sample {
                // x and h_{t−1} as each gate block sees them, then x·W and h·U for block g, unit j.
                let xg = (0..<kind.gateCount).map { xMasked(x, $0) }
                let hg = (0..<kind.gateCount).map { hMasked(h, $0) }
                func xw(_: [Double], _ g: Int, _ j: Int) -> Double {
                    var s = 0.0
                    for i in 0..<I { s += xg[g][i] * W[i * G + g * H + j] }
                    return s
                }
                func hu(_: [Double], _ g: Int, _ j: Int) -> Double {
                    var s = 0.0
                    for k in 0..<H { s += hg[g][k] * U[k * G + g * H + j] }
                    return s
                }
                var hNew = h
                switch kind {
                case .simpleRNN:
                    for j in 0..<H { hNew[j] = tanh(xw(x, 0, j) + hu(h, 0, j) + bias[j]) }
                case .lstm:
                    for j in 0..<H {
                        let i = sigmoid(xw(x, 0, j) + hu(h, 0, j) + bias[j])
                        let f = sigmoid(xw(x, 1, j) + hu(h, 1, j) + bias[H + j])
                        let cHat = tanh(xw(x, 2, j) + hu(h, 2, j) + bias[2 * H + j])
                        let o = sigmoid(xw(x, 3, j) + hu(h, 3, j) + bias[3 * H + j])
                        c[j] = f * c[j] + i * cHat
                        hNew[j] = o * tanh(c[j])
                    }
                case .gru where resetAfter:
                    for j in 0..<H {
                        let z = sigmoid(xw(x, 0, j) + bias[j] + hu(h, 0, j) + bias[G + j])
                        let r = sigmoid(xw(x, 1, j) + bias[H + j] + hu(h, 1, j) + bias[G + H + j])
                        let rh = hu(h, 2, j) + bias[G + 2 * H + j]
                        let hHat = tanh(xw(x, 2, j) + bias[2 * H + j] + r * rh)
                        hNew[j] = z * h[j] + (1 - z) * hHat
                    }
                case .gru:
                    // Keras 2: ĥ = tanh(x_h + b_h + (r ⊙ h_{t−1})·U_h), bias (3H) input side only.
                    let z = (0..<H).map { sigmoid(xw(x, 0, $0) + bias[$0] + hu(h, 0, $0)) }
                    let r = (0..<H).map { sigmoid(xw(x, 1, $0) + bias[H + $0] + hu(h, 1, $0)) }
                    let hm = hg[2]
                    for j in 0..<H {
                        var s = 0.0
                        for k in 0..<H { s += r[k] * hm[k] * U[k * G + 2 * H + j] }
                        let hHat = tanh(xw(x, 2, j) + bias[2 * H + j] + s)
                        hNew[j] = z[j] * h[j] + (1 - z[j]) * hHat
                    }
                }
                h = hNew
                hs.append(h)
            }
            out.append(hs)
        }
        return out
    }

    /// Logits (B) of the whole model for batch-major tokens x (B, T), weights in the flat layout;
    /// `masks[l][d]` holds layer l's direction d's masks when given.
    static func allLogits(config: ModelConfig, weights w: [Double], x: [Int32], batch: Int,
                          masks: [[ReferenceMasks]]? = nil) -> [[Double]] {
        let table = config.parameterTable, p = config.preset!
        func tensor(_ k: Int) -> [Double] { Array(w[table[k].range]) }
        let directions = p.bidirectional ? 2 : 1
        let T = x.count / batch, E = p.embedDim, H = p.units, D = directions * H
        let emb = tensor(0)
        var seq: Sequence3 = (0..<batch).map { b in
            (0..<T).map { t in
                let token = Int(x[b * T + t])
                return Array(emb[(token * E)..<((token + 1) * E)])
            }
        }
        for l in 0..<p.layers {
            var outputs: [Sequence3] = []
            for d in 0..<directions {
                let k = 1 + 3 * (l * directions + d)
                // The backward direction reads the sequence reversed; its outputs are flipped back.
                let input = d == 0 ? seq : seq.map { Array($0.reversed()) }
                let h = layer(kind: p.kind, input: input, kernel: tensor(k), recurrent: tensor(k + 1),
                              bias: tensor(k + 2), units: H, resetAfter: p.resetAfter, masks: masks?[l][d])
                outputs.append(d == 0 ? h : h.map { Array($0.reversed()) })
            }
            if l == p.layers - 1 && p.bidirectional {
                // return_sequences=False: each direction's last output ([backward] after reading x_0).
                seq = (0..<batch).map { b in [outputs[0][b][T - 1] + outputs[1][b][0]] }
            } else {
                seq = (0..<batch).map { b in (0..<T).map { t in outputs.flatMap { $0[b][t] } } }
            }
        }
        // Dense: kernel (D, K) row-major, bias (K).
        let wd = tensor(table.count - 2), bd = tensor(table.count - 1), K = bd.count
        return seq.map { sample in
            let h = sample[sample.count - 1]
            return (0..<K).map { k in
                var z = bd[k]
                for j in 0..<D { z += h[j] * wd[j * K + k] }
                return z
            }
        }
    }

    /// The one logit per sample of a sigmoid model.
    static func logits(config: ModelConfig, weights w: [Double], x: [Int32], batch: Int,
                       masks: [[ReferenceMasks]]? = nil) -> [Double] {
        allLogits(config: config, weights: w, x: x, batch: batch, masks: masks).map { $0[0] }
    }

    /// Σ over the batch of the head's loss: binary cross-entropy from the definition
    /// −y·log p − (1−y)·log(1−p), or, for K > 1 logits, softmax cross-entropy.
    static func lossSum(config: ModelConfig, weights w: [Double], x: [Int32], y: [Float], batch: Int,
                        masks: [[ReferenceMasks]]? = nil) -> Double {
        headLossSum(logits: allLogits(config: config, weights: w, x: x, batch: batch, masks: masks), labels: y)
    }

    /// Σ of the head's loss over logits [b][k]: binary cross-entropy for one logit, softmax
    /// cross-entropy for more, each from its definition.
    static func headLossSum(logits z: [[Double]], labels y: [Float]) -> Double {
        var sum = 0.0
        for b in z.indices {
            if z[b].count == 1 {
                let p = sigmoid(z[b][0]), label = Double(y[b])
                sum -= label * log(p) + (1 - label) * log(1 - p)
            } else {
                // Softmax cross-entropy from its definition: −log(e^{z_y} / Σ_k e^{z_k}).
                sum -= log(exp(z[b][Int(y[b])]) / z[b].reduce(0) { $0 + exp($1) })
            }
        }
        return sum
    }

    /// Central differences ∂f/∂w_k for every k in `indices`, step `eps`.
    static func numericGradient(_ w: [Double], indices: [Int], eps: Double = 1e-5,
                                _ f: ([Double]) -> Double) -> [Double] {
        var probe = w
        return indices.map { k in
            probe[k] = w[k] + eps
            let plus = f(probe)
            probe[k] = w[k] - eps
            let minus = f(probe)
            probe[k] = w[k]
            return (plus - minus) / (2 * eps)
        }
    }
}

/// Tiny deterministic test data.
enum Fixtures {
    /// Weights uniform in ±scale for every tensor (biases included, so their forward use is tested).
    static func randomWeights(count: Int, scale: Double, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed, stream: 77)
        return (0..<count).map { _ in Float(g.nextUniform(-scale, scale)) }
    }

    static func tokens(batch: Int, steps: Int, numWords: Int, seed: UInt64) -> [Int32] {
        var g = SeededGenerator(seed: seed, stream: 78)
        return (0..<(batch * steps)).map { _ in Int32(g.nextIndex(numWords)) }
    }
}
