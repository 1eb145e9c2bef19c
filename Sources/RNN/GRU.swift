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
    let tensors: RecurrentTensors
    var recurrentBiasOffset: Int { tensors.bias.offset + 3 * units }

    // The three cells share one outline on purpose (slots, init, accessors, reserve, carried
    // state): they differ in slots and shapes, and each gate loop stays a concrete method so it
    // stays specialised (a generic version once ran 3.5× slower). Shared code is in RecurrentLayer.swift.
    /// What BPTT needs from the forward pass, and its scratch.
    enum Slot: Int, CaseIterable {
        /// (T, B, 3H). In: x·W. After forward: z, r, ĥ. During backward each step is overwritten by
        /// the gradient of the input-side pre-activations [x_z x_r x_h].
        case gates
        /// (T, B, H): r_h = (h_{t−1}·U + b_rec)'s candidate block, which r multiplies.
        case rh
        /// (T, B, H): outputs h_t.
        case h
        /// (T, B, 3H): gradient of the recurrent-side pre-activations [r_z r_r r_h] (differs from the
        /// input side only in the candidate block, by the factor r).
        case dRecurrent
        /// (B, 3H): h_{t−1}·U of the current step (forward scratch).
        case recurrent
        /// (B, H): running ∂loss/∂h_t during BPTT.
        case dh
        /// (B, H) zeros: the state before the first step.
        case zeros
    }
    private var ws = Workspace<Slot>()
    /// h carried from the previous block of steps (`keepFinalState`).
    private var carried = CarriedState(tensors: 1)

    init(inputSize: Int, units: Int, kernel: ParameterView, recurrentKernel: ParameterView, bias: ParameterView) {
        self.inputSize = inputSize
        self.units = units
        tensors = RecurrentTensors("GRU", inputSize: inputSize, units: units, gates: 3, biasRows: 2,
                                   kernel: kernel, recurrentKernel: recurrentKernel, bias: bias)
    }

    var projection: UnsafeMutablePointer<Float> { ws[.gates] }
    var outputs: UnsafeMutablePointer<Float> { ws[.h] }
    var projectionGradient: UnsafeMutablePointer<Float> { ws[.gates] }

    func reserve(batch: Int, steps: Int) {
        let sequence = batch * steps * units, state = batch * units
        ws.reserve { slot in
            switch slot {
            case .gates, .dRecurrent: return 3 * sequence
            case .rh, .h: return sequence
            case .recurrent: return 3 * state
            case .dh, .zeros: return state
            }
        }
    }

    func keepFinalState(batch: Int, steps: Int) {
        carried.keep(lastStepOf: [ws[.h]], batch: batch, steps: steps, units: units)
    }

    func forward(weights w: UnsafePointer<Float>, batch: Int, steps: Int, carry: Bool) {
        let H = units, G = 3 * units, BH = batch * units, BG = batch * G
        let U = w + tensors.recurrentKernel.offset
        let inZ = w + tensors.bias.offset, inR = inZ + H, inH = inZ + 2 * H
        let recZ = w + recurrentBiasOffset, recR = recZ + H, recH = recZ + 2 * H
        let rec = ws[.recurrent], allGates = ws[.gates], hs = ws[.h], rhs = ws[.rh]
        for t in 0..<steps {
            let gates = allGates + t * BG
            let hPrev = t > 0 ? hs + (t - 1) * BH : (carry ? carried[0] : ws[.zeros])
            if t > 0 || carry {
                // h_{t−1}·U: (B × H)·(H × 3H)
                BLAS.sgemm(m: batch, n: G, k: H, a: hPrev, lda: H, b: U, ldb: G, beta: 0, c: rec, ldc: G)
            } else {
                rec.update(repeating: 0, count: BG)
            }
            for row in 0..<batch {
                let xz = gates + row * G, xr = xz + H, xh = xz + 2 * H
                let rz = rec + row * G, rr = rz + H, rhh = rz + 2 * H
                let hp = hPrev + row * H, h = hs + t * BH + row * H
                let rhOut = rhs + t * BH + row * H
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
        let dh = ws[.dh], allGates = ws[.gates], dRecurrent = ws[.dRecurrent], hs = ws[.h], rhs = ws[.rh]
        let zeros = ws[.zeros]
        seedHiddenGradient(dh, dOutputs: dOutputs, sequence: sequence, batch: batch, steps: steps)
        for t in stride(from: steps - 1, through: 0, by: -1) {
            let gates = allGates + t * BG, dRec = dRecurrent + t * BG
            let hPrev = t > 0 ? hs + (t - 1) * BH : zeros
            // The layer above's ∂/∂h_{t−1}, added while dh is rewritten below.
            let above = sequence && t > 0 ? dOutputs + (t - 1) * BH : UnsafePointer(zeros)
            for row in 0..<batch {
                let gz = gates + row * G, gr = gz + H, gh = gz + 2 * H
                let dz = dRec + row * G, dr = dz + H, drh = dz + 2 * H
                let hp = hPrev + row * H, rhRow = rhs + t * BH + row * H
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
            // dh_{t−1} += dRec_t·Uᵀ (dh already holds the direct path and the layer above's part)
            if t > 0 { backpropagateThroughRecurrentKernel(dRec, into: dh, accumulate: true, batch: batch, weights: w) }
        }
        // b_rec enters every step; U only from t ≥ 1.
        accumulateRecurrentKernelGradient(dRecurrent, into: dw, batch: batch, steps: steps)
        addColumnSums(dRecurrent, rows: steps * batch, cols: G, into: dw + recurrentBiasOffset)
    }
}
