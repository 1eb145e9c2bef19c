import CBLAS
import Foundation

/// One matrix product's shape as the code called it: `sgemm` (C (M×N) = op(A) (M×K) · op(B) (K×N))
/// or `sgemv` (K = 1: y (M) = op(A) · x). The `floor` benchmark (docs/BENCHMARKS.md §The floor)
/// counts the products an epoch performs by shape, then times each shape alone on this machine.
public struct ProductShape: Hashable, Codable, Sendable {
    public var gemv: Bool
    public var transA: Bool
    public var transB: Bool
    public var m: Int
    public var n: Int
    public var k: Int
    public var lda: Int
    public var ldb: Int
    public var ldc: Int
    /// β = 0 (C overwritten) rather than accumulated into.
    public var betaZero: Bool

    @inlinable
    public init(gemv: Bool, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int, betaZero: Bool) {
        self.gemv = gemv
        self.transA = transA
        self.transB = transB
        self.m = m
        self.n = n
        self.k = k
        self.lda = lda
        self.ldb = ldb
        self.ldc = ldc
        self.betaZero = betaZero
    }

    /// Multiply-adds counted as 2 FLOP: 2·M·N·K (sgemv: 2·M·N of A's stored shape).
    public var flop: Double { gemv ? 2 * Double(m) * Double(n) : 2 * Double(m) * Double(n) * Double(k) }
}

extension BLAS {
    /// The products counted since `startCounting`, by shape; nil when not counting (the default:
    /// one branch per call).
    @usableFromInline nonisolated(unsafe) static var counts: [ProductShape: Int]?

    /// Starts counting every `sgemm` and `sgemv` call of this process by shape.
    public static func startCounting() { counts = [:] }

    /// The counts so far, and counting stops.
    public static func stopCounting() -> [ProductShape: Int] {
        defer { counts = nil }
        return counts ?? [:]
    }

    @usableFromInline
    static func count(_ shape: ProductShape) { counts?[shape, default: 0] += 1 }

    /// Counts a product the code forms by hand rather than through `sgemm` (as the `sgemm` of its
    /// shape), so that the counts hold every matrix product the code performs.
    public static func countProduct(_ shape: ProductShape) { count(shape) }

    /// Seconds one call of `shape` takes here: the call repeated on buffers of its size (filled
    /// with small values, so no subnormal or overflow), in rounds of about `budget`/5 seconds each,
    /// the median round's time per call. Single-threaded, as the model runs it.
    ///
    /// OpenBLAS's time for the shape (the floor's denominator: the machine's `sgemm`), or with
    /// `asRun` the facade's (`sgemm`/`sgemv`: the own kernel where it takes the shape, C zeroed
    /// here for β = 0 where `zeroesBeforeProduct`).
    public static func secondsPerCall(_ s: ProductShape, budget: Double = 0.05, asRun: Bool = false) -> Double {
        let rowsA = s.gemv ? s.m : (s.transA ? s.k : s.m), rowsB = s.transB ? s.n : s.k
        let a = [Float](repeating: 0.01, count: max(1, rowsA * s.lda))
        let b = [Float](repeating: 0.02, count: max(1, s.gemv ? (s.transA ? s.m : s.n) : rowsB * s.ldb))
        var c = [Float](repeating: 0, count: max(1, s.gemv ? (s.transA ? s.n : s.m) : s.m * s.ldc))
        // The product as `sgemm` calls it: where it zeroes C itself for β = 0, the product is β = 1
        // (the zeroing is the code's own work, not the product's).
        let betaZero = s.betaZero && (s.gemv || !zeroesBeforeProduct)
        func once() {
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        if asRun && s.gemv {
                            sgemv(trans: s.transA, m: s.m, n: s.n, a: pa.baseAddress!, lda: s.lda, x: pb.baseAddress!,
                                  beta: s.betaZero ? 0 : 1, y: pc.baseAddress!)
                        } else if asRun {
                            sgemm(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: pa.baseAddress!, lda: s.lda,
                                  b: pb.baseAddress!, ldb: s.ldb, beta: s.betaZero ? 0 : 1, c: pc.baseAddress!, ldc: s.ldc)
                        } else if s.gemv {
                            cblas_sgemv(CblasRowMajor, s.transA ? CblasTrans : CblasNoTrans, Int32(s.m), Int32(s.n), 1,
                                        pa.baseAddress, Int32(s.lda), pb.baseAddress, 1, betaZero ? 0 : 1, pc.baseAddress, 1)
                        } else {
                            cblas_sgemm(CblasRowMajor, s.transA ? CblasTrans : CblasNoTrans, s.transB ? CblasTrans : CblasNoTrans,
                                        Int32(s.m), Int32(s.n), Int32(s.k), 1, pa.baseAddress, Int32(s.lda), pb.baseAddress,
                                        Int32(s.ldb), betaZero ? 0 : 1, pc.baseAddress, Int32(s.ldc))
                        }
                    }
                }
            }
        }
        func now() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
        }
        once()
        // Calls per round: enough for budget/5 seconds, from a first estimate.
        let t0 = now()
        var probe = 0
        while now() - t0 < 0.002 { once(); probe += 1 }
        let perRound = max(1, Int(Double(probe) * (budget / 5) / 0.002))
        var rounds: [Double] = []
        for _ in 0 ..< 5 {
            let start = now()
            for _ in 0 ..< perRound { once() }
            rounds.append((now() - start) / Double(perRound))
        }
        return rounds.sorted()[2]
    }
}
