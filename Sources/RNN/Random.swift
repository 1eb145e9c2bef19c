// Seeded pseudo-random numbers for weight initialization and benchmarks.
//
// Every process that builds a model from the same seed must get bit-identical weights, on any
// platform, so nothing here depends on the system generator or on Foundation's random functions.

import Foundation

/// SplitMix64 (Steele, Lea & Flood 2014): turns one 64-bit word into a well-mixed stream;
/// used only to seed `SeededGenerator`, as the xoshiro authors recommend.
struct SplitMix64 {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** 1.0 (Blackman & Vigna 2018), the package's deterministic generator.
///
/// `stream` selects an independent sequence for the same seed (one per parameter tensor), so adding
/// a layer does not shift the random numbers of the others.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64

    /// - Parameters:
    ///   - seed: the user's seed (`--seed`).
    ///   - stream: which independent sequence of that seed; default 0.
    public init(seed: UInt64, stream: UInt64 = 0) {
        var mixer = SplitMix64(state: seed)
        var sm = SplitMix64(state: mixer.next() &+ stream &* 0xD1B5_4A32_D192_ED03)
        // SplitMix64 is a bijection of its counter, so four successive outputs are never all zero.
        s0 = sm.next(); s1 = sm.next(); s2 = sm.next(); s3 = sm.next()
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 &- k)) }

    public mutating func next() -> UInt64 {
        let result = Self.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = Self.rotl(s3, 45)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Uniform in [low, high).
    mutating func nextUniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * nextUnit()
    }

    /// Standard normal (Box–Muller; one of the pair is used, which keeps the stream position simple).
    mutating func nextNormal() -> Double {
        let u1 = 1 - nextUnit()          // (0, 1]: log never sees 0
        let u2 = nextUnit()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }

    /// Uniform integer in 0..<bound (Lemire's multiply-shift; bias ≤ bound/2⁶⁴, irrelevant here).
    mutating func nextIndex(_ bound: Int) -> Int {
        precondition(bound > 0, "nextIndex: bound must be positive")
        return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}
