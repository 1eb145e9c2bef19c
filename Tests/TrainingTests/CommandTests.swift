import XCTest
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import HDF5
@testable import TextData
@testable import RNN
import TestSupport
@testable import Training

/// eval, predict, plot and inspect on the files a real `train` run wrote.
final class CommandTests: XCTestCase {
    nonisolated(unsafe) static var shared: TempDir?
    nonisolated(unsafe) static var folder = ""
    nonisolated(unsafe) static var dataset = ""
    nonisolated(unsafe) static var runDir = ""

    override class func setUp() {
        super.setUp()
        guard let dir = try? TempDir("cmd-data") else { return }
        shared = dir
        guard let f = try? ToyIMDB.write(at: dir.path, perLabel: 120) else { return }
        folder = f
        let ds = dir.file("imdb.h5"), run = dir.file("run")
        guard (try? Subprocess.rnnDist(["prepare", "--source", f, "-o", ds, "--num-words", "60", "--maxlen", "40"]))?.status == 0
        else { return }
        let r = try? Subprocess.rnnDist(["train", "--data", ds, "--run-dir", run, "--epochs", "3", "--batch-size", "16",
                                         "--units", "8", "--embed-dim", "8", "--model", "gru", "--lr", "0.01"], timeout: 120)
        if r?.status == 0 { dataset = ds; runDir = run } else { print("train failed: \(r?.stderr ?? "")") }
    }
    override class func tearDown() { shared?.remove(); super.tearDown() }

