// Throughput figures, printed only when asked for (RNN_BENCH=1) and meaningful only in release:
//   RNN_BENCH=1 swift test -c release --scratch-path .build-rnn --filter RNNTests.BenchmarkTests

import Foundation
import RNN
import XCTest

final class BenchmarkTests: XCTestCase {
    func testBenchmarkPrint() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["RNN_BENCH"] == "1", "set RNN_BENCH=1 to run")
        let env = ProcessInfo.processInfo.environment
        let batch = Int(env["RNN_BENCH_BATCH"] ?? "") ?? 128
        let steps = Int(env["RNN_BENCH_STEPS"] ?? "") ?? 500
        let reps = Int(env["RNN_BENCH_REPS"] ?? "") ?? 7
        let kinds = (env["RNN_BENCH_KINDS"] ?? "simple-rnn,lstm,gru").split(separator: ",")
            .compactMap { ModelConfig.Kind(rawValue: String($0)) }
        for kind in kinds {
            for training in [true, false] {
                let r = ModelBenchmark.run(kind: kind, batch: batch, steps: steps, training: training,
                                           repetitions: reps)
                print(String(format: "bench %@ %@ B=%d T=%d: %.0f samples/s (median %.1f ms/batch, min %.1f)",
                             kind.rawValue, training ? "train" : "eval ", batch, steps, r.samplesPerSecond,
                             r.medianSeconds * 1000, (r.seconds.min() ?? .nan) * 1000))
            }
        }
    }
}
