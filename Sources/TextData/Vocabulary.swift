import HDF5

/// The word ↔ id mapping of a dataset (docs/DATASET.md), Keras `imdb.load_data` conventions:
/// 0 padding, 1 start of sequence, 2 out of vocabulary, 3 unused, the word of rank r (1-based,
/// training counts descending, ties by UTF-8 bytes ascending) has id r + 3; ids ≥ `numWords` are 2.
///
/// Words are compared as UTF-8 bytes, never as `String`s (which would equate canonically
/// equivalent spellings that the tokenizer keeps apart).
public struct Vocabulary: Sendable, Equatable {
    static let padID: Int32 = 0
    public static let startID: Int32 = 1
    public static let oovID: Int32 = 2
    /// Word ids start at `indexFrom + 1` (Keras `index_from`).
    public static let indexFrom = 3
    /// Name of the string list in files (`/vocab` in the dataset).
    static let defaultName = "vocab"

    /// `words[k]` has id k + 4, k = 0 … numWords − 5.
    public let words: [String]
    private let ids: [[UInt8]: Int32]

    /// Ids run over `0 ..< numWords` (the embedding's row count).
    public var numWords: Int { words.count + Self.indexFrom + 1 }

    /// A vocabulary from its words in id order; throws on an empty or repeated word (compared as bytes).
    public init(words: [String]) throws {
        var ids: [[UInt8]: Int32] = [:]
        ids.reserveCapacity(words.count)
        for (k, w) in words.enumerated() {
            let b = Array(w.utf8)
            guard !b.isEmpty else { throw VocabularyError("entry \(k) is empty") }
            guard ids.updateValue(Int32(k + Self.indexFrom + 1), forKey: b) == nil else {
                throw VocabularyError("entry \(k) '\(w)' repeats an earlier entry")
            }
        }
        self.words = words
        self.ids = ids
    }

    public static func == (a: Vocabulary, b: Vocabulary) -> Bool { a.words == b.words }

    /// The id of one token (lowercased, as the tokenizer yields it): 2 when unknown.
    func id(of token: String) -> Int32 { ids[Array(token.utf8)] ?? Self.oovID }

    /// The word with this id, or a marker for the reserved ids (`<pad>`, `<start>`, `<oov>`, `<unused>`).
    func word(for id: Int32) -> String {
        switch id {
        case 0: return "<pad>"
        case 1: return "<start>"
        case 2: return "<oov>"
        case 3: return "<unused>"
        default:
            let k = Int(id) - Self.indexFrom - 1
            return k < words.count ? words[k] : "<oov>"
        }
    }

    /// `[1] + ids` of a raw review, tokenized exactly as `prepare` does, before padding.
    func sequence(_ text: String) -> [Int32] {
        struct Lookup: TokenSink {
            let ids: [[UInt8]: Int32]
            var out: [Int32] = [Vocabulary.startID]
            mutating func token(_ p: UnsafePointer<UInt8>, _ n: Int) {
                out.append(ids[Array(UnsafeBufferPointer(start: p, count: n))] ?? Vocabulary.oovID)
            }
        }
        var sink = Lookup(ids: ids)
        let scanner = TokenScanner()
        _ = Array(text.utf8).withUnsafeBufferPointer { scanner.scan($0, into: &sink) }
        return sink.out
    }

    /// A raw review as one model input row: `sequence(text)` cut to its last `maxlen` ids and
    /// left-padded with 0 (Keras `pad_sequences(padding='pre', truncating='pre')`).
    public func encode(_ text: String, maxlen: Int) -> [Int32] {
        Self.pad(sequence(text), maxlen: maxlen)
    }

    /// Keeps the last `maxlen` ids and left-pads with 0.
    static func pad(_ sequence: [Int32], maxlen: Int) -> [Int32] {
        precondition(maxlen >= 1)
        if sequence.count >= maxlen { return Array(sequence.suffix(maxlen)) }
        return [Int32](repeating: padID, count: maxlen - sequence.count) + sequence
    }

    /// The words of a row, padding left out.
    func decode(_ ids: some Sequence<Int32>) -> [String] {
        ids.filter { $0 != Self.padID }.map { word(for: $0) }
    }

    /// Stores the words as a string list (bytes + offsets, no variable-length strings).
    func write(to group: H5Group, name: String = Vocabulary.defaultName) throws {
        try group.writeStringList(name, words)
    }

    /// Reads a list written by `write(to:name:)` and checks it against `numWords` (docs/FILES.md §Robustness: sizes
    /// read from a file are checked against the other parts of the file).
    static func read(from group: H5Group, name: String = Vocabulary.defaultName, numWords: Int) throws -> Vocabulary {
        let path = group.path, object = group.name == "/" ? "/" + name : group.name + "/" + name
        guard numWords >= 4 else {
            throw DatasetError.badVocabulary(path: path, object: object, detail: "num_words \(numWords) is below 4")
        }
        // Check the declared sizes before the list is read.
        let list = try group.group(name)
        let offsets = try list.dataset("offsets")
        guard offsets.shape == [numWords - 3] else {
            throw DatasetError.badVocabulary(path: path, object: object + "/offsets",
                                             detail: "shape \(offsets.shape), expected [\(numWords - 3)] for num_words \(numWords)")
        }
        let words = try group.readStringList(name)
        do {
            return try Vocabulary(words: words)
        } catch let e as VocabularyError {
            throw DatasetError.badVocabulary(path: path, object: object, detail: e.description)
        }
    }
}

/// A malformed word list.
public struct VocabularyError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ d: String) { description = d }
}
