import Foundation

/// A small IMDB-shaped folder (`aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`) whose sentiment
/// is learnable: positive reviews lean on positive words, negative ones on negative words.
public enum ToyIMDB {
    static let positive = ["great", "wonderful", "loved", "superb", "brilliant", "moving", "fun", "best"]
    static let negative = ["awful", "boring", "hated", "terrible", "worst", "dull", "waste", "poor"]
    static let neutral = ["the", "movie", "film", "plot", "actor", "scene", "story", "a", "and", "it", "was",
                          "this", "of", "to", "in", "ending", "cast", "music", "time", "director's", "don't"]

    /// Writes the folder under `root` and returns the path of its `aclImdb` folder.
    @discardableResult
    public static func write(at root: String, perLabel: Int, seed: UInt64 = 7) throws -> String {
        var state = seed
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        let base = root + "/aclImdb"
        for split in ["train", "test"] {
            for (label, words) in [("pos", positive), ("neg", negative)] {
                let dir = "\(base)/\(split)/\(label)"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                for i in 0 ..< perLabel {
                    var text: [String] = []
                    for _ in 0 ..< (8 + next(30)) {
                        text.append(next(4) == 0 ? words[next(words.count)] : neutral[next(neutral.count)])
                    }
                    let rating = label == "pos" ? 7 + next(4) : 1 + next(4)
                    let review = text.joined(separator: " ").capitalized + ".<br /><br />The End!"
                    try review.write(toFile: "\(dir)/\(i)_\(rating).txt", atomically: false, encoding: .utf8)
                }
            }
        }
        return base
    }
}

/// A synthetic IMDB prepared by the real `rnn-dist prepare` (num_words 60, maxlen 40), shared by
/// the tests of one class, and the small training flags they use (about a second a run in debug).
public final class PreparedToyIMDB: @unchecked Sendable {
    public let folder: TempDir
    /// The dataset file, or "" when it could not be prepared (the tests then fail saying so).
    public let dataset: String
    public static let trainFlags = ["--limit", "320", "--batch-size", "32", "--units", "8", "--embed-dim", "8", "--seed", "5"]

    public init?(_ label: String, perLabel: Int = 200) {
        guard let dir = try? TempDir(label), let source = try? ToyIMDB.write(at: dir.path, perLabel: perLabel) else { return nil }
        folder = dir
        let r = try? Subprocess.rnnDist(["prepare", "--source", source, "-o", dir.file("imdb.h5"), "--num-words", "60", "--maxlen", "40"])
        if r?.status != 0 { print("prepare failed: \(r?.stderr ?? "")") }
        dataset = r?.status == 0 ? dir.file("imdb.h5") : ""
    }

    public func remove() { folder.remove() }
}
