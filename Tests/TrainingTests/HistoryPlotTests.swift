import Foundation
import XCTest
@testable import RNN
@testable import Training

/// The chart of a run as `plot` draws it, and `inspect --json`'s summary of a history.
final class HistoryPlotTests: XCTestCase {
    private func record(_ epoch: Int) -> EpochRecord {
        EpochRecord(epoch: epoch, loss: 0.6 / Double(epoch), acc: 0.5 + 0.1 * Double(epoch), valLoss: 0.65 / Double(epoch),
                    valAcc: 0.5 + 0.09 * Double(epoch), seconds: 1, samplesPerSecond: 100, mpiShare: 0, learningRate: 0.001)
    }

    /// One epoch: a validation line of one point draws nothing, so a ring marks it; the axis has
    /// that epoch's tick only.
    func testOneEpochShowsEverySeriesAndOnlyItsEpoch() {
        let svg = HistoryPlot.svg(History(records: [record(1)]), title: "t")
        for name in ["Validation acc", "Validation loss"] {
            guard let start = svg.range(of: "data-name=\"\(name)\""), let end = svg.range(of: "</g>", range: start.upperBound ..< svg.endIndex) else {
                XCTFail(name); continue
            }
            XCTAssertTrue(svg[start.upperBound ..< end.lowerBound].contains("<circle"), "\(name): \(svg[start.upperBound ..< end.lowerBound])")
        }
        let ticks = svg.components(separatedBy: "text-anchor=\"middle\">").dropFirst().compactMap { Int($0.prefix { $0 != "<" }) }
        XCTAssertEqual(ticks, [1, 1], "one tick per chart, epoch 1 only")
        // Several epochs: lines, no rings.
        let three = HistoryPlot.svg(History(records: [record(1), record(2), record(3)]), title: "t")
        XCTAssertFalse(three.contains("r=\"4\" fill=\"none\""), "no ring in either chart: \(three)")
        XCTAssertEqual(svg.components(separatedBy: "r=\"4\" fill=\"none\"").count - 1, 2, "one ring per chart")
        XCTAssertEqual(three.components(separatedBy: "<polyline").count - 1, 2)
    }

    /// The value axis's labels tell its gridlines apart and name their values: a loss between 0.6921
    /// and 0.6931 (a short run on the 0.693 plateau) was labelled 0.692, 0.693, 0.693, 0.693.
    func testValueLabelsNameTheirGridlines() {
        for (lo, hi) in [(0.6921, 0.6931), (0.99999, 1.0), (0.0, 1.0), (0.41, 0.93), (1234.5, 1290.25), (-0.002, 0.0031), (3e-7, 9e-7)] {
            let ticks = HistoryPlot.ticks(lo, hi)
            let labels = HistoryPlot.tickLabels(ticks)
            XCTAssertGreaterThan(ticks.count, 1, "\(lo)…\(hi)")
            XCTAssertEqual(Set(labels).count, labels.count, "\(lo)…\(hi): \(labels)")
            let step = ticks[1] - ticks[0]
            for (t, label) in zip(ticks, labels) {
                XCTAssertEqual(Double(label) ?? .nan, t, accuracy: step * 1e-6, "\(lo)…\(hi): \(labels)")
            }
        }
        XCTAssertEqual(HistoryPlot.tickLabels([0.69225, 0.6925, 0.69275, 0.693]), ["0.69225", "0.6925", "0.69275", "0.693"])
        XCTAssertEqual(HistoryPlot.tickLabels([0, 0.2, 0.4, 0.6]), ["0", "0.2", "0.4", "0.6"])
        XCTAssertEqual(HistoryPlot.tickLabels([0, 500, 1000, 1500]), ["0", "500", "1000", "1500"], "no 1e+03")
        XCTAssertEqual(HistoryPlot.tickLabels([1240, 1250, 1260]), ["1240", "1250", "1260"])
        // Ticks no Double tells apart (every loss 1e15: the ±0.05 padding is below an ulp) trapped.
        XCTAssertEqual(HistoryPlot.tickLabels([1e15, 1e15, 1e15]), ["1e+15", "1e+15", "1e+15"])
        XCTAssertEqual(HistoryPlot.tickLabels([0.5]), ["0.5"])
        let huge = EpochRecord(epoch: 1, loss: 1e15, acc: 0.5, valLoss: 1e15, valAcc: 0.5, seconds: 1, samplesPerSecond: 1,
                               mpiShare: 0, learningRate: 0.001)
        XCTAssertTrue(HistoryPlot.svg(History(records: [huge]), title: "t").contains("</svg>"))
        // In the chart: the loss axis of that plateau run.
        let flat = (1 ... 2).map { e in
            EpochRecord(epoch: e, loss: 0.69308 - 0.00098 * Double(e - 1), acc: 0.5, valLoss: 0.6925, valAcc: 0.5,
                        seconds: 1, samplesPerSecond: 100, mpiShare: 0, learningRate: 0.001)
        }
        let svg = HistoryPlot.svg(History(records: flat), title: "t")
        let loss = svg.components(separatedBy: "data-title=\"Training and validation loss\"")[1]
        let shown = loss.components(separatedBy: "text-anchor=\"end\">").dropFirst().map { String($0.prefix { $0 != "<" }) }
        XCTAssertEqual(Set(shown).count, shown.count, "\(shown)")
        XCTAssertTrue(shown.contains("0.6925"), "\(shown)")
    }

