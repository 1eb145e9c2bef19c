import Foundation

/// What `rnn-dist prepare` is asked to do.
public struct PrepareOptions: Sendable {
    /// The training source (or both splits): see `SourceFormat`.
    var source: String
    /// The dataset file to write (atomically).
    var output: String
    /// Ids run over `0 ..< numWords` (≥ 4); rarer words become 2 (Keras `num_words`).
    var numWords: Int
    /// Row length: each text's last `maxlen` ids, left-padded with 0 (≥ 1).
    var maxlen: Int
    /// Seed of the test-split draw and the row permutations (docs/DATASET.md).
    var seed: UInt64
    /// The source's format; nil: from the path (`SourceFormat.detect`).
    var format: SourceFormat?
    /// CSV/TSV column names, JSON Lines keys.
    var textColumn: String
    var labelColumn: String
    /// A separate test set, of the same format.
    var testSource: String?
    /// The fraction of rows drawn as the test set when the source has no test split; nil: 0.2.
    var testSplit: Double?

    public init(source: String, output: String, numWords: Int = 10_000, maxlen: Int = 500, seed: UInt64 = 113,
                format: SourceFormat? = nil, textColumn: String = "text", labelColumn: String = "label",
                testSource: String? = nil, testSplit: Double? = nil) {
        self.source = source
        self.output = output
        self.numWords = numWords
        self.maxlen = maxlen
        self.seed = seed
        self.format = format
        self.textColumn = textColumn
        self.labelColumn = labelColumn
        self.testSource = testSource
        self.testSplit = testSplit
    }

    /// The test fraction used when the source has no test split of its own.
    static let defaultTestSplit = 0.2
}

/// What `prepare` wrote.
public struct PrepareReport: Sendable {
    public struct SplitReport: Sendable {
        var rows = 0
        /// Rows per class, in class order.
        var classCounts: [Int] = []
        /// Tokens over all the split's texts, before truncation.
        var tokens = 0
        /// Texts longer than `maxlen` ids (start mark included), cut at the front.
        var truncated = 0
        /// Bytes that were not well-formed UTF-8, replaced by separators.
        var invalidUTF8Bytes = 0
        /// Texts holding at least one such byte.
        var reviewsWithInvalidUTF8 = 0
    }
    var train = SplitReport()
    var test = SplitReport()
    /// The class names, in class-index order.
    var classNames: [String] = []
    /// The format read, and the test fraction drawn (nil: the source had a test split).
    var format = SourceFormat.aclimdb
    var testSplit: Double?
    /// Distinct words of the training split (before the `num_words` cut).
    var distinctWords = 0
    /// The `num_words` stored: the requested one, or fewer when the training split has fewer words.
    var numWords = 0
    var requestedNumWords = 0
    var maxlen = 0
    var seed: UInt64 = 0
    var output = ""
    var source = ""
    /// Archive or folder entries that are not labelled texts (README, imdb.vocab, unsup/…).
    var ignoredEntries = 0
    var seconds = 0.0

    /// A few lines for the terminal.
    public var summary: [String] {
        func split(_ name: String, _ s: SplitReport) -> String {
            var classes = zip(s.classCounts, classNames).prefix(12).map { "\($0) \($1)" }.joined(separator: ", ")
            if classNames.count > 12 { classes += ", …" }
            return "\(name): \(s.rows) \(format == .aclimdb ? "reviews" : "rows") (\(classes)), \(s.tokens) tokens, "
                + "\(s.truncated) cut to maxlen \(maxlen)"
        }
        var lines: [String] = []
        if format != .aclimdb {
            var l = "\(format.rawValue): \(classNames.count) classes"
            if let f = testSplit { l += "; test rows drawn from the source (--test-split \(f))" }
            lines.append(l)
        }
        lines += [split("train", train), split("test", test)]
        var vocab = "vocabulary: \(distinctWords) distinct training words; ids 4..<\(numWords) keep the \(numWords - 4) most frequent"
        if numWords < requestedNumWords { vocab += " (all of them: --num-words \(requestedNumWords) asked for more)" }
        lines.append(vocab)
        if ignoredEntries > 0 {
            lines.append("ignored: \(ignoredEntries) " + (format == .aclimdb
                ? "archive or folder entries that are not reviews (unsup/, urls_*.txt, imdb.vocab, …)"
                : "entries that are not .txt files of a class folder (other names, hidden names, deeper folders)"))
        }
        let bad = train.invalidUTF8Bytes + test.invalidUTF8Bytes
        lines.append("invalid UTF-8: \(bad) bytes replaced in \(train.reviewsWithInvalidUTF8 + test.reviewsWithInvalidUTF8) \(format == .aclimdb ? "reviews" : "rows")")
        lines.append(String(format: "wrote %@ in %.2f s (seed %llu)", output, seconds, seed))
        return lines
    }
}
