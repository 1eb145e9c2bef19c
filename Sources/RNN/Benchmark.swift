// Throughput of the model math alone, on random tokens (no files, no MPI): `rnn-dist bench-model`.

import BLAS

/// Samples per second of training steps (forward + backward + RMSprop) or of forward-only
/// evaluation, for one process.
public enum ModelBenchmark {
    public struct Result: Sendable {
        public var config: ModelConfig
        public var batch: Int
        public var steps: Int
        public var training: Bool
        /// Seconds of each timed batch.
        public var seconds: [Double]
        /// The median batch time.
        public var medianSeconds: Double {
            let s = seconds.sorted()
            return s.isEmpty ? .nan : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
        }
        /// Batch size over the median batch time.
        public var samplesPerSecond: Double { Double(batch) / medianSeconds }
    }

    /// - Parameters:
    ///   - kind: cell; sizes default to the book's (V 10,000, E 32, H 32).
    ///   - batch: B, default 128; steps: T, default 500.
    ///   - training: time `TrainingLoop.step` with RMSprop (true) or `Model.evaluate` (false).
    ///   - repetitions: timed batches after `warmup` untimed ones.
    ///   - singleThreadBLAS: one OpenBLAS thread, as each MPI rank runs (default).
    public static func run(kind: ModelConfig.Kind, batch: Int = 128, steps: Int = 500,
                           numWords: Int = 10_000, embedDim: Int = 32, units: Int = 32, layers: Int = 1,
                           training: Bool = true, repetitions: Int = 5, warmup: Int = 1,
                           singleThreadBLAS: Bool = true, seed: UInt64 = 1) -> Result {
        if singleThreadBLAS { BLAS.useSingleThread() }
        let config = ModelConfig(kind: kind, numWords: numWords, embedDim: embedDim, units: units, layers: layers)
        let model = Model(config: config, seed: seed)
        let loop = TrainingLoop(model: model, optimizer: RMSprop(parameterCount: config.parameterCount))
        var generator = SeededGenerator(seed: seed, stream: 1_000)
        let x = (0..<(batch * steps)).map { _ in Int32(generator.nextIndex(numWords)) }
        let y = (0..<batch).map { _ in Float(generator.nextIndex(2)) }
        let data = Batch(x: x, y: y)
        var seconds: [Double] = []
        let clock = ContinuousClock()
        for r in 0..<(warmup + repetitions) {
            let elapsed = clock.measure {
                if training {
                    loop.step(data)
                } else {
                    _ = model.evaluate(x: x, y: y, rows: batch, batchSize: batch)
                }
            }
            if r >= warmup {
                seconds.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
            }
        }
        return Result(config: config, batch: batch, steps: steps, training: training, seconds: seconds)
    }
}
