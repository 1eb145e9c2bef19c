import Foundation
import XCTest
@testable import HDF5
import TestSupport
@testable import TextData

/// `prepare` from class folders, CSV, TSV and JSON Lines: the re-packagings of one small IMDB-like
/// source give the tarball's arrays exactly; classes, splits and labels follow docs/DATASET.md.
final class OwnDataTests: XCTestCase {
    var dir: TempDir!

    override func setUpWithError() throws { dir = try TempDir("own-data") }
    override func tearDown() { dir?.remove() }

    /// Reviews whose texts hold what a CSV writer must quote: separators, quotes, CR, LF, tabs,
    /// `<br />`, non-ASCII; no empty text (the user formats refuse one).
    static let reviews = [
        RawReview("train", "neg", 10, "b, a \"c\"<br />b a\tc d"),
        RawReview("train", "neg", 2, rating: 1, "Z z é É ab\r\nsecond line"),
        RawReview("train", "pos", 100, rating: 10, "a.b.c"),
        RawReview("train", "pos", 7, "onlytrain \"\"quoted\"\""),
        RawReview("train", "pos", 30, "line one\nline two, three"),
        RawReview("test", "neg", 5, "d testonly a"),
        RawReview("test", "pos", 3, "x\ry"),
        RawReview("test", "pos", 1, "é z b"),
    ]

    /// The rows of one split in the tarball's order (label, then id).
    static func sorted(_ split: String) -> [RawReview] {
        reviews.filter { $0.split == split }.sorted { ($0.label, $0.id) < ($1.label, $1.id) }
    }

