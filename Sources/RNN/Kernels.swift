// Low-level pieces shared by the layers: owned scratch buffers, fast activations, small loops.
//
// The loops are written over raw pointers with unit stride and no branches so that the optimizer
// vectorizes them; a buffer never moves while a layer holds its pointer.

import Foundation
import CFloatMode
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif


/// A fixed-size, 64-byte aligned, zero-initialized Float buffer, freed in `deinit`.
///
/// Layers keep their BPTT caches in these so that the hot loops take stable pointers and a batch
/// allocates nothing; the buffers are replaced only when a larger batch or sequence arrives.
final class FloatBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride,
                                                   alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    /// `self` if it holds at least `needed` values, else a new zeroed buffer of `needed`.
    func ensuring(_ needed: Int) -> FloatBuffer {
        needed <= count ? self : FloatBuffer(count: needed)
    }
}

/// The Int32 counterpart of `FloatBuffer` (token slots of the embedding lookup).
final class Int32Buffer {
    let pointer: UnsafeMutablePointer<Int32>
    let count: Int

    init(count: Int, value: Int32 = 0) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: value, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    func ensuring(_ needed: Int) -> Int32Buffer {
        needed <= count ? self : Int32Buffer(count: needed)
    }
}

// MARK: - Lanes

/// The arithmetic the gate loops need, on one Float or on eight at once.
///
/// Each cell writes its per-unit math once, generic over `Lane`, and runs it with `SIMD8<Float>`
/// over each row's body and with `Float` over the remainder (H not a multiple of 8): explicit
/// vectors, because with a dozen pointers per loop the auto-vectorizer gives up.
@usableFromInline
protocol Lane {
    init(repeating value: Float)
    static func load(_ p: UnsafePointer<Float>) -> Self
    func store(to p: UnsafeMutablePointer<Float>)
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func * (a: Self, b: Self) -> Self
    static func / (a: Self, b: Self) -> Self
    /// self · b + c with one rounding (IEEE 754 fusedMultiplyAdd). The CPU's FMA instruction where it
    /// has one (chosen at run time, so a baseline x86-64 build uses it too), else the C library's
    /// correctly rounded `fmaf`: the same bits on every CPU and in every build.
    func fused(_ b: Self, _ c: Self) -> Self
    /// x·p(x²)/q(x²), the rational part of `fastTanh`, for clamped x.
    func tanhRational() -> Self
    /// ½ + the rational part of `fastTanh` at x/2, halved, for x clamped at 2·`tanhClamp`:
    /// `fastSigmoid`'s body (`sigmoidRationalHorner`).
    func sigmoidRational() -> Self
    /// The correctly rounded square root of each lane (IEEE 754: the bits of `Float.squareRoot()`).
    func sqrt() -> Self
    /// Limited to [−c, c]; NaN stays NaN.
    func clamped(to c: Float) -> Self
    /// Whether every lane is ±0 (NaN is not).
    var isAllZero: Bool { get }
}

extension Float: Lane {
    @inline(__always) @usableFromInline
    init(repeating value: Float) { self = value }
    @inline(__always) @usableFromInline
    static func load(_ p: UnsafePointer<Float>) -> Float { p.pointee }
    @inline(__always) @usableFromInline
    func store(to p: UnsafeMutablePointer<Float>) { p.pointee = self }
    @inline(__always) @usableFromInline
    func clamped(to c: Float) -> Float { self < -c ? -c : (self > c ? c : self) }
    @inline(__always) @usableFromInline
    func sqrt() -> Float { squareRoot() }
    @inline(__always) @usableFromInline
    func fused(_ b: Float, _ c: Float) -> Float { c.addingProduct(self, b) }
    @inline(__always) @usableFromInline
    func tanhRational() -> Float { tanhRationalHorner(self) }
    @inline(__always) @usableFromInline
    func sigmoidRational() -> Float { sigmoidRationalHorner(self) }
    @inline(__always) @usableFromInline
    var isAllZero: Bool { self == 0 }
}

