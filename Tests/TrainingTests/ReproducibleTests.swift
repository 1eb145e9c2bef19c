import XCTest
import Foundation
@testable import MPI
@testable import RNN
import TestSupport
@_spi(Testing) @testable import Training

/// `--reproducible`: the same bits at any rank count. The runs compare files bit for bit (weights,
/// optimizer slots, history without its clocks); the unit tests check the fixed-point sums' error
/// bound, their independence of order, and that a chunk's gradient is the same bits whatever the
/// model computed before it (what makes the chunk's rank irrelevant).
final class ReproducibleTests: ToyIMDBTestCase {
    /// `common` (320 rows, batch 32, 8 steps an epoch) in chunks of 8: four chunks a step.
    var flags: [String] { common + ["--reproducible", "--chunk-rows", "8"] }

    func train(_ n: Int, _ dir: String, _ extra: [String]) throws -> ProcessResult {
        let r = try Subprocess.mpiRun(n, ["train", "--data", dataset, "--run-dir", tmp.file(dir)] + flags + extra)
        XCTAssertEqual(r.status, 0, "\(dir): \(r.stderr)")
        return r
    }

    /// What must be the same bits: the weights, the optimizer's slots and step, and the history
    /// without its clocks.
    struct Outcome: Equatable {
        var weights: [Float]
        var slots: [[Float]]
        var iterations: Int
        var history: [EpochRecord]
    }

    func outcome(_ dir: String) throws -> Outcome {
        let c = try Checkpoint.read(from: tmp.file("\(dir)/checkpoint.h5"))
        let history = try HistoryFile.read(from: tmp.file("\(dir)/history.h5")).0.records.map {
            var r = $0; r.seconds = 0; r.samplesPerSecond = 0; r.mpiShare = 0; return r
        }
        XCTAssertEqual(try WeightsFile.read(from: tmp.file("\(dir)/model.weights.h5")).weights, c.weights)
        return Outcome(weights: c.weights, slots: c.slots.map(\.values), iterations: c.iterations, history: history)
    }

    /// Every cell, a bidirectional LSTM with both dropouts and a stack: -n 1, 2 and 4 (and 3, which
    /// divides no chunk count evenly) end two epochs with the same bits.
    func testEveryCellIsBitIdenticalAtOneTwoThreeAndFourRanks() throws {
        let models: [(String, [String])] = [
            ("simple-rnn", ["--model", "simple-rnn"]), ("lstm", ["--model", "lstm"]), ("gru", ["--model", "gru"]),
            ("bilstm-dropout", ["--model", "lstm", "--bidirectional", "--dropout", "0.2", "--recurrent-dropout", "0.2"]),
            ("gru-stack", ["--model", "gru", "--layers", "2", "--dropout", "0.1"]),
        ]
        for (name, model) in models {
            _ = try train(1, "\(name)-1", model + ["--epochs", "2"])
            let one = try outcome("\(name)-1")
            XCTAssertEqual(one.iterations, 16)
            for n in name == "lstm" ? [2, 3, 4] : [2, 4] {
                _ = try train(n, "\(name)-\(n)", model + ["--epochs", "2"])
                XCTAssertEqual(try outcome("\(name)-\(n)"), one, "\(name): -n \(n) differs from -n 1")
            }
        }
    }

