import CBLAS
import CSmallGEMM
#if canImport(Glibc)
import Glibc
#endif

/// The BLAS facade: single-precision matrix products on row-major buffers (OpenBLAS `cblas_sgemm`,
/// and rnn-dist's own kernel for the small ones: `ownKernel`).
///
/// Shapes follow the usual convention: `C (M×N) = alpha · op(A) (M×K) · op(B) (K×N) + beta · C`,
/// where `op(X)` is `X` or `Xᵀ`. All buffers are row-major; `lda`, `ldb`, `ldc` are row strides.
public enum BLAS {
    /// One BLAS thread per process: the MPI ranks are the parallelism (docs/BENCHMARKS.md).
    /// Wraps `openblas_set_num_threads`.
    public static func useSingleThread() {
        openblas_set_num_threads(1)
    }

    /// The kernel family OpenBLAS chose for this CPU (or `OPENBLAS_CORETYPE`), e.g. "Haswell",
    /// "SkylakeX", "Zen". Wraps `openblas_get_corename`.
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// OpenBLAS core names without AVX2 kernels: older Intel and AMD families, and what OpenBLAS
    /// falls back to for a CPU it does not know (OpenBLAS 0.3.21, Debian 12's, runs a Sapphire
    /// Rapids Xeon as "Prescott": SSE3 kernels, 3–6× slower at this model's matrix sizes).
    static let coresWithoutAVX2: Set<String> = [
        "unknown", "katmai", "coppermine", "northwood", "prescott", "banias", "core2", "penryn", "dunnington",
        "nehalem", "sandybridge", "atom", "athlon", "opteron", "barcelona", "bobcat", "bulldozer", "piledriver",
        "steamroller", "excavator",
    ]

    /// The kernel family to ask OpenBLAS for (`OPENBLAS_CORETYPE`) when the one it picked, `current`,
    /// has no AVX2 kernels but the CPU (its /proc/cpuinfo `flags`) has AVX2 and FMA: "SkylakeX"
    /// with AVX-512 (F, CD, BW, DQ, VL), else "Haswell"; nil when the choice is fine as it is.
    public static func betterCoreType(current: String, cpuFlags: Set<String>) -> String? {
        guard coresWithoutAVX2.contains(current.lowercased()), cpuFlags.contains("avx2"), cpuFlags.contains("fma") else {
            return nil
        }
        let avx512 = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        return avx512.allSatisfy(cpuFlags.contains) ? "SkylakeX" : "Haswell"
    }

