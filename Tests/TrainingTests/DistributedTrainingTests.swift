import XCTest
import Foundation
import TestSupport
import RNN
@testable import Training

/// `mpirun -n N rnn-dist train` on a small synthetic IMDB prepared by the real `prepare`:
/// world-size invariance, exact resume, failures that end the job promptly and cleanly.
final class DistributedTrainingTests: XCTestCase {
    nonisolated(unsafe) static var shared: TempDir?
    nonisolated(unsafe) static var dataset = ""
    var tmp: TempDir!

    /// Small model and data so that each run takes about a second in the debug build.
    let common = ["--limit", "320", "--batch-size", "32", "--units", "8", "--embed-dim", "8", "--seed", "5"]

    override class func setUp() {
        super.setUp()
        guard let dir = try? TempDir("dist-data") else { return }
        shared = dir
        guard let folder = try? ToyIMDB.write(at: dir.path, perLabel: 200) else { return }
        let r = try? Subprocess.rnnDist(["prepare", "--source", folder, "-o", dir.file("imdb.h5"),
                                         "--num-words", "60", "--maxlen", "40"])
        if r?.status == 0 { dataset = dir.file("imdb.h5") } else { print("prepare failed: \(r?.stderr ?? "")") }
    }

    override class func tearDown() { shared?.remove(); super.tearDown() }

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: Subprocess.rnnDist) else {
            throw XCTSkip("rnn-dist is not built at \(Subprocess.rnnDist)")
        }
        XCTAssertFalse(Self.dataset.isEmpty, "the synthetic dataset could not be prepared")
        tmp = try TempDir("dist")
    }
    override func tearDown() { tmp?.remove() }

    @discardableResult
    func train(_ n: Int, _ dir: String, _ extra: [String] = [], expect: Int32 = 0, mpirunArgs: [String] = []) throws -> ProcessResult {
        let args = ["train", "--data", Self.dataset, "--run-dir", dir] + common + extra
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
                try train(n, dir, ["--epochs", "1", "--model", model])
                w[n] = try weights(dir)
                h[n] = try timeless(dir)
                XCTAssertEqual(try HistoryFile.read(from: dir + "/history.h5").2, n, "world size recorded")
            }
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

    func testResumeAtTheSameWorldSizeIsBitIdentical() throws {
        let full = tmp.file("full")
        try train(2, full, ["--epochs", "2"])
        for stop in [3, 10] {                       // mid-epoch 1; in epoch 2 (8 batches per epoch)
            let dir = tmp.file("stop\(stop)")
            let r = try train(2, dir, ["--epochs", "2", "--stop-after-batches", "\(stop)"], expect: 4)
            XCTAssertTrue(r.stderr.contains("checkpoint written"), r.stderr)
            try train(2, dir, ["--epochs", "2", "--resume", dir + "/checkpoint.h5"])
            XCTAssertEqual(try weights(dir), try weights(full), "stopped after \(stop) batches")
            XCTAssertEqual(try timeless(dir), try timeless(full))
            XCTAssertEqual(try Checkpoint.read(from: dir + "/checkpoint.h5").slots,
                           try Checkpoint.read(from: full + "/checkpoint.h5").slots)
        }
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
        let r = try train(2, dir, ["--epochs", "1", "--units", "16", "--resume", dir + "/checkpoint.h5"], expect: 1)
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
            let r = try train(2, tmp.file("out-\(name)"), ["--epochs", "2", "--resume", p], expect: 1)
            XCTAssertLessThan(r.seconds, 30, name)
            let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("rnn-dist: error:") }
            XCTAssertEqual(lines.count, 1, "\(name): \(r.stderr)")
            XCTAssertTrue(lines.first?.contains(p) ?? false, "\(name): \(r.stderr)")
        }
        // A missing dataset, likewise.
        let r = try Subprocess.mpiRun(2, ["train", "--data", tmp.file("nope.h5"), "--run-dir", tmp.file("x")], timeout: 60)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("rnn-dist: error:") }.count, 1, r.stderr)
    }

    func testTCPTransport() throws {
        let a = tmp.file("tcp"), b = tmp.file("shm")
        try train(2, a, ["--epochs", "1"], mpirunArgs: ["--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo",
                                                         "--mca", "oob_tcp_if_include", "lo"])
        try train(2, b, ["--epochs", "1"])
        XCTAssertEqual(try weights(a), try weights(b), "same ranks, same summation order, other transport")
    }

    func testKillingOneRankEndsTheJobAndKeepsTheCheckpoint() throws {
        let dir = tmp.file("kill")
        let args = ["train", "--data", Self.dataset, "--run-dir", dir] + common +
            ["--epochs", "400", "--checkpoint-every", "2"]
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Subprocess.mpirun)
        p.arguments = ["-n", "2", Subprocess.rnnDist] + args
        p.environment = Subprocess.mpiEnvironment
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let ckpt = dir + "/checkpoint.h5"
        let start = Date()
        while !FileManager.default.fileExists(atPath: ckpt) && Date().timeIntervalSince(start) < 60 { usleep(50_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: ckpt))
        usleep(300_000)
        // The ranks are mpirun's children: kill one of them, not mpirun.
        let pgrep = try Subprocess.run("/usr/bin/pgrep", ["-P", "\(p.processIdentifier)"])
        let ranks = pgrep.stdout.split(separator: "\n").compactMap { Int32($0) }
        XCTAssertEqual(ranks.count, 2, pgrep.stdout)
        guard let victim = ranks.last else { return }
        kill(victim, SIGKILL)
        let killed = Date()
        while p.isRunning && Date().timeIntervalSince(killed) < 20 { usleep(50_000) }
        XCTAssertFalse(p.isRunning, "mpirun still running 20 s after a rank was killed")
        XCTAssertLessThan(Date().timeIntervalSince(killed), 10)
        XCTAssertNotEqual(p.terminationStatus, 0)
        // The last checkpoint is complete and resumes.
        let c = try Checkpoint.read(from: ckpt)
        XCTAssertGreaterThan(c.state.epoch * 8 + c.state.nextBatch, 0)
        try train(2, dir, ["--epochs", "\(c.state.epoch + 1)", "--resume", ckpt])
    }

    func testNonFiniteLossStopsWithEpochAndBatchAndKeepsTheLastCheckpoint() throws {
        let dir = tmp.file("nan")
        let r = try train(2, dir, ["--epochs", "2", "--optimizer", "sgd", "--lr", "1e30", "--checkpoint-every", "1"], expect: 1)
        let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("rnn-dist: error:") }
        XCTAssertEqual(lines.count, 1, r.stderr)
        XCTAssertTrue(lines.first?.contains("non-finite at epoch 1, batch") ?? false, r.stderr)
        // Whatever checkpoint was written before the blow-up holds finite weights and resumes
        // (reading refuses non-finite weights); none may be written after it.
        if FileManager.default.fileExists(atPath: dir + "/checkpoint.h5") {
            let c = try Checkpoint.read(from: dir + "/checkpoint.h5")
            XCTAssertEqual(c.state.epoch, 0)
            XCTAssertGreaterThanOrEqual(c.state.nextBatch, 1)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/model.weights.h5"), "no epoch ended")
    }

    func testSIGTERMFinishesTheBatchWritesACheckpointAndExitsNonZero() throws {
        let dir = tmp.file("term")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Subprocess.mpirun)
        p.arguments = ["-n", "2", Subprocess.rnnDist, "train", "--data", Self.dataset, "--run-dir", dir] + common + ["--epochs", "400"]
        p.environment = Subprocess.mpiEnvironment
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        // Wait until the first epoch's files exist, then ask mpirun to stop.
        let start = Date()
        while !FileManager.default.fileExists(atPath: dir + "/history.h5") && Date().timeIntervalSince(start) < 60 { usleep(50_000) }
        kill(p.processIdentifier, SIGTERM)
        let sent = Date()
        while p.isRunning && Date().timeIntervalSince(sent) < 20 { usleep(50_000) }
        XCTAssertFalse(p.isRunning, "mpirun still running 20 s after SIGTERM")
        XCTAssertNotEqual(p.terminationStatus, 0)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        // mpirun forwards SIGTERM to the ranks; they agree to stop through the next all-reduce,
        // finish that batch, and rank 0 writes the checkpoint, which is complete and resumes.
        XCTAssertTrue(stderr.contains("interrupted by SIGTERM; checkpoint written"), stderr)
        let c = try Checkpoint.read(from: dir + "/checkpoint.h5")
        print("SIGTERM: mpirun exit \(p.terminationStatus); checkpoint at epoch \(c.state.epoch + 1) batch \(c.state.nextBatch + 1)")
        try train(2, dir, ["--epochs", "\(c.state.epoch + 1)", "--resume", dir + "/checkpoint.h5"])
    }
}
