import XCTest
@testable import HDF5
import TestSupport
@testable import TextData

/// `prepare` on small hand-made sources whose every output id is worked out by hand.
final class PrepareTests: XCTestCase {
    var dir: TempDir!

    override func setUpWithError() throws { dir = try TempDir("imdb-prepare") }
    override func tearDown() { dir?.remove() }

    /// Training counts: a 3, b 3, c 3, z 2, é 2, ab 1, d 1, onlytrain 1; so the ranks are
    /// a 4, b 5, c 6 (ties by bytes), z 7 before é 8 (0x7A < 0xC3), ab 9, d 10, onlytrain 11.
    static let reviews = [
        RawReview("train", "neg", 10, "b a c<br />b a c d"),
        RawReview("train", "neg", 2, rating: 1, "Z z é É ab"),
        RawReview("train", "pos", 100, rating: 10, "a.b.c"),
        RawReview("train", "pos", 7, "onlytrain"),
        RawReview("test", "neg", 5, "d testonly a"),
        RawReview("test", "pos", 3, ""),
        RawReview("test", "pos", 1, "é z b"),
    ]
    /// Rows by review id, maxlen 5, num_words 100 (all 8 words kept → num_words stored as 12).
    static let expectedRows: [Split: [Int32: [Int32]]] = [
        .train: [2: [7, 7, 8, 8, 9], 10: [6, 5, 4, 6, 10], 7: [0, 0, 0, 1, 11], 100: [0, 1, 4, 5, 6]],
        .test: [5: [0, 1, 10, 2, 4], 3: [0, 0, 0, 0, 1], 1: [0, 1, 8, 7, 5]],
    ]
    /// Sorted by (label, numeric id): 7 before 100.
    static let sortedIDs: [Split: [Int32]] = [.train: [2, 10, 7, 100], .test: [5, 1, 3]]

    private func prepare(_ source: String, _ out: String = "imdb.h5", numWords: Int = 100, maxlen: Int = 5,
                         seed: UInt64 = 113) throws -> (PrepareReport, TextDataset) {
        let report = try Preparer.prepare(PrepareOptions(source: source, output: dir.file(out),
                                                             numWords: numWords, maxlen: maxlen, seed: seed))
        return (report, try TextDataset(path: dir.file(out)))
    }

    private func rows(_ d: TextDataset, _ s: Split) throws -> [(id: Int32, label: Int32, x: [Int32])] {
        let split = d.split(s)
        let r = try split.read(rows: 0 ..< split.count)
        return try (0 ..< split.count).map { (id: try split.origin(row: $0)!.id, label: r.y[$0], x: Array(r.row($0))) }
    }

    func testFolderRowsVocabularyAndOrder() throws {
        try RawIMDB.writeFolder(Self.reviews, at: dir.path)
        let (report, d) = try prepare(dir.path)
        XCTAssertEqual(d.vocabulary.words, ["a", "b", "c", "z", "é", "ab", "d", "onlytrain"])
        XCTAssertEqual(d.numWords, 12, "fewer training words than asked: num_words = words + 4")
        XCTAssertEqual(report.distinctWords, 8)
        XCTAssertEqual(report.requestedNumWords, 100)
        XCTAssertEqual(report.train.rows, 4); XCTAssertEqual(report.test.rows, 3)
        XCTAssertEqual(report.train.truncated, 2)
        for s in Split.allCases {
            var rng = SplitMix64(seed: 113)
            let trainOrder = Shuffle.permutation(4, using: &rng), testOrder = Shuffle.permutation(3, using: &rng)
            let order = s == .train ? trainOrder : testOrder
            let got = try rows(d, s)
            XCTAssertEqual(got.map(\.id), order.map { Self.sortedIDs[s]![$0] }, "\(s): sorted, then permuted")
            for r in got {
                XCTAssertEqual(r.x, Self.expectedRows[s]![r.id], "\(s) review \(r.id)")
                XCTAssertEqual(r.label, s == .train ? (r.id == 7 || r.id == 100 ? 1 : 0) : (r.id == 5 ? 0 : 1))
            }
        }
        // Train pinned: the permutation [2, 3, 1, 0] of the sorted ids [2, 10, 7, 100].
        XCTAssertEqual(try rows(d, .train).map(\.id), [7, 100, 10, 2])
        let f = try H5File.open(dir.file("imdb.h5"), requireComplete: true)
        XCTAssertEqual(try f.stringAttribute("format"), "rnn-dist-imdb")
        XCTAssertEqual(try f.intAttribute("format_version"), 1)
        XCTAssertEqual(try f.intAttribute("requested_num_words"), 100)
        XCTAssertEqual(try f.intAttribute("index_from"), 3)
        XCTAssertEqual(try f.intAttribute("seed"), 113)
        XCTAssertEqual(try f.stringAttribute("source"), URL(fileURLWithPath: dir.path).lastPathComponent)
        XCTAssertEqual(try f.stringAttribute("tokenizer"), Tokenizer.version)
        XCTAssertEqual(try f.readStringList("vocab").count, 8)
        XCTAssertEqual(try f.dataset("train/y").elementType, .int8)
        XCTAssertEqual(try f.dataset("train/rating").read(as: Int8.self).sorted(), [1, 2, 8, 10])
    }

