import XCTest
import Foundation
import TestSupport
@testable import RNN
@testable import Training

/// `train --model-config`: a Keras `model.to_json()` trains as the model it describes — the book's
/// LSTM exactly as `--model lstm` — and what does not fit is refused before training.
final class KerasModelConfigTests: ToyIMDBTestCase {
    /// A fixture of RNNTests (Keras 3.15's JSON, vocabulary 18) with the toy dataset's vocabulary.
    func keras(_ name: String, edit: (String, String)? = nil) throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../RNNTests/Fixtures/keras-\(name).json")
        let words = try TrainingDataset.open(dataset).numWords
        var json = try String(contentsOf: url, encoding: .utf8).replacingOccurrences(of: "\"input_dim\": 18", with: "\"input_dim\": \(words)")
        if let (from, to) = edit {
            XCTAssertNotNil(json.range(of: from), from)
            json = json.replacingOccurrences(of: from, with: to)
        }
        let path = tmp.file("\(name)\(edit == nil ? "" : "-edited").json")
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
        let words = try TrainingDataset.open(dataset).numWords
        let cases: [(String, String)] = [
            (try keras("lstm", edit: ("\"input_dim\": \(words)", "\"input_dim\": \(words + 1)")),
             "layer 2 'embedding' (Embedding): option 'input_dim' = \(words + 1) but \(dataset) has num_words \(words)"),
            (try keras("conv", edit: ("\"Conv1D\"", "\"Conv2D\"")), "layer 3 'conv1d' (Conv2D): layer type not supported"),
            (try keras("convnet", edit: ("\"kernel_size\": [\n      5\n     ]", "\"kernel_size\": [\n      30\n     ]")),
             "layer 5 'conv1d_1' (Conv1D): cannot take a sequence of width 4 and length 3: too few steps for its window"),
            (try keras("softmax3"), "layer 4 'dense_5' (Dense): option 'units' gives a softmax over 3 classes but \(dataset) has 2 classes (neg, pos)"),
            (tmp.file("none.json"), "none.json: cannot be read (no such file)"),
        ]
        for (config, expect) in cases {
            let r = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("bad"), "--model-config", config] + flags)
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.contains(expect), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        }
        // A compiled model's optimizer, other than the run's, is refused naming the flags that give it.
        let adam = try keras("lstm-compiled", edit: (#""learning_rate": 0.0010000000474974513"#, #""learning_rate": 0.009999999776482582"#))
        let other = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("bad"), "--model-config", adam] + flags)
        XCTAssertEqual(other.status, 2, other.stderr)
        XCTAssertTrue(other.stderr.contains("its compile_config trains with RMSprop(learning_rate=0.01), this run with RMSprop(learning_rate=0.001): give --optimizer rmsprop --lr 0.01 (or remove compile_config from the JSON)"), other.stderr)
        let given = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("compiled"), "--model-config", adam, "--lr", "0.01"] + flags)
        XCTAssertEqual(given.status, 0, given.stderr)
        // A run of a network no preset describes, resumed without --model-config: the line names the flag.
        let conv = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("conv"), "--model-config", try keras("convgru")] + flags)
        XCTAssertEqual(conv.status, 0, conv.stderr)
        let bare = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("conv"), "--resume", tmp.file("conv") + "/checkpoint.h5",
                                           "--limit", "320", "--batch-size", "32", "--seed", "5", "--epochs", "2"])
        XCTAssertEqual(bare.status, 2, bare.stderr)
        XCTAssertTrue(bare.stderr.contains("checkpoint was written with the model (from --model-config: give that file again) = "), bare.stderr)
        // Under mpirun every rank meets the refusal at set-up and the job ends with exit 2.
        let ranks = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("bad"), "--model-config",
                                              try keras("conv", edit: ("\"Conv1D\"", "\"Conv2D\""))] + flags)
        XCTAssertFalse(ranks.timedOut)
        XCTAssertEqual(ranks.status, 2, ranks.stderr)
        XCTAssertEqual(ranks.stderr.components(separatedBy: "layer type not supported").count - 1, 1, "reported once: \(ranks.stderr)")
        let wrongLength = try String(contentsOfFile: try keras("lstm"), encoding: .utf8).replacingOccurrences(of: "40\n", with: "50\n")
        try wrongLength.write(toFile: tmp.file("len.json"), atomically: false, encoding: .utf8)
        let r = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("bad"), "--model-config", tmp.file("len.json")] + flags)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("the model takes sequences of 50 but \(dataset) has maxlen 40"), r.stderr)
        let both = try Subprocess.rnnDist(["train", "--data", dataset, "--model-config", try keras("lstm"), "--units", "16"])
        XCTAssertEqual(both.status, 64)
        XCTAssertTrue(both.stderr.contains("--units describes the network, which --model-config sets; give one or the other"), both.stderr)
        // At its default value too (it trained the config's network, exit 0).
        for flags in [["--model", "lstm"], ["--units", "32"], ["--layers", "1"], ["--recurrent-dropout", "0"], ["--gru-reset-after", "true"]] {
            let atDefault = try Subprocess.rnnDist(["train", "--data", dataset, "--model-config", try keras("lstm")] + flags)
            XCTAssertEqual(atDefault.status, 64, flags.joined(separator: " "))
            XCTAssertTrue(atDefault.stderr.contains("\(flags[0]) describes the network, which --model-config sets"), atDefault.stderr)
        }
    }

    /// The book's chapter-6 models beyond 6.2 (6.1's Flatten, 6.4's convnet, Conv1D into a GRU) and
    /// the fixture with every other option (a frozen embedding, Dropout layers, same/causal padding,
    /// go_backwards, average pooling, hidden Dense activations): each trains at -n 1 and -n 2 to the
    /// same weights within 1e-4, resumes bit for bit from a stop mid-epoch, and keeps a frozen
    /// embedding exactly at its start.
    func testTheChapterSixModelsAgreeAcrossRankCountsAndResumeExactly() throws {
        for name in ["flatten", "convnet", "convgru", "mixed", "nobias"] {
            let config = try keras(name)
            func run(_ n: Int, _ dir: String, _ extra: [String] = []) throws -> ProcessResult {
                try Subprocess.mpiRun(n, ["train", "--data", dataset, "--run-dir", tmp.file("\(name)-\(dir)"), "--model-config", config]
                                      + flags + ["--epochs", "2"] + extra)
            }
            let one = try run(1, "n1"), two = try run(2, "n2")
            XCTAssertEqual(one.status, 0, one.stderr)
            XCTAssertEqual(two.status, 0, two.stderr)
            let w1 = try WeightsFile.read(from: tmp.file("\(name)-n1/model.weights.h5")), w2 = try WeightsFile.read(from: tmp.file("\(name)-n2/model.weights.h5"))
            XCTAssertLessThanOrEqual(zip(w1.weights, w2.weights).map { abs($0 - $1) }.max()!, 1e-4, name)
            let stop = try run(2, "stop", ["--stop-after-batches", "11"])
            XCTAssertEqual(stop.status, 4, stop.stderr)
            let resumed = try run(2, "stop", ["--resume", tmp.file("\(name)-stop/checkpoint.h5")])
            XCTAssertEqual(resumed.status, 0, resumed.stderr)
            XCTAssertEqual(try WeightsFile.read(from: tmp.file("\(name)-stop/model.weights.h5")).weights, w2.weights, "\(name) resumed")
            let model = w2.metadata.config.model
            if !model.embeddingTrainable {
                let start = Model(config: model, seed: w2.metadata.config.seed).weights
                let e = model.parameterTable[0].range
                XCTAssertEqual(Array(w2.weights[e]), Array(start[e]), "\(name): the frozen embedding moved")
                XCTAssertNotEqual(Array(w2.weights[e.upperBound...]), Array(start[e.upperBound...]), "\(name): nothing trained")
            }
        }
    }
}
