import XCTest
import Foundation
import TestSupport
@testable import RNN
@testable import Training

/// A 3-class dataset from a CSV (prepared by the real `prepare`): the softmax model trains alike at
/// any rank count, resumes bit for bit, and `eval`, `predict` and `inspect` speak in class names.
final class MultiClassTrainingTests: XCTestCase {
    nonisolated(unsafe) static var folder: TempDir?
    nonisolated(unsafe) static var dataset = ""
    var tmp: TempDir!
    let common = ["--limit", "320", "--batch-size", "32", "--units", "8", "--embed-dim", "8", "--seed", "5"]
    static let classes = ["alpha", "beta", "gamma"]

    /// 600 rows, 200 a class, in an interleaved order: each class has its own words, mixed with
    /// shared ones, so the classes can be learnt.
    static func csv() -> String {
        let own = [["goal", "team", "match", "score"], ["vote", "law", "party", "senate"], ["chip", "code", "robot", "data"]]
        let shared = ["the", "a", "and", "it", "was", "of", "news", "today"]
        var state: UInt64 = 12345
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        var lines = ["id,text,label"]
        for i in 0 ..< 600 {
            let c = (i * 7) % 3
            let words = (0 ..< 12).map { _ in next(3) == 0 ? own[c][next(4)] : shared[next(shared.count)] }
            lines.append("\(i),\"\(words.joined(separator: " ")), \"\"quoted\"\"\",\(classes[c])")
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    override class func setUp() {
        super.setUp()
        guard let dir = try? TempDir("multiclass-data") else { return }
        folder = dir
        try? csv().write(toFile: dir.file("topics.csv"), atomically: false, encoding: .utf8)
        let r = try? Subprocess.rnnDist(["prepare", "--source", dir.file("topics.csv"), "-o", dir.file("topics.h5"),
                                         "--num-words", "40", "--maxlen", "20", "--test-split", "0.25"])
        if r?.status != 0 { print("prepare failed: \(r?.stderr ?? "")") }
        dataset = r?.status == 0 ? dir.file("topics.h5") : ""
    }

    override class func tearDown() {
        folder?.remove()
        super.tearDown()
    }

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: Subprocess.rnnDist) else {
            throw XCTSkip("rnn-dist is not built at \(Subprocess.rnnDist)")
        }
        XCTAssertFalse(Self.dataset.isEmpty, "the 3-class dataset could not be prepared")
        tmp = try TempDir("MultiClassTrainingTests")
    }

    override func tearDown() { tmp?.remove() }

    @discardableResult
    func train(_ n: Int, _ dir: String, _ extra: [String] = [], expect: Int32 = 0) throws -> ProcessResult {
        let r = try Subprocess.mpiRun(n, ["train", "--data", Self.dataset, "--run-dir", dir] + common + extra, timeout: 120)
        XCTAssertFalse(r.timedOut)
        XCTAssertEqual(r.status, expect, "-n \(n) \(extra): \(r.stderr.suffix(1500))")
        return r
    }

    func testTheModelIsASoftmaxOverTheClassesInKerasLayout() throws {
        let dir = tmp.file("one")
        try train(1, dir, ["--epochs", "1"])
        let (w, meta) = try WeightsFile.read(from: dir + "/model.weights.h5")
        XCTAssertEqual(meta.classNames, Self.classes)
        XCTAssertEqual(meta.config.model.head, .softmax)
        let dense = try XCTUnwrap(meta.config.model.parameterTable.first { $0.kerasPath == "layers/dense/vars/0" })
        XCTAssertEqual(dense.shape, [8, 3])
        XCTAssertEqual(meta.config.model.parameterTable.last?.shape, [3])
        XCTAssertEqual(w.count, meta.config.model.parameterCount)
    }

    func testOneTwoAndFourRanksAgreeAndResumeIsBitIdentical() throws {
        var w: [Int: [Float]] = [:]
        for n in [1, 2, 4] {
            let dir = tmp.file("n\(n)")
            try train(n, dir, ["--epochs", "2", "--model", "gru"])
            w[n] = try WeightsFile.read(from: dir + "/model.weights.h5").weights
        }
        // As for two classes: other world sizes sum in another order, so they agree to rounding.
        for n in [2, 4] {
            XCTAssertLessThanOrEqual(zip(w[1]!, w[n]!).map { abs($0 - $1) }.max()!, 1e-4, "-n 1 vs -n \(n)")
        }
        let meta = try WeightsFile.read(from: tmp.file("n1/model.weights.h5")).metadata
        let initial = RNN.Model(config: meta.config.model, seed: 5).weights
        XCTAssertGreaterThan(zip(w[1]!, initial).map { abs($0 - $1) }.max()!, 1e-3, "training moved the weights")

        // Stopped mid-epoch at -n 2 and resumed: the same bits as the uninterrupted -n 2 run.
        let dir = tmp.file("stopped")
        try train(2, dir, ["--epochs", "2", "--model", "gru", "--stop-after-batches", "11"], expect: 4)
        try train(2, dir, ["--epochs", "2", "--model", "gru", "--resume", dir + "/checkpoint.h5"])
        XCTAssertEqual(try WeightsFile.read(from: dir + "/model.weights.h5").weights, w[2]!)
    }

