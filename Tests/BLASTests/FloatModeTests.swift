import XCTest
import Foundation
@testable import BLAS
import TestSupport

/// Flush-to-zero / denormals-are-zero: off by default, on after `flushSubnormalsToZero`, and then
/// a product whose exact value is subnormal comes out as 0 (also inside sgemm), on the thread
/// that set it and on threads it creates.
final class FloatModeTests: XCTestCase {
    /// Runs `body` on a new thread (so the XCTest thread's mode is left as it was) and returns its result.
    private func onNewThread<T>(_ body: @escaping @Sendable () -> T) -> T {
        nonisolated(unsafe) var result: T?
        let done = DispatchSemaphore(value: 0)
        let t = Thread { result = body(); done.signal() }
        t.start()
        done.wait()
        return result!
    }

    func testSubnormalsAreFlushedOnlyAfterTheModeIsSet() {
        // The operands come from an array so the compiler cannot fold the products.
        let operands: [Float] = [1e-20, 1e-20]
        let before: (Bool, Float) = onNewThread { (FloatMode.flushesSubnormals, operands[0] * operands[1]) }
        XCTAssertFalse(before.0, "a new thread starts in IEEE mode")
        XCTAssertGreaterThan(before.1, 0, "without the mode, 1e-20 · 1e-20 is the subnormal 1e-40")
        XCTAssertLessThan(before.1, Float.leastNormalMagnitude)

        let after: (Bool, Bool, Float, Float, Float, Bool) = onNewThread {
            let supported = FloatMode.flushSubnormalsToZero()
            let product = operands[0] * operands[1]
            // A subnormal input counts as zero (DAZ): 1e-40 · 1e30 is 1e-10 in IEEE mode.
            let subnormal = Float(bitPattern: 0x0001_16C2)   // ≈ 1e-40
            let scaled = [subnormal][0] * [Float(1e30)][0]
            // The same through BLAS: (1×1)·(1×1).
            var c: [Float] = [7]
            BLAS.sgemm(m: 1, n: 1, k: 1, a: [operands[0]], b: [operands[1]], c: &c)
            // A thread created by this one inherits the mode.
            let inherited: Bool = {
                nonisolated(unsafe) var v = false
                let done = DispatchSemaphore(value: 0)
                Thread { v = FloatMode.flushesSubnormals; done.signal() }.start()
                done.wait()
                return v
            }()
            return (supported, FloatMode.flushesSubnormals, product, scaled, c[0], inherited)
        }
        #if arch(x86_64) || arch(arm64)
        XCTAssertTrue(after.0, "x86-64 and arm64 have a flush-to-zero mode")
        XCTAssertTrue(after.1)
        XCTAssertEqual(after.2, 0, "1e-20 · 1e-20 flushed to 0")
        #if arch(x86_64)
        XCTAssertEqual(after.3, 0, "a subnormal operand is read as 0 (DAZ)")
        #endif
        XCTAssertEqual(after.4, 0, "sgemm's subnormal product flushed to 0")
        XCTAssertTrue(after.5, "threads created after the mode was set inherit it")
        #endif
    }

    /// Every command sets the mode at start-up (checked through the hidden selftest command).
    func testTheExecutableRunsWithTheModeSet() throws {
        guard FileManager.default.isExecutableFile(atPath: Subprocess.rnnDist) else {
            throw XCTSkip("rnn-dist is not built at \(Subprocess.rnnDist)")
        }
        let r = try Subprocess.rnnDist(["selftest", "float-mode", "1e-20"])
        XCTAssertEqual(r.status, 0, r.stderr)
        #if arch(x86_64) || arch(arm64)
        XCTAssertTrue(r.stdout.hasPrefix("flush_subnormals=1 product=0.0 blas_kernel="), r.stdout)
        #endif
    }
}
