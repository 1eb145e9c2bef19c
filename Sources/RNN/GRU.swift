// GRU (Keras 3 `GRU`, reset_after=True; gate order z, r, h; recurrent activation sigmoid):
//     [x_z x_r x_h] = x_t·W + b_in          [r_z r_r r_h] = h_{t−1}·U + b_rec
//     z = σ(x_z + r_z),  r = σ(x_r + r_r),  ĥ = tanh(x_h + r ⊙ r_h)
//     h_t = z ⊙ h_{t−1} + (1 − z) ⊙ ĥ,      h_{−1} = 0
// Weights: kernel W (I, 3H), recurrent_kernel U (H, 3H), bias (2, 3H) = [b_in; b_rec].
// "reset_after" means r multiplies h·U (+ its bias) after the product, so U·h stays one GEMM.
//
// With resetAfter = false, Keras 2's GRU (the book's; Keras 3 `GRU(reset_after=False)`):
//     [x_z x_r x_h] = x_t·W + b                b (3H): input side only
//     z = σ(x_z + h_{t−1}·U_z),  r = σ(x_r + h_{t−1}·U_r),  ĥ = tanh(x_h + (r ⊙ h_{t−1})·U_h)
//     h_t = z ⊙ h_{t−1} + (1 − z) ⊙ ĥ
// r acts before U_h, so each step needs a second, dependent GEMM for the candidate.
//
// Shape letters: B batch, T time steps, I input width, H units. Sequences are time-major (T, B, ·).

import BLAS
import CGates

final class GRULayer: RecurrentLayer {
    let tensors: RecurrentTensors
    var recurrentDropout: RecurrentDropout?
    var projectionRows: ProjectionRows?
    var sequenceInput: SequenceInput?
    var tokenInput: TokenRowGradients?
    var forwardOnly = false
    var gatesInC = false
    /// Keras 3's GRU (true) or the reset-before GRU of Keras 2 (false).
    let resetAfter: Bool

    // The three cells share one outline on purpose (slots, init, accessors, reserve, carried
    // state): they differ in slots and shapes, and each gate loop stays a concrete method so it
    // stays specialised (a generic version once ran 3.5× slower). Shared code is in RecurrentLayer.swift.
    /// What BPTT needs from the forward pass, and its scratch.
    enum Slot: Int, CaseIterable {
        /// (T, B, 3H). In: x·W. After forward: z, r, ĥ. During backward each step is overwritten by
        /// the gradient of the input-side pre-activations [x_z x_r x_h] when `keepsProjectionGradient`.
        case gates
        /// (T, B, H): r_h = (h_{t−1}·U + b_rec)'s candidate block, which r multiplies; reset-before:
        /// r ⊙ h_{t−1} (⊙ its recurrent-dropout mask), which U_h multiplies.
        case rh
        /// (T, B, H): outputs h_t.
        case h
        /// (B, 3H): the current BPTT step's gradient of the recurrent-side pre-activations
        /// [r_z r_r r_h] (differs from the input side only in the candidate block, by the factor r).
        case dRecurrent
        /// (B, 3H): h_{t−1}·U of the current step (forward scratch).
        case recurrent
        /// (B, H): running ∂loss/∂h_t during BPTT.
        case dh
        /// (B, H) zeros: the state before the first step.
        case zeros
        /// (B, H): ∂loss/∂(r ⊙ h_{t−1}) of the reset-before GRU during BPTT.
        case dRH
        /// (B, 3H): the current BPTT step's input-side gradient, when the whole sequence's is not
        /// kept in `gates` (`keepsProjectionGradient`).
        case dGates
    }
    private var ws = Workspace<Slot>()
    /// h carried from the previous block of steps (`keepFinalState`).
    private var carried = CarriedState(tensors: 1)

    init(tensors: RecurrentTensors, resetAfter: Bool) {
        self.tensors = tensors
        self.resetAfter = resetAfter
    }

    var projection: UnsafeMutablePointer<Float> { ws[.gates] }
    var outputs: UnsafeMutablePointer<Float> { ws[.h] }
    var projectionGradient: UnsafeMutablePointer<Float> { ws[.gates] }

