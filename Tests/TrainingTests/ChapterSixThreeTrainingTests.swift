import XCTest
import Foundation
import TestSupport
@testable import RNN
@testable import Training

/// `train` with the chapter 6.3 options under mpirun: the masks do not depend on the number of
/// ranks or on resuming, the options are recorded and guarded, and the other commands read the models.
final class ChapterSixThreeTrainingTests: ToyIMDBTestCase {
    /// Bidirectional LSTM with both dropouts; two reset-before GRU layers with input dropout.
    let variants: [(String, [String])] = [
        ("bi-lstm", ["--model", "lstm", "--bidirectional", "--dropout", "0.2", "--recurrent-dropout", "0.2"]),
        ("gru-rb", ["--model", "gru", "--gru-reset-after", "false", "--layers", "2", "--dropout", "0.3"]),
    ]

    @discardableResult
    func train(_ n: Int, _ dir: String, _ extra: [String], expect: Int32 = 0) throws -> ProcessResult {
        let args = ["train", "--data", dataset, "--run-dir", dir] + common + extra
        let r = try Subprocess.mpiRun(n, args, timeout: 120)
        XCTAssertFalse(r.timedOut, "mpirun -n \(n) \(args) hung")
        XCTAssertEqual(r.status, expect, "-n \(n) \(extra): \(r.stderr.suffix(1500))")
        return r
    }

    func weights(_ dir: String) throws -> [Float] { try WeightsFile.read(from: dir + "/model.weights.h5").weights }

    func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        XCTAssertEqual(a.count, b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
    }

    /// Each row's masks come from its position in the epoch's permutation, so -n 1, 2 and 4 train
    /// the same model up to summation order (the bound argued in DistributedTrainingTests), and the
    /// masks are really on: without them the weights end elsewhere.
    func testDropoutRunsAgreeAcrossWorldSizes() throws {
        for (name, flags) in variants {
            var w: [Int: [Float]] = [:]
            for n in [1, 2, 4] {
                let dir = tmp.file("\(name)-n\(n)")
                try train(n, dir, ["--epochs", "1"] + flags)
                w[n] = try weights(dir)
                let config = try WeightsFile.read(from: dir + "/model.weights.h5").metadata.config.model
                XCTAssertEqual(config.usesDropout, true, name)
            }
            for n in [2, 4] { XCTAssertLessThanOrEqual(maxAbsDiff(w[1]!, w[n]!), 1e-4, "\(name) -n 1 vs -n \(n)") }
            let plain = tmp.file("\(name)-plain")
            let withoutDropout = flags.enumerated().filter { i, f in
                !["--dropout", "--recurrent-dropout"].contains(f) && !(i > 0 && ["--dropout", "--recurrent-dropout"].contains(flags[i - 1]))
            }.map(\.element)
            try train(2, plain, ["--epochs", "1"] + withoutDropout)
            XCTAssertGreaterThan(maxAbsDiff(w[2]!, try weights(plain)), 1e-3, "\(name): dropout changed nothing")
        }
    }

    /// Resuming at the same world size reproduces the uninterrupted run bit for bit, masks included.
    func testResumeWithDropoutIsBitIdentical() throws {
        for (name, flags) in variants {
            let full = tmp.file("\(name)-full")
            try train(2, full, ["--epochs", "2"] + flags)
            for stop in [3, 10] {                       // mid-epoch 1; in epoch 2 (8 batches per epoch)
                let dir = tmp.file("\(name)-stop\(stop)")
                try train(2, dir, ["--epochs", "2", "--stop-after-batches", "\(stop)"] + flags, expect: 4)
                try train(2, dir, ["--epochs", "2", "--resume", dir + "/checkpoint.h5"] + flags)
                XCTAssertEqual(try weights(dir), try weights(full), "\(name) stopped after \(stop) batches")
                XCTAssertEqual(try Checkpoint.read(from: dir + "/checkpoint.h5").slots,
                               try Checkpoint.read(from: full + "/checkpoint.h5").slots)
            }
        }
    }

