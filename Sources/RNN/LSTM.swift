// LSTM (Keras 3 `LSTM`; gate order i, f, c, o; recurrent activation sigmoid, activation tanh):
//     [a_i a_f a_c a_o] = x_t·W + h_{t−1}·U + b
//     i = σ(a_i), f = σ(a_f), ĉ = tanh(a_c), o = σ(a_o)
//     c_t = f ⊙ c_{t−1} + i ⊙ ĉ,   h_t = o ⊙ tanh(c_t),   h_{−1} = c_{−1} = 0
// Weights: kernel W (I, 4H), recurrent_kernel U (H, 4H), bias b (4H), each in blocks [i | f | c | o].
//
// Shape letters: B batch, T time steps, I input width, H units. Sequences are time-major (T, B, ·).

import BLAS
import CGates

final class LSTMLayer: RecurrentLayer {
    let tensors: RecurrentTensors
    var recurrentDropout: RecurrentDropout?
    var projectionRows: ProjectionRows?
    var sequenceInput: SequenceInput?
    var tokenInput: TokenRowGradients?
    var forwardOnly = false
    var gatesInC = false

    // The three cells share one outline on purpose (slots, init, accessors, reserve, carried
    // state): they differ in slots and shapes, and each gate loop stays a concrete method so it
    // stays specialised (a generic version once ran 3.5× slower). Shared code is in RecurrentLayer.swift.
    /// What BPTT needs from the forward pass, and its scratch.
    enum Slot: Int, CaseIterable {
        /// (T, B, 4H). In: x·W (unless `projectionRows` are read in place). After forward: the
        /// activated gates i, f, ĉ, o. During backward each step is overwritten by the gradient of
        /// its pre-activations when `keepsProjectionGradient` (else that goes to `dGates`).
        case gates
        /// (T, B, H): cell states c_t.
        case c
        /// (T, B, H): tanh(c_t), kept so backward needs no transcendental for it.
        case tanhC
        /// (T, B, H): outputs h_t.
        case h
        /// (B, H): running ∂loss/∂h_t and ∂loss/∂c_t during BPTT.
        case dh, dc
        /// (B, H) zeros: the state before the first step.
        case zeros
        /// (B, 4H): the current BPTT step's pre-activation gradient, when the whole sequence's is
        /// not kept (`keepsProjectionGradient`).
        case dGates
    }
    private var ws = Workspace<Slot>()
    /// h and c carried from the previous block of steps (`keepFinalState`).
    private var carried = CarriedState(tensors: 2)

    init(tensors: RecurrentTensors) { self.tensors = tensors }

    var projection: UnsafeMutablePointer<Float> { ws[.gates] }
    var outputs: UnsafeMutablePointer<Float> { ws[.h] }
    var projectionGradient: UnsafeMutablePointer<Float> { ws[.gates] }

    func reserve(batch: Int, steps: Int) {
        let sequence = batch * steps * units, state = batch * units
        ws.reserve { slot in
            switch slot {
            case .gates: return 4 * sequence
            case .c, .tanhC, .h: return sequence
            case .dh, .dc, .zeros: return state
            case .dGates: return 4 * state
            }
        }
    }

    func keepFinalState(batch: Int, steps: Int) {
        carried.keep(lastStepOf: [ws[.h], ws[.c]], batch: batch, steps: steps, units: units)
    }

    var carriedStateWidth: Int { carried.count * units }
    func copyCarriedRow(into p: UnsafeMutablePointer<Float>) { carried.copyFirstRows(into: p, units: units) }
    func fillCarriedState(from p: UnsafePointer<Float>, batch: Int) { carried.fill(from: p, batch: batch, units: units) }

    func forward(weights w: UnsafePointer<Float>, batch: Int, steps: Int, carry: Bool) {
        if forwardOnly && gatesInC && units % 8 == 0 {
            return forwardOnlyInC(weights: w, batch: batch, steps: steps, carry: carry)
        }
        let H = units, G = 4 * units, BH = batch * units
        let bi = tensors.bias(w), bc = bi + 2 * H, bo = bi + 3 * H
        let cs = ws[.c], tanhCs = ws[.tanhC], hs = ws[.h]
        for t in 0..<steps {
            let (gates, cPrev, recurrent) = beginStep(t, batch: batch, carry: carry, weights: w)
            let rows = projectionRows
            for row in 0..<batch {
                let gi = gates + row * G, gf = gi + H, gc = gi + 2 * H, go = gi + 3 * H
                let cp = cPrev + row * H
                let c = cs + t * BH + row * H, tc = tanhCs + t * BH + row * H
                let h = hs + t * BH + row * H
                // The pre-activations: in `gates`, or h·U there plus the row read in place, or the row alone.
                let x = rows?.row(step: t, sample: row)
                if let rows, t + 1 < steps { prefetch(rows.row(step: t + 1, sample: row), count: G) }
                let a = recurrent || x == nil ? UnsafePointer(gi) : x!, plus = recurrent ? x : nil
                // Two passes: first every gate's nonlinearity (i and f are adjacent), 4H independent
                // lanes; then the state update. One pass per lane chained two tanh evaluations
                // (ĉ, then tanh c_t) and waited on their latency; these loops overlap. Same operations.
                activate(SigmoidGate.self, gi, a, plus: plus, bias: bi, count: 2 * H)
                activate(TanhGate.self, gc, a + 2 * H, plus: plus.map { $0 + 2 * H }, bias: bc, count: H)
                activate(SigmoidGate.self, go, a + 3 * H, plus: plus.map { $0 + 3 * H }, bias: bo, count: H)
                @inline(__always) func cell<V: Lane>(_: V.Type, _ j: Int) {
                    let i = V.load(gi + j), f = V.load(gf + j), cHat = V.load(gc + j), o = V.load(go + j)
                    let cNew = f * V.load(cp + j) + i * cHat
                    let tanhCNew = fastTanh(cNew)
                    cNew.store(to: c + j)
                    tanhCNew.store(to: tc + j)
                    (o * tanhCNew).store(to: h + j)
                }
                forEachLane(H, { cell(Vector.self, $0) }, { cell(Float.self, $0) })
            }
        }
    }

