import XCTest
import Foundation
import TestSupport
@testable import Training

/// Launch/cluster-sim: 2 emulated hosts (network namespaces joined by a shaped bridge) × 2 ranks.
/// Skipped, with one line saying why, where network namespaces cannot be made.
final class ClusterSimTests: ToyIMDBTestCase {
    var script: String { Subprocess.packageRoot.appendingPathComponent("Launch/cluster-sim").path }

    override func setUpWithError() throws {
        let probe = try? Subprocess.run("/usr/sbin/ip", ["netns", "add", "rd-probe-test"])
        guard getuid() == 0, probe?.status == 0 else {
            throw XCTSkip("network namespaces are not available here (root and `ip netns` needed): cluster-sim tests skipped")
        }
        _ = try? Subprocess.run("/usr/sbin/ip", ["netns", "delete", "rd-probe-test"])
        try super.setUpWithError()
    }

    func leftoverNamespaces() throws -> [String] {
        try Subprocess.run("/usr/sbin/ip", ["netns", "list"]).stdout.split(separator: "\n")
            .map { String($0.split(separator: " ").first ?? "") }.filter { $0.hasPrefix("rd-") }
    }

    func environment() -> [String: String] {
        var env = Subprocess.mpiEnvironment
        env["RNN_DIST_BIN"] = Subprocess.rnnDist
        return env
    }

    /// Whether `path` exists within 120 s (a hang bound only).
    func waitForFile(_ path: String) -> Bool {
        let start = Date()
        while !FileManager.default.fileExists(atPath: path) && Date().timeIntervalSince(start) < 120 { usleep(100_000) }
        return FileManager.default.fileExists(atPath: path)
    }

