import BLAS

/// The process-wide settings the model math runs under; every command applies them at start-up,
/// before any arithmetic.
public enum ComputeSetup {
    /// One BLAS thread (the MPI ranks are the parallelism), so every computation runs on the
    /// calling thread; and on that thread subnormals flushed to zero. Why the latter: Intel cores
    /// pay ~100× for each operation on a subnormal, and the first epoch's small gradients and
    /// optimizer slots pass through that range (epoch 1 took 2.4× epoch 2 on an Ice Lake Xeon);
    /// results change only below 1.2·10⁻³⁸. See docs/TRAINING.md §Floating-point mode.
    public static func configureProcess() {
        BLAS.useSingleThread()
        FloatMode.flushSubnormalsToZero()
    }

    /// Whether the calling thread flushes subnormals to zero (set by `configureProcess`).
    public static var flushesSubnormals: Bool { FloatMode.flushesSubnormals }

    /// The BLAS kernel family in use (OpenBLAS's core name, e.g. "SkylakeX").
    public static var blasKernel: String { BLAS.coreName }
}