    /// The dense and touched-rows exchanges, accumulation (4 × 8 is the step of 32) and a frozen
    /// embedding: the same bits at -n 1 and -n 2, and the same reported bytes as the wire holds.
    func testExchangesAccumulationAndFrozenEmbeddingKeepTheBits() throws {
        _ = try train(1, "one", ["--epochs", "1"])
        let one = try outcome("one")
        let touched = try train(2, "touched", ["--epochs", "1"])
        XCTAssertEqual(try outcome("touched"), one)
        _ = try train(2, "dense", ["--epochs", "1", "--dense-exchange"])
        XCTAssertEqual(try outcome("dense"), one)
        // 60 row flags and 1 + 4 exponents, then 8-byte integers for the rows and the rest.
        XCTAssertTrue(touched.stdout.contains("embedding rows"), touched.stdout)
        let accumulated = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("acc")] +
                                                flags.map { $0 == "32" ? "8" : $0 } + ["--accumulate", "4", "--epochs", "1"])
        XCTAssertEqual(accumulated.status, 0, accumulated.stderr)
        XCTAssertTrue(accumulated.stdout.contains("global batch 32 (4 × 8)"), accumulated.stdout)
        XCTAssertEqual(try outcome("acc").weights, one.weights)
        _ = try train(1, "frozen-1", ["--epochs", "1", "--freeze-embeddings"])
        _ = try train(2, "frozen-2", ["--epochs", "1", "--freeze-embeddings"])
        XCTAssertEqual(try outcome("frozen-2"), try outcome("frozen-1"))
    }

    /// A run stopped after 3 steps at -n 2 and resumed at -n 4 (and one stopped at -n 4, resumed at
    /// -n 1) ends with the uninterrupted -n 1 run's bits.
    func testResumeAtAnotherRankCountIsBitIdentical() throws {
        _ = try train(1, "full", ["--epochs", "2"])
        let full = try outcome("full")
        for (first, then) in [(2, 4), (4, 1)] {
            let dir = "stop-\(first)-\(then)"
            let stop = try Subprocess.mpiRun(first, ["train", "--data", dataset, "--run-dir", tmp.file(dir)] + flags +
                                             ["--epochs", "2", "--stop-after-batches", "3"])
            XCTAssertEqual(stop.status, 4, stop.stderr)
            _ = try train(then, dir, ["--epochs", "2", "--resume", tmp.file("\(dir)/checkpoint.h5")])
            XCTAssertEqual(try outcome(dir), full, "stopped at -n \(first), resumed at -n \(then)")
        }
    }

    /// A NaN in one rank's chunk sums (the injected fault) stops every rank before the update, as
    /// without the option: one line naming epoch and batch, exit 3, the previous step's checkpoint.
    /// At -n 4 with 4 chunks of 8 rows rank 3 holds the last chunk; at -n 5 rank 0 holds none.
    func testANonFiniteChunkStopsEveryRankAtThatStep() throws {
        for (n, fault) in [(4, "nan@3:3"), (5, "inf@0:3")] {
            let dir = tmp.file("fault-\(n)")
            let r = try Subprocess.mpiRun(n, ["train", "--data", dataset, "--run-dir", dir] + flags +
                                          ["--epochs", "1", "--checkpoint-every", "1", "--inject-fault=\(fault)"])
            XCTAssertEqual(r.status, 3, r.stderr)
            let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("rnn-dist: error:") }
            XCTAssertEqual(lines.count, 1, r.stderr)
            XCTAssertTrue(lines.first?.contains("gradient became non-finite at epoch 1, batch 3;") ?? false, r.stderr)
            XCTAssertEqual(try Checkpoint.read(from: dir + "/checkpoint.h5").iterations, 2)
        }
    }

    /// Bad flags exit 64 before any work (as every flag error): bf16 transport, --chunk-rows alone or
    /// out of range. A resume that switches the mode or the chunk: one line, exit 2.
    func testRefusedCombinations() throws {
        try assertTrainRefuses([(["--reproducible", "--allreduce-dtype", "bf16"], "--reproducible needs --allreduce-dtype fp32"),
                                (["--chunk-rows", "8"], "--chunk-rows needs --reproducible"),
                                (["--reproducible", "--chunk-rows", "0"], "--chunk-rows 0 is outside 1…4096")], in: tmp)
        let stop = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("stop")] + flags + ["--stop-after-batches", "1"])
        XCTAssertEqual(stop.status, 4, stop.stderr)
        let checkpoint = tmp.file("stop/checkpoint.h5")
        for (args, says) in [(common, "--reproducible = on (--chunk-rows 8), this run asks for off"),
                             (common + ["--reproducible"], "--chunk-rows = 8, this run asks for 16"),
                             (common + ["--reproducible", "--chunk-rows", "16"], "--chunk-rows = 8, this run asks for 16")] {
            let r = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("stop"), "--resume", checkpoint] + args)
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.contains("checkpoint was written with " + says), r.stderr)
            XCTAssertEqual(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count, 1, r.stderr)
        }
    }
}

