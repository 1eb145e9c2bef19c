import XCTest
import Foundation
import TestSupport
@testable import Training

/// `train --exchange-overlap` (Training/ExchangeBehindBackward.swift): the embedding rows' all-reduce
/// started during the first layer's BPTT gives the bits of the exchange after backward, it really
/// starts during BPTT, and a stalled rank still ends the job.
final class ExchangeOverlapTests: ToyIMDBTestCase {
    @discardableResult
    func train(_ n: Int, _ dir: String, _ extra: [String]) throws -> ProcessResult {
        let args = ["train", "--data", dataset, "--run-dir", dir] + common + extra
        let r = try Subprocess.mpiRun(n, args, timeout: 120)
        XCTAssertFalse(r.timedOut, "mpirun -n \(n) \(args) hung")
        XCTAssertEqual(r.status, 0, "-n \(n) \(extra): \(r.stderr.suffix(1500))")
        return r
    }

    func weights(_ dir: String) throws -> [Float] { try WeightsFile.read(from: dir + "/model.weights.h5").weights }

    func history(_ dir: String) throws -> [[Double]] {
        try HistoryFile.read(from: dir + "/history.h5").0.records.map { [$0.loss, $0.acc, $0.valLoss, $0.valAcc] }
    }

    /// The epoch line's "(N behind backward)": the rows whose all-reduce started during BPTT.
    func rowsBehindBackward(_ out: String) -> Double? {
        guard let end = out.range(of: " behind backward)") else { return nil }
        let before = out[..<end.lowerBound]
        guard let open = before.lastIndex(of: "(") else { return nil }
        return Double(before[before.index(after: open)...])
    }

    /// Same weights and history bits with the rows sent during BPTT as after it, at 2 ranks (where
    /// MPI adds two values in one way), for every cell and for a stack; with 3 ranks MPI may add in
    /// another order for another message size, so there only close.
    func testTheExchangeBehindBackwardGivesTheBitsOfTheExchangeAfterIt() throws {
        for (label, model) in [("lstm", ["--model", "lstm"]), ("gru", ["--model", "gru"]), ("simple-rnn", ["--model", "simple-rnn"]),
                               ("stacked", ["--model", "gru", "--layers", "2"])] {
            let on = tmp.file("\(label)-on"), off = tmp.file("\(label)-off")
            let a = try train(2, on, model + ["--epochs", "2", "--exchange-overlap", "on"])
            let b = try train(2, off, model + ["--epochs", "2", "--exchange-overlap", "off"])
            XCTAssertEqual(try weights(on), try weights(off), label)
            XCTAssertEqual(try history(on), try history(off), label)
            XCTAssertGreaterThan(rowsBehindBackward(a.stdout) ?? 0, 0, "\(label): no rows went during BPTT: \(a.stdout)")
            XCTAssertNil(rowsBehindBackward(b.stdout), b.stdout)
        }
        let on3 = tmp.file("on-3"), off3 = tmp.file("off-3")
        try train(3, on3, ["--epochs", "1", "--exchange-overlap", "on"])
        try train(3, off3, ["--epochs", "1", "--exchange-overlap", "off"])
        let (a, b) = (try weights(on3), try weights(off3))
        XCTAssertLessThanOrEqual(zip(a, b).map { abs($0 - $1) }.max() ?? 1, 1e-5)
    }

    /// `--timeline` shows the exchange behind backward: `agree` and `slice_0…2` inside the step's
    /// `forward_backward`, in that order. (A rank starts a slice in BPTT only once the agreement has
    /// come back, which it checks without waiting; that it did in some of the 16 steps is the one
    /// timing assumption, as for the rows counted above.)
    func testTheTimelineShowsTheSlicesInsideBackward() throws {
        let trace = tmp.file("trace.json")
        try train(2, tmp.file("timeline"), ["--epochs", "2", "--exchange-overlap", "on", "--timeline", trace])
        let events = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: trace))) as? [[String: Any]] ?? []
        let spans = events.filter { $0["ph"] as? String == "X" }
        for rank in 0 ..< 2 {
            let mine = spans.filter { $0["pid"] as? Int == rank }
                .map { (name: $0["name"] as? String ?? "", start: $0["ts"] as? Int ?? 0, end: ($0["ts"] as? Int ?? 0) + ($0["dur"] as? Int ?? 0)) }
            var complete = 0
            for fb in mine where fb.name == "forward_backward" {
                let inside = mine.filter { $0.start >= fb.start && $0.end <= fb.end && $0.name != "forward_backward" }
                    .sorted { $0.start < $1.start }.map(\.name)
                XCTAssertEqual(inside.first, "agree", "rank \(rank): \(inside)")
                XCTAssertEqual(Array(inside.dropFirst()), Array(["slice_0", "slice_1", "slice_2"].prefix(inside.count - 1)), "rank \(rank)")
                if inside.count == 4 { complete += 1 }
            }
            XCTAssertEqual(mine.filter { $0.name == "forward_backward" }.count, 16, "rank \(rank)")
            XCTAssertGreaterThan(complete, 0, "rank \(rank): no step started its slices during BPTT")
        }
    }

    /// Where it does not apply it is simply not used: a Bidirectional first layer, input dropout,
    /// accumulation; and `auto` leaves it off on one host.
    func testItStaysOffWhereItDoesNotApply() throws {
        for (label, extra) in [("bidirectional", ["--bidirectional", "--exchange-overlap", "on"]),
                               ("dropout", ["--dropout", "0.2", "--exchange-overlap", "on"]),
                               ("accumulate", ["--accumulate", "2", "--exchange-overlap", "on"]),
                               ("auto", [String]())] {
            let r = try train(2, tmp.file(label), ["--epochs", "1"] + extra)
            XCTAssertNil(rowsBehindBackward(r.stdout), "\(label): \(r.stdout)")
            XCTAssertTrue(r.stdout.contains("embedding rows"), "\(label): \(r.stdout)")
        }
        let bad = try Subprocess.rnnDist(["train", "--data", dataset, "--exchange-overlap", "sometimes"])
        XCTAssertEqual(bad.status, 64, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--exchange-overlap"), bad.stderr)
    }

    /// A rank that stalls with slices in flight: the others do not hang in BPTT (they only test the
    /// slices), and the watchdog ends the job at the exchange naming it.
    func testAStalledRankStillEndsTheJob() throws {
        let r = try Subprocess.mpiRun(2, ["train", "--data", dataset, "--run-dir", tmp.file("stall"), "--collective-timeout", "10",
                                          "--inject-stall", "1:3", "--exchange-overlap", "on", "--epochs", "1"] + common, timeout: 90)
        XCTAssertFalse(r.timedOut, "the job hung")
        XCTAssertEqual(r.status, 6, r.stderr)
        XCTAssertLessThan(r.seconds, 40, "the job took \(r.seconds) s to end after a 10 s timeout")
        XCTAssertTrue(r.stderr.contains("rank 0: collective timeout: waited 10 s in step 3; this rank has not arrived: rank 1 on "),
                      r.stderr)
    }
}