    func reserve(batch: Int, steps: Int) {
        let sequence = batch * steps * units, state = batch * units
        ws.reserve { slot in
            switch slot {
            case .gates: return 3 * sequence
            case .rh, .h: return sequence
            case .recurrent, .dRecurrent, .dGates: return 3 * state
            case .dh, .zeros, .dRH: return state
            }
        }
    }

    func keepFinalState(batch: Int, steps: Int) {
        carried.keep(lastStepOf: [ws[.h]], batch: batch, steps: steps, units: units)
    }

    var carriedStateWidth: Int { carried.count * units }
    func copyCarriedRow(into p: UnsafeMutablePointer<Float>) { carried.copyFirstRows(into: p, units: units) }
    func fillCarriedState(from p: UnsafePointer<Float>, batch: Int) { carried.fill(from: p, batch: batch, units: units) }

    func forward(weights w: UnsafePointer<Float>, batch: Int, steps: Int, carry: Bool) {
        if !resetAfter { return forwardResetBefore(weights: w, batch: batch, steps: steps, carry: carry) }
        if forwardOnly && gatesInC && units % 8 == 0 {
            return forwardOnlyInC(weights: w, batch: batch, steps: steps, carry: carry)
        }
        let H = units, G = 3 * units, BH = batch * units, BG = batch * G
        // Input and recurrent biases, [z r h] each (z and r adjacent: one σ pass covers both).
        let inZ = tensors.bias(w), inH = inZ + 2 * H
        let recZ = inZ + 3 * H, recH = recZ + 2 * H
        let rec = ws[.recurrent], allGates = ws[.gates], hs = ws[.h], rhs = ws[.rh]
        for t in 0..<steps {
            let gates = allGates + t * BG
            let hPrev = t > 0 ? hs + (t - 1) * BH : (carry ? carried[0] : ws[.zeros])
            recurrentProduct(step: t, hPrev: hPrev, carry: carry, batch: batch, weights: w)
            let rows = projectionRows
            for row in 0..<batch {
                let xz = gates + row * G, xr = xz + H, xh = xz + 2 * H
                // x·W: in `gates`, or read in place from the first layer's projection table.
                let x = rows?.row(step: t, sample: row) ?? UnsafePointer(xz)
                if let rows, t + 1 < steps { prefetch(rows.row(step: t + 1, sample: row), count: G) }
                let rz = rec + row * G, rhh = rz + 2 * H
                let hp = hPrev + row * H, h = hs + t * BH + row * H
                let rhOut = rhs + t * BH + row * H
                // Two passes, as the LSTM: z and r (adjacent) over 2H independent lanes, then ĥ and h.
                @inline(__always) func gate<V: Lane>(_: V.Type, _ j: Int) {
                    fastSigmoid(V.load(x + j) + V.load(inZ + j) + V.load(rz + j) + V.load(recZ + j)).store(to: xz + j)
                }
                forEachLane(2 * H, { gate(Vector.self, $0) }, { gate(Float.self, $0) })
                @inline(__always) func cell<V: Lane>(_: V.Type, _ j: Int) {
                    let one = V(repeating: 1)
                    let z = V.load(xz + j), r = V.load(xr + j)
                    let rh = V.load(rhh + j) + V.load(recH + j)
                    let hHat = fastTanh(V.load(x + 2 * H + j) + V.load(inH + j) + r * rh)
                    (z * V.load(hp + j) + (one - z) * hHat).store(to: h + j)
                    hHat.store(to: xh + j)
                    rh.store(to: rhOut + j)
                }
                forEachLane(H, { cell(Vector.self, $0) }, { cell(Float.self, $0) })
            }
        }
    }

    /// Step t's h_{t−1}·U: (B × H)·(H × 3H) into the `recurrent` slot, or zeros without a previous state.
    @inline(__always)
    private func recurrentProduct(step t: Int, hPrev: UnsafePointer<Float>, carry: Bool, batch: Int, weights w: UnsafePointer<Float>) {
        if t > 0 || carry {
            addRecurrentProduct(step: t, hPrev: hPrev, into: ws[.recurrent], beta: 0, batch: batch, weights: w)
        } else {
            ws[.recurrent].update(repeating: 0, count: batch * 3 * units)
        }
    }

