// Accuracy of the fast activations the gate loops use, and agreement of their vector and scalar forms.

@testable import RNN
import Foundation
import XCTest

final class ActivationTests: XCTestCase {
    func testFastTanhAndSigmoidAccuracy() {
        var worstTanh = 0.0, worstSigmoid = 0.0
        var x = -30.0
        while x <= 30 {
            let xf = Float(x)
            worstTanh = max(worstTanh, abs(Double(fastTanh(xf)) - tanh(Double(xf))))
            worstSigmoid = max(worstSigmoid, abs(Double(fastSigmoid(xf)) - 1 / (1 + exp(-Double(xf)))))
            x += 0.000_37
        }
        // The rational approximation evaluated in Float with fused multiply-adds peaks at 2.48e-7 on
        // this grid (≈ 4 ulp of 1; 2.89e-7 over every 3rd Float in [2⁻³⁰, 9]); σ = (1 + tanh(x/2))/2 about halves that
        // (1.39e-7). The Eigen approximation used before: 2.44e-7 and 1.58e-7.
        XCTAssertLessThan(worstTanh, 2.5e-7)
        XCTAssertLessThan(worstSigmoid, 1.6e-7)
        // Odd symmetry, saturation, and small arguments (relative accuracy near 0).
        XCTAssertEqual(fastTanh(Float(-0.3)), -fastTanh(Float(0.3)))
        XCTAssertEqual(fastTanh(Float(50)), 1, accuracy: 1e-7)
        XCTAssertEqual(fastSigmoid(Float(-50)), 0, accuracy: 1e-7)
        XCTAssertEqual(Double(fastTanh(Float(1e-4))), tanh(1e-4), accuracy: 1e-4 * 1e-6)
        XCTAssertTrue(fastTanh(Float.nan).isNaN)
        XCTAssertTrue(fastSigmoid(Float.nan).isNaN)
    }

    /// No bias: on every octave of arguments from 2⁻²⁰ to 8 the mean error of `fastTanh`, in ulp of
    /// the exact value, is within ±0.5 ulp (every 61st Float of the octave, about 137,500). Measured: within ±0.16
    /// on every octave but [2⁻¹², 2⁻¹¹), −0.41, where q(x²) = 1 + b2·x² rounds to 1 or to 1 + 2⁻²³
    /// while p(x²) rounds to 1. The Eigen approximation used before was −1.2 on every octave below
    /// ¼ (−1.48 on that one: its p(0)/q(0) = 1 − 1.3·10⁻⁷ in Float shrank every small argument), a
    /// bias that a deep SimpleRNN stack summed over 500 steps to 1.2e-6 in the probability.
    func testTanhIsUnbiasedOnEveryOctave() {
        var low: Float = 0x1p-20
        while low < 8 {
            var sum = 0.0, count = 0
            var bits = low.bitPattern
            let end = min(2 * low, 8).bitPattern
            while bits < end {
                let x = Float(bitPattern: bits)
                let exact = tanh(Double(x))
                let ulp = Double(Float(exact).ulp)
                sum += (Double(fastTanh(x)) - exact) / ulp
                count += 1
                bits += 61
            }
            let mean = sum / Double(count)
            XCTAssertLessThan(abs(mean), 0.5, "mean error on [\(low), \(2 * low)): \(mean) ulp over \(count) Floats")
            low *= 2
        }
    }

    /// tanh never leaves [−1, 1] and saturates exactly: every Float from 7 up to the clamp gives a
    /// value ≤ 1, the clamp gives 1, and so does everything beyond; σ gives exactly 0 and 1 there.
    func testSaturationIsExactAndBounded() {
        var x: Float = 7
        var steps = 0
        while x <= tanhClamp {
            let t = fastTanh(x)
            XCTAssertLessThanOrEqual(t, 1, "tanh(\(x))")
            XCTAssertEqual(fastTanh(-x), -t, "tanh is odd at \(x)")
            x = x.nextUp
            steps += 1
        }
        XCTAssertGreaterThan(steps, 100_000)
        XCTAssertEqual(tanhClamp.bitPattern, 0x4100_839F)
        XCTAssertEqual(fastTanh(tanhClamp), 1)
        XCTAssertLessThan(fastTanh(tanhClamp.nextDown), 1, "the clamp is the first argument that saturates")
        for big: Float in [8.5, 9, 20, 1e6, .greatestFiniteMagnitude, .infinity] {
            XCTAssertEqual(fastTanh(big), 1)
            XCTAssertEqual(fastTanh(-big), -1)
            XCTAssertEqual(fastSigmoid(2 * big), 1)
            XCTAssertEqual(fastSigmoid(-2 * big), 0)
        }
    }

