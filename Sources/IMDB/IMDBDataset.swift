import HDF5

/// A dataset file written by `prepare` (docs/DATASET.md), opened for training, evaluation and prediction.
///
/// Opening checks everything that is cheap to check: the completion mark, `format`,
/// `format_version`, the tokenizer settings, the vocabulary against `num_words`, and each split's
/// shapes and element types. Token ids and labels are checked as rows are read (`IMDBSplit.read`),
/// so a damaged value is an error naming the file, dataset, row and value, never a wrong number.
public final class IMDBDataset {
    /// The root `format` attribute of every dataset file.
    public static let format = "rnn-dist-imdb"
    /// The layout version written and read by this code.
    static let formatVersion = 1
    /// Largest `maxlen` accepted from a file.
    public static let maxMaxlen = 1 << 20

    let path: String
    /// Ids run over `0 ..< numWords`.
    public let numWords: Int
    /// Row length.
    public let maxlen: Int
    /// The seed of the row permutation.
    public let seed: Int64
    /// File name of the raw source.
    public let source: String
    /// `Tokenizer.version` of the code that wrote the file.
    public let tokenizer: String
    /// The word of each id (`vocabulary.numWords == numWords`).
    public let vocabulary: Vocabulary
    private let file: H5File
    private var splits: [Split: IMDBSplit] = [:]

    /// Opens and validates `path` (see the type's description).
    public init(path: String) throws {
        self.path = path
        let file = try H5File.open(path, requireComplete: true)
        self.file = file
        let found = file.hasAttribute("format") ? ((try? file.stringAttribute("format")) ?? "(not a string)") : ""
        guard found == Self.format else { throw DatasetError.wrongFormat(path: path, found: found) }
        let version = try file.intAttribute("format_version")
        guard version == Self.formatVersion else { throw DatasetError.unsupportedVersion(path: path, found: version) }

        func int(_ name: String, _ range: ClosedRange<Int64>) throws -> Int {
            let v = try file.intAttribute(name)
            guard range.contains(v) else {
                throw DatasetError.badAttribute(path: path, name: name, detail: "\(v) is outside \(range)")
            }
            return Int(v)
        }
        numWords = try int("num_words", 4 ... Int64(Int32.max))
        maxlen = try int("maxlen", 1 ... Int64(Self.maxMaxlen))
        _ = try int("index_from", Int64(Vocabulary.indexFrom) ... Int64(Vocabulary.indexFrom))
        _ = try int("start_char", Int64(Vocabulary.startID) ... Int64(Vocabulary.startID))
        _ = try int("oov_char", Int64(Vocabulary.oovID) ... Int64(Vocabulary.oovID))
        seed = try file.intAttribute("seed")
        source = try file.stringAttribute("source")
        tokenizer = try file.stringAttribute("tokenizer")
        vocabulary = try Vocabulary.read(from: file, numWords: numWords)
        for s in Split.allCases {
            splits[s] = try IMDBSplit(s, file: file, numWords: numWords, maxlen: maxlen)
        }
    }

    /// One split's rows.
    public func split(_ s: Split) -> IMDBSplit { splits[s]! }

    /// A raw review as a model input row, tokenized and encoded exactly as the file's rows were.
    func encode(_ text: String) -> [Int32] { vocabulary.encode(text, maxlen: maxlen) }
}

/// Rows read from a split: `x` is (rows, maxlen) row-major, `y` is (rows).
public struct IMDBRows: Sendable {
    public let x: [Int32]
    public let y: [Int8]
    let maxlen: Int
    var count: Int { y.count }
    /// Row `i`'s ids.
    func row(_ i: Int) -> ArraySlice<Int32> { x[(i * maxlen) ..< ((i + 1) * maxlen)] }
}

/// `/train` or `/test` of a dataset file: `x` int32 (N, maxlen), `y` int8 (N), and, when present,
/// `review_id` int32 (N) and `rating` int8 (N) naming each row's source file `<id>_<rating>.txt`.
public final class IMDBSplit {
    let split: Split
    /// Rows, N.
    public let count: Int
    public let maxlen: Int
    let numWords: Int
    private let x: H5Dataset, y: H5Dataset
    private let reviewIDs: H5Dataset?, ratings: H5Dataset?

