import XCTest
import Foundation
import TestSupport
@testable import Training

/// `--accumulate K`: an optimizer step of K × B rows, each rank's share in K micro-batches, one
/// exchange. It is the step of `--batch-size K·B` computed in parts (float tolerance), agrees across
/// rank counts, and a stop arriving between micro-batches finishes the step, so every checkpoint is
/// at a step boundary and resumes bit for bit.
final class AccumulateTests: ToyIMDBTestCase {
    /// `common` without its batch size (32).
    var flags: [String] { ["--limit", "320", "--units", "8", "--embed-dim", "8", "--seed", "5", "--epochs", "2"] }

    func weights(_ dir: String) throws -> [Float] { try WeightsFile.read(from: tmp.file("\(dir)/model.weights.h5")).weights }

    func testAccumulationIsTheLargeBatchAndResumesExactly() throws {
        func train(_ n: Int, _ dir: String, _ extra: [String]) throws -> ProcessResult {
            let r = try Subprocess.mpiRun(n, ["train", "--data", dataset, "--run-dir", tmp.file(dir)] + flags + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            return r
        }
        let accumulated = try train(2, "acc", ["--batch-size", "16", "--accumulate", "4"])
        XCTAssertTrue(accumulated.stdout.contains("global batch 64 (4 × 16)"), accumulated.stdout)
        _ = try train(2, "big", ["--batch-size", "64"])
        let a = try weights("acc"), b = try weights("big")
        let difference = zip(a, b).map { abs($0 - $1) }.max()!
        print("accumulate 4 × 16 against batch 64, -n 2, 2 epochs: max |Δw| = \(difference)")
        XCTAssertLessThanOrEqual(difference, 1e-5)
        // Across rank counts, as any run.
        _ = try train(1, "acc1", ["--batch-size", "16", "--accumulate", "4"])
        XCTAssertLessThanOrEqual(zip(a, try weights("acc1")).map { abs($0 - $1) }.max()!, 1e-4)
        // Stopped after 3 steps (mid-epoch) and resumed: the same bits; another K is refused.
        let stop = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("stop"), "--batch-size", "16", "--accumulate", "4",
                                             "--stop-after-batches", "3"] + flags)
        XCTAssertEqual(stop.status, 4, stop.stderr)
        let other = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("stop"), "--resume", tmp.file("stop/checkpoint.h5"),
                                            "--batch-size", "16", "--accumulate", "2"] + flags)
        XCTAssertEqual(other.status, 2, other.stderr)
        XCTAssertTrue(other.stderr.contains("--accumulate"), other.stderr)
        _ = try train(2, "stop", ["--batch-size", "16", "--accumulate", "4", "--resume", tmp.file("stop/checkpoint.h5")])
        XCTAssertEqual(try weights("stop"), a)
    }
}
