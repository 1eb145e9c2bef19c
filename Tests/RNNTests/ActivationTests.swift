// Accuracy of the fast activations the gate loops use, and agreement of their vector and scalar forms.

@testable import RNN
import Foundation
import XCTest

final class ActivationTests: XCTestCase {
    func testFastTanhAndSigmoidAccuracy() {
        var worstTanh = 0.0, worstSigmoid = 0.0
        var x = -30.0
        while x <= 30 {
            let xf = Float(x)
            worstTanh = max(worstTanh, abs(Double(fastTanh(xf)) - tanh(Double(xf))))
            worstSigmoid = max(worstSigmoid, abs(Double(fastSigmoid(xf)) - 1 / (1 + exp(-Double(xf)))))
            x += 0.000_37
        }
        // The rational approximation evaluated in Float peaks at 3.34e-7 (≈ 6 ulp of 1, near
        // |x| = 5.9); σ = (1 + tanh(x/2))/2 halves that.
        XCTAssertLessThan(worstTanh, 3.5e-7)
        XCTAssertLessThan(worstSigmoid, 2e-7)
        // Odd symmetry, saturation, and small arguments (relative accuracy near 0).
        XCTAssertEqual(fastTanh(Float(-0.3)), -fastTanh(Float(0.3)))
        XCTAssertEqual(fastTanh(Float(50)), 1, accuracy: 1e-7)
        XCTAssertEqual(fastSigmoid(Float(-50)), 0, accuracy: 1e-7)
        XCTAssertEqual(Double(fastTanh(Float(1e-4))), tanh(1e-4), accuracy: 1e-4 * 1e-6)
        XCTAssertTrue(fastTanh(Float.nan).isNaN)
        XCTAssertTrue(fastSigmoid(Float.nan).isNaN)
    }

    /// The SIMD8 form (rows' bodies) and the Float form (their remainders) give the same bits.
    func testVectorAndScalarFormsAgree() {
        let inputs: [Float] = [-40, -7.9, -5.9, -1, -1e-3, 0, 2e-5, 0.7, 3, 8.5, .infinity, -.infinity, .nan,
                               0.25, -0.25, 12]
        for start in stride(from: 0, to: inputs.count, by: 8) {
            let v = SIMD8<Float>(inputs[start..<(start + 8)])
            let t = fastTanh(v), s = fastSigmoid(v)
            for k in 0..<8 {
                let x = inputs[start + k]
                XCTAssertEqual(t[k].bitPattern, fastTanh(x).bitPattern, "tanh(\(x))")
                XCTAssertEqual(s[k].bitPattern, fastSigmoid(x).bitPattern, "σ(\(x))")
            }
        }
        XCTAssertEqual(fastTanh(Float.infinity), fastTanh(tanhClamp))
    }
}