    /// Step t's pre-activation rows (after a_t += h_{t−1}·U: (B × H)·(H × 4H), or a_t = h_{t−1}·U when
    /// x·W is read in place), c_{t−1}, and whether the step has a previous state.
    @inline(__always)
    private func beginStep(_ t: Int, batch: Int, carry: Bool, weights w: UnsafePointer<Float>)
        -> (gates: UnsafeMutablePointer<Float>, cPrev: UnsafeMutablePointer<Float>, recurrent: Bool) {
        let BH = batch * units, gates = ws[.gates] + t * batch * 4 * units, cs = ws[.c], hs = ws[.h]
        let cPrev = t > 0 ? cs + (t - 1) * BH : (carry ? carried[1] : ws[.zeros])
        let recurrent = t > 0 || carry
        if recurrent {
            addRecurrentProduct(step: t, hPrev: t > 0 ? hs + (t - 1) * BH : carried[0], into: gates,
                                beta: projectionRows == nil ? 1 : 0, batch: batch, weights: w)
        }
        return (gates, cPrev, recurrent)
    }

    /// `forward` when no backward follows (evaluation), each step's gate loop in C
    /// (`rd_lstm_forward_rows`): the same operations in the same order, so the same bits, each
    /// activation over up to four vectors of units in lockstep, so that their latencies overlap (one
    /// at a time, evaluation waited on them, the division's above all); c_t and h_t only are kept.
    private func forwardOnlyInC(weights w: UnsafePointer<Float>, batch: Int, steps: Int, carry: Bool) {
        let H = units, G = 4 * units, BH = batch * units
        let bias = UnsafePointer(tensors.bias(w)), cs = ws[.c], hs = ws[.h]
        for t in 0..<steps {
            let (gates, cPrev, recurrent) = beginStep(t, batch: batch, carry: carry, weights: w)
            let rows = projectionRows
            // h·U (with x·W when it is not read in place), or x·W alone in `gates`, or the table's row alone.
            let g: UnsafePointer<Float>? = recurrent || rows == nil ? UnsafePointer(gates) : nil
            rd_lstm_forward_rows(batch, H, g, G, rows?.table, rows?.indices(step: t),
                                 rows.flatMap { t + 1 < steps ? $0.indices(step: t + 1) : nil }, rows?.sampleStride ?? 0,
                                 bias, cPrev, cs + t * BH, hs + t * BH)
        }
    }

    func backward(weights w: UnsafePointer<Float>, gradients dw: UnsafeMutablePointer<Float>,
                  dOutputs: UnsafePointer<Float>, sequence: Bool, batch: Int, steps: Int) {
        let H = units, G = 4 * units, BH = batch * units, BG = batch * G
        let dh = ws[.dh], dc = ws[.dc], allGates = ws[.gates], cs = ws[.c], tanhCs = ws[.tanhC]
        seedHiddenGradient(dh, dOutputs: dOutputs, sequence: sequence, batch: batch, steps: steps, weights: w)
        dc.update(repeating: 0, count: BH)
        let keep = keepsProjectionGradient
        for t in stride(from: steps - 1, through: 0, by: -1) {
            let gates = allGates + t * BG
            let dGates = keep ? gates : ws[.dGates]
            let cPrev = t > 0 ? cs + (t - 1) * BH : ws[.zeros]
            for row in 0..<batch {
                let gi = gates + row * G, gf = gi + H, gc = gi + 2 * H, go = gi + 3 * H
                let di = dGates + row * G, df = di + H, dg = di + 2 * H, dO = di + 3 * H
                let cp = cPrev + row * H, tc = tanhCs + t * BH + row * H
                let dhr = dh + row * H, dcr = dc + row * H
                @inline(__always) func cell<V: Lane>(_: V.Type, _ j: Int) {
                    let one = V(repeating: 1)
                    let i = V.load(gi + j), f = V.load(gf + j), cHat = V.load(gc + j), o = V.load(go + j)
                    let tanhC = V.load(tc + j), dhv = V.load(dhr + j)
                    let dcv = V.load(dcr + j) + dhv * o * (one - tanhC * tanhC)
                    (dcv * f).store(to: dcr + j)                            // ∂loss/∂c_{t−1}
                    (dcv * cHat * i * (one - i)).store(to: di + j)          // ∂/∂a_i
                    (dcv * V.load(cp + j) * f * (one - f)).store(to: df + j) // ∂/∂a_f
                    (dcv * i * (one - cHat * cHat)).store(to: dg + j)       // ∂/∂a_c
                    (dhv * tanhC * o * (one - o)).store(to: dO + j)         // ∂/∂a_o
                }
                forEachLane(H, { cell(Vector.self, $0) }, { cell(Float.self, $0) })
            }
            backpropagateInput(step: t, dGates, batch: batch, gradients: dw)
            if t > 0 {
                accumulateRecurrentKernelGradient(step: t, dGates, into: dw, batch: batch)
                hiddenGradient(before: t, from: dGates, into: dh, dOutputs: dOutputs, sequence: sequence, batch: batch, weights: w)
            }
        }
    }
}
