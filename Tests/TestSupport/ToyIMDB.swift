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