    /// A checkpoint records the options; resuming with another value is refused in one line naming the flag.
    func testChangedOptionsAreRefusedOnResume() throws {
        let dir = tmp.file("mm")
        let flags = ["--model", "gru", "--bidirectional", "--dropout", "0.2", "--recurrent-dropout", "0.1",
                     "--gru-reset-after", "false"]
        try train(1, dir, ["--epochs", "1", "--stop-after-batches", "2"] + flags, expect: 4)
        let changes: [([String], String)] = [
            (["--model", "gru", "--dropout", "0.2", "--recurrent-dropout", "0.1", "--gru-reset-after", "false"],
             "--bidirectional = true"),
            (["--model", "gru", "--bidirectional", "--dropout", "0.3", "--recurrent-dropout", "0.1", "--gru-reset-after", "false"],
             "--dropout = 0.2"),
            (["--model", "gru", "--bidirectional", "--dropout", "0.2", "--gru-reset-after", "false"],
             "--recurrent-dropout = 0.1"),
            (["--model", "gru", "--bidirectional", "--dropout", "0.2", "--recurrent-dropout", "0.1"],
             "--gru-reset-after = false"),
        ]
        for (changed, says) in changes {
            let r = try train(1, dir, ["--epochs", "1", "--resume", dir + "/checkpoint.h5"] + changed, expect: 2)
            XCTAssertTrue(r.stderr.contains(says), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("rnn-dist: error:") }.count, 1, r.stderr)
        }
        try train(2, dir, ["--epochs", "1", "--resume", dir + "/checkpoint.h5"] + flags)   // and at another -n
    }

    func testBadOptionValuesAreRefusedNamingTheFlag() throws {
        let cases: [([String], String)] = [
            (["--dropout", "1"], "--dropout 1.0 is outside [0, 1)"),
            (["--dropout", "-0.1"], "--dropout -0.1 is outside [0, 1)"),
            (["--recurrent-dropout", "1.5"], "--recurrent-dropout 1.5 is outside [0, 1)"),
            (["--recurrent-dropout", "nan"], "--recurrent-dropout nan is outside [0, 1)"),
            (["--model", "lstm", "--gru-reset-after", "false"], "--gru-reset-after false needs --model gru"),
            (["--model", "gru", "--gru-reset-after", "maybe"], "gru-reset-after"),
        ]
        try assertTrainRefuses(cases, in: tmp)
    }

    /// eval, predict, inspect and plot read a bidirectional reset-before GRU trained with dropout:
    /// eval's numbers are the model's own forward pass (no dropout), predict agrees with it.
    func testTheOtherCommandsReadTheNewModels() throws {
        let dir = tmp.file("run")
        try train(2, dir, ["--epochs", "2", "--model", "gru", "--bidirectional", "--layers", "2", "--gru-reset-after", "false",
                           "--dropout", "0.2", "--recurrent-dropout", "0.2"])
        let best = dir + "/best.weights.h5"
        let (w, meta) = try WeightsFile.read(from: best)
        XCTAssertTrue(meta.config.model.preset!.bidirectional && !meta.config.model.preset!.resetAfter)
        let model = Model(config: meta.config.model, seed: 0)
        model.weights = w
        let data = try TrainingDataset.open(dataset)
        let (x, y) = try data.test.read(range: 0 ..< data.test.rowCount)
        let logits = model.logits(x: x, batch: y.count)
        var correct = 0
        for (z, label) in zip(logits, y) where SigmoidHead.predictsPositive(logit: z) == (label >= 0.5) { correct += 1 }
        let r = try Subprocess.rnnDist(["eval", "--weights", best, "--data", dataset, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
        XCTAssertEqual(j["accuracy"] as? Double ?? -1, Double(correct) / Double(y.count), accuracy: 1e-12)
        // The same through eval under mpirun.
        let r3 = try Subprocess.mpiRun(3, ["eval", "--weights", best, "--data", dataset, "--json"])
        let j3 = try JSONSerialization.jsonObject(with: Data(r3.stdout.utf8)) as? [String: Any] ?? [:]
        XCTAssertEqual(j3["accuracy"] as? Double, j["accuracy"] as? Double)

        let p = try Subprocess.rnnDist(["predict", "--weights", best, "--json"], stdin: "a wonderful film\nawful\n")
        XCTAssertEqual(p.status, 0, p.stderr)
        XCTAssertEqual(p.stdout.split(separator: "\n").count, 2)

        let i = try Subprocess.rnnDist(["inspect", best])
        XCTAssertEqual(i.status, 0, i.stderr)
        XCTAssertTrue(i.stdout.contains("bidirectional gru (reset before), dropout 0.2, recurrent dropout 0.2"), i.stdout)
        XCTAssertTrue(i.stdout.contains("/layers/bidirectional_1/backward_layer/cell/vars/2  float32 24"), i.stdout)

        let svg = tmp.file("h.svg")
        let pl = try Subprocess.rnnDist(["plot", dir + "/history.h5", "-o", svg])
        XCTAssertEqual(pl.status, 0, pl.stderr)
        XCTAssertTrue((try String(contentsOfFile: svg, encoding: .utf8)).contains("bidirectional gru"))
    }
}
