// LSTM (Keras 3 `LSTM`; gate order i, f, c, o; recurrent activation sigmoid, activation tanh):
//     [a_i a_f a_c a_o] = x_t·W + h_{t−1}·U + b
//     i = σ(a_i), f = σ(a_f), ĉ = tanh(a_c), o = σ(a_o)
//     c_t = f ⊙ c_{t−1} + i ⊙ ĉ,   h_t = o ⊙ tanh(c_t),   h_{−1} = c_{−1} = 0
// Weights: kernel W (I, 4H), recurrent_kernel U (H, 4H), bias b (4H), each in blocks [i | f | c | o].
//
// Shape letters: B batch, T time steps, I input width, H units. Sequences are time-major (T, B, ·).

import BLAS

final class LSTMLayer: RecurrentLayer {
    let inputSize: Int
    let units: Int
    let kernel: ParameterView
    let recurrentKernel: ParameterView
    let bias: ParameterView
    var gateWidth: Int { 4 * units }
    var inputBiasOffset: Int { bias.offset }

    /// What BPTT needs from the forward pass.
    struct Cache {
        /// (T, B, 4H). In: x·W. After forward: the activated gates i, f, ĉ, o. During backward each
        /// step is overwritten by the gradient of its pre-activations, which is all that is left.
        var gates: UnsafeMutablePointer<Float>
        /// (T, B, H): cell states c_t.
        var c: UnsafeMutablePointer<Float>
        /// (T, B, H): tanh(c_t), kept so backward needs no transcendental for it.
        var tanhC: UnsafeMutablePointer<Float>
        /// (T, B, H): outputs h_t.
        var h: UnsafeMutablePointer<Float>
        /// (B, H): running ∂loss/∂h_t and ∂loss/∂c_t during BPTT.
        var dh: UnsafeMutablePointer<Float>
        var dc: UnsafeMutablePointer<Float>
        /// (B, H) zeros: the state before the first step.
        var zeros: UnsafeMutablePointer<Float>
    }

    private var buffers: [FloatBuffer] = []
    private(set) var cache: Cache
    /// (B, H): h and c carried from the previous block of steps (`keepFinalState`).
    private var stateH = FloatBuffer(count: 0)
    private var stateC = FloatBuffer(count: 0)

    init(inputSize: Int, units: Int, kernel: ParameterView, recurrentKernel: ParameterView, bias: ParameterView) {
        precondition(kernel.shape == [inputSize, 4 * units] && recurrentKernel.shape == [units, 4 * units]
                     && bias.shape == [4 * units], "LSTM: weight shapes do not match I=\(inputSize) H=\(units)")
        self.inputSize = inputSize
        self.units = units
        self.kernel = kernel
        self.recurrentKernel = recurrentKernel
        self.bias = bias
        buffers = (0..<7).map { _ in FloatBuffer(count: 0) }
        cache = Cache(gates: buffers[0].pointer, c: buffers[1].pointer, tanhC: buffers[2].pointer,
                      h: buffers[3].pointer, dh: buffers[4].pointer, dc: buffers[5].pointer,
                      zeros: buffers[6].pointer)
    }

    var projection: UnsafeMutablePointer<Float> { cache.gates }
    var outputs: UnsafeMutablePointer<Float> { cache.h }
    var projectionGradient: UnsafeMutablePointer<Float> { cache.gates }

    func reserve(batch: Int, steps: Int) {
        let sequence = batch * steps * units, state = batch * units
        let sizes = [4 * sequence, sequence, sequence, sequence, state, state, state]
        let grown = zip(buffers, sizes).map { $0.ensuring($1) }
        if zip(grown, buffers).contains(where: { $0 !== $1 }) {
            buffers = grown
            cache = Cache(gates: buffers[0].pointer, c: buffers[1].pointer, tanhC: buffers[2].pointer,
                          h: buffers[3].pointer, dh: buffers[4].pointer, dc: buffers[5].pointer,
                          zeros: buffers[6].pointer)
        }
    }

    func keepFinalState(batch: Int, steps: Int) {
        let BH = batch * units
        stateH = stateH.ensuring(BH)
        stateC = stateC.ensuring(BH)
        stateH.pointer.update(from: cache.h + (steps - 1) * BH, count: BH)
        stateC.pointer.update(from: cache.c + (steps - 1) * BH, count: BH)
    }

