import XCTest
@testable import HDF5
@testable import MPI
@testable import RNN
import TestSupport
@_spi(Testing) @testable import Training

/// A learnable toy: label 1 when token 7 occurs in the sequence.
func toyRows(_ n: Int, maxlen: Int = 12, vocab: Int = 30, seed: UInt64 = 3) -> InMemoryRows {
    var g = SeededGenerator(seed: seed)
    var x: [Int32] = [], y: [Float] = []
    for i in 0 ..< n {
        var row = (0 ..< maxlen).map { _ in Int32(8 + g.next() % UInt64(vocab - 8)) }
        let positive = i % 2 == 0
        if positive { row[Int(g.next() % UInt64(maxlen))] = 7 }
        x += row
        y.append(positive ? 1 : 0)
    }
    return InMemoryRows(x: x, y: y, maxlen: maxlen)
}

func toyConfig(_ kind: ModelConfig.Kind = .lstm, epochs: Int = 2, rows: Int = 160) -> TrainConfig {
    var c = TrainConfig(model: ModelConfig(kind: kind, numWords: 30, embedDim: 4, units: 5), maxlen: 12)
    c.batchSize = 16
    c.epochs = epochs
    c.validationSplit = 0.25
    c.seed = 42
    c.dataRows = rows
    return c
}

func toyMetadata(_ c: TrainConfig) -> WeightsMetadata {
    WeightsMetadata(config: c, tokenizerJSON: WeightsMetadata.tokenizerJSON(numWords: c.model.vocabularySize, maxlen: c.maxlen), vocabulary: (4 ..< c.model.vocabularySize).map { "w\($0)" })
}

final class TrainerTests: XCTestCase {
    var tmp: TempDir!
    override func setUpWithError() throws { tmp = try TempDir("trainer") }
    override func tearDown() { tmp.remove() }

    /// Keeps a copy of the weights at the end of every epoch.
    final class WeightsAtEpochEnds: TrainingObserver {
        unowned let trainer: Trainer
        var weights: [[Float]] = []
        init(_ trainer: Trainer) { self.trainer = trainer }
        func batchDone(epoch: Int, batch: Int, of batches: Int, step: Int, stats: BatchStats, running: BatchStats, elapsed: Double) {}
        func epochDone(_ record: EpochRecord, epochs: Int) { weights.append(trainer.model.weights) }
        func wrote(_ path: String, what: String) throws {}
    }

    func makeTrainer(_ c: TrainConfig, dir: String, rows: InMemoryRows) throws -> Trainer {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        XCTAssertEqual(c.dataRows, rows.rowCount, "the config describes the rows it trains on")
        let t = try Trainer(config: c, comm: .single(), files: RunFiles(directory: dir), metadata: toyMetadata(c))
        return t
    }

    func timeless(_ h: History) -> [EpochRecord] {
        h.records.map { var r = $0; r.seconds = 0; r.samplesPerSecond = 0; r.mpiShare = 0; return r }
    }

    func testResumedRunIsBitIdenticalToAnUninterruptedOne() throws {
        let rows = toyRows(160)
        let c = toyConfig(epochs: 3)   // 120 train rows → 8 batches per epoch
        let a = try makeTrainer(c, dir: tmp.file("a"), rows: rows)
        try a.run(source: rows)

        for stopAt in [3, 8, 13] {     // mid-epoch, at an epoch's last batch, in the second epoch
            let dir = tmp.file("b\(stopAt)")
            let b = try makeTrainer(c, dir: dir, rows: rows)
            b.stopAfterBatches = stopAt
            XCTAssertThrowsError(try b.run(source: rows)) { e in
                guard let c = e as? CollectiveError, case TrainingError.interrupted = c.underlying, c.exitCode == 4 else {
                    return XCTFail("\(e)")
                }
            }
            let ckpt = try Checkpoint.read(from: dir + "/checkpoint.h5")
            XCTAssertEqual(ckpt.state.epoch * 8 + ckpt.state.nextBatch, stopAt)
            let r = try makeTrainer(c, dir: dir, rows: rows)
            try r.restore(ckpt)
            try r.run(source: rows)
            XCTAssertEqual(r.model.weights, a.model.weights, "stopped after \(stopAt) batches")
            XCTAssertEqual(r.optimizer.slots, a.optimizer.slots)
            XCTAssertEqual(r.optimizer.iterations, 24)
            XCTAssertEqual(timeless(r.history), timeless(a.history))
        }
        // The interrupted run really did change something: a fresh model differs from the trained one.
        XCTAssertNotEqual(Model(config: c.model, seed: c.seed).weights, a.model.weights)
    }

