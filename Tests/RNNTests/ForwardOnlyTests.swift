// The gate loops in C (Sources/CGates, where the CPU has AVX2 and FMA) give the bits of the Swift
// loops: evaluation's forward-only recurrences (`RecurrentLayer.forwardOnly`: the LSTM's
// `rd_lstm_forward_rows`, the GRU's `rd_gru_forward_rows`) against the training forward, and the
// SimpleRNN's `rd_tanh_rows` in evaluation and in training. Every unit count the C loops split
// differently (4, 3, 2, 1 vectors, none), the first layer's rows read in place and a second layer's
// projected sequence, both directions, blocks carried over, and the padding skipped.

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
        for kind in [ModelConfig.Kind.lstm, .gru, .simpleRNN] {
            for units in [8, 16, 24, 32, 40, 56, 5] {
                configs.append(ModelConfig(kind: kind, numWords: numWords, embedDim: 4, units: units))
            }
            configs += [ModelConfig(kind: kind, numWords: numWords, embedDim: 4, units: 16, layers: 2),
                        ModelConfig(kind: kind, numWords: numWords, embedDim: 4, units: 8, bidirectional: true),
                        ModelConfig(kind: kind, numWords: numWords, embedDim: 4, units: 24, classes: 3)]
        }
        // The reset-before GRU keeps its Swift loop: compared with itself, as a check of the switch.
        configs.append(ModelConfig(kind: .gru, numWords: numWords, embedDim: 4, units: 16, resetAfter: false))
        let x = rows()
        for config in configs {
            let model = Model(config: config, seed: 3)
            // Large enough weights that the gates saturate somewhere (the clamps) and vary elsewhere.
            model.weights = Fixtures.randomWeights(count: config.parameterCount, scale: 1.5, seed: 4)
            for (block, batchSize) in [(7, 4), (1_000, 16), (3, 17)] {
                model.inferenceBlockSteps = block
                func logits(fused: Bool) -> [UInt32] {
                    model.fusedInference = fused
                    model.gateLoopsInC = fused
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

    /// SimpleRNN's training forward runs its gate loop in C too: the same loss and gradients, to the
    /// bit, as the Swift loop's (the LSTM's and the GRU's training loops stay in Swift: compared as a
    /// check of the switch). Dropout and recurrent dropout on, 1 and 2 layers, both directions.
    func testTrainingGivesTheSameBitsWithTheGateLoopsInC() {
        var configs: [ModelConfig] = []
        for units in [8, 16, 40, 56, 5] {
            configs.append(ModelConfig(kind: .simpleRNN, numWords: numWords, embedDim: 4, units: units))
        }
        configs += [ModelConfig(kind: .simpleRNN, numWords: numWords, embedDim: 4, units: 16, layers: 2, bidirectional: true),
                    ModelConfig(kind: .simpleRNN, numWords: numWords, embedDim: 4, units: 24, dropout: 0.3, recurrentDropout: 0.4),
                    ModelConfig(kind: .simpleRNN, numWords: numWords, embedDim: 4, units: 8, layers: 2, classes: 3),
                    ModelConfig(kind: .lstm, numWords: numWords, embedDim: 4, units: 16),
                    ModelConfig(kind: .gru, numWords: numWords, embedDim: 4, units: 16, bidirectional: true)]
        let x = rows()
        for config in configs {
            let model = Model(config: config, seed: 3)
            model.weights = Fixtures.randomWeights(count: config.parameterCount, scale: 1.5, seed: 4)
            let labels = (0..<leads.count).map { Float($0 % config.classCount) }   // class indices (0/1 for one logit)
            func step(inC: Bool) -> (loss: UInt64, gradients: [UInt32]) {
                model.gateLoopsInC = inC
                model.zeroGradients()
                let stats = model.accumulateGradients(x: x, y: labels, batch: leads.count,
                                                      dropout: DropoutKey(seed: 7, epoch: 2, positions: (0..<leads.count).map { 3 * $0 + 1 }))
                return (stats.lossSum.bitPattern, model.gradients.map(\.bitPattern))
            }
            let c = step(inC: true), swift = step(inC: false)
            XCTAssertEqual(c.loss, swift.loss, "\(config.label): loss")
            XCTAssertEqual(c.gradients, swift.gradients, "\(config.label): gradients")
            XCTAssertTrue(c.gradients.contains { $0 != 0 }, "\(config.label): some gradient is nonzero")
        }
    }

    /// The C loops run wherever the CPU has AVX2 and FMA (as the release build's CPUs do), so the
    /// test above compares it, not the Swift loop with itself.
    func testTheCLoopsRunWhereTheCPUHasAVX2AndFMA() throws {
        #if arch(x86_64)
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = info.split(separator: "\n").first { $0.hasPrefix("flags") }.map { Set($0.split(separator: " ")) } ?? []
        XCTAssertEqual(gateLoopsSupported, flags.contains("avx2") && flags.contains("fma"))
        #else
        XCTAssertFalse(gateLoopsSupported)
        #endif
    }
}
