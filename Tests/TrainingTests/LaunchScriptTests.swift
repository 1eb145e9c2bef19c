import XCTest
import Foundation
import TestSupport
@testable import Training

/// The scripts people run (Launch/run, Launch/supervise) with this build on the synthetic IMDB:
/// what they do with the user's files, paths and stop signals.
final class LaunchScriptTests: ToyIMDBTestCase {
    var script: (String) -> String { { Subprocess.packageRoot.appendingPathComponent("Launch/\($0)").path } }

    /// A DATA that is not a dataset (here the user's CSV) is an error that names it, and the file is
    /// left as it is: it was replaced by a freshly prepared IMDB, exit 0. A DATA that does not exist is
    /// an error too (it trained on IMDB).
    func testRunLeavesADataFileThatIsNotADatasetAlone() throws {
        let csv = tmp.file("tickets.csv")
        let bytes = Data("text,label\nthe printer is on fire,hardware\n".utf8)
        try bytes.write(to: URL(fileURLWithPath: csv))
        var env = scriptEnvironment
        env["DATA"] = csv
        env["IMDB_TARBALL"] = tmp.file("no-such.tar.gz")
        let r = try Subprocess.run("/bin/bash", [script("run"), "--epochs", "1"], environment: env, timeout: 60, cwd: tmp.path)
        XCTAssertEqual(r.status, 2, r.stdout + r.stderr)
        XCTAssertTrue(r.stderr.contains("run: \(csv) is not a usable dataset, left as it is"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: csv)), bytes, "the CSV is untouched")