// SIMD8 spells out its conformance on purpose: the same methods written once in a generic
// `extension SIMD where Scalar == Float` were not specialised, and LSTM training ran at 1,960
// samples/s instead of 7,000 (-n 2, measured).
extension SIMD8: Lane where Scalar == Float {
    @inline(__always) @usableFromInline
    static func load(_ p: UnsafePointer<Float>) -> Self { UnsafeRawPointer(p).loadUnaligned(as: Self.self) }
    @inline(__always) @usableFromInline
    func store(to p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: self, as: Self.self) }
    @inline(__always) @usableFromInline
    func clamped(to c: Float) -> Self {
        var r = self
        r.replace(with: c, where: r .> c)
        r.replace(with: -c, where: r .< -c)
        return r
    }
    /// SSE's `sqrtps` on each half (one AVX `vsqrtps` in a `-target-cpu haswell` build): the
    /// standard library's `SIMD.squareRoot()` goes lane by lane through C's `sqrtf`, whose `errno`
    /// path keeps it scalar. Both instructions are IEEE square roots, so the bits are the same.
    @inline(__always) @usableFromInline
    func sqrt() -> Self {
        #if arch(x86_64)
        return Self(lowHalf: _mm_sqrt_ps(lowHalf), highHalf: _mm_sqrt_ps(highHalf))
        #else
        return squareRoot()
        #endif
    }
    @inline(__always) @usableFromInline
    var isAllZero: Bool { all(self .== Self(repeating: 0)) }
    @inline(__always) @usableFromInline
    func fused(_ b: Self, _ c: Self) -> Self {
        #if RNN_DIST_FMA
        // Built for CPUs with FMA (Launch/setup's release build): the instruction, inlined.
        return c.addingProduct(self, b)
        #else
        #if arch(x86_64)
        if rd_fma_ready() != 0 {
            return Self(lowHalf: rd_fma4(lowHalf, b.lowHalf, c.lowHalf), highHalf: rd_fma4(highHalf, b.highHalf, c.highHalf))
        }
        #endif
        return c.addingProduct(self, b)
        #endif
    }

    /// The Swift code where it is built for FMA; else the C function compiled for FMA where the CPU
    /// has it (one call per four lanes); else Horner with `fmaf` lane by lane. The same bits.
    @inline(__always) @usableFromInline
    func tanhRational() -> Self {
        #if !RNN_DIST_FMA && arch(x86_64)
        if rd_fma_ready() != 0 {
            return Self(lowHalf: rd_tanh_rational4(lowHalf), highHalf: rd_tanh_rational4(highHalf))
        }
        #endif
        return tanhRationalHorner(self)
    }

    /// As `tanhRational`: the Swift code built for FMA, else the C function compiled for FMA where
    /// the CPU has it, else Horner with `fmaf` lane by lane. The same bits.
    @inline(__always) @usableFromInline
    func sigmoidRational() -> Self {
        #if !RNN_DIST_FMA && arch(x86_64)
        if rd_fma_ready() != 0 {
            return Self(lowHalf: rd_sigmoid_rational4(lowHalf), highHalf: rd_sigmoid_rational4(highHalf))
        }
        #endif
        return sigmoidRationalHorner(self)
    }

    /// `fused`'s path for a CPU without FMA: `addingProduct`, `fmaf` lane by lane in a baseline build.
    func fusedLaneByLane(_ b: Self, _ c: Self) -> Self { c.addingProduct(self, b) }
}

/// The vector the gate loops use: two SSE registers on the x86-64 baseline the package compiles
/// for (measured as fast as SIMD4 there), one AVX register when built with `-target-cpu haswell`.
typealias Vector = SIMD8<Float>

/// Calls `vector(j)` for j = 0, w, 2w, … while a whole `Vector` (w lanes) fits in `count`, then
/// `scalar(j)` for the remaining j. Cells pass the same generic local function twice:
/// `forEachLane(H, { cell(Vector.self, $0) }, { cell(Float.self, $0) })`.
@inline(__always)
func forEachLane(_ count: Int, _ vector: (Int) -> Void, _ scalar: (Int) -> Void) {
    let width = Vector.scalarCount
    var j = 0
    while j + width <= count {
        vector(j)
        j += width
    }
    while j < count {
        scalar(j)
        j += 1
    }
}

// MARK: - Activations

/// Where `fastTanh` saturates: the first Float at which its fused evaluation below gives exactly 1
/// (it stays below 1 up to there). Beyond it the rational approximation would leave [−1, 1], so
/// arguments are clamped here.
@usableFromInline let tanhClamp: Float = 8.032_134_1  // bits 0x4100839F

/// tanh(x) by a degree-9/8 rational approximation x·p(x²)/q(x²) with p(0) = q(0) = 1, fitted (for
/// rnn-dist, in float64, minimax in relative error on [0, 8]: 1.1e-8) and rounded to Float; its two
/// polynomials evaluated by Horner's rule with fused multiply-adds (one rounding per step).
///
/// Absolute error ≤ 2.9e-7 (≈ 5 ulp of 1, near saturation; ≤ 3.5 ulp below 2), measured in
/// `ActivationTests`. Because p(0) = q(0) = 1 exactly, it is unbiased near 0: the mean error is
/// within ±0.16 ulp on every octave (`ActivationTests`). (The Eigen 13/6 approximation used before,
/// minimax in absolute error with p(0)/q(0) = 1 − 1.3·10⁻⁷ in Float, shrank every small argument by
/// about 1.2 ulp; through a stack of SimpleRNN layers over 500 steps that bias added up to 1.2e-6 in
/// the probability, twice Keras's own error against float64.) Exactly ±1 beyond ±`tanhClamp`;
/// branch-free, so it vectorizes; NaN in gives NaN out (so a diverging run is still detected).
@inline(__always) @usableFromInline
func fastTanh<V: Lane>(_ x: V) -> V {
    x.clamped(to: tanhClamp).tanhRational()
}