    init(_ split: Split, file: H5File, numWords: Int, maxlen: Int) throws {
        self.split = split
        self.numWords = numWords
        self.maxlen = maxlen
        let g = try file.group(split.rawValue)
        let path = file.path
        func open(_ name: String, _ type: H5ElementType) throws -> H5Dataset {
            let d = try g.dataset(name)
            guard d.elementType == type else {
                throw DatasetError.wrongType(path: path, object: d.name, expected: type.rawValue, found: d.elementType.rawValue)
            }
            return d
        }
        let x = try open("x", .int32)
        let n = x.shape[0]
        guard x.shape == [n, maxlen] else {
            throw DatasetError.wrongShape(path: path, object: x.name, expected: "[N, \(maxlen)] (maxlen \(maxlen))", found: x.shape)
        }
        let y = try open("y", .int8)
        guard y.shape == [n] else {
            throw DatasetError.wrongShape(path: path, object: y.name, expected: "[\(n)] (one label per row of x)", found: y.shape)
        }
        self.x = x
        self.y = y
        count = n
        func optional(_ name: String, _ type: H5ElementType) throws -> H5Dataset? {
            guard g.exists(name) else { return nil }
            let d = try open(name, type)
            guard d.shape == [n] else {
                throw DatasetError.wrongShape(path: path, object: d.name, expected: "[\(n)]", found: d.shape)
            }
            return d
        }
        reviewIDs = try optional("review_id", .int32)
        ratings = try optional("rating", .int8)
    }

    /// Reads rows `range`, checking every id and label.
    func read(rows range: Range<Int>) throws -> IMDBRows {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw DatasetError.rowOutOfRange(path: x.path, object: x.name, row: range.lowerBound < 0 ? range.lowerBound : range.upperBound - 1, rows: count)
        }
        let rows = IMDBRows(x: try x.readRows(range), y: try y.readRows(range), maxlen: maxlen)
        try check(rows) { range.lowerBound + $0 }
        return rows
    }

    /// Reads an arbitrary set of rows, in the order given (runs of consecutive rows are read
    /// together), checking every id and label.
    public func read(rows indices: [Int]) throws -> IMDBRows {
        for r in indices where r < 0 || r >= count {
            throw DatasetError.rowOutOfRange(path: x.path, object: x.name, row: r, rows: count)
        }
        let rows = IMDBRows(x: try x.readRows(indices), y: try y.readRows(indices), maxlen: maxlen)
        try check(rows) { indices[$0] }
        return rows
    }

    /// All labels, checked (0 = negative, 1 = positive).
    func labels() throws -> [Int8] {
        let all: [Int8] = try y.read()
        for (r, v) in all.enumerated() where v != 0 && v != 1 {
            throw DatasetError.badLabel(path: y.path, object: y.name, row: r, value: v)
        }
        return all
    }

    /// The source review id and rating of row `r` (`<id>_<rating>.txt`), when the file stores them.
    func origin(row r: Int) throws -> (id: Int32, rating: Int8)? {
        guard let reviewIDs, let ratings else { return nil }
        guard r >= 0 && r < count else { throw DatasetError.rowOutOfRange(path: x.path, object: x.name, row: r, rows: count) }
        let id: [Int32] = try reviewIDs.readRows(r ..< r + 1)
        let rating: [Int8] = try ratings.readRows(r ..< r + 1)
        return (id[0], rating[0])
    }

    /// Every row's source review id and rating (`<id>_<rating>.txt`), when the file stores them.
    func origins() throws -> (ids: [Int32], ratings: [Int8])? {
        guard let reviewIDs, let ratings else { return nil }
        return (try reviewIDs.read(), try ratings.read())
    }

    /// Reads every row once, in slabs, checking ids and labels; returns the rows checked.
    @discardableResult
    func validateAll(slabRows: Int = 2048) throws -> Int {
        var r = 0
        while r < count {
            _ = try read(rows: r ..< min(count, r + slabRows))
            r += slabRows
        }
        return count
    }

    /// `fileRow(i)` is the file row of `rows` row i, for messages.
    private func check(_ rows: IMDBRows, fileRow: (Int) -> Int) throws {
        let limit = Int32(clamping: numWords)
        try rows.x.withUnsafeBufferPointer { p in
            for (k, v) in p.enumerated() where v < 0 || v >= limit {
                throw DatasetError.tokenOutOfRange(path: x.path, object: x.name, row: fileRow(k / maxlen),
                                                   column: k % maxlen, id: v, numWords: numWords)
            }
        }
        for (i, v) in rows.y.enumerated() where v != 0 && v != 1 {
            throw DatasetError.badLabel(path: y.path, object: y.name, row: fileRow(i), value: v)
        }
    }
}