    static func field(_ s: String, separator: Character) -> String {
        guard s.contains(where: { $0 == separator || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// `id,text,label` rows (an extra column first), CRLF line ends, a UTF-8 BOM before the header.
    static func delimited(_ rows: [RawReview], separator: Character) -> Data {
        let s = String(separator)
        var out = "\u{FEFF}id\(s)text\(s)label\r\n"
        for r in rows {
            out += "\(r.id)\(s)\(field(String(decoding: r.bytes, as: UTF8.self), separator: separator))\(s)\(r.label)\r\n"
        }
        return Data(out.utf8)
    }

    static func jsonLines(_ rows: [RawReview]) throws -> Data {
        var out = Data()
        for r in rows {
            out += try JSONSerialization.data(withJSONObject: ["id": r.id, "text": String(decoding: r.bytes, as: UTF8.self),
                                                               "label": r.label, "extra": ["nested": [1, 2]]] as [String: Any],
                                              options: [.sortedKeys])
            out += Data("\n".utf8)
        }
        return out
    }

    private func write(_ data: Data, _ name: String) throws -> String {
        let path = dir.file(name)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// `gzip -k path` → `path.gz`.
    private func gzip(_ path: String) throws {
        let r = try Subprocess.run("/usr/bin/env", ["gzip", "-kf", path])
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    @discardableResult
    private func prepare(_ source: String, _ out: String, testSource: String? = nil, format: SourceFormat? = nil,
                         textColumn: String = "text", labelColumn: String = "label", testSplit: Double? = nil,
                         seed: UInt64 = 113) throws -> PrepareReport {
        try Preparer.prepare(PrepareOptions(source: source, output: dir.file(out), numWords: 100, maxlen: 6, seed: seed,
                                            format: format, textColumn: textColumn, labelColumn: labelColumn,
                                            testSource: testSource, testSplit: testSplit))
    }

    /// x, y of both splits and the vocabulary.
    private func arrays(_ name: String) throws -> [String: [Int64]] {
        let f = try H5File.open(dir.file(name))
        var out: [String: [Int64]] = [:]
        for s in ["train", "test"] {
            out["\(s)/x"] = (try f.dataset("\(s)/x").read() as [Int32]).map(Int64.init)
            out["\(s)/y"] = (try f.dataset("\(s)/y").read() as [Int8]).map(Int64.init)
        }
        out["vocab/bytes"] = (try f.dataset("vocab/bytes").read() as [UInt8]).map(Int64.init)
        out["vocab/offsets"] = try f.dataset("vocab/offsets").read()
        return out
    }

    func testEveryRepackagingGivesTheTarballsArrays() throws {
        let base = try RawIMDB.writeFolder(Self.reviews, at: dir.path + "/imdb")
        try RawIMDB.writeTarball(folder: base, to: dir.file("aclImdb_v1.tar.gz"))
        try prepare(dir.file("aclImdb_v1.tar.gz"), "tar.h5")
        let reference = try arrays("tar.h5")
        XCTAssertEqual(reference["train/y"], [1, 1, 1, 0, 0], "seed 113: row r is sorted row [2, 3, 4, 0, 1][r]")

        for (ext, sep) in [("csv", Character(",")), ("tsv", Character("\t"))] {
            let train = try write(Self.delimited(Self.sorted("train"), separator: sep), "\(ext)/train.\(ext)")
            let test = try write(Self.delimited(Self.sorted("test"), separator: sep), "\(ext)/test.\(ext)")
            let r = try prepare(train, "\(ext).h5", testSource: test)
            XCTAssertEqual(r.classNames, ["neg", "pos"])
            XCTAssertEqual(try arrays("\(ext).h5"), reference, ext)
        }
        let train = try write(try Self.jsonLines(Self.sorted("train")), "jsonl/train.jsonl")
        let test = try write(try Self.jsonLines(Self.sorted("test")), "jsonl/test.jsonl")
        try prepare(train, "jsonl.h5", testSource: test)
        XCTAssertEqual(try arrays("jsonl.h5"), reference, "jsonl")

        // Class folders: zero-padded names so that sorted path order is id order.
        for r in Self.reviews {
            _ = try write(Data(r.bytes), "folders/\(r.split)/\(r.label)/\(String(format: "%09d", r.id)).txt")
        }
        _ = try write(Data("not a text".utf8), "folders/train/neg/README.md")
        let report = try prepare(dir.path + "/folders", "folders.h5")
        XCTAssertEqual(report.ignoredEntries, 1)
        XCTAssertEqual(try arrays("folders.h5"), reference, "folders")
        // The same class folders as a training folder and a --test-source folder.
        try prepare(dir.path + "/folders/train", "folders2.h5", testSource: dir.path + "/folders/test")
        XCTAssertEqual(try arrays("folders2.h5"), reference, "folders with --test-source")

        // Compressed: the CSV pair gzip'ed.
        for name in ["csv/train.csv", "csv/test.csv"] { try gzip(dir.file(name)) }
        try prepare(dir.file("csv/train.csv.gz"), "gz.h5", testSource: dir.file("csv/test.csv.gz"))
        XCTAssertEqual(try arrays("gz.h5"), reference, "csv.gz")

        let f = try TextDataset(path: dir.file("csv.h5"))
        XCTAssertEqual(f.classNames, ["neg", "pos"])
        XCTAssertFalse(try H5File.open(dir.file("csv.h5")).exists("train/review_id"), "only aclImdb has review ids")
    }

    /// The same 200-row CSV as `bzip2 -9`, `xz -9` and `zstd -19` wrote it (made once with those
    /// tools, kept here as bytes so the test needs none of them): each reads as the plain file, and
    /// each cut in half is one line naming the format.
    static let compressedCSV: [String: String] = [
        "bz2": "QlpoOTFBWSZTWaYAgTUABg3ZgAAQQAR/4DYkncBAAnwwQAKAAAMmQNTR/qqo/1T1TepMgAKAAAMmQNP1VJD3qfqqg08oPKbx+fmA" +
            "CAAgAgAIAIACACAAgAgAIAIACACAAgAgAIAIAFfskxJi5vr27oANKAMmQFDQEADSgDJkBQ0BAeJ29e/gGlAGTIChoCABpQBkyAoa" +
            "AgAPuSYkx+e3Ok5vnpzrzl3d3d30mJupve97666u7u7u7vSZDMhmQzIZkMyGZDMhmQzJeKtttu3d3d3etAAAvFvFttu7d3d3euQA" +
            "ALxbe1tt3du7u718AAAXi232tt3d27u717gAAXi22+9t3d3bu717AAAXi2234t3d3du712AAAvFttt5u7u7u3euAAAJxe1ttt555" +
            "5555562gABHiTJM7pMkzv5kmSZ4STJM/0kyTO/qSZJnnn+yTJM9STJM8yTJM9STJM//HxJJkmfMkyTH0LuSKcKEhTAECag==",
        "xz": "/Td6WFoAAATm1rRGAgAhARwAAAAQz1jM4A50ATBdADoZS3gQr6F2RWQ1l+T4Pz+xnMIEq3v22y1ylb23B4AY1QZMbhmLkpcEJ+dt" +
            "jiJtPKXDpmgd5k9qdMiemllqg/R1skBm5xSrNvyoDrs8yKGrpKITp5ozB4rSOCON+hvxCNFaBQfryHO4hU4VI/hjRQ68OOEXbUi1" +
            "n4/1lgKie6NlyuJYSI6PGz2u8nnlBFcm85DRxdx29BBfuJ1Z/bc6/aAHzNR0BOgZL+QJJimYBfFdo2rLqsKGTbpfqUYkLXf99G1k" +
            "qXE+Jp7W4lU7kTanCRbJaB9lvmwgLmtzNn0Jwf7ArbcM8t6rvaaI+Z3HZIcJ90YALJFFKZWWbnpn8ZX/bW+8us1MW3bESVeyoBvr" +
            "PEnKR2BjhpcY/OWZwV8y3UU4cFZVTdqxXxws7sm5eeDV0AEAHG0LYeUAvPsAAcwC9RwAAPPlO3uxxGf7AgAAAAAEWVo=",
        "zst": "KLUv/WR1DW0IAHbUKhSQW3NozWut08y0Ly0t2bLz3//gBDAAIwAeAFVVRUREREQ0MzMzM9O2bdv+/3/iWdGU8ECwKCgSjoAEHIZD" +
            "w6AAIAyEAULAeBgYAf/////LsizLsizLcmZmZmYmIiIiIuLd3d3dnZmZmZlZVVUF13Vd13Vd1zRN0zRN0zQ9z/M8z/M8z7333nvv" +
            "vf8BeZ7neZ7neY7jOI7jOI7j933f933f923btm3btm3bFYDJqBEQ+v3fwKMUBxBGiIAIJz53bm1tnZ2rc3Nr7WxdnZtza6sHBTB/" +
            "qy96m5d2qy5zCzcSAAAAAAAAAAAAAAAAANxN2KK20GK2ZBFbYPFarqZQFEWxCEUpLgqs6bYqP1APLA==",
    ]

    func testBzip2XzAndZstdReadAsThePlainFile() throws {
        let text = "text,label\n" + (0 ..< 200).map { "review \($0) words,\($0 % 2 == 0 ? "a" : "b")" }.joined(separator: "\n") + "\n"
        let plain = try write(Data(text.utf8), "z/f.csv")
        try prepare(plain, "z-plain.h5", testSplit: 0.25)
        let reference = try arrays("z-plain.h5")
        XCTAssertEqual(reference["train/y"]?.count, 150)
        let cut = ["bz2": "truncated bzip2 input", "xz": "truncated xz input", "zst": "Truncated zstd input"]
        for (ext, base64) in Self.compressedCSV.sorted(by: { $0.key < $1.key }) {
            let bytes = try XCTUnwrap(Data(base64Encoded: base64), ext)
            let path = try write(bytes, "z/f.csv.\(ext)")
            try prepare(path, "z-\(ext).h5", testSplit: 0.25)
            XCTAssertEqual(try arrays("z-\(ext).h5"), reference, ext)
            let half = try write(Data(bytes.prefix(bytes.count / 2)), "z/half.csv.\(ext)")
            XCTAssertThrowsError(try prepare(half, "z-half.h5", testSplit: 0.25)) {
                XCTAssertTrue("\($0)".contains("half.csv.\(ext): cannot read the archive: \(cut[ext]!)"), "\(ext): \($0)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("z-half.h5")))
        }
    }

    /// Records cut at every possible chunk boundary parse as the whole file does.
    func testCSVParserIsIndependentOfChunking() throws {
        let text = "\u{FEFF}a,text,label\r\n1,\"x,\"\"y\"\"\r\nz\",p\n\n2,plain,q\r3,\"\",r\r\n4,\"ab\"c,s\r5,\"m\rn\r\no\no\",t\r6,after,u"
        let bytes = Array(text.utf8)
        func parse(chunk: Int) throws -> [[String]] {
            var p = DelimitedParser(separator: UInt8(ascii: ","), textColumn: "text", labelColumn: "label")
            var out: [[String]] = []
            let emit: (DelimitedParser.Record) throws -> Void = {
                out.append([String(decoding: $0.text, as: UTF8.self), String(decoding: $0.label, as: UTF8.self), "\($0.line)"])
            }
            var i = 0
            while i < bytes.count {
                let part = Array(bytes[i ..< min(bytes.count, i + chunk)])
                try part.withUnsafeBufferPointer { try p.feed($0, emit) }
                i += chunk
            }
            try p.finish(emit)
            return out
        }
        let whole = try parse(chunk: bytes.count)
        // Line numbers count every line break, inside quotes too: LF, CRLF and a lone CR.
        XCTAssertEqual(whole, [["x,\"y\"\r\nz", "p", "2"], ["plain", "q", "5"], ["", "r", "6"], ["abc", "s", "7"],
                               ["m\rn\r\no\no", "t", "8"], ["after", "u", "12"]])
        for chunk in 1 ..< 8 { XCTAssertEqual(try parse(chunk: chunk), whole, "chunks of \(chunk)") }
    }

    /// A byte order mark cut by the chunks (a pipe delivers bytes as they come) is skipped as a
    /// whole one is; bytes that only begin like one are text.
    func testAByteOrderMarkAcrossChunksIsSkipped() throws {
        func parse(_ parts: [[UInt8]]) throws -> [String] {
            var p = DelimitedParser(separator: UInt8(ascii: ","), textColumn: "text", labelColumn: "label")
            var out: [String] = []
            let emit: (DelimitedParser.Record) throws -> Void = { out.append(String(decoding: $0.text, as: UTF8.self)) }
            for part in parts { try part.withUnsafeBufferPointer { try p.feed($0, emit) } }
            try p.finish(emit)
            return out
        }
        let body = Array("text,label\nfoo,a\nbar,b\n".utf8)
        for cut in [[1], [2], [1, 2], [3]] {
            var parts: [[UInt8]] = [], bom: [UInt8] = [0xEF, 0xBB, 0xBF], start = 0
            for c in cut { parts.append(Array(bom[start ..< c])); start = c }
            parts.append(Array(bom[start...]) + body)
            XCTAssertEqual(try parse(parts), ["foo", "bar"], "\(cut)")
        }
        // Not a mark: the header's first name begins with those bytes, and is not 'text'.
        XCTAssertThrowsError(try parse([[0xEF, 0xBB], Array("xtext,label\nfoo,a\n".utf8)])) { e in
            XCTAssertTrue("\((e as? DelimitedParser.Failure)?.detail ?? "")".contains("no column 'text'"), "\(e)")
        }
        XCTAssertEqual(try parse([[0xEF], [0xBB, 0xBF]] + [body]), ["foo", "bar"])
    }

    /// A text or label over its limit is refused with its size at its record's end, and only the
    /// limit is held (a 1 GiB text in a 1 MB `.csv.gz` was held whole, 1.09 GB, before being refused).
    func testAFieldOverItsLimitIsRefusedWithoutHoldingIt() throws {
        func parse(text: Int, label: Int, chunk: Int) -> String {
            var p = DelimitedParser(separator: UInt8(ascii: ","), textColumn: "text", labelColumn: "label")
            let bytes = Array("text,label\n".utf8) + [UInt8](repeating: 0x61, count: text) + [0x2C] +
                [UInt8](repeating: 0x62, count: label) + Array("\nok,b\n".utf8)
            var emitted = 0
            do {
                var i = 0
                while i < bytes.count {
                    try bytes[i ..< min(bytes.count, i + chunk)].withUnsafeBufferPointer { try p.feed($0) { _ in emitted += 1 } }
                    i += chunk
                }
                try p.finish { _ in emitted += 1 }
                return "\(emitted) records"
            } catch let e as DelimitedParser.Failure {
                return "line \(e.line): \(e.detail)"
            } catch { return "\(error)" }
        }
        let max = PrepareLimits.maxReviewBytes
        // What is held of a field over its limit stays at the limit while the rest streams by.
        var p = DelimitedParser(separator: UInt8(ascii: ","), textColumn: "text", labelColumn: "label")
        try Array("text,label\n".utf8).withUnsafeBufferPointer { try p.feed($0) { _ in } }
        let mebibyte = [UInt8](repeating: 0x61, count: 1 << 20)
        for _ in 0 ..< 40 { try mebibyte.withUnsafeBufferPointer { try p.feed($0) { _ in } } }
        XCTAssertEqual(p.heldBytes, max + "textlabel".utf8.count, "40 MiB of text read, the limit held")
        // Each column name is held at its own size (a stored name shared the field's buffer, so
        // every later name kept the longest one's capacity: 65,536 columns × 1 KiB).
        var wide = DelimitedParser(separator: UInt8(ascii: ","), textColumn: "text", labelColumn: "label")
        let header = String(repeating: "n", count: 1024) + "," + (0 ..< 1000).map { "c\($0 % 10)" }.joined(separator: ",") + ",text,label\n"
        try Array(header.utf8).withUnsafeBufferPointer { try wide.feed($0) { _ in } }
        XCTAssertLessThan(wide.headerCapacity, 1024 + 1000 * 64, "1,002 names of 2 bytes and one of 1,024")
        XCTAssertEqual(parse(text: max, label: 1024, chunk: 1 << 20), "2 records")
        XCTAssertEqual(parse(text: max + 1, label: 3, chunk: 1 << 20), "line 2: the text has \(max + 1) bytes, over the 16 MiB limit")
        XCTAssertEqual(parse(text: 3 * max, label: 3, chunk: 1 << 20), "line 2: the text has \(3 * max) bytes, over the 16 MiB limit")
        XCTAssertEqual(parse(text: 3, label: 5000, chunk: 7), "line 2: the label has 5000 bytes, over the 1024-byte limit")
    }

    /// JSON Lines are read line by line: a line is refused once it passes the limit, before it is
    /// held whole (a 400 MiB text took 1.27 GB before its size was refused).
    func testALineOverTheLimitIsRefusedAsItPassesIt() throws {
        let path = try write(Data("ab\ncdefgh\nij".utf8), "lines.txt")
        func lines(max: Int) -> String {
            var seen: [String] = []
            do {
                try ByteStream.readLines(path, what: "lines", maxLineBytes: max) { seen.append(String(decoding: $0, as: UTF8.self)) }
                return seen.joined(separator: "|")
            } catch let e as ByteStream.LineTooLong {
                return seen.joined(separator: "|") + " then over \(e.limit)"
            } catch { return "\(error)" }
        }
        XCTAssertEqual(lines(max: 6), "ab|cdefgh|ij")
        XCTAssertEqual(lines(max: 5), "ab then over 5")
        XCTAssertEqual(lines(max: 1), " then over 1")
        // A last line without its LF, over the limit before the file ends: refused as it is read.
        let tail = try write(Data("ab\ncdefghij".utf8), "tail.txt")
        XCTAssertThrowsError(try ByteStream.readLines(tail, what: "lines", maxLineBytes: 7) { _ in }) { XCTAssertTrue($0 is ByteStream.LineTooLong) }
        XCTAssertNoThrow(try ByteStream.readLines(tail, what: "lines", maxLineBytes: 8) { _ in })
        XCTAssertEqual(JSONLinesSource.maxLineBytes, 100 << 20, "6 bytes a byte of a 16 MiB text, and 4 MiB more")
    }

    func testClassesAreSortedLabelsIntegersNumerically() throws {
        func csv(_ labels: [String]) -> Data {
            Data((["text,label"] + labels.enumerated().map { "word\($0.offset % 3) row,\($0.element)" }).joined(separator: "\n").utf8)
        }
        let ints = try write(csv(["10", "9", "-1", "10", "9", "2"]), "ints.csv")
        let intsTest = try write(csv(["9", "2"]), "ints-test.csv")
        XCTAssertEqual(try prepare(ints, "ints.h5", testSource: intsTest).classNames, ["-1", "2", "9", "10"])
        let d = try TextDataset(path: dir.file("ints.h5"))
        XCTAssertEqual(try d.split(.test).labels().sorted(), [1, 2], "test labels 2 and 9 are classes 1 and 2")
        let mixed = try write(csv(["10", "9", "b", "10", "é", "B", "2"]), "mixed.csv")
        XCTAssertEqual(try prepare(mixed, "mixed.h5", testSource: intsTest).classNames, ["10", "2", "9", "B", "b", "é"],
                       "one label is not an integer: all sort as UTF-8 bytes")

        // JSON integer labels sort as numbers, and y holds each row's class index.
        var lines = ""
        for (k, l) in [3, 11, 3, 2, 11, 2, 3].enumerated() { lines += "{\"text\": \"t\(k) words\", \"label\": \(l)}\r\n" }
        let path = try write(Data(lines.utf8), "n.jsonl")
        let test = try write(Data("{\"label\": \"11\", \"text\": \"x\"}\n\n{\"text\": \"y\", \"label\": 2}".utf8), "n-test.jsonl")
        let r = try prepare(path, "n.h5", testSource: test)
        XCTAssertEqual(r.classNames, ["2", "3", "11"])
        XCTAssertEqual(r.train.classCounts, [2, 3, 2])
        XCTAssertEqual(r.test.classCounts, [1, 0, 1], "the string \"11\" and the integer 11 are one label; blank lines are skipped")
        XCTAssertEqual(try TextDataset(path: dir.file("n.h5")).classNames, ["2", "3", "11"])
        // Any JSON integer is its digits (-0 is 0; 20 digits, past Int64, too); spaces around it
        // do not count.
        let big = try write(Data("{\"text\": \"a\", \"label\": 12345678901234567890 }\n{\"text\": \"b\", \"label\" :-0}\n{\"text\": \"c\", \"label\": \"0\"}\n".utf8), "big.jsonl")
        let bigTest = try write(Data("{\"text\": \"d\", \"label\": 0}\n".utf8), "big-test.jsonl")
        XCTAssertEqual(try prepare(big, "big.h5", testSource: bigTest).classNames, ["0", "12345678901234567890"])
    }

    /// --test-split: round(f·N) rows drawn first from the seeded generator; both parts keep the
    /// source order; the vocabulary counts the training rows only.
    func testTestSplitIsSeededAndTheVocabularyIgnoresTestRows() throws {
        let rows = (0 ..< 10).map { "w\($0) common,\($0 % 2 == 0 ? "even" : "odd")" }
        let path = try write(Data((["text,label"] + rows).joined(separator: "\n").utf8), "ten.csv")
        let r = try prepare(path, "a.h5", testSplit: 0.3)
        XCTAssertEqual([r.train.rows, r.test.rows], [7, 3])
        try prepare(path, "b.h5", testSplit: 0.3)
        XCTAssertEqual(try arrays("a.h5"), try arrays("b.h5"), "the same seed draws the same split")
        try prepare(path, "c.h5", testSplit: 0.3, seed: 7)
        XCTAssertNotEqual(try arrays("a.h5"), try arrays("c.h5"))
        // The drawn test rows: p = Fisher–Yates(10) with SplitMix64(113), rows p[0..<3].
        var rng = SplitMix64(seed: 113)
        let p = Shuffle.permutation(10, using: &rng)
        let testWords = Set(p.prefix(3).map { "w\($0)" })
        let vocab = try TextDataset(path: dir.file("a.h5")).vocabulary.words
        XCTAssertEqual(Set(vocab), Set((0 ..< 10).map { "w\($0)" }).subtracting(testWords).union(["common"]))
        XCTAssertEqual(vocab.first, "common")
    }

    /// Each bad input: one line naming the file (and line), a `PrepareError`, nothing at -o.
    func testBadInputsNameFileAndLine() throws {
        let cases: [(name: String, content: String, extra: [String: String], expect: String)] = [
            ("nocol.csv", "body,label\nx,a\n", [:], "nocol.csv line 1: no column 'text' (--text-column) in the header; columns: 'body', 'label'"),
            ("quote.csv", "text,label\nok,a\n\"open,b\nmore\n", [:], "quote.csv line 3: unterminated quote"),
            ("fields.csv", "text,label\nok,a\nx,b,c\n", [:], "fields.csv line 3: 3 fields, the header has 2"),
            ("array.jsonl", "{\"text\": \"a\", \"label\": 1}\n[1, 2]\n", [:], "array.jsonl line 2: not a JSON object"),
            ("nokey.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"txt\": \"b\", \"label\": 2}\n", [:], "nokey.jsonl line 2: no key 'text' (--text-column); keys: "),
            ("badjson.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\",\n", [:], "badjson.jsonl line 2: not valid JSON"),
            ("floatlabel.jsonl", "{\"text\": \"a\", \"label\": 1.5}\n", [:], "floatlabel.jsonl line 1: the label 'label' is neither a string nor an integer"),
            ("wholefloat.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 1.0}\n", [:], "wholefloat.jsonl line 2: the label 'label' is neither a string nor an integer"),
            ("ctrl.jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": \"two\\nlines\"}\n", [:], "ctrl.jsonl line 2: the label holds the control character U+000A"),
            ("esc.csv", "text,label\na,x\nb,\u{1B}[31mred\n", [:], "esc.csv line 3: the label holds the control character U+001B"),
            ("csi.csv", "text,label\na,x\nb,\u{9B}31m\n", [:], "csi.csv line 3: the label holds the control character U+009B"),
            ("lsep.csv", "text,label\na,x\nb,one\u{2028}two\n", [:], "lsep.csv line 3: the label holds the control character U+2028"),
            ("exponent.jsonl", "{\"text\": \"a\", \"label\": 1E2}\n", [:], "exponent.jsonl line 1: the label 'label' is neither a string nor an integer"),
            ("nulltext.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": null, \"label\": 2}\n", [:], "nulltext.jsonl line 2: 'text' is not a string but null"),
            ("dupkey.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 2, \"text\": \"c\"}\n", [:],
             "dupkey.jsonl line 2: the object has the key 'text' (--text-column) 2 times"),
            ("dupescaped.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"n\": {\"label\": [\"x\"]}, \"label\": 2, \"text\": \"}\\\",\", \"lab\\u0065l\": 1}\n", [:],
             "dupescaped.jsonl line 2: the object has the key 'label' (--label-column) 2 times"),
            // What Python's json refuses and Foundation's parser accepted (the row was prepared).
            ("comma.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"c d\", \"label\": 2,}\n", [:],
             "comma.jsonl line 2: not valid JSON (a trailing comma at byte 27)"),
            ("commalist.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"c\", \"label\": 2, \"n\": [1,]}\n", [:],
             "commalist.jsonl line 2: not valid JSON (a trailing comma at byte 34)"),
            ("dot.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"c\", \"label\": 2, \"n\": 1.}\n", [:],
             "dot.jsonl line 2: not valid JSON (a number without digits after its '.' at byte 32)"),
            ("escape.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"c\", \"label\": 2, \"\\x41\": 0}\n", [:],
             "escape.jsonl line 2: not valid JSON (an invalid escape in a string"),
            ("tab.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"c\td\", \"label\": 2}\n", [:],
             "tab.jsonl line 2: not valid JSON (a control character (0x9) in a string: JSON needs it escaped at byte 12)"),
            ("empty.csv", "text,label\nok,a\n  ,b\n", [:], "empty.csv line 3: the text is empty"),
            ("nolabel.csv", "text,label\nok,a\nfine,\n", [:], "nolabel.csv line 3: the label is empty"),
            ("one.csv", "text,label\nx,a\ny,a\nz,a\n", [:], "one.csv: every training row has the label 'a'"),
            ("train.csv", "text,label\nx,a\ny,b\n", ["test.csv": "text,label\nz,c\n"], "test.csv line 2: label 'c' is not a class of the training rows ('a', 'b')"),
            ("train.csv", "text,label\nx,a\ny, \n", [:], "train.csv line 3: the label is empty (nothing but white space)"),
            ("headeronly.csv", "text,label\n", [:], "headeronly.csv: holds no rows"),
            ("nothing.csv", "", [:], "nothing.csv line 1: empty: no header row"),
            ("nul.csv", "text,label\nx\u{0}y,a\n", [:], "nul.csv: a NUL byte on line 2"),
            // Lines end at a lone CR too, inside quotes as well (the line was counted by LFs alone: "line 1").
            ("nulcr.csv", "text,label\rfoo,a\rbar,b\rba\u{0}z,a\r", [:], "nulcr.csv: a NUL byte on line 4"),
            ("nulquoted.tsv", "text\tlabel\rfoo\ta\r\"x\ry\r\nz\"\tb\rba\u{0}z\ta\r", [:], "nulquoted.tsv: a NUL byte on line 6"),
            // A binary file whose first "line" comes before its first NUL: not text, not a header without 'text'.
            ("image.csv", "\u{7F}PNG\r\n\u{1A}\n\u{0}\u{0}\u{0}\rIHDR", [:], "image.csv: a NUL byte on line 3: not a UTF-8 text file"),
            ("wide.csv", "text,label," + String(repeating: "c,", count: 70_000) + "z\nx,a\ny,b\n", [:],
             "wide.csv line 1: the header has more than 65536 columns"),
            ("longname.csv", "text,label," + String(repeating: "c", count: 1025) + "\nx,a,1\ny,b,2\n", [:],
             "longname.csv line 1: column 3 of the header has a name of 1025 bytes, over the 1024-byte limit"),
            ("what.txt", "text,label\n", [:], "what.txt: cannot tell the format from the name"),
            ("dupcol.csv", "text,label,text\nx,a,q\ny,b,q\n", [:], "dupcol.csv line 1: the header has the column 'text' (--text-column) twice"),
            ("duplabel.csv", "label,text,label\na,x,b\nb,y,a\n", [:], "duplabel.csv line 1: the header has the column 'label' (--label-column) twice"),
            ("longlabel.csv", "text,label\nx," + String(repeating: "a", count: 1025) + "\ny,b\n", [:],
             "longlabel.csv line 2: the label has 1025 bytes, over the 1024-byte limit"),
        ]
        for c in cases {
            let path = try write(Data(c.content.utf8), "bad/" + c.name)
            var test: String?
            for (n, body) in c.extra { test = try write(Data(body.utf8), "bad/" + n) }
            let out = dir.file("bad.h5")
            XCTAssertThrowsError(try Preparer.prepare(PrepareOptions(source: path, output: out, testSource: test, testSplit: test == nil ? 0.4 : nil)), c.name) { e in
                let message = "\(e)"
                XCTAssertTrue(e is PrepareError, "\(type(of: e))")
                XCTAssertTrue(message.contains(c.expect), "\(c.name): \(message)")
                XCTAssertFalse(message.contains("\n"), message)
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), c.name)
        }

        // Files that are not what their names say.
        let gz = try write(Data("text,label\nx,a\ny,b\n".utf8), "bad/plain.csv.gz")
        XCTAssertThrowsError(try Preparer.prepare(PrepareOptions(source: gz, output: dir.file("o.h5")))) {
            XCTAssertTrue("\($0)".contains("plain.csv.gz: is not gzip data"), "\($0)")
        }
        try gzip(dir.file("bad/fields.csv"))
        try FileManager.default.moveItem(atPath: dir.file("bad/fields.csv.gz"), toPath: dir.file("bad/zipped.csv"))
        XCTAssertThrowsError(try Preparer.prepare(PrepareOptions(source: dir.file("bad/zipped.csv"), output: dir.file("o.h5")))) {
            XCTAssertTrue("\($0)".contains("zipped.csv: is gzip data, not CSV"), "\($0)")
        }
        // A label that is not UTF-8 (it would be repaired into another label's name); a NUL byte
        // in a class folder's text file, as in a CSV.
        let badLabel = try write(Data("text,label\nx,a".utf8) + Data([0xFF]) + Data("\ny,a".utf8) + Data([0xFE]) + Data("\nz,b\n".utf8), "bad/badlabel.csv")
        XCTAssertThrowsError(try Preparer.prepare(PrepareOptions(source: badLabel, output: dir.file("o.h5"), testSplit: 0.4))) {
            XCTAssertTrue("\($0)".contains("badlabel.csv line 2: the label is not valid UTF-8"), "\($0)")
        }
        _ = try write(Data("a b".utf8), "nul/a/1.txt")
        _ = try write(Data("c".utf8) + Data([0]) + Data("d".utf8), "nul/b/1.txt")
        XCTAssertThrowsError(try Preparer.prepare(PrepareOptions(source: dir.file("nul"), output: dir.file("o.h5"), testSplit: 0.4))) {
            XCTAssertTrue("\($0)".contains("nul/b/1.txt: a NUL byte on line 1"), "\($0)")
        }
        // gzip whose deflate data still decodes but whose CRC-32 (or length) is wrong, and one cut
        // short: libarchive's gzip reader checks neither; zlib, which reads gzip here, does.
        let plain = try write(Data(("text,label\n" + (0 ..< 200).map { "review \($0) words,\($0 % 2 == 0 ? "a" : "b")" }.joined(separator: "\n") + "\n").utf8), "gz/ok.csv")
        try gzip(plain)
        let good = try Data(contentsOf: URL(fileURLWithPath: plain + ".gz"))
        XCTAssertNoThrow(try Preparer.prepare(PrepareOptions(source: plain + ".gz", output: dir.file("gz.h5"))))
        // Zero bytes after the last member are padding (gzip and Python's gzip accept them).
        let padded = try write(good + Data(repeating: 0, count: 70_000), "gz/padded.csv.gz")
        XCTAssertNoThrow(try Preparer.prepare(PrepareOptions(source: padded, output: dir.file("gz-padded.h5"))))
        let crc: Data = Data(good.prefix(good.count - 8)) + Data([good[good.count - 8] ^ 1]) + good.suffix(7)
        let size: Data = Data(good.prefix(good.count - 4)) + Data([good[good.count - 4] ^ 1]) + good.suffix(3)
        let junk: Data = good + Data("junk".utf8)
        let padJunk: Data = good + Data(repeating: 0, count: 70_000) + Data([1])
        let damaged: [(String, Data, String)] = [
            ("crc.csv.gz", crc, "crc.csv.gz: cannot read the archive: gzip data is corrupt (incorrect data check)"),
            ("size.csv.gz", size, "size.csv.gz: cannot read the archive: gzip data is corrupt (incorrect length check)"),
            ("cut.csv.gz", Data(good.prefix(good.count / 2)), "cut.csv.gz: cannot read the archive: gzip data is cut off"),
            ("junk.csv.gz", junk, "junk.csv.gz: cannot read the archive: gzip data is followed by bytes that are not gzip"),
            ("padjunk.csv.gz", padJunk, "padjunk.csv.gz: cannot read the archive: gzip data is followed by bytes that are not gzip"),
        ]
        for (name, bytes, expect) in damaged {
            let path = try write(bytes, "gz/" + name)
            XCTAssertThrowsError(try Preparer.prepare(PrepareOptions(source: path, output: dir.file("gz-bad.h5")))) {
                XCTAssertTrue("\($0)".contains(expect), "\(name): \($0)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("gz-bad.h5")))
        }
        // A class folder without files; a folder of class folders but no second class.
        try FileManager.default.createDirectory(atPath: dir.file("cls/a"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.file("cls/b"), withIntermediateDirectories: true)
        _ = try write(Data("text".utf8), "cls/a/1.txt")
        XCTAssertThrowsError(try Preparer.prepare(PrepareOptions(source: dir.file("cls"), output: dir.file("o.h5")))) {
            XCTAssertEqual($0 as? PrepareError, .emptyClassFolder(path: self.dir.file("cls/b")))
        }
        // Outputs that are no file to write: empty, a device (the rename would replace the node).
        for (out, expect) in [("", "-o is empty"), ("/dev/null", "-o /dev/null: is a device, not a file")] {
            XCTAssertThrowsError(try Preparer.prepare(PrepareOptions(source: dir.file("cls"), output: out))) {
                XCTAssertTrue($0 is PrepareError && "\($0)".contains(expect), "\($0)")
            }
        }
        // Options that do not fit the source.
        XCTAssertThrowsError(try Preparer.prepare(PrepareOptions(source: dir.file("cls"), output: dir.file("o.h5"), textColumn: "body"))) {
            XCTAssertTrue("\($0)".contains("--text-column and --label-column apply to csv, tsv and jsonl sources"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("o.h5")))
    }

    /// Class folders that look like IMDB's are class folders (no class dropped); names that are not
    /// UTF-8 and `.txt` entries that are not files are refused, never repaired or waited on; every
    /// entry that is not a row is counted as ignored.
    func testClassFoldersThatOnlyLookLikeIMDBOrHoldOddEntries() throws {
        for s in ["train", "test"] {
            for c in ["pos", "neg", "neutral"] {
                for i in 1 ... 3 { _ = try write(Data("\(c) words \(i)".utf8), "like/\(s)/\(c)/\(i)_7.txt") }
            }
        }
        let report = try prepare(dir.file("like"), "like.h5")
        XCTAssertEqual(report.classNames, ["neg", "neutral", "pos"], "taken for IMDB, neutral/ was dropped")
        XCTAssertThrowsError(try prepare(dir.file("like"), "like2.h5", format: .aclimdb)) {
            XCTAssertEqual($0 as? PrepareError, .notIMDBLayout(path: self.dir.file("like"), folder: "train/neutral"))
        }
        // IMDB's own tree (train/unsup/) with a hidden folder is IMDB; with another folder it is
        // refused (as class folders unsup/ would become a class), naming the folder.
        for s in ["train", "test"] {
            for c in ["pos", "neg"] { for i in 1 ... 3 { _ = try write(Data("\(c) words \(i)".utf8), "imdbish/\(s)/\(c)/\(i)_7.txt") } }
        }
        _ = try write(Data("unlabelled".utf8), "imdbish/train/unsup/0_0.txt")
        _ = try write(Data("{}".utf8), "imdbish/train/.ipynb_checkpoints/x.txt")
        XCTAssertEqual(try prepare(dir.file("imdbish"), "imdbish.h5").format, .aclimdb)
        _ = try write(Data("tmp".utf8), "imdbish/test/tmp/1_1.txt")
        XCTAssertThrowsError(try prepare(dir.file("imdbish"), "imdbish2.h5")) {
            XCTAssertEqual($0 as? PrepareError, .ambiguousIMDB(path: self.dir.file("imdbish"), folder: "test/tmp"))
        }
        // IMDB's names in train/ but others in test/: class folders (test/pos/mine.txt kept).
        for s in ["train", "test"] { for c in ["pos", "neg"] { _ = try write(Data("\(c) one".utf8), "testnames/\(s)/\(c)/1_7.txt") } }
        _ = try write(Data("my own review".utf8), "testnames/test/pos/mine.txt")
        let testNames = try prepare(dir.file("testnames"), "testnames.h5")
        XCTAssertEqual(testNames.format, .folders)
        XCTAssertEqual(try TextDataset(path: dir.file("testnames.h5")).split(.test).count, 3)
        // IMDB's file names beside other names: class folders, every file a row.
        for s in ["train", "test"] {
            for c in ["pos", "neg"] {
                _ = try write(Data("\(c) one".utf8), "mixed/\(s)/\(c)/1_7.txt")
                _ = try write(Data("\(c) two".utf8), "mixed/\(s)/\(c)/review_a.txt")
            }
        }
        let mixed = try prepare(dir.file("mixed"), "mixed.h5")
        XCTAssertEqual(mixed.format, .folders)
        let m = try TextDataset(path: dir.file("mixed.h5"))
        XCTAssertEqual([m.split(.train).count, m.split(.test).count], [4, 4])

        // Not UTF-8: a class folder's name (a label), a .txt file's name (it would be opened under
        // its repaired name).
        for c in ["a", "b"] { for i in 1 ... 3 { _ = try write(Data("\(c)\(i)".utf8), "names/\(c)/\(i).txt") } }
        let root = Array(dir.file("names").utf8)
        func c(_ bytes: [UInt8]) -> [CChar] { bytes.map { CChar(bitPattern: $0) } + [0] }
        let classBytes = root + Array("/c".utf8) + [0xFF], fileBytes = root + Array("/a/f".utf8) + [0xFE] + Array(".txt".utf8)
        func touch(_ file: [UInt8]) {
            let fd = creat(c(file), 0o644)
            XCTAssertGreaterThanOrEqual(fd, 0)
            XCTAssertEqual(Glibc.write(fd, "w", 1), 1)
            close(fd)
        }
        XCTAssertEqual(mkdir(c(classBytes), 0o755), 0)
        touch(classBytes + Array("/1.txt".utf8))
        XCTAssertThrowsError(try prepare(dir.file("names"), "n.h5", testSplit: 0.3)) {
            XCTAssertEqual($0 as? PrepareError, .badName(path: String(decoding: classBytes, as: UTF8.self), what: "a class folder's name (its label)"), "\($0)")
        }
        XCTAssertEqual(unlink(c(classBytes + Array("/1.txt".utf8))), 0)
        XCTAssertEqual(rmdir(c(classBytes)), 0)
        touch(fileBytes)
        XCTAssertThrowsError(try prepare(dir.file("names"), "n.h5", testSplit: 0.3)) {
            XCTAssertEqual($0 as? PrepareError, .badName(path: String(decoding: fileBytes, as: UTF8.self), what: "a file's name"), "\($0)")
        }
        XCTAssertEqual(unlink(c(fileBytes)), 0)
        // A FIFO named .txt: refused at once (opening it would wait for a writer forever).
        XCTAssertEqual(mkfifo(dir.file("names/a/fifo.txt"), 0o644), 0)
        XCTAssertThrowsError(try prepare(dir.file("names"), "n.h5", testSplit: 0.3)) {
            XCTAssertEqual($0 as? PrepareError, .unreadable(path: self.dir.file("names/a/fifo.txt"), detail: "not a regular file"))
        }
        XCTAssertEqual(unlink(dir.file("names/a/fifo.txt")), 0)
        // A class folder's name with a line break (its label).
        try FileManager.default.createDirectory(atPath: dir.file("names/two\nlines"), withIntermediateDirectories: true)
        _ = try write(Data("t".utf8), "names/two\nlines/1.txt")
        XCTAssertThrowsError(try prepare(dir.file("names"), "n.h5", testSplit: 0.3)) {
            XCTAssertEqual($0 as? PrepareError, .badRecord(path: self.dir.file("names/two\nlines"), line: 0,
                                                           detail: "the class folder's name (its label) holds the control character U+000A"))
        }
        try FileManager.default.removeItem(atPath: dir.file("names/two\nlines"))
        // Ignored and counted: a hidden class folder, a file beside the class folders, and with
        // both splits, a folder beside train/ and test/.
        _ = try write(Data("h".utf8), "names/.hidden/1.txt")
        _ = try write(Data("r".utf8), "names/readme.txt")
        XCTAssertEqual(try prepare(dir.file("names"), "n.h5", testSplit: 0.3).ignoredEntries, 2)
        _ = try write(Data("o".utf8), "mixed/other/x/1.txt")
        XCTAssertEqual(try prepare(dir.file("mixed"), "mixed.h5").ignoredEntries, 1)
    }

    func testMoreThan127ClassesAreStoredAsInt32() throws {
        var rows = ["text,label"]
        for k in 0 ..< 600 { rows.append("word\(k) shared,c\(k % 150)") }
        let path = try write(Data(rows.joined(separator: "\n").utf8), "many.csv")
        let r = try prepare(path, "many.h5", testSplit: 0.05)
        XCTAssertEqual(r.classNames.count, 150)
        let f = try H5File.open(dir.file("many.h5"))
        XCTAssertEqual(try f.dataset("train/y").elementType, .int32)
        let d = try TextDataset(path: dir.file("many.h5"))
        let labels = try d.split(.train).labels()
        XCTAssertEqual(Set(labels).count, 150)
    }
}
