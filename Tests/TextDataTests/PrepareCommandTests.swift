import XCTest
import TestSupport

/// The built `rnn-dist prepare` and `inspect`, end to end (skipped, and said so, when the executable
/// is not built beside the test bundle).
final class PrepareCommandTests: XCTestCase {
    var dir: TempDir!

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: Subprocess.rnnDist) else {
            print("PrepareCommandTests: SKIPPED: no executable at \(Subprocess.rnnDist)")
            throw XCTSkip("rnn-dist is not built at \(Subprocess.rnnDist)")
        }
        dir = try TempDir("imdb-cli")
    }

    override func tearDown() { dir?.remove() }

    /// SIGTERM while the dataset is being written removes its temporary (it stayed, up to the
    /// dataset's size, until the next write of the same file) and keeps the previous file. The
    /// process is stopped (SIGSTOP) as soon as the temporary appears, so the signal lands mid-write.
    func testAStopSignalWhileWritingLeavesNoTemporary() throws {
        let out = dir.file("o.h5")
        XCTAssertTrue(FileManager.default.createFile(atPath: out, contents: Data("previous".utf8)))
        var rows = 20_000
        for attempt in 1 ... 4 {
            var lines = ["text,label"]
            lines.reserveCapacity(rows + 1)
            for i in 0 ..< rows { lines.append((0 ..< 40).map { "w\(($0 * 7919 + i * 104_729) % 5000)" }.joined(separator: " ") + (i % 2 == 0 ? ",neg" : ",pos")) }
            try (lines.joined(separator: "\n") + "\n").write(toFile: dir.file("big.csv"), atomically: false, encoding: .utf8)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Subprocess.rnnDist)
            p.arguments = ["prepare", "--source", dir.file("big.csv"), "-o", out]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            var seen = false
            while p.isRunning && !seen {
                seen = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).contains { $0.hasPrefix(".o.h5.tmp-") }
                if seen { kill(p.processIdentifier, SIGSTOP) } else { usleep(500) }
            }
            if !seen {
                // It wrote faster than the poll: a larger input.
                p.waitUntilExit()
                rows *= 4
                continue
            }
            kill(p.processIdentifier, SIGTERM)
            kill(p.processIdentifier, SIGCONT)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationReason, .uncaughtSignal, "attempt \(attempt)")
            XCTAssertEqual(p.terminationStatus, SIGTERM)
            let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp-") }
            XCTAssertEqual(left, [], "the temporary stayed")
            XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "previous", "the previous file changed")
            return
        }
        XCTFail("the temporary was never seen while prepare ran")
    }

    func testPrepareThenInspect() throws {
        let base = try RawIMDB.writeFolder(PrepareTests.reviews, at: dir.path)
        try RawIMDB.writeTarball(folder: base, to: dir.file("aclImdb_v1.tar.gz"))
        let out = dir.file("imdb.h5")
        let r = try Subprocess.rnnDist(["prepare", "--source", dir.file("aclImdb_v1.tar.gz"), "-o", out, "--num-words", "9", "--maxlen", "5"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("train: 4 reviews (2 neg, 2 pos)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("wrote \(out) in"), r.stdout)

        let text = try Subprocess.rnnDist(["inspect", out])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("dataset: num_words 9, maxlen 5, seed 113, source aclImdb_v1.tar.gz"), text.stdout)
        XCTAssertTrue(text.stdout.contains("vocabulary: 5 words (ids 4..<9); first: a b c z é"), text.stdout)
        XCTAssertTrue(text.stdout.contains("train row 0 (label 1 pos = train/pos/7_8.txt, 3 padding): <start> <oov>"), text.stdout)

        let json = try Subprocess.rnnDist(["inspect", "--json", out])
        XCTAssertEqual(json.status, 0, json.stderr)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let dataset = try XCTUnwrap(doc["dataset"] as? [String: Any])
        XCTAssertEqual(dataset["vocabulary_size"] as? Int, 5)
        XCTAssertEqual((dataset["splits"] as? [[String: Any]])?.map { $0["rows"] as? Int }, [4, 3])
    }

    func testBadInputIsOneLineAndLeavesNothing() throws {
        let out = dir.file("imdb.h5")
        let missing = try Subprocess.rnnDist(["prepare", "--source", dir.file("none.tar.gz"), "-o", out])
        XCTAssertEqual(missing.status, 2)
        XCTAssertEqual(missing.stderr, "rnn-dist: error: \(dir.file("none.tar.gz")): no such file or folder\n")

        try Data("garbage".utf8).write(to: URL(fileURLWithPath: dir.file("junk.tar.gz")))
        let junk = try Subprocess.rnnDist(["prepare", "--source", dir.file("junk.tar.gz"), "-o", out])
        XCTAssertEqual(junk.status, 2)
        XCTAssertTrue(junk.stderr.hasPrefix("rnn-dist: error: \(dir.file("junk.tar.gz")): cannot read the archive"), junk.stderr)
        XCTAssertEqual(junk.stderr.split(separator: "\n").count, 1)

        try RawIMDB.writeFolder(PrepareTests.reviews, at: dir.path + "/src")
        for (flags, words) in [(["--num-words", "3"], "--num-words"), (["--maxlen", "0"], "--maxlen")] {
            let r = try Subprocess.rnnDist(["prepare", "--source", dir.path + "/src", "-o", out] + flags)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains(words), r.stderr)
        }
        // Flags that exclude each other: a bad command line (64, as export's), known before any file is read (it exited 2).
        let both = try Subprocess.rnnDist(["prepare", "--source", dir.path + "/src", "-o", out, "--test-split", "0.2", "--test-source", dir.path + "/src"])
        XCTAssertEqual(both.status, 64, both.stderr)
        XCTAssertTrue(both.stderr.contains("--test-split and --test-source exclude each other"), both.stderr)
        let noFolder = try Subprocess.rnnDist(["prepare", "--source", dir.path + "/src", "-o", dir.path + "/nope/imdb.h5"])
        XCTAssertEqual(noFolder.status, 2)
        XCTAssertTrue(noFolder.stderr.contains("the output folder does not exist"), noFolder.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["junk.tar.gz", "src"])

        // -o naming the source itself (another spelling, or the test source): refused, the text kept.
        let csv = dir.file("self.csv"), text = "text,label\na b,x\nc d,y\ne f,x\ng h,y\ni j,x\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: csv))
        for (flags, output) in [([String](), dir.path + "/./self.csv"), (["--test-source", csv], dir.file("other.csv"))] {
            let source = flags.isEmpty ? csv : dir.file("other.csv")
            if !flags.isEmpty { try Data(text.utf8).write(to: URL(fileURLWithPath: source)) }
            let r = try Subprocess.rnnDist(["prepare", "--source", source, "-o", flags.isEmpty ? output : csv] + flags)
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.contains("the dataset would replace the text it is made from"), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1)
            XCTAssertEqual(try String(contentsOfFile: csv, encoding: .utf8), text)
        }
        // -o naming one of a folder source's text files (it was overwritten, exit 0).
        let src = dir.path + "/src"
        let enumerator = FileManager.default.enumerator(atPath: src)
        let review = try XCTUnwrap((enumerator?.allObjects as? [String])?.sorted().first { $0.hasSuffix(".txt") })
        let before = try Data(contentsOf: URL(fileURLWithPath: src + "/" + review))
        let inside = try Subprocess.rnnDist(["prepare", "--source", src, "-o", src + "/./" + review])
        XCTAssertEqual(inside.status, 2, inside.stderr)
        XCTAssertTrue(inside.stderr.contains("is one of the text files of the --source folder"), inside.stderr)
        XCTAssertEqual(inside.stderr.split(separator: "\n").count, 1)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: src + "/" + review)), before)
        // The same review through a link: -o a link to it; a class folder that is a link (-o names
        // the review in the link's target); a review that is a link (-o names its target).
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: dir.file("data.h5"), withDestinationPath: src + "/" + review)
        let outside = dir.path + "/outside"
        try fm.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let classFolder = (src + "/" + review as NSString).deletingLastPathComponent
        let name = (review as NSString).lastPathComponent
        try fm.moveItem(atPath: classFolder, toPath: outside + "/classes")
        try fm.createSymbolicLink(atPath: classFolder, withDestinationPath: outside + "/classes")
        try fm.moveItem(atPath: outside + "/classes/" + name, toPath: outside + "/review.txt")
        try fm.createSymbolicLink(atPath: outside + "/classes/" + name, withDestinationPath: outside + "/review.txt")
        for output in [dir.file("data.h5"), outside + "/classes/" + name, outside + "/review.txt"] {
            let r = try Subprocess.rnnDist(["prepare", "--source", src, "-o", output])
            XCTAssertEqual(r.status, 2, "\(output): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("is one of the text files of the --source folder"), r.stderr)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: outside + "/review.txt")), before, output)
        }
    }
}
