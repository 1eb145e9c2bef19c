// GRU (Keras 3 `GRU`, reset_after=True; gate order z, r, h; recurrent activation sigmoid):
//     [x_z x_r x_h] = x_t·W + b_in          [r_z r_r r_h] = h_{t−1}·U + b_rec
//     z = σ(x_z + r_z),  r = σ(x_r + r_r),  ĥ = tanh(x_h + r ⊙ r_h)
//     h_t = z ⊙ h_{t−1} + (1 − z) ⊙ ĥ,      h_{−1} = 0
// Weights: kernel W (I, 3H), recurrent_kernel U (H, 3H), bias (2, 3H) = [b_in; b_rec].
// "reset_after" means r multiplies h·U (+ its bias) after the product, so U·h stays one GEMM.
//
// Shape letters: B batch, T time steps, I input width, H units. Sequences are time-major (T, B, ·).

import BLAS

final class GRULayer: RecurrentLayer {
    let inputSize: Int
    let units: Int
    let kernel: ParameterView
    let recurrentKernel: ParameterView
    let bias: ParameterView
    var gateWidth: Int { 3 * units }
    var inputBiasOffset: Int { bias.offset }
    var recurrentBiasOffset: Int { bias.offset + 3 * units }

    /// What BPTT needs from the forward pass.
    struct Cache {
        /// (T, B, 3H). In: x·W. After forward: z, r, ĥ. During backward each step is overwritten by
        /// the gradient of the input-side pre-activations [x_z x_r x_h].
        var gates: UnsafeMutablePointer<Float>
        /// (T, B, H): r_h = (h_{t−1}·U + b_rec)'s candidate block, which r multiplies.
        var rh: UnsafeMutablePointer<Float>
        /// (T, B, H): outputs h_t.
        var h: UnsafeMutablePointer<Float>
        /// (T, B, 3H): gradient of the recurrent-side pre-activations [r_z r_r r_h] (differs from the
        /// input side only in the candidate block, by the factor r).
        var dRecurrent: UnsafeMutablePointer<Float>
        /// (B, 3H): h_{t−1}·U of the current step (forward scratch).
        var recurrent: UnsafeMutablePointer<Float>
        /// (B, H): running ∂loss/∂h_t during BPTT.
        var dh: UnsafeMutablePointer<Float>
        /// (B, H) zeros: the state before the first step.
        var zeros: UnsafeMutablePointer<Float>
    }

    private var buffers: [FloatBuffer] = []
    private(set) var cache: Cache
    /// (B, H): h carried from the previous block of steps (`keepFinalState`).
    private var stateH = FloatBuffer(count: 0)

    init(inputSize: Int, units: Int, kernel: ParameterView, recurrentKernel: ParameterView, bias: ParameterView) {
        precondition(kernel.shape == [inputSize, 3 * units] && recurrentKernel.shape == [units, 3 * units]
                     && bias.shape == [2, 3 * units], "GRU: weight shapes do not match I=\(inputSize) H=\(units)")
        self.inputSize = inputSize
        self.units = units
        self.kernel = kernel
        self.recurrentKernel = recurrentKernel
        self.bias = bias
        buffers = (0..<7).map { _ in FloatBuffer(count: 0) }
        cache = Self.makeCache(buffers)
    }

    private static func makeCache(_ b: [FloatBuffer]) -> Cache {
        Cache(gates: b[0].pointer, rh: b[1].pointer, h: b[2].pointer, dRecurrent: b[3].pointer,
              recurrent: b[4].pointer, dh: b[5].pointer, zeros: b[6].pointer)
    }

    var projection: UnsafeMutablePointer<Float> { cache.gates }
    var outputs: UnsafeMutablePointer<Float> { cache.h }
    var projectionGradient: UnsafeMutablePointer<Float> { cache.gates }

    func reserve(batch: Int, steps: Int) {
        let sequence = batch * steps * units, state = batch * units
        let sizes = [3 * sequence, sequence, sequence, 3 * sequence, 3 * state, state, state]
        let grown = zip(buffers, sizes).map { $0.ensuring($1) }
        if zip(grown, buffers).contains(where: { $0 !== $1 }) {
            buffers = grown
            cache = Self.makeCache(buffers)
        }
    }

    func keepFinalState(batch: Int, steps: Int) {
        stateH = stateH.ensuring(batch * units)
        stateH.pointer.update(from: cache.h + (steps - 1) * batch * units, count: batch * units)
    }

