// Initializers (Keras 3's distributions), seeding, and the parameter table.

@testable import RNN
import TestSupport
import XCTest

final class InitializerTests: XCTestCase {
    let config = ModelConfig(kind: .lstm, numWords: 1000, embedDim: 32, units: 32, layers: 2)

    private func tensor(_ model: Model, _ layer: String, _ index: Int) -> [Float] {
        Array(model.weights[model.parameter(layer: layer, index: index)!.range])
    }

    func testParameterTableKerasNamesShapesOffsets() {
        let table = config.parameterTable
        XCTAssertEqual(table.map(\.kerasPath), [
            "layers/embedding/vars/0",
            "layers/lstm/cell/vars/0", "layers/lstm/cell/vars/1", "layers/lstm/cell/vars/2",
            "layers/lstm_1/cell/vars/0", "layers/lstm_1/cell/vars/1", "layers/lstm_1/cell/vars/2",
            "layers/dense/vars/0", "layers/dense/vars/1",
        ])
        XCTAssertEqual(table.map(\.shape), [[1000, 32], [32, 128], [32, 128], [128], [32, 128], [32, 128], [128],
                                            [32, 1], [1]])
        var offset = 0
        for view in table {
            XCTAssertEqual(view.offset, offset, "\(view) is not contiguous")
            offset += view.count
        }
        XCTAssertEqual(config.parameterCount, offset)
        let gru = ModelConfig(kind: .gru, numWords: 10, embedDim: 4, units: 3).parameterTable
        XCTAssertEqual(gru.map(\.shape), [[10, 4], [4, 9], [3, 9], [2, 9], [3, 1], [1]])
        XCTAssertEqual(gru[1].layerName, "gru")
        let simple = ModelConfig(kind: .simpleRNN, numWords: 10, embedDim: 4, units: 3, layers: 2).parameterTable
        XCTAssertEqual(simple.map(\.layerName), ["embedding", "simple_rnn", "simple_rnn", "simple_rnn",
                                                 "simple_rnn_1", "simple_rnn_1", "simple_rnn_1", "dense", "dense"])
        XCTAssertEqual(simple.map(\.shape), [[10, 4], [4, 3], [3, 3], [3], [3, 3], [3, 3], [3], [3, 1], [1]])
        // The book's LSTM: 10000·32 + 32·128 + 32·128 + 128 + 32 + 1 = 328,353 parameters (Keras summary).
        XCTAssertEqual(ModelConfig().parameterCount, 328_353)
    }

    func testConfigValidation() {
        XCTAssertNoThrow(try ModelConfig().validate())
        XCTAssertThrowsError(try ModelConfig(units: 0).validate())
        XCTAssertThrowsError(try ModelConfig(numWords: -3).validate())
        XCTAssertThrowsError(try ModelConfig(layers: 1000).validate())
    }

    func testEmbeddingUniformBounds() {
        let e = tensor(Model(config: config, seed: 1), "embedding", 0).map(Double.init)
        XCTAssertLessThanOrEqual(maxAbs(e), 0.05)
        XCTAssertGreaterThan(maxAbs(e), 0.0499)                   // fills the range
        let mean = e.reduce(0, +) / Double(e.count)
        let variance = e.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(e.count)
        XCTAssertEqual(mean, 0, accuracy: 0.0005)                  // σ/√n ≈ 0.00016
        XCTAssertEqual(variance.squareRoot(), 0.05 / 3.0.squareRoot(), accuracy: 0.0005)
    }

    func testGlorotUniformLimit() {
        let model = Model(config: config, seed: 1)
        for (layer, fanIn, fanOut) in [("lstm", 32, 128), ("lstm_1", 32, 128), ("dense", 32, 1)] {
            let k = tensor(model, layer, 0).map(Double.init)
            let limit = (6.0 / Double(fanIn + fanOut)).squareRoot()
            XCTAssertLessThanOrEqual(maxAbs(k), limit, layer)
            if k.count > 1000 {
                XCTAssertGreaterThan(maxAbs(k), 0.99 * limit, layer)
                let variance = k.reduce(0) { $0 + $1 * $1 } / Double(k.count)
                XCTAssertEqual(variance, limit * limit / 3, accuracy: 0.1 * limit * limit / 3, layer)
            }
        }
    }

