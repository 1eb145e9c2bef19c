// The activations a hidden `Dense` or a `Conv1D` applies (Keras's names), and their derivatives
// written in terms of the output y = f(z), so backward needs only what forward kept.

import Foundation

public enum Nonlinearity: String, Codable, CaseIterable, Sendable {
    case linear, relu, tanh, sigmoid

    /// y = f(z), in place over `count` values.
    func apply(_ z: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .linear: return
        case .relu: for i in 0..<count where !(z[i] > 0) { z[i] = 0 }
        case .tanh: for i in 0..<count { z[i] = Foundation.tanh(z[i]) }
        case .sigmoid: for i in 0..<count { z[i] = exactSigmoid(z[i]) }
        }
    }

    /// dZ = dY ⊙ f′(z) from the outputs y (relu′ is 0 at 0, as Keras's); dZ may be dY.
    func backward(_ dY: UnsafePointer<Float>, outputs y: UnsafePointer<Float>, into dZ: UnsafeMutablePointer<Float>,
                  count: Int) {
        switch self {
        case .linear: if UnsafePointer(dZ) != dY { dZ.update(from: dY, count: count) }
        case .relu: for i in 0..<count { dZ[i] = y[i] > 0 ? dY[i] : 0 }
        case .tanh: for i in 0..<count { dZ[i] = dY[i] * (1 - y[i] * y[i]) }
        case .sigmoid: for i in 0..<count { dZ[i] = dY[i] * y[i] * (1 - y[i]) }
        }
    }
}
