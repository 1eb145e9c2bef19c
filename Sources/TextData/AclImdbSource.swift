import Archive
import Foundation
#if canImport(Glibc)
import Glibc
import POSIX
#endif

extension RowKey {
    /// aclImdb's entry name, for messages.
    var entryName: String { "\(split.rawValue)/\(label == 1 ? "pos" : "neg")/\(id)_\(rating).txt" }

    /// Parses the last three components of an aclImdb entry path; nil for anything that is not a
    /// review (`unsup/`, `urls_*.txt`, `imdb.vocab`, README, directories…).
    static func parse<S: StringProtocol>(_ components: [S]) -> RowKey? {
        guard components.count >= 3 else { return nil }
        let n = components.count
        guard let split = Split(rawValue: String(components[n - 3])) else { return nil }
        let label: Int32
        switch components[n - 2] {
        case "neg": label = 0
        case "pos": label = 1
        default: return nil
        }
        return parse(name: components[n - 1]).map {
            RowKey(split: split, label: label, order: Int64(label) << 32 | Int64($0.id), id: $0.id, rating: $0.rating)
        }
    }

    /// `<id>_<rating>.txt`: id 1–9 digits, rating 1–2 digits.
    static func parse<S: StringProtocol>(name: S) -> (id: Int32, rating: Int8)? {
        let u = Array(name.utf8)
        guard u.count >= 7, u.suffix(4).elementsEqual(".txt".utf8), let us = u.firstIndex(of: UInt8(ascii: "_")) else { return nil }
        let idDigits = u[..<us], ratingDigits = u[(us + 1) ..< (u.count - 4)]
        func number<C: Collection<UInt8>>(_ d: C, maxDigits: Int) -> Int? {
            guard !d.isEmpty, d.count <= maxDigits, d.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return d.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        }
        guard let id = number(idDigits, maxDigits: 9), let rating = number(ratingDigits, maxDigits: 2) else { return nil }
        return (Int32(id), Int8(rating))
    }
}

/// Reads the labelled reviews of the raw IMDB dataset from the official tarball (any tar that
/// libarchive reads, compressed or not) or from an extracted folder, in storage order.
enum AclImdbSource {
    /// What a source held besides its reviews.
    struct Stats { var ignoredEntries = 0 }

