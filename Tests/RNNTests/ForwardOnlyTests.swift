// Evaluation's forward-only recurrence (`RecurrentLayer.forwardOnly`: the LSTM's gate loop in C,
// `rd_lstm_forward_rows`, where the CPU has AVX2 and FMA) gives the bits of the training forward:
// every unit count the C loop splits differently (4, 3, 2, 1 vectors, none), the first layer's rows
// read in place and a second layer's projected sequence, both directions, blocks carried over, and
// the padding skipped.

@testable import RNN
import TestSupport
import XCTest

final class ForwardOnlyTests: XCTestCase {
    private let steps = 30, numWords = 13
    /// Row r: `leads[r]` padding tokens (0), then tokens in 1..<V.
    private let leads = [0, 29, 30, 5, 17, 12, 30, 1, 22, 8, 25, 3, 14, 2, 9, 0, 19]

    private func rows() -> [Int32] {
        var x = Fixtures.tokens(batch: leads.count, steps: steps, numWords: numWords - 1, seed: 5).map { $0 + 1 }
        for (r, lead) in leads.enumerated() {
            for t in 0..<lead { x[r * steps + t] = 0 }
        }
        return x
    }

    func testTheForwardOnlyLoopGivesTheTrainingForwardsBits() {
        var configs: [ModelConfig] = []
        for units in [8, 16, 24, 32, 40, 56, 5] {
            configs.append(ModelConfig(kind: .lstm, numWords: numWords, embedDim: 4, units: units))
        }
        configs += [ModelConfig(kind: .lstm, numWords: numWords, embedDim: 4, units: 16, layers: 2),
                    ModelConfig(kind: .lstm, numWords: numWords, embedDim: 4, units: 8, bidirectional: true),
                    ModelConfig(kind: .lstm, numWords: numWords, embedDim: 4, units: 24, classes: 3),
                    ModelConfig(kind: .gru, numWords: numWords, embedDim: 4, units: 8),
                    ModelConfig(kind: .simpleRNN, numWords: numWords, embedDim: 4, units: 8)]
        let x = rows()
        for config in configs {
            let model = Model(config: config, seed: 3)
            // Large enough weights that the gates saturate somewhere (the clamps) and vary elsewhere.
            model.weights = Fixtures.randomWeights(count: config.parameterCount, scale: 1.5, seed: 4)
            for (block, batchSize) in [(7, 4), (1_000, 16), (3, 17)] {
                model.inferenceBlockSteps = block
                func logits(fused: Bool) -> [UInt32] {
                    model.fusedInference = fused
                    let w = model.weights
                    model.weights = w                   // the tables again, from scratch
                    return model.logits(x: x, batch: leads.count, batchSize: batchSize).map(\.bitPattern)
                }
                let fused = logits(fused: true), training = logits(fused: false)
                XCTAssertEqual(fused, training, "\(config.label), blocks of \(block), chunks of \(batchSize)")
                XCTAssertFalse(fused.allSatisfy { $0 == fused[0] }, "\(config.label): the rows' logits differ")
            }
        }
    }

    /// The C loop runs wherever the CPU has AVX2 and FMA (as the release build's CPUs do), so the
    /// test above compares it, not the Swift loop with itself.
    func testTheCLoopRunsWhereTheCPUHasAVX2AndFMA() throws {
        #if arch(x86_64)
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = info.split(separator: "\n").first { $0.hasPrefix("flags") }.map { Set($0.split(separator: " ")) } ?? []
        XCTAssertEqual(LSTMLayer.gatesInC, flags.contains("avx2") && flags.contains("fma"))
        #else
        XCTAssertFalse(LSTMLayer.gatesInC)
        #endif
    }
}
