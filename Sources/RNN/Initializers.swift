// Keras 3's weight initializers, drawn from `SeededGenerator` (so they match Keras in distribution,
// not bit for bit — Keras's own random stream is TensorFlow's).

import Foundation

/// How one parameter tensor starts. Shapes are Keras's: 2-D kernels are (fan_in, fan_out).
public enum Initializer: Sendable, Equatable {
    /// All zeros (Keras `zeros`: every bias except the LSTM's).
    case zeros
    /// U(−limit, limit) (Keras `RandomUniform(-0.05, 0.05)` is the `Embedding` default).
    case uniform(limit: Float)
    /// U(−l, l) with l = √(6 / (fan_in + fan_out)) of a 2-D shape (Keras `glorot_uniform`).
    case glorotUniform
    /// Keras `Orthogonal(gain)`: QR of a normal matrix of shape (max(r,c), min(r,c)), columns' signs
    /// fixed by diag(R) > 0, transposed when rows < cols. Rows or columns, whichever are fewer, come
    /// out orthonormal (the recurrent kernel (H, kH) has orthonormal rows: U·Uᵀ = I).
    case orthogonal(gain: Float)
    /// Zeros with the forget-gate block [H, 2H) set to 1 (Keras LSTM `unit_forget_bias=True`).
    case lstmBias(units: Int)

    /// Writes the initial values of a tensor of `shape` into `out` (row-major).
    func fill(_ out: UnsafeMutableBufferPointer<Float>, shape: [Int], generator g: inout SeededGenerator) {
        let count = shape.reduce(1, *)
        precondition(out.count == count, "initializer: buffer holds \(out.count), shape \(shape) needs \(count)")
        switch self {
        case .zeros:
            out.update(repeating: 0)
        case .uniform(let limit):
            for i in 0..<count { out[i] = Float(g.nextUniform(-Double(limit), Double(limit))) }
        case .glorotUniform:
            // Keras's fans: a convolution kernel (k, D, F) has fan_in k·D and fan_out k·F.
            precondition(shape.count >= 2, "glorot_uniform needs a 2-D or larger shape, got \(shape)")
            let receptive = shape.dropLast(2).reduce(1, *)
            let fanIn = shape[shape.count - 2] * receptive, fanOut = shape[shape.count - 1] * receptive
            let limit = (6.0 / Double(fanIn + fanOut)).squareRoot()
            for i in 0..<count { out[i] = Float(g.nextUniform(-limit, limit)) }
        case .orthogonal(let gain):
            precondition(shape.count == 2, "orthogonal needs a 2-D shape, got \(shape)")
            let q = Self.orthogonal(rows: shape[0], cols: shape[1], generator: &g)
            for i in 0..<count { out[i] = Float(Double(gain) * q[i]) }
        case .lstmBias(let units):
            precondition(count == 4 * units, "LSTM bias must hold 4H = \(4 * units) values, shape \(shape)")
            out.update(repeating: 0)
            for j in units..<(2 * units) { out[j] = 1 }
        }
    }

    /// A (rows × cols) row-major matrix with orthonormal rows (rows ≤ cols) or columns (rows ≥ cols).
    ///
    /// Gram–Schmidt in Double, done twice per column ("twice is enough", Giraud et al. 2005) so the
    /// result is orthonormal to rounding even for square matrices. Gram–Schmidt's R has a positive
    /// diagonal, which is exactly Keras's sign correction `q *= sign(diag(r))`.
    static func orthogonal(rows: Int, cols: Int, generator g: inout SeededGenerator) -> [Double] {
        let n = max(rows, cols), m = min(rows, cols)
        // a: (n × m) row-major normal matrix, as Keras draws it; q overwrites it column by column.
        var a = [Double](repeating: 0, count: n * m)
        for i in 0..<(n * m) { a[i] = g.nextNormal() }
        for j in 0..<m {
            for _ in 0..<2 {
                for k in 0..<j {
                    var dot = 0.0
                    for i in 0..<n { dot += a[i * m + k] * a[i * m + j] }
                    for i in 0..<n { a[i * m + j] -= dot * a[i * m + k] }
                }
            }
            var norm = 0.0
            for i in 0..<n { norm += a[i * m + j] * a[i * m + j] }
            norm = norm.squareRoot()
            for i in 0..<n { a[i * m + j] /= norm }
        }
        if rows >= cols { return a }            // (n × m) = (rows × cols)
        var t = [Double](repeating: 0, count: n * m)
        for i in 0..<n { for j in 0..<m { t[j * n + i] = a[i * m + j] } }
        return t                                // (m × n) = (rows × cols)
    }
}
