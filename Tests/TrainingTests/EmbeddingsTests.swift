import XCTest
import Foundation
import TestSupport
@testable import RNN
@testable import Training

/// `train --embeddings`: the embedding starts from the file's vectors (zeros where it has none), the
/// config records the file, a resumed run keeps it, and a bad file is one line before training.
final class EmbeddingsTests: ToyIMDBTestCase {
    func testTheEmbeddingStartsFromTheVectorsAndResumeKeepsThem() throws {
        let vocabulary = try TrainingDataset.open(dataset).vocabulary
        // Vectors for every other vocabulary word, width 8 (the flags' --embed-dim).
        var lines: [String] = [], expected = [Float](repeating: 0, count: (vocabulary.count + 4) * 8)
        for (k, w) in vocabulary.enumerated() where k % 2 == 0 {
            let v = (0 ..< 8).map { Float(k * 8 + $0 % 5) / 100 - 0.2 }
            lines.append(w + " " + v.map { "\($0)" }.joined(separator: " "))
            expected.replaceSubrange((k + 4) * 8 ..< (k + 5) * 8, with: v)
        }
        let file = tmp.file("vectors.txt")
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: false, encoding: .utf8)
        // A learning rate of 1e-9: RMSprop moves each weight by ~1e-9 a step, so the trained
        // embedding is its start to within 1e-6.
        let flags = common + ["--epochs", "1", "--lr", "1e-9", "--embeddings", file]
        let r = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("run")] + flags)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("embeddings: \(lines.count) of \(vocabulary.count) words found in vectors.txt"), r.stdout)
        let (w, meta) = try WeightsFile.read(from: tmp.file("run/model.weights.h5"))
        let embedding = Array(w[0 ..< expected.count])
        XCTAssertLessThanOrEqual(zip(embedding, expected).map { abs($0 - $1) }.max()!, 1e-6)
        XCTAssertEqual(meta.config.embeddings?.file, "vectors.txt")
        XCTAssertEqual(meta.config.embeddings?.found, lines.count)

        // Resumed without --embeddings: the checkpoint's record is kept; with another file: refused.
        let stop = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("s")] + flags + ["--epochs", "2", "--stop-after-batches", "9"])
        XCTAssertEqual(stop.status, 4, stop.stderr)
        let resumed = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("s"), "--resume", tmp.file("s/checkpoint.h5"),
                                                "--epochs", "2", "--lr", "1e-9"] + common)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try WeightsFile.read(from: tmp.file("s/model.weights.h5")).metadata.config.embeddings, meta.config.embeddings)
        try (lines.dropFirst().joined(separator: "\n") + "\n").write(toFile: tmp.file("other.txt"), atomically: false, encoding: .utf8)
        let other = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("s"), "--resume", tmp.file("s/checkpoint.h5"),
                                            "--epochs", "3", "--lr", "1e-9", "--embeddings", tmp.file("other.txt")] + common)
        XCTAssertNotEqual(other.status, 0)
        // Both files named, with their checksums (the line gave the checksums alone).
        XCTAssertTrue(other.stderr.contains("--embeddings = vectors.txt (checksum \(meta.config.embeddings!.checksum)), this run asks for other.txt (checksum "), other.stderr)
    }

    func testAVectorFileOfAnotherWidthIsOneLineBeforeTraining() throws {
        let file = tmp.file("wide.txt")
        try "the 1 2 3\n".write(toFile: file, atomically: false, encoding: .utf8)
        let r = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("run"), "--embeddings", file] + common)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertEqual(r.stderr, "rnn-dist: error: \(file) line 1: 3 values after the word, the embedding's width is 8\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.file("run/checkpoint.h5")))
    }

    /// `--freeze-embeddings` (Keras trainable=False): the pretrained rows come out bit for bit as they
    /// went in after real training, no embedding row is exchanged (fewer bytes per batch than the
    /// trainable run's), Keras's summary counts them as non-trainable, and a resume must keep the flag.
    func testFrozenEmbeddingsStayExactlyAndLeaveTheExchange() throws {
        let vocabulary = try TrainingDataset.open(dataset).vocabulary
        var lines: [String] = []
        for (k, w) in vocabulary.enumerated() { lines.append(w + " " + (0 ..< 8).map { "\(Float((k * 7 + $0) % 13) / 20 - 0.3)" }.joined(separator: " ")) }
        let file = tmp.file("vectors.txt")
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: false, encoding: .utf8)
        func megabytesPerBatch(_ out: String) -> Double? {
            guard let r = out.range(of: #"exchange: [0-9.]+ MB/batch"#, options: .regularExpression) else { return nil }
            return Double(out[r].dropFirst("exchange: ".count).dropLast(" MB/batch".count))
        }
        let flags = common + ["--epochs", "2", "--embeddings", file]
        let trainable = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("t")] + flags)
        XCTAssertEqual(trainable.status, 0, trainable.stderr)
        let frozen = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("f"), "--freeze-embeddings"] + flags)
        XCTAssertEqual(frozen.status, 0, frozen.stderr)
        let start = try WeightsFile.read(from: tmp.file("t/model.weights.h5"))
        let (w, meta) = try WeightsFile.read(from: tmp.file("f/model.weights.h5"))
        let E = vocabulary.count + 4
        var expected = [Float](repeating: 0, count: E * 8)
        for (k, line) in lines.enumerated() {
            let v = line.split(separator: " ").dropFirst().map { Float(String($0))! }
            expected.replaceSubrange((k + 4) * 8 ..< (k + 5) * 8, with: v)
        }
        XCTAssertEqual(Array(w[0 ..< E * 8]), expected, "the frozen embedding changed")
        XCTAssertNotEqual(Array(start.weights[0 ..< E * 8]), expected, "the trainable run's embedding did not train")
        XCTAssertFalse(meta.config.model.embeddingTrainable)
        // Still an LSTM by name (history.h5's @model said "sequential"), and eval --model lstm takes it.
        XCTAssertEqual(meta.config.model.kindName, "lstm")
        let history = try Subprocess.rnnDist(["inspect", tmp.file("f/history.h5")])
        XCTAssertTrue(history.stdout.contains("@model = lstm"), history.stdout)
        let eval = try Subprocess.rnnDist(["eval", "--weights", tmp.file("f/model.weights.h5"), "--data", dataset, "--model", "lstm"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let (t, f) = (megabytesPerBatch(trainable.stdout), megabytesPerBatch(frozen.stdout))
        XCTAssertNotNil(t, trainable.stdout)
        XCTAssertNotNil(f, frozen.stdout)
        XCTAssertLessThan(f ?? 1, t ?? 0, "the exchange did not shrink")
        XCTAssertTrue(frozen.stdout.contains("0 of \(E) embedding rows"), frozen.stdout)
        let inspect = try Subprocess.rnnDist(["inspect", tmp.file("f/model.weights.h5")])
        XCTAssertTrue(inspect.stdout.contains("Non-trainable params: \(E * 8) ("), inspect.stdout)
        // Summaries name the cell and say the embedding is frozen (they listed the layers instead).
        XCTAssertTrue(inspect.stdout.contains("lstm, 1 layer of 8 units, embedding \(E)×8, frozen embedding, maxlen"), inspect.stdout)
        XCTAssertTrue(frozen.stdout.contains("rnn-dist train: lstm, frozen embedding, 2 ranks"), frozen.stdout)
        // A resume must freeze it too.
        let stop = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("s"), "--freeze-embeddings"] + flags
                                         + ["--stop-after-batches", "9"])
        XCTAssertEqual(stop.status, 4, stop.stderr)
        let unfrozen = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("s"), "--resume", tmp.file("s/checkpoint.h5")] + flags)
        XCTAssertEqual(unfrozen.status, 2, unfrozen.stderr)
        XCTAssertTrue(unfrozen.stderr.contains("checkpoint was written with --freeze-embeddings = on, this run asks for off"), unfrozen.stderr)
        let resumed = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("s"), "--resume", tmp.file("s/checkpoint.h5"),
                                                "--freeze-embeddings"] + flags)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try WeightsFile.read(from: tmp.file("s/model.weights.h5")).weights, w)
    }
}