    /// Launch/cluster-sim ARGS started in the background, its output discarded.
    func start(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script] + args
        p.environment = environment()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Two hosts of two ranks agree with one host of four (the transport differs between them, and
    /// the exchange behind backward runs only across hosts), and nothing of the cluster remains afterwards.
    func testTwoHostsAgreeWithOneHostAndLeaveNothingBehind() throws {
        let sim = tmp.file("sim"), local = tmp.file("local")
        let args = ["train", "--data", dataset, "--run-dir", sim] + common + ["--epochs", "1"]
        let r = try Subprocess.run("/bin/bash", [script, "--hosts", "2", "--slots", "2", "--rate", "1gbit", "--"] + args,
                                   environment: environment(), timeout: 180)
        XCTAssertEqual(r.status, 0, r.stderr.suffix(2000).description)
        let l = try Subprocess.mpiRun(4, ["train", "--data", dataset, "--run-dir", local] + common + ["--epochs", "1"])
        XCTAssertEqual(l.status, 0, l.stderr)
        let a = try WeightsFile.read(from: sim + "/model.weights.h5").weights
        let b = try WeightsFile.read(from: local + "/model.weights.h5").weights
        XCTAssertLessThanOrEqual(zip(a, b).map { abs($0 - $1) }.max() ?? 1, 1e-4)
        // Across hosts `--exchange-overlap auto` sends rows during BPTT; on one host it does not.
        XCTAssertTrue(r.stdout.contains(" behind backward)"), r.stdout)
        XCTAssertFalse(l.stdout.contains(" behind backward)"), l.stdout)
        XCTAssertEqual(try leftoverNamespaces(), [])
    }

    /// With `--reproducible`, two hosts of two ranks end with the bits of one rank alone: weights,
    /// optimizer slots and the history's metrics.
    func testTwoHostsReproduceOneRankBitForBit() throws {
        let sim = tmp.file("sim"), one = tmp.file("one")
        let flags = common + ["--epochs", "2", "--reproducible", "--chunk-rows", "8"]
        let r = try Subprocess.run("/bin/bash", [script, "--hosts", "2", "--slots", "2", "--rate", "1gbit", "--", "train", "--data", dataset,
                                                 "--run-dir", sim] + flags, environment: environment(), timeout: 180)
        XCTAssertEqual(r.status, 0, r.stderr.suffix(2000).description)
        let l = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", one] + flags, timeout: 120)
        XCTAssertEqual(l.status, 0, l.stderr)
        let a = try Checkpoint.read(from: sim + "/checkpoint.h5"), b = try Checkpoint.read(from: one + "/checkpoint.h5")
        XCTAssertEqual(a.weights, b.weights)
        XCTAssertEqual(a.slots, b.slots)
        func metrics(_ dir: String) throws -> [[Double]] {
            try HistoryFile.read(from: dir + "/history.h5").0.records.map { [$0.loss, $0.acc, $0.valLoss, $0.valAcc] }
        }
        XCTAssertEqual(try metrics(sim), try metrics(one))
        XCTAssertEqual(try leftoverNamespaces(), [])
    }

    /// Killing every process of one host ends the whole job with a non-zero status, and the
    /// cluster is removed all the same.
    func testLosingAHostEndsTheJobAndTheClusterIsRemoved() throws {
        let dir = tmp.file("lost")
        let p = try start(["--hosts", "2", "--slots", "2", "--", "train", "--data", dataset, "--run-dir", dir] + common + ["--epochs", "400"])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        XCTAssertTrue(waitForFile(dir + "/checkpoint.h5"), "the job never reached its first checkpoint")
        let pids = try Subprocess.run("/usr/sbin/ip", ["netns", "pids", "rd-h2"]).stdout.split(separator: "\n").compactMap { Int32($0) }
        XCTAssertFalse(pids.isEmpty, "no process on host 2")
        for pid in pids { kill(pid, SIGKILL) }
        let killed = Date()
        // A hang bound only (measured: the job ends in 1–3 s); generous for slow machines.
        while p.isRunning && Date().timeIntervalSince(killed) < 60 { usleep(100_000) }
        XCTAssertFalse(p.isRunning, "the job still runs 60 s after host 2 was lost")
        print(String(format: "cluster-sim: job ended %.1f s after host 2 was lost", Date().timeIntervalSince(killed)))
        XCTAssertNotEqual(p.terminationStatus, 0)
        XCTAssertEqual(try leftoverNamespaces(), [])
        XCTAssertNoThrow(try Checkpoint.read(from: dir + "/checkpoint.h5"))
    }

    /// One emulated cluster at a time: while another holds the machine's lock (here this test, as a
    /// running job would), a second job and --cleanup are refused with exit 5 and leave that job's
    /// namespaces alone (a second job used to SIGKILL the first's processes and delete its hosts).
    /// Once the lock is free, --cleanup removes what is left.
    func testASecondClusterLeavesTheRunningOneAlone() throws {
        // The script's choice of lock file: /run/lock when it can write there.
        let lock = access("/run/lock", W_OK) == 0 ? "/run/lock/rnn-dist-cluster-sim.lock" : "/tmp/rnn-dist-cluster-sim.lock"
        var fd = open(lock, O_RDWR | O_CREAT, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { if fd >= 0 { close(fd) } }
        XCTAssertEqual(flock(fd, LOCK_EX | LOCK_NB), 0, "another cluster-sim job is running on this machine")
        XCTAssertEqual(try Subprocess.run("/usr/sbin/ip", ["netns", "add", "rd-h9"]).status, 0)
        defer { _ = try? Subprocess.run("/usr/sbin/ip", ["netns", "delete", "rd-h9"]) }
        let second = try Subprocess.run("/bin/bash", [script, "--hosts", "1", "--slots", "1", "--", "train", "--data", dataset,
                                                      "--run-dir", tmp.file("second")] + common, environment: environment(), timeout: 60)
        XCTAssertEqual(second.status, 5, second.stderr)
        XCTAssertTrue(second.stderr.contains("another emulated cluster is running on this machine"), second.stderr)
        let cleanup = try Subprocess.run("/bin/bash", [script, "--cleanup"], environment: environment(), timeout: 60)
        XCTAssertEqual(cleanup.status, 5, cleanup.stderr)
        XCTAssertEqual(try leftoverNamespaces(), ["rd-h9"], "the running cluster's host is untouched")
        close(fd)
        fd = -1
        // A hostfile folder of a job killed before its own cleanup goes too (it stayed for good).
        let stray = try Subprocess.run("/usr/bin/mktemp", ["-d", "/tmp/rd-cluster.XXXXXX"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let after = try Subprocess.run("/bin/bash", [script, "--cleanup"], environment: environment(), timeout: 60)
        XCTAssertEqual(after.status, 0, after.stderr)
        XCTAssertEqual(try leftoverNamespaces(), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: stray), stray)
    }

    /// SIGTERM to the script (a `kill`, a scheduler's stop) stops the job as SIGUSR1 does: the ranks
    /// write a checkpoint marked interrupted, mpirun exits 4 and the cluster is removed. The script
    /// ran mpirun in the foreground: the TERM waited until the job had trained to its end.
    func testSIGTERMStopsTheJobWithACheckpoint() throws {
        let dir = tmp.file("stopped")
        let p = try start(["--hosts", "2", "--slots", "1", "--", "train", "--data", dataset, "--run-dir", dir] + common + ["--epochs", "400"])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        XCTAssertTrue(waitForFile(dir + "/history.h5"), "the job never finished an epoch")
        kill(p.processIdentifier, SIGTERM)
        let signalled = Date()
        while p.isRunning && Date().timeIntervalSince(signalled) < 60 { usleep(100_000) }
        guard !p.isRunning else { return XCTFail("the job still runs 60 s after its SIGTERM") }
        XCTAssertEqual(p.terminationStatus, 4)
        XCTAssertEqual(try Checkpoint.read(from: dir + "/checkpoint.h5").state.interruptedBy, "SIGUSR1")
        XCTAssertLessThan(try HistoryFile.read(from: dir + "/history.h5").0.records.count, 400)
        XCTAssertEqual(try leftoverNamespaces(), [])
    }
}
