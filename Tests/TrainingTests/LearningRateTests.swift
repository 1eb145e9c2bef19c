import XCTest
import Foundation
import TestSupport
@testable import RNN
@testable import Training

/// `--lr-schedule`, `--warmup-epochs`, `--lr-scaling`: the rate of each step from its definition,
/// recorded per epoch (history.h5, history.csv) and per step (TensorBoard), continued exactly by a
/// resume, and refused when a resume asks for another schedule.
final class LearningRateTests: ToyIMDBTestCase {
    func testTheRatesFollowTheirDefinitions() {
        func rate(_ s: LearningRateSchedule, _ t: Int, batch: Int = 128) -> Double {
            s.rate(base: 0.001, step: t, stepsPerEpoch: 10, epochs: 2, globalBatch: batch)
        }
        let constant = LearningRateSchedule()
        XCTAssertEqual([0, 7, 19].map { rate(constant, $0) }, [0.001, 0.001, 0.001])
        XCTAssertEqual(rate(LearningRateSchedule(scaling: .linear), 3, batch: 512), 0.004, accuracy: 1e-15)
        XCTAssertEqual(rate(LearningRateSchedule(scaling: .sqrt), 3, batch: 512), 0.002, accuracy: 1e-15)
        // Warm-up over one epoch (10 steps): rate·(t+1)/10, then the shape.
        let warm = LearningRateSchedule(warmupEpochs: 1)
        for (t, e) in zip([0, 4, 9, 10, 15], [0.0001, 0.0005, 0.001, 0.001, 0.001]) { XCTAssertEqual(rate(warm, t), e, accuracy: 1e-15, "step \(t)") }
        // Cosine over the 20 steps: 1 at the start, ½ half-way, ½(1 + cos 0.95π) at the last step.
        let cosine = LearningRateSchedule(shape: .cosine)
        XCTAssertEqual(rate(cosine, 0), 0.001, accuracy: 1e-15)
        XCTAssertEqual(rate(cosine, 10), 0.0005, accuracy: 1e-15)
        XCTAssertEqual(rate(cosine, 19), 0.001 * 0.5 * (1 + cos(0.95 * Double.pi)), accuracy: 1e-15)
        // With a warm-up of half an epoch, the cosine spans the 15 steps after it.
        let warmCosine = LearningRateSchedule(shape: .cosine, warmupEpochs: 0.5)
        XCTAssertEqual(rate(warmCosine, 2), 0.0006, accuracy: 1e-15)
        XCTAssertEqual(rate(warmCosine, 5), 0.001, accuracy: 1e-15)
        XCTAssertEqual(rate(warmCosine, 10), 0.001 * 0.5 * (1 + cos(Double.pi / 3)), accuracy: 1e-15)
        // Step decay: ×0.5 every 2 epochs, epochs counted from 0 (stepsPerEpoch 3, 6 epochs).
        let step = LearningRateSchedule(shape: .step(every: 2, factor: 0.5))
        let perEpoch = (0..<6).map { step.rate(base: 1, step: $0 * 3 + 1, stepsPerEpoch: 3, epochs: 6, globalBatch: 128) }
        XCTAssertEqual(perEpoch, [1, 1, 0.5, 0.5, 0.25, 0.25])
        XCTAssertEqual(LearningRateSchedule.parse("step:3:0.1"), .step(every: 3, factor: 0.1))
        for bad in ["step:0:0.5", "step:2:0", "step:2", "linear", "step:2:-1", "step:x:0.5"] {
            XCTAssertNil(LearningRateSchedule.parse(bad), bad)
        }
    }

