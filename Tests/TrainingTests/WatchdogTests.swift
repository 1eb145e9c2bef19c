import XCTest
import Foundation
import TestSupport
@testable import Training

/// `train --collective-timeout S` (MPI/Watchdog.swift): a rank that stalls — injected here by the
/// rank stopping itself with SIGSTOP before an exchange (`--inject-stall RANK:STEP`) — ends the job
/// with status 6 and one line naming it; the last checkpoint resumes to the uninterrupted run's
/// bits; a rank that is only slow does not trip it.
final class WatchdogTests: ToyIMDBTestCase {
    var flags: [String] { common + ["--epochs", "2", "--checkpoint-every", "2"] }

    /// A job ended by the watchdog: not hung, status 6, within 40 s of a `timeout` s timeout, and
    /// exactly one "collective timeout" line, returned.
    func timeoutLine(_ r: ProcessResult, after timeout: Int) -> Substring? {
        XCTAssertFalse(r.timedOut, "the job hung")
        XCTAssertEqual(r.status, 6, r.stderr)
        XCTAssertLessThan(r.seconds, 40, "the job took \(r.seconds) s to end after a \(timeout) s timeout")
        let lines = r.stderr.split(separator: "\n").filter { $0.contains("collective timeout") }
        XCTAssertEqual(lines.count, 1, r.stderr)
        return lines.first
    }

    /// Runs the job at `ranks` with `stall` (a hook and its RANK:STEP) under `timeout`: it must end
    /// within 40 s with status 6 and one line from `reporter` (checked by `named`), and its
    /// checkpoint must resume to the uninterrupted run's bits.
    func stallEndsTheJob(ranks: Int, stall: [String], timeout: Int, reporter: Int, _ label: String,
                         named: (Substring) -> Bool) throws {
        let whole = tmp.file("whole-\(label)-\(ranks)"), dir = tmp.file("\(label)-\(ranks)")
        let w = try Subprocess.mpiRun(ranks, ["train", "--data", dataset, "--run-dir", whole] + flags)
        XCTAssertEqual(w.status, 0, w.stderr)
        let r = try Subprocess.mpiRun(ranks, ["train", "--data", dataset, "--run-dir", dir, "--collective-timeout", "\(timeout)"]
                                      + stall + flags, timeout: 90)
        let line = timeoutLine(r, after: timeout)
        XCTAssertTrue(line?.hasPrefix("rnn-dist: error: rank \(reporter): collective timeout: waited \(timeout) s in step 5; ") ?? false, r.stderr)
        XCTAssertTrue(line.map(named) ?? false, r.stderr)
        // The checkpoint of step 4 is whole and resumes to the uninterrupted run's bits.
        let resumed = try Subprocess.mpiRun(ranks, ["train", "--data", dataset, "--run-dir", dir, "--resume", "\(dir)/checkpoint.h5"] + flags)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try WeightsFile.read(from: "\(dir)/model.weights.h5").weights,
                       try WeightsFile.read(from: "\(whole)/model.weights.h5").weights, "\(label): resumed at \(ranks) ranks")
    }

    func testAStalledRankEndsTheJobNamingItAndTheCheckpointResumes() throws {
        for (ranks, stalled) in [(2, 1), (3, 0)] {
            try stallEndsTheJob(ranks: ranks, stall: ["--inject-stall", "\(stalled):5"], timeout: 10, reporter: stalled == 0 ? 1 : 0,
                                "stall") { line in
                line.contains("this rank has not arrived: rank \(stalled) on ") && line.contains("(last completed step 4)")
            }
        }
    }

    /// A rank that stops inside a collective, after it has started it (its peers saw it arrive):
    /// caught as well, named as stopped inside it, and the checkpoint resumes to the same bits.
    func testARankStoppedInsideACollectiveEndsTheJobNamingIt() throws {
        for (ranks, stalled) in [(2, 0), (3, 2)] {
            try stallEndsTheJob(ranks: ranks, stall: ["--inject-stall-inside", "\(stalled):5"], timeout: 5,
                                reporter: stalled == 0 ? 1 : 0, "inside") { line in
                // Whether the peers saw it start depends on MPI's protocol for the message; named either way.
                line.contains("arrived but stopped inside it: rank \(stalled) on ") && line.contains("(in step 5)")
                    || line.contains("not arrived: rank \(stalled) on ")
            }
        }
    }

    /// A rank that stops before MPI_Init: the others wait inside it, where no collective watchdog
    /// exists yet; the start-up guard ends the job with status 6 all the same.
    func testARankStoppedWhileTheJobStartsEndsIt() throws {
        let r = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("start"), "--collective-timeout", "3",
                                          "--inject-stall-start", "1"] + flags, timeout: 90)
        XCTAssertTrue(timeoutLine(r, after: 3)?.hasPrefix("rnn-dist: error: rank 0: collective timeout: the job has not started after 3 s") ?? false,
                      r.stderr)
    }

    func testASlowRankDoesNotTripItAndTooShortATimeoutDoes() throws {
        // Rank 1 sleeps 3 s before every exchange: at the default timeout the run finishes…
        let short = ["--epochs", "1", "--limit", "96"]
        let slow = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("slow"), "--inject-delay", "1:3"]
                                         + common + short, timeout: 120)
        XCTAssertEqual(slow.status, 0, slow.stderr)
        XCTAssertFalse(slow.stderr.contains("collective timeout"), slow.stderr)
        // …and a timeout below the delay stops it, naming rank 1 as not arrived at step 1.
        let tripped = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("trip"), "--inject-delay", "1:3",
                                                "--collective-timeout", "1"] + common + short, timeout: 120)
        XCTAssertEqual(tripped.status, 6, tripped.stderr)
        XCTAssertTrue(tripped.stderr.contains("rank 0: collective timeout: waited 1 s in step 1; this rank has not arrived: rank 1 on "),
                      tripped.stderr)
        XCTAssertTrue(tripped.stderr.contains("(last completed step 0)"), tripped.stderr)
    }

    func testTheTimeoutFlagIsChecked() throws {
        for bad in ["-1", "nan", "1e9"] {
            let r = try Subprocess.rnnDist(["train", "--data", dataset, "--collective-timeout", bad])
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertTrue(r.stderr.contains("--collective-timeout"), r.stderr)
        }
        // Below a second MPI_Init alone outlasts it: every start was reported stalled (exit 6, restarted).
        for bad in ["0.001", "0.5", "0.99"] {
            let r = try Subprocess.rnnDist(["train", "--data", dataset, "--collective-timeout", bad])
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertTrue(r.stderr.contains("--collective-timeout \(Double(bad)!) is below 1 second"), r.stderr)
        }
    }
}
