@testable import POSIX
import XCTest
import Foundation
import TestSupport
@testable import Training

/// What clusters do to a run's folder: a full disk, a second run on the same folder, a folder that
/// is a file or read-only; and that identical runs write identical weights files.
final class RunFolderTests: ToyIMDBTestCase {
    func train(_ dir: String, _ extra: [String] = [], timeout: Double = 120) throws -> ProcessResult {
        try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", dir] + common + extra, timeout: timeout)
    }

    func errorLines(_ r: ProcessResult) -> [Substring] { r.stderr.split(separator: "\n").filter { $0.hasPrefix("rnn-dist: error:") } }

    /// Writes fail (EFBIG, as on a full disk) once a file would pass `kilobytes`: the resource limit
    /// RLIMIT_FSIZE with SIGXFSZ ignored, set by a shell for the command it then execs.
    func withFileSizeLimit(_ kilobytes: Int, _ command: [String], mpi: Bool) throws -> ProcessResult {
        let quoted = command.map { "'" + $0 + "'" }.joined(separator: " ")
        return try Subprocess.run("/bin/bash", ["-c", "ulimit -f \(kilobytes); trap '' XFSZ; exec \(quoted)"],
                                  environment: mpi ? Subprocess.mpiEnvironment : nil, timeout: 120)
    }

