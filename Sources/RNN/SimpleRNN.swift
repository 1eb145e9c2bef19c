// SimpleRNN (Keras 3 `SimpleRNN`, activation tanh):
//     h_t = tanh(x_t·W + h_{t−1}·U + b),  h_{−1} = 0
// Weights: kernel W (I, H), recurrent_kernel U (H, H), bias b (H).
//
// Shape letters: B batch, T time steps, I input width, H units. Sequences are time-major (T, B, ·).

import BLAS
import CGates

final class SimpleRNNLayer: RecurrentLayer {
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
        /// (T, B, H). In: x·W. After forward: h_t, computed in place (the pre-activation is not
        /// needed, since tanh' = 1 − h²).
        case h
        /// (T, B, H): ∂loss/∂a_t for the pre-activation a_t = x_t·W + h_{t−1}·U + b; only step 0's
        /// block, reused by every step, when the whole sequence's is not kept (`keepsProjectionGradient`).
        case dA
        /// (B, H): running ∂loss/∂h_t during BPTT.
        case dh
    }
    private var ws = Workspace<Slot>()
    /// h carried from the previous block of steps (`keepFinalState`).
    private var carried = CarriedState(tensors: 1)

    init(tensors: RecurrentTensors) { self.tensors = tensors }

    var projection: UnsafeMutablePointer<Float> { ws[.h] }
    var outputs: UnsafeMutablePointer<Float> { ws[.h] }
    var projectionGradient: UnsafeMutablePointer<Float> { ws[.dA] }

    func reserve(batch: Int, steps: Int) {
        let sequence = batch * steps * units
        ws.reserve { slot in slot == .dh ? batch * units : sequence }
    }

    func keepFinalState(batch: Int, steps: Int) {
        carried.keep(lastStepOf: [ws[.h]], batch: batch, steps: steps, units: units)
    }

    var carriedStateWidth: Int { carried.count * units }
    func copyCarriedRow(into p: UnsafeMutablePointer<Float>) { carried.copyFirstRows(into: p, units: units) }
    func fillCarriedState(from p: UnsafePointer<Float>, batch: Int) { carried.fill(from: p, batch: batch, units: units) }

    func forward(weights w: UnsafePointer<Float>, batch: Int, steps: Int, carry: Bool) {
        let H = units, BH = batch * units
        let b = tensors.bias(w)
        let hs = ws[.h]
        for t in 0..<steps {
            let a = hs + t * BH
            let recurrent = t > 0 || carry, rows = projectionRows
            if recurrent {
                // a_t += h_{t−1}·U: (B × H)·(H × H); a_t = h_{t−1}·U when x·W is read in place
                addRecurrentProduct(step: t, hPrev: t > 0 ? hs + (t - 1) * BH : carried[0], into: a,
                                    beta: rows == nil ? 1 : 0, batch: batch, weights: w)
            }
            if gatesInC && H % 8 == 0 {
                // The same loop in C (`rd_tanh_rows`), four vectors of units in lockstep: the same bits.
                rd_tanh_rows(batch, H, recurrent || rows == nil ? UnsafePointer(a) : nil, rows?.table, rows?.indices(step: t),
                             rows.flatMap { t + 1 < steps ? $0.indices(step: t + 1) : nil }, rows?.sampleStride ?? 0, b, a)
                continue
            }
            for row in 0..<batch {
                let ar = a + row * H, x = rows?.row(step: t, sample: row)
                if let rows, t + 1 < steps { prefetch(rows.row(step: t + 1, sample: row), count: H) }
                activate(TanhGate.self, ar, recurrent || x == nil ? UnsafePointer(ar) : x!, plus: recurrent ? x : nil, bias: b, count: H)
            }
        }
    }

    func backward(weights w: UnsafePointer<Float>, gradients dw: UnsafeMutablePointer<Float>,
                  dOutputs: UnsafePointer<Float>, sequence: Bool, batch: Int, steps: Int) {
        let BH = batch * units
        let dh = ws[.dh], hs = ws[.h], dAs = ws[.dA]
        seedHiddenGradient(dh, dOutputs: dOutputs, sequence: sequence, batch: batch, steps: steps, weights: w)
        let keep = keepsProjectionGradient
        for t in stride(from: steps - 1, through: 0, by: -1) {
            let h = hs + t * BH, dA = keep ? dAs + t * BH : dAs
            // One flat loop over the whole (B, H) block: tanh' = 1 − h².
            @inline(__always) func cell<V: Lane>(_: V.Type, _ i: Int) {
                let hv = V.load(h + i)
                (V.load(dh + i) * (V(repeating: 1) - hv * hv)).store(to: dA + i)
            }
            forEachLane(BH, { cell(Vector.self, $0) }, { cell(Float.self, $0) })
            backpropagateInput(step: t, dA, batch: batch, gradients: dw)
            if t > 0 {
                accumulateRecurrentKernelGradient(step: t, dA, into: dw, batch: batch)
                hiddenGradient(before: t, from: dA, into: dh, dOutputs: dOutputs, sequence: sequence, batch: batch, weights: w)
            }
        }
    }
}
