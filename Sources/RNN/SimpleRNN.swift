// SimpleRNN (Keras 3 `SimpleRNN`, activation tanh):
//     h_t = tanh(x_t·W + h_{t−1}·U + b),  h_{−1} = 0
// Weights: kernel W (I, H), recurrent_kernel U (H, H), bias b (H).
//
// Shape letters: B batch, T time steps, I input width, H units. Sequences are time-major (T, B, ·).

import BLAS

final class SimpleRNNLayer: RecurrentLayer {
    let inputSize: Int
    let units: Int
    let kernel: ParameterView
    let recurrentKernel: ParameterView
    let bias: ParameterView
    var gateWidth: Int { units }
    var inputBiasOffset: Int { bias.offset }

    /// What BPTT needs from the forward pass.
    struct Cache {
        /// (T, B, H). In: x·W. After forward: h_t, computed in place (the pre-activation is not
        /// needed, since tanh' = 1 − h²).
        var h: UnsafeMutablePointer<Float>
        /// (T, B, H): ∂loss/∂a_t for the pre-activation a_t = x_t·W + h_{t−1}·U + b.
        var dA: UnsafeMutablePointer<Float>
        /// (B, H): running ∂loss/∂h_t during BPTT.
        var dh: UnsafeMutablePointer<Float>
    }

    private var hBuffer = FloatBuffer(count: 0)
    private var dABuffer = FloatBuffer(count: 0)
    private var dhBuffer = FloatBuffer(count: 0)
    /// (B, H): h carried from the previous block of steps (`keepFinalState`).
    private var stateBuffer = FloatBuffer(count: 0)
    private(set) var cache: Cache

    init(inputSize: Int, units: Int, kernel: ParameterView, recurrentKernel: ParameterView, bias: ParameterView) {
        precondition(kernel.shape == [inputSize, units] && recurrentKernel.shape == [units, units]
                     && bias.shape == [units], "SimpleRNN: weight shapes do not match I=\(inputSize) H=\(units)")
        self.inputSize = inputSize
        self.units = units
        self.kernel = kernel
        self.recurrentKernel = recurrentKernel
        self.bias = bias
        cache = Cache(h: hBuffer.pointer, dA: dABuffer.pointer, dh: dhBuffer.pointer)
    }

    var projection: UnsafeMutablePointer<Float> { cache.h }
    var outputs: UnsafeMutablePointer<Float> { cache.h }
    var projectionGradient: UnsafeMutablePointer<Float> { cache.dA }

    func reserve(batch: Int, steps: Int) {
        let sequence = batch * steps * units
        hBuffer = hBuffer.ensuring(sequence)
        dABuffer = dABuffer.ensuring(sequence)
        dhBuffer = dhBuffer.ensuring(batch * units)
        cache = Cache(h: hBuffer.pointer, dA: dABuffer.pointer, dh: dhBuffer.pointer)
    }

    func keepFinalState(batch: Int, steps: Int) {
        stateBuffer = stateBuffer.ensuring(batch * units)
        stateBuffer.pointer.update(from: cache.h + (steps - 1) * batch * units, count: batch * units)
    }

    func forward(weights w: UnsafePointer<Float>, batch: Int, steps: Int, carry: Bool) {
        let H = units, BH = batch * units
        let U = w + recurrentKernel.offset, b = w + bias.offset
        for t in 0..<steps {
            let a = cache.h + t * BH
            if t > 0 || carry {
                // a_t += h_{t−1}·U: (B × H)·(H × H)
                BLAS.sgemm(m: batch, n: H, k: H, a: t > 0 ? cache.h + (t - 1) * BH : stateBuffer.pointer, lda: H,
                           b: U, ldb: H, beta: 1, c: a, ldc: H)
            }
            for row in 0..<batch {
                let ar = a + row * H
                @inline(__always) func cell<V: Lane>(_: V.Type, _ j: Int) {
                    fastTanh(V.load(ar + j) + V.load(b + j)).store(to: ar + j)
                }
                forEachLane(H, { cell(Vector.self, $0) }, { cell(Float.self, $0) })
            }
        }
    }

    func backward(weights w: UnsafePointer<Float>, gradients dw: UnsafeMutablePointer<Float>,
                  dOutputs: UnsafePointer<Float>, sequence: Bool, batch: Int, steps: Int) {
        let H = units, BH = batch * units
        let U = w + recurrentKernel.offset
        let dh = cache.dh
        dh.update(from: sequence ? dOutputs + (steps - 1) * BH : dOutputs, count: BH)
        for t in stride(from: steps - 1, through: 0, by: -1) {
            let h = cache.h + t * BH, dA = cache.dA + t * BH
            // One flat loop over the whole (B, H) block: tanh' = 1 − h².
            @inline(__always) func cell<V: Lane>(_: V.Type, _ i: Int) {
                let hv = V.load(h + i)
                (V.load(dh + i) * (V(repeating: 1) - hv * hv)).store(to: dA + i)
            }
            forEachLane(BH, { cell(Vector.self, $0) }, { cell(Float.self, $0) })
            if t > 0 {
                // dh_{t−1} = (the layer above's ∂/∂h_{t−1}) + dA_t·Uᵀ
                if sequence { dh.update(from: dOutputs + (t - 1) * BH, count: BH) }
                BLAS.sgemm(transB: true, m: batch, n: H, k: H, a: dA, lda: H, b: U, ldb: H,
                           beta: sequence ? 1 : 0, c: dh, ldc: H)
            }
        }
        // dU += Σ_{t≥1} h_{t−1}ᵀ·dA_t, all steps in one GEMM: (H × (T−1)B)·((T−1)B × H)
        if steps > 1 {
            BLAS.sgemm(transA: true, m: H, n: H, k: (steps - 1) * batch,
                       a: cache.h, lda: H, b: cache.dA + BH, ldb: H,
                       beta: 1, c: dw + recurrentKernel.offset, ldc: H)
        }
    }
}
