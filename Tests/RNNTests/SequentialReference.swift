// A second, independent Double implementation of any `ModelConfig` (every layer kind), sample by
// sample, from the layers' definitions in Keras's documentation: the gradient checks of the
// chapter-6 layers differentiate it numerically. Recurrent layers reuse `Reference.layer`.

@testable import RNN
import Foundation

enum SequentialReference {
    /// A layer's output for every sample: a sequence [b][t][d] or a vector [b][d].
    enum Value {
        case sequence(Sequence3)
        case vector([[Double]])
    }

    static func activate(_ z: Double, _ f: Nonlinearity) -> Double {
        switch f {
        case .linear: return z
        case .relu: return max(0, z)
        case .tanh: return tanh(z)
        case .sigmoid: return sigmoid(z)
        }
    }

    /// Logits [b][k]. `recurrentMasks[l][d]`: the l-th recurrent layer's masks; `dropout`: the key of
    /// the Dropout layers' masks (nil: no dropout, as in evaluation).
    static func logits(config: ModelConfig, weights w: [Double], x: [Int32], batch: Int,
                       recurrentMasks: [[ReferenceMasks]]? = nil, dropout: DropoutKey? = nil) -> [[Double]] {
        let table = config.parameterTable
        var next = 0
        func tensor() -> [Double] { defer { next += 1 }; return Array(w[table[next].range]) }
        let T = x.count / batch
        var value = Value.vector([])
        var recurrentIndex = 0, dropoutIndex = 0
        for layer in config.layers {
            switch (layer, value) {
            case (.embedding(let e), _):
                let emb = tensor(), E = e.outputDim
                value = .sequence((0..<batch).map { b in
                    (0..<T).map { t in let k = Int(x[b * T + t]); return Array(emb[(k * E)..<((k + 1) * E)]) }
                })
            case (.recurrent(let r), .sequence(let seq)):
                let masks = recurrentMasks?[recurrentIndex]
                recurrentIndex += 1
                var outputs: [Sequence3] = []
                for d in 0..<(r.bidirectional ? 2 : 1) {
                    let (W, U) = (tensor(), tensor())
                    // use_bias=False: the gates read zeros.
                    let rows = r.kind == .gru && r.resetAfter ? 2 : 1
                    let b = r.useBias ? tensor() : [Double](repeating: 0, count: rows * r.kind.gateCount * r.units)
                    let reversed = d == 1 || r.goBackwards
                    let input = reversed ? seq.map { Array($0.reversed()) } : seq
                    let h = Reference.layer(kind: r.kind, input: input, kernel: W, recurrent: U, bias: b, units: r.units,
                                            resetAfter: r.resetAfter, masks: masks?[d])
                    // A Bidirectional flips its backward outputs back; go_backwards keeps reading order.
                    outputs.append(d == 1 ? h.map { Array($0.reversed()) } : h)
                }
                let n = seq[0].count      // this layer's steps (convolutions and pooling shorten the input)
                if r.returnSequences {
                    value = .sequence((0..<batch).map { b in (0..<n).map { t in outputs.flatMap { $0[b][t] } } })
                } else if r.bidirectional {
                    value = .vector((0..<batch).map { b in outputs[0][b][n - 1] + outputs[1][b][0] })
                } else {
                    value = .vector((0..<batch).map { b in outputs[0][b][n - 1] })
                }
            case (.dense(let d), .vector(let v)):
                let W = tensor(), K = d.units, D = v.first?.count ?? 0
                let bias = d.useBias ? tensor() : [Double](repeating: 0, count: K)
                value = .vector(v.map { row in
                    (0..<K).map { k in
                        var z = bias[k]
                        for j in 0..<D { z += row[j] * W[j * K + k] }
                        return activate(z, d.activation)
                    }
                })
            case (.flatten, .sequence(let s)):
                value = .vector(s.map { Array($0.joined()) })
            case (.flatten, .vector):
                break
            case (.dropout(let spec), _):
                defer { dropoutIndex += 1 }
                guard let key = dropout, spec.rate > 0 else { break }
                func mask(_ b: Int, _ n: Int) -> [Double] {
                    DropoutMask.mask(count: n, rate: spec.rate, seed: key.seed, epoch: key.epoch, position: key.positions[b],
                                     layer: dropoutIndex, direction: 0, site: .layer, gate: 0).map(Double.init)
                }
                switch value {
                case .sequence(let s):
                    value = .sequence(s.enumerated().map { b, sample in
                        let D = sample.first?.count ?? 0, m = mask(b, sample.count * D)
                        return sample.enumerated().map { t, row in row.enumerated().map { $1 * m[t * D + $0] } }
                    })
                case .vector(let v):
                    value = .vector(v.enumerated().map { b, row in let m = mask(b, row.count); return row.enumerated().map { $1 * m[$0] } })
                }
            case (.conv1D(let c), .sequence(let s)):
                let W = tensor(), k = c.kernelSize, F = c.filters
                let bias = c.useBias ? tensor() : [Double](repeating: 0, count: F)
                value = .sequence(s.map { sample in
                    let steps = sample.count, D = sample.first?.count ?? 0
                    // Keras: valid keeps T − k + 1 steps; same pads ⌊(k−1)/2⌋ zeros before; causal k − 1 before.
                    let left = c.padding == .valid ? 0 : c.padding == .same ? (k - 1) / 2 : k - 1
                    let outSteps = c.padding == .valid ? steps - k + 1 : steps
                    return (0..<outSteps).map { t in
                        (0..<F).map { f in
                            var z = bias[f]
                            for j in 0..<k {
                                let i = t + j - left
                                guard i >= 0 && i < steps else { continue }
                                for d in 0..<D { z += sample[i][d] * W[(j * D + d) * F + f] }
                            }
                            return activate(z, c.activation)
                        }
                    }
                })
            case (.pooling1D(let p), .sequence(let s)):
                value = .sequence(s.map { sample in
                    let steps = sample.count, D = sample.first?.count ?? 0
                    let outSteps = p.padding == .valid ? (steps - p.poolSize) / p.strides + 1 : (steps + p.strides - 1) / p.strides
                    let left = p.padding == .valid ? 0 : max((outSteps - 1) * p.strides + p.poolSize - steps, 0) / 2
                    return (0..<outSteps).map { o in
                        let window = (o * p.strides - left)..<(o * p.strides - left + p.poolSize)
                        let inside = window.clamped(to: 0..<steps)
                        return (0..<D).map { d in inside.map { sample[$0][d] }.max()! }
                    }
                })
            case (.globalPooling1D(let g), .sequence(let s)):
                value = .vector(s.map { sample in
                    (0..<(sample.first?.count ?? 0)).map { d in
                        let column = sample.map { $0[d] }
                        return g.average ? column.reduce(0, +) / Double(column.count) : column.max()!
                    }
                })
            default:
                preconditionFailure("SequentialReference: \(layer.label) cannot take \(value)")
            }
        }
        guard case .vector(let z) = value else { preconditionFailure("SequentialReference: the model ends in a sequence") }
        return z
    }

    /// Σ over the batch of the head's loss, from its definition.
    static func lossSum(config: ModelConfig, weights w: [Double], x: [Int32], y: [Float], batch: Int,
                        recurrentMasks: [[ReferenceMasks]]? = nil, dropout: DropoutKey? = nil) -> Double {
        Reference.headLossSum(logits: logits(config: config, weights: w, x: x, batch: batch, recurrentMasks: recurrentMasks,
                                             dropout: dropout), labels: y)
    }
}
