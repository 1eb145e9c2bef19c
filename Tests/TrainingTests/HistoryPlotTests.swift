import Foundation
import XCTest
@testable import Training

/// The chart of a run as `plot` draws it.
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
        XCTAssertFalse(three.contains("fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"2\"/>\n<circle"), three)
        XCTAssertEqual(three.components(separatedBy: "<polyline").count - 1, 2)
    }
}
