import XCTest
import CBLAS
@testable import BLAS

final class BLASTests: XCTestCase {
    /// Row-major naive product of op(A) (m×k) and op(B) (k×n), in Double.
    func naive(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, transA: Bool, transB: Bool) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0 ..< m {
            for j in 0 ..< n {
                var s = 0.0
                for p in 0 ..< k {
                    let av = transA ? a[p * m + i] : a[i * k + p]
                    let bv = transB ? b[j * k + p] : b[p * n + j]
                    s += Double(av) * Double(bv)
                }
                c[i * n + j] = s
            }
        }
        return c
    }

    func testSgemmMatchesANaiveProductForAllTranspositionsAndShapes() {
        BLAS.useSingleThread()
        var g = SystemRandomNumberGenerator()
        for (m, n, k) in [(1, 1, 1), (3, 5, 2), (7, 4, 9), (64, 128, 32), (5, 1, 33)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let a = (0 ..< m * k).map { _ in Float.random(in: -1 ... 1, using: &g) }
                    let b = (0 ..< k * n).map { _ in Float.random(in: -1 ... 1, using: &g) }
                    let c0 = (0 ..< m * n).map { _ in Float.random(in: -1 ... 1, using: &g) }
                    var c = c0
                    BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a, b: b, beta: 2, c: &c)
                    let ref = naive(a, b, m: m, n: n, k: k, transA: transA, transB: transB)
                    for i in 0 ..< m * n {
                        let want = 0.5 * ref[i] + 2 * Double(c0[i])
                        // Float accumulation over k ≤ 33 terms of size ≤ 1: error ≲ k·2⁻²⁴ ≈ 2e-6.
                        XCTAssertEqual(Double(c[i]), want, accuracy: 1e-5 * Double(k),
                                       "m=\(m) n=\(n) k=\(k) tA=\(transA) tB=\(transB) at \(i)")
                    }
                }
            }
        }
    }

    func testSgemmWithStridesWritesOnlyItsBlock() {
        // C is a 2×3 block inside a 4×6 buffer (ldc 6); the rest must stay untouched.
        let a: [Float] = [1, 2, 3, 4]          // 2×2
        let b: [Float] = [1, 0, 2, 0, 1, 3]    // 2×3
        var c = [Float](repeating: -7, count: 24)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    BLAS.sgemm(m: 2, n: 3, k: 2, a: pa.baseAddress!, lda: 2, b: pb.baseAddress!, ldb: 3,
                               c: pc.baseAddress! + 6 + 1, ldc: 6)
                }
            }
        }
        XCTAssertEqual(Array(c[7 ..< 10]), [1, 2, 8])
        XCTAssertEqual(Array(c[13 ..< 16]), [3, 4, 18])
        XCTAssertEqual(c.enumerated().filter { ![7, 8, 9, 13, 14, 15].contains($0.offset) }.map(\.element),
                       [Float](repeating: -7, count: 18))
    }

    /// β = 0 through the facade's OpenBLAS path, which on non-AVX-512 kernels zeroes C itself and calls β = 1
    /// (`zeroesBeforeProduct`), gives the bits of OpenBLAS's own β = 0: whatever C held before (NaN
    /// here), with strides (the padding between C's rows untouched) and transposes, and for an
    /// element whose every term is −0 (where the sign of the zero depends on how C starts).
    func testBetaZeroGivesOpenBLASsOwnBits() {
        BLAS.useSingleThread()
        var g = SystemRandomNumberGenerator()
        for (m, n, k, pad) in [(128, 96, 32, 0), (128, 128, 32, 0), (64, 32, 32, 5), (7, 9, 3, 2)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    var a = (0 ..< m * k).map { _ in Float.random(in: -1 ... 1, using: &g) }
                    var b = (0 ..< k * n).map { _ in Float.random(in: -1 ... 1, using: &g) }
                    // Row 0 of op(A) all −0, column 0 of op(B) all 1: C[0][0] sums −0 terms only.
                    for p in 0 ..< k {
                        a[transA ? p * m : p] = -0.0
                        b[transB ? p : p * n] = 1
                    }
                    let ldc = n + pad
                    var mine = [Float](repeating: .nan, count: m * ldc), theirs = mine
                    let lda = transA ? m : k, ldb = transB ? k : n
                    a.withUnsafeBufferPointer { pa in
                        b.withUnsafeBufferPointer { pb in
                            mine.withUnsafeMutableBufferPointer { pc in
                                BLAS.openBLASProduct(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: pa.baseAddress!,
                                                     lda: lda, b: pb.baseAddress!, ldb: ldb, beta: 0, c: pc.baseAddress!, ldc: ldc)
                            }
                            theirs.withUnsafeMutableBufferPointer { pc in
                                cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                                            Int32(m), Int32(n), Int32(k), 1, pa.baseAddress, Int32(lda), pb.baseAddress,
                                            Int32(ldb), 0, pc.baseAddress, Int32(ldc))
                            }
                        }
                    }
                    let where_ = "m=\(m) n=\(n) k=\(k) ldc=\(ldc) tA=\(transA) tB=\(transB) on \(BLAS.coreName)"
                    for row in 0 ..< m {
                        for col in 0 ..< n where mine[row * ldc + col].bitPattern != theirs[row * ldc + col].bitPattern {
                            XCTFail("C[\(row)][\(col)] \(mine[row * ldc + col]) against OpenBLAS's \(theirs[row * ldc + col]), \(where_)")
                            return
                        }
                        // The padding between rows is not C's: it keeps its NaN.
                        for col in n ..< ldc { XCTAssertTrue(mine[row * ldc + col].isNaN, where_) }
                    }
                    XCTAssertEqual(mine[0].sign, theirs[0].sign, where_)
                }
            }
        }
    }

    /// The own kernel's contract (include/small_gemm.h): element (i, j) is s = 0, s = fma(op(A)[i][p],
    /// B[p][j], s) for p in order, then s + C or s + 0, bit for bit; over row counts that fill whole
    /// tiles and leave each remainder, column counts that leave a part-vector (masked lanes),
    /// transposed A, strides, k from 1 to past the L1 panel; C's padding (NaN) is neither read nor
    /// written, and an element whose every term is −0 comes out +0 with β = 0, as OpenBLAS's.
    func testOwnKernelIsOneFusedChainPerElement() throws {
        try XCTSkipUnless(BLAS.ownKernelSupported, "the CPU has no AVX2 and FMA")
        var g = SystemRandomNumberGenerator()
        for (m, n, k) in [(1, 1, 1), (6, 16, 32), (7, 24, 5), (13, 40, 17), (128, 128, 32), (64, 32, 128), (5, 3, 300),
                          (11, 9, 600), (2, 130, 64)] {
            for transA in [false, true] {
                for accumulate in [false, true] {
                    let lda = (transA ? m : k) + 3, ldb = n + 2, ldc = n + 5
                    var a = (0 ..< (transA ? k : m) * lda).map { _ in Float.random(in: -1 ... 1, using: &g) }
                    let b = (0 ..< k * ldb).map { _ in Float.random(in: -1 ... 1, using: &g) }
                    func opA(_ i: Int, _ p: Int) -> Int { transA ? p * lda + i : i * lda + p }
                    for p in 0 ..< k { a[opA(0, p)] = -0.0 }  // row 0: every term −0
                    var c = [Float](repeating: .nan, count: m * ldc)
                    for i in 0 ..< m { for j in 0 ..< n { c[i * ldc + j] = accumulate ? Float.random(in: -1 ... 1, using: &g) : .nan } }
                    let before = c
                    a.withUnsafeBufferPointer { pa in
                        b.withUnsafeBufferPointer { pb in
                            c.withUnsafeMutableBufferPointer { pc in
                                BLAS.ownProduct(transA: transA, m: m, n: n, k: k, a: pa.baseAddress!, lda: lda, b: pb.baseAddress!,
                                                ldb: ldb, accumulate: accumulate, c: pc.baseAddress!, ldc: ldc)
                            }
                        }
                    }
                    let where_ = "m=\(m) n=\(n) k=\(k) tA=\(transA) accumulate=\(accumulate)"
                    for i in 0 ..< m {
                        for j in 0 ..< n {
                            var s: Float = 0
                            for p in 0 ..< k { s.addProduct(a[opA(i, p)], b[p * ldb + j]) }
                            let want = s + (accumulate ? before[i * ldc + j] : 0)
                            if c[i * ldc + j].bitPattern != want.bitPattern {
                                return XCTFail("C[\(i)][\(j)] \(c[i * ldc + j]) against the chain's \(want), \(where_)")
                            }
                        }
                        for j in n ..< ldc where !c[i * ldc + j].isNaN { return XCTFail("C's padding written at [\(i)][\(j)], \(where_)") }
                    }
                    if !accumulate { XCTAssertEqual(c[0].bitPattern, Float(0).bitPattern, "−0 terms give +0, \(where_)") }
                }
            }
        }
    }

    /// The facade sends the small products (α = 1, β ∈ {0, 1}, B as stored) to the own kernel where
    /// `ownKernel`, and everything else to OpenBLAS: a row's bits then do not depend on how many rows
    /// the product has (OpenBLAS's tiles sum some elements in two chains). 37 rows, then the same
    /// rows as the first 5 of a product of 5 and the last 32 of one of 32; and 5,000 rows (a
    /// vocabulary's table) against the same rows 3 at a time.
    func testSmallProductsRowsDoNotDependOnTheBatch() throws {
        try XCTSkipUnless(BLAS.ownKernel, "the own kernel is off here (CPU, OpenBLAS kernel or RNN_DIST_OWN_GEMM)")
        var g = SystemRandomNumberGenerator()
        let n = 128, k = 32
        let b = (0 ..< k * n).map { _ in Float.random(in: -1 ... 1, using: &g) }
        /// A (rows × k)·B as one product per run of rows, the runs starting at `starts` (the first 0).
        func inParts(_ a: [Float], rows: Int, starts: [Int]) -> [UInt32] {
            var c = [Float](repeating: 0, count: rows * n)
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        for (i, s) in starts.enumerated() {
                            let end = i + 1 < starts.count ? starts[i + 1] : rows
                            BLAS.sgemm(m: end - s, n: n, k: k, a: pa.baseAddress! + s * k, lda: k, b: pb.baseAddress!, ldb: n,
                                       c: pc.baseAddress! + s * n, ldc: n)
                        }
                    }
                }
            }
            return c.map(\.bitPattern)
        }
        let a = (0 ..< 37 * k).map { _ in Float.random(in: -1 ... 1, using: &g) }
        XCTAssertEqual(inParts(a, rows: 37, starts: [0]), inParts(a, rows: 37, starts: [0, 5]))
        let rows = 5_000
        let table = (0 ..< rows * k).map { _ in Float.random(in: -1 ... 1, using: &g) }
        XCTAssertEqual(inParts(table, rows: rows, starts: [0]), inParts(table, rows: rows, starts: Array(stride(from: 0, to: rows, by: 3))))
        XCTAssertTrue(BLAS.takesOwnKernel(transB: false, m: 128, n: 128, k: 32, alpha: 1, beta: 1))
        XCTAssertFalse(BLAS.takesOwnKernel(transB: true, m: 128, n: 128, k: 32, alpha: 1, beta: 1))
        XCTAssertFalse(BLAS.takesOwnKernel(transB: false, m: 128, n: 128, k: 32, alpha: 0.5, beta: 1))
        XCTAssertTrue(BLAS.takesOwnKernel(transB: false, m: 10_000, n: 128, k: 32, alpha: 1, beta: 0))
        XCTAssertFalse(BLAS.takesOwnKernel(transB: false, m: 128, n: 256, k: 128, alpha: 1, beta: 0))
        XCTAssertFalse(BLAS.takesOwnKernel(transB: false, m: 4, n: 8, k: 600, alpha: 1, beta: 0))
    }

    func testSgemvMatchesSgemm() {
        let a: [Float] = [1, 2, 3, 4, 5, 6]  // 2×3
        let x: [Float] = [1, -1, 2]
        var y: [Float] = [0, 0]
        a.withUnsafeBufferPointer { pa in x.withUnsafeBufferPointer { px in y.withUnsafeMutableBufferPointer { py in
            BLAS.sgemv(m: 2, n: 3, a: pa.baseAddress!, lda: 3, x: px.baseAddress!, y: py.baseAddress!)
        } } }
        XCTAssertEqual(y, [5, 11])
    }
}