    /// Checks a resumed run whose next checkpoint write fails: one line naming the file and
    /// `reason`, exit 1, no crash, the previous checkpoint intact, no temporary file, and it resumes.
    func checkFailedWrite(_ r: ProcessResult, dir: String, before: Data, reason: String, _ label: String) throws {
        XCTAssertFalse(r.timedOut, label)
        XCTAssertFalse(r.signaled, "\(label) crashed: \(r.stderr.suffix(600))")
        XCTAssertEqual(r.status, 1, "\(label): \(r.stderr.suffix(600))")
        let lines = errorLines(r)
        XCTAssertEqual(lines.count, 1, "\(label): \(r.stderr)")
        XCTAssertTrue(lines.first?.contains(dir + "/checkpoint.h5: cannot write (\(reason))") ?? false, "\(label): \(r.stderr)")
        XCTAssertFalse(r.stderr.contains("Program crashed"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoint.h5")), before, "\(label): previous checkpoint intact")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [], "\(label): no temporary file left")
    }

    func resumeArgs(_ dir: String) -> [String] {
        ["train", "--data", dataset, "--run-dir", dir] + common + ["--epochs", "2", "--checkpoint-every", "1", "--resume", dir + "/checkpoint.h5"]
    }

    /// What a run writes is never what it reads: --timeline naming the dataset or the checkpoint
    /// to resume, or a dataset kept in the run folder under a run file's name, is refused before
    /// anything is written (they were overwritten, exit 0).
    /// Temporary files of killed writers (their PID gone) are removed by the next write of the same
    /// file: history.csv's and the SVG's too (only the HDF5 files' were), not a living writer's.
    func testTemporariesOfKilledWritersAreRemoved() throws {
        let dir = tmp.file("stale")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var dead: Int32 = 4_194_000
        while kill(dead, 0) == 0 || errno != ESRCH { dead -= 1 }
        let names = [".history.csv.tmp-\(dead)", ".history.h5.tmp-\(dead)-123", ".history.svg.tmp-\(dead)"]
        let living = ".history.csv.tmp-\(getpid())"
        for n in names + [living] { XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/" + n, contents: Data("x".utf8))) }
        XCTAssertEqual(try train(dir, ["--epochs", "1"]).status, 0)
        let plot = try Subprocess.rnnDist(["plot", dir + "/history.h5", "-o", dir + "/history.svg"])
        XCTAssertEqual(plot.status, 0, plot.stderr)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
        XCTAssertEqual(left, [living], "a killed writer's temporary left, or a living one's removed")
    }

    func testARunDoesNotWriteOverItsInputs() throws {
        let copy = tmp.file("copy.h5")
        try FileManager.default.copyItem(atPath: dataset, toPath: copy)
        let before = try Data(contentsOf: URL(fileURLWithPath: copy))
        let asTimeline = try Subprocess.rnnDist(["train", "--data", copy, "--run-dir", tmp.file("a")] + common + ["--timeline", tmp.path + "/./copy.h5"], timeout: 120)
        XCTAssertEqual(asTimeline.status, 2, asTimeline.stderr)
        XCTAssertEqual(errorLines(asTimeline), ["rnn-dist: error: --data \(copy) is the --timeline file, which this run writes: choose another --timeline"])
        try FileManager.default.createDirectory(atPath: tmp.file("b"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dataset, toPath: tmp.file("b/history.h5"))
        let inFolder = try Subprocess.rnnDist(["train", "--data", tmp.file("b/history.h5"), "--run-dir", tmp.file("b")] + common, timeout: 120)
        XCTAssertEqual(inFolder.status, 2, inFolder.stderr)
        XCTAssertTrue(errorLines(inFolder).first?.contains("is the run's history.h5, which this run writes") ?? false, inFolder.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: copy)), before)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: tmp.file("b/history.h5"))), before)
        // The checkpoint a run resumes from, as its --timeline.
        XCTAssertEqual(try train(tmp.file("c"), ["--epochs", "2", "--stop-after-batches", "2"]).status, 4)
        let checkpoint = try Data(contentsOf: URL(fileURLWithPath: tmp.file("c/checkpoint.h5")))
        let resumed = try Subprocess.rnnDist(resumeArgs(tmp.file("c")) + ["--timeline", tmp.file("c/checkpoint.h5")], timeout: 120)
        XCTAssertEqual(resumed.status, 2, resumed.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: tmp.file("c/checkpoint.h5"))), checkpoint)
        // A run file as --timeline, existing or not yet: truncated at set-up, then renamed over.
        for name in ["history.csv", "best.weights.h5"] {
            let r = try train(tmp.file("c"), ["--timeline", tmp.path + "/c/./" + name, "--overwrite"])
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertEqual(errorLines(r).first.map(String.init), "rnn-dist: error: --timeline \(tmp.path)/c/./\(name) is the run's \(name), which this run writes: choose another --timeline")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: tmp.file("c/checkpoint.h5"))), checkpoint)
    }

    /// Inputs that never end or never open: a device as --embeddings or --model-config is refused
    /// (/dev/zero grew without bound); a FIFO without a writer blocks the set-up, and a stop signal
    /// then ends the run at once with exit 4 (it was caught and waited on forever).
    func testDevicesAreRefusedAndASignalEndsABlockedSetUp() throws {
        for flag in ["--embeddings", "--model-config"] {
            let r = flag == "--embeddings" ? try train(tmp.file("dev"), [flag, "/dev/zero"])
                : try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("dev"), flag, "/dev/zero"], timeout: 60)
            XCTAssertEqual(r.status, 2, "\(flag): \(r.stderr)")
            XCTAssertTrue(errorLines(r).first?.contains("/dev/zero: ") ?? false, r.stderr)
            XCTAssertTrue(r.stderr.contains("is a device"), r.stderr)
        }
        // The run blocks opening the FIFO (seen in /proc: the kernel's wait channel), then SIGTERM.
        let fifo = tmp.file("vectors.txt")
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Subprocess.rnnDist)
        p.arguments = ["train", "--data", dataset, "--run-dir", tmp.file("fifo")] + common + ["--embeddings", fifo]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        var blocked = false
        for _ in 0 ..< 600 where !blocked {
            let wchan = (try? String(contentsOfFile: "/proc/\(p.processIdentifier)/wchan", encoding: .utf8)) ?? ""
            blocked = wchan.contains("wait_for_partner") || wchan.contains("fifo") || wchan.contains("pipe")   // fifo_open waits in wait_for_partner
            if !blocked { usleep(100_000) }
        }
        XCTAssertTrue(blocked, "the run never waited on the FIFO")
        kill(p.processIdentifier, SIGTERM)
        for _ in 0 ..< 200 where p.isRunning { usleep(100_000) }
        XCTAssertFalse(p.isRunning, "SIGTERM did not end a set-up blocked on a FIFO")
        p.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.terminationReason, .exit, stderr)
        XCTAssertEqual(p.terminationStatus, 4, stderr)
        XCTAssertTrue(stderr.contains("stopped by a signal during set-up, before training: no checkpoint written"), stderr)
    }

    /// D1, one process: writes fail with EFBIG past a size (RLIMIT_FSIZE, SIGXFSZ ignored), as on a full disk.
    func testAFailedWriteIsOneLineAndKeepsThePreviousCheckpoint() throws {
        let dir = tmp.file("single")
        XCTAssertEqual(try train(dir, ["--epochs", "1"]).status, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoint.h5"))
        let r = try withFileSizeLimit(before.count / 1024 / 2, [Subprocess.rnnDist] + resumeArgs(dir), mpi: false)
        try checkFailedWrite(r, dir: dir, before: before, reason: "File too large", "RLIMIT_FSIZE")
        XCTAssertEqual(try train(dir, ["--epochs", "2", "--resume", dir + "/checkpoint.h5"]).status, 0)
    }

    /// Set-up, with the folder's lock held, removes every run file's temporaries of killed writers
    /// (each was removed only by the next write of its own file: on a disk a killed checkpoint
    /// write filled, the model's write failed first, at every restart), and finds a full disk at
    /// once (exit 2, which a supervisor does not restart; it trained an epoch and failed its write,
    /// exit 1), also in a folder whose lock note exists (the note reuses its block). A run refused
    /// because the folder is in use touches nothing in it.
    func testSetUpClearsStaleTemporariesAndFindsAFullDisk() throws {
        var dead: Int32 = 4_194_000
        while kill(dead, 0) == 0 || errno != ESRCH { dead -= 1 }
        let locked = tmp.file("locked-stale")
        let fd = try holdRunFolderLock(locked, holder: "pid 4242 on host test-host, since 2026-11-30T00:00:00Z")
        let stale = ".checkpoint.h5.tmp-\(dead)-1"
        XCTAssertTrue(FileManager.default.createFile(atPath: locked + "/" + stale, contents: Data("x".utf8)))
        XCTAssertEqual(try train(locked, ["--epochs", "1"]).status, 5)
        XCTAssertTrue(FileManager.default.fileExists(atPath: locked + "/" + stale), "a refused run removed a file of the holder's folder")
        close(fd)

        let dir = tmp.file("setup")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let names = [stale, ".model.weights.h5.tmp-\(dead)-2", ".history.csv.tmp-\(dead)"]
        let living = ".checkpoint.h5.tmp-\(getpid())-3"
        for n in names + [living] { XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/" + n, contents: Data("x".utf8))) }
        _ = try RunDirectory(dir)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }, [living])

        let full = tmp.file("full-setup")
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        guard (try? Subprocess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", full]))?.status == 0 else {
            print("RunFolderTests: cannot mount a tmpfs here; a full disk at set-up is not tried")
            return
        }
        defer { _ = try? Subprocess.run("/bin/umount", [full]) }
        let run = full + "/run"
        XCTAssertEqual(try train(run, ["--epochs", "1"]).status, 0)
        // A killed checkpoint write's temporary fills the disk: set-up removes it, and the run goes on.
        _ = try Subprocess.run("/bin/dd", ["if=/dev/zero", "of=" + run + "/" + stale, "bs=4k", "count=1000"])
        let resumed = try train(run, ["--epochs", "2", "--resume", run + "/checkpoint.h5"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/" + stale))
        // A disk that is full: refused at set-up, for a new folder and for the run's own.
        _ = try Subprocess.run("/bin/dd", ["if=/dev/zero", "of=" + full + "/filler", "bs=4k", "count=1000"])
        for folder in [full + "/new", run] {
            let r = try train(folder, ["--epochs", "3", "--overwrite"])
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertEqual(r.stderr, "rnn-dist: error: \(folder): the run folder is full (No space left on device: no room for 4 KiB)\n")
            XCTAssertFalse(r.stdout.contains("Epoch 1/3"), "it trained before it failed: \(r.stdout)")
        }
    }

    /// A full disk under the timeline or the TensorBoard folder ends the run (exit 1, one line) and
    /// leaves what was whole: an event was cut in the middle of a string, a record short of its end.
    func testAFailedAppendLeavesTheTimelineAndTheEventsWhole() throws {
        for (what, size) in [("timeline", "12k"), ("tensorboard", "8k")] {
            let tiny = tmp.file("tiny-" + what)
            try FileManager.default.createDirectory(atPath: tiny, withIntermediateDirectories: true)
            guard (try? Subprocess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=" + size, "tmpfs", tiny]))?.status == 0 else {
                print("RunFolderTests: cannot mount a tmpfs here; a full disk under the \(what) is not tried")
                return
            }
            defer { _ = try? Subprocess.run("/bin/umount", [tiny]) }
            let flags = what == "timeline" ? ["--timeline", tiny + "/t.json"] : ["--tensorboard", tiny + "/tb", "--log-every", "1"]
            let r = try train(tmp.file("run-" + what), ["--epochs", "200"] + flags)
            XCTAssertEqual(r.status, 1, "\(what): \(r.stderr)")
            XCTAssertEqual(errorLines(r).count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("failed (No space left on device)"), r.stderr)
            if what == "timeline" {
                let text = try String(contentsOfFile: tiny + "/t.json", encoding: .utf8)
                let events = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data((text + "\n]").utf8)) as? [[String: Any]], text.suffix(200).description)
                XCTAssertGreaterThan(events.count, 0)
            } else {
                let files = try FileManager.default.contentsOfDirectory(atPath: tiny + "/tb")
                XCTAssertEqual(files.count, 1, "\(files)")
                let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: tiny + "/tb/" + files[0])))
                XCTAssertGreaterThan(try EventReader.records(bytes).count, 1)
            }
        }
    }

    /// train's output is a log: a reader that goes away (`| head -c 1`) does not end the run
    /// (SIGPIPE killed it after its first epoch, exit 141, the checkpoint unfinished).
    func testAClosedOutputPipeDoesNotEndTraining() throws {
        let dir = tmp.file("pipe")
        let command = (["train", "--data", dataset, "--run-dir", dir] + common + ["--epochs", "3"]).map { "'" + $0 + "'" }.joined(separator: " ")
        let r = try Subprocess.run("/bin/bash", ["-c", "'\(Subprocess.rnnDist)' \(command) | head -c 1 > /dev/null; exit ${PIPESTATUS[0]}"], timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.signaled, r.stderr)
        let inspect = try Subprocess.rnnDist(["inspect", "--json", dir + "/checkpoint.h5"])
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any])
        XCTAssertEqual((doc["checkpoint"] as? [String: Any])?["finished"] as? Bool, true, inspect.stdout)
    }

    /// D1 on a really full file system: a tmpfs just large enough for the run's files, alone and
    /// under mpirun -n 2 (mpirun's shared-memory files rule out a file size limit there). Skipped,
    /// saying so, where this machine cannot mount one.
    func testAFullDiskIsOneLineAndKeepsThePreviousCheckpointAloneAndUnderMPI() throws {
        for mpi in [false, true] {
            let seed = tmp.file("seed-\(mpi)")
            XCTAssertEqual(try train(seed, ["--epochs", "1"]).status, 0)
            let files = try FileManager.default.contentsOfDirectory(atPath: seed)
            // tmpfs counts 4 KiB pages: room for the files as they are plus half a checkpoint.
            let pages = try files.reduce(0) {
                $0 + ((try FileManager.default.attributesOfItem(atPath: seed + "/" + $1)[.size] as? Int ?? 0) + 4095) / 4096
            }
            let ckpt = try Data(contentsOf: URL(fileURLWithPath: seed + "/checkpoint.h5"))
            let dir = tmp.file("full-\(mpi)")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let size = pages * 4 + ckpt.count / 2 / 1024
            guard (try? Subprocess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)k", "tmpfs", dir]))?.status == 0 else {
                print("RunFolderTests: cannot mount a tmpfs here; the full-disk case is covered by the file size limit only")
                return
            }
            defer { _ = try? Subprocess.run("/bin/umount", [dir]) }
            for f in files { try FileManager.default.copyItem(atPath: seed + "/" + f, toPath: dir + "/" + f) }
            let r = mpi ? try Subprocess.mpiRun(2, resumeArgs(dir)) : try Subprocess.rnnDist(resumeArgs(dir), timeout: 120)
            try checkFailedWrite(r, dir: dir, before: ckpt, reason: "No space left on device", mpi ? "tmpfs, -n 2" : "tmpfs, -n 1")
        }
    }

    /// D3: a run folder is locked while a run uses it; a second run is refused naming the holder,
    /// with exit status 5 (a supervisor retries it later); the lock goes with its holder.
    func testASecondRunOnTheSameFolderIsRefusedNamingTheHolder() throws {
        let dir = tmp.file("locked")
        // This test process holds the lock as a run would.
        let fd = try holdRunFolderLock(dir, holder: "pid 4242 on host test-host, since 2026-11-30T00:00:00Z")
        for n in [1, 2] {
            let r = n == 1 ? try train(dir) : try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", dir] + common)
            XCTAssertEqual(r.status, 5, r.stderr)
            XCTAssertEqual(errorLines(r).count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("\(dir): in use by another rnn-dist run (pid 4242 on host test-host"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/model.weights.h5"))
        }
        close(fd)   // the holder is gone
        XCTAssertEqual(try train(dir, ["--epochs", "1"]).status, 0)
        let holder = try String(contentsOfFile: dir + "/.lock", encoding: .utf8)
        XCTAssertTrue(holder.hasPrefix("pid "), holder)
    }

    /// A holder on this host (the ranks of a job whose mpirun was just killed live on for about a
    /// second) is waited for: the run starts once the lock is released, within the 10 s bound.
    func testAHolderOnThisHostThatLetsGoIsWaitedFor() throws {
        let dir = tmp.file("exiting")
        let fd = try holdRunFolderLock(dir, holder: "pid 4243 on host \(hostName()), since 2026-12-04T00:00:00Z")
        DispatchQueue.global().asyncAfter(deadline: .now() + 1.5) { close(fd) }
        let r = try train(dir, ["--epochs", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/model.weights.h5"))
    }

    /// D6: a run folder that is a file, lies under a file, or cannot be written is one clean line
    /// before any batch (no Foundation error dump).
    func testUnusableRunFoldersAreRefusedBeforeTraining() throws {
        let file = tmp.file("a-file")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        var cases = [(file, "\(file): is a file, not a folder"), (file + "/sub", "\(file)/sub: cannot create the folder: \(file) is a file")]
        // A read-only mount where this machine lets us make one (root in a sandbox usually can).
        let ro = tmp.file("ro")
        try FileManager.default.createDirectory(atPath: ro, withIntermediateDirectories: true)
        let mounted = (try? Subprocess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", ro]))?.status == 0
        if mounted {
            cases += [(ro, "\(ro): the run folder is not writable (Read-only file system)"),
                      (ro + "/new", "\(ro)/new: cannot create the folder (Read-only file system)")]
        } else {
            print("RunFolderTests: no read-only mount possible here; the read-only cases are skipped")
        }
        defer { if mounted { _ = try? Subprocess.run("/bin/umount", [ro]) } }
        for (dir, expect) in cases {
            let r = try train(dir)
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").map(String.init), ["rnn-dist: error: " + expect])
            XCTAssertFalse(r.stdout.contains("Epoch"), "refused before training")
        }
        // The TensorBoard folder is checked alike at set-up (exit 2, no restart by Launch/supervise),
        // and so is a link to nowhere where a folder goes; an empty name is a bad command line (it
        // put the run's files into /).
        let dangling = tmp.file("dangling")
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: tmp.file("nowhere/x"))
        var boards = [(file, "\(file): is a file, not a folder"),
                      (dangling, "\(dangling): cannot create the folder (a link to nowhere, or removed meanwhile)")]
        if mounted { boards.append((ro, "\(ro): the TensorBoard folder is not writable (Read-only file system)")) }
        for (board, expect) in boards {
            let r = try train(tmp.file("tb-run"), ["--tensorboard", board, "--overwrite"])
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").map(String.init), ["rnn-dist: error: " + expect])
        }
        XCTAssertEqual(try train(dangling).status, 2)
        for (flag, expect) in [("--run-dir", "--run-dir is empty"), ("--tensorboard", "--tensorboard is empty")] {
            let r = try Subprocess.rnnDist(["train", "--data", dataset, flag, ""] + common)
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("rnn-dist: error: " + expect), r.stderr)
        }
    }

    /// Best weights from before a resume are never passed off as written, and another run's
    /// best.weights.h5 in a reused folder is named as such and left alone: whatever epoch was best,
    /// the output says where this run's best weights are (its own folder, or beside the checkpoint).
    func testTheClosingLinesSayWhereARunsBestWeightsAre() throws {
        // The book's rate (epoch 3 mostly the best), and 300 times it from epoch 3 (mostly not): both branches.
        for (label, rate) in [("default", [String]()), ("jump", ["--lr-schedule", "step:2:300"])] { try closingLines(label, rate) }
    }

    func closingLines(_ label: String, _ rate: [String]) throws {
        func train(_ dir: String, _ extra: [String]) throws -> ProcessResult { try self.train(dir, extra + rate) }
        let first = tmp.file("first-\(label)"), whole = tmp.file("whole-\(label)"), moved = tmp.file("moved-\(label)")
        let reused = tmp.file("reused-\(label)")
        XCTAssertEqual(try train(first, ["--epochs", "2"]).status, 0)
        XCTAssertEqual(try train(whole, ["--epochs", "3"]).status, 0)
        let best = try WeightsFile.read(from: whole + "/best.weights.h5").weights
        let epoch3Best = best == (try WeightsFile.read(from: whole + "/model.weights.h5").weights)
        print("RunFolderTests: rate \(label): epoch 3 \(epoch3Best ? "was" : "was not") the best")
        let elsewhere = "no best weights written: this run's best epoch came before the resume; its weights are the best.weights.h5 beside \(first)/checkpoint.h5"
        // Into another folder.
        let r = try train(moved, ["--epochs", "3", "--resume", first + "/checkpoint.h5"])
        XCTAssertEqual(r.status, 0, r.stderr)
        if epoch3Best {
            XCTAssertTrue(r.stdout.contains("wrote \(moved)/best.weights.h5"), r.stdout)
            XCTAssertEqual(try WeightsFile.read(from: moved + "/best.weights.h5").weights, best)
        } else {
            XCTAssertTrue(r.stdout.contains(elsewhere), r.stdout)
            XCTAssertFalse(FileManager.default.fileExists(atPath: moved + "/best.weights.h5"))
            XCTAssertEqual(try WeightsFile.read(from: first + "/best.weights.h5").weights, best)
        }
        // Into a finished run's folder: that run's best.weights.h5 is named, not replaced or removed.
        XCTAssertEqual(try train(reused, ["--epochs", "1", "--seed", "9"]).status, 0)
        let stale = try WeightsFile.read(from: reused + "/best.weights.h5").weights
        let s = try train(reused, ["--epochs", "3", "--resume", first + "/checkpoint.h5"])
        XCTAssertEqual(s.status, 0, s.stderr)
        XCTAssertFalse(s.stdout.contains("wrote \(reused)/best.weights.h5") && !epoch3Best, s.stdout)
        XCTAssertFalse(s.stdout.contains("kept \(reused)/best.weights.h5"), s.stdout)
        if !epoch3Best {
            XCTAssertTrue(s.stdout.contains(elsewhere + " (\(reused)/best.weights.h5 is another run's)"), s.stdout)
            XCTAssertEqual(try WeightsFile.read(from: reused + "/best.weights.h5").weights, stale)
        }
        // In place, through a link to the checkpoint: the folder's own best weights, kept or written.
        let link = tmp.file("latest-\(label).h5")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: first + "/checkpoint.h5")
        let t = try train(first, ["--epochs", "3", "--resume", link])
        XCTAssertEqual(t.status, 0, t.stderr)
        XCTAssertTrue(t.stdout.contains((epoch3Best ? "wrote " : "kept ") + first + "/best.weights.h5"), t.stdout)
        XCTAssertFalse(t.stdout.contains("no best weights written"), t.stdout)
        XCTAssertEqual(try WeightsFile.read(from: first + "/best.weights.h5").weights, best)
    }

    /// An unfinished run's checkpoint is the only way to continue it: a new run in its folder
    /// (alone and under mpirun -n 2), or a run resumed from another folder's checkpoint, is refused
    /// in one line before it writes anything, and so is a checkpoint.h5 that cannot be read;
    /// `--overwrite` starts afresh; resuming that checkpoint itself, or reusing a finished run's
    /// folder, goes on as before.
    func testAnUnfinishedRunIsNotOverwrittenWithoutOverwrite() throws {
        let dir = tmp.file("unfinished"), other = tmp.file("other")
        XCTAssertEqual(try train(dir, ["--epochs", "2", "--stop-after-batches", "3"]).status, 4)
        XCTAssertEqual(try train(other, ["--epochs", "2", "--stop-after-batches", "2"]).status, 4)
        let checkpoint = dir + "/checkpoint.h5"
        let before = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        let refusals = [("a new run", try train(dir, ["--epochs", "2"])),
                        ("a new run, -n 2", try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", dir] + common + ["--epochs", "2"])),
                        ("resumed from another folder", try train(dir, ["--epochs", "2", "--resume", other + "/checkpoint.h5"]))]
        for (label, r) in refusals {
            XCTAssertEqual(r.status, 2, "\(label): \(r.stderr)")
            XCTAssertEqual(errorLines(r).count, 1, "\(label): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("\(dir) holds an unfinished run (its checkpoint is at epoch 1 of 2, next batch 4)"), "\(label): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("--resume \(checkpoint)") && r.stderr.contains("--overwrite"), "\(label): \(r.stderr)")
            XCTAssertFalse(r.stdout.contains("Epoch"), "\(label): refused before training")
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: checkpoint)), before, "\(label): the checkpoint is intact")
        }
        // While a run holds the folder, a second one is told so (exit 5, which Launch/supervise
        // retries), not that the live run is an unfinished one to resume.
        let live = tmp.file("live")
        let fd = try holdRunFolderLock(live, holder: "pid 4245 on host other-host, since 2026-12-06T00:00:00Z")
        try FileManager.default.copyItem(atPath: checkpoint, toPath: live + "/checkpoint.h5")
        let busy = try train(live, ["--epochs", "2"])
        close(fd)
        XCTAssertEqual(busy.status, 5, busy.stderr)
        XCTAssertTrue(busy.stderr.contains("\(live): in use by another rnn-dist run (pid 4245 on host other-host"), busy.stderr)
        // inspect tells scripts (Launch/run) that it is unfinished.
        let doc = try JSONSerialization.jsonObject(with: Data(try Subprocess.rnnDist(["inspect", "--json", checkpoint]).stdout.utf8)) as? [String: Any]
        XCTAssertEqual((doc?["checkpoint"] as? [String: Any])?["finished"] as? Bool, false)
        // Resuming it is what it is for; the finished run's folder may then be reused.
        XCTAssertEqual(try train(dir, ["--epochs", "2", "--resume", checkpoint]).status, 0)
        XCTAssertEqual(try train(dir, ["--epochs", "1"]).status, 0)
        // --overwrite starts afresh over an unfinished run.
        XCTAssertEqual(try train(other, ["--epochs", "1", "--overwrite"]).status, 0)
        XCTAssertTrue(try Subprocess.rnnDist(["inspect", other + "/checkpoint.h5"]).stdout.contains("finished: 1 epoch of 1"))
        // A checkpoint.h5 that cannot be read cannot be told finished: refused, or replaced with --overwrite.
        let unreadable = tmp.file("unreadable")
        try FileManager.default.createDirectory(atPath: unreadable, withIntermediateDirectories: true)
        try Data("not a checkpoint".utf8).write(to: URL(fileURLWithPath: unreadable + "/checkpoint.h5"))
        let r = try train(unreadable, ["--epochs", "1"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertEqual(errorLines(r).count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("\(unreadable) holds a checkpoint.h5 this build cannot read"), r.stderr)
        XCTAssertEqual(try String(contentsOfFile: unreadable + "/checkpoint.h5", encoding: .utf8), "not a checkpoint")
        XCTAssertEqual(try train(unreadable, ["--epochs", "1", "--overwrite"]).status, 0)
        // A folder (or a FIFO) where a run file goes is refused at set-up, --overwrite or not: the
        // first write would fail only after an epoch of training.
        for name in ["checkpoint.h5", "history.csv"] {
            let blocked = tmp.file("blocked-" + name)
            try FileManager.default.createDirectory(atPath: blocked + "/" + name, withIntermediateDirectories: true)
            for extra in [[], ["--overwrite"]] {
                let r = try train(blocked, ["--epochs", "1"] + extra)
                XCTAssertEqual(r.status, 2, "\(name) \(extra): \(r.stderr)")
                XCTAssertEqual(errorLines(r).count, 1, r.stderr)
                XCTAssertTrue(r.stderr.contains("\(blocked)/\(name): is a folder, not a file"), r.stderr)
                XCTAssertFalse(r.stdout.contains("Epoch"), "refused before training: \(r.stdout)")
                XCTAssertFalse(FileManager.default.fileExists(atPath: blocked + "/model.weights.h5"))
            }
        }
    }

    /// A resume that waits for the folder's lock (the ranks of a job just killed, on this host) may
    /// find the checkpoint replaced meanwhile: it continues from the newest one, not the one it
    /// read before waiting.
    func testAResumeThatWaitedForTheLockReadsTheNewestCheckpoint() throws {
        let early = tmp.file("early"), late = tmp.file("late"), dir = tmp.file("race")
        XCTAssertEqual(try train(early, ["--epochs", "2", "--stop-after-batches", "2"]).status, 4)
        XCTAssertEqual(try train(late, ["--epochs", "2", "--stop-after-batches", "5"]).status, 4)
        let fd = try holdRunFolderLock(dir, holder: "pid 4247 on host \(hostName()), since 2026-12-06T00:00:00Z")
        try FileManager.default.copyItem(atPath: early + "/checkpoint.h5", toPath: dir + "/checkpoint.h5")
        DispatchQueue.global().asyncAfter(deadline: .now() + 1.5) {
            // The killed job's last write: a rename over the file, then its lock goes.
            _ = try? FileManager.default.copyItem(atPath: late + "/checkpoint.h5", toPath: dir + "/.checkpoint.h5.tmp")
            _ = rename(dir + "/.checkpoint.h5.tmp", dir + "/checkpoint.h5")
            close(fd)
        }
        let r = try train(dir, ["--epochs", "2", "--resume", dir + "/checkpoint.h5"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("resumed from \(dir)/checkpoint.h5 at epoch 1 batch 6"), r.stdout)
    }

    /// Two runs started at once: the one that waits names the other once it has written who it is
    /// (an empty note is a holder still writing it, not an unknown one).
    func testAHolderStillWritingItsNoteIsNamed() throws {
        let dir = tmp.file("racing")
        let fd = try holdRunFolderLock(dir, holder: "")
        _ = ftruncate(fd, 0)
        DispatchQueue.global().asyncAfter(deadline: .now() + 1.0) {
            let note = "pid 4246 on host other-host, since 2026-12-06T00:00:00Z\n"
            _ = note.withCString { pwrite(fd, $0, strlen($0), 0) }
        }
        let r = try train(dir, ["--epochs", "1"])
        close(fd)
        XCTAssertEqual(r.status, 5, r.stderr)
        XCTAssertTrue(r.stderr.contains("in use by another rnn-dist run (pid 4246 on host other-host"), r.stderr)
    }

    /// D4: identical runs write byte-identical weights files (no object timestamps anywhere: root,
    /// intermediate groups, datasets). History and checkpoint hold the runs' timings, so they differ
    /// in those values only.
    func testIdenticalRunsWriteByteIdenticalWeightsFiles() throws {
        let a = tmp.file("a"), b = tmp.file("b")
        XCTAssertEqual(try train(a, ["--epochs", "1"]).status, 0)
        sleep(1)   // a later second, so that any timestamp would differ
        XCTAssertEqual(try train(b, ["--epochs", "1"]).status, 0)
        for name in ["model.weights.h5", "best.weights.h5"] {
            let x = try Data(contentsOf: URL(fileURLWithPath: a + "/" + name))
            let y = try Data(contentsOf: URL(fileURLWithPath: b + "/" + name))
            XCTAssertEqual(x, y, name)
            XCTAssertEqual(try Subprocess.run("/usr/bin/cmp", [a + "/" + name, b + "/" + name]).status, 0, name)
        }
        for (i, path) in [a, b].enumerated() {
            let r = try Subprocess.rnnDist(["export", "--keras-legacy", path + "/model.weights.h5", "-o", tmp.file("legacy\(i).h5")])
            XCTAssertEqual(r.status, 0, r.stderr)
            if i == 0 { sleep(1) }
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: tmp.file("legacy0.h5"))),
                       try Data(contentsOf: URL(fileURLWithPath: tmp.file("legacy1.h5"))), "the Keras 2 export too")
    }

    /// `plot`'s SVG, `export --onnx`, history.csv: the text writer renames over nothing that is not a
    /// file (a FIFO, a folder, a link to a device) and writes through a link to a file.
    func testTextFilesAreNotRenamedOverWhatIsNotAFile() throws {
        let fifo = tmp.file("fifo.svg"), toDevice = tmp.file("null.svg"), target = tmp.file("t.svg"), link = tmp.file("l.svg")
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        try FileManager.default.createSymbolicLink(atPath: toDevice, withDestinationPath: "/dev/null")
        for (path, what) in [(fifo, "is a FIFO"), (tmp.path, "is a folder"), (toDevice, "is a symbolic link to a device")] {
            XCTAssertThrowsError(try TextFile.writeAtomically("x", to: path)) { e in
                XCTAssertEqual("\(e)", "\(path): \(what), not a file; give the path of a file to create or replace")
            }
        }
        var s = stat()
        XCTAssertEqual(lstat(fifo, &s), 0); XCTAssertEqual(s.st_mode & S_IFMT, S_IFIFO)
        XCTAssertEqual(lstat(toDevice, &s), 0); XCTAssertEqual(s.st_mode & S_IFMT, S_IFLNK)
        try TextFile.writeAtomically("old", to: target)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        try TextFile.writeAtomically("new", to: link)
        XCTAssertEqual(lstat(link, &s), 0); XCTAssertEqual(s.st_mode & S_IFMT, S_IFLNK)
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "new")
    }

    /// Early stopping says so when it ends a run (the run ended after fewer epochs than asked, with
    /// no word). A rate of 1.2e-38 leaves the weights as they are, so val_loss never improves.
    func testEarlyStoppingSaysItEndedTheRun() throws {
        let r = try train(tmp.file("early"), ["--epochs", "5", "--patience", "1", "--lr", "1.2e-38"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("early stopping after epoch 2 of 5: val_loss did not improve for 1 epoch (--patience 1)"), r.stdout)
        XCTAssertFalse(try train(tmp.file("full"), ["--epochs", "2", "--patience", "1"]).stdout.contains("early stopping"))
    }

    /// A --patience lowered on resume below the epochs the checkpoint has gone without improvement
    /// ends the run at once, and the line says why in those terms (it said early stopping "had ended
    /// the run", which the run that wrote the checkpoint had not).
    func testALoweredPatienceSaysWhyTheRunIsOver() throws {
        let dir = tmp.file("patience")
        // 256 training rows in batches of 32: 8 a epoch; stopped in epoch 3. Whether epoch 2 improved
        // depends on the arithmetic: the checkpoint is made to say it did not.
        let stop = try train(dir, ["--epochs", "6", "--patience", "5", "--stop-after-batches", "20"])
        XCTAssertEqual(stop.status, 4, stop.stderr)
        var c = try Checkpoint.read(from: dir + "/checkpoint.h5")
        XCTAssertEqual(c.state.epoch, 2)
        c.state.epochsWithoutImprovement = 1
        try c.write(to: dir + "/checkpoint.h5")
        XCTAssertFalse(try Checkpoint.read(from: dir + "/checkpoint.h5").isFinished)
        let r = try train(dir, ["--epochs", "6", "--patience", "1", "--resume", dir + "/checkpoint.h5"])
        XCTAssertEqual(r.status, 0, r.stderr)
        // Numbered as inspect numbers it (it said "at epoch 2", inspect "epoch 3 of 6, next batch 5").
        XCTAssertTrue(r.stdout.contains("nothing to train: the checkpoint is at epoch 3 of --epochs 6, next batch 5, after 1 epoch without "
                                        + "improvement of val_loss, which ends a run at --patience 1; raise --patience to continue"), r.stdout)
    }
}