    /// Orthonormal rows of the wide (H, 4H) kernel; orthonormal rows and columns when square.
    func testOrthogonalRecurrentKernels() {
        func gram(_ m: [Float], rows: Int, cols: Int, ofRows: Bool) -> [Double] {
            let n = ofRows ? rows : cols
            var out = [Double](repeating: 0, count: n * n)
            for a in 0..<n {
                for b in 0..<n {
                    var s = 0.0
                    for k in 0..<(ofRows ? cols : rows) {
                        s += ofRows ? Double(m[a * cols + k]) * Double(m[b * cols + k])
                                    : Double(m[k * cols + a]) * Double(m[k * cols + b])
                    }
                    out[a * n + b] = s
                }
            }
            return out
        }
        func identity(_ n: Int) -> [Double] { (0..<(n * n)).map { $0 / n == $0 % n ? 1 : 0 } }
        let u = tensor(Model(config: config, seed: 1), "lstm", 1)
        assertClose(gram(u, rows: 32, cols: 128, ofRows: true), identity(32), rtol: 0, atol: 1e-6, "U·Uᵀ")
        let simple = ModelConfig(kind: .simpleRNN, numWords: 10, embedDim: 4, units: 16)
        let s = tensor(Model(config: simple, seed: 1), "simple_rnn", 1)
        assertClose(gram(s, rows: 16, cols: 16, ofRows: false), identity(16), rtol: 0, atol: 1e-6, "UᵀU")
        assertClose(gram(s, rows: 16, cols: 16, ofRows: true), identity(16), rtol: 0, atol: 1e-6, "U·Uᵀ")
        // Not trivially the identity or a permutation.
        XCTAssertLessThan(maxAbs(s.map(Double.init)), 0.95)
    }

    func testBiases() {
        let model = Model(config: config, seed: 1)
        let b = tensor(model, "lstm", 2)
        XCTAssertEqual(Array(b[0..<32]), [Float](repeating: 0, count: 32))
        XCTAssertEqual(Array(b[32..<64]), [Float](repeating: 1, count: 32))     // unit_forget_bias
        XCTAssertEqual(Array(b[64..<128]), [Float](repeating: 0, count: 64))
        XCTAssertEqual(tensor(model, "dense", 1), [0])
        let gru = Model(config: ModelConfig(kind: .gru, numWords: 10, embedDim: 4, units: 3), seed: 1)
        XCTAssertEqual(tensor(gru, "gru", 2), [Float](repeating: 0, count: 18))
    }

    func testSeeding() {
        let a = Model(config: config, seed: 42), b = Model(config: config, seed: 42), c = Model(config: config, seed: 43)
        XCTAssertEqual(a.weights, b.weights)
        for view in config.parameterTable where view.initializer != .zeros && !(view.initializer == .lstmBias(units: 32)) {
            XCTAssertNotEqual(Array(a.weights[view.range]), Array(c.weights[view.range]), view.kerasPath)
        }
        // Tensors draw from independent streams: the two LSTM kernels differ.
        XCTAssertNotEqual(tensor(a, "lstm", 0), tensor(a, "lstm_1", 0))
        // Re-initialising reproduces the weights.
        c.initializeWeights(seed: 42)
        XCTAssertEqual(c.weights, a.weights)
    }

    func testGeneratorIsFixedAcrossPlatforms() {
        // Pinned output: xoshiro256** seeded through SplitMix64 must never change, or checkpoints
        // and multi-process runs would stop agreeing with older runs.
        // (Values from an independent Python transcription of SplitMix64 + xoshiro256**.)
        var g = SeededGenerator(seed: 1)
        let first = (0..<3).map { _ in g.next() }
        XCTAssertEqual(first, [17_154_914_556_750_032_435, 15_481_925_071_032_317_162, 3_049_712_571_244_418_729])
        var other = SeededGenerator(seed: 1, stream: 1)
        XCTAssertNotEqual(other.next(), first[0])
        var n = SeededGenerator(seed: 5)
        let normals = (0..<20_000).map { _ in n.nextNormal() }
        let mean = normals.reduce(0, +) / 20_000
        let variance = normals.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 20_000
        XCTAssertEqual(mean, 0, accuracy: 0.03)
        XCTAssertEqual(variance, 1, accuracy: 0.05)
    }
}
