import XCTest
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