/// x·p(x²)/q(x²) by Horner's rule with fused multiply-adds: the body of `fastTanh` (and of the C
/// `rd_tanh_rational4`, which must stay the same operations in the same order).
@inline(__always) @usableFromInline
func tanhRationalHorner<V: Lane>(_ xc: V) -> V {
    let x2 = xc * xc
    var p = V(repeating: TanhCoefficients.a9)
    p = p.fused(x2, V(repeating: TanhCoefficients.a7))
    p = p.fused(x2, V(repeating: TanhCoefficients.a5))
    p = p.fused(x2, V(repeating: TanhCoefficients.a3))
    p = p.fused(x2, V(repeating: 1))
    var q = V(repeating: TanhCoefficients.b8)
    q = q.fused(x2, V(repeating: TanhCoefficients.b6))
    q = q.fused(x2, V(repeating: TanhCoefficients.b4))
    q = q.fused(x2, V(repeating: TanhCoefficients.b2))
    q = q.fused(x2, V(repeating: 1))
    return xc * p / q
}

/// σ(x) = (1 + tanh(x/2)) / 2, an identity, so its absolute error is about half of `fastTanh`'s (≤ 1.6e-7).
///
/// Exactly the bits of `fastTanh(x/2)·½ + ½` (one rounding), with two multiplications fewer: the
/// halving of x and of the result are folded into the coefficients (`sigmoidRationalHorner`).
@inline(__always) @usableFromInline
func fastSigmoid<V: Lane>(_ x: V) -> V {
    x.clamped(to: 2 * tanhClamp).sigmoidRational()
}

/// `fastSigmoid`'s body for x clamped at 2·`tanhClamp`: ½ + xc·p̃(xc²)/q̃(xc²), where p̃ has `fastTanh`'s
/// p coefficients aₖ (of x²ᵏ) scaled by 4^−(k+1) and q̃ its q coefficients bₖ scaled by 4^−k. With
/// h = x/2 (exact), every step is `fastTanh`'s at h scaled by a power of two — xc² = 4h², p̃ = p/4,
/// q̃ = q, xc·p̃ = (h·p)/2, the quotient tanh(h)/2 — so every rounding is the same (no subnormal
/// occurs where the sum could differ: below ~10⁻³⁵ both give ½), and the last step, t/2 + ½, is
/// `fused(t, ½, ½)` with ½·t exact. `ActivationTests` compares the two bit for bit. The C
/// `rd_sigmoid_rational4` must stay the same operations in the same order.
@inline(__always) @usableFromInline
func sigmoidRationalHorner<V: Lane>(_ xc: V) -> V {
    let x2 = xc * xc
    var p = V(repeating: TanhCoefficients.a9 * 0x1p-10)
    p = p.fused(x2, V(repeating: TanhCoefficients.a7 * 0x1p-8))
    p = p.fused(x2, V(repeating: TanhCoefficients.a5 * 0x1p-6))
    p = p.fused(x2, V(repeating: TanhCoefficients.a3 * 0x1p-4))
    p = p.fused(x2, V(repeating: 0x1p-2))
    var q = V(repeating: TanhCoefficients.b8 * 0x1p-8)
    q = q.fused(x2, V(repeating: TanhCoefficients.b6 * 0x1p-6))
    q = q.fused(x2, V(repeating: TanhCoefficients.b4 * 0x1p-4))
    q = q.fused(x2, V(repeating: TanhCoefficients.b2 * 0x1p-2))
    q = q.fused(x2, V(repeating: 1))
    return xc * p / q + V(repeating: 0.5)
}

/// `fastTanh`'s coefficients: p(u) = 1 + a3·u + a5·u² + a7·u³ + a9·u⁴, q(u) = 1 + b2·u + b4·u² + b6·u³ +
/// b8·u⁴ (u = x²), each exactly the Float written. The C functions in float_mode.h repeat them
/// (`rd_tanh_rational4`): keep both the same.
@usableFromInline enum TanhCoefficients {
    @inlinable static var a3: Float { 1.344_732_195e-01 }
    @inlinable static var a5: Float { 3.574_976_465e-03 }
    @inlinable static var a7: Float { 2.195_200_796e-05 }
    @inlinable static var a9: Float { 1.531_535_609e-08 }
    @inlinable static var b2: Float { 4.678_065_181e-01 }
    @inlinable static var b4: Float { 2.617_722_377e-02 }
    @inlinable static var b6: Float { 3.416_881_664e-04 }
    @inlinable static var b8: Float { 8.555_908_835e-07 }
}

