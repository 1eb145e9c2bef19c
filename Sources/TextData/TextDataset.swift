import HDF5

/// A dataset file written by `prepare` (docs/DATASET.md), opened for training, evaluation and prediction.
/// (The format keeps its first name, `rnn-dist-imdb`, so that every file written so far still reads.)
///
/// Opening checks everything that is cheap to check: the completion mark, `format`,
/// `format_version`, the tokenizer settings, the vocabulary against `num_words`, and each split's
/// shapes and element types. Token ids and labels are checked as rows are read (`DatasetSplit.read`),
/// so a damaged value is an error naming the file, dataset, row and value, never a wrong number.
public final class TextDataset {
    /// The root `format` attribute of every dataset file.
    public static let format = "rnn-dist-imdb"
    /// The root attribute holding `trainChecksum`.
    static let trainChecksumName = "train_checksum"

    /// FNV-1a (64 bits) over the rows' ids and labels as 32-bit words, in hex.
    static func checksum(x: [Int32], y: [Int32]) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for v in x { h = (h ^ UInt64(UInt32(bitPattern: v))) &* 0x100_0000_01B3 }
        for v in y { h = (h ^ UInt64(UInt32(bitPattern: v))) &* 0x100_0000_01B3 }
        return String(h, radix: 16)
    }
    /// The layout version written and read by this code.
    static let formatVersion = 1
    /// Name of the class-name list (`/class_names`); a file without one has IMDB's two classes.
    public static let classNamesName = "class_names"
    /// The classes of a file written before class names were stored.
    public static let imdbClassNames = ["neg", "pos"]
    /// Largest `maxlen` accepted from a file.
    public static let maxMaxlen = 1 << 20

    let path: String
    /// Ids run over `0 ..< numWords`.
    public let numWords: Int
    /// Row length.
    public let maxlen: Int
    /// The seed of the row permutation.
    public let seed: Int64
    /// A checksum of the training rows (`checksum(x:y:)` of /train/x and /train/y), which a run
    /// records: another dataset of the same size and seed (a re-ordered source) has other rows.
    /// Nil for a file written before it was stored.
    public let trainChecksum: String?
    /// File name of the raw source.
    public let source: String
    /// `Tokenizer.version` of the code that wrote the file.
    public let tokenizer: String
    /// The word of each id (`vocabulary.numWords == numWords`).
    public let vocabulary: Vocabulary
    /// The name of each class; labels are indices into it.
    public let classNames: [String]
    private let file: H5File
    private var splits: [Split: DatasetSplit] = [:]

    /// Opens and validates `path` (see the type's description).
    public init(path: String) throws {
        self.path = path
        let file = try H5File.open(path, requireComplete: true)
        self.file = file
        // A mark that cannot be read (a variable-length string: h5py's default) says why, as every reader does.
        let found = try file.attributeExists("format") ? try file.stringAttribute("format") : ""
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
        // Files written before it have none; one of another type is damage, not a missing guard.
        trainChecksum = file.hasAttribute(Self.trainChecksumName) ? try file.stringAttribute(Self.trainChecksumName) : nil
        source = try file.stringAttribute("source")
        tokenizer = try file.stringAttribute("tokenizer")
        vocabulary = try Vocabulary.read(from: file, numWords: numWords)
        classNames = try Self.readClassNames(file)
        for s in Split.allCases {
            splits[s] = try DatasetSplit(s, file: file, numWords: numWords, maxlen: maxlen, classes: classNames.count)
        }
    }

    /// `/class_names` (2 ≤ K ≤ `PrepareLimits.maxClasses` distinct names, as `num_classes` says),
    /// or neg, pos when the file has none.
    private static func readClassNames(_ file: H5File) throws -> [String] {
        guard file.exists(classNamesName) else { return imdbClassNames }
        let path = file.path, object = "/" + classNamesName
        let count = try file.intAttribute("num_classes")
        guard count >= 2 && count <= Int64(PrepareLimits.maxClasses) else {
            throw DatasetError.badAttribute(path: path, name: "num_classes", detail: "\(count) is outside 2...\(PrepareLimits.maxClasses)")
        }
        let offsets = try file.group(classNamesName).dataset("offsets")
        guard offsets.shape == [Int(count) + 1] else {
            throw DatasetError.wrongShape(path: path, object: object + "/offsets", expected: "[\(count + 1)] for num_classes \(count)", found: offsets.shape)
        }
        let names = try file.readStringList(classNamesName)
        guard Set(names).count == names.count else {
            throw DatasetError.badVocabulary(path: path, object: object, detail: "a class name occurs twice")
        }
        if let problem = names.lazy.compactMap(ClassName.problem).first {
            throw DatasetError.badVocabulary(path: path, object: object, detail: problem)
        }
        return names
    }

    /// One split's rows.
    public func split(_ s: Split) -> DatasetSplit { splits[s]! }

    /// A raw review as a model input row, tokenized and encoded exactly as the file's rows were.
    func encode(_ text: String) -> [Int32] { vocabulary.encode(text, maxlen: maxlen) }
}

