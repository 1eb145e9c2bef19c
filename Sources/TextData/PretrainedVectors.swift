import Foundation

/// A bad word-vector file: one line naming the file, the line and the problem.
public struct VectorsError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    init(_ path: String, line: Int? = nil, _ what: String) {
        description = "\(path)\(line.map { " line \($0)" } ?? ""): \(what)"
    }
}

/// Pretrained word vectors for a dataset's vocabulary (the book's 6.1.3 `embedding_matrix`): GloVe
/// text (`word v1 … vE` per line) or word2vec text (the same after a `count dim` header line), plain
/// or `.gz`/`.bz2`/`.xz`/`.zst`. Row i of the matrix is the vector of the word with id i; ids with no
/// vector (the reserved 0–3, words the file lacks) stay zero. A word listed twice keeps its last
/// vector, as the book's dictionary does.
public struct PretrainedVectors: Sendable {
    /// (numWords, width) row-major.
    public let matrix: [Float]
    /// Vocabulary words the file has a vector for, and the vocabulary's words.
    public let found: Int
    public let words: Int
    /// The file's name and FNV-1a 64 of its (decompressed) bytes, as hex.
    public let fileName: String
    public let checksum: String
    /// A field as a message shows it: bytes that are not printable ASCII as \\xNN (a CR, a NUL or
    /// a terminal escape would hide what is wrong).
    static func shown(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> String {
        bytes.map { $0 >= 0x20 && $0 < 0x7F ? String(UnicodeScalar($0)) : "\\x" + String($0 >> 4, radix: 16) + String($0 & 15, radix: 16) }.joined()
    }

    /// The lines read.
    public let lines: Int

    /// "8,712 of 9,996 words found in glove.6B.100d.txt".
    public var coverage: String { "\(found) of \(words) words found in \(fileName)" }

    /// Reads `path` for `vocabulary` (entry k is id k + 4) and vectors of `width` values. Every
    /// line's field count is checked; the numbers of the vocabulary's words are parsed and checked.
    public static func load(path: String, vocabulary: [String], width: Int) throws -> PretrainedVectors {
        var ids: [String: Int] = [:]
        for (k, w) in vocabulary.enumerated() { ids[w] = k + Vocabulary.indexFrom + 1 }
        let numWords = vocabulary.count + Vocabulary.indexFrom + 1
        var matrix = [Float](repeating: 0, count: numWords * width)
        var has = [Bool](repeating: false, count: numWords)
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        var line = 0
        var vectors = 0
        /// word2vec's header: the vector count it declares.
        var declared: Int?

        func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws {
            line += 1
            var body = bytes[...]
            // A UTF-8 byte-order mark (a file saved by a Windows editor) is not part of the first word.
            if line == 1 && body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }
            // Fields are separated by runs of white space (space, tab, CR, VT, FF), as the book's
            // `line.split()` separates them.
            let fields = body.split(omittingEmptySubsequences: true) { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0D) }
            if fields.isEmpty { return }
            if line == 1 && fields.count == 2, let dim = Int(String(decoding: fields[1], as: UTF8.self)),
               let count = Int(String(decoding: fields[0], as: UTF8.self)) {
                // word2vec's header: the vector count and width.
                guard dim == width else { throw VectorsError(path, line: 1, "vectors of \(dim) values, the embedding's width is \(width)") }
                declared = count
                return
            }
            guard fields.count == width + 1 else {
                throw VectorsError(path, line: line, "\(fields.count - 1) values after the word, the embedding's width is \(width)")
            }
            vectors += 1
            guard let id = ids[String(decoding: fields[0], as: UTF8.self)] else { return }
            for j in 0 ..< width {
                // Decimal notation only, as GloVe and word2vec write it (Swift's parser also takes
                // hexadecimal floats such as 0x10, which no vectors file holds).
                guard fields[j + 1].allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D || $0 == 0x2B || $0 | 0x20 == 0x65 }),
                      let v = Float(String(decoding: fields[j + 1], as: UTF8.self)), v.isFinite else {
                    throw VectorsError(path, line: line, "value \(j + 1) '\(shown(fields[j + 1].prefix(40)))' is not a finite number")
                }
                matrix[id * width + j] = v
            }
            has[id] = true
        }
        do {
            try ByteStream.readLines(path, what: "word vectors", chunk: { chunk in
                for b in chunk { hash = (hash ^ UInt64(b)) &* 0x100_0000_01B3 }
            }, line: parse)
        } catch let e as PrepareError {
            throw VectorsError(path, String("\(e)".dropFirst(path.count + 2)))
        }
        guard vectors > 0 else { throw VectorsError(path, "holds no vectors") }
        if let declared, declared != vectors {
            throw VectorsError(path, "its word2vec header declares \(declared) vectors, the file holds \(vectors)" +
                               (vectors < declared ? " (cut short?)" : ""))
        }
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return PretrainedVectors(matrix: matrix, found: has.filter { $0 }.count, words: vocabulary.count, fileName: name,
                                 checksum: String(hash, radix: 16), lines: line)
    }
}