/// Asks the CPU to start loading `count` floats at `p` (a hint: no effect on results). The layers
/// use it for the next step's projection rows, which lie at random places of a table larger than
/// the caches; without it each row's first use waited on memory.
@inline(__always)
func prefetch(_ p: UnsafePointer<Float>, count: Int) {
    var offset = 0
    while offset < count {
        rd_prefetch(p + offset)
        offset += 16
    }
}

/// A gate nonlinearity as a type, so that one loop (`activate`) serves σ and tanh, specialised for each.
protocol GateFunction {
    static func apply<V: Lane>(_ x: V) -> V
}

/// σ, by `fastSigmoid`.
enum SigmoidGate: GateFunction {
    @inline(__always) static func apply<V: Lane>(_ x: V) -> V { fastSigmoid(x) }
}

/// tanh, by `fastTanh`.
enum TanhGate: GateFunction {
    @inline(__always) static func apply<V: Lane>(_ x: V) -> V { fastTanh(x) }
}

/// out[j] = F(a[j] + b[j]), or F((a[j] + x[j]) + b[j]) when `x` is given (h·U plus a projection row
/// read in place), for j in 0..<count; `out` may be `a`. Independent lanes, so the loop runs at the
/// activation's throughput rather than its latency.
@inline(__always)
func activate<F: GateFunction>(_: F.Type, _ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>,
                               plus x: UnsafePointer<Float>? = nil, bias b: UnsafePointer<Float>, count: Int) {
    if let x {
        @inline(__always) func lane<V: Lane>(_: V.Type, _ j: Int) { F.apply(V.load(a + j) + V.load(x + j) + V.load(b + j)).store(to: out + j) }
        forEachLane(count, { lane(Vector.self, $0) }, { lane(Float.self, $0) })
    } else {
        @inline(__always) func lane<V: Lane>(_: V.Type, _ j: Int) { F.apply(V.load(a + j) + V.load(b + j)).store(to: out + j) }
        forEachLane(count, { lane(Vector.self, $0) }, { lane(Float.self, $0) })
    }
}

/// σ(z) via `exp`, for the few outputs where relative accuracy near 0 matters (the loss head).
@inline(__always)
func exactSigmoid(_ z: Float) -> Float {
    1 / (1 + Foundation.exp(-z))
}

// MARK: - Small loops

/// `out[j] += Σ_rows m[r, j]` for a row-major (rows × cols) matrix.
///
/// Partial sums over blocks of 256 rows in Float, then added in Double: the rounding error stays at
/// a few ulps of the result even for the 64,000 rows of a (T·B) sequence.
func addColumnSums(_ m: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
    withUnsafeTemporaryAllocation(of: Double.self, capacity: cols) { totalBuffer in
        let total = totalBuffer.baseAddress!
        for j in 0..<cols { total[j] = Double(out[j]) }
        var start = 0
        while start < rows {
            let end = min(rows, start + 256)
            addBlockColumnSums(m + start * cols, rows: end - start, cols: cols, into: total)
            start = end
        }
        for j in 0..<cols { out[j] = Float(total[j]) }
    }
}

/// `total[j] += Double(Σ_rows m[r, j])`, the rows summed in Float in order: one block of
/// `addColumnSums`, or of a sum that arrives block by block (each BPTT step's rows).
func addBlockColumnSums(_ m: UnsafePointer<Float>, rows: Int, cols: Int, into total: UnsafeMutablePointer<Double>) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: cols) { partialBuffer in
        let partial = partialBuffer.baseAddress!
        for j in 0..<cols { partial[j] = 0 }
        for r in 0..<rows {
            let row = m + r * cols
            for j in 0..<cols { partial[j] += row[j] }
        }
        for j in 0..<cols { total[j] += Double(partial[j]) }
    }
}

/// Column sums of a (rows × cols) matrix whose rows arrive block by block (BPTT's steps, last
/// first), with `addColumnSums`' accuracy: each block summed in Float, the blocks in Double.
final class ColumnSums {
    let count: Int
    private let total: UnsafeMutablePointer<Double>

    init(count: Int) {
        self.count = count
        total = .allocate(capacity: max(count, 1))
        total.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { total.deallocate() }

    /// Adds the column sums of the next `rows` rows of `count` columns.
    @inline(__always)
    func add(_ m: UnsafePointer<Float>, rows: Int) {
        addBlockColumnSums(m, rows: rows, cols: count, into: total)
    }

    /// out[j] = Float(Double(out[j]) + the sum so far).
    func add(into out: UnsafeMutablePointer<Float>) {
        for j in 0..<count { out[j] = Float(Double(out[j]) + total[j]) }
    }
}

/// `y[i] += x[i]` for i in 0..<n.
@inline(__always)
func addVector(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count n: Int) {
    for i in 0..<n { y[i] += x[i] }
}