    func forward(weights w: UnsafePointer<Float>, batch: Int, steps: Int, carry: Bool) {
        let H = units, G = 3 * units, BH = batch * units, BG = batch * G
        let U = w + recurrentKernel.offset
        let inZ = w + bias.offset, inR = inZ + H, inH = inZ + 2 * H
        let recZ = w + recurrentBiasOffset, recR = recZ + H, recH = recZ + 2 * H
        let rec = cache.recurrent
        for t in 0..<steps {
            let gates = cache.gates + t * BG
            let hPrev = t > 0 ? cache.h + (t - 1) * BH : (carry ? stateH.pointer : cache.zeros)
            if t > 0 || carry {
                // h_{t−1}·U: (B × H)·(H × 3H)
                BLAS.sgemm(m: batch, n: G, k: H, a: hPrev, lda: H, b: U, ldb: G, beta: 0, c: rec, ldc: G)
            } else {
                rec.update(repeating: 0, count: BG)
            }
            for row in 0..<batch {
                let xz = gates + row * G, xr = xz + H, xh = xz + 2 * H
                let rz = rec + row * G, rr = rz + H, rhh = rz + 2 * H
                let hp = hPrev + row * H, h = cache.h + t * BH + row * H
                let rhOut = cache.rh + t * BH + row * H
                @inline(__always) func cell<V: Lane>(_: V.Type, _ j: Int) {
                    let one = V(repeating: 1)
                    let z = fastSigmoid(V.load(xz + j) + V.load(inZ + j) + V.load(rz + j) + V.load(recZ + j))
                    let r = fastSigmoid(V.load(xr + j) + V.load(inR + j) + V.load(rr + j) + V.load(recR + j))
                    let rh = V.load(rhh + j) + V.load(recH + j)
                    let hHat = fastTanh(V.load(xh + j) + V.load(inH + j) + r * rh)
                    (z * V.load(hp + j) + (one - z) * hHat).store(to: h + j)
                    z.store(to: xz + j); r.store(to: xr + j); hHat.store(to: xh + j)
                    rh.store(to: rhOut + j)
                }
                forEachLane(H, { cell(Vector.self, $0) }, { cell(Float.self, $0) })
            }
        }
    }

    func backward(weights w: UnsafePointer<Float>, gradients dw: UnsafeMutablePointer<Float>,
                  dOutputs: UnsafePointer<Float>, sequence: Bool, batch: Int, steps: Int) {
        let H = units, G = 3 * units, BH = batch * units, BG = batch * G
        let U = w + recurrentKernel.offset
        let dh = cache.dh
        dh.update(from: sequence ? dOutputs + (steps - 1) * BH : dOutputs, count: BH)
        for t in stride(from: steps - 1, through: 0, by: -1) {
            let gates = cache.gates + t * BG, dRec = cache.dRecurrent + t * BG
            let hPrev = t > 0 ? cache.h + (t - 1) * BH : cache.zeros
            // The layer above's ∂/∂h_{t−1}, added while dh is rewritten below.
            let above = sequence && t > 0 ? dOutputs + (t - 1) * BH : UnsafePointer(cache.zeros)
            for row in 0..<batch {
                let gz = gates + row * G, gr = gz + H, gh = gz + 2 * H
                let dz = dRec + row * G, dr = dz + H, drh = dz + 2 * H
                let hp = hPrev + row * H, rhRow = cache.rh + t * BH + row * H
                let dhr = dh + row * H, aboveRow = above + row * H
                @inline(__always) func cell<V: Lane>(_: V.Type, _ j: Int) {
                    let one = V(repeating: 1)
                    let z = V.load(gz + j), r = V.load(gr + j), hHat = V.load(gh + j), rh = V.load(rhRow + j)
                    let dhv = V.load(dhr + j)
                    let daH = dhv * (one - z) * (one - hHat * hHat)             // ∂/∂(x_h + r ⊙ r_h)
                    let daZ = dhv * (V.load(hp + j) - hHat) * z * (one - z)    // ∂/∂(x_z + r_z)
                    let daR = daH * rh * r * (one - r)                         // ∂/∂(x_r + r_r)
                    daZ.store(to: gz + j); daR.store(to: gr + j); daH.store(to: gh + j)
                    daZ.store(to: dz + j); daR.store(to: dr + j); (daH * r).store(to: drh + j)
                    (dhv * z + V.load(aboveRow + j)).store(to: dhr + j)        // direct path of h_{t−1}
                }
                forEachLane(H, { cell(Vector.self, $0) }, { cell(Float.self, $0) })
            }
            if t > 0 {
                // dh_{t−1} += dRec_t·Uᵀ: (B × 3H)·(3H × H)
                BLAS.sgemm(transB: true, m: batch, n: H, k: G, a: dRec, lda: G, b: U, ldb: G,
                           beta: 1, c: dh, ldc: H)
            }
        }
        // dU += Σ_{t≥1} h_{t−1}ᵀ·dRec_t in one GEMM; b_rec enters every step, h_{−1}·U does not.
        if steps > 1 {
            BLAS.sgemm(transA: true, m: H, n: G, k: (steps - 1) * batch,
                       a: cache.h, lda: H, b: cache.dRecurrent + BG, ldb: G,
                       beta: 1, c: dw + recurrentKernel.offset, ldc: G)
        }
        addColumnSums(cache.dRecurrent, rows: steps * batch, cols: G, into: dw + recurrentBiasOffset)
    }
}
