/// bfloat16 (the top 16 bits of a Float: 8 exponent bits, 7 mantissa bits), the optional wire format
/// of the gradient exchange (`train --allreduce-dtype bf16`).
public enum BFloat16 {
    /// Rounds to the nearest bfloat16, ties to even; NaN stays NaN, ±∞ stays ±∞.
    @inline(__always)
    static func encode(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        if f.isNaN { return UInt16(bits >> 16) | 0x0040 }   // keep it a (quiet) NaN
        return UInt16((bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    @inline(__always)
    static func decode(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }
}

/// How gradients travel between ranks.
public enum ExchangeDType: String, Codable, CaseIterable, Sendable {
    /// Float32, all-reduced (the default: world-size invariance up to summation order).
    case fp32
    /// bfloat16, all-gathered and summed in Float32 on arrival, in rank order (identical on every
    /// rank): half the bytes a rank sends; each gradient is rounded to 8 significant bits first.
    case bf16
}
