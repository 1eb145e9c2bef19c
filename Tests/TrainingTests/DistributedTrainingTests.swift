import XCTest
import Foundation
import TestSupport
@testable import HDF5
@testable import RNN
@testable import Training

/// `mpirun -n N rnn-dist train` on a small synthetic IMDB prepared by the real `prepare`:
/// world-size invariance, exact resume, failures that end the job promptly and cleanly.
final class DistributedTrainingTests: ToyIMDBTestCase {

    @discardableResult
    func train(_ n: Int, _ dir: String, _ extra: [String] = [], expect: Int32 = 0, mpirunArgs: [String] = []) throws -> ProcessResult {
        let args = ["train", "--data", dataset, "--run-dir", dir] + common + extra
        let r = try Subprocess.mpiRun(n, args, mpirunArgs: mpirunArgs, timeout: 120)
        XCTAssertFalse(r.timedOut, "mpirun -n \(n) \(args) hung")
        XCTAssertEqual(r.status, expect, "-n \(n) \(extra): \(r.stderr.suffix(1500))")
        return r
    }

    func weights(_ dir: String, _ name: String = "model.weights.h5") throws -> [Float] {
        try WeightsFile.read(from: dir + "/" + name).weights
    }

    func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        XCTAssertEqual(a.count, b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    func timeless(_ dir: String) throws -> [EpochRecord] {
        try HistoryFile.read(from: dir + "/history.h5").0.records.map {
            var r = $0; r.seconds = 0; r.samplesPerSecond = 0; r.mpiShare = 0; return r
        }
    }

    func testOneTwoAndFourRanksAgreeAfterAnEpoch() throws {
        for model in ["lstm", "gru", "simple-rnn"] {
            var w: [Int: [Float]] = [:], h: [Int: [EpochRecord]] = [:]
            for n in [1, 2, 4] {
                let dir = tmp.file("\(model)-n\(n)")
                let r = try train(n, dir, ["--epochs", "1", "--model", model])
                // One note when this host runs more ranks than it has cores, and only then.
                let cores = HostLoad.cores()
                XCTAssertEqual(r.stderr.components(separatedBy: "note: ").count - 1, n > cores ? 1 : 0, r.stderr)
                if n > cores {
                    XCTAssertTrue(r.stderr.contains("note: \(n) ranks on \(cores) core\(cores == 1 ? "" : "s"); -n \(cores) is likely faster"), r.stderr)
                }
                w[n] = try weights(dir)
                h[n] = try timeless(dir)
                XCTAssertEqual(try HistoryFile.read(from: dir + "/history.h5").2, n, "world size recorded")
            }
            // Other world sizes sum the gradients in another order (each rank's part, then the
            // all-reduce), so they agree up to Float rounding, compounded over 8 steps: 1e-4 on
            // weights of size ~0.1 is ~1000 ulp of headroom over the ~1e-7 seen here. Accuracy
            // may differ by a sample whose logit sits within rounding of 0 (1/256 of the training
            // rows, 1/64 of the validation rows).
            for n in [2, 4] {
                XCTAssertLessThanOrEqual(maxAbsDiff(w[1]!, w[n]!), 1e-4, "\(model) -n 1 vs -n \(n)")
                let a = h[1]![0], b = h[n]![0]
                XCTAssertEqual(a.loss, b.loss, accuracy: 1e-5, model)
                XCTAssertEqual(a.valLoss, b.valLoss, accuracy: 1e-5, model)
                XCTAssertEqual(a.acc, b.acc, accuracy: 1.0 / 256, model)
                XCTAssertEqual(a.valAcc, b.valAcc, accuracy: 1.0 / 64, model)
            }
            // Training did move the weights: the agreement is not that of untouched replicas.
            let initial = RNN.Model(config: try WeightsFile.read(from: tmp.file("\(model)-n1/model.weights.h5")).metadata.config.model, seed: 5).weights
            XCTAssertGreaterThan(maxAbsDiff(w[1]!, initial), 1e-3, model)
        }
    }

    /// TensorBoard's (tag, step) pairs over every event file of a folder, and history.csv without
    /// its timing columns.
    func logs(_ dir: String) throws -> ([String: [Int64]], [String]) {
        var steps: [String: [Int64]] = [:]
        for e in try EventReader.read(directory: dir + "/tb").joined() {
            for v in e.values where v.tag != "config" { steps[v.tag, default: []].append(e.step) }
        }
        let csv = try String(contentsOfFile: dir + "/history.csv", encoding: .utf8).split(separator: "\n")
        return (steps.mapValues { $0.sorted() }, csv.map { $0.split(separator: ",").prefix(5).joined(separator: ",") })
    }

    func testResumeAtTheSameWorldSizeIsBitIdentical() throws {
        let full = tmp.file("full")
        let tb = ["--log-every", "2"]
        try train(2, full, ["--epochs", "2", "--tensorboard", full + "/tb"] + tb)
        for stop in [3, 10] {                       // mid-epoch 1; in epoch 2 (8 batches per epoch)
            let dir = tmp.file("stop\(stop)")
            let r = try train(2, dir, ["--epochs", "2", "--stop-after-batches", "\(stop)", "--tensorboard", dir + "/tb"] + tb,
                              expect: 4)
            XCTAssertTrue(r.stderr.contains("checkpoint written"), r.stderr)
            try train(2, dir, ["--epochs", "2", "--resume", dir + "/checkpoint.h5", "--tensorboard", dir + "/tb"] + tb)
            // The logs continue where the checkpoint was: no step twice, none missing, the same CSV rows.
            let (a, b) = (try logs(dir), try logs(full))
            XCTAssertEqual(a.0, b.0, "TensorBoard steps, stopped after \(stop)")
            XCTAssertEqual(a.0["batch_loss"], [2, 4, 6, 8, 10, 12, 14, 16])
            XCTAssertEqual(a.1, b.1, "history.csv, stopped after \(stop)")
            // Bit-identical on any BLAS kernel: the resumed run makes the same calls with the same
            // shapes on the same data in the same order as the uninterrupted one, and a kernel
            // is deterministic for a given call.
            XCTAssertEqual(try weights(dir), try weights(full), "stopped after \(stop) batches")
            XCTAssertEqual(try timeless(dir), try timeless(full))
            XCTAssertEqual(try Checkpoint.read(from: dir + "/checkpoint.h5").slots,
                           try Checkpoint.read(from: full + "/checkpoint.h5").slots)
        }
    }

    /// Rewrites a file's stored config in the format of the builds before the layer list
    /// (2026-12-04): the model as the preset's fields, keys sorted, as that build wrote them.
    func writeOldConfigFormat(_ path: String) throws {
        let f = try H5File.open(path, writable: true)
        let g = try f.group("rnn_dist")
        var config = try JSONSerialization.jsonObject(with: Data(try g.stringAttribute("config").utf8)) as! [String: Any]
        let stored = try JSONDecoder().decode(TrainConfig.self, from: Data(try g.stringAttribute("config").utf8))
        let p = try XCTUnwrap(stored.model.preset)
        config["model"] = ["kind": p.kind.rawValue, "numWords": p.numWords, "embedDim": p.embedDim, "units": p.units,
                           "layers": p.layers, "bidirectional": p.bidirectional, "dropout": p.dropout,
                           "recurrentDropout": p.recurrentDropout, "resetAfter": p.resetAfter]
        let json = try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys])
        try g.setAttribute("config", String(decoding: json, as: UTF8.self))
        try f.close()
        XCTAssertTrue(try H5File.open(path).group("rnn_dist").stringAttribute("config").contains(#""kind":"gru","layers":2"#))
    }

    /// A checkpoint and a weights file whose config has the old format load as the same model: the
    /// run resumes bit-identically to the uninterrupted one, and `eval` scores the weights alike.
    func testFilesOfTheOldConfigFormatResumeAndEvaluate() throws {
        let flags = ["--epochs", "2", "--model", "gru", "--layers", "2", "--dropout", "0.2"]
        let full = tmp.file("full")
        try train(2, full, flags)
        let dir = tmp.file("old")
        try train(2, dir, flags + ["--stop-after-batches", "3"], expect: 4)
        try writeOldConfigFormat(dir + "/checkpoint.h5")
        try train(2, dir, flags + ["--resume", dir + "/checkpoint.h5"])
        XCTAssertEqual(try weights(dir), try weights(full))
        XCTAssertEqual(try Checkpoint.read(from: dir + "/checkpoint.h5").slots, try Checkpoint.read(from: full + "/checkpoint.h5").slots)
        // A refused change still names the flag when the checkpoint has the old format.
        try writeOldConfigFormat(dir + "/checkpoint.h5")
        let r = try train(2, dir, ["--epochs", "3", "--model", "gru", "--layers", "2", "--resume", dir + "/checkpoint.h5"], expect: 2)
        XCTAssertTrue(r.stderr.contains("--dropout = 0.2") && r.stderr.contains("asks for 0.0"), r.stderr)

        let weightsFile = full + "/model.weights.h5"
        let new = try Subprocess.rnnDist(["eval", "--weights", weightsFile, "--data", dataset, "--split", "val", "--json"])
        try writeOldConfigFormat(weightsFile)
        let old = try Subprocess.rnnDist(["eval", "--weights", weightsFile, "--data", dataset, "--split", "val", "--json"])
        XCTAssertEqual(new.status, 0, new.stderr)
        func metrics(_ r: ProcessResult) -> [Substring] { r.stdout.split(separator: "\n").filter { !$0.contains("seconds") } }
        XCTAssertEqual(metrics(old), metrics(new))
        XCTAssertTrue(old.stdout.contains(#""accuracy""#), old.stdout)
        XCTAssertEqual(try WeightsFile.read(from: weightsFile).metadata.config.model,
                       ModelConfig(kind: .gru, numWords: try TrainingDataset.open(dataset).numWords, embedDim: 8, units: 8,
                                   layers: 2, dropout: 0.2))
    }

    func testResumeAtAnotherWorldSizeAgreesUpToSummationOrder() throws {
        let full = tmp.file("full")
        try train(1, full, ["--epochs", "2"])
        let dir = tmp.file("re")
        try train(2, dir, ["--epochs", "2", "--stop-after-batches", "5"], expect: 4)
        try train(4, dir, ["--epochs", "2", "--resume", dir + "/checkpoint.h5"])
        XCTAssertLessThanOrEqual(maxAbsDiff(try weights(dir), try weights(full)), 1e-4)
        XCTAssertEqual(try timeless(dir).count, 2)
    }

    func testChangedModelSettingsAreRefusedOnResume() throws {
        let dir = tmp.file("mm")
        try train(2, dir, ["--epochs", "1", "--stop-after-batches", "2"], expect: 4)
        let r = try train(2, dir, ["--epochs", "1", "--units", "16", "--resume", dir + "/checkpoint.h5"], expect: 2)
        XCTAssertTrue(r.stderr.contains("--units = 8") && r.stderr.contains("asks for 16"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("rnn-dist: error:") }.count, 1, r.stderr)
        // Epochs may change.
        try train(2, dir, ["--epochs", "2", "--resume", dir + "/checkpoint.h5"])
    }

    func testDamagedCheckpointsEndEveryRankWithOneLine() throws {
        let dir = tmp.file("dmg")
        try train(2, dir, ["--epochs", "1"])
        let good = try Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoint.h5"))
        var flipped = [UInt8](good)
        for k in 1 ..< 12 { flipped[good.count * k / 12] ^= 0xFF }   // damage spread over the file
        let cases: [(String, Data)] = [("truncated", good.prefix(good.count / 3)), ("flipped", Data(flipped)),
                                       ("garbage", Data(repeating: 0x42, count: 5000)), ("empty", Data())]
        for (name, bytes) in cases {
            let p = tmp.file("\(name).h5")
            try bytes.write(to: URL(fileURLWithPath: p))
            // No rank may wait for ever: `train` fails the test when mpirun outlives its timeout.
            let r = try train(2, tmp.file("out-\(name)"), ["--epochs", "2", "--resume", p], expect: 2)
            let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("rnn-dist: error:") }
            XCTAssertEqual(lines.count, 1, "\(name): \(r.stderr)")
            XCTAssertTrue(lines.first?.contains(p) ?? false, "\(name): \(r.stderr)")
        }
        // A missing dataset, likewise.
        let r = try Subprocess.mpiRun(2, ["train", "--data", tmp.file("nope.h5"), "--run-dir", tmp.file("x")], timeout: 60)
        XCTAssertEqual(r.status, 2, "bad input: exit 2, " + r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("rnn-dist: error:") }.count, 1, r.stderr)
    }

    /// A dataset or checkpoint whose checksummed metadata crash HDF5 1.10.8 (TestSupport's
    /// `redirectLinkHeap`): every rank reads it and faulted (exit 139 and a backtrace per rank). Now
    /// the job ends with exit 2 (bad input: not restarted by supervise) and a line naming the file.
    func testFilesThatCrashHDF5EndTheJobWithOneLine() throws {
        let dir = tmp.file("ok")
        try train(1, dir, ["--epochs", "1"])
        let data = tmp.file("crafted-data.h5"), checkpoint = tmp.file("crafted-checkpoint.h5")
        try FileManager.default.copyItem(atPath: dataset, toPath: data)
        try FileManager.default.copyItem(atPath: dir + "/checkpoint.h5", toPath: checkpoint)
        XCTAssertTrue(try redirectLinkHeap(in: data))
        XCTAssertTrue(try redirectLinkHeap(in: checkpoint))
        for (label, args) in [("dataset", ["train", "--data", data, "--run-dir", tmp.file("d")] + common),
                              ("checkpoint", ["train", "--data", dataset, "--run-dir", tmp.file("c")] + common
                                + ["--epochs", "2", "--resume", checkpoint])] {
            let r = try Subprocess.mpiRun(2, args, timeout: 60)
            XCTAssertFalse(r.timedOut, "\(label): hang")
            XCTAssertEqual(r.status, 2, "\(label): \(r.stderr.suffix(1500))")
            // Rank 0 says it at once; rank 1, which waits before it says it, is ended by mpirun first.
            let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("rnn-dist: error:") }
            XCTAssertEqual(lines.count, 1, "\(label): \(r.stderr.suffix(1500))")
            XCTAssertFalse(r.stderr.contains("Backtrac") || r.stderr.contains("Program crashed"), r.stderr.suffix(1500) + "")
            XCTAssertTrue(lines.first?.contains(label == "dataset" ? data : checkpoint) ?? false, r.stderr.suffix(1500) + "")
        }
        // eval and a single process: the same line, exit 2.
        let r = try Subprocess.rnnDist(["eval", "--weights", checkpoint, "--data", dataset], timeout: 60)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("rnn-dist: error: \(checkpoint): "), r.stderr)
    }

    func testTCPTransport() throws {
        let a = tmp.file("tcp"), b = tmp.file("shm")
        try train(2, a, ["--epochs", "1"], mpirunArgs: ["--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo",
                                                         "--mca", "oob_tcp_if_include", "lo"])
        try train(2, b, ["--epochs", "1"])
        // Exact on any kernel and transport: with 2 ranks each reduced value is one addition a + b,
        // which is commutative, so no algorithm choice of the transport can change it.
        XCTAssertEqual(try weights(a), try weights(b), "same ranks, same summation order, other transport")
    }

    /// `mpirun -n 2 rnn-dist train …` in the background, returned once `file` exists in the run
    /// folder (waiting at most 60 s); stderr into `stderr`, or nowhere.
    private func startTraining(_ dir: String, _ extra: [String], waitFor file: String, stderr: Pipe? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Subprocess.mpirun)
        p.arguments = ["-n", "2", Subprocess.rnnDist, "train", "--data", dataset, "--run-dir", dir] + common + extra
        p.environment = Subprocess.mpiEnvironment
        p.standardOutput = FileHandle.nullDevice
        p.standardError = stderr ?? FileHandle.nullDevice
        try p.run()
        let start = Date()
        while !FileManager.default.fileExists(atPath: dir + "/" + file) && Date().timeIntervalSince(start) < 60 { usleep(50_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + file), "\(file) never appeared")
        return p
    }

    /// Waits until `p` ends and returns the seconds it took. The 60 s bound only tells a hang from
    /// an ending, on any CPU: it is not a performance claim, so it is generous.
    @discardableResult
    private func waitForEnd(_ p: Process, after what: String) -> Double {
        let start = Date()
        while p.isRunning && Date().timeIntervalSince(start) < 60 { usleep(50_000) }
        XCTAssertFalse(p.isRunning, "mpirun still running 60 s after \(what)")
        return Date().timeIntervalSince(start)
    }

    func testKillingOneRankEndsTheJobAndKeepsTheCheckpoint() throws {
        let dir = tmp.file("kill")
        let p = try startTraining(dir, ["--epochs", "400", "--checkpoint-every", "2"], waitFor: "checkpoint.h5")
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        usleep(300_000)
        // The ranks are mpirun's children: kill one of them, not mpirun.
        let pgrep = try Subprocess.run("/usr/bin/pgrep", ["-P", "\(p.processIdentifier)"])
        let ranks = pgrep.stdout.split(separator: "\n").compactMap { Int32($0) }
        XCTAssertEqual(ranks.count, 2, pgrep.stdout)
        guard let victim = ranks.last else { return }
        kill(victim, SIGKILL)
        // Open MPI notices the dead rank and ends the others (1–3 s here, plus the 2 s kill grace).
        let seconds = waitForEnd(p, after: "a rank was killed")
        print(String(format: "killed rank: mpirun ended %.1f s later", seconds))
        XCTAssertNotEqual(p.terminationStatus, 0)
        // The last checkpoint is complete and resumes.
        let ckpt = dir + "/checkpoint.h5"
        let c = try Checkpoint.read(from: ckpt)
        XCTAssertGreaterThan(c.state.epoch * 8 + c.state.nextBatch, 0)
        try train(2, dir, ["--epochs", "\(c.state.epoch + 1)", "--resume", ckpt])
    }

    /// A NaN or +∞ written into rank 1's gradient sum before the all-reduce (the injected fault,
    /// so the outcome does not depend on how a BLAS kernel sums a blow-up): every rank sees it in
    /// the reduced gradient and stops before the update; one error line names epoch and batch; the
    /// last checkpoint is the step before and loads; no weights file is written after the fault.
    func testNonFiniteGradientOnOneRankStopsEveryRankWithEpochAndBatch() throws {
        // 8 batches per epoch: step 3 is epoch 1 batch 3, step 11 is epoch 2 batch 3.
        for (fault, epoch, batch) in [("nan@1:3", 1, 3), ("inf@1:11", 2, 3), ("-inf@0:5", 1, 5)] {
            let dir = tmp.file("fault-\(fault)")
            let r = try train(2, dir, ["--epochs", "3", "--checkpoint-every", "1", "--inject-fault=\(fault)"], expect: 3)
            let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("rnn-dist: error:") }
            XCTAssertEqual(lines.count, 1, r.stderr)
            XCTAssertTrue(lines.first?.contains("gradient became non-finite at epoch \(epoch), batch \(batch);") ?? false,
                          "\(fault): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("MPI_ABORT"), "a collective stop, not an abort: \(r.stderr)")
            let c = try Checkpoint.read(from: dir + "/checkpoint.h5")
            XCTAssertEqual(c.state.epoch, epoch - 1, fault)
            XCTAssertEqual(c.state.nextBatch, batch - 1, fault)
            XCTAssertEqual(c.iterations, (epoch - 1) * 8 + batch - 1, fault)
            // The weights file is the last epoch end's (none in epoch 1), not the faulty step's.
            let wrote = FileManager.default.fileExists(atPath: dir + "/model.weights.h5")
            XCTAssertEqual(wrote, epoch > 1, fault)
            if wrote { XCTAssertEqual(try timeless(dir).count, epoch - 1, fault) }
            // The checkpoint resumes, and without the fault the run finishes.
            try train(2, dir, ["--epochs", "\(epoch)", "--resume", dir + "/checkpoint.h5"])
        }
    }

    /// A bad command line under mpirun: every rank parses it, the first alone says so (one line).
    func testABadCommandLineUnderMPIIsOneLine() throws {
        let r = try Subprocess.mpiRun(3, ["train", "--lr", "fast"])
        XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("rnn-dist: error:") }.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("--lr"), r.stderr)
    }

    func testTheFaultHookRejectsMalformedValues() throws {
        for bad in ["nan", "nan@1", "zero@1:3", "nan@-1:3", "nan@1:0"] {
            let r = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("x"), "--inject-fault", bad])
            XCTAssertEqual(r.status, 64, "\(bad): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("--inject-fault"), r.stderr)
        }
    }

    func testSIGTERMFinishesTheBatchWritesACheckpointAndExitsNonZero() throws {
        let dir = tmp.file("term")
        let err = Pipe()
        // Once the first epoch's files exist, ask mpirun to stop.
        let p = try startTraining(dir, ["--epochs", "400"], waitFor: "history.h5", stderr: err)
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        kill(p.processIdentifier, SIGTERM)
        waitForEnd(p, after: "SIGTERM")
        XCTAssertNotEqual(p.terminationStatus, 0)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        // mpirun forwards SIGTERM to the ranks; they agree to stop through the next all-reduce,
        // finish that batch, and rank 0 writes the checkpoint, which is complete and resumes.
        // A stop on purpose, not an error (log scanners and operators read "error:" as a failure).
        XCTAssertTrue(stderr.contains("rnn-dist: interrupted by SIGTERM; checkpoint written"), stderr)
        let c = try Checkpoint.read(from: dir + "/checkpoint.h5")
        // mpirun reports 1 for a SIGTERM'ed job whatever the ranks did: the checkpoint's mark tells a
        // clean interruption from a failure.
        XCTAssertEqual(c.state.interruptedBy, "SIGTERM")
        print("SIGTERM: mpirun exit \(p.terminationStatus); checkpoint at epoch \(c.state.epoch + 1) batch \(c.state.nextBatch + 1)")
        try train(2, dir, ["--epochs", "\(c.state.epoch + 1)", "--resume", dir + "/checkpoint.h5"])
    }

    /// SIGUSR1 is the documented stop: mpirun passes it on without killing the ranks; they finish the
    /// batch, write a checkpoint marked with the signal, and mpirun exits 4. The resumed run's
    /// checkpoints carry no mark.
    func testSIGUSR1StopsWithACheckpointAndExitFour() throws {
        let dir = tmp.file("usr1")
        let p = try startTraining(dir, ["--epochs", "400"], waitFor: "history.h5")
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        kill(p.processIdentifier, SIGUSR1)
        waitForEnd(p, after: "SIGUSR1")
        XCTAssertEqual(p.terminationStatus, 4)
        let c = try Checkpoint.read(from: dir + "/checkpoint.h5")
        XCTAssertEqual(c.state.interruptedBy, "SIGUSR1")
        let info = try Subprocess.rnnDist(["inspect", dir + "/checkpoint.h5"])
        XCTAssertTrue(info.stdout.contains("written when SIGUSR1 stopped the run"), info.stdout)
        try train(2, dir, ["--epochs", "\(c.state.epoch + 2)", "--resume", dir + "/checkpoint.h5"])
        XCTAssertNil(try Checkpoint.read(from: dir + "/checkpoint.h5").state.interruptedBy)
    }

    /// A stop signal that reaches a rank while it starts (before MPI_Init; injected, as a launcher's
    /// SIGUSR1 in a job's first 0.3 s) is kept: the job stops after its first batch with a checkpoint,
    /// exit 4, and one process exits 4 at once. SIGUSR1's default action ended such a rank (mpirun
    /// exit 138, no checkpoint).
    func testAStopSignalWhileTheRanksStartIsKept() throws {
        let dir = tmp.file("usr1-start")
        let r = try train(2, dir, ["--epochs", "2", "--inject-stop-start", "0"], expect: 4)
        XCTAssertTrue(r.stderr.contains("rnn-dist: interrupted by SIGUSR1; checkpoint written"), r.stderr)
        let c = try Checkpoint.read(from: dir + "/checkpoint.h5")
        XCTAssertEqual(c.state.interruptedBy, "SIGUSR1")
        XCTAssertEqual([c.state.epoch, c.state.nextBatch], [0, 1], "stopped after the first batch")
        let one = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("usr1-start-1")] + common
                                         + ["--inject-stop-start", "0"])
        XCTAssertEqual(one.status, 4, one.stderr)
        XCTAssertTrue(one.stderr.contains("stopped by a signal during set-up, before training: no checkpoint written"), one.stderr)
        // Earlier still: first thing in main, before the command line is parsed (the handlers were
        // set ~60 ms after the process started; a signal before that ended it, exit 138).
        let job = try train(2, tmp.file("usr1-main"), ["--epochs", "2", "--inject-stop-main"], expect: 4)
        XCTAssertTrue(job.stderr.contains("rnn-dist: interrupted by SIGUSR1; checkpoint written"), job.stderr)
        XCTAssertEqual(try Checkpoint.read(from: tmp.file("usr1-main") + "/checkpoint.h5").state.nextBatch, 1)
        let main = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("usr1-main-1")] + common + ["--inject-stop-main"])
        XCTAssertEqual(main.status, 4, main.stderr)
        XCTAssertFalse(main.signaled, main.stderr)
        XCTAssertTrue(main.stderr.contains("stopped by a signal during set-up, before training: no checkpoint written"), main.stderr)
        // Across the re-execution for a better OpenBLAS kernel (forced here): the signal caught before
        // it is kept, blocked, for the new image.
        var env = Subprocess.mpiEnvironment
        env["RNN_DIST_TEST_REEXEC"] = "1"
        let again = try Subprocess.run(Subprocess.rnnDist, ["train", "--data", dataset, "--run-dir", tmp.file("usr1-exec")] + common
                                       + ["--inject-stop-main"], environment: env, timeout: 120)
        XCTAssertTrue(again.stderr.contains("test hook: executing again"), again.stderr)
        XCTAssertEqual(again.status, 4, again.stderr)
        XCTAssertTrue(again.stderr.contains("stopped by a signal during set-up, before training"), again.stderr)
        // The other commands' signals are as they were: a re-executed predict left INT, TERM and USR1
        // blocked for good (Ctrl-C did nothing).
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Subprocess.rnnDist)
        p.arguments = ["predict", "--weights", tmp.file("usr1-main") + "/checkpoint.h5"]   // reads texts from stdin
        p.environment = env
        let input = Pipe()
        p.standardInput = input
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        var blocked: String?
        for _ in 0 ..< 100 where blocked == nil {
            usleep(50_000)
            let status = (try? String(contentsOfFile: "/proc/\(p.processIdentifier)/status", encoding: .utf8)) ?? ""
            if status.contains("State:\tS") && status.contains("SigBlk:") {   // waiting for its texts
                blocked = status.split(separator: "\n").first { $0.hasPrefix("SigBlk:") }.map { String($0.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            }
        }
        let mask = UInt64(blocked ?? "", radix: 16)
        XCTAssertNotNil(mask, "predict's SigBlk: \(blocked ?? "none")")
        for s in [SIGINT, SIGTERM, SIGUSR1] { XCTAssertEqual((mask ?? 0) >> (UInt64(s) - 1) & 1, 0, "signal \(s) is blocked in predict") }
        kill(p.processIdentifier, SIGTERM)
        for _ in 0 ..< 200 where p.isRunning { usleep(50_000) }
        XCTAssertFalse(p.isRunning, "SIGTERM did not end predict")
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal, "SIGTERM ends predict")
    }

    /// Launch/supervise: a rank killed three times during one run (SIGKILL, after the checkpoints of
    /// epochs 2, 5 and 8) → three restarts from the last checkpoint, each logged with its cause, and
    /// the run finishes with weights and history bit-identical to an uninterrupted run at the same N.
    func testASupervisedRunSurvivesThreeKilledRanksBitIdentically() throws {
        let full = tmp.file("unkilled"), dir = tmp.file("killed")
        let flags = ["--epochs", "12", "--checkpoint-every", "2"]
        try train(2, full, flags)
        let (p, err) = try startSupervise(["--max-restarts", "5", "--data", dataset, "--run-dir", dir] + common + flags)
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        var killed: [Int32] = []
        for epoch in [2, 5, 8] {
            // Wait for that epoch's checkpoint, then SIGKILL one rank of the current job.
            let start = Date()
            while ((try? Checkpoint.read(from: dir + "/checkpoint.h5"))?.state.epoch ?? 0) < epoch && p.isRunning
                    && Date().timeIntervalSince(start) < 90 { usleep(50_000) }
            var victim: Int32?
            while victim == nil && p.isRunning && Date().timeIntervalSince(start) < 90 {
                let ranks = try Subprocess.run("/usr/bin/pgrep", ["-f", "^\(Subprocess.rnnDist) train .*\(dir)"])
                victim = ranks.stdout.split(separator: "\n").compactMap { Int32($0) }.filter { !killed.contains($0) }.last
                if victim == nil { usleep(50_000) }
            }
            guard let victim else { return XCTFail("no rank to kill before epoch \(epoch)'s checkpoint") }
            kill(victim, SIGKILL)
            killed.append(victim)
        }
        waitForEnd(p, after: "the third kill (a 60 s bound per wait)")
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 0, stderr.suffix(2000).description)
        let restarts = stderr.split(separator: "\n").filter { $0.hasPrefix("supervise: restart") }
        XCTAssertEqual(restarts.count, 3, stderr)
        XCTAssertTrue(restarts.allSatisfy { $0.contains("a rank was killed by signal 9") || $0.contains("a rank failed") }, stderr)
        XCTAssertEqual(try weights(dir), try weights(full), "bit-identical to the uninterrupted run")
        XCTAssertEqual(try timeless(dir), try timeless(full))
    }

    /// `Launch/supervise ARGS` with this build at 2 ranks, pausing 4 s before retrying a busy run folder.
    func supervise(_ args: [String]) throws -> ProcessResult {
        var env = Subprocess.mpiEnvironment
        env["RANKS"] = "2"
        env["RNN_DIST_BIN"] = Subprocess.rnnDist
        env["SUPERVISE_BUSY_PAUSE"] = "4"
        return try Subprocess.run("/bin/bash", [Subprocess.packageRoot.appendingPathComponent("Launch/supervise").path] + args,
                                  environment: env, timeout: 120)
    }

    /// Bad input is never restarted: the supervisor passes exit 2 on at once.
    func testTheSupervisorDoesNotRestartBadInput() throws {
        let r = try supervise(["--max-restarts", "3", "--data", tmp.file("missing.h5"), "--run-dir", tmp.file("r")])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertFalse(r.stderr.contains("supervise: restart"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("rnn-dist: error:") }.count, 1, r.stderr)
    }

    /// A run folder in use by another run (exit 5) is retried after a pause: here the holder, on
    /// another host as far as the lock says, lets go during the first pause and the retry trains.
    func testTheSupervisorRetriesABusyRunFolder() throws {
        let dir = tmp.file("busy")
        let fd = try holdRunFolderLock(dir, holder: "pid 4244 on host another-host, since 2026-12-04T00:00:00Z")
        DispatchQueue.global().asyncAfter(deadline: .now() + 2) { close(fd) }
        // The rank count is read again for the restart (RUN_DIR/ranks), and its log line says so.
        DispatchQueue.global().asyncAfter(deadline: .now() + 1) { try? Data("1\n".utf8).write(to: URL(fileURLWithPath: dir + "/ranks")) }
        let r = try supervise(["--max-restarts", "2", "--data", dataset, "--run-dir", dir] + common + ["--epochs", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("supervise: restart 1/2 after exit 5 (the run folder was in use)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("with: mpirun -n 1"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/model.weights.h5"))
    }

    /// A RUN_DIR/ranks without a usable count is ignored with one line per attempt (a restart read it
    /// twice, and said so twice).
    func testABadRanksFileIsReportedOncePerAttempt() throws {
        let dir = tmp.file("badranks")
        let fd = try holdRunFolderLock(dir, holder: "pid 4252 on host another-host, since 2026-12-07T00:00:00Z")
        try Data("none\n".utf8).write(to: URL(fileURLWithPath: dir + "/ranks"))
        DispatchQueue.global().asyncAfter(deadline: .now() + 2) { close(fd) }
        let r = try supervise(["--max-restarts", "2", "--data", dataset, "--run-dir", dir] + common + ["--epochs", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("supervise: restart 1/2 after exit 5"), r.stderr)
        let said = r.stderr.split(separator: "\n").filter { $0.contains("holds no rank count of 1 or more: ignored (2 ranks)") }
        XCTAssertEqual(said.count, 2, r.stderr)
    }

    /// A restart before the job wrote its first checkpoint repeats the first attempt: it does not
    /// resume a checkpoint that was in the folder before (here an old finished run with another
    /// seed, which such a resume would refuse — or, with matching flags, silently continue).
    func testARestartBeforeTheFirstCheckpointDoesNotResumeAnOlderRun() throws {
        let dir = tmp.file("older")
        let old = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", dir] + common + ["--epochs", "1", "--seed", "7"])
        XCTAssertEqual(old.status, 0, old.stderr)
        // Another run holds the folder at first (on another host, as far as the lock says): exit 5, a restart.
        let lock = open(dir + "/.lock", O_RDWR)
        XCTAssertEqual(flock(lock, LOCK_EX | LOCK_NB), 0)
        let note = "pid 4248 on host another-host, since 2026-12-06T00:00:00Z\n"
        _ = ftruncate(lock, 0)
        _ = note.withCString { pwrite(lock, $0, strlen($0), 0) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 2) { close(lock) }
        let r = try supervise(["--max-restarts", "2", "--data", dataset, "--run-dir", dir] + common + ["--epochs", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("supervise: restart 1/2 after exit 5 (the run folder was in use), as first started"), r.stderr)
        let fresh = tmp.file("fresh")
        XCTAssertEqual(try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", fresh] + common + ["--epochs", "1"]).status, 0)
        XCTAssertEqual(try weights(dir), try weights(fresh), "a new run, not the old one resumed")
    }

    /// A checkpoint that another run writes while it holds the folder (this job's attempt exits 5)
    /// is that run's: the restart starts as first started. It was resumed as the job's own (here
    /// refused for its other seed, exit 2; with matching flags it would have continued that run).
    func testACheckpointWrittenWhileAnotherRunHeldTheFolderIsNotTheJobsOwn() throws {
        let dir = tmp.file("taken")
        let (status, text) = try superviseWhileAnotherRunReplacesTheCheckpoint(dir, ["--epochs", "1"])
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("supervise: restart 1/2 after exit 5 (the run folder was in use), as first started"), text)
        let fresh = tmp.file("fresh")
        XCTAssertEqual(try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", fresh] + common + ["--epochs", "1"]).status, 0)
        XCTAssertEqual(try weights(dir), try weights(fresh), "this job's run, not the other one resumed")
    }

    /// A job that resumes its run folder's checkpoint in place (as a Slurm rerun does) owns that
    /// checkpoint from its start: another run that replaces it while the job waits for the folder
    /// (exit 5) ends the supervision with exit 5. The other run's checkpoint was resumed as the job's.
    func testAResumeInPlaceOwnsItsCheckpointFromTheStart() throws {
        let dir = tmp.file("inplace")
        XCTAssertEqual(try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", dir] + common + ["--epochs", "2", "--stop-after-batches", "3"]).status, 4)
        let (status, text) = try superviseWhileAnotherRunReplacesTheCheckpoint(dir, ["--epochs", "2", "--resume", dir + "/checkpoint.h5"])
        XCTAssertEqual(status, 5, text)
        XCTAssertTrue(text.contains("checkpoint.h5 is no longer this job's (another run replaced it while this one waited for the folder)"), text)
    }

    /// Launch/supervise on `dir` with these flags while another run (seed 7) holds the folder: once
    /// the job's first attempt has exited 5, that run writes its checkpoint there (by rename, as
    /// rnn-dist does) and lets go. The supervisor's status and stderr.
    func superviseWhileAnotherRunReplacesTheCheckpoint(_ dir: String, _ flags: [String]) throws -> (Int32, String) {
        let other = dir + "-other"
        XCTAssertEqual(try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", other] + common + ["--epochs", "1", "--seed", "7"]).status, 0)
        let fd = try holdRunFolderLock(dir, holder: "pid 4250 on host another-host, since 2026-12-07T00:00:00Z")
        return try superviseThroughABusyPause(["--max-restarts", "2", "--data", dataset, "--run-dir", dir] + common + flags) { _ in
            XCTAssertEqual(rename(other + "/checkpoint.h5", dir + "/checkpoint.h5"), 0)
            close(fd)
        }
    }

    /// Runs Launch/supervise ARGS (2 ranks, a busy pause of `pause` s); once its first attempt has
    /// exited 5 (it pauses: a `sleep` child), calls `duringPause` with its pid; returns its status and
    /// stderr.
    func superviseThroughABusyPause(_ args: [String], pause: Int = 3, duringPause: (pid_t) -> Void) throws -> (Int32, String) {
        var env = Subprocess.mpiEnvironment
        env["RANKS"] = "2"
        env["RNN_DIST_BIN"] = Subprocess.rnnDist
        env["SUPERVISE_BUSY_PAUSE"] = "\(pause)"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Subprocess.packageRoot.appendingPathComponent("Launch/supervise").path] + args
        p.environment = env
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let start = Date()
        while (try? Subprocess.run("/usr/bin/pgrep", ["-P", "\(p.processIdentifier)", "-x", "sleep"]))?.status != 0
                && p.isRunning && Date().timeIntervalSince(start) < 60 { usleep(50_000) }
        duringPause(p.processIdentifier)
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    /// The supervisor's own command line: a flag without its value, a missing program (it was run,
    /// and its exit 132 restarted as "a rank was killed by signal 4"), and a stop signal during the
    /// pause after exit 5, which waited for the whole pause.
    func testTheSupervisorRefusesABadCommandLineAndStopsDuringItsPause() throws {
        let bare = try supervise(["--data", dataset, "--max-restarts"])
        XCTAssertEqual(bare.status, 64, bare.stderr)
        XCTAssertTrue(bare.stderr.contains("supervise: --max-restarts needs a number"), bare.stderr)
        // More digits than bash's integers hold: "integer expression expected", then no limit at all.
        let huge = try supervise(["--max-restarts", "99999999999999999999", "--data", dataset])
        XCTAssertEqual(huge.status, 64, huge.stderr)
        XCTAssertEqual(huge.stderr, "supervise: --max-restarts must be at most 999999 (got '99999999999999999999')\n")
        // A rank count mpirun cannot take: every attempt failed (exit 1) and was restarted.
        for ranks in ["abc", "0", "-2"] {
            var env = Subprocess.mpiEnvironment
            env["RANKS"] = ranks
            env["RNN_DIST_BIN"] = Subprocess.rnnDist
            let r = try Subprocess.run("/bin/bash", [Subprocess.packageRoot.appendingPathComponent("Launch/supervise").path,
                                                     "--data", dataset, "--run-dir", tmp.file("ranks")], environment: env, timeout: 60)
            XCTAssertEqual(r.status, 64, "RANKS=\(ranks): \(r.stderr)")
            XCTAssertEqual(r.stderr, "supervise: RANKS must be a whole number of ranks, 1 or more (got '\(ranks)')\n")
        }
        var env = Subprocess.mpiEnvironment
        env["RNN_DIST_BIN"] = tmp.file("no-such-rnn-dist")
        let missing = try Subprocess.run("/bin/bash", [Subprocess.packageRoot.appendingPathComponent("Launch/supervise").path,
                                                       "--data", dataset, "--run-dir", tmp.file("m")], environment: env, timeout: 60)
        XCTAssertEqual(missing.status, 2, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("no-such-rnn-dist: no rnn-dist program there"), missing.stderr)
        XCTAssertFalse(missing.stderr.contains("restart"), missing.stderr)

        // A SIGTERM in the pause after exit 5 (60 s here) ends the supervision at once.
        let dir = tmp.file("paused")
        let fd = try holdRunFolderLock(dir, holder: "pid 4251 on host another-host, since 2026-12-07T00:00:00Z")
        defer { close(fd) }
        var signalled = Date()
        let (status, text) = try superviseThroughABusyPause(["--data", dataset, "--run-dir", dir] + common, pause: 60) { pid in
            signalled = Date()
            kill(pid, SIGTERM)
        }
        XCTAssertLessThan(Date().timeIntervalSince(signalled), 10, "stopped within the 60 s pause")
        XCTAssertEqual(status, 4, text)
        XCTAssertTrue(text.contains("supervise: stopped by a signal before restart 1: not restarted"), text)
    }

    /// --timeline: one Chrome trace with a named track per rank, every span well nested in its
    /// track, a `step` per batch on every rank; an interrupted run keeps the trace of what it did up
    /// to its checkpoint (Chrome's array format may then lack its closing bracket).
    func testTheTimelineHasATrackPerRankWithWellNestedSpans() throws {
        for (n, stop) in [(2, nil), (4, 5)] as [(Int, Int?)] {
            let dir = tmp.file("timeline-\(n)"), trace = tmp.file("trace-\(n).json")
            try train(n, dir, ["--epochs", "2", "--timeline", trace] + (stop.map { ["--stop-after-batches", "\($0)"] } ?? []),
                      expect: stop == nil ? 0 : 4)
            var text = try String(contentsOfFile: trace, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertEqual(text.hasSuffix("]"), stop == nil, "a finished run closes the array")
            if !text.hasSuffix("]") { text += "]" }
            let events = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] ?? []
            let tracks = events.filter { $0["ph"] as? String == "M" }.compactMap { $0["pid"] as? Int }
            XCTAssertEqual(tracks.sorted(), Array(0 ..< n), "one named track per rank")
            let spans = events.filter { $0["ph"] as? String == "X" }
            for rank in 0 ..< n {
                let mine = spans.filter { $0["pid"] as? Int == rank }
                    .map { (name: $0["name"] as? String ?? "", start: $0["ts"] as? Int ?? 0, end: ($0["ts"] as? Int ?? 0) + ($0["dur"] as? Int ?? 0)) }
                XCTAssertEqual(mine.filter { $0.name == "step" }.count, stop ?? 16, "rank \(rank): a step per batch")
                XCTAssertEqual(Set(mine.map(\.name)).isSuperset(of: ["read", "forward_backward", "allreduce", "optimizer"]), true)
                // Well nested: two spans of a track are disjoint, or one holds the other.
                for a in mine { for b in mine where a.start < b.start && b.start < a.end {
                    XCTAssertLessThanOrEqual(b.end, a.end, "rank \(rank): \(b.name) overlaps the end of \(a.name)")
                } }
                // Every step holds its read, forward_backward, allreduce and optimizer.
                for s in mine where s.name == "step" {
                    let inside = mine.filter { $0.start >= s.start && $0.end <= s.end && $0.name != "step" }.map(\.name)
                    XCTAssertEqual(inside, ["read", "forward_backward", "allreduce", "optimizer"], "rank \(rank)")
                }
            }
        }
    }

    /// Only the embedding rows some rank's batch touched are exchanged: at 2 ranks the weights are
    /// bit-identical to the dense exchange's (each sum is one addition either way), at 4 ranks equal
    /// up to summation order; the epoch line shows the lighter exchange.
    func testTheTouchedRowsExchangeGivesTheDenseExchangesSums() throws {
        for n in [2, 4] {
            let touched = tmp.file("touched-\(n)"), dense = tmp.file("dense-\(n)")
            let a = try train(n, touched, ["--epochs", "1"])
            let b = try train(n, dense, ["--epochs", "1", "--dense-exchange"])
            if n == 2 {
                XCTAssertEqual(try weights(touched), try weights(dense))
            } else {
                XCTAssertLessThanOrEqual(maxAbsDiff(try weights(touched), try weights(dense)), 1e-5)
            }
            // "exchange: 0.004 MB/batch, 41 of 42 embedding rows" (this toy vocabulary is so small
            // that nearly every batch uses every word; on IMDB it is about 40%: docs/BENCHMARKS.md).
            func exchanged(_ out: String) -> (rows: Double, of: Double)? {
                guard let r = out.range(of: "exchange: ") else { return nil }
                let f = out[r.upperBound...].split(separator: " ")
                return f.count > 4 ? (Double(f[2]) ?? -1, Double(f[4]) ?? -1) : nil
            }
            let (t, d) = (exchanged(a.stdout), exchanged(b.stdout))
            XCTAssertNotNil(t, a.stdout)
            XCTAssertEqual(d?.rows, d?.of, "dense: every row: \(b.stdout)")
            XCTAssertLessThanOrEqual(t?.rows ?? .infinity, t?.of ?? 0, a.stdout)
            XCTAssertGreaterThan(t?.rows ?? 0, 0, a.stdout)
        }
    }

    /// --allreduce-dtype bf16: every rank sums the same bfloat16 contributions in Float in rank order,
    /// so the replicas stay identical (the run checks a hash of every weight at each epoch end), a
    /// resumed run is bit-identical, the dtype is recorded and may not change on resume, and the
    /// weights stay near the fp32 run's (8 significant bits per gradient: the bound only catches a
    /// broken exchange, such as a sum in the wrong units, which moves weights by far more).
    func testTheBFloat16ExchangeIsDeterministicRecordedAndCloseToFP32() throws {
        let bf16 = ["--allreduce-dtype", "bf16"]
        let fp32 = tmp.file("fp32"), full = tmp.file("bf16")
        try train(2, fp32, ["--epochs", "2"])
        try train(2, full, ["--epochs", "2"] + bf16)
        XCTAssertEqual(try WeightsFile.read(from: full + "/model.weights.h5").metadata.config.exchange, .bf16)
        let d = maxAbsDiff(try weights(full), try weights(fp32))
        XCTAssertGreaterThan(d, 0, "bf16 rounds the exchanged gradients")
        XCTAssertLessThan(d, 0.02)
        let dir = tmp.file("bf16-resumed")
        try train(2, dir, ["--epochs", "2", "--stop-after-batches", "5"] + bf16, expect: 4)
        let refused = try train(2, dir, ["--epochs", "2", "--resume", dir + "/checkpoint.h5"], expect: 2)
        XCTAssertTrue(refused.stderr.contains("--allreduce-dtype = bf16"), refused.stderr)
        try train(2, dir, ["--epochs", "2", "--resume", dir + "/checkpoint.h5"] + bf16)
        XCTAssertEqual(try weights(dir), try weights(full), "bit-identical resume with bf16")
        try train(4, tmp.file("bf16-n4"), ["--epochs", "1"] + bf16)   // replicas agree at 4 ranks too
    }
}