    func testNumWordsBoundaryMapsRarerWordsToOOV() throws {
        try RawIMDB.writeFolder(Self.reviews, at: dir.path)
        let (_, d) = try prepare(dir.path, numWords: 9)
        XCTAssertEqual(d.numWords, 9)
        XCTAssertEqual(d.vocabulary.words, ["a", "b", "c", "z", "é"])
        let train = Dictionary(uniqueKeysWithValues: try rows(d, .train).map { ($0.id, $0.x) })
        XCTAssertEqual(train[2], [7, 7, 8, 8, 2], "ab has id 9 = num_words: out of vocabulary")
        XCTAssertEqual(train[10], [6, 5, 4, 6, 2])
        XCTAssertEqual(train[7], [0, 0, 0, 1, 2])
        let (_, four) = try prepare(dir.path, "four.h5", numWords: 4, maxlen: 3)
        XCTAssertEqual(four.vocabulary.words, [])
        XCTAssertEqual(try rows(four, .test).first { $0.id == 1 }?.x, [2, 2, 2])
    }

    func testTarballFolderAndParentFolderGiveTheSameRows() throws {
        let base = try RawIMDB.writeFolder(Self.reviews, at: dir.path + "/src")
        try RawIMDB.writeTarball(folder: base, to: dir.file("aclImdb_v1.tar.gz"))
        try RawIMDB.writeTarball(folder: base, to: dir.file("plain.tar"), gzip: false)
        let (_, fromParent) = try prepare(dir.path + "/src", "a.h5", seed: 5)
        let (_, fromFolder) = try prepare(base, "b.h5", seed: 5)
        let (report, fromTarball) = try prepare(dir.file("aclImdb_v1.tar.gz"), "c.h5", seed: 5)
        let (_, fromTar) = try prepare(dir.file("plain.tar"), "d.h5", seed: 5)
        XCTAssertEqual(report.ignoredEntries, 4, "README, imdb.vocab, urls_pos.txt, unsup/0_0.txt")
        for s in Split.allCases {
            let reference = try rows(fromParent, s)
            for other in [fromFolder, fromTarball, fromTar] {
                let got = try rows(other, s)
                XCTAssertEqual(got.map(\.id), reference.map(\.id))
                XCTAssertEqual(got.map(\.x), reference.map(\.x))
            }
        }
        XCTAssertEqual(try rows(fromTarball, .train).map(\.id), [2, 100, 10, 7], "seed 5: [0, 3, 1, 2]")
        XCTAssertEqual(fromTarball.source, "aclImdb_v1.tar.gz")
        XCTAssertFalse(fromTarball.vocabulary.words.contains { $0.hasPrefix("zzz") }, "distractors are not read")
    }