        env["DATA"] = tmp.file("typo.h5")
        let m = try Subprocess.run("/bin/bash", [script("run"), "--epochs", "1"], environment: env, timeout: 60, cwd: tmp.path)
        XCTAssertEqual(m.status, 2, m.stdout + m.stderr)
        XCTAssertTrue(m.stderr.contains("typo.h5: no such dataset"), m.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.file("typo.h5")))
    }

    /// Relative paths are the caller's: `--data` and `--run-dir` among the flags name files in the
    /// folder Launch/run is started in, and prepare, train, eval and plot all use that dataset (eval
    /// used data/imdb.h5 of the repository).
    func testRunTakesItsPathsFromTheCallersFolder() throws {
        try FileManager.default.copyItem(atPath: dataset, toPath: tmp.file("mine.h5"))
        let r = try Subprocess.run("/bin/bash", [script("run"), "--data", "mine.h5", "--run-dir", "here"] + common + ["--epochs", "1"],
                                   environment: scriptEnvironment, timeout: 120, cwd: tmp.path)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("run: rnn-dist eval --weights here/best.weights.h5 --data mine.h5 --split test"), r.stdout)
        for file in ["best.weights.h5", "checkpoint.h5", "history.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: tmp.file("here/" + file)), file)
        }
    }

    /// Ctrl-C at a terminal reaches the whole process group: Launch/supervise and mpirun both get
    /// SIGINT. Open MPI's mpirun takes a second SIGINT as "abort now", so supervise passes the stop on
    /// as SIGUSR1: the ranks finish their batch and write a checkpoint marked interrupted, and nothing
    /// is restarted. (When supervise passed on the SIGINT itself, the job died at once, unmarked.)
    func testCtrlCToASupervisedJobWritesAnInterruptedCheckpoint() throws {
        let dir = tmp.file("stopped")
        let (p, err) = try startSupervise(["--max-restarts", "3", "--data", dataset, "--run-dir", dir] + common + ["--epochs", "400"])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let start = Date()
        while !FileManager.default.fileExists(atPath: dir + "/history.h5") && p.isRunning && Date().timeIntervalSince(start) < 60 {
            usleep(50_000)
        }
        // mpirun runs under supervise's waiter subshell (Launch/stop-forwarding's run_job).
        let waiters = try Subprocess.run("/usr/bin/pgrep", ["-P", "\(p.processIdentifier)"]).stdout.split(separator: "\n")
        let children = try Subprocess.run("/usr/bin/pgrep", ["-P", waiters.joined(separator: ","), "-x", "mpirun"])
        guard let mpirun = children.stdout.split(separator: "\n").compactMap({ Int32($0) }).first else {
            return XCTFail("no mpirun under Launch/supervise")
        }
        // What the terminal does: the signal to every process of the group, here the two of them.
        kill(p.processIdentifier, SIGINT)
        kill(mpirun, SIGINT)
        while p.isRunning && Date().timeIntervalSince(start) < 90 { usleep(50_000) }
        guard !p.isRunning else {
            // Not reading stderr: the job's processes still hold the pipe. They go first.
            kill(mpirun, SIGKILL)
            _ = try? Subprocess.run("/usr/bin/pkill", ["-KILL", "-f", "--run-dir \(dir)"])
            return XCTFail("Launch/supervise still running 90 s after SIGINT")
        }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(stderr.contains("supervise: stopped by a signal"), stderr)
        XCTAssertFalse(stderr.contains("supervise: restart"), stderr)
        let c = try Checkpoint.read(from: dir + "/checkpoint.h5")
        XCTAssertNotNil(c.state.interruptedBy, "the checkpoint is the interrupted run's: \(stderr.suffix(800))")
    }

    /// mpirun drops a signal that comes before it has started the ranks (srun likewise): a stop
    /// passed on once at that moment was lost, and the job trained to its end (exit 0). Supervise
    /// passes it on once more when a rank under the job catches USR1. The launcher here, as mpirun,
    /// drops USR1 until its rank runs (1.5 s), then passes it on; with the launcher running the rank
    /// itself (no rank process to watch), the second USR1 comes 5 s after the stop.
    func testAStopThatCameBeforeTheRanksStartedIsNotLost() throws {
        let launcher = tmp.file("late-launcher"), started = tmp.file("launcher-started")
        try """
        #!/bin/bash
        trap '' USR1
        touch "\(started)"
        sleep 1.5
        if [ "$LATE_LAUNCHER_EXEC" = 1 ]; then trap - USR1; exec "$@"; fi
        "$@" &
        rank=$!
        trap 'kill -USR1 $rank' USR1
        while :; do wait $rank; s=$?; kill -0 $rank 2>/dev/null || break; done
        exit $s

        """.write(toFile: launcher, atomically: true, encoding: .utf8)
        for exec in ["0", "1"] {
            try? FileManager.default.removeItem(atPath: started)
            try stopBeforeTheRanks(launcher: launcher, started: started, exec: exec)
        }
    }

    private func stopBeforeTheRanks(launcher: String, started: String, exec: String) throws {
        XCTAssertEqual(chmod(launcher, 0o755), 0)
        let dir = tmp.file("late-\(exec)")
        var env = scriptEnvironment
        env["LAUNCH"] = launcher
        env["LATE_LAUNCHER_EXEC"] = exec
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script("supervise"), "--data", dataset, "--run-dir", dir] + common + ["--epochs", "400"]
        p.environment = env
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        defer {
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            _ = try? Subprocess.run("/usr/bin/pkill", ["-KILL", "-f", "--run-dir \(dir)"])
        }
        let start = Date()
        while !FileManager.default.fileExists(atPath: started) && Date().timeIntervalSince(start) < 30 { usleep(10_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: started), "the launcher never started")
        kill(p.processIdentifier, SIGTERM)
        while p.isRunning && Date().timeIntervalSince(start) < 90 { usleep(50_000) }
        guard !p.isRunning else { return XCTFail("Launch/supervise still running 90 s after SIGTERM") }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 4, "exec \(exec): \(stderr)")
        XCTAssertTrue(stderr.contains("supervise: stopped by a signal (exit 4)"), stderr)
        // A single process (the launcher runs no mpirun) stopped in its set-up ends at once, without a
        // checkpoint (TRAINING.md, exit status 4); later, it writes one marked interrupted.
        if !stderr.contains("rnn-dist: stopped by a signal during set-up, before training") {
            let c = try Checkpoint.read(from: dir + "/checkpoint.h5")
            XCTAssertNotNil(c.state.interruptedBy, stderr)
            XCTAssertLessThan(c.history.records.count, 400, "stopped, not run to its end")
        }
    }

    /// A job that does not stop at a batch's end — here its ranks wait in set-up on a FIFO no one
    /// writes — still ends when supervise is asked again: a second TERM, 3 s after the first (which
    /// went on as USR1), is passed on as itself and mpirun's abort ends the job; nothing is restarted.
    func testASecondStopSignalEndsAJobStuckBeforeItsFirstBatch() throws {
        let fifo = tmp.file("model.json")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let (p, err) = try startSupervise(["--max-restarts", "3", "--data", dataset, "--run-dir", tmp.file("stuck"),
                                           "--model-config", fifo, "--limit", "320"])   // no model flags: the config replaces them
        func ranks() -> [Int32] {
            ((try? Subprocess.run("/usr/bin/pgrep", ["-f", "^\(Subprocess.rnnDist) train .*--model-config \(fifo)"]))?.stdout ?? "")
                .split(separator: "\n").compactMap { Int32($0) }
        }
        defer {
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            for r in ranks() { kill(r, SIGKILL) }
        }
        // Both ranks catch SIGUSR1 (SigCgt in /proc: bit 9), i.e. their handlers are in place: before
        // that, USR1 would end them by its default action.
        func catchesUSR1(_ pid: Int32) -> Bool {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
                  let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) else { return false }
            return mask & (1 << (UInt64(SIGUSR1) - 1)) != 0
        }
        let start = Date()
        while !(ranks().count == 2 && ranks().allSatisfy(catchesUSR1)) && Date().timeIntervalSince(start) < 60 { usleep(100_000) }
        XCTAssertEqual(ranks().count, 2, "the two ranks never started")
        usleep(300_000)
        kill(p.processIdentifier, SIGTERM)
        sleep(4)
        XCTAssertTrue(p.isRunning, "the first TERM (passed on as USR1) cannot end a set-up blocked in open()")
        let second = Date()
        kill(p.processIdentifier, SIGTERM)
        // A hang bound: mpirun's abort takes about 2 × its 2 s grace.
        while p.isRunning && Date().timeIntervalSince(second) < 60 { usleep(100_000) }
        guard !p.isRunning else { return XCTFail("the job still runs 60 s after the second SIGTERM") }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(stderr.contains("supervise: stopped by a signal"), stderr)
        XCTAssertFalse(stderr.contains("supervise: restart"), stderr)
        XCTAssertEqual(ranks(), [], "no rank left behind")
    }

    /// Launch/cluster-sim's command line: a flag without its value ("$2: unbound variable", exit 1),
    /// --slots 0 (a 1-rank job announced as "2 hosts × 0 slots"), a rate tc cannot read (exit 1 after
    /// the namespaces were made) — each one line and exit 64, before anything is set up.
    func testClusterSimRefusesABadCommandLine() throws {
        let cases: [([String], String)] = [
            (["--hosts"], "cluster-sim: --hosts needs a value"),
            (["--rate"], "cluster-sim: --rate needs a value"),
            (["--slots", "0", "--", "train"], "cluster-sim: --slots must be 1…256"),
            (["--rate", "bogus", "--", "train"], "cluster-sim: --rate 'bogus' is not a rate such as 100mbit, 1gbit or 10gbit"),
            (["--hosts", "2x", "--", "train"], "cluster-sim: --hosts and --slots take whole numbers"),
            // A rate of 0 passed the pattern; the namespaces were made, then tc refused it.
            (["--rate", "0bit", "--", "train"], "cluster-sim: --rate '0bit' must be at least 1kbit"),
            (["--rate", "0.0Gbit", "--", "train"], "cluster-sim: --rate '0.0Gbit' must be at least 1kbit"),
            // Above 0 but below a byte a second: tc refused it after the namespaces were made (exit 1).
            (["--rate", "1bit", "--", "train"], "cluster-sim: --rate '1bit' must be at least 1kbit"),
            (["--rate", "999bit", "--", "train"], "cluster-sim: --rate '999bit' must be at least 1kbit"),
            // Too many digits for bash's integers: the comparison failed, and the rate went on to tc.
            (["--rate", "99999999999999999999999tbit", "--", "train"], "cluster-sim: --rate '99999999999999999999999tbit' must be at most 100tbit"),
        ]
        for (args, message) in cases {
            let r = try Subprocess.run("/bin/bash", [script("cluster-sim")] + args, environment: scriptEnvironment, timeout: 30)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines), message, "\(args)")
        }
        // A rate in tc's notation passes the checks (here to the next refusal: nothing to run).
        let ok = try Subprocess.run("/bin/bash", [script("cluster-sim"), "--rate", "2.5Gbit", "--hosts", "1", "--slots", "1"],
                                    environment: scriptEnvironment, timeout: 30)
        XCTAssertTrue(ok.stderr.contains("nothing to run") || ok.stderr.contains("needs root")
                      || ok.stderr.contains("another emulated cluster is running"), ok.stderr)
        // A binary that is not there: said before any namespace is made (it was mpirun's exit 132).
        if getuid() == 0 {
            var env = scriptEnvironment
            env["RNN_DIST_BIN"] = tmp.file("no-such-rnn-dist")
            let r = try Subprocess.run("/bin/bash", [script("cluster-sim"), "--hosts", "1", "--slots", "1", "--", "train"],
                                       environment: env, timeout: 30)
            if !r.stderr.contains("another emulated cluster is running") {
                XCTAssertEqual(r.status, 2, r.stderr)
                XCTAssertEqual(r.stderr, "cluster-sim: \(tmp.file("no-such-rnn-dist")) is not an executable file (build it, or set RNN_DIST_BIN)\n")
            }
        }
    }

    /// Launch/bench.py's values are checked before any work: a bad name in a list was a KeyError
    /// after the sections before it had run (or silently nothing), --reps 0 a traceback at the
    /// end, a missing --bin a traceback at the first run, and a --data that is not IMDB prepared
    /// from the tarball (a CSV, the user's own dataset) was overwritten by the prepare section.
    func testBenchRefusesABadCommandLineBeforeAnyWork() throws {
        guard (try? Subprocess.run("/usr/bin/env", ["python3", "--version"], timeout: 10))?.status == 0 else {
            throw XCTSkip("no python3 (the benchmark is a Python script)")
        }
        let csv = tmp.file("mine.csv")
        try Data("text,label\na,b\n".utf8).write(to: URL(fileURLWithPath: csv))
        let bin = Subprocess.rnnDist, out = tmp.file("bench-out")
        let cases: [([String], String)] = [
            (["--bin", bin, "--floor-models", "lstm,bogus"], "--floor-models 'lstm,bogus': not a comma list of simple-rnn,lstm,gru,bilstm"),
            (["--bin", bin, "--reps", "0"], "--reps 0: must be 1 or more"),
            (["--bin", "/nonexistent/rnn-dist"], "--bin /nonexistent/rnn-dist: not an executable file"),
            (["--bin", bin, "--data", csv, "--tarball", csv],
             "--data \(csv) exists and is not an IMDB dataset prepared from the tarball: the prepare section would overwrite it (pass another --data, or --skip prepare to use it as it is)"),
        ]
        for (args, message) in cases {
            let r = try Subprocess.run("/usr/bin/env", ["python3", script("bench.py"), "--out", out] + args, timeout: 60)
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").last.map(String.init), "bench.py: error: " + message, "\(args)")
        }
        XCTAssertEqual(try String(contentsOfFile: csv, encoding: .utf8), "text,label\na,b\n", "the CSV is left as it is")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "nothing made before the checks")
    }

    /// Launch/run: RANKS that is not a rank count (passed to mpirun: Open MPI's banner, then
    /// supervise's restarts; RANKS=0 ran on every slot while the log said "-n 0"), an empty --data
    /// (the default dataset instead), and --help (train's help once per rank, after the set-up).
    func testRunChecksRanksAndHasItsOwnHelp() throws {
        var env = scriptEnvironment
        for ranks in ["abc", "0", "-2"] {
            env["RANKS"] = ranks
            let r = try Subprocess.run("/bin/bash", [script("run"), "--epochs", "1"], environment: env, timeout: 30, cwd: tmp.path)
            XCTAssertEqual(r.status, 64, "RANKS=\(ranks): \(r.stderr)")
            XCTAssertEqual(r.stderr, "run: RANKS must be a whole number of ranks, 1 or more (got '\(ranks)')\n")
        }
        env["RANKS"] = nil
        let empty = try Subprocess.run("/bin/bash", [script("run"), "--data", ""], environment: env, timeout: 30, cwd: tmp.path)
        XCTAssertEqual(empty.status, 64, empty.stderr)
        XCTAssertEqual(empty.stderr, "run: --data needs a path\n")
        let help = try Subprocess.run("/bin/bash", [script("run"), "--help"], environment: env, timeout: 30, cwd: tmp.path)
        XCTAssertEqual(help.status, 0, help.stderr)
        XCTAssertTrue(help.stdout.hasPrefix("The main job, end to end"), help.stdout)
        XCTAssertTrue(help.stdout.contains("RANKS         number of MPI ranks"), help.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.file("runs")))
    }

    /// Launch/compare-builds' command line: a binary that is not one (a traceback, exit 1), a rank
    /// count that is not one (`x`: a traceback; `0`: a single process reported as "-n 0: identical",
    /// exit 0), an empty --only (every configuration) — each one line, exit 2, before any run.
    func testCompareBuildsRefusesABadCommandLine() throws {
        guard (try? Subprocess.run("/usr/bin/env", ["python3", "--version"], timeout: 10))?.status == 0 else {
            throw XCTSkip("no python3 (compare-builds is a Python script)")
        }
        let bin = Subprocess.rnnDist
        let cases: [([String], String)] = [
            (["--old", "/nonexistent", "--new", bin], "--old /nonexistent: not an executable file"),
            (["--old", bin, "--new", tmp.path], "--new \(tmp.path): not an executable file"),
            (["--old", bin, "--new", bin, "--ranks", "x"], "--ranks 'x': not a comma-separated list of rank counts"),
            (["--old", bin, "--new", bin, "--ranks", "1,0"], "--ranks '1,0': every rank count must be 1 or more"),
            (["--old", bin, "--new", bin, "--only", ""], "--only is empty: name configurations, or leave it out for all of them"),
            (["--old", bin, "--new", bin, "--limit", "1"], "--limit 1: must be 2 or more (train's --limit)"),
            (["--old", bin, "--new", bin], "--data none.h5: no such file"),
        ]
        for (args, message) in cases {
            let r = try Subprocess.run("/usr/bin/env", ["python3", script("compare-builds"), "--data", "none.h5"] + args, timeout: 30)
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").last.map(String.init), "compare-builds: error: " + message, "\(args)")
            XCTAssertEqual(r.stdout, "", "\(args): nothing started")
        }
    }

    /// Launch/test, Launch/bench and Launch/setup answer --help at once: the first two ran the whole
    /// set-up first (minutes on a fresh machine, a build otherwise), setup called it an unknown
    /// argument. Copies of the scripts beside a set-up that only leaves a mark show it is not run.
    func testTestBenchAndSetupAnswerHelpBeforeAnySetUp() throws {
        let launch = tmp.file("repo/Launch")
        try FileManager.default.createDirectory(atPath: launch, withIntermediateDirectories: true)
        for name in ["test", "bench", "bench.py"] {
            try FileManager.default.copyItem(atPath: script(name), toPath: "\(launch)/\(name)")
        }
        let mark = tmp.file("setup-ran")
        try Data("#!/usr/bin/env bash\ntouch '\(mark)'\nexit 1\n".utf8).write(to: URL(fileURLWithPath: "\(launch)/setup"))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(launch)/setup")
        let hasPython = (try? Subprocess.run("/usr/bin/env", ["python3", "--version"], timeout: 10))?.status == 0
        var cases: [(String, [String], String)] = [("test", ["--help"], "The whole test suite"), ("test", ["--filter", "X", "-h"], "Usage: Launch/test")]
        if hasPython { cases.append(("bench", ["--models", "lstm", "--help"], "The benchmark (docs/BENCHMARKS.md)")) }
        for (name, args, expected) in cases {
            let r = try Subprocess.run("/bin/bash", ["\(launch)/\(name)"] + args, timeout: 30)
            XCTAssertEqual(r.status, 0, "\(name) \(args): \(r.stderr)")
            XCTAssertTrue(r.stdout.contains(expected), "\(name) \(args): \(r.stdout)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: mark), "\(name) \(args) ran the set-up")
        }
        let setup = try Subprocess.run("/bin/bash", [script("setup"), "--help"], timeout: 30)
        XCTAssertEqual(setup.status, 0, setup.stderr)
        XCTAssertTrue(setup.stdout.hasPrefix("Installs what rnn-dist needs on Debian"), setup.stdout)
    }
}

extension ToyIMDBTestCase {
    /// The environment of the Launch scripts: this build, 2 ranks.
    var scriptEnvironment: [String: String] {
        var env = Subprocess.mpiEnvironment
        env["RNN_DIST_BIN"] = Subprocess.rnnDist
        env["RANKS"] = "2"
        return env
    }

    /// Starts `Launch/supervise ARGS` in the background (stdout discarded); its stderr is the pipe.
    func startSupervise(_ args: [String]) throws -> (process: Process, stderr: Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Subprocess.packageRoot.appendingPathComponent("Launch/supervise").path] + args
        p.environment = scriptEnvironment
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        return (p, err)
    }
}