    /// predict's text line lists every class up to 8; beyond, the 8 most probable (it listed the
    /// first 8 in order, leaving out the predicted class c9) and how many more --json has.
    func testPredictsTextLineNamesTheTopClassesBeyondEight() throws {
        var lines = ["text,label"]
        for i in 0 ..< 200 { lines.append("w\(i % 10) w\(i % 10) common,c\(i % 10)") }
        try (lines.joined(separator: "\n") + "\n").write(toFile: tmp.file("ten.csv"), atomically: false, encoding: .utf8)
        let prepare = try Subprocess.rnnDist(["prepare", "--source", tmp.file("ten.csv"), "-o", tmp.file("ten.h5"), "--maxlen", "4"])
        XCTAssertEqual(prepare.status, 0, prepare.stderr)
        let run = try Subprocess.rnnDist(["train", "--data", tmp.file("ten.h5"), "--run-dir", tmp.file("ten"), "--epochs", "1",
                                          "--batch-size", "16", "--units", "4", "--embed-dim", "4", "--validation-split", "0", "--layers", "2"])
        XCTAssertEqual(run.status, 0, run.stderr)
        // Without validation rows inspect names the loss it monitored (it said "best val_loss"), and
        // plot draws no validation series (their legend entries stood over empty series); its title
        // counts the layers (a 2-layer LSTM was "lstm (4 units)").
        let inspect = try Subprocess.rnnDist(["inspect", tmp.file("ten/checkpoint.h5")])
        XCTAssertTrue(inspect.stdout.contains("; best training loss (no validation rows) "), inspect.stdout)
        let plot = try Subprocess.rnnDist(["plot", tmp.file("ten/history.h5"), "-o", tmp.file("ten.svg")])
        XCTAssertEqual(plot.status, 0, plot.stderr)
        let svg = try String(contentsOfFile: tmp.file("ten.svg"), encoding: .utf8)
        XCTAssertTrue(svg.contains("data-name=\"Training acc\"") && svg.contains("data-name=\"Training loss\""), svg)
        XCTAssertFalse(svg.contains("Validation"), svg)
        XCTAssertTrue(svg.contains("lstm, 10 classes (2 layers of 4 units), 1 rank, 1 epoch"), svg)
        let weights = tmp.file("ten/model.weights.h5")
        let json = try Subprocess.rnnDist(["predict", "--json", "--weights", weights, "w9 w9 common"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let p = try XCTUnwrap(doc["probabilities"] as? [String: Double])
        XCTAssertEqual(p.count, 10)
        let ranked = p.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        let text = try Subprocess.rnnDist(["predict", "--weights", weights, "w9 w9 common"])
        XCTAssertEqual(text.status, 0, text.stderr)
        let inner = try XCTUnwrap(text.stdout.split(separator: "(").dropFirst().first?.split(separator: ")").first)
        let listed = inner.components(separatedBy: ", ")
        XCTAssertEqual(listed.count, 9, text.stdout)
        XCTAssertEqual(listed.last, "2 more in --json", text.stdout)
        XCTAssertEqual(listed.prefix(8).map { String($0.split(separator: " ")[0]) }, ranked.prefix(8).map(\.key), text.stdout)
        XCTAssertTrue(listed.contains { $0.hasPrefix("\(doc["class"] as? String ?? "?") ") }, "the predicted class is listed: \(text.stdout)")
    }

    func testEvalPredictAndInspectSpeakInClassNames() throws {
        let dir = tmp.file("run")
        try train(2, dir, ["--epochs", "3", "--tensorboard", dir + "/tb"])
        let weights = dir + "/model.weights.h5"
        // History, its CSV, TensorBoard and plot as for two classes; acc is the categorical accuracy.
        let history = try HistoryFile.read(from: dir + "/history.h5").0.records
        XCTAssertEqual(history.count, 3)
        let csv = try String(contentsOfFile: dir + "/history.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.first?.hasPrefix("epoch,acc,learning_rate,loss,val_acc,val_loss"), true, "\(csv.first ?? "")")
        XCTAssertEqual(csv.count, 4)
        let acc = try EventReader.read(directory: dir + "/tb").joined().flatMap(\.values).filter { $0.tag == "epoch_val_acc" }.compactMap(\.simple)
        XCTAssertEqual(acc, history.map { Float($0.valAcc) })
        XCTAssertEqual(try Subprocess.rnnDist(["plot", dir + "/history.h5", "-o", dir + "/h.svg"]).status, 0)
        var docs: [[String: Any]] = []
        for n in [1, 2, 3] {
            let r = try Subprocess.mpiRun(n, ["eval", "--json", "--weights", weights, "--data", Self.dataset])
            XCTAssertEqual(r.status, 0, r.stderr)
            docs.append(try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]))
        }
        let doc = docs[0]
        XCTAssertEqual(doc["classes"] as? [String], Self.classes)
        let matrix = try XCTUnwrap(doc["confusion_matrix"] as? [[Int]])
        XCTAssertEqual(matrix.count, 3)
        XCTAssertEqual(matrix.joined().reduce(0, +), 150, "the 150 test rows")
        XCTAssertEqual(doc["samples"] as? Int, 150)
        let perClass = try XCTUnwrap(doc["per_class"] as? [[String: Any]])
        XCTAssertEqual(perClass.map { $0["name"] as? String }, Self.classes)
        XCTAssertEqual(perClass.map { $0["support"] as? Int }, matrix.map { $0.reduce(0, +) })
        let accuracy = try XCTUnwrap(doc["accuracy"] as? Double)
        XCTAssertEqual(accuracy, Double((0 ..< 3).map { matrix[$0][$0] }.reduce(0, +)) / 150)
        XCTAssertNil(doc["precision"], "one-class precision is for two classes only")
        XCTAssertNotNil((doc["macro_avg"] as? [String: Double])?["f1"])
        for other in docs.dropFirst() {
            for key in ["loss", "accuracy", "confusion_matrix", "per_class", "macro_avg", "weighted_avg"] {
                XCTAssertEqual(other[key] as? NSObject, doc[key] as? NSObject, "\(key) at another rank count")
            }
        }
        let text = try Subprocess.rnnDist(["eval", "--weights", weights, "--data", Self.dataset])
        XCTAssertTrue(text.stdout.contains("confusion (rows: actual, columns: predicted)"), text.stdout)
        XCTAssertTrue(text.stdout.contains("    alpha      beta     gamma"), text.stdout)

        let p = try Subprocess.rnnDist(["predict", "--json", "--weights", weights], stdin: "goal team match score\nvote law party\n")
        XCTAssertEqual(p.status, 0, p.stderr)
        for line in p.stdout.split(separator: "\n") {
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let probs = try XCTUnwrap(o["probabilities"] as? [String: Double])
            XCTAssertEqual(Set(probs.keys), Set(Self.classes))
            XCTAssertEqual(probs.values.reduce(0, +), 1, accuracy: 1e-9)
            XCTAssertEqual(o["class"] as? String, probs.max { $0.value < $1.value }?.key)
            XCTAssertNil(o["probability"], "P(class 1) is for two classes only")
        }
        let plain = try Subprocess.rnnDist(["predict", "--weights", weights, "chip code robot"])
        XCTAssertTrue(plain.stdout.contains("(alpha 0."), plain.stdout)

        let inspect = try Subprocess.rnnDist(["inspect", weights])
        XCTAssertTrue(inspect.stdout.contains("classes (3): alpha, beta, gamma"), inspect.stdout)
        let data = try Subprocess.rnnDist(["inspect", Self.dataset])
        XCTAssertTrue(data.stdout.contains("classes (3): 0 alpha, 1 beta, 2 gamma"), data.stdout)

        // Weights of 3 classes against a dataset of other classes: refused, naming both.
        let other = tmp.file("other.csv")
        try Self.csv().replacingOccurrences(of: ",gamma\r", with: ",delta\r").write(toFile: other, atomically: false, encoding: .utf8)
        XCTAssertEqual(try Subprocess.rnnDist(["prepare", "--source", other, "-o", tmp.file("other.h5"), "--num-words", "40", "--maxlen", "20", "--test-split", "0.25"]).status, 0)
        let refused = try Subprocess.rnnDist(["eval", "--weights", weights, "--data", tmp.file("other.h5")])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertEqual(refused.stderr.split(separator: "\n").count, 1)
        XCTAssertTrue(refused.stderr.contains("has the classes alpha, beta, delta but \(weights) was trained on alpha, beta, gamma"), refused.stderr)
        let resumed = try Subprocess.mpiRun(1, ["train", "--data", tmp.file("other.h5"), "--run-dir", tmp.file("r2"), "--resume", dir + "/checkpoint.h5",
                                                "--epochs", "4"] + common)
        XCTAssertNotEqual(resumed.status, 0)
        // Each list named with its file (the dataset's were once given as the checkpoint's).
        XCTAssertTrue(resumed.stderr.contains("\(tmp.file("other.h5")) has the classes alpha, beta, delta; \(dir)/checkpoint.h5 was trained on alpha, beta, gamma"), resumed.stderr)
    }
}