    func testTrainingLearnsTheToyTaskAndWritesItsFiles() throws {
        let rows = toyRows(400)
        var c = toyConfig(.gru, epochs: 8, rows: 400)
        c.optimizer = .adam
        c.learningRate = 0.02
        let dir = tmp.file("run")
        let t = try makeTrainer(c, dir: dir, rows: rows)
        let snapshots = WeightsAtEpochEnds(t)
        t.observers.append(snapshots)
        try t.run(source: rows)
        XCTAssertEqual(t.history.records.count, 8)
        XCTAssertGreaterThan(t.history.records.last!.valAcc, 0.9, "\(t.history.records.map(\.valAcc))")
        let (w, meta) = try WeightsFile.read(from: dir + "/model.weights.h5")
        XCTAssertEqual(w, t.model.weights)
        XCTAssertEqual(meta.config, c)
        let (h, hc, ws) = try HistoryFile.read(from: dir + "/history.h5")
        XCTAssertEqual(h, t.history)
        XCTAssertEqual(hc, c)
        XCTAssertEqual(ws, 1)
        // best.weights.h5 holds the epoch with the lowest val_loss.
        let bestEpoch = t.history.records.min { $0.valLoss < $1.valLoss }!.epoch
        XCTAssertEqual(bestEpoch, 8 - t.state.epochsWithoutImprovement)
        XCTAssertEqual(try WeightsFile.read(from: dir + "/best.weights.h5").weights, snapshots.weights[bestEpoch - 1])
    }

    /// The injected fault (NaN or ±∞ in the gradient sum before the reduction) stops the run at
    /// that step with an error naming epoch and batch, before the optimizer touches the weights;
    /// the checkpoint of the step before is on disk and resumes.
    func testNonFiniteGradientStopsBeforeTheUpdateAndKeepsTheLastCheckpoint() throws {
        let rows = toyRows(160)
        var c = toyConfig(epochs: 3)   // 8 batches per epoch
        c.checkpointEvery = 1
        for (value, step) in [(Float.nan, 3), (Float.infinity, 11), (-Float.infinity, 1)] {
            let dir = tmp.file("fault\(step)")
            let t = try makeTrainer(c, dir: dir, rows: rows)
            t.gradientFault = GradientFault(value: value, rank: 0, step: step)
            let (epoch, batch) = ((step - 1) / 8 + 1, (step - 1) % 8 + 1)
            XCTAssertThrowsError(try t.run(source: rows)) { e in
                XCTAssertEqual((e as? CollectiveError)?.underlying as? TrainingError,
                               .nonFinite(what: "gradient", epoch: epoch, batch: batch), "every rank meets it alike")
                XCTAssertEqual("\(e)", "gradient became non-finite at epoch \(epoch), batch \(batch); training stopped, nothing written from that step on (the last checkpoint, if any, is kept)")
            }
            XCTAssertEqual(t.optimizer.iterations, step - 1, "no update from the faulty step")
            XCTAssertTrue(Trainer.allFinite(t.model.weights))
            if step > 1 {
                let ckpt = try Checkpoint.read(from: dir + "/checkpoint.h5")
                XCTAssertEqual(ckpt.iterations, step - 1)
                XCTAssertEqual(ckpt.weights, t.model.weights, "the checkpoint holds the weights the fault left untouched")
            } else {
                XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/checkpoint.h5"))
            }
            XCTAssertEqual(FileManager.default.fileExists(atPath: dir + "/model.weights.h5"), epoch > 1)
        }
        // A fault meant for another rank, or for a later step, changes nothing.
        let a = try makeTrainer(c, dir: tmp.file("clean"), rows: rows)
        try a.run(source: rows)
        let b = try makeTrainer(c, dir: tmp.file("other"), rows: rows)
        b.gradientFault = GradientFault(value: .nan, rank: 1, step: 2)
        try b.run(source: rows)
        XCTAssertEqual(a.model.weights, b.model.weights)
    }