    /// Calls `body` with each review's key and bytes (valid during the call only).
    static func read(_ path: String, _ body: (RowKey, UnsafeBufferPointer<UInt8>) throws -> Void) throws -> Stats {
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw PrepareError.sourceMissing(path: path) }
            throw PrepareError.unreadable(path: path, detail: SystemError().description)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR { return try readFolder(path, body) }
        return try readArchive(path, body)
    }

    private static func readArchive(_ path: String, _ body: (RowKey, UnsafeBufferPointer<UInt8>) throws -> Void) throws -> Stats {
        guard access(path, R_OK) == 0 else {
            throw PrepareError.unreadable(path: path, detail: SystemError().description)
        }
        do {
            let archive = try ArchiveReader(path: path)
            var stats = Stats()
            while let (name, size, kind) = try archive.next() {
                let key = RowKey.parse(name.split(separator: "/"))
                guard let size, let key else {
                    if size != nil { stats.ignoredEntries += 1 }
                    // A review's name on a link (GNU tar stores a file hard-linked to another so):
                    // its text is elsewhere, and the extracted folder would read it. Never dropped unsaid.
                    if key != nil, kind != "a folder" {
                        throw PrepareError.archive(path: path, detail: "\(name) is \(kind), not a review's text (rnn-dist reads "
                                                   + "regular entries only: make the archive with tar --hard-dereference, or pass the extracted folder)")
                    }
                    continue
                }
                guard size <= PrepareLimits.maxReviewBytes else {
                    throw PrepareError.reviewTooLarge(path: path, entry: name, bytes: size)
                }
                try body(key, try archive.read(size: size, entryName: name))
            }
            return stats
        } catch let e as ArchiveError {
            throw PrepareError.archive(path: e.path, detail: e.detail)
        }
    }

    /// What a folder is taken for when no `--format` says.
    enum FolderKind: Equatable {
        /// An extracted aclImdb folder (or one holding it).
        case imdb
        /// Class folders.
        case folders
        /// IMDB's own layout (`train/unsup/`, its file names) with a folder it does not have: which
        /// was meant is not clear, and either reading loses or invents classes.
        case ambiguous(outlier: String)
    }

    /// IMDB when the folder (or its `aclImdb/` child) has `train/` and `test/` holding no folders
    /// but IMDB's (`layoutOutlier`; hidden ones aside), and every `.txt` in `train/` and `test/`'s
    /// `pos/` and `neg/` is a `<id>_<rating>.txt`, at least one in train. Other file names are class
    /// folders; so are other folders, unless `train/unsup/` (IMDB's unlabelled reviews, which class
    /// folders would make a class) says the tree is IMDB's: then it is ambiguous.
    static func classify(_ path: String) -> FolderKind {
        for root in [path, path + "/aclImdb"] where FolderSource.isDirectory(root + "/train") && FolderSource.isDirectory(root + "/test") {
            var reviews = 0
            for split in ["train", "test"] {
                for label in ["neg", "pos"] {
                    for entry in (try? FolderSource.listing("\(root)/\(split)/\(label)")) ?? [] where !entry.hidden && entry.isText {
                        guard RowKey.parse(name: entry.name) != nil else { return .folders }
                        if split == "train" { reviews += 1 }
                    }
                }
            }
            guard reviews > 0 else { return .folders }
            guard let outlier = layoutOutlier(root) else { return .imdb }
            return FolderSource.isDirectory(root + "/train/unsup") ? .ambiguous(outlier: outlier) : .folders
        }
        return .folders
    }

    /// The first folder in `root/train/` or `root/test/` that the IMDB layout does not have (it has
    /// `pos/` and `neg/`, and `unsup/` in train; hidden folders such as `.ipynb_checkpoints/` aside),
    /// as `split/name`; nil when there is none.
    static func layoutOutlier(_ root: String) -> String? {
        for (split, known) in [("train", ["pos", "neg", "unsup"]), ("test", ["pos", "neg"])] {
            for entry in (try? FolderSource.listing("\(root)/\(split)")) ?? [] where entry.isFolder && !entry.hidden && !known.contains(entry.name) {
                return "\(split)/\(entry.name)"
            }
        }
        return nil
    }

    /// `path` is `aclImdb/` itself (holds `train/` and `test/`) or a folder holding `aclImdb/`.
    private static func readFolder(_ path: String, _ body: (RowKey, UnsafeBufferPointer<UInt8>) throws -> Void) throws -> Stats {
        let isDir = FolderSource.isDirectory
        let base = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        var root = base
        if !(isDir(root + "/train") && isDir(root + "/test")) {
            root = base + "/aclImdb"
            guard isDir(root + "/train") && isDir(root + "/test") else { throw PrepareError.notAnIMDBFolder(path: path) }
        }
        if let folder = layoutOutlier(root) { throw PrepareError.notIMDBLayout(path: path, folder: folder) }
        var stats = Stats()
        var buffer = [UInt8]()
        for split in Split.allCases {
            for labelName in ["neg", "pos"] {
                let dir = "\(root)/\(split.rawValue)/\(labelName)"
                guard isDir(dir) else { continue }
                // The listing class folders use: names as bytes (a name that is not UTF-8 is no
                // review, never repaired into one), sorted, a listing that fails midway an error.
                for entry in try FolderSource.listing(dir) {
                    let name = entry.name
                    guard entry.valid, let key = RowKey.parse([split.rawValue, labelName, name]) else {
                        stats.ignoredEntries += 1
                        continue
                    }
                    try readFile("\(dir)/\(name)", into: &buffer)
                    try buffer.withUnsafeBufferPointer { try body(key, $0) }
                }
            }
        }
        return stats
    }

    /// Reads a whole regular file, refusing one larger than `PrepareLimits.maxReviewBytes`.
    static func readFile(_ file: String, into buffer: inout [UInt8]) throws {
        let fd = open(file, O_RDONLY | O_NONBLOCK)   // a FIFO: refused below instead of waited on
        guard fd >= 0 else { throw PrepareError.unreadable(path: file, detail: SystemError().description) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw PrepareError.unreadable(path: file, detail: "not a regular file")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        let size = Int(st.st_size)
        guard size <= PrepareLimits.maxReviewBytes else {
            throw PrepareError.reviewTooLarge(path: file, entry: file, bytes: size)
        }
        var failure: Int32 = 0
        buffer = [UInt8](unsafeUninitializedCapacity: max(size, 1)) { p, count in
            count = 0
            while count < size {
                let n = Glibc.read(fd, p.baseAddress! + count, size - count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { failure = n < 0 ? errno : EIO; break }
                count += n
            }
        }
        guard failure == 0 else { throw PrepareError.unreadable(path: file, detail: SystemError(failure).description) }
    }
}
