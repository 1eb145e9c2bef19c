import XCTest
import TestSupport
@testable import TextData

/// The real `aclImdb_v1.tar.gz`: `$IMDB_TARBALL`, else the optional local copy beside the repository
/// (skipped, and said so, when neither exists). Every
/// pinned figure was cross-checked against Launch/py_tokenize_reference.py, an independent Python
/// implementation: its x, y and vocabulary came out byte-identical to the dataset file.
final class RealDataTests: XCTestCase {
    static var tarball: String {
        if let p = ProcessInfo.processInfo.environment["IMDB_TARBALL"], !p.isEmpty { return p }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("../shared/data/aclImdb_v1.tar.gz").standardized.path
    }

    /// `h = h·1000003 + v (mod 2⁶⁴)` over the ids in row order (the Python reference computes the same).
    private func digest(_ x: [Int32]) -> UInt64 {
        x.withUnsafeBufferPointer { p in
            var h: UInt64 = 0
            for v in p { h = h &* 1_000_003 &+ UInt64(bitPattern: Int64(v)) }
            return h
        }
    }

    func testTheRealTarball() throws {
        guard FileManager.default.fileExists(atPath: Self.tarball) else {
            print("RealDataTests: SKIPPED: \(Self.tarball) not found")
            throw XCTSkip("\(Self.tarball) not found")
        }
        let dir = try TempDir("imdb-real")
        defer { dir.remove() }
        let out = dir.file("imdb.h5")
        let report = try Preparer.prepare(PrepareOptions(source: Self.tarball, output: out))
        print("RealDataTests: prepare took \(report.seconds) s (this build)")
        XCTAssertEqual(report.train.rows, 25_000)
        XCTAssertEqual(report.test.rows, 25_000)
        XCTAssertEqual(report.train.classCounts + report.test.classCounts,
                       [12_500, 12_500, 12_500, 12_500])
        XCTAssertEqual(report.train.tokens, 5_839_241)
        XCTAssertEqual(report.test.tokens, 5_707_388)
        XCTAssertEqual(report.distinctWords, 81_373)
        XCTAssertEqual(report.train.invalidUTF8Bytes + report.test.invalidUTF8Bytes, 0)
        XCTAssertEqual(report.ignoredEntries, 2, "README and imdb.vocab")

        let d = try TextDataset(path: out)
        XCTAssertEqual(d.numWords, 10_000)
        XCTAssertEqual(d.maxlen, 500)
        XCTAssertEqual(d.source, "aclImdb_v1.tar.gz")
        XCTAssertEqual(Array(d.vocabulary.words.prefix(10)), ["the", "and", "a", "of", "to", "is", "in", "it", "i", "this"])

        // Three reviews, their first ids as the Python reference prints them (`--show`).
        let pinned: [(Split, Int8, Int32, tokens: Int, first: [Int32])] = [
            (.train, 0, 10627, 252, [1, 12, 1502, 14, 90, 7, 4, 82, 36, 103, 13, 21]),
            (.train, 1, 0, 138, [1, 2, 310, 9, 6, 1073, 211, 11, 2186, 32, 4, 171]),   // "bromwell high is a cartoon…"
            (.test, 0, 0, 168, [1, 280, 173, 440, 2, 47, 3336, 45, 6, 19, 17, 229]),   // "once again mr costner…"
        ]
        for (s, label, id, tokens, first) in pinned {
            let split = d.split(s)
            let ids = try XCTUnwrap(split.origins()).ids
            let labels = try split.labels()
            let r = try XCTUnwrap(ids.indices.first { ids[$0] == id && labels[$0] == label })
            let row = Array(try split.read(rows: [r]).x)
            XCTAssertEqual(Array(row.prefix(500 - tokens - 1)), [Int32](repeating: 0, count: 500 - tokens - 1), "\(s) \(id): padding")
            XCTAssertEqual(Array(row.dropFirst(500 - tokens - 1).prefix(12)), first, "\(s) \(id)")
        }
        XCTAssertEqual(try d.split(.train).origin(row: 0)?.id, 10627, "train row 0 (seed 113)")

        // Every id of both splits, against the Python reference's digest of its own arrays.
        let trainX = try d.split(.train).read(rows: 0 ..< 25_000).x
        XCTAssertEqual(digest(trainX), 0x480E_461B_B652_DEDD)
        let testX = try d.split(.test).read(rows: 0 ..< 25_000).x
        XCTAssertEqual(digest(testX), 0xF867_B3F3_4C61_30B2)
    }
}
