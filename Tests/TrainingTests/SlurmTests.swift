import XCTest
import Foundation
import TestSupport
@testable import Training

/// Launch/slurm.sbatch on the single-node Slurm of Launch/slurm-local (Launch/test starts it and
/// exports SLURM_CONF): the time-limit warning checkpoints, requeues and finishes bit-identically;
/// scancel leaves a loadable checkpoint. Skipped, with one line saying why, where Slurm is not up.
final class SlurmTests: ToyIMDBTestCase {
    override func setUpWithError() throws {
        guard let conf = ProcessInfo.processInfo.environment["SLURM_CONF"],
              (try? Subprocess.run("/usr/bin/sinfo", ["-h", "-o", "%T"], environment: slurmEnvironment(conf)))?.status == 0 else {
            throw XCTSkip("Slurm is not running here (Launch/slurm-local start did not bring it up): Slurm tests skipped")
        }
        try super.setUpWithError()
        // The job writes into the run folder as Slurm's user: let it.
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: tmp.path)
    }

    func slurmEnvironment(_ conf: String? = nil) -> [String: String] {
        var env = Subprocess.mpiEnvironment
        if let conf { env["SLURM_CONF"] = conf }
        return env
    }

    /// Submits Launch/slurm.sbatch on 2 tasks (mpirun inside the allocation); returns the job id.
    func submit(_ runDir: String, _ extra: [String], bin: String = Subprocess.rnnDist) throws -> String {
        var env = slurmEnvironment()
        env["RNN_DIST_BIN"] = bin
        env["DATA"] = dataset
        env["RUN_DIR"] = runDir
        env["LAUNCHER"] = "mpirun"
        // The options `Launch/slurm-local sbatch-args` prints for this node (what the README tells a
        // newcomer to use), so the line it prints is the line tested.
        let fit = try Subprocess.run("/bin/bash", ["Launch/slurm-local", "sbatch-args"], cwd: Subprocess.packageRoot.path)
        XCTAssertEqual(fit.status, 0, fit.stderr)
        let options = fit.stdout.split(whereSeparator: \.isWhitespace).map(String.init)
        XCTAssertEqual(options.first, "-N1")
        let r = try Subprocess.run("/usr/bin/sbatch", ["--parsable"] + options + ["--output=" + tmp.file("job-%j.out"),
                                                       "Launch/slurm.sbatch"] + common + extra,
                                   environment: env, cwd: Subprocess.packageRoot.path)
        XCTAssertEqual(r.status, 0, r.stderr)
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func waitForCheckpoint(_ runDir: String, epoch: Int) {
        let start = Date()
        while ((try? Checkpoint.read(from: runDir + "/checkpoint.h5"))?.state.epoch ?? 0) < epoch
                && Date().timeIntervalSince(start) < 120 { usleep(100_000) }
    }

    /// The job's output file (all its runs: Slurm appends), or "" when there is none.
    func output(_ id: String) -> String {
        (try? String(contentsOfFile: tmp.file("job-\(id).out"), encoding: .utf8)) ?? ""
    }

    /// Sends SIGNAL to the job's batch script as Slurm does (`scancel --signal=SIGNAL --batch`), waits
    /// until the job has left the queue and returns its output.
    func signalBatchScript(_ id: String, _ signal: String) throws -> String {
        let s = try Subprocess.run("/usr/bin/scancel", ["--signal=\(signal)", "--batch", id], environment: slurmEnvironment())
        XCTAssertEqual(s.status, 0, s.stderr)
        waitForJob(id)
        return output(id)
    }

    /// Waits until the job has left the queue (requeued runs included); a hang bound of 180 s.
    func waitForJob(_ id: String) {
        let start = Date()
        while Date().timeIntervalSince(start) < 180 {
            let q = try? Subprocess.run("/usr/bin/squeue", ["-h", "-j", id, "-o", "%T"], environment: slurmEnvironment())
            if (q?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? "").isEmpty { return }
            usleep(500_000)
        }
        XCTFail("job \(id) still queued after 180 s")
    }

    /// The time-limit warning (`--signal=B:USR2@…`), injected as Slurm delivers it (`scancel
    /// --signal=USR2 --batch`): checkpoint, requeue, resume in the rerun, finish — weights and
    /// history bit-identical to an uninterrupted run on 2 ranks.
    func testTheTimeLimitWarningCheckpointsRequeuesAndFinishesBitIdentically() throws {
        let full = tmp.file("full")
        let r = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", full] + common + ["--epochs", "6"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let dir = tmp.file("requeued")
        let id = try submit(dir, ["--epochs", "6"])
        waitForCheckpoint(dir, epoch: 2)
        let out = try signalBatchScript(id, "USR2")
        XCTAssertTrue(out.contains("interrupted by SIGUSR1; checkpoint written"), out)
        XCTAssertTrue(out.contains("requeueing job \(id)"), out)
        XCTAssertTrue(out.contains("run 1,") && out.contains("resumed from"), out)
        XCTAssertEqual(try WeightsFile.read(from: dir + "/model.weights.h5").weights,
                       try WeightsFile.read(from: full + "/model.weights.h5").weights, "bit-identical to the uninterrupted run")
        func timeless(_ d: String) throws -> [EpochRecord] {
            try HistoryFile.read(from: d + "/history.h5").0.records.map { var x = $0; x.seconds = 0; x.samplesPerSecond = 0; x.mpiShare = 0; return x }
        }
        XCTAssertEqual(try timeless(dir), try timeless(full))
    }

    /// A job resumed by hand (`sbatch Launch/slurm.sbatch … --resume OLD/checkpoint.h5`) that is then
    /// requeued continues from its own run folder's checkpoint: the --resume among its flags is
    /// dropped in the rerun (it came after the script's own and won: train refused the folder's
    /// unfinished run, exit 2, and the job failed). It ends with the uninterrupted run's weights.
    func testARequeueOfAJobResumedByHandContinuesItsOwnCheckpoint() throws {
        let full = tmp.file("full")
        XCTAssertEqual(try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", full] + common + ["--epochs", "8"]).status, 0)
        let old = tmp.file("old")
        let first = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", old] + common + ["--epochs", "8", "--stop-after-batches", "10"])
        XCTAssertEqual(first.status, 4, first.stderr)
        let dir = tmp.file("continued")
        let id = try submit(dir, ["--epochs", "8", "--resume", old + "/checkpoint.h5"])
        waitForCheckpoint(dir, epoch: 3)
        let out = try signalBatchScript(id, "USR2")
        XCTAssertTrue(out.contains("requeueing job \(id)"), out)
        XCTAssertTrue(out.contains("resumed from \(dir)/checkpoint.h5"), out)
        XCTAssertFalse(out.contains("rnn-dist: error"), out)
        XCTAssertEqual(try WeightsFile.read(from: dir + "/model.weights.h5").weights,
                       try WeightsFile.read(from: full + "/model.weights.h5").weights, "bit-identical to the uninterrupted run")
    }

    /// `scancel --signal=USR1 --batch`, the documented stop: a checkpoint marked SIGUSR1, exit 4,
    /// and no requeue (the script took every USR1 for the time-limit warning, requeued the job and
    /// trained it to the end). The job's mark stays in the run folder: only a job that finished
    /// (exit 0) cannot be requeued and resumed any more.
    func testUSR1ToTheBatchScriptStopsTheJobWithoutARequeue() throws {
        let dir = tmp.file("stopped")
        let id = try submit(dir, ["--epochs", "400"])
        waitForCheckpoint(dir, epoch: 2)
        let out = try signalBatchScript(id, "USR1")
        XCTAssertTrue(out.contains("interrupted by SIGUSR1; checkpoint written"), out)
        XCTAssertFalse(out.contains("requeueing"), out)
        XCTAssertFalse(out.contains("run 1,"), out)
        XCTAssertEqual(try Checkpoint.read(from: dir + "/checkpoint.h5").state.interruptedBy, "SIGUSR1")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/.slurm-job-\(id)"))
    }

    /// A job requeued before it wrote a checkpoint of its own does what its first run did: here it
    /// was to --overwrite an old unfinished run (another seed), and the rerun resumed that one
    /// instead (refused, exit 2; with matching flags it would have continued it silently). The
    /// first run is held before rnn-dist starts (a gate in RNN_DIST_BIN) and requeued there.
    func testARequeueBeforeTheJobsFirstCheckpointDoesNotResumeAnOlderRun() throws {
        let dir = tmp.file("overwritten")
        let old = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", dir] + common + ["--epochs", "2", "--seed", "7", "--stop-after-batches", "3"])
        XCTAssertEqual(old.status, 4, old.stderr)
        let gate = tmp.file("gate"), wrapper = tmp.file("gated-rnn-dist")
        try "#!/bin/sh\ntouch '\(gate).started'\nwhile [ ! -e '\(gate).open' ]; do sleep 0.1; done\nexec '\(Subprocess.rnnDist)' \"$@\"\n"
            .write(toFile: wrapper, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: wrapper)
        let id = try submit(dir, ["--epochs", "2", "--overwrite"], bin: wrapper)
        func waitFor(_ what: String, _ done: () -> Bool) {
            let start = Date()
            while !done() && Date().timeIntervalSince(start) < 120 { usleep(100_000) }
            XCTAssertTrue(done(), what)
        }
        waitFor("the first run reached rnn-dist") { FileManager.default.fileExists(atPath: gate + ".started") }
        XCTAssertEqual(try Subprocess.run("/usr/bin/scontrol", ["requeue", id], environment: slurmEnvironment()).status, 0)
        waitFor("the rerun started") { output(id).contains("job \(id) run 1,") }
        _ = FileManager.default.createFile(atPath: gate + ".open", contents: nil)
        waitForJob(id)
        let out = output(id)
        XCTAssertFalse(out.contains("resuming"), out)
        XCTAssertFalse(out.contains("rnn-dist: error"), out)
        let fresh = tmp.file("fresh")
        XCTAssertEqual(try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", fresh] + common + ["--epochs", "2"]).status, 0)
        XCTAssertEqual(try WeightsFile.read(from: dir + "/model.weights.h5").weights,
                       try WeightsFile.read(from: fresh + "/model.weights.h5").weights, "the job's own run, not the old one resumed")
    }

    /// A job requeued by `scontrol requeue` (SIGTERM to every process, then a rerun) after it wrote
    /// checkpoints of its own resumes its own, also when its flags say `--resume OLD`: the SIGTERM
    /// removed the job's mark, and the rerun resumed OLD again (the job's progress lost).
    func testARequeueAfterTheJobsOwnCheckpointResumesIt() throws {
        let old = tmp.file("old")
        let first = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", old] + common + ["--epochs", "8", "--stop-after-batches", "10"])
        XCTAssertEqual(first.status, 4, first.stderr)
        let dir = tmp.file("own")
        let id = try submit(dir, ["--epochs", "8", "--resume", old + "/checkpoint.h5"])
        waitForCheckpoint(dir, epoch: 3)
        XCTAssertEqual(try Subprocess.run("/usr/bin/scontrol", ["requeue", id], environment: slurmEnvironment()).status, 0)
        waitForJob(id)
        let out = output(id)
        guard let rerun = out.range(of: "job \(id) run 1,") else { return XCTFail("no rerun: \(out)") }
        let after = out[rerun.lowerBound...]
        XCTAssertTrue(after.contains("resumed from \(dir)/checkpoint.h5"), out)
        XCTAssertFalse(after.contains("resumed from \(old)/checkpoint.h5"), out)
        XCTAssertGreaterThanOrEqual(try HistoryFile.read(from: dir + "/history.h5").0.records.count, 8)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/.slurm-job-\(id)"), "the mark goes when the job ends")
    }

    /// scancel: every process gets SIGTERM; the ranks write a checkpoint marked interrupted before
    /// Slurm's SIGKILL, and it loads. A rank gets SIGTERM from Slurm and again from mpirun, and
    /// SIGUSR1, as which Launch/supervise passes its own SIGTERM on: the mark names the last of them
    /// before the write. (A rank once died of the second SIGTERM, with no checkpoint, in 2 of 3 runs.)
    func testScancelLeavesALoadableCheckpoint() throws {
        let dir = tmp.file("cancelled")
        let id = try submit(dir, ["--epochs", "400"])
        waitForCheckpoint(dir, epoch: 2)
        XCTAssertEqual(try Subprocess.run("/usr/bin/scancel", [id], environment: slurmEnvironment()).status, 0)
        waitForJob(id)
        let c = try Checkpoint.read(from: dir + "/checkpoint.h5")
        XCTAssertGreaterThanOrEqual(c.state.epoch, 2)
        XCTAssertTrue(["SIGTERM", "SIGUSR1"].contains(c.state.interruptedBy ?? "none"), c.state.interruptedBy ?? "no mark")
    }
}