    /// An epoch without a value leaves a gap in the validation line (it was joined across), and
    /// values near Double's largest, whose span overflowed, drew coordinates of -nan.
    func testGapsAndHugeValuesDrawOnlyNumbers() {
        func rec(_ e: Int, loss: Double, valLoss: Double) -> EpochRecord {
            EpochRecord(epoch: e, loss: loss, acc: 0.5, valLoss: valLoss, valAcc: 0.5, seconds: 1, samplesPerSecond: 1,
                        mpiShare: 0, learningRate: 0.001)
        }
        let gap = HistoryPlot.svg(History(records: [rec(1, loss: 0.7, valLoss: 0.6), rec(2, loss: 0.6, valLoss: .infinity),
                                                    rec(3, loss: 0.5, valLoss: 0.5), rec(4, loss: 0.4, valLoss: 0.45)]), title: "t")
        let valLoss = gap.components(separatedBy: "data-name=\"Validation loss\"")[1].components(separatedBy: "</g>")[0]
        let lines = valLoss.components(separatedBy: "<polyline points=\"").dropFirst().map { $0.prefix { $0 != "\"" }.split(separator: " ").count }
        XCTAssertEqual(lines, [1, 2], "epoch 1 alone, then epochs 3-4: \(valLoss)")
        XCTAssertEqual(valLoss.components(separatedBy: "r=\"4\" fill=\"none\"").count - 1, 1, "a ring marks epoch 1")
        for losses in [[1.7e308, 0.5, 0.4], [1e308, -1e308, 0.4], [Double.greatestFiniteMagnitude, -Double.greatestFiniteMagnitude, 1]] {
            let svg = HistoryPlot.svg(History(records: losses.enumerated().map { rec($0 + 1, loss: $1, valLoss: $1) }), title: "t")
            XCTAssertFalse(svg.contains("nan") || svg.contains("inf"), "\(losses): \(svg)")
            XCTAssertTrue(svg.contains("</svg>"))
        }
    }

    /// Without validation rows val_loss and val_acc are NaN: inspect --json gives null for them (a
    /// NaN cannot be written as JSON).
    func testAHistoryWithoutValidationSummarisesAsJSON() throws {
        let path = NSTemporaryDirectory() + "/history-\(UUID().uuidString).h5"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var r = record(1)
        r.valLoss = .nan; r.valAcc = .nan
        try HistoryFile.write(to: path, history: History(records: [r]), config: toyConfig(.gru), worldSize: 1)
        let summary = try RunFileSummary(path: path, kind: "history")
        let text = String(decoding: try JSONSerialization.data(withJSONObject: summary.json), as: UTF8.self)
        XCTAssertTrue(text.contains("\"val_loss\":[null]"), text)
        XCTAssertTrue(text.contains("\"loss\":[0.6]"), text)
    }
}