    func testBFloat16RoundsToNearestEvenAndKeepsSpecialValues() {
        XCTAssertEqual(BFloat16.encode(1), 0x3F80)
        XCTAssertEqual(BFloat16.decode(0x3F80), 1)
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties go to the even mantissa (1); 1 + 3·2⁻⁸ goes up.
        XCTAssertEqual(BFloat16.decode(BFloat16.encode(1 + 0x1p-8)), 1)
        XCTAssertEqual(BFloat16.decode(BFloat16.encode(1 + 3 * 0x1p-8)), 1 + 0x1p-6)
        XCTAssertEqual(BFloat16.decode(BFloat16.encode(1 + 0x1p-8 + 0x1p-20)), 1 + 0x1p-7, "above the tie: up")
        XCTAssertEqual(BFloat16.decode(BFloat16.encode(-2.5)), -2.5)
        XCTAssertEqual(BFloat16.decode(BFloat16.encode(.infinity)), .infinity)
        XCTAssertEqual(BFloat16.decode(BFloat16.encode(-.infinity)), -.infinity)
        XCTAssertTrue(BFloat16.decode(BFloat16.encode(.nan)).isNaN)
        XCTAssertTrue(BFloat16.decode(BFloat16.encode(Float(bitPattern: 0x7F80_0001))).isNaN, "a NaN whose payload is in the low bits")
        var g = SeededGenerator(seed: 11)
        for _ in 0 ..< 1000 {
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: g.next()) & 0x3FFF_FFFF)   // finite, positive
            let y = BFloat16.decode(BFloat16.encode(x))
            XCTAssertLessThanOrEqual(abs(y - x), x.ulp * 65_536 / 2, "within half a bfloat16 ulp of \(x)")
        }
    }

    func testGradientFaultParsing() {
        XCTAssertEqual(GradientFault("nan@1:3").map { [$0.value.isNaN ? 1 : 0, Float($0.rank), Float($0.step)] }, [1, 1, 3])
        XCTAssertEqual(GradientFault("inf@0:11"), GradientFault(value: .infinity, rank: 0, step: 11))
        XCTAssertEqual(GradientFault("-inf@2:1"), GradientFault(value: -.infinity, rank: 2, step: 1))
        for bad in ["", "nan", "nan@", "nan@1", "nan@1:", "1@1:1", "nan@x:1", "nan@-1:1", "nan@1:0", "nan@1:2:3"] {
            XCTAssertNil(GradientFault(bad), bad)
        }
    }

    func testEarlyStoppingStopsAfterPatienceEpochsWithoutImprovement() throws {
        let rows = toyRows(64)
        var c = toyConfig(epochs: 30, rows: 64)
        c.learningRate = 0.5          // far too large: val_loss stops improving quickly
        c.optimizer = .sgd
        c.patience = 2
        let t = try makeTrainer(c, dir: tmp.file("es"), rows: rows)
        let snapshots = WeightsAtEpochEnds(t)
        t.observers.append(snapshots)
        try t.run(source: rows)
        let n = t.history.records.count
        XCTAssertLessThan(n, 30)
        let best = t.history.records.map(\.valLoss).min()!
        XCTAssertEqual(Array(t.history.records.suffix(2)).filter { $0.valLoss <= best }.count, 0)
        // best.weights.h5 holds that epoch's weights, not the last epoch's.
        let bestEpoch = t.history.records.first { $0.valLoss == best }!.epoch
        let kept = try WeightsFile.read(from: tmp.file("es") + "/best.weights.h5").weights
        XCTAssertEqual(kept, snapshots.weights[bestEpoch - 1])
        XCTAssertNotEqual(kept, snapshots.weights[n - 1])
    }

    func testKerasLayoutOfTheWeightsFile() throws {
        var c = toyConfig(.lstm)
        c.model = ModelConfig(kind: .lstm, numWords: 30, embedDim: 4, units: 5, layers: 2)
        let path = tmp.file("w.weights.h5")
        let m = Model(config: c.model, seed: 1)
        try WeightsFile.write(to: path, weights: m.weights, metadata: toyMetadata(c))
        let f = try H5File.open(path, requireComplete: true)
        let names = try f.walk().compactMap { e -> String? in
            if case .dataset(let shape, _) = e.kind { return "\(e.name) \(shape)" } else { return nil }
        }
        XCTAssertEqual(names.filter { $0.hasPrefix("/layers") }, [
            "/layers/dense/vars/0 [5, 1]", "/layers/dense/vars/1 [1]",
            "/layers/embedding/vars/0 [30, 4]",
            "/layers/lstm/cell/vars/0 [4, 20]", "/layers/lstm/cell/vars/1 [5, 20]", "/layers/lstm/cell/vars/2 [20]",
            "/layers/lstm_1/cell/vars/0 [5, 20]", "/layers/lstm_1/cell/vars/1 [5, 20]", "/layers/lstm_1/cell/vars/2 [20]",
        ])
        XCTAssertEqual(try f.group("layers/lstm_1/cell/vars").stringAttribute("name"), "lstm_cell")
        XCTAssertEqual(try f.group("layers/lstm_1/vars").stringAttribute("name"), "lstm_1")
        XCTAssertEqual(try WeightsFile.read(from: path).weights, m.weights)
    }

    /// A weights file of a newer format, or whose tokenizer settings are not the ones this build
    /// applies for its config, is refused naming the attribute (predict and serve would tokenize
    /// texts otherwise than the model was trained on).
    func testFormatVersionAndTokenizerSettingsOfWeightsFiles() throws {
        let c = toyConfig(.gru)
        let m = Model(config: c.model, seed: 1)
        let path = tmp.file("w.weights.h5")
        func refusal(_ edit: (H5Group) throws -> Void) throws -> String {
            try WeightsFile.write(to: path, weights: m.weights, metadata: toyMetadata(c))
            let f = try H5File.open(path, writable: true)
            try edit(try f.group("rnn_dist"))
            try f.close()
            do { _ = try WeightsFile.read(from: path); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertEqual(try refusal { _ in }, "accepted")
        XCTAssertTrue(try refusal { try $0.setAttribute("format_version", Int64(2)) }
            .contains("/rnn_dist@format_version: is 2; this rnn-dist reads version 1 (a newer rnn-dist wrote it)"))
        let good = WeightsMetadata.tokenizerJSON(numWords: c.model.vocabularySize, maxlen: c.maxlen)
        for bad in ["[]", "{}", WeightsMetadata.tokenizerJSON(numWords: c.model.vocabularySize, maxlen: c.maxlen + 1),
                    WeightsMetadata.tokenizerJSON(numWords: 100, maxlen: c.maxlen),
                    WeightsMetadata.tokenizerJSON(numWords: c.model.vocabularySize, maxlen: c.maxlen, extra: ["tokenizer": "other/2"])] {
            let message = try refusal { try $0.setAttribute("tokenizer", bad) }
            XCTAssertTrue(message.contains("/rnn_dist@tokenizer: not the settings this rnn-dist tokenizes with"), "\(bad): \(message)")
        }
        XCTAssertEqual(try refusal { try $0.setAttribute("tokenizer", good) }, "accepted")
        // A config that is not one: one short line naming the key, not Swift's decoding dump.
        let noModel = try refusal { try $0.setAttribute("config", "{\"epochs\": 1}") }
        XCTAssertTrue(noModel.contains("/rnn_dist@config: unreadable config JSON: no key '"), noModel)
        XCTAssertFalse(noModel.contains("CodingKeys") || noModel.contains("\n"), noModel)
        var json = try JSONSerialization.jsonObject(with: Data(c.json().utf8)) as! [String: Any]
        json["epochs"] = "three"
        let text = String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self)
        XCTAssertTrue(try refusal { try $0.setAttribute("config", text) }.contains("unreadable config JSON: 'epochs' is not an integer"))
    }

    /// Weights files written before class names were stored mean IMDB's neg, pos; a list that does
    /// not fit the model's head is refused, naming the object.
    func testClassNamesOfWeightsFiles() throws {
        var c = toyConfig(.gru)
        c.model = ModelConfig(kind: .gru, numWords: 30, embedDim: 4, units: 5, classes: 3)
        let m = Model(config: c.model, seed: 1)
        let path = tmp.file("three.weights.h5")
        var meta = toyMetadata(c)
        meta.classNames = ["x", "y", "z"]
        try WeightsFile.write(to: path, weights: m.weights, metadata: meta)
        let read = try WeightsFile.read(from: path)
        XCTAssertEqual(read.metadata.classNames, ["x", "y", "z"])
        XCTAssertEqual(read.weights, m.weights)

        // The same without /rnn_dist/class_names, as files of earlier builds are.
        let binary = toyConfig(.gru), old = tmp.file("old.weights.h5")
        let bm = Model(config: binary.model, seed: 1)
        try H5File.writeAtomically(to: old) { f in
            try WeightsFile.writeTensors(bm.weights, table: binary.model.parameterTable, into: f)
            let g = try f.createGroup("rnn_dist")
            try g.setAttribute("format", WeightsFile.format)
            try g.setAttribute("format_version", WeightsFile.formatVersion)
            try g.setAttribute("config", binary.json())
            try g.setAttribute("tokenizer", WeightsMetadata.tokenizerJSON(numWords: 30, maxlen: binary.maxlen))
            try g.writeStringList("vocab", (4 ..< 30).map { "w\($0)" })
        }
        XCTAssertEqual(try WeightsFile.read(from: old).metadata.classNames, ["neg", "pos"])

        // Two names for a 3-class model: refused.
        meta.classNames = ["x", "y"]
        let bad = tmp.file("bad.weights.h5")
        try WeightsFile.write(to: bad, weights: m.weights, metadata: meta)
        XCTAssertThrowsError(try WeightsFile.read(from: bad)) {
            XCTAssertTrue("\($0)".contains("/rnn_dist/class_names: 2 names, the model tells 3 distinct classes apart"), "\($0)")
        }
        meta.classNames = ["x", "y", "x"]
        try WeightsFile.write(to: bad, weights: m.weights, metadata: meta)
        XCTAssertThrowsError(try WeightsFile.read(from: bad)) {
            XCTAssertTrue("\($0)".contains("/rnn_dist/class_names: name 3 'x' repeats an earlier one"), "\($0)")
        }
    }

    /// One serialisation serves the checkpoint and the broadcast: every field comes back bit for
    /// bit, including ±∞ (the best loss before the first epoch ends) and Doubles of 17 digits.
    func testTrainingStateRoundTripsExactlyThroughJSON() throws {
        var s = TrainingState()
        XCTAssertEqual(try TrainingState(json: try s.json()), s)
        s.epoch = 3; s.nextBatch = 7; s.epochLossSum = 0.1 + 0.2; s.epochCorrect = 11; s.epochCount = 13
        s.epochSeconds = 1.0 / 3.0; s.epochMPISeconds = .leastNonzeroMagnitude; s.bestValLoss = 0.6931471805599453
        s.epochsWithoutImprovement = 2; s.worldSize = 4
        let back = try TrainingState(json: try s.json())
        XCTAssertEqual(back, s)
        XCTAssertEqual(back.epochLossSum.bitPattern, s.epochLossSum.bitPattern)
        XCTAssertThrowsError(try TrainingState(json: #"{"epoch": "three"}"#))
    }

    /// A state that is not the JSON of a `TrainingState` is refused with one line naming it.
    func testACheckpointWithAnUnreadableStateIsRefused() throws {
        let rows = toyRows(64)
        let c = toyConfig(epochs: 1, rows: 64)
        let dir = tmp.file("bad-state")
        try makeTrainer(c, dir: dir, rows: rows).run(source: rows)
        let f = try H5File.open(dir + "/checkpoint.h5", writable: true)
        try f.group("rnn_dist/state").setAttribute("json", #"{"epoch": 1}"#)
        try f.close()
        XCTAssertThrowsError(try Checkpoint.read(from: dir + "/checkpoint.h5")) { e in
            XCTAssertTrue("\(e)".contains("/rnn_dist/state@json: unreadable state JSON"), "\(e)")
        }
    }

    /// history.h5's root attributes are checked as the other files' are (a format_version from a
    /// newer rnn-dist, a world size of 0 or −5 were read and shown), and its objects named as HDF5
    /// names them (/epoch, /@config; they were //epoch and /rnn_dist@config).
    func testAHistoryFileIsCheckedAsTheOtherFilesAre() throws {
        let rows = toyRows(64)
        let dir = tmp.file("historyfile")
        try makeTrainer(toyConfig(epochs: 1, rows: 64), dir: dir, rows: rows).run(source: rows)
        let good = dir + "/history.h5"
        XCTAssertNoThrow(try HistoryFile.read(from: good))
        func refusal(_ edit: (H5File) throws -> Void) throws -> String {
            let p = tmp.file("edited-history.h5")
            try? FileManager.default.removeItem(atPath: p)
            try FileManager.default.copyItem(atPath: good, toPath: p)
            let f = try H5File.open(p, writable: true)
            try edit(f)
            try f.close()
            do { _ = try HistoryFile.read(from: p); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertEqual(try refusal { _ in }, "accepted")
        XCTAssertTrue(try refusal { try $0.setAttribute("format_version", 99) }.hasSuffix(
            "/@format_version: is 99; this rnn-dist reads version 1 (a newer rnn-dist wrote it)"))
        for size in [0, -5, 1 << 21] {
            XCTAssertTrue(try refusal { try $0.setAttribute("world_size", size) }.hasSuffix("/@world_size: is \(size), expected 1…1048576 ranks"), "\(size)")
        }
        XCTAssertEqual(try refusal { try $0.setAttribute("world_size", 3) }, "accepted")
        XCTAssertTrue(try refusal { try $0.setAttribute("config", "{") }.contains(": /@config: unreadable config JSON"))
        var (history, config, _) = try HistoryFile.read(from: good)
        history.records[0].epoch = 0
        let zero = tmp.file("epoch0-history.h5")
        try HistoryFile.write(to: zero, history: history, config: config, worldSize: 1)
        XCTAssertThrowsError(try HistoryFile.read(from: zero)) { XCTAssertTrue("\($0)".hasSuffix(": /epoch: epoch 0 is out of range"), "\($0)") }
    }

    /// Values that HDF5's checksum cannot catch (a NaN where 0x0000 was 0xFFFF, a hand edit): a
    /// rate factor outside (0, 1], a NaN, infinite or negative velocity are refused naming the
    /// object, not trained with (a negative factor would climb the loss).
    func testACheckpointWithOutOfRangeStateOrSlotsIsRefused() throws {
        let rows = toyRows(64)
        let dir = tmp.file("range")
        try makeTrainer(toyConfig(epochs: 1, rows: 64), dir: dir, rows: rows).run(source: rows)
        let good = try Checkpoint.read(from: dir + "/checkpoint.h5")
        XCTAssertEqual(good.slots.map(\.name), ["velocity"])
        func refusal(_ edit: (inout Checkpoint) -> Void) throws -> String {
            var c = good
            edit(&c)
            let p = tmp.file("edited.h5")
            try c.write(to: p)
            do { _ = try Checkpoint.read(from: p); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertEqual(try refusal { _ in }, "accepted")
        for factor in [-1.0, 0, 2, .infinity] {
            let message = try refusal { $0.state.lrFactor = factor }
            XCTAssertTrue(message.contains("/rnn_dist/state: values out of range for the recorded config (lr_factor)"), "lr_factor \(factor): \(message)")
        }
        XCTAssertEqual(try refusal { $0.state.lrFactor = 0.25 }, "accepted")
        // The next batch is one of the epoch's (at the last one's end the epoch ends: a row of NaN
        // was recorded from a state that said otherwise), with the count of the batches before it.
        let schedule = good.metadata.config.schedule
        let batch = schedule.batch(0).count
        XCTAssertGreaterThan(schedule.batchesPerEpoch, 1)
        for (next, count) in [(schedule.batchesPerEpoch, 0), (schedule.batchesPerEpoch, schedule.trainCount), (1, 0), (1, batch + 1), (-1, 0)] {
            let message = try refusal { $0.state.nextBatch = next; $0.state.epochCount = count }
            XCTAssertTrue(message.contains("/rnn_dist/state: values out of range"), "next_batch \(next), count \(count): \(message)")
        }
        XCTAssertEqual(try refusal { $0.state.nextBatch = 1; $0.state.epochCount = batch }, "accepted")
        XCTAssertTrue(try refusal { $0.state.nextBatch = 1; $0.state.epochCount = 0 }.hasSuffix("(epoch_count)"))
        // The history holds the epochs before the state's, numbered 1, 2, …: a state one epoch on
        // or back (a history row short or extra) was accepted, and the resumed history came out
        // with a row missing or two of the same epoch.
        XCTAssertEqual(good.state.epoch, 1)
        XCTAssertEqual(good.history.records.map(\.epoch), [1])
        for epoch in [0, 2] {
            XCTAssertTrue(try refusal { $0.state.epoch = epoch }.hasSuffix(
                "/rnn_dist/history: 1 epochs recorded, but the state is at epoch \(epoch) (0-based): they must agree"), "epoch \(epoch)")
        }
        XCTAssertTrue(try refusal { $0.history.records.append($0.history.records[0]); $0.state.epoch = 2 }.hasSuffix(
            "/rnn_dist/history/epoch: row 1 is epoch 1, not 2: the epochs must be 1, 2, … in order"))
        // Slots that fit another optimizer's name: the name must be the recorded config's optimizer's.
        XCTAssertTrue(try refusal { $0.optimizerName = "Adam" }.contains("/rnn_dist/optimizer@name: 'Adam', but the recorded config's optimizer is"))
        for (value, expect) in [(Float.nan, "nan at index 10"), (-1, "-1.0 at index 10"), (.infinity, "inf at index 10")] {
            let message = try refusal { $0.slots[0].values[10] = value }
            XCTAssertTrue(message.contains("/rnn_dist/optimizer/slot_0: 'velocity' holds \(expect)"), "\(value): \(message)")
        }
    }

    func testCheckpointMismatchesAreNamed() {
        let c = toyConfig()
        var d = c
        d.model = ModelConfig(kind: .lstm, numWords: 30, embedDim: 4, units: 8)
        d.batchSize = 32
        d.epochs = 50            // may change
        d.checkpointEvery = 3    // may change
        let m = c.resumeMismatches(against: d).map(\.0)
        XCTAssertEqual(m, ["--units", "--batch-size"])
        // Optional settings read as their values or "none", never Swift's Optional(…).
        var e = c
        e.limit = 4000
        e.clipNorm = 1
        let shown = c.resumeMismatches(against: e).filter { $0.0 == "--limit" || $0.0 == "--clip-norm" }.map { "\($0.0) \($0.1) \($0.2)" }
        XCTAssertNil(c.limit)
        XCTAssertEqual(shown, ["--limit none (all \(c.dataRows) rows) 4000", "--clip-norm none 1.0"])
        // A limit of all the dataset's rows (what a larger one is recorded as) is no limit: the same
        // rows, either way round (it was refused: "written with --limit = 480, this run asks for none").
        var all = c
        all.limit = c.dataRows
        XCTAssertEqual(c.resumeMismatches(against: all).map(\.0), [])
        XCTAssertEqual(all.resumeMismatches(against: c).map(\.0), [])
        // Another dataset's rows are that, not a --limit (both without a limit).
        var other = c
        other.dataRows = c.dataRows + 20
        XCTAssertEqual(c.resumeMismatches(against: other).map(\.0), ["dataset rows"])
    }

    func testDamagedCheckpointsAreRefusedWithOneLine() throws {
        let rows = toyRows(64)
        let c = toyConfig(epochs: 1, rows: 64)
        let dir = tmp.file("d")
        try makeTrainer(c, dir: dir, rows: rows).run(source: rows)
        let good = try Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoint.h5"))
        XCTAssertNoThrow(try Checkpoint.read(from: dir + "/checkpoint.h5"))
        // A weights file is not a checkpoint.
        XCTAssertThrowsError(try Checkpoint.read(from: dir + "/model.weights.h5")) { e in
            XCTAssertTrue("\(e)".contains("expected 'rnn-dist-checkpoint'"), "\(e)")
        }
        // Nor is a history (it was called "not a file written by rnn-dist").
        XCTAssertThrowsError(try Checkpoint.read(from: dir + "/history.h5")) { e in
            XCTAssertTrue("\(e)".contains("/@format: is 'rnn-dist-history', expected 'rnn-dist-checkpoint'"), "\(e)")
        }
        // Truncated: HDF5 refuses it (the completion mark is at the end).
        let cut = tmp.file("cut.h5")
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: cut))
        XCTAssertThrowsError(try Checkpoint.read(from: cut))
        // Flipped bytes: a typed error or identical contents, never a wrong number.
        var flippedErrors = 0
        for off in stride(from: 0, to: good.count, by: max(1, good.count / 150)) {
            var b = [UInt8](good)
            b[off] ^= 0xFF
            let p = tmp.file("flip.h5")
            try Data(b).write(to: URL(fileURLWithPath: p))
            do {
                let ck = try Checkpoint.read(from: p)
                let orig = try Checkpoint.read(from: dir + "/checkpoint.h5")
                XCTAssertEqual(ck.weights, orig.weights, "offset \(off)")
                XCTAssertEqual(ck.slots, orig.slots, "offset \(off)")
                XCTAssertEqual(ck.state, orig.state, "offset \(off)")
                XCTAssertEqual(ck.metadata, orig.metadata, "offset \(off)")
            } catch { flippedErrors += 1 }
        }
        XCTAssertGreaterThan(flippedErrors, 50)
    }
}