    /// σ with the halvings folded into its coefficients gives exactly the bits of ½·tanh(x/2) + ½
    /// (`fastTanh`, one fused rounding), as it did before the folding: one Float in 256 between 2⁻³⁰
    /// and just past the clamp, both signs, and the special values (zeros, subnormals, the clamp's
    /// neighbours, infinities, NaN); in the scalar and the vector forms.
    func testSigmoidIsHalfTanhOfHalfBitForBit() {
        func reference(_ x: Float) -> Float { fastTanh(0.5 * x).fused(0.5, 0.5) }
        var checked = 0, differences = 0, first: Float?
        var batch: [Float] = []
        func check(_ x: Float) {
            checked += 1
            if fastSigmoid(x).bitPattern != reference(x).bitPattern { differences += 1; first = first ?? x }
            batch.append(x)
            if batch.count == 8 {
                let v = fastSigmoid(SIMD8<Float>(batch)), r = fastTanh(0.5 * SIMD8<Float>(batch)).fused(SIMD8(repeating: 0.5), SIMD8(repeating: 0.5))
                for k in 0 ..< 8 where v[k].bitPattern != r[k].bitPattern { differences += 1; first = first ?? batch[k] }
                batch.removeAll(keepingCapacity: true)
            }
        }
        var bits = Float(0x1p-30).bitPattern
        let end = (2 * tanhClamp).nextUp.nextUp.bitPattern
        while bits <= end {
            let x = Float(bitPattern: bits)
            check(x)
            check(-x)
            bits += 256
        }
        for x: Float in [0, -0.0, 1e-38, -1e-38, .leastNonzeroMagnitude, 2 * tanhClamp, (2 * tanhClamp).nextDown, (2 * tanhClamp).nextUp, 40, -40,
                         .greatestFiniteMagnitude, .infinity, -.infinity, .nan, 0.5, -0.5, 1, -1, 3, 7] {
            check(x)
        }
        XCTAssertGreaterThan(checked, 2_000_000)
        XCTAssertEqual(differences, 0, "first at \(first.map { "\($0)" } ?? "-")")
    }

    /// The SIMD8 form (rows' bodies) and the Float form (their remainders) give the same bits.
    func testVectorAndScalarFormsAgree() {
        let inputs: [Float] = [-40, -7.9, -5.9, -1, -1e-3, 0, 2e-5, 0.7, 3, 8.5, .infinity, -.infinity, .nan,
                               0.25, -0.25, 12]
        for start in stride(from: 0, to: inputs.count, by: 8) {
            let v = SIMD8<Float>(inputs[start..<(start + 8)])
            let t = fastTanh(v), s = fastSigmoid(v)
            for k in 0..<8 {
                let x = inputs[start + k]
                XCTAssertEqual(t[k].bitPattern, fastTanh(x).bitPattern, "tanh(\(x))")
                XCTAssertEqual(s[k].bitPattern, fastSigmoid(x).bitPattern, "σ(\(x))")
            }
        }
        XCTAssertEqual(fastTanh(Float.infinity), fastTanh(tanhClamp))
    }

    /// The three ways the activations are computed give the same bits: the vector form (in this
    /// baseline build: the C function compiled for FMA, chosen at run time when the CPU has FMA),
    /// the scalar form (`fmaf`), and the vector Horner with `fmaf` lane by lane (a CPU without FMA).
    /// A build for FMA CPUs inlines the instructions; Launch/compare-builds checks it against this.
    func testTheRunTimeFMAPathAndTheLibraryFMAAgree() {
        var state: UInt64 = 0x1234_5678
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u = Float(state >> 40) / Float(1 << 24)
            return (u - 0.5) * 20                       // [−10, 10): both sides of the clamp
        }
        struct LaneByLane: Lane {
            var v: SIMD8<Float>
            init(repeating value: Float) { v = SIMD8(repeating: value) }
            init(_ v: SIMD8<Float>) { self.v = v }
            static func load(_ p: UnsafePointer<Float>) -> Self { Self(SIMD8<Float>.load(p)) }
            func store(to p: UnsafeMutablePointer<Float>) { v.store(to: p) }
            static func + (a: Self, b: Self) -> Self { Self(a.v + b.v) }
            static func - (a: Self, b: Self) -> Self { Self(a.v - b.v) }
            static func * (a: Self, b: Self) -> Self { Self(a.v * b.v) }
            static func / (a: Self, b: Self) -> Self { Self(a.v / b.v) }
            func fused(_ b: Self, _ c: Self) -> Self { Self(v.fusedLaneByLane(b.v, c.v)) }
            func tanhRational() -> Self { tanhRationalHorner(self) }
            func sigmoidRational() -> Self { sigmoidRationalHorner(self) }
            func sqrt() -> Self { Self(v.sqrt()) }
            func clamped(to c: Float) -> Self { Self(v.clamped(to: c)) }
            var isAllZero: Bool { v.isAllZero }
        }
        var differences = 0
        for _ in 0 ..< 20_000 {
            var x = SIMD8<Float>(), b = SIMD8<Float>(), c = SIMD8<Float>()
            for k in 0 ..< 8 { x[k] = next(); b[k] = next(); c[k] = next() }
            let t = fastTanh(x), s = fastSigmoid(x), f = x.fused(b, c)
            let t2 = fastTanh(LaneByLane(x)).v, s2 = fastSigmoid(LaneByLane(x)).v, f2 = x.fusedLaneByLane(b, c)
            for k in 0 ..< 8 {
                if t[k].bitPattern != fastTanh(x[k]).bitPattern || t[k].bitPattern != t2[k].bitPattern { differences += 1 }
                if s[k].bitPattern != fastSigmoid(x[k]).bitPattern || s[k].bitPattern != s2[k].bitPattern { differences += 1 }
                if f[k].bitPattern != c[k].addingProduct(x[k], b[k]).bitPattern || f[k].bitPattern != f2[k].bitPattern { differences += 1 }
            }
        }
        XCTAssertEqual(differences, 0, "lanes where the paths disagree")
    }
}