/// Rows read from a split: `x` is (rows, maxlen) row-major, `y` is (rows), class indices.
public struct LabelledRows: Sendable {
    public let x: [Int32]
    public let y: [Int32]
    let maxlen: Int
    var count: Int { y.count }
    /// Row `i`'s ids.
    func row(_ i: Int) -> ArraySlice<Int32> { x[(i * maxlen) ..< ((i + 1) * maxlen)] }
}

/// `/train` or `/test` of a dataset file: `x` int32 (N, maxlen), `y` int8 or int32 (N), and, when present,
/// `review_id` int32 (N) and `rating` int8 (N) naming each row's source file `<id>_<rating>.txt`.
public final class DatasetSplit {
    let split: Split
    /// Rows, N.
    public let count: Int
    public let maxlen: Int
    let numWords: Int
    /// K: labels are 0 ..< K.
    let classes: Int
    private let x: H5Dataset, y: H5Dataset
    private let reviewIDs: H5Dataset?, ratings: H5Dataset?

    init(_ split: Split, file: H5File, numWords: Int, maxlen: Int, classes: Int) throws {
        self.split = split
        self.classes = classes
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
        // prepare never writes an empty split (eval of one printed nan, exit 0).
        guard n > 0 else {
            throw DatasetError.wrongShape(path: path, object: x.name, expected: "[N, \(maxlen)] with N ≥ 1 (prepare writes no empty split)", found: x.shape)
        }
        let yd = try g.dataset("y")
        guard yd.elementType == .int8 || yd.elementType == .int32 else {
            throw DatasetError.wrongType(path: path, object: yd.name, expected: "int8 or int32", found: yd.elementType.rawValue)
        }
        let y = yd
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
    func read(rows range: Range<Int>) throws -> LabelledRows {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw DatasetError.rowOutOfRange(path: x.path, object: x.name, row: range.lowerBound < 0 ? range.lowerBound : range.upperBound - 1, rows: count)
        }
        let rows = LabelledRows(x: try x.readRows(range), y: try readLabels(range), maxlen: maxlen)
        try check(rows) { range.lowerBound + $0 }
        return rows
    }

    /// As `read(rows:)` of a range, the ids into `ids` (rows × maxlen, replacing what it held; its
    /// storage is reused when large enough, so that a reader of group after group does not fault
    /// fresh pages in for each): returns the labels.
    public func read(rows range: Range<Int>, into ids: inout [Int32]) throws -> [Int32] {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw DatasetError.rowOutOfRange(path: x.path, object: x.name, row: range.lowerBound < 0 ? range.lowerBound : range.upperBound - 1, rows: count)
        }
        let n = range.count * maxlen
        if ids.count > n { ids.removeLast(ids.count - n) }
        if ids.count < n { ids.append(contentsOf: repeatElement(0, count: n - ids.count)) }
        try ids.withUnsafeMutableBufferPointer { try x.readRows(range, into: $0) }
        let labels = try readLabels(range)
        try ids.withUnsafeBufferPointer { try check(ids: $0, labels: labels) { range.lowerBound + $0 } }
        return labels
    }

    /// Reads an arbitrary set of rows, in the order given (runs of consecutive rows are read
    /// together), checking every id and label.
    public func read(rows indices: [Int]) throws -> LabelledRows {
        for r in indices where r < 0 || r >= count {
            throw DatasetError.rowOutOfRange(path: x.path, object: x.name, row: r, rows: count)
        }
        let rows = LabelledRows(x: try x.readRows(indices), y: try readLabels(indices), maxlen: maxlen)
        try check(rows) { indices[$0] }
        return rows
    }

    /// All labels, checked (class indices).
    func labels() throws -> [Int32] {
        let all = try readLabels(0 ..< count)
        for (r, v) in all.enumerated() where v < 0 || Int(v) >= classes {
            throw DatasetError.badLabel(path: y.path, object: y.name, row: r, value: v, classes: classes)
        }
        return all
    }

    /// Labels as stored (int8 or int32), widened.
    private func readLabels(_ range: Range<Int>) throws -> [Int32] {
        if y.elementType == .int8 { return (try y.readRows(range) as [Int8]).map { Int32($0) } }
        return try y.readRows(range)
    }

    private func readLabels(_ rows: [Int]) throws -> [Int32] {
        if y.elementType == .int8 { return (try y.readRows(rows) as [Int8]).map { Int32($0) } }
        return try y.readRows(rows)
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
    private func check(_ rows: LabelledRows, fileRow: (Int) -> Int) throws {
        try rows.x.withUnsafeBufferPointer { try check(ids: $0, labels: rows.y, fileRow: fileRow) }
    }

    private func check(ids p: UnsafeBufferPointer<Int32>, labels: [Int32], fileRow: (Int) -> Int) throws {
        let limit = Int32(clamping: numWords)
        for (k, v) in p.enumerated() where v < 0 || v >= limit {
            throw DatasetError.tokenOutOfRange(path: x.path, object: x.name, row: fileRow(k / maxlen),
                                               column: k % maxlen, id: v, numWords: numWords)
        }
        for (i, v) in labels.enumerated() where v < 0 || Int(v) >= classes {
            throw DatasetError.badLabel(path: y.path, object: y.name, row: fileRow(i), value: v, classes: classes)
        }
    }
}