/// The fixed-point arithmetic and the per-chunk independence, in process.
final class ReproducibleSumTests: XCTestCase {
    func testHeadroomAndExponentBounds() {
        XCTAssertEqual([1, 2, 3, 4, 5, 8, 9, 16, 17].map { ReproducibleExchange.headroomBits(chunks: $0) }, [0, 1, 2, 2, 3, 3, 4, 4, 5])
        var g = SeededGenerator(seed: 9)
        for _ in 0 ..< 1000 {
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: g.next()) & 0x7f7f_ffff)   // any finite magnitude
            let values = [x, -x / 3, 0]
            let e = values.withUnsafeBufferPointer { ReproducibleExchange.exponent($0) }
            let bound = Double(sign: .plus, exponent: Int(e) - 126, significand: 1)
            XCTAssertLessThan(Double(x), bound)
            if e > 0 { XCTAssertGreaterThanOrEqual(Double(x), bound / 2) }
            // A statistic's bound; beyond Float's range it counts as non-finite (255).
            let statistic = ReproducibleExchange.exponent(of: Double(x) * 7.5)
            if Double(x) * 7.5 < Double(Float.greatestFiniteMagnitude) {
                XCTAssertLessThan(Double(x) * 7.5, Double(sign: .plus, exponent: Int(statistic) - 126, significand: 1))
            } else {
                XCTAssertEqual(statistic, 255)
            }
        }
        XCTAssertEqual([Float.infinity].withUnsafeBufferPointer { ReproducibleExchange.exponent($0) }, 255)
        XCTAssertEqual([-Float.nan].withUnsafeBufferPointer { ReproducibleExchange.exponent($0) }, 255)
        XCTAssertEqual(ReproducibleExchange.exponent(of: .infinity), 255)
        XCTAssertEqual(ReproducibleExchange.exponent(of: .nan), 255)
    }

    /// The integer conversion is `fixed` (round(x · 2^s), ties to even) for every kind of float:
    /// normal and subnormal, halfway cases, shifts left and right, values that round to 0.
    func testTheIntegerConversionRoundsAsTheDoubleFormula() {
        var g = SeededGenerator(seed: 12)
        var values: [Float] = [0, -0, 1, -1, 0.5, 1.5, 2.5, -2.5, 3.5, Float.leastNonzeroMagnitude, -Float.leastNormalMagnitude,
                               Float.greatestFiniteMagnitude, 0x1p-149 * 3, 0x1.000002p0, 0x1.800002p0]
        for _ in 0 ..< 20_000 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: g.next()) & 0xff7f_ffff)) }
        for s in [-150, -128, -40, -24, -23, -1, 0, 1, 23, 24, 30, 62 - 24, 100, 149, 188] {
            let scale = Double(sign: .plus, exponent: s, significand: 1)
            for x in values {
                // The exact value x · 2^s in Double (x's significand and exponent, so subnormals are
                // exact whatever the FP mode), where it stays an integer below 2^62.
                var out: Int64 = 0
                withUnsafePointer(to: x) { ReproducibleExchange.add($0, count: 1, scaleExponent: s, into: &out) }
                if x == 0 { XCTAssertEqual(out, 0); continue }
                let exact = Double(sign: x.sign, exponent: Int(x.exponent) + s, significand: Double(x.significand))
                guard abs(exact) <= 0x1p62 else { continue }
                XCTAssertEqual(out, Int64(exact.rounded(.toNearestOrEven)), "x \(x) (bits \(String(x.bitPattern, radix: 16))), s \(s)")
                if !x.isSubnormal { XCTAssertEqual(out, ReproducibleExchange.fixed(Double(x), scale)) }
            }
        }
    }

    /// K chunk vectors of values spanning 2⁻⁴⁰…2⁴⁰ of their tensor's largest, and the extremes of
    /// Float: added in any order the integers are the same; back in Float each sum is within the
    /// stated bound of the exact (Double) sum.
    func testFixedPointSumsAreOrderFreeAndWithinTheirBound() {
        var g = SeededGenerator(seed: 4)
        for (k, magnitude) in [(8, Float(1)), (3, Float(1e-30)), (16, Float(1e30)), (8, Float.greatestFiniteMagnitude / 8)] {
            let n = 200
            let chunks: [[Float]] = (0 ..< k).map { _ in
                (0 ..< n).map { _ in
                    let u = Float(g.next() % 1_000_000) / 1_000_000 - 0.5
                    return u * magnitude * Float(pow(2.0, -Double(g.next() % 40)))
                }
            }
            let e = chunks.map { c in c.withUnsafeBufferPointer { ReproducibleExchange.exponent($0) } }.max()!
            let headroom = ReproducibleExchange.headroomBits(chunks: k)
            let scale = ReproducibleExchange.scale(exponent: e, headroom: headroom)
            func sum(_ order: [Int]) -> [Int64] {
                var out = [Int64](repeating: 0, count: n)
                for c in order {
                    chunks[c].withUnsafeBufferPointer {
                        ReproducibleExchange.add($0.baseAddress!, count: n, scaleExponent: ReproducibleExchange.scaleExponent(exponent: e, headroom: headroom),
                                                 into: &out)
                    }
                }
                return out
            }
            let forward = sum(Array(0 ..< k))
            XCTAssertEqual(sum(Array((0 ..< k).reversed())), forward)
            XCTAssertEqual(sum((0 ..< k).shuffled(using: &g)), forward)
            var result = [Float](repeating: 0, count: n)
            ReproducibleExchange.restore(forward, count: n, inverse: 1 / scale, into: &result)
            let unit = 1 / scale        // one integer step, in the values' units
            for i in 0 ..< n {
                let exact = chunks.reduce(0.0) { $0 + Double($1[i]) }
                let fixedError = Double(k) * unit / 2
                let floatSpacing = Double(result[i].ulp)
                XCTAssertLessThanOrEqual(abs(Double(result[i]) - exact), fixedError + floatSpacing,
                                         "k \(k), magnitude \(magnitude), i \(i)")
                // The fixed-point error alone is far below Float's spacing at the largest value.
                XCTAssertLessThan(fixedError, Double(magnitude.ulp) * 0x1p-30)
            }
        }
    }

    /// A chunk's gradient is the same bits in a fresh model and after another chunk, with the sparse
    /// zeroing between them: for every cell, bidirectional with dropout, and a stack. (The ranks
    /// compute different numbers of chunks before a given one; this is why it does not matter.)
    func testAChunksGradientDoesNotDependOnWhatRanBeforeIt() {
        let presets: [ModelConfig.Preset] = [
            .init(kind: .simpleRNN, numWords: 40, embedDim: 5, units: 6),
            .init(kind: .lstm, numWords: 40, embedDim: 5, units: 6),
            .init(kind: .gru, numWords: 40, embedDim: 5, units: 6),
            .init(kind: .lstm, numWords: 40, embedDim: 5, units: 6, bidirectional: true, dropout: 0.2, recurrentDropout: 0.3),
            .init(kind: .gru, numWords: 40, embedDim: 5, units: 6, layers: 2, dropout: 0.1),
        ]
        var g = SeededGenerator(seed: 8)
        let t = 9, rows = 8
        func chunk() -> ([Int32], [Float]) {
            ((0 ..< rows * t).map { _ in Int32(g.next() % 40) }, (0 ..< rows).map { _ in Float(g.next() % 2) })
        }
        for preset in presets {
            let (xa, ya) = chunk(), (xb, yb) = chunk()
            let keyA = DropoutKey(seed: 3, epoch: 1, positions: Array(8 ..< 16)), keyB = DropoutKey(seed: 3, epoch: 1, positions: Array(0 ..< 8))
            let fresh = Model(config: preset.config, seed: 2)
            fresh.zeroGradients()
            let statsFresh = fresh.accumulateGradients(x: xa, y: ya, batch: rows, dropout: keyA)
            let after = Model(config: preset.config, seed: 2)
            after.zeroGradients()
            after.accumulateGradients(x: xb, y: yb, batch: rows, dropout: keyB)
            after.zeroAccumulatedGradients()
            let statsAfter = after.accumulateGradients(x: xa, y: ya, batch: rows, dropout: keyA)
            XCTAssertEqual(after.gradients.map(\.bitPattern), fresh.gradients.map(\.bitPattern), preset.config.label)
            XCTAssertEqual(statsAfter.lossSum.bitPattern, statsFresh.lossSum.bitPattern, preset.config.label)
            XCTAssertEqual(Set(after.touchedEmbeddingRows), Set(xa))
        }
    }

    /// The whole exchange in one process: chunks kept in any order give the same gradient bits,
    /// within the bound of the Double sum of the chunk gradients; a non-finite value is reported.
    func testTheExchangeIsOrderFreeAndCloseToTheExactSum() throws {
        let config = ModelConfig.Preset(kind: .lstm, numWords: 50, embedDim: 4, units: 5).config
        var g = SeededGenerator(seed: 6)
        let t = 7, rows = 4, k = 5
        let batches: [([Int32], [Float])] = (0 ..< k).map { _ in
            ((0 ..< rows * t).map { _ in Int32(g.next() % 50) }, (0 ..< rows).map { _ in Float(g.next() % 2) })
        }
        let model = Model(config: config, seed: 1)
        var exact = [Double](repeating: 0, count: model.gradients.count)
        var lossSum = 0.0
        for (x, y) in batches {
            model.zeroGradients()
            lossSum += model.accumulateGradients(x: x, y: y, batch: rows).lossSum
            for i in exact.indices { exact[i] += Double(model.gradients[i]) }
        }
        func reduce(_ order: [Int]) throws -> ([Float], BatchStats) {
            let exchange = ReproducibleExchange(comm: .single(), chunkRows: rows)
            exchange.begin()
            model.zeroGradients()
            for (i, c) in order.enumerated() {
                if i > 0 { model.zeroAccumulatedGradients() }
                let stats = model.accumulateGradients(x: batches[c].0, y: batches[c].1, batch: rows)
                exchange.keep(model, stats: stats)
            }
            let (stats, stop) = try exchange.reduce(model, stop: false, chunksInStep: k)
            XCTAssertFalse(stop)
            return (model.gradients, stats)
        }
        let (a, statsA) = try reduce(Array(0 ..< k))
        let (b, statsB) = try reduce([3, 1, 4, 0, 2])
        XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern))
        XCTAssertEqual(statsA.lossSum.bitPattern, statsB.lossSum.bitPattern)
        XCTAssertEqual(statsA.count, k * rows)
        XCTAssertEqual(statsA.lossSum, lossSum, accuracy: 1e-12 * lossSum)
        // Float's rounding of the sum, plus the fixed point's K/2 units at ≤ 2⁻⁵⁸ of the largest value.
        let largest = exact.map(abs).max()!
        for i in exact.indices {
            XCTAssertLessThanOrEqual(abs(Double(a[i]) - exact[i]), Double(Float(exact[i]).ulp) + largest * 0x1p-55, "gradient \(i)")
        }
        // A NaN in one chunk: the gradient is reported non-finite, no integer is formed.
        let exchange = ReproducibleExchange(comm: .single(), chunkRows: rows)
        exchange.begin()
        model.zeroGradients()
        let stats = model.accumulateGradients(x: batches[0].0, y: batches[0].1, batch: rows)
        model.gradients[model.gradients.count - 2] = .nan
        exchange.keep(model, stats: stats)
        _ = try exchange.reduce(model, stop: false, chunksInStep: 1)
        XCTAssertFalse(Trainer.allFinite(model.gradients))
    }
}
