// End to end: every cell learns a tiny task ("does the sequence contain token 7?") with the real
// trainer at one rank, in a few seconds of the debug build.

import Foundation
@testable import RNN
import TestSupport
@testable import Training
import XCTest

final class LearningTests: XCTestCase {
    /// n sequences of T tokens from 1..<V without 7; half (label 1) get a 7 at a random position.
    private func containsSevenData(rows n: Int, steps T: Int, numWords V: Int, seed: UInt64) -> InMemoryRows {
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
        return InMemoryRows(x: x, y: y, maxlen: T)
    }

    private func learn(_ kind: ModelConfig.Kind, file: StaticString = #filePath, line: UInt = #line) throws {
        let V = 20, T = 12
        let train = containsSevenData(rows: 640, steps: T, numWords: V, seed: 1)   // 512 train + 128 validation
        let test = containsSevenData(rows: 256, steps: T, numWords: V, seed: 2)
        var c = TrainConfig(model: ModelConfig(kind: kind, numWords: V, embedDim: 8, units: 8), maxlen: T)
        c.batchSize = 32
        c.epochs = 40
        c.patience = 4
        c.learningRate = 0.01
        c.seed = 3
        c.dataRows = train.rowCount
        let tmp = try TempDir("learn")
        defer { tmp.remove() }
        let trainer = try Trainer(config: c, comm: .single(), files: RunFiles(directory: tmp.path), metadata: toyMetadata(c))
        let start = ContinuousClock.now
        try trainer.run(source: train)
        let accuracy = trainer.model.evaluate(x: test.x, y: test.y, rows: test.rowCount).accuracy
        print("\(kind): test accuracy \(accuracy) after \(trainer.history.records.count) epochs, \(ContinuousClock.now - start)")
        XCTAssertGreaterThanOrEqual(accuracy, 0.95, "\(kind) did not learn: \(trainer.history.records.map(\.valAcc))",
                                    file: file, line: line)
    }

    func testSimpleRNNLearnsContainsSeven() throws { try learn(.simpleRNN) }
    func testLSTMLearnsContainsSeven() throws { try learn(.lstm) }
    func testGRULearnsContainsSeven() throws { try learn(.gru) }
}