    var tmp: TempDir!
    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: Subprocess.rnnDist) else { throw XCTSkip("rnn-dist is not built") }
        XCTAssertFalse(Self.runDir.isEmpty, "set-up run failed")
        tmp = try TempDir("cmd")
    }
    override func tearDown() { tmp?.remove() }

    func evalJSON(_ args: [String], ranks: Int? = nil) throws -> [String: Any] {
        let all = ["eval", "--weights", Self.runDir + "/best.weights.h5", "--data", Self.dataset, "--json"] + args
        let r = try ranks.map { try Subprocess.mpiRun($0, all) } ?? Subprocess.rnnDist(all)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
    }

    func testEvalMatchesAReferenceComputedFromTheForwardPass() throws {
        let (w, meta) = try WeightsFile.read(from: Self.runDir + "/best.weights.h5")
        let model = Model(config: meta.config.model, seed: 0)
        model.weights = w
        let data = try TrainingDataset.open(Self.dataset)
        let (x, y) = try data.test.read(range: 0 ..< data.test.rowCount)
        let p = model.predict(x: x, batch: y.count)
        var tp = 0, fp = 0, tn = 0, fn = 0, loss = 0.0
        for i in 0 ..< y.count {
            let pi = Double(p[i])
            loss -= y[i] == 1 ? log(pi) : log(1 - pi)
            switch (pi >= 0.5, y[i] == 1) {
            case (true, true): tp += 1
            case (true, false): fp += 1
            case (false, false): tn += 1
            case (false, true): fn += 1
            }
        }
        let j = try evalJSON([])
        let conf = j["confusion"] as? [String: Int] ?? [:]
        XCTAssertEqual(conf["true_positive"], tp)
        XCTAssertEqual(conf["false_positive"], fp)
        XCTAssertEqual(conf["true_negative"], tn)
        XCTAssertEqual(conf["false_negative"], fn)
        XCTAssertEqual(j["samples"] as? Int, 240)
        XCTAssertEqual(j["accuracy"] as? Double ?? -1, Double(tp + tn) / 240, accuracy: 1e-12)
        let precision = Double(tp) / Double(tp + fp), recall = Double(tp) / Double(tp + fn)
        XCTAssertEqual(j["precision"] as? Double ?? -1, precision, accuracy: 1e-12)
        XCTAssertEqual(j["recall"] as? Double ?? -1, recall, accuracy: 1e-12)
        XCTAssertEqual(j["f1"] as? Double ?? -1, 2 * precision * recall / (precision + recall), accuracy: 1e-12)
        // Float probabilities vs the logit form: agree to ~1e-6 per sample.
        XCTAssertEqual(j["loss"] as? Double ?? -1, loss / 240, accuracy: 1e-5)
        XCTAssertGreaterThan(Double(tp + tn) / 240, 0.75, "the toy task is learnable in 3 epochs")
    }

    func testAnyNumberOfRanksPrintsIdenticalMetrics() throws {
        for split in ["test", "val", "train"] {
            var one = try evalJSON(["--split", split], ranks: 1)
            var three = try evalJSON(["--split", split], ranks: 3)
            for k in ["seconds", "ranks"] { one[k] = nil; three[k] = nil }
            XCTAssertEqual(NSDictionary(dictionary: one), NSDictionary(dictionary: three), split)
        }
        XCTAssertEqual(try evalJSON(["--split", "val"])["samples"] as? Int, 48)   // 20% of 240 train rows
    }

    func testPredictAgreesWithEvalOnTheSameReviews() throws {
        let data = try TrainingDataset.open(Self.dataset)
        let (w, meta) = try WeightsFile.read(from: Self.runDir + "/best.weights.h5")
        let model = Model(config: meta.config.model, seed: 0)
        model.weights = w
        var texts: [String] = [], rows: [Int] = []
        for r in 0 ..< 6 {
            guard let (id, rating) = try data.test.split.origin(row: r) else { throw XCTSkip("no review ids stored") }
            let label = rating >= 7 ? "pos" : "neg"
            texts.append(try String(contentsOfFile: "\(Self.folder)/test/\(label)/\(id)_\(rating).txt", encoding: .utf8))
            rows.append(r)
        }
        let (x, _) = try data.test.read(rows: rows)
        let expected = model.predict(x: x, batch: rows.count)
        let r = try Subprocess.rnnDist(["predict", "--weights", Self.runDir + "/best.weights.h5", "--json"],
                                       stdin: texts.joined(separator: "\n") + "\n")
        XCTAssertEqual(r.status, 0, r.stderr)
        let got = r.stdout.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }.compactMap { $0["probability"] as? Double }
        XCTAssertEqual(got.count, 6)
        for (a, b) in zip(got, expected) { XCTAssertEqual(a, Double(b), accuracy: 1e-6) }
        // One answer per stdin line, a blank one too (that of the empty text), CRLF ends as LF.
        func probabilities(_ r: ProcessResult) -> [Double] {
            r.stdout.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
                .compactMap { $0["probability"] as? Double }
        }
        let lines = try Subprocess.rnnDist(["predict", "--weights", Self.runDir + "/best.weights.h5", "--json"],
                                           stdin: texts[0] + "\r\n\n" + texts[1] + "\n")
        let empty = try Subprocess.rnnDist(["predict", "--weights", Self.runDir + "/best.weights.h5", "--json", ""])
        let three = probabilities(lines), none = probabilities(empty)
        XCTAssertEqual(three.count, 3, lines.stdout + lines.stderr)
        XCTAssertEqual(none.count, 1, empty.stdout + empty.stderr)
        if three.count == 3 && none.count == 1 {
            XCTAssertEqual(three[0], Double(expected[0]), accuracy: 1e-6)
            XCTAssertEqual(three[1], none[0])
            XCTAssertEqual(three[2], Double(expected[1]), accuracy: 1e-6)
        }
        // The same through arguments.
        let r2 = try Subprocess.rnnDist(["predict", "--weights", Self.runDir + "/best.weights.h5", texts[0]])
        // The top class's probability and name, then every class's.
        let p = Double(expected[0]), top = p >= 0.5 ? "pos" : "neg"
        XCTAssertTrue(r2.stdout.hasPrefix(String(format: "%.4f  %@  (neg %.4f, pos %.4f)", max(p, 1 - p), top, 1 - p, p)), r2.stdout)
    }

    func testPlotWritesAnSVGWithOneSeriesPerMetric() throws {
        let out = tmp.file("h.svg")
        let r = try Subprocess.rnnDist(["plot", Self.runDir + "/history.h5", "-o", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        final class Collector: NSObject, XMLParserDelegate {
            var series: [String: Int] = [:]
            var title = ""
            func parser(_ p: XMLParser, didStartElement e: String, namespaceURI: String?, qualifiedName: String?,
                        attributes a: [String: String] = [:]) {
                if e == "g", let n = a["data-name"] { series[n] = Int(a["data-points"] ?? "") }
            }
        }
        let parser = XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: out)))
        let c = Collector()
        parser.delegate = c
        XCTAssertTrue(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        XCTAssertEqual(c.series, ["Training acc": 3, "Validation acc": 3, "Training loss": 3, "Validation loss": 3])
        let text = try String(contentsOfFile: out, encoding: .utf8)
        XCTAssertTrue(text.contains("gru (8 units), 1 rank, 3 epochs"), "title names model and world size")
    }

    /// A dataset of the same size (num_words, maxlen, classes) with other words: its token ids mean
    /// other words, so eval and a resume refuse it naming the first difference.
    func testADatasetWithAnotherVocabularyIsRefused() throws {
        var csv = "text,label\n", state: UInt64 = 7
        for r in 0 ..< 300 {                       // 240 training rows, as the run's dataset has
            let words = (0 ..< 12).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return "w\(100 + (state >> 33) % 200)"
            }
            csv += words.joined(separator: " ") + "," + (r % 2 == 0 ? "neg" : "pos") + "\n"
        }
        try Data(csv.utf8).write(to: URL(fileURLWithPath: tmp.file("other.csv")))
        let other = tmp.file("other.h5")
        let numWords = try WeightsFile.read(from: Self.runDir + "/best.weights.h5").1.config.model.vocabularySize
        let p = try Subprocess.rnnDist(["prepare", "--source", tmp.file("other.csv"), "-o", other, "--num-words", "\(numWords)", "--maxlen", "40"])
        XCTAssertEqual(p.status, 0, p.stderr)
        let e = try Subprocess.rnnDist(["eval", "--weights", Self.runDir + "/best.weights.h5", "--data", other])
        XCTAssertEqual(e.status, 2, e.stderr)
        XCTAssertTrue(e.stderr.contains("has another vocabulary than \(Self.runDir)/best.weights.h5 was trained with (token id 4 is 'w"), e.stderr)
        XCTAssertEqual(e.stderr.split(separator: "\n").count, 1, e.stderr)
        let t = try Subprocess.rnnDist(["train", "--data", other, "--run-dir", tmp.file("resumed"), "--resume", Self.runDir + "/checkpoint.h5",
                                        "--epochs", "4", "--batch-size", "16", "--units", "8", "--embed-dim", "8", "--model", "gru", "--lr", "0.01"],
                                       timeout: 120)
        XCTAssertNotEqual(t.status, 0, t.stdout)
        XCTAssertTrue(t.stderr.contains("has another vocabulary than \(Self.runDir)/checkpoint.h5 was trained with"), t.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.file("resumed") + "/checkpoint.h5"))
    }

    /// A chunk of the dataset zeroed with its Fletcher-32 (a zero-filled disk block) read as rows of
    /// padding and label 0: eval scored them, exit 0, and train trained on them. The block checksums
    /// of the rows make both refuse the file, naming the rows.
    func testADatasetWithAZeroedChunkIsRefusedByEvalAndTrain() throws {
        let test = tmp.file("test-zeroed.h5"), train = tmp.file("train-zeroed.h5")
        try FileManager.default.copyItem(atPath: Self.dataset, toPath: test)
        try FileManager.default.copyItem(atPath: Self.dataset, toPath: train)
        try zeroStoredChunk(of: "test/x", containingRow: 0, in: test)
        try zeroStoredChunk(of: "train/y", containingRow: 0, in: train)
        let e = try Subprocess.rnnDist(["eval", "--weights", Self.runDir + "/best.weights.h5", "--data", test])
        XCTAssertEqual(e.status, 1, e.stdout)
        XCTAssertTrue(e.stderr.contains("/test/x: rows 0..<8 do not match their checksum"), e.stderr)
        XCTAssertEqual(e.stderr.split(separator: "\n").count, 1, e.stderr)
        XCTAssertEqual(e.stdout, "")
        let t = try Subprocess.rnnDist(["train", "--data", train, "--run-dir", tmp.file("run"), "--epochs", "1", "--batch-size", "16",
                                        "--units", "8", "--embed-dim", "8", "--model", "gru"], timeout: 120)
        XCTAssertEqual(t.status, 2, t.stdout)
        XCTAssertTrue(t.stderr.contains("/train/y: rows 0..<8 do not match their checksum"), t.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.file("run") + "/checkpoint.h5"))
        // The intact dataset's eval reads every row of the split through the same checks.
        XCTAssertEqual(try Subprocess.rnnDist(["eval", "--weights", Self.runDir + "/best.weights.h5", "--data", Self.dataset]).status, 0)
    }

    /// With more than 65,536 words the ids do not fit the rows held in memory and train reads its
    /// batches from the file, whose scattered rows seldom complete a block: a zeroed chunk was
    /// trained on, exit 0. The rows are now read once at set-up, as a loaded run reads them.
    func testARunReadingBatchesFromTheFileChecksItsRowsFirst() throws {
        var csv = "text,label\n"
        for r in 0 ..< 1000 { csv += (0 ..< 100).map { "w\(r * 100 + $0)" }.joined(separator: " ") + (r % 2 == 0 ? ",neg\n" : ",pos\n") }
        try Data(csv.utf8).write(to: URL(fileURLWithPath: tmp.file("wide.csv")))
        let data = tmp.file("wide.h5")
        let p = try Subprocess.rnnDist(["prepare", "--source", tmp.file("wide.csv"), "-o", data, "--num-words", "70000", "--maxlen", "100"])
        XCTAssertEqual(p.status, 0, p.stderr)
        let flags = ["--data", data, "--epochs", "1", "--limit", "200", "--batch-size", "8", "--units", "4", "--embed-dim", "4", "--num-words", "70000"]
        let intact = try Subprocess.rnnDist(["train", "--run-dir", tmp.file("intact")] + flags, timeout: 120)
        XCTAssertEqual(intact.status, 0, intact.stderr)
        try zeroStoredChunk(of: "train/x", containingRow: 100, in: data)
        let r = try Subprocess.rnnDist(["train", "--run-dir", tmp.file("damaged")] + flags, timeout: 120)
        XCTAssertEqual(r.status, 2, r.stdout)
        XCTAssertTrue(r.stderr.contains("/train/x: rows ") && r.stderr.contains("do not match their checksum"), r.stderr)
    }

    /// `--split val` and `train` are the run's rows only on the run's dataset: the same source
    /// prepared with another seed (its rows in another order) is refused for them, not for test.
    func testEvalOfTheRunsSplitsRefusesAnotherShuffleOfTheData() throws {
        let other = tmp.file("seed7.h5")
        let p = try Subprocess.rnnDist(["prepare", "--source", Self.folder, "-o", other, "--num-words", "60", "--maxlen", "40", "--seed", "7"])
        XCTAssertEqual(p.status, 0, p.stderr)
        let w = Self.runDir + "/best.weights.h5"
        for split in ["val", "train"] {
            let e = try Subprocess.rnnDist(["eval", "--weights", w, "--data", other, "--split", split])
            XCTAssertEqual(e.status, 2, e.stdout + e.stderr)
            XCTAssertTrue(e.stderr.contains("--split \(split): \(other) has 240 training rows shuffled with seed 7, but \(w) was trained on 240 shuffled with seed 113"), e.stderr)
            XCTAssertEqual(e.stderr.split(separator: "\n").count, 1, e.stderr)
        }
        let t = try Subprocess.rnnDist(["eval", "--weights", w, "--data", other, "--json"])
        XCTAssertEqual(t.status, 0, t.stderr)
        XCTAssertEqual(try Subprocess.rnnDist(["eval", "--weights", w, "--data", Self.dataset, "--split", "val"]).status, 0)
        // The same size, seed and words, other rows: two reviews' texts swapped. Refused for the
        // run's splits and for a resume (the run records the dataset's train_checksum).
        let swapped = tmp.file("swapped")
        try FileManager.default.copyItem(atPath: Self.folder, toPath: swapped)
        let pos = try FileManager.default.contentsOfDirectory(atPath: swapped + "/train/pos").filter { $0.hasSuffix(".txt") }.sorted()
        let a = swapped + "/train/pos/" + pos[0], b = swapped + "/train/pos/" + pos[1]
        let (ta, tb) = (try Data(contentsOf: URL(fileURLWithPath: a)), try Data(contentsOf: URL(fileURLWithPath: b)))
        XCTAssertNotEqual(ta, tb)
        try tb.write(to: URL(fileURLWithPath: a)); try ta.write(to: URL(fileURLWithPath: b))
        let same = tmp.file("swapped.h5")
        XCTAssertEqual(try Subprocess.rnnDist(["prepare", "--source", swapped, "-o", same, "--num-words", "60", "--maxlen", "40"]).status, 0)
        let v = try Subprocess.rnnDist(["eval", "--weights", w, "--data", same, "--split", "val"])
        XCTAssertEqual(v.status, 2, v.stdout)
        XCTAssertTrue(v.stderr.contains("holds other training rows than \(w) was trained on (train_checksum"), v.stderr)
        let resumed = try Subprocess.rnnDist(["train", "--data", same, "--run-dir", tmp.file("swapped-run"), "--resume", Self.runDir + "/checkpoint.h5",
                                        "--epochs", "4", "--batch-size", "16", "--units", "8", "--embed-dim", "8", "--model", "gru", "--lr", "0.01"],
                                       timeout: 120)
        XCTAssertEqual(resumed.status, 2, resumed.stdout)
        XCTAssertTrue(resumed.stderr.contains("holds other training rows than \(Self.runDir)/checkpoint.h5 was trained on (train_checksum"), resumed.stderr)
    }

    /// predict's text output is one line per text, whatever the text holds.
    func testPredictPrintsOneLinePerText() throws {
        let r = try Subprocess.rnnDist(["predict", "--weights", Self.runDir + "/best.weights.h5", "one\ntwo\r\u{1B}[31mred\u{2028}x\tend", "plain"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.count, 3, r.stdout)
        XCTAssertTrue(lines.first?.hasSuffix("one two  [31mred x end") ?? false, r.stdout)
        XCTAssertFalse(r.stdout.contains("\u{1B}") || r.stdout.contains("\r") || r.stdout.contains("\t"), r.stdout)
    }

    func testBadInputGivesOneLineAndNonZeroExit() throws {
        let w = Self.runDir + "/best.weights.h5"
        let cases: [([String], String?, String)] = [
            (["eval", "--weights", Self.runDir + "/history.h5", "--data", Self.dataset], nil, "history file"),
            (["eval", "--weights", w, "--data", Self.dataset, "--model", "lstm"], nil, "holds a gru model"),
            (["eval", "--weights", w, "--data", tmp.file("none.h5")], nil, "missing"),
            (["eval", "--weights", w, "--data", Self.dataset, "--split", "dev"], nil, "dev"),
            (["eval", "--weights", w, "--data", Self.dataset, "--batch-size", "9223372036854775807"], nil, "--batch-size must be in 1 … 1073741824"),
            (["predict", "--weights", w], "", "no texts"),
            (["predict", "--weights", Self.dataset, "nice"], nil, "is a dataset written by prepare, not weights"),
            (["plot", Self.runDir + "/history.h5", "-o", tmp.file("no/such/folder.svg")], nil, "does not exist"),
            (["plot", w, "-o", tmp.file("x.svg")], nil, "/rnn_dist@format: is 'rnn-dist-weights', expected a history file ('rnn-dist-history' in /@format)"),
            (["plot", Self.dataset, "-o", tmp.file("x.svg")], nil, "/@format: is 'rnn-dist-imdb', expected 'rnn-dist-history'"),
            (["plot", Self.runDir + "/history.h5", "-o", tmp.file("x.png")], nil, "plot writes SVG only"),
            (["plot", Self.runDir + "/history.h5", "-o", ""], nil, "-o is empty"),
            (["export", "--onnx", w, "-o", ""], nil, "-o is empty"),
            // A text that begins with '-': an -h inside it was a request for help (exit 0, nothing predicted).
            (["predict", "--weights", w, "good", "-the worst"], nil, "'-the worst' is not an option of predict; if it is a text: a text that begins with '-' goes after '--'"),
            (["predict", "--weights", w, "-bad"], nil, "Unknown option '-bad'; if it is a text: a text that begins with '-' goes after '--', or on stdin"),
            (["predict", "--weights", w, "--great"], nil, "Unknown option '--great'; if it is a text"),
            // Other commands take no texts: their messages stay ArgumentParser's.
            (["prepare", "--source", Self.folder, "-o", "-dash.h5"], nil, "Missing value for '-o <output>'"),
            // Help for a command that does not exist printed the top-level help, exit 0.
            (["help", "bogus"], nil, "help: no command named 'bogus' (the commands: prepare, train, eval, predict, serve, plot, inspect, export, selftest)"),
        ]
        for (args, stdin, expect) in cases {
            let r = try Subprocess.rnnDist(args, stdin: stdin)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertFalse(r.signaled, "\(args)")
            XCTAssertTrue(r.stderr.contains(expect), "\(args): \(r.stderr)")
            if r.status == 1 || r.status == 2 { XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(args): \(r.stderr)") }
        }
        XCTAssertEqual(try Subprocess.rnnDist(["help", "bogus"]).status, 64)
        // An empty -o or --source is a bad command line (64), as plot's and export's are (prepare's was 2).
        for args in [["prepare", "--source", Self.folder, "-o", ""], ["prepare", "--source", "", "-o", tmp.file("e.h5")]] {
            let r = try Subprocess.rnnDist(args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("is empty"), r.stderr)
        }
        let help = try Subprocess.rnnDist(["help", "eval"])
        XCTAssertEqual(help.status, 0, help.stderr)
        XCTAssertTrue(help.stdout.contains("USAGE: rnn-dist eval"), help.stdout)
        // -o=FILE (a short option with its value) is an option.
        let svg = tmp.file("h.svg")
        XCTAssertEqual(try Subprocess.rnnDist(["plot", Self.runDir + "/history.h5", "-o=" + svg]).status, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: svg))
        // A one-character output name (Foundation's deletingLastPathComponent traps on it: SIGILL).
        for name in ["a", "-", "b/"] {
            let r = try Subprocess.run(Subprocess.rnnDist, ["plot", Self.runDir + "/history.h5", "-o", name], cwd: tmp.path)
            XCTAssertFalse(r.signaled, "\(name): \(r.stderr)")
            XCTAssertEqual(r.status, name == "b/" ? 1 : 0, "\(name): \(r.stderr)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: tmp.file("a")) && FileManager.default.fileExists(atPath: tmp.file("-")))
        // After '--' such texts are texts.
        let dashed = try Subprocess.rnnDist(["predict", "--weights", w, "--", "-the worst", "-h"])
        XCTAssertEqual(dashed.status, 0, dashed.stderr)
        XCTAssertEqual(dashed.stdout.split(separator: "\n").count, 2, dashed.stdout)
        // A file named '-….h5' read as grouped short flags with an -h: the help and exit 0, inspect's
        // "intact" for a file never read. Now a bad command line; after '--' it is the file.
        let dashedFile = tmp.file("-run.h5")
        try FileManager.default.copyItem(atPath: Self.runDir + "/history.h5", toPath: dashedFile)
        for args in [["inspect", "-run.h5"], ["inspect", "-run.h5", "--json"], ["plot", "-run.h5", "-o", "x.svg"],
                     ["export", "--onnx", "-run.h5", "-o", "x.onnx"]] {
            let r = try Subprocess.run(Subprocess.rnnDist, args, cwd: tmp.path)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stdout.prefix(200))")
            XCTAssertEqual(r.stderr, "rnn-dist: error: '-run.h5' is not an option (nor a group of short flags: \(args[0])'s are \(args[0] == "inspect" ? "-h" : "-h and -o")); "
                           + "a file name that begins with '-' goes after '--', or as ./NAME (usage: rnn-dist \(args[0]) --help)\n")
        }
        let inspected = try Subprocess.run(Subprocess.rnnDist, ["inspect", "--", "-run.h5"], cwd: tmp.path)
        XCTAssertEqual(inspected.status, 0, inspected.stderr)
        XCTAssertTrue(inspected.stdout.hasPrefix("-run.h5: "), inspected.stdout)
        for args in [["inspect", "-h"], ["inspect", "--help", "-run.h5"], ["help", "inspect"]] {
            let r = try Subprocess.run(Subprocess.rnnDist, args, cwd: tmp.path)
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("USAGE: rnn-dist inspect"), "\(args): \(r.stdout)")
        }
        // Output that cannot be written is an error (exit 1, one line), not exit 0 with the output lost.
        for args in [["predict", "--weights", w, "good"], ["inspect", w], ["inspect", "--json", w], ["eval", "--weights", w, "--data", Self.dataset]] {
            let r = try Subprocess.run("/bin/sh", ["-c", "exec \"$0\" \"$@\" > /dev/full", Subprocess.rnnDist] + args)
            XCTAssertEqual(r.status, 1, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr, "rnn-dist: error: standard output: cannot write (No space left on device): the output is incomplete\n", "\(args)")
        }
        // An empty path is a bad command line (64) everywhere, as train's are: it read as a file named ''
        // ("rnn-dist: error: : missing", exit 1 or 2).
        for (args, expect) in [(["eval", "--weights", ""], "--weights needs a path"), (["eval", "--weights", w, "--data", ""], "--data needs a path"),
                               (["predict", "--weights", "", "x"], "--weights needs a path"), (["serve", "--weights", ""], "--weights needs a path"),
                               (["serve", "--weights", w, "--host", ""], "--host needs an address or a name"),
                               (["plot", "", "-o", tmp.file("e.svg")], "<history> needs a path"), (["inspect", ""], "<file> needs a path"),
                               (["export", "--onnx", "", "-o", tmp.file("e.onnx")], "<weights> needs a path")] {
            let r = try Subprocess.rnnDist(args, timeout: 20)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("rnn-dist: error: " + expect + ", not an empty string") && r.stderr.split(separator: "\n").count == 1,
                          "\(args): \(r.stderr)")
        }
        // An output that is the input (another spelling, a hard link) is refused, the input kept.
        let copy = tmp.file("in.weights.h5"), history = tmp.file("h.h5")
        try FileManager.default.copyItem(atPath: w, toPath: copy)
        try FileManager.default.copyItem(atPath: Self.runDir + "/history.h5", toPath: history)
        XCTAssertEqual(link(copy, tmp.file("hard.h5")), 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: copy)), hBefore = try Data(contentsOf: URL(fileURLWithPath: history))
        for (args, expect) in [(["export", "--onnx", copy, "-o", copy], "is the input"), (["export", "--keras-legacy", copy, "-o", tmp.file("hard.h5")], "is the input"),
                               (["export", "--onnx", copy, "-o", tmp.path + "/./in.weights.h5"], "is the input"),
                               (["plot", history, "-o", history], "is the input")] {
            let r = try Subprocess.rnnDist(args)
            XCTAssertEqual(r.status, 1, "\(args): \(r.stdout)")
            XCTAssertTrue(r.stderr.contains(expect), "\(args): \(r.stderr)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: copy)), before)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: history)), hBefore)
        // A checkpoint that cannot be read is refused for what is wrong in it, not for not being a
        // weights file.
        let newer = tmp.file("newer-checkpoint.h5")
        try FileManager.default.copyItem(atPath: Self.runDir + "/checkpoint.h5", toPath: newer)
        do { try H5File.open(newer, writable: true).group("rnn_dist").setAttribute("format_version", Int64(99)) }   // closed when released
        let c = try Subprocess.rnnDist(["predict", "--weights", newer, "nice"])
        XCTAssertEqual(c.status, 1, c.stdout)
        XCTAssertTrue(c.stderr.contains("/rnn_dist@format_version: is 99"), c.stderr)
        // A dataset prepared with another maxlen is refused, naming both values.
        let other = tmp.file("other.h5")
        XCTAssertEqual(try Subprocess.rnnDist(["prepare", "--source", Self.folder, "-o", other, "--num-words", "60", "--maxlen", "30"]).status, 0)
        let r = try Subprocess.rnnDist(["eval", "--weights", w, "--data", other])
        XCTAssertEqual(r.status, 2, "bad input found at set-up")
        XCTAssertTrue(r.stderr.contains("maxlen 30") && r.stderr.contains("maxlen 40"), r.stderr)
    }

    /// `train`'s flags are checked by `TrainConfig.validate` (the rules files are read with) before
    /// any MPI work or file access: exit 64 with a message naming the flag and the value.
    /// Validation and `eval` are one path: the last epoch's val_loss and val_acc in the history are
    /// exactly what `eval --split val` reports for the weights of that epoch (same chunks of the
    /// run's batch size, same loss and decision rule), alone and under mpirun.
    func testValidationInTheHistoryIsEvalOfTheSplit() throws {
        let last = try HistoryFile.read(from: Self.runDir + "/history.h5").0.records.last!
        for n in [1, 2] {
            let args = ["eval", "--weights", Self.runDir + "/model.weights.h5", "--data", Self.dataset, "--split", "val",
                        "--batch-size", "16", "--json"]
            let r = n == 1 ? try Subprocess.rnnDist(args) : try Subprocess.mpiRun(n, args, timeout: 60)
            XCTAssertEqual(r.status, 0, r.stderr)
            struct Metrics: Decodable { let loss: Double; let accuracy: Double }
            let m = try JSONDecoder().decode(Metrics.self, from: Data(r.stdout.utf8))   // exact digits
            XCTAssertEqual(m.loss, last.valLoss, "-n \(n)")
            XCTAssertEqual(m.accuracy, last.valAcc, "-n \(n)")
        }
    }

    func testBadTrainFlagsAreRefusedNamingTheFlag() throws {
        let cases: [([String], String)] = [
            (["--resume", ""], "--resume needs a path, not an empty string"),
            (["--data", ""], "--data needs a path, not an empty string"),
            (["--batch-size", "0"], "--batch-size 0 is outside 1…"),
            (["--epochs", "0"], "--epochs 0 is outside 1…"),
            (["--lr", "0"], "--lr 0.0 is outside (0, ∞)"),
            // Beyond Float's range: +∞ as a float (exit 3 at the first batch; a clip norm that clipped nothing).
            (["--lr", "1e39"], "--lr 1e+39 is outside (0, ∞), at least 1.2e-38 and at most 3.4e38"),
            (["--clip-norm", "1e39"], "--clip-norm 1e+39 is outside (0, ∞), at least 1.2e-38 and at most 3.4e38"),
            (["--lr", "3e38", "--batch-size", "256", "--lr-scaling", "linear"], "--lr × --lr-scaling 6e+38 is outside (0, 3.4e38]"),
            (["--momentum", "1"], "--momentum 1.0 is outside [0, 1)"),
            (["--validation-split", "1"], "--validation-split 1.0 is outside [0, 1)"),
            (["--limit", "1"], "--limit 1 is outside 2…"),
            (["--units", "0"], "--units 0 is outside 1…65536"),
            (["--layers", "100"], "--layers 100 is outside 1…"),
            (["--num-words", "3"], "--num-words 3 is outside 4…"),
            // The model's check said 1… for the same flag.
            (["--num-words", "10000001"], "--num-words 10000001 is outside 4…10000000 (ids 0–3 are reserved)"),
            (["--optimizer", "adagrad"], "adagrad"),
            (["--log-format", "xml"], "xml"),
            (["--layers", "0"], "--layers 0 is outside 1…64"),
            // Negative numbers are values, refused with a message about the value (not "missing value").
            (["--epochs", "-1"], "--epochs -1 is outside 1…"),
            (["--batch-size", "-1"], "--batch-size -1 is outside 1…"),
            (["--lr", "-1"], "--lr -1.0 is outside (0, ∞)"),
            (["--limit", "-1"], "--limit -1 is outside 2…"),
            (["--log-every", "0", "--tensorboard", tmp.file("tb")], "--log-every 0 is outside 1…"),
            (["--log-every", "5"], "--log-every sets how often --tensorboard logs; give --tensorboard DIR too"),
            (["--momentum", "0.5"], "--momentum is --optimizer sgd's; rmsprop would ignore it"),
            (["--optimizer", "adam", "--momentum", "0.9"], "--momentum is --optimizer sgd's; adam would ignore it"),
        ]
        try assertTrainRefuses(cases, in: tmp)
    }

    /// The parameter limit (2²⁸) is checked against the dataset's vocabulary: a 10,000-word guess at
    /// parse time refused a wide Embedding that fits a small one (exit 64). A refusal quotes the
    /// whole model's count, not the running sum where it crossed the limit (268,584,000 here).
    func testTheParameterLimitUsesTheDatasetsVocabulary() throws {
        let words = try TrainingDataset.open(Self.dataset).numWords
        XCTAssertLessThan(words * 30_000, 1 << 28)
        let wide = try Subprocess.rnnDist(["train", "--data", Self.dataset, "--run-dir", tmp.file("wide"), "--epochs", "1",
                                           "--batch-size", "16", "--limit", "32", "--embed-dim", "30000", "--units", "1"])
        XCTAssertEqual(wide.status, 0, wide.stderr)
        // 4 ids × 32 + LSTM(1000) on 32 + 63 × LSTM(1000) on 1000 + Dense(1): 128 + 4,132,000 + 504,252,000 + 1,001.
        let deep = try Subprocess.rnnDist(["train", "--data", Self.dataset, "--layers", "64", "--units", "1000"])
        XCTAssertEqual(deep.status, 64, deep.stderr)
        XCTAssertTrue(deep.stderr.contains("508385129"), deep.stderr)
        XCTAssertEqual(deep.stderr.split(separator: "\n").count, 1, deep.stderr)
    }

    /// A --limit above the dataset's rows uses them all, and says so in the run's first line.
    func testALimitAboveTheRowsIsNamed() throws {
        let r = try Subprocess.rnnDist(["train", "--data", Self.dataset, "--run-dir", tmp.file("limit"), "--epochs", "1", "--batch-size", "16",
                                        "--units", "4", "--embed-dim", "4", "--limit", "1000000"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let first = r.stdout.split(separator: "\n").first { $0.hasPrefix("rnn-dist train:") } ?? ""
        XCTAssertTrue(first.contains("(--limit 1000000 is above the dataset's ") && first.hasSuffix(" rows: all are used)"), r.stdout)
        let plain = try Subprocess.rnnDist(["train", "--data", Self.dataset, "--run-dir", tmp.file("nolimit"), "--epochs", "1", "--batch-size", "16",
                                            "--units", "4", "--embed-dim", "4", "--limit", "64"])
        XCTAssertFalse(plain.stdout.contains("--limit"), plain.stdout)
    }

    /// `--log-format json`: one object per epoch whose metrics are the history's bit for bit (the
    /// shortest round-trip digits), and no progress lines.
    func testTheJSONEpochLogIsTheHistory() throws {
        let run = tmp.file("json")
        let r = try Subprocess.mpiRun(2, ["train", "--data", Self.dataset, "--run-dir", run, "--epochs", "2", "--batch-size", "16",
                                          "--units", "8", "--embed-dim", "8", "--log-format", "json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        struct Epoch: Decodable {
            var epoch: Int
            var loss, acc, val_loss, val_acc: Double
            var exchange_bytes_per_batch, embedding_rows_per_batch: Double?
        }
        // JSONDecoder reads the digits exactly (JSONSerialization may round the last bit).
        // Every line of stdout is an epoch's object (the start line and the files written went there too).
        let epochs = try r.stdout.split(separator: "\n").map { try JSONDecoder().decode(Epoch.self, from: Data($0.utf8)) }
        XCTAssertTrue(r.stderr.contains("rnn-dist train: lstm, 2 ranks"), r.stderr)
        XCTAssertTrue(r.stderr.contains("wrote \(run)/history.h5"), r.stderr)
        let history = try HistoryFile.read(from: run + "/history.h5").0.records
        XCTAssertEqual(epochs.count, 2)
        XCTAssertEqual(history.count, 2)
        for (e, h) in zip(epochs, history) {
            XCTAssertEqual(e.epoch, h.epoch)
            XCTAssertEqual([e.loss, e.acc, e.val_loss, e.val_acc], [h.loss, h.acc, h.valLoss, h.valAcc])
            XCTAssertGreaterThan(e.exchange_bytes_per_batch ?? 0, 0, "two ranks exchanged")
            XCTAssertGreaterThan(e.embedding_rows_per_batch ?? 0, 0)
        }
        // One rank exchanges nothing: no exchange fields, also with --reproducible (its chunk sums
        // were counted as traffic), and no "exchange:" in the text line.
        for format in ["json", "text"] {
            let one = try Subprocess.rnnDist(["train", "--data", Self.dataset, "--run-dir", tmp.file("one-" + format), "--epochs", "1",
                                              "--batch-size", "16", "--units", "8", "--embed-dim", "8", "--reproducible",
                                              "--log-format", format])
            XCTAssertEqual(one.status, 0, one.stderr)
            XCTAssertFalse(one.stdout.contains("exchange"), one.stdout)
            XCTAssertTrue(one.stdout.contains(format == "json" ? "\"val_loss\"" : "val_loss: "), one.stdout)
        }
    }

    func testInspectNamesEachKindAndDetectsDamage() throws {
        let files = [(Self.dataset, "vocabulary"), (Self.runDir + "/best.weights.h5", "weights: gru"),
                     (Self.runDir + "/checkpoint.h5", "checkpoint: gru"), (Self.runDir + "/history.h5", "history: gru")]
        for (path, says) in files {
            let ok = try Subprocess.rnnDist(["inspect", path])
            XCTAssertEqual(ok.status, 0, "\(path): \(ok.stderr)")
            XCTAssertTrue(ok.stdout.contains(says), "\(path): \(ok.stdout.suffix(600))")
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            var flipped = bytes
            for k in 1 ..< 10 { flipped[bytes.count * k / 10] ^= 0x55 }
            for (label, damaged) in [("truncated", Array(bytes.prefix(bytes.count * 2 / 3))), ("flipped", flipped)] {
                let p = tmp.file("\(label)-" + (path as NSString).lastPathComponent)
                try Data(damaged).write(to: URL(fileURLWithPath: p))
                let r = try Subprocess.rnnDist(["inspect", p], timeout: 30)
                XCTAssertEqual(r.status, 1, "\(label) \(path) was reported valid: \(r.stdout.suffix(300))")
                XCTAssertFalse(r.signaled || r.timedOut, "\(label) \(path)")
                XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            }
        }
        // A history's root holds 9 objects, which HDF5 keeps in "dense" storage (a fractal heap);
        // with its heap's signature damaged, listing the group aborted the process in HDF5 1.10.
        let history = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.runDir + "/history.h5")))
        if let at = (0 ..< history.count - 4).first(where: { history[$0 ..< $0 + 4].elementsEqual("FRHP".utf8) }) {
            var damaged = history
            damaged[at] ^= 1
            let p = tmp.file("heap.h5")
            try Data(damaged).write(to: URL(fileURLWithPath: p))
            let r = try Subprocess.rnnDist(["inspect", p], timeout: 30)
            XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
            XCTAssertFalse(r.signaled, r.stderr.suffix(300).description)
            XCTAssertTrue(r.stderr.contains("wrong fractal heap header signature"), r.stderr)
        } else {
            XCTFail("the history's root is no longer in dense storage: damage another dense group")
        }
        // Weights that predict, eval and serve refuse are not intact: a vocabulary with a word twice.
        let (w, meta) = try WeightsFile.read(from: Self.runDir + "/best.weights.h5")
        var twice = meta
        twice.vocabulary[1] = twice.vocabulary[0]
        try WeightsFile.write(to: tmp.file("twice.weights.h5"), weights: w, metadata: twice)
        let v = try Subprocess.rnnDist(["inspect", tmp.file("twice.weights.h5")])
        XCTAssertEqual(v.status, 1, v.stdout)
        XCTAssertTrue(v.stderr.contains("repeats an earlier entry"), v.stderr)
        // ... nor exported (export wrote them, exit 0).
        for format in ["--onnx", "--keras-legacy"] {
            let out = tmp.file("twice\(format).h5")
            let e = try Subprocess.rnnDist(["export", format, tmp.file("twice.weights.h5"), "-o", out])
            XCTAssertEqual(e.status, 1, "\(format): \(e.stdout)")
            XCTAssertEqual(e.stderr.split(separator: "\n").count, 1, e.stderr)
            XCTAssertTrue(e.stderr.contains("/rnn_dist/vocab: entry 1 ") && e.stderr.contains("repeats an earlier entry"), e.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), format)
        }
        // Class names prepare would refuse (a line feed injected a line into predict's output; an
        // empty one named no class) are refused by every reader of the weights.
        for (k, (names, problem)) in [(["neg", "pos\nINJECTED 0.99"], "control character U+000A"), (["", "pos"], "an empty class name"),
                                      // was "2 names, the model tells 2 distinct classes apart"
                                      (["pos", "pos"], "name 2 'pos' repeats an earlier one: the classes' names must differ")].enumerated() {
            var bad = meta
            bad.classNames = names
            let file = tmp.file("names\(k).weights.h5")
            try WeightsFile.write(to: file, weights: w, metadata: bad)
            for args in [["inspect", file], ["predict", "--weights", file, "good"]] {
                let r = try Subprocess.rnnDist(args)
                XCTAssertEqual(r.status, 1, r.stdout)
                XCTAssertEqual(r.stdout, "", "\(args[0]) printed nothing")
                XCTAssertTrue(r.stderr.contains("/rnn_dist/class_names: ") && r.stderr.contains(problem), r.stderr)
            }
        }
        let j = try Subprocess.rnnDist(["inspect", "--json", Self.runDir + "/checkpoint.h5"])
        let doc = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any]
        XCTAssertEqual((doc?["checkpoint"] as? [String: Any])?["epoch"] as? Int, 3)
        XCTAssertEqual((doc?["checkpoint"] as? [String: Any])?["epochs"] as? Int, 3)
        XCTAssertEqual((doc?["checkpoint"] as? [String: Any])?["finished"] as? Bool, true)
        XCTAssertEqual((doc?["attributes"] as? [String: Any])?["rnn_dist_complete"] as? Int, 1, "an integer attribute is a JSON number")
        // An intact HDF5 file that is none of ours: its objects listed (it is intact: exit 0), and
        // said to be none of ours rather than summarised as nothing.
        let foreign = tmp.file("foreign.h5")
        try H5File.writeAtomically(to: foreign) { try $0.createDataset("x", data: [Float(1), 2]) }
        let r = try Subprocess.rnnDist(["inspect", foreign])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("/x  float32 2"), r.stdout)
        XCTAssertTrue(r.stdout.contains("not a dataset, weights, checkpoint or history file of rnn-dist"), r.stdout)
        let ours = try Subprocess.rnnDist(["inspect", Self.runDir + "/history.h5"])
        XCTAssertFalse(ours.stdout.contains("not a dataset, weights"), ours.stdout)
    }
}

extension XCTestCase {
    /// `train` with each set of flags exits 64 with one line containing the expected text, and
    /// creates no run folder.
    func assertTrainRefuses(_ cases: [([String], String)], in tmp: TempDir,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        for (flags, expect) in cases {
            let r = try Subprocess.rnnDist(["train", "--data", tmp.file("absent.h5"), "--run-dir", tmp.file("r")] + flags)
            XCTAssertEqual(r.status, 64, "\(flags): \(r.stderr)", file: file, line: line)
            XCTAssertTrue(r.stderr.contains(expect), "\(flags): \(r.stderr)", file: file, line: line)
            XCTAssertEqual(r.stderr.split(separator: "\n").map { $0.hasPrefix("rnn-dist: error: ") }, [true], "\(flags): one line: \(r.stderr)",
                           file: file, line: line)
            XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.file("r")), "nothing created for a bad flag",
                           file: file, line: line)
        }
    }
}