    /// `C = alpha · op(A) · op(B) + beta · C` on raw row-major pointers: OpenBLAS's `cblas_sgemm`,
    /// or for the small products the own kernel (`ownKernel`).
    /// - Parameters:
    ///   - transA, transB: use `Aᵀ` / `Bᵀ`.
    ///   - m, n, k: the shapes of `op(A)` (M×K), `op(B)` (K×N) and `C` (M×N).
    ///   - lda, ldb, ldc: row strides; `lda ≥ (transA ? m : k)`, `ldb ≥ (transB ? k : n)`, `ldc ≥ n`.
    @inlinable
    public static func sgemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative dimension m=\(m) n=\(n) k=\(k)")
        precondition(lda >= max(1, transA ? m : k), "sgemm: lda \(lda) too small")
        precondition(ldb >= max(1, transB ? k : n), "sgemm: ldb \(ldb) too small")
        precondition(ldc >= max(1, n), "sgemm: ldc \(ldc) too small")
        if m == 0 || n == 0 { return }
        if counts != nil {
            count(ProductShape(gemv: false, transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc,
                               betaZero: beta == 0))
        }
        if ownKernel && takesOwnKernel(transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta) {
            ownProduct(transA: transA, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, accumulate: beta == 1, c: c, ldc: ldc)
        } else {
            openBLASProduct(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                            beta: beta, c: c, ldc: ldc)
        }
    }

    /// Whether a product's shape and scalars are the own kernel's (`ownKernel`).
    @inlinable
    public static func takesOwnKernel(transB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float) -> Bool {
        !transB && alpha == 1 && (beta == 0 || beta == 1) && k >= 1 && k <= ownKernelMaxK && n * k <= ownKernelMaxB
    }

    /// `C = op(A)·B` or `C += op(A)·B` in the own kernel (`rd_sgemm_small`); the CPU must have AVX2
    /// and FMA (`ownKernelSupported`), k ≥ 1.
    @usableFromInline
    static func ownProduct(transA: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                           b: UnsafePointer<Float>, ldb: Int, accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int) {
        rd_sgemm_small(transA ? 1 : 0, m, n, k, a, lda, b, ldb, accumulate ? 1 : 0, c, ldc)
    }

    /// The product in OpenBLAS (`cblas_sgemm`), β = 0 as zeros and β = 1 where `zeroesBeforeProduct`.
    @usableFromInline
    static func openBLASProduct(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        var beta = beta
        if beta == 0 && zeroesBeforeProduct {
            if ldc == n {
                c.update(repeating: 0, count: m * n)
            } else {
                for row in 0 ..< m { (c + row * ldc).update(repeating: 0, count: n) }
            }
            beta = 1
        }
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Whether `sgemm` runs the small products in rnn-dist's own kernel (`rd_sgemm_small`, AVX2 and
    /// FMA) instead of OpenBLAS: where the CPU has both, OpenBLAS's kernels are not the AVX-512 ones,
    /// and `RNN_DIST_OWN_GEMM` is not `0`. The products it takes are those with α = 1, β ∈ {0, 1}, B
    /// not transposed, k ≤ `ownKernelMaxK` and B no larger than `ownKernelMaxB`, whatever the number
    /// of rows: each time step's h·U, dA·Uᵀ, hᵀ·dA, the input projection's products and the
    /// vocabulary's projection table. The row count plays no part, so a row's bits never depend
    /// on how many rows share its product (a batch, a rank's part of it, an evaluation group).
    ///
    /// Why: at these shapes ((128 × 32)·(32 × 128) and the like) OpenBLAS packs both operands on
    /// every call and, for β = 0, zeroes C first; the own kernel reads them in place and writes C
    /// once. On a Zen 3 EPYC it ran them 1.1–1.4× faster than OpenBLAS's `Zen` kernels, and large
    /// products of a small B, (10,000 × 32)·(32 × 128), 1.2× (BENCHMARKS).
    /// Its bits: each element is one fused multiply-add chain over k in order, then + C (or + 0), so
    /// a row's result does not depend on the batch it is in, the tile, the build or the OpenBLAS
    /// kernel family. OpenBLAS's Haswell kernels sum some tiles' elements in two interleaved chains;
    /// so results moved in the last bits when this kernel came (docs/BENCHMARKS.md).
    public static let ownKernel: Bool = ownKernelSupported && !avx512Cores.contains(coreName.lowercased())
        && environmentValue("RNN_DIST_OWN_GEMM") != "0"

    /// Whether the CPU runs the own kernel (x86-64 with AVX2 and FMA).
    public static let ownKernelSupported: Bool = rd_small_gemm_supported() != 0

    /// The own kernel keeps a 16-column panel of B (k × 16 floats) in the L1 cache: at most 32 KB.
    @usableFromInline static let ownKernelMaxK = 512
    /// B's floats (k·n) at most: 64 KB, in the L2 cache. From (128 × 256) by (256 × 128) up,
    /// OpenBLAS's packed, cache-blocked kernels were as fast or faster (BENCHMARKS).
    @usableFromInline static let ownKernelMaxB = 1 << 14

    static func environmentValue(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        return String(cString: p)
    }

    /// Whether `sgemm` does β = 0 as zeros written here and then β = 1.
    ///
    /// OpenBLAS's kernel families up to AVX2 (Haswell, Zen, Sandybridge, …) do β = 0 as a pass of
    /// their own that zeroes C before the kernel adds the product to it; at this model's shapes
    /// ((128 × 32)·(32 × 96…128)) that pass cost 3–8 µs a call on a Zen 3 EPYC, zeroing the same C
    /// here under 0.5 µs. The kernel then adds the product to the same zeros, so every bit is the
    /// same (`BLASTests`). The AVX-512 families (SkylakeX, Cooperlake, SapphireRapids) run small
    /// products in kernels of their own for β = 0, which write C without reading it; not measured
    /// against this, they keep β = 0.
    @usableFromInline static let zeroesBeforeProduct: Bool = !avx512Cores.contains(coreName.lowercased())

    /// OpenBLAS core names whose kernels have the small-matrix β = 0 path (OpenBLAS 0.3.21).
    static let avx512Cores: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]

    /// `C = alpha · op(A) · op(B) + beta · C` on Swift arrays with dense strides, checking every
    /// buffer's size against the shapes first.
    /// - Parameters: `a` holds op-less `A` as (M×K) or, with `transA`, (K×M); likewise `b`.
    static func sgemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1, a: [Float], b: [Float], beta: Float = 0, c: inout [Float]
    ) {
        precondition(a.count == m * k, "sgemm: A holds \(a.count) values, expected \(m)×\(k)")
        precondition(b.count == k * n, "sgemm: B holds \(b.count) values, expected \(k)×\(n)")
        precondition(c.count == m * n, "sgemm: C holds \(c.count) values, expected \(m)×\(n)")
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                          a: pa.baseAddress!, lda: transA ? m : k,
                          b: pb.baseAddress!, ldb: transB ? k : n,
                          beta: beta, c: pc.baseAddress!, ldc: n)
                }
            }
        }
    }

    /// `y = alpha · op(A) · x + beta · y` for row-major A (M×N). Wraps `cblas_sgemv`.
    @inlinable
    public static func sgemv(
        trans: Bool = false, m: Int, n: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, x: UnsafePointer<Float>,
        beta: Float = 0, y: UnsafeMutablePointer<Float>
    ) {
        precondition(m >= 0 && n >= 0 && lda >= max(1, n), "sgemv: bad shape m=\(m) n=\(n) lda=\(lda)")
        if m == 0 || n == 0 { return }
        if counts != nil {
            count(ProductShape(gemv: true, transA: trans, transB: false, m: m, n: n, k: 1, lda: lda, ldb: 1, ldc: 1, betaZero: beta == 0))
        }
        cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha,
                    a, Int32(lda), x, 1, beta, y, 1)
    }
}