    func testARunRecordsItsRatesAndAResumeContinuesThem() throws {
        let schedule = ["--lr-schedule", "cosine", "--warmup-epochs", "0.5", "--lr-scaling", "sqrt", "--lr", "0.002"]
        let flags = common + ["--epochs", "3"] + schedule
        let whole = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("whole"), "--tensorboard", tmp.file("tb")] + flags)
        XCTAssertEqual(whole.status, 0, whole.stderr)
        let (history, config, _) = try HistoryFile.read(from: tmp.file("whole/history.h5"))
        XCTAssertEqual(config.lrSchedule, LearningRateSchedule(shape: .cosine, warmupEpochs: 0.5, scaling: .sqrt))
        // 8 steps per epoch (256 training rows, batch 32): the epoch's rate is its last step's.
        let base = 0.002 * (32.0 / 128).squareRoot(), warm = 4, span = Double(24 - warm)
        let expected = [7, 15, 23].map { t in base * 0.5 * (1 + cos(Double.pi * Double(t - warm) / span)) }
        XCTAssertEqual(history.records.count, 3)
        for (r, e) in zip(history.records, expected) { XCTAssertEqual(r.learningRate, e, accuracy: 1e-15) }
        let csv = try String(contentsOfFile: tmp.file("whole/history.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.dropFirst().map { Double($0.split(separator: ",")[2])! }, history.records.map(\.learningRate))
        // TensorBoard: the rate each logged step used (every 20th step: step 20 is 0-based step 19).
        let logged = try EventReader.read(directory: tmp.file("tb")).joined().flatMap(\.values).filter { $0.tag == "learning_rate" }
        XCTAssertEqual(logged.map(\.simple), [Float(config.learningRate(atStep: 19))])
        XCTAssertEqual(config.learningRate(atStep: 1), base * 2 / 4, accuracy: 1e-15)

        // Stopped mid-epoch 2 and resumed: the same rates, the same bits.
        try stopAndResume(after: 11, flags)
        // Another schedule on resume is refused, naming the flags.
        let other = try Subprocess.rnnDist(["train", "--data", dataset, "--run-dir", tmp.file("stop"), "--resume", tmp.file("stop/checkpoint.h5")]
                                           + common + ["--epochs", "4", "--lr", "0.002"])
        XCTAssertEqual(other.status, 2, other.stderr)
        XCTAssertTrue(other.stderr.contains("--lr-schedule, --warmup-epochs, --lr-scaling"), other.stderr)
    }

    /// At -n 2 into tmp/stop: stopped after `batches` batches (exit 4), resumed to the end, and then
    /// the same weights bits as the uninterrupted run in tmp/whole.
    private func stopAndResume(after batches: Int, _ flags: [String]) throws {
        let stop = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("stop"), "--stop-after-batches", "\(batches)"] + flags)
        XCTAssertEqual(stop.status, 4, stop.stderr)
        let resumed = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("stop"), "--resume", tmp.file("stop/checkpoint.h5")] + flags)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try WeightsFile.read(from: tmp.file("stop/model.weights.h5")).weights,
                       try WeightsFile.read(from: tmp.file("whole/model.weights.h5")).weights)
    }

    /// ArgumentParser's usage errors (status 64) are one line naming the flag and where the usage is.
    func testBadScheduleFlagsAreUsageErrors() throws {
        for (flags, expect) in [(["--lr-schedule", "step:0:0.5"], "--lr-schedule must be"), (["--lr-scaling", "cubic"], "--lr-scaling must be"),
                                (["--warmup-epochs", "20", "--epochs", "10"], "--warmup-epochs 20.0 is outside 0…10"),
                                // The rate at the last epoch must stay a normal float: it trained at 0 and exited 0, or reached ∞.
                                (["--lr-schedule", "step:1:1e-20", "--epochs", "3"],
                                 "--lr-schedule step:1:1e-20 takes the rate to 1e-43 by epoch 3 (the rate × FACTOR^2): outside 1.2e-38…3.4e38"),
                                (["--lr-schedule", "step:2:1e42", "--epochs", "3"], "--lr-schedule step:2:1e+42 takes the rate to 1e+39 by epoch 3"),
                                (["--lr-schedule", "step:3:1e-300", "--epochs", "10"], "--lr-schedule step:3:1e-300 takes the rate to 0 by epoch 10 (the rate × FACTOR^3)")] {
            let r = try Subprocess.rnnDist(["train", "--data", dataset] + flags)
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("rnn-dist: error: " + expect), r.stderr)
            XCTAssertTrue(r.stderr.hasSuffix(" (usage: rnn-dist train --help)\n"), r.stderr)
        }
    }

    func testThePlateauRuleIsKerasReduceLROnPlateau() throws {
        // patience 2, factor 0.5; an improvement must beat the best by more than 1e-4 (Keras's min_delta).
        let rule = PlateauRule(factor: 0.5, patience: 2)
        var (factor, best, wait) = (1.0, Double.infinity, 0)
        var factors: [Double] = []
        for loss in [1.0, 0.9, 0.95, 0.89995, 0.91, 0.92, 0.5] {
            (factor, best, wait) = rule.update(loss: loss, factor: factor, best: best, wait: wait)
            factors.append(factor)
        }
        XCTAssertEqual(factors, [1, 1, 1, 0.5, 0.5, 0.25, 0.25])
        XCTAssertEqual(best, 0.5)
        XCTAssertEqual(PlateauRule.parse("0.2:3"), PlateauRule(factor: 0.2, patience: 3))
        for bad in ["1:3", "0:3", "0.5:0", "0.5", "x:2"] { XCTAssertNil(PlateauRule.parse(bad), bad) }
        // Repeated reductions stop at the smallest normal float: a factor that became subnormal
        // or 0 made the checkpoint unreadable (it is checked to be > 0 and read back from JSON).
        let steep = PlateauRule(factor: 1e-160, patience: 1)
        var f = 1.0
        for _ in 0 ..< 5 { f = steep.update(loss: 1, factor: f, best: 0.5, wait: 0).factor }
        XCTAssertEqual(f, Double(Float.leastNormalMagnitude))
        var state = TrainingState()
        state.lrFactor = f
        state.bestValLoss = 0.5
        state.plateauBest = 0.5
        let data = try JSONEncoder().encode(state)
        XCTAssertEqual(try JSONDecoder().decode(TrainingState.self, from: data).lrFactor, f)
    }

    /// The rates a run will use are `train`'s check, not a file's: a config whose step schedule ends
    /// below the float range reads back (files of earlier builds had such configs, and inspect,
    /// eval, predict and serve refused them), warm-up over the whole run applies no factor, and a
    /// scaled rate below the range is named as such (it was blamed on the schedule).
    func testTheRunsRatesAreCheckedWhereTheRunStarts() throws {
        var c = toyConfig(.gru)
        c.epochs = 3
        c.lrSchedule = LearningRateSchedule(shape: .step(every: 1, factor: 1e-20))
        XCTAssertNoThrow(try c.validate())
        XCTAssertEqual(try TrainConfig.from(json: c.json(), path: "x.h5"), c)
        XCTAssertThrowsError(try c.validateRates()) {
            XCTAssertTrue("\($0)".contains("--lr-schedule step:1:1e-20 takes the rate to 1e-43 by epoch 3"), "\($0)")
        }
        c.lrSchedule = LearningRateSchedule(shape: .step(every: 1, factor: 1e-20), warmupEpochs: 3)
        XCTAssertNoThrow(try c.validateRates(), "every step warms up")
        c.lrSchedule = LearningRateSchedule(shape: .step(every: 1, factor: 0.99), scaling: .linear)
        c.learningRate = 1.3e-38
        c.batchSize = 1
        XCTAssertThrowsError(try c.validateRates()) { XCTAssertTrue("\($0)".hasPrefix("--lr × --lr-scaling 1.02e-40 is outside"), "\($0)") }
    }

    /// Values used as floats must be normal ones: a subnormal --lr, --momentum, --validation-split
    /// or dropout rate was accepted and its config could not be read back.
    func testSubnormalOptionValuesAreRefused() {
        var c = toyConfig(.gru)
        XCTAssertNoThrow(try c.validate())
        let sub = Double.leastNormalMagnitude / 4, tiniest = Double.leastNonzeroMagnitude
        for edit: (inout TrainConfig) -> Void in [{ $0.learningRate = sub }, { $0.learningRate = 1e-50 }, { $0.momentum = sub },
                                                  { $0.validationSplit = tiniest }, { $0.clipNorm = sub },
                                                  { $0.model = ModelConfig(kind: .gru, numWords: 30, embedDim: 4, units: 5, dropout: sub) }] {
            var bad = c
            edit(&bad)
            XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("1.2e-38"), "\($0)") }
        }
        XCTAssertNil(PlateauRule.parse("\(sub):1"))
        XCTAssertNil(LearningRateSchedule.parse("step:1:\(sub)"))
        c.learningRate = 2e-38
        XCTAssertNoThrow(try c.validate())
    }

    /// With patience 1 the rate halves after every epoch whose val_loss did not improve by 1e-4. At
    /// a learning rate of 1e-7 no epoch after the first can (RMSprop moves each weight ~1e-7 a
    /// step), so the rates are known whatever the machine: the first two epochs at 1e-7, then
    /// halved each epoch; they also follow the recorded losses; a resume past a reduction gives the
    /// same bits.
    func testARunReducesOnPlateauAndResumesIt() throws {
        let flags = common + ["--epochs", "5", "--lr", "1e-7", "--reduce-lr-on-plateau", "0.5:1"]
        let whole = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("whole")] + flags)
        XCTAssertEqual(whole.status, 0, whole.stderr)
        let records = try HistoryFile.read(from: tmp.file("whole/history.h5")).0.records
        var (factor, best, wait) = (1.0, Double.infinity, 0)
        let rule = PlateauRule(factor: 0.5, patience: 1)
        for r in records {
            XCTAssertEqual(r.learningRate, 1e-7 * factor, "epoch \(r.epoch)")
            (factor, best, wait) = rule.update(loss: r.valLoss, factor: factor, best: best, wait: wait)
        }
        XCTAssertEqual(records.map(\.learningRate), [1e-7, 1e-7, 0.5e-7, 0.25e-7, 0.125e-7], "\(records.map(\.valLoss))")
        try stopAndResume(after: 35, flags)
        XCTAssertEqual(try HistoryFile.read(from: tmp.file("stop/history.h5")).0.records.map(\.learningRate), records.map(\.learningRate))
    }
}
