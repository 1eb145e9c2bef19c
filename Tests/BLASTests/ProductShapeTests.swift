import XCTest
@testable import BLAS

/// The `floor` benchmark's counter: every product the code performs, by shape, only while counting.
final class ProductShapeTests: XCTestCase {
    func testCountsEveryProductByShapeOnlyWhileCounting() {
        let a = [Float](repeating: 1, count: 6 * 4), b = [Float](repeating: 1, count: 4 * 5)
        var c = [Float](repeating: 0, count: 6 * 5), y = [Float](repeating: 0, count: 6)
        BLAS.sgemm(m: 6, n: 5, k: 4, a: a, b: b, c: &c)                      // not counted
        XCTAssertNil(BLAS.counts)
        BLAS.startCounting()
        for _ in 0 ..< 3 { BLAS.sgemm(m: 6, n: 5, k: 4, a: a, b: b, c: &c) }
        var d = [Float](repeating: 0, count: 4 * 5)
        BLAS.sgemm(transA: true, m: 4, n: 5, k: 6, a: a, b: [Float](repeating: 1, count: 6 * 5), beta: 1, c: &d)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                y.withUnsafeMutableBufferPointer { py in
                    BLAS.sgemv(m: 6, n: 4, a: pa.baseAddress!, lda: 4, x: pb.baseAddress!, y: py.baseAddress!)
                }
            }
        }
        let counts = BLAS.stopCounting()
        XCTAssertNil(BLAS.counts)
        let plain = ProductShape(gemv: false, transA: false, transB: false, m: 6, n: 5, k: 4, lda: 4, ldb: 5, ldc: 5, betaZero: true)
        let transposed = ProductShape(gemv: false, transA: true, transB: false, m: 4, n: 5, k: 6, lda: 4, ldb: 5, ldc: 5, betaZero: false)
        let gemv = ProductShape(gemv: true, transA: false, transB: false, m: 6, n: 4, k: 1, lda: 4, ldb: 1, ldc: 1, betaZero: true)
        XCTAssertEqual(counts, [plain: 3, transposed: 1, gemv: 1])
        XCTAssertEqual(plain.flop, 2 * 6 * 5 * 4)
        XCTAssertEqual(gemv.flop, 2 * 6 * 4)
        XCTAssertEqual(c[0], 4)
    }

    /// Timing a shape runs it (on buffers of its strides, a gemv too) and gives a positive, finite
    /// time per call (how long is the machine's business, not a test's).
    func testTimingAShape() {
        for s in [ProductShape(gemv: false, transA: true, transB: true, m: 16, n: 8, k: 4, lda: 20, ldb: 9, ldc: 10, betaZero: false),
                  ProductShape(gemv: true, transA: true, transB: false, m: 7, n: 3, k: 1, lda: 5, ldb: 1, ldc: 1, betaZero: true)] {
            let t = BLAS.secondsPerCall(s, budget: 0.005)
            XCTAssertTrue(t.isFinite && t > 0, "\(s): \(t)")
        }
    }
}