    func forward(weights w: UnsafePointer<Float>, batch: Int, steps: Int, carry: Bool) {
        let H = units, G = 4 * units, BH = batch * units, BG = batch * G
        let U = w + recurrentKernel.offset
        let bi = w + bias.offset, bf = bi + H, bc = bi + 2 * H, bo = bi + 3 * H
        for t in 0..<steps {
            let gates = cache.gates + t * BG
            let cPrev = t > 0 ? cache.c + (t - 1) * BH : (carry ? stateC.pointer : cache.zeros)
            if t > 0 || carry {
                // a_t += h_{t−1}·U: (B × H)·(H × 4H)
                BLAS.sgemm(m: batch, n: G, k: H, a: t > 0 ? cache.h + (t - 1) * BH : stateH.pointer, lda: H,
                           b: U, ldb: G, beta: 1, c: gates, ldc: G)
            }
            for row in 0..<batch {
                let gi = gates + row * G, gf = gi + H, gc = gi + 2 * H, go = gi + 3 * H
                let cp = cPrev + row * H
                let c = cache.c + t * BH + row * H, tc = cache.tanhC + t * BH + row * H
                let h = cache.h + t * BH + row * H
                @inline(__always) func cell<V: Lane>(_: V.Type, _ j: Int) {
                    let i = fastSigmoid(V.load(gi + j) + V.load(bi + j))
                    let f = fastSigmoid(V.load(gf + j) + V.load(bf + j))
                    let cHat = fastTanh(V.load(gc + j) + V.load(bc + j))
                    let o = fastSigmoid(V.load(go + j) + V.load(bo + j))
                    let cNew = f * V.load(cp + j) + i * cHat
                    let tanhCNew = fastTanh(cNew)
                    i.store(to: gi + j); f.store(to: gf + j); cHat.store(to: gc + j); o.store(to: go + j)
                    cNew.store(to: c + j)
                    tanhCNew.store(to: tc + j)
                    (o * tanhCNew).store(to: h + j)
                }
                forEachLane(H, { cell(Vector.self, $0) }, { cell(Float.self, $0) })
            }
        }
    }

    func backward(weights w: UnsafePointer<Float>, gradients dw: UnsafeMutablePointer<Float>,
                  dOutputs: UnsafePointer<Float>, sequence: Bool, batch: Int, steps: Int) {
        let H = units, G = 4 * units, BH = batch * units, BG = batch * G
        let U = w + recurrentKernel.offset
        let dh = cache.dh, dc = cache.dc
        dh.update(from: sequence ? dOutputs + (steps - 1) * BH : dOutputs, count: BH)
        dc.update(repeating: 0, count: BH)
        for t in stride(from: steps - 1, through: 0, by: -1) {
            let gates = cache.gates + t * BG
            let cPrev = t > 0 ? cache.c + (t - 1) * BH : cache.zeros
            for row in 0..<batch {
                let gi = gates + row * G, gf = gi + H, gc = gi + 2 * H, go = gi + 3 * H
                let cp = cPrev + row * H, tc = cache.tanhC + t * BH + row * H
                let dhr = dh + row * H, dcr = dc + row * H
                @inline(__always) func cell<V: Lane>(_: V.Type, _ j: Int) {
                    let one = V(repeating: 1)
                    let i = V.load(gi + j), f = V.load(gf + j), cHat = V.load(gc + j), o = V.load(go + j)
                    let tanhC = V.load(tc + j), dhv = V.load(dhr + j)
                    let dcv = V.load(dcr + j) + dhv * o * (one - tanhC * tanhC)
                    (dcv * f).store(to: dcr + j)                            // ∂loss/∂c_{t−1}
                    (dcv * cHat * i * (one - i)).store(to: gi + j)          // ∂/∂a_i
                    (dcv * V.load(cp + j) * f * (one - f)).store(to: gf + j) // ∂/∂a_f
                    (dcv * i * (one - cHat * cHat)).store(to: gc + j)       // ∂/∂a_c
                    (dhv * tanhC * o * (one - o)).store(to: go + j)         // ∂/∂a_o
                }
                forEachLane(H, { cell(Vector.self, $0) }, { cell(Float.self, $0) })
            }
            if t > 0 {
                // dh_{t−1} = (the layer above's ∂/∂h_{t−1}) + dA_t·Uᵀ: (B × 4H)·(4H × H)
                if sequence { dh.update(from: dOutputs + (t - 1) * BH, count: BH) }
                BLAS.sgemm(transB: true, m: batch, n: H, k: G, a: gates, lda: G, b: U, ldb: G,
                           beta: sequence ? 1 : 0, c: dh, ldc: H)
            }
        }
        // dU += Σ_{t≥1} h_{t−1}ᵀ·dA_t, all steps in one GEMM: (H × (T−1)B)·((T−1)B × 4H)
        if steps > 1 {
            BLAS.sgemm(transA: true, m: H, n: G, k: (steps - 1) * batch,
                       a: cache.h, lda: H, b: cache.gates + BG, ldb: G,
                       beta: 1, c: dw + recurrentKernel.offset, ldc: G)
        }
    }
}
