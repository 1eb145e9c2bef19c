/// A failure of `prepare`: the raw source is missing, malformed or incomplete, or the options do not
/// fit it. The description is one line naming the file or folder (and line) and the problem.
public enum PrepareError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Nothing exists at the source path.
    case sourceMissing(path: String)
    /// A folder that is not an extracted `aclImdb/` (no `train/` and `test/`).
    case notAnIMDBFolder(path: String)
    /// An IMDB folder (`--format aclimdb`) with a class folder the layout does not have.
    case notIMDBLayout(path: String, folder: String)
    /// A folder in IMDB's layout (train/unsup/, its file names) with a folder IMDB does not have.
    case ambiguousIMDB(path: String, folder: String)
    /// A name that must be a label or be opened is not well-formed UTF-8.
    case badName(path: String, what: String)
    /// A file or folder that cannot be read.
    case unreadable(path: String, detail: String)
    /// libarchive could not read the tarball (not gzip/tar, truncated, damaged).
    case archive(path: String, detail: String)
    /// A split holds no review at all.
    case emptySplit(path: String, split: String)
    /// The same (split, label, review id) occurs twice.
    case duplicateReview(path: String, entry: String)
    /// One review larger than `PrepareLimits.maxReviewBytes`.
    case reviewTooLarge(path: String, entry: String, bytes: Int)
    /// The folder the output would be written into does not exist.
    case outputFolderMissing(path: String)
    /// The output path names a folder.
    case outputIsFolder(path: String)
    /// A file whose name says no format `prepare` knows.
    case unknownFormat(path: String)
    /// A file that is not the text its name says (compressed, binary, a NUL byte).
    case notText(path: String, detail: String)
    /// A record (CSV/TSV row, JSON line; line 0: a whole file) that cannot be used.
    case badRecord(path: String, line: Int, detail: String)
    /// A folder without class subfolders.
    case noClassFolders(path: String)
    /// A class folder without any `.txt` file.
    case emptyClassFolder(path: String)
    /// A text file of a class folder holding nothing but white space.
    case emptyFile(path: String)
    /// Every training row has the same label.
    case singleClass(path: String, label: String)
    /// A test row's label that no training row has.
    case unseenLabel(path: String, line: Int, label: String, classes: [String])
    /// More classes than the dataset file holds.
    case tooManyClasses(path: String, count: Int)
    /// Options that do not fit the source (the message names the flag).
    case badOptions(String)

    public var description: String {
        switch self {
        case .sourceMissing(let p):
            return "\(p): no such file or folder"
        case .notAnIMDBFolder(let p):
            return "\(p): not an IMDB folder: it holds neither train/ and test/ nor aclImdb/ with them"
        case .notIMDBLayout(let p, let f):
            return "\(p): \(f)/ is not a folder of the IMDB layout (pos/ and neg/, and unsup/ in train/), whose other classes would be dropped; for your own class folders pass --format folders"
        case .ambiguousIMDB(let p, let f):
            return "\(p): looks like the IMDB layout (train/unsup/, <id>_<rating>.txt names) but \(f)/ is not part of it: remove it (or hide it: .name), or pass --format folders to make every folder a class (unsup/ too)"
        case .badName(let p, let w):
            return "\(p): \(w) is not well-formed UTF-8 (shown with U+FFFD); rename it"
        case .unreadable(let p, let d):
            return "\(p): cannot be read (\(d))"
        case .archive(let p, let d):
            return "\(p): cannot read the archive: \(d)"
        case .emptySplit(let p, let s):
            return "\(p): no reviews in the \(s) split (expected \(s)/pos/<id>_<rating>.txt and \(s)/neg/…)"
        case .duplicateReview(let p, let e):
            return "\(p): review \(e) occurs twice"
        case .reviewTooLarge(let p, let e, let n):
            return "\(p): review \(e) has \(n) bytes, more than the limit of \(PrepareLimits.maxReviewBytes)"
        case .outputFolderMissing(let p):
            return "\(p): the output folder does not exist"
        case .outputIsFolder(let p):
            return "\(p): is a folder; -o names the dataset file to write"
        case .unknownFormat(let p):
            return "\(p): cannot tell the format from the name (expected .csv, .tsv or .tab, .jsonl or .ndjson, optionally .gz/.bz2/.xz/.zst, a tar archive or a folder); pass --format"
        case .notText(let p, let d):
            return "\(p): \(d)"
        case .badRecord(let p, let l, let d):
            return l > 0 ? "\(p) line \(l): \(d)" : "\(p): \(d)"
        case .noClassFolders(let p):
            return "\(p): holds no class folders (expected <class>/*.txt, or train/<class>/ and test/<class>/)"
        case .emptyClassFolder(let p):
            return "\(p): class folder without any .txt file"
        case .emptyFile(let p):
            return "\(p): the text is empty"
        case .singleClass(let p, let l):
            return "\(p): every training row has the label '\(l)': a classifier needs at least 2 classes"
        case .unseenLabel(let p, let line, let l, let c):
            // Quoted: ' pos' and 'pos ' are classes apart from 'pos'.
            let shown = c.prefix(20).map { "'\($0)'" }.joined(separator: ", ") + (c.count > 20 ? ", …" : "")
            return "\(p)\(line > 0 ? " line \(line)" : ""): label '\(l)' is not a class of the training rows (\(shown))"
        case .tooManyClasses(let p, let n):
            return "\(p): \(n) classes, more than the limit of \(PrepareLimits.maxClasses)"
        case .badOptions(let m):
            return m
        }
    }
}