    func testInvalidUTF8IsReplacedCountedAndStored() throws {
        var reviews = Self.reviews
        reviews.append(RawReview("train", "pos", 8, bytes: Array("good".utf8) + [0xFF, 0xFE] + Array("bad".utf8)))
        reviews.append(RawReview("test", "neg", 9, bytes: [0x61, 0xC3]))
        try RawIMDB.writeFolder(reviews, at: dir.path)
        let (report, d) = try prepare(dir.path)
        XCTAssertEqual(report.train.invalidUTF8Bytes, 2)
        XCTAssertEqual(report.test.invalidUTF8Bytes, 1)
        XCTAssertEqual(report.train.reviewsWithInvalidUTF8 + report.test.reviewsWithInvalidUTF8, 2)
        XCTAssertTrue(report.summary.joined(separator: "\n").contains("invalid UTF-8: 3 bytes replaced in 2 reviews"))
        XCTAssertTrue(d.vocabulary.words.contains("good") && d.vocabulary.words.contains("bad"))
        let f = try H5File.open(dir.file("imdb.h5"))
        XCTAssertEqual(try f.intAttribute("invalid_utf8_bytes_train"), 2)
        XCTAssertEqual(try f.intAttribute("invalid_utf8_bytes_test"), 1)
    }

    func testManyReviewsAcrossBatchesAreDeterministic() throws {
        // Enough text for several parallel batches (1 MB each).
        var reviews: [RawReview] = []
        var state: UInt64 = 1
        let words = ["alpha", "beta", "gamma", "delta", "épsilon", "zeta", "eta", "theta", "don't", "9th"]
        for i in 0 ..< 1200 {
            var text = ""
            for _ in 0 ..< 300 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                text += words[Int(state >> 33) % words.count] + (state & 1 == 0 ? " " : ", ")
            }
            reviews.append(RawReview(i % 2 == 0 ? "train" : "test", i % 4 < 2 ? "neg" : "pos", i, text + "w\(i)"))
        }
        let base = try RawIMDB.writeFolder(reviews, at: dir.path, distractors: false)
        try RawIMDB.writeTarball(folder: base, to: dir.file("big.tar.gz"))
        let (r1, d1) = try prepare(dir.file("big.tar.gz"), "1.h5", numWords: 1000, maxlen: 200)
        let (_, d2) = try prepare(base, "2.h5", numWords: 1000, maxlen: 200)
        XCTAssertEqual(r1.train.rows, 600)
        XCTAssertEqual(r1.train.truncated, 600)
        for s in Split.allCases {
            let a = try d1.split(s).read(rows: 0 ..< d1.split(s).count), b = try d2.split(s).read(rows: 0 ..< d2.split(s).count)
            XCTAssertEqual(a.x, b.x)
            XCTAssertEqual(a.y, b.y)
        }
        XCTAssertEqual(d1.vocabulary.words, d2.vocabulary.words)
        XCTAssertEqual(d1.vocabulary.words.count, 10 + 600, "ten shared words + one w<i> per training review")
        XCTAssertEqual(d1.numWords, 614)
        // Each row re-encodes from its raw text with the public tokenizer + vocabulary.
        let split = d1.split(.test)
        let rows = try split.read(rows: 0 ..< 20)
        for r in 0 ..< 20 {
            let id = Int(try split.origin(row: r)!.id)
            XCTAssertEqual(Array(rows.row(r)), d1.encode(String(decoding: reviews[id].bytes, as: UTF8.self)))
        }
    }

    // MARK: Bad input: one line naming the problem, nothing left at the output path

    private func assertFails(_ source: String, output: String? = nil, _ expected: (PrepareError) -> Bool,
                             file: StaticString = #filePath, line: UInt = #line) {
        let out = output ?? dir.file("out.h5")
        XCTAssertThrowsError(try Preparer.prepare(PrepareOptions(source: source, output: out, numWords: 20, maxlen: 5)),
                             file: file, line: line) { e in
            guard let p = e as? PrepareError else { return XCTFail("\(type(of: e)): \(e)", file: file, line: line) }
            XCTAssertTrue(expected(p), "\(p)", file: file, line: line)
            XCTAssertFalse("\(p)".contains("\n"), file: file, line: line)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "nothing at the output path", file: file, line: line)
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: dir.path))?.filter { $0.contains(".tmp-") } ?? []
        XCTAssertEqual(leftovers, [], "no temporary file left", file: file, line: line)
    }

    func testMissingSource() {
        assertFails(dir.file("nope.tar.gz")) { $0 == .sourceMissing(path: self.dir.file("nope.tar.gz")) && "\($0)".contains("nope.tar.gz") }
    }

    func testFolderWithoutTrainAndTest() throws {
        try FileManager.default.createDirectory(atPath: dir.path + "/empty", withIntermediateDirectories: true)
        assertFails(dir.path + "/empty") { $0 == .noClassFolders(path: self.dir.path + "/empty") }
        XCTAssertThrowsError(try Preparer.prepare(PrepareOptions(source: dir.path + "/empty", output: dir.file("x.h5"), format: .aclimdb))) {
            XCTAssertEqual($0 as? PrepareError, .notAnIMDBFolder(path: self.dir.path + "/empty"))
        }
        try FileManager.default.createDirectory(atPath: dir.path + "/empty/train", withIntermediateDirectories: true)
        assertFails(dir.path + "/empty") { $0 == .emptyClassFolder(path: self.dir.path + "/empty/train") }
    }

    func testEmptySplit() throws {
        try RawIMDB.writeFolder(Self.reviews.filter { $0.split == "train" }, at: dir.path + "/src")
        assertFails(dir.path + "/src") { $0 == .emptySplit(path: self.dir.path + "/src", split: "test") }
        let base = try RawIMDB.writeFolder(Self.reviews.filter { $0.split == "test" }, at: dir.path + "/src2")
        try RawIMDB.writeTarball(folder: base, to: dir.file("testonly.tar.gz"))
        assertFails(dir.file("testonly.tar.gz")) { $0 == .emptySplit(path: self.dir.file("testonly.tar.gz"), split: "train") }
    }

    func testTruncatedTarball() throws {
        var reviews = Self.reviews
        // Incompressible bulk, so that a cut tarball ends inside review data.
        var state: UInt64 = 3
        reviews.append(RawReview("train", "neg", 77, bytes: (0 ..< 200_000).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(0x61 + (state >> 33) % 26)
        }))
        let base = try RawIMDB.writeFolder(reviews, at: dir.path + "/src")
        let tgz = dir.file("cut.tar.gz")
        try RawIMDB.writeTarball(folder: base, to: tgz)
        let data = try Data(contentsOf: URL(fileURLWithPath: tgz))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: tgz))
        assertFails(tgz) { if case .archive(let p, _) = $0 { return p == tgz } else { return false } }
    }

    /// The tar's end-of-archive marker comes before the gzip member's end: a tarball cut by a few
    /// bytes, or with a damaged CRC-32 or length, still held every entry, and was read as intact.
    func testATarballsGzipEndIsChecked() throws {
        let base = try RawIMDB.writeFolder(Self.reviews, at: dir.path + "/src")
        let tgz = dir.file("whole.tar.gz")
        try RawIMDB.writeTarball(folder: base, to: tgz)
        XCTAssertNoThrow(try Preparer.prepare(PrepareOptions(source: tgz, output: dir.file("whole.h5"))))
        let good = try Data(contentsOf: URL(fileURLWithPath: tgz))
        var damaged: [(String, Data, String)] = [1, 4, 8, 12, 20].map {
            ("cut\($0).tar.gz", Data(good.prefix(good.count - $0)), "gzip data is cut off")
        }
        damaged.append(("crc.tar.gz", Data(good.prefix(good.count - 8)) + Data([good[good.count - 8] ^ 1]) + good.suffix(7),
                        "gzip data is corrupt (incorrect data check)"))
        damaged.append(("junk.tar.gz", good + Data("junk".utf8), "gzip data is followed by bytes that are not gzip"))
        for (name, bytes, expect) in damaged {
            let path = dir.file(name)
            try bytes.write(to: URL(fileURLWithPath: path))
            assertFails(path) { if case .archive(let p, _) = $0 { return p == path && "\($0)".contains(expect) } else { return false } }
        }
        // Zero bytes after the last member are padding, as for a .gz.
        let padded = dir.file("padded.tar.gz")
        try (good + Data(repeating: 0, count: 1_000)).write(to: URL(fileURLWithPath: padded))
        XCTAssertNoThrow(try Preparer.prepare(PrepareOptions(source: padded, output: dir.file("padded.h5"))))
    }

    /// A review stored as a link (GNU tar stores a file hard-linked to another as a link entry; a
    /// symbolic link has no text of its own): refused by name, never dropped without a word while the
    /// extracted folder would read it.
    func testALinkEntryWithAReviewsNameIsRefused() throws {
        for (name, link) in [("hard", FileManager.default.linkItem(atPath:toPath:)),
                             ("symbolic", FileManager.default.createSymbolicLink(atPath:withDestinationPath:))] {
            let base = try RawIMDB.writeFolder(Self.reviews, at: dir.path + "/\(name)")
            let folder = base + "/train/pos"
            let first = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()[0]
            if name == "hard" {
                try link(folder + "/" + first, folder + "/55_9.txt")
            } else {
                try link(folder + "/55_9.txt", first)
            }
            let folderRows = try Preparer.prepare(PrepareOptions(source: base, output: dir.file("\(name)-folder.h5"), numWords: 20, maxlen: 5))
            XCTAssertEqual(folderRows.train.rows, 5, "the folder reads the linked review")
            let tar = dir.file("\(name).tar")
            try RawIMDB.writeTarball(folder: base, to: tar, gzip: false)
            assertFails(tar) {
                "\($0)".contains("train/pos/") && "\($0)".contains("is a \(name) link to") && "\($0)".contains("not a review's text")
            }
        }
    }

    func testNotATarball() throws {
        let junk = dir.file("junk.tar.gz")
        try Data("this is not a gzip file at all, just text\n".utf8).write(to: URL(fileURLWithPath: junk))
        assertFails(junk) { if case .archive(let p, _) = $0 { return p == junk } else { return false } }
        let empty = dir.file("empty.tar.gz")
        try Data().write(to: URL(fileURLWithPath: empty))
        assertFails(empty) { p in
            if case .archive = p { return "\(p)".contains("empty.tar.gz") }
            return p == .emptySplit(path: empty, split: "train")
        }
    }

    func testOutputFolderMissing() throws {
        try RawIMDB.writeFolder(Self.reviews, at: dir.path)
        let out = dir.path + "/no/such/folder/imdb.h5"
        assertFails(dir.path, output: out) { $0 == .outputFolderMissing(path: out) }
        try FileManager.default.createDirectory(atPath: dir.path + "/taken.h5", withIntermediateDirectories: false)
        XCTAssertThrowsError(try Preparer.prepare(PrepareOptions(source: dir.path, output: dir.path + "/taken.h5"))) {
            XCTAssertEqual($0 as? PrepareError, .outputIsFolder(path: self.dir.path + "/taken.h5"))
        }
    }

    func testDuplicateReviewId() throws {
        var reviews = Self.reviews
        reviews.append(RawReview("train", "neg", 10, rating: 4, "again"))
        try RawIMDB.writeFolder(reviews, at: dir.path + "/src")
        assertFails(dir.path + "/src") { $0 == .duplicateReview(path: self.dir.path + "/src", entry: "train/neg/10_*.txt") }
    }

    func testAFailedRunLeavesThePreviousFileIntact() throws {
        try RawIMDB.writeFolder(Self.reviews, at: dir.path + "/good")
        let out = dir.file("keep.h5")
        _ = try Preparer.prepare(PrepareOptions(source: dir.path + "/good", output: out, numWords: 20, maxlen: 5))
        let before = try Data(contentsOf: URL(fileURLWithPath: out))
        XCTAssertThrowsError(try Preparer.prepare(PrepareOptions(source: dir.file("missing"), output: out)))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), before)
    }
}
