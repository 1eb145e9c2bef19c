/// What `rnn-dist inspect` reports about a dataset file beyond its raw HDF5 layout: splits,
/// shapes, vocabulary, classes and their balance, and one row decoded back into words. Building it validates
/// every row (token ids and labels), so a summary exists only for a valid dataset.
public struct DatasetSummary: Sendable {
    public struct SplitInfo: Sendable {
        let name: String
        let rows, maxlen: Int
        /// Rows per class, in class order.
        let classCounts: [Int]
    }
    /// One row decoded back into words.
    public struct Sample: Sendable {
        let split: String
        let row, label: Int
        /// The source file `<id>_<rating>.txt`, when the dataset stores it.
        let reviewID: Int?
        let rating: Int?
        /// The row's words, padding left out (`<start>`, `<oov>` mark reserved ids).
        let words: [String]
        let padding: Int
    }

    let numWords, maxlen, vocabularySize: Int
    let seed: Int64
    let source, tokenizer: String
    let firstWords: [String]
    let classNames: [String]
    let splits: [SplitInfo]
    let sample: Sample?

    /// Opens `path` as a dataset and reads it whole (validating every row).
    public init(path: String, firstWords count: Int = 10) throws {
        let data = try TextDataset(path: path)
        numWords = data.numWords
        maxlen = data.maxlen
        seed = data.seed
        source = data.source
        tokenizer = data.tokenizer
        vocabularySize = data.vocabulary.words.count
        firstWords = Array(data.vocabulary.words.prefix(count))
        classNames = data.classNames
        var splits: [SplitInfo] = []
        for s in Split.allCases {
            let split = data.split(s)
            try split.validateAll()
            var counts = [Int](repeating: 0, count: classNames.count)
            for y in try split.labels() { counts[Int(y)] += 1 }
            splits.append(SplitInfo(name: s.rawValue, rows: split.count, maxlen: split.maxlen, classCounts: counts))
        }
        self.splits = splits
        let train = data.split(.train)
        if train.count > 0 {
            let rows = try train.read(rows: 0 ..< 1)
            let origin = try train.origin(row: 0)
            let ids = rows.row(0)
            sample = Sample(split: "train", row: 0, label: Int(rows.y[0]), reviewID: origin.map { Int($0.id) },
                            rating: origin.map { Int($0.rating) }, words: data.vocabulary.decode(ids),
                            padding: ids.prefix { $0 == Vocabulary.padID }.count)
        } else {
            sample = nil
        }
    }

    /// Text lines for the terminal; the sample review is cut after `maxWords` words.
    public func lines(maxWords: Int = 60) -> [String] {
        var out = ["dataset: num_words \(numWords), maxlen \(maxlen), seed \(seed), source \(source)",
                   "  tokenizer: \(tokenizer)",
                   "  classes (\(classNames.count)): \(classNames.enumerated().map { "\($0) \($1)" }.joined(separator: ", "))"]
        for s in splits {
            let balance = zip(s.classCounts, classNames).map { "\($0) \($1)" }.joined(separator: " / ")
            out.append("  \(s.name): \(s.rows) rows × \(s.maxlen) ids; labels \(balance)")
        }
        out.append("  vocabulary: \(vocabularySize) words (ids 4..<\(numWords)); first: \(firstWords.joined(separator: " "))")
        if let s = sample {
            let from = s.reviewID.map { " = \(s.split)/\(classNames[s.label])/\($0)_\(s.rating ?? 0).txt" } ?? ""
            let text = s.words.prefix(maxWords).joined(separator: " ") + (s.words.count > maxWords ? " …" : "")
            out.append("  \(s.split) row \(s.row) (label \(s.label) \(classNames[s.label])\(from), \(s.padding) padding): \(text)")
        }
        out.append("  all rows checked: token ids in 0..<\(numWords), labels in 0..<\(classNames.count)")
        return out
    }

    /// The same, as a JSON-ready dictionary (`JSONSerialization`).
    public var json: [String: Any] {
        var d: [String: Any] = [
            "num_words": numWords, "maxlen": maxlen, "seed": seed, "source": source, "tokenizer": tokenizer,
            "vocabulary_size": vocabularySize, "first_words": firstWords, "valid": true, "class_names": classNames,
            "splits": splits.map { ["name": $0.name, "rows": $0.rows, "maxlen": $0.maxlen,
                                    "class_counts": $0.classCounts] as [String: Any] },
        ]
        if let s = sample {
            var o: [String: Any] = ["split": s.split, "row": s.row, "label": s.label, "words": s.words, "padding": s.padding]
            if let id = s.reviewID { o["review_id"] = id }
            if let r = s.rating { o["rating"] = r }
            d["sample"] = o
        }
        return d
    }
}
