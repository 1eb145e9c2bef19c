import CFloatMode

/// How this thread's CPU treats subnormal numbers (|x| < 1.2·10⁻³⁸ in Float). Wraps the CFloatMode
/// shim (MXCSR on x86-64, FPCR on arm64).
public enum FloatMode {
    /// Sets flush-to-zero and denormals-are-zero on the calling thread; returns false where the
    /// CPU has no such mode. Threads created afterwards inherit it (POSIX).
    @discardableResult
    public static func flushSubnormalsToZero() -> Bool {
        rd_flush_subnormals_to_zero() != 0
    }

    /// Whether the calling thread flushes subnormals to zero.
    public static var flushesSubnormals: Bool { rd_flushes_subnormals() != 0 }
}