/// Validation and eval's exact loss sum when a model has diverged.
final class ClassificationCountsTests: XCTestCase {
    /// A finite but huge per-sample loss (logit 1e30) made the fixed-point sum trap (SIGILL in
    /// validation and eval); it is counted apart and the loss is +∞, the confusion still counted.
    func testAHugeLossIsInfinityNotATrap() {
        var c = ClassificationCounts(classes: 2)
        let head = SigmoidHead()
        var z: [Float] = [2]
        c.add(logits: &z, label: 1, head: head)
        XCTAssertEqual(c.loss, Double(head.loss(logits: z, label: 1)), accuracy: 1e-9)
        for logit: Float in [1e30, .infinity, 5000] {
            z = [logit]
            c.add(logits: &z, label: 0, head: head)
        }
        XCTAssertEqual(c.loss, .infinity)
        XCTAssertEqual(c.count, 4)
        XCTAssertEqual(c.count(actual: 0, predicted: 1), 3)
    }

    /// Large but finite losses over many rows: a single Int64 sum held 2³¹ nats in all (600,000
    /// rows of 4,000 nats trapped); the two-part sum gives the mean.
    func testManyLargeLossesSumWithoutOverflow() {
        var c = ClassificationCounts(classes: 2)
        let head = SigmoidHead()
        var z: [Float] = [-4000]
        let each = Double(head.loss(logits: z, label: 1))
        XCTAssertEqual(each, 4000, accuracy: 1e-3)
        for _ in 0 ..< 600_000 { c.add(logits: &z, label: 1, head: head) }
        XCTAssertEqual(c.loss, each, accuracy: each * 1e-12)
        XCTAssertEqual(c.count(actual: 1, predicted: 0), 600_000)
    }

    /// A diverged model's rows lose more than 2³⁰ nats each (a probe: `--lr 1e10`, rows of up to
    /// 9.8e10 nats): they were counted apart and the validation loss was +∞ (so no best weights were
    /// ever written) though every loss was finite; up to 2⁶² nats a row is summed exactly now.
    func testLossesAboveTwoToTheThirtyNatsAreSummed() {
        var c = ClassificationCounts(classes: 2)
        let head = SigmoidHead()
        var expected = 0.0
        for logit: Float in [-9.8e10, -3e9, -1.5, -2.7e12, 4e18] {
            var z = [logit]
            c.add(logits: &z, label: 1, head: head)
            expected += Double(head.loss(logits: z, label: 1))
        }
        XCTAssertEqual(c.loss, expected / 5, accuracy: expected / 5 * 1e-12)
        var z: [Float] = [-5e18]                      // above 2⁶² nats: apart, +∞
        c.add(logits: &z, label: 1, head: head)
        XCTAssertEqual(c.loss, .infinity)
    }

    /// Where the sum of 2⁻³² units fits one Int64, the mean is that sum over the count: the bits
    /// the loss always had (each sample round(loss·2³²)).
    func testSmallLossesKeepTheirBits() {
        var c = ClassificationCounts(classes: 2)
        let head = SigmoidHead()
        var units: Int64 = 0
        for logit: Float in [0.3, -2.25, 7.5, -0.001, 11.0, -17.75] {
            var z = [logit]
            c.add(logits: &z, label: 1, head: head)
            units += Int64((Double(head.loss(logits: z, label: 1)) * 0x1p32).rounded())
        }
        XCTAssertEqual(c.loss.bitPattern, (Double(units) / 0x1p32 / 6).bitPattern)
    }
}
