import XCTest
import Foundation
import TestSupport
@testable import RNN
@testable import Training

/// `train --model-config`: a Keras `model.to_json()` trains as the model it describes — the book's
/// LSTM exactly as `--model lstm` — and what does not fit is refused before training.
final class KerasModelConfigTests: ToyIMDBTestCase {
    /// A fixture of RNNTests (Keras 3.15's JSON, vocabulary 18) with the toy dataset's vocabulary.
    func keras(_ name: String) throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../RNNTests/Fixtures/keras-\(name).json")
        let words = try TrainingDataset.open(dataset).numWords
        let json = try String(contentsOf: url, encoding: .utf8).replacingOccurrences(of: "\"input_dim\": 18", with: "\"input_dim\": \(words)")
        let path = tmp.file("\(name).json")
        try json.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    /// `common` without the model flags the configs set.
    var flags: [String] { ["--limit", "320", "--batch-size", "32", "--seed", "5", "--epochs", "1"] }

    func testTheBookLSTMFromItsKerasJSONTrainsBitForBitAsTheFlagsDo() throws {
        let a = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("json"), "--model-config", try keras("lstm")] + flags)
        XCTAssertEqual(a.status, 0, a.stderr)
        let b = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("flags"), "--model", "lstm", "--units", "8",
                                          "--embed-dim", "8"] + flags)
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertEqual(try WeightsFile.read(from: tmp.file("json/model.weights.h5")).weights,
                       try WeightsFile.read(from: tmp.file("flags/model.weights.h5")).weights)
    }

    func testAStackAgreesAcrossRankCountsAndInspectPrintsKerasSummary() throws {
        var w: [[Float]] = []
        for n in [1, 2] {
            let r = try Subprocess.mpiRun(n, ["train", "--data", dataset, "--run-dir", tmp.file("n\(n)"), "--model-config", try keras("stack")] + flags)
            XCTAssertEqual(r.status, 0, r.stderr)
            w.append(try WeightsFile.read(from: tmp.file("n\(n)/model.weights.h5")).weights)
        }
        XCTAssertLessThanOrEqual(zip(w[0], w[1]).map { abs($0 - $1) }.max()!, 1e-4)
        // Stopped after 5 of the 8 batches and resumed (the same command plus --resume): the same bits.
        let stop = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("stop"), "--model-config", try keras("stack"),
                                             "--stop-after-batches", "5"] + flags)
        XCTAssertEqual(stop.status, 4, stop.stderr)
        let resumed = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("stop"), "--model-config", try keras("stack"),
                                                "--resume", tmp.file("stop/checkpoint.h5")] + flags)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try WeightsFile.read(from: tmp.file("stop/model.weights.h5")).weights, w[1])
        let meta = try WeightsFile.read(from: tmp.file("n1/model.weights.h5")).metadata
        XCTAssertEqual(meta.config.model.head, .logit)
        let inspect = try Subprocess.rnnDist(["inspect", tmp.file("n1/model.weights.h5")])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        let words = try TrainingDataset.open(dataset).numWords, total = 8 * words + 576 + 90 + 6
        XCTAssertTrue(inspect.stdout.contains("embedding (Embedding)          (None, 40, 8)             \(8 * words)"), inspect.stdout)
        let grouped = total >= 1000 ? "\(total / 1000),\(String(format: "%03d", total % 1000))" : "\(total)"
        XCTAssertTrue(inspect.stdout.contains("Total params: \(grouped) ("), inspect.stdout)
    }

    func testConfigsThatDoNotFitAreRefusedWithOneLine() throws {
        let cases: [(String, String)] = [
            (try keras("conv"), "layer 3 'conv1d' (Conv1D): layer type not supported"),
            (try keras("softmax3"), "the output Dense gives a softmax over 3 classes but \(dataset) has 2 classes (neg, pos)"),
            (tmp.file("none.json"), "none.json: cannot be read (no such file)"),
        ]
        for (config, expect) in cases {
            let r = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("bad"), "--model-config", config] + flags)
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.contains(expect), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        }
        // Under mpirun every rank meets the refusal at set-up and the job ends with exit 2.
        let ranks = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("bad"), "--model-config", try keras("conv")] + flags)
        XCTAssertFalse(ranks.timedOut)
        XCTAssertEqual(ranks.status, 2, ranks.stderr)
        XCTAssertEqual(ranks.stderr.components(separatedBy: "layer type not supported").count - 1, 1, "reported once: \(ranks.stderr)")
        let wrongLength = try String(contentsOfFile: try keras("lstm"), encoding: .utf8).replacingOccurrences(of: "40\n", with: "50\n")
        try wrongLength.write(toFile: tmp.file("len.json"), atomically: false, encoding: .utf8)
        let r = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("bad"), "--model-config", tmp.file("len.json")] + flags)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("the InputLayer takes sequences of 50 but \(dataset) has maxlen 40"), r.stderr)
        let both = try Subprocess.rnnDist(["train", "--data", dataset, "--model-config", try keras("lstm"), "--units", "16"])
        XCTAssertEqual(both.status, 64)
        XCTAssertTrue(both.stderr.contains("--units describes the network, which --model-config sets; give one or the other"), both.stderr)
    }
}