/// A dataset file that is not a valid rnn-dist IMDB dataset. One line naming the file, the object
/// and what was expected and found (docs/DATASET.md §Reading it back).
public enum DatasetError: Error, CustomStringConvertible, Equatable, Sendable {
    case wrongFormat(path: String, found: String)
    case unsupportedVersion(path: String, found: Int64)
    case badAttribute(path: String, name: String, detail: String)
    case wrongShape(path: String, object: String, expected: String, found: [Int])
    case wrongType(path: String, object: String, expected: String, found: String)
    case tokenOutOfRange(path: String, object: String, row: Int, column: Int, id: Int32, numWords: Int)
    case badLabel(path: String, object: String, row: Int, value: Int32, classes: Int)
    case badVocabulary(path: String, object: String, detail: String)
    case rowOutOfRange(path: String, object: String, row: Int, rows: Int)

    public var description: String {
        switch self {
        case .wrongFormat(let p, let f):
            return "\(p): /@format is \(f.isEmpty ? "missing" : "'\(f)'"), expected '\(TextDataset.format)' (write one with `rnn-dist prepare`)"
        case .unsupportedVersion(let p, let v):
            return "\(p): /@format_version is \(v), this rnn-dist reads version \(TextDataset.formatVersion)"
        case .badAttribute(let p, let n, let d):
            return "\(p): /@\(n): \(d)"
        case .wrongShape(let p, let o, let e, let f):
            return "\(p): \(o): shape \(f), expected \(e)"
        case .wrongType(let p, let o, let e, let f):
            return "\(p): \(o): holds \(f), expected \(e)"
        case .tokenOutOfRange(let p, let o, let r, let c, let id, let n):
            return "\(p): \(o): row \(r), position \(c): token id \(id) is outside the vocabulary 0..<\(n)"
        case .badLabel(let p, let o, let r, let v, let k):
            return "\(p): \(o): row \(r): label \(v), expected a class index 0..<\(k)"
        case .badVocabulary(let p, let o, let d):
            return "\(p): \(o): \(d)"
        case .rowOutOfRange(let p, let o, let r, let n):
            return "\(p): \(o): row \(r) out of 0..<\(n)"
        }
    }
}