    /// `forward` (reset after) when no backward follows (evaluation), each step's gate loop in C
    /// (`rd_gru_forward_rows`): the same operations in the same order, so the same bits, each
    /// activation over up to four vectors of units in lockstep; h_t only is kept.
    private func forwardOnlyInC(weights w: UnsafePointer<Float>, batch: Int, steps: Int, carry: Bool) {
        let BH = batch * units, BG = 3 * BH
        let bias = UnsafePointer(tensors.bias(w)), hs = ws[.h]
        for t in 0..<steps {
            let hPrev = t > 0 ? hs + (t - 1) * BH : (carry ? carried[0] : ws[.zeros])
            recurrentProduct(step: t, hPrev: hPrev, carry: carry, batch: batch, weights: w)
            let rows = projectionRows
            // x·W: in `gates`, or read in place from the first layer's projection table.
            rd_gru_forward_rows(batch, units, ws[.gates] + t * BG, 3 * units, rows?.table, rows?.indices(step: t),
                                rows.flatMap { t + 1 < steps ? $0.indices(step: t + 1) : nil }, rows?.sampleStride ?? 0,
                                ws[.recurrent], bias, hPrev, hs + t * BH)
        }
    }

    func backward(weights w: UnsafePointer<Float>, gradients dw: UnsafeMutablePointer<Float>,
                  dOutputs: UnsafePointer<Float>, sequence: Bool, batch: Int, steps: Int) {
        if !resetAfter {
            return backwardResetBefore(weights: w, gradients: dw, dOutputs: dOutputs, sequence: sequence,
                                       batch: batch, steps: steps)
        }
        let H = units, G = 3 * units, BH = batch * units
        let dh = ws[.dh], rhs = ws[.rh]
        // b_rec enters every step (U only from t ≥ 1): its gradient is Σ dRec_t, each step's rows
        // summed in Float while in cache, the steps in Double (`addColumnSums`' accuracy).
        let recurrentBias = ColumnSums(count: G)
        forEachStepBackward(weights: w, batch: batch, steps: steps, dOutputs: dOutputs, sequence: sequence) { t, gates, dIn, dRec, hPrev, above in
            for row in 0..<batch {
                let gz = gates + row * G, gr = gz + H, gh = gz + 2 * H
                let xz = dIn + row * G, xr = xz + H, xh = xz + 2 * H
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
                    daZ.store(to: xz + j); daR.store(to: xr + j); daH.store(to: xh + j)
                    daZ.store(to: dz + j); daR.store(to: dr + j); (daH * r).store(to: drh + j)
                    (dhv * z + V.load(aboveRow + j)).store(to: dhr + j)        // direct path of h_{t−1}
                }
                forEachLane(H, { cell(Vector.self, $0) }, { cell(Float.self, $0) })
            }
            backpropagateInput(step: t, dIn, batch: batch, gradients: dw)
            recurrentBias.add(dRec, rows: batch)
            // dU += h_{t−1}ᵀ·dRec_t; dh_{t−1} += dRec_t·Uᵀ (dh already holds the direct path and the layer above's part)
            if t > 0 {
                accumulateRecurrentKernelGradient(step: t, dRec, into: dw, batch: batch)
                backpropagateThroughRecurrentKernel(dRec, into: dh, accumulate: true, batch: batch, weights: w)
            }
        }
        recurrentBias.add(into: tensors.biasGradient(dw) + 3 * units)
    }

    /// BPTT's walk over the steps, last first: seeds the running ∂loss/∂h, then calls `body` with
    /// step t's gate block (T, B, 3H) slot, where its input-side gradient goes (that slot when
    /// `keepsProjectionGradient`, else a (B, 3H) scratch), the (B, 3H) scratch for its recurrent-side
    /// gradient, h_{t−1} (zeros at t = 0) and the layer above's ∂/∂h_{t−1} (zeros when the layer above
    /// reads only the last step), which the body adds while it rewrites dh.
    @inline(__always)
    private func forEachStepBackward(weights w: UnsafePointer<Float>, batch: Int, steps: Int, dOutputs: UnsafePointer<Float>, sequence: Bool,
                                     _ body: (_ t: Int, _ gates: UnsafeMutablePointer<Float>, _ dIn: UnsafeMutablePointer<Float>,
                                              _ dRec: UnsafeMutablePointer<Float>, _ hPrev: UnsafePointer<Float>,
                                              _ above: UnsafePointer<Float>) -> Void) {
        let BH = batch * units, BG = 3 * BH, zeros = UnsafePointer(ws[.zeros]), keep = keepsProjectionGradient
        seedHiddenGradient(ws[.dh], dOutputs: dOutputs, sequence: sequence, batch: batch, steps: steps, weights: w)
        for t in stride(from: steps - 1, through: 0, by: -1) {
            let gates = ws[.gates] + t * BG
            body(t, gates, keep ? gates : ws[.dGates], ws[.dRecurrent], t > 0 ? UnsafePointer(ws[.h] + (t - 1) * BH) : zeros,
                 sequence && t > 0 ? dOutputs + (t - 1) * BH : zeros)
        }
    }

    // MARK: Reset-before (Keras 2) GRU

    /// h_{t−1} as U_h sees it for row b: masked by gate h's recurrent-dropout mask when on.
    private func candidateInput(step t: Int, row b: Int, hPrev: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        guard let rd = recurrentDropout, t > 0 else { return hPrev + b * units }
        return UnsafePointer(rd.masked.pointer + t * batch * 3 * units + (b * 3 + 2) * units)
    }

    private func forwardResetBefore(weights w: UnsafePointer<Float>, batch: Int, steps: Int, carry: Bool) {
        precondition(!carry || recurrentDropout == nil, "GRU: blocked evaluation runs without dropout")
        let H = units, G = 3 * units, BH = batch * units, BG = batch * G
        let U = w + tensors.recurrentKernel.offset
        let bZ = tensors.bias(w), bR = bZ + H, bH = bZ + 2 * H
        let rec = ws[.recurrent], allGates = ws[.gates], hs = ws[.h], rhs = ws[.rh]
        for t in 0..<steps {
            let gates = allGates + t * BG, rhStep = rhs + t * BH
            let hPrev = t > 0 ? hs + (t - 1) * BH : (carry ? carried[0] : ws[.zeros])
            let hasState = t > 0 || carry
            if hasState {
                // [h·U_z  h·U_r]: (B × H)·(H × 2H)
                addRecurrentProduct(step: t, hPrev: hPrev, into: rec, beta: 0, batch: batch, weights: w, blocks: 0..<2)
            } else {
                rec.update(repeating: 0, count: BG)
            }
            let rows = projectionRows
            for row in 0..<batch {
                let xz = gates + row * G, xr = xz + H
                // x·W: in `gates`, or read in place from the first layer's projection table.
                let x = rows?.row(step: t, sample: row) ?? UnsafePointer(xz)
                if let rows, t + 1 < steps { prefetch(rows.row(step: t + 1, sample: row), count: G) }
                let rz = rec + row * G, rr = rz + H
                let hh = candidateInput(step: t, row: row, hPrev: hPrev, batch: batch), rhOut = rhStep + row * H
                @inline(__always) func cell<V: Lane>(_: V.Type, _ j: Int) {
                    let z = fastSigmoid(V.load(x + j) + V.load(bZ + j) + V.load(rz + j))
                    let r = fastSigmoid(V.load(x + H + j) + V.load(bR + j) + V.load(rr + j))
                    z.store(to: xz + j); r.store(to: xr + j)
                    (r * V.load(hh + j)).store(to: rhOut + j)
                }
                forEachLane(H, { cell(Vector.self, $0) }, { cell(Float.self, $0) })
            }
            if hasState {
                // (r ⊙ h_{t−1})·U_h: (B × H)·(H × H)
                BLAS.sgemm(m: batch, n: H, k: H, a: rhStep, lda: H, b: U + 2 * H, ldb: G, beta: 0, c: rec + 2 * H, ldc: G)
            }
            for row in 0..<batch {
                let xz = gates + row * G, xh = xz + 2 * H, rhh = rec + row * G + 2 * H
                let x = rows.map { $0.row(step: t, sample: row) + 2 * H } ?? UnsafePointer(xh)
                let hp = hPrev + row * H, h = hs + t * BH + row * H
                @inline(__always) func cell<V: Lane>(_: V.Type, _ j: Int) {
                    let one = V(repeating: 1)
                    let z = V.load(xz + j)
                    let hHat = fastTanh(V.load(x + j) + V.load(bH + j) + V.load(rhh + j))
                    (z * V.load(hp + j) + (one - z) * hHat).store(to: h + j)
                    hHat.store(to: xh + j)
                }
                forEachLane(H, { cell(Vector.self, $0) }, { cell(Float.self, $0) })
            }
        }
    }

    private func backwardResetBefore(weights w: UnsafePointer<Float>, gradients dw: UnsafeMutablePointer<Float>,
                                     dOutputs: UnsafePointer<Float>, sequence: Bool, batch: Int, steps: Int) {
        let H = units, G = 3 * units, BH = batch * units
        let dh = ws[.dh], rhs = ws[.rh], dRH = ws[.dRH]
        let hMask = recurrentDropout.map { UnsafePointer($0.masks.pointer) }
        forEachStepBackward(weights: w, batch: batch, steps: steps, dOutputs: dOutputs, sequence: sequence) { t, gates, dIn, dRec, hPrev, above in
            for row in 0..<batch {
                let gz = gates + row * G, gh = gz + 2 * H
                let xz = dIn + row * G, xh = xz + 2 * H
                let dz = dRec + row * G, drh = dz + 2 * H
                let hp = hPrev + row * H, dhr = dh + row * H, aboveRow = above + row * H
                @inline(__always) func cell<V: Lane>(_: V.Type, _ j: Int) {
                    let one = V(repeating: 1)
                    let z = V.load(gz + j), hHat = V.load(gh + j), dhv = V.load(dhr + j)
                    let daH = dhv * (one - z) * (one - hHat * hHat)          // ∂/∂(x_h + (r ⊙ h)·U_h)
                    let daZ = dhv * (V.load(hp + j) - hHat) * z * (one - z) // ∂/∂(x_z + h·U_z)
                    daZ.store(to: xz + j); daH.store(to: xh + j)
                    daZ.store(to: dz + j); daH.store(to: drh + j)
                    (dhv * z + V.load(aboveRow + j)).store(to: dhr + j)     // direct path of h_{t−1}
                }
                forEachLane(H, { cell(Vector.self, $0) }, { cell(Float.self, $0) })
            }
            // ∂loss/∂(r ⊙ h_{t−1}) = daH·U_hᵀ: (B × H)·(H × H), U_hᵀ being rows 2H..<3H of Uᵀ
            BLAS.sgemm(m: batch, n: H, k: H, a: dRec + 2 * H, lda: G, b: tensors.recurrentKernelTransposed.pointer + 2 * H * H,
                       ldb: H, beta: 0, c: dRH, ldc: H)
            for row in 0..<batch {
                let gr = gates + row * G + H, xr = dIn + row * G + H, dr = dRec + row * G + H
                let hh = candidateInput(step: t, row: row, hPrev: hPrev, batch: batch)
                let mh = hMask.map { $0 + (row * 3 + 2) * H }
                let d = dRH + row * H, dhr = dh + row * H
                @inline(__always) func cell<V: Lane>(_: V.Type, _ j: Int) {
                    let one = V(repeating: 1)
                    let r = V.load(gr + j), dv = V.load(d + j)
                    let daR = dv * V.load(hh + j) * r * (one - r)           // ∂/∂(x_r + h·U_r)
                    daR.store(to: xr + j); daR.store(to: dr + j)
                    let viaCandidate = dv * r
                    (V.load(dhr + j) + (mh.map { viaCandidate * V.load($0 + j) } ?? viaCandidate)).store(to: dhr + j)
                }
                forEachLane(H, { cell(Vector.self, $0) }, { cell(Float.self, $0) })
            }
            backpropagateInput(step: t, dIn, batch: batch, gradients: dw)
            if t > 0 {
                // [dU_z dU_r] += h_{t−1}ᵀ·[daZ daR], dU_h += (r ⊙ h_{t−1})ᵀ·daH (while step t is in cache)
                accumulateRecurrentKernelGradient(step: t, dRec, into: dw, batch: batch, blocks: 0..<2)
                BLAS.sgemm(transA: true, m: H, n: H, k: batch, a: rhs + t * BH, lda: H,
                           b: dRec + 2 * H, ldb: G, beta: 1, c: dw + tensors.recurrentKernel.offset + 2 * H, ldc: G)
                // dh_{t−1} += [daZ daR]·[U_z U_r]ᵀ
                backpropagateThroughRecurrentKernel(dRec, into: dh, accumulate: true, batch: batch, weights: w, blocks: 0..<2)
            }
        }
    }
}
