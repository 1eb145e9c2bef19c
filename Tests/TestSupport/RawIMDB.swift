import Foundation

/// One raw review file of a synthetic IMDB source: `<split>/<label>/<id>_<rating>.txt`.
public struct RawReview: Sendable {
    public var split: String
    public var label: String
    public var id: Int
    public var rating: Int
    public var bytes: [UInt8]

    public init(_ split: String, _ label: String, _ id: Int, rating: Int? = nil, _ text: String) {
        self.init(split, label, id, rating: rating, bytes: Array(text.utf8))
    }

    public init(_ split: String, _ label: String, _ id: Int, rating: Int? = nil, bytes: [UInt8]) {
        self.split = split
        self.label = label
        self.id = id
        self.rating = rating ?? (label == "pos" ? 8 : 2)
        self.bytes = bytes
    }

    public var relativePath: String { "\(split)/\(label)/\(id)_\(rating).txt" }
}

/// Writes exact, hand-chosen raw IMDB sources (folder or tarball) for tests of `prepare`, with the
/// distractors of the real tarball (README, imdb.vocab, urls, unsup/) beside the reviews.
public enum RawIMDB {
    /// Writes `root/aclImdb/…` and returns the `aclImdb` path. `splits` lists the split folders
    /// created even when empty.
    @discardableResult
    public static func writeFolder(_ reviews: [RawReview], at root: String, distractors: Bool = true,
                                   splits: [String] = ["train", "test"]) throws -> String {
        let fm = FileManager.default
        let base = root + "/aclImdb"
        for s in splits {
            for l in ["pos", "neg"] { try fm.createDirectory(atPath: "\(base)/\(s)/\(l)", withIntermediateDirectories: true) }
        }
        for r in reviews {
            let dir = "\(base)/\(r.split)/\(r.label)"
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try Data(r.bytes).write(to: URL(fileURLWithPath: "\(base)/\(r.relativePath)"))
        }
        if distractors {
            try fm.createDirectory(atPath: base + "/train/unsup", withIntermediateDirectories: true)
            try "Unlabelled review, must be ignored. zzzunsup".write(toFile: base + "/train/unsup/0_0.txt", atomically: false, encoding: .utf8)
            try "http://www.imdb.com/title/tt0000001/usercomments".write(toFile: base + "/train/urls_pos.txt", atomically: false, encoding: .utf8)
            try "the\nand\nzzzvocab\n".write(toFile: base + "/imdb.vocab", atomically: false, encoding: .utf8)
            try "Large Movie Review Dataset v1.0 zzzreadme".write(toFile: base + "/README", atomically: false, encoding: .utf8)
        }
        return base
    }

    /// Packs `folder` (an `aclImdb` folder) into `tarball` with `tar` (`-z`: gzip'ed, as the
    /// official `aclImdb_v1.tar.gz`).
    public static func writeTarball(folder: String, to tarball: String, gzip: Bool = true) throws {
        let url = URL(fileURLWithPath: folder)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        p.arguments = [gzip ? "-czf" : "-cf", tarball, "-C", url.deletingLastPathComponent().path, url.lastPathComponent]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw NSError(domain: "RawIMDB", code: Int(p.terminationStatus),
                          userInfo: [NSLocalizedDescriptionKey: "tar failed for \(folder)"])
        }
    }
}
