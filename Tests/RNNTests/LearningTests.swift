// End to end: every cell learns a tiny task ("does the sequence contain token 7?") with the real
// training loop, in a few seconds of the debug build.

import RNN
import XCTest

final class LearningTests: XCTestCase {
    /// n sequences of T tokens from 1..<V without 7; half (label 1) get a 7 at a random position.
    private func containsSevenData(rows n: Int, steps T: Int, numWords V: Int, seed: UInt64) -> (x: [Int32], y: [Float]) {
        var g = SeededGenerator(seed: seed, stream: 5)
        var x: [Int32] = [], y: [Float] = []
        for r in 0..<n {
            var row = (0..<T).map { _ -> Int32 in
                var t = 7
                while t == 7 { t = 1 + g.nextIndex(V - 1) }
                return Int32(t)
            }
            let label: Float = r % 2 == 0 ? 1 : 0
            if label == 1 { row[g.nextIndex(T)] = 7 }
            x += row
            y.append(label)
        }
        return (x, y)
    }

    private func learn(_ kind: ModelConfig.Kind, file: StaticString = #filePath, line: UInt = #line) {
        let V = 20, T = 12, B = 32
        let config = ModelConfig(kind: kind, numWords: V, embedDim: 8, units: 8)
        let train = containsSevenData(rows: 512, steps: T, numWords: V, seed: 1)
        let test = containsSevenData(rows: 256, steps: T, numWords: V, seed: 2)
        let loop = TrainingLoop(model: Model(config: config, seed: 3),
                                optimizer: RMSprop(parameterCount: config.parameterCount, learningRate: 0.01))
        let batches = stride(from: 0, to: 512, by: B).map {
            Batch(x: Array(train.x[($0 * T)..<(($0 + B) * T)]), y: Array(train.y[$0..<($0 + B)]))
        }
        var accuracy = 0.0, epochs = 0
        let start = ContinuousClock.now
        while epochs < 40 {
            loop.fit(batches: batches)
            epochs += 1
            accuracy = loop.model.evaluate(x: test.x, y: test.y, rows: 256).accuracy
            if accuracy >= 0.97 { break }
        }
        print("\(kind): test accuracy \(accuracy) after \(epochs) epochs, \(ContinuousClock.now - start)")
        XCTAssertGreaterThanOrEqual(accuracy, 0.95, "\(kind) did not learn", file: file, line: line)
    }

    func testSimpleRNNLearnsContainsSeven() { learn(.simpleRNN) }
    func testLSTMLearnsContainsSeven() { learn(.lstm) }
    func testGRULearnsContainsSeven() { learn(.gru) }
}
