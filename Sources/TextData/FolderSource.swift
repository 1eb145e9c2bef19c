import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A folder of class folders, Keras `text_dataset_from_directory`'s layout: `DIR/<class>/*.txt`.
/// Classes are the subfolder names; every `.txt` file is one row, its whole content the text; other
/// files, hidden entries and deeper folders are ignored (and counted), and so are files beside the
/// class folders and, in a folder with both splits, entries beside `train/` and `test/`. Rows are
/// read in sorted path order (class names, then file names, by UTF-8 bytes). When `DIR/train/` and
/// `DIR/test/` both hold class folders, they are the two splits. A class folder's or a `.txt`
/// file's name must be well-formed UTF-8 (a class name is a label, without control characters); a `.txt` that is neither a
/// regular file nor a folder (a FIFO, a device) is refused, never opened and waited on.
enum FolderSource {
    /// One entry of a folder listing, its name as the bytes the file system holds.
    struct Entry {
        var bytes: [UInt8]
        /// The name; U+FFFD where `bytes` are not well-formed UTF-8 (`valid` false).
        var name: String
        var valid: Bool
        /// Whether it is a folder, or a symbolic link to one.
        var isFolder: Bool
        var hidden: Bool { bytes.first == UInt8(ascii: ".") }
        var isText: Bool { bytes.count >= 4 && bytes.suffix(4).elementsEqual(".txt".utf8) }
    }

    /// Whether `DIR/train/` and `DIR/test/` both hold class folders.
    static func hasSplits(_ dir: String) -> Bool {
        ["train", "test"].allSatisfy { !((try? classFolders("\(dir)/\($0)")) ?? []).isEmpty }
    }

    /// Reads `dir`: as the two splits when it has them (and `split` is `.train`: a test source's
    /// class folders are all test rows), otherwise every row as `split`. Returns the entries ignored.
    static func read(_ dir: String, split: Split, context: SourceContext, _ body: RowSink) throws -> Int {
        if split == .train && hasSplits(dir) {
            let beside = try listing(dir).filter { $0.bytes != Array("train".utf8) && $0.bytes != Array("test".utf8) }.count
            return try beside + readClasses("\(dir)/train", split: .train, context: context, body)
                + readClasses("\(dir)/test", split: .test, context: context, body)
        }
        return try readClasses(dir, split: split, context: context, body)
    }

    /// The subfolders of `dir` that are not hidden, sorted by UTF-8 bytes.
    static func classFolders(_ dir: String) throws -> [Entry] {
        try listing(dir).filter { !$0.hidden && $0.isFolder }
    }

    /// Reads `dir/<class>/*.txt`; returns the entries ignored.
    private static func readClasses(_ dir: String, split: Split, context: SourceContext, _ body: RowSink) throws -> Int {
        let all = try listing(dir)
        let classes = all.filter { !$0.hidden && $0.isFolder }
        guard !classes.isEmpty else { throw PrepareError.noClassFolders(path: dir) }
        var ignored = all.count - classes.count
        var buffer = [UInt8]()
        for c in classes {
            let folder = "\(dir)/\(c.name)"
            guard c.valid else { throw PrepareError.badName(path: folder, what: "a class folder's name (its label)") }
            if let control = SourceContext.controlCharacter(c.bytes) {
                throw PrepareError.badRecord(path: folder, line: 0, detail: "the class folder's name (its label) holds the control character \(control)")
            }
            let label = context.labels.id(c.bytes)
            let file = context.add(file: folder)
            var rows = 0
            for entry in try listing(folder) {
                let path = "\(folder)/\(entry.name)"
                guard !entry.hidden, entry.isText, !entry.isFolder else { ignored += 1; continue }
                guard entry.valid else { throw PrepareError.badName(path: path, what: "a file's name") }
                try AclImdbSource.readFile(path, into: &buffer)
                try buffer.withUnsafeBufferPointer { text in
                    guard !SourceContext.isBlank(text) else {
                        throw PrepareError.emptyFile(path: path)
                    }
                    try context.refuseNUL(text, path: path, line: 1)
                    try context.emit(text: text, label: label, split: split, file: file, line: 0, body)
                }
                rows += 1
            }
            guard rows > 0 else { throw PrepareError.emptyClassFolder(path: folder) }
        }
        return ignored
    }

    /// The entries of `dir` (without `.` and `..`), hidden ones included, sorted by their bytes.
    static func listing(_ dir: String) throws -> [Entry] {
        guard let d = opendir(dir) else {
            throw PrepareError.unreadable(path: dir, detail: "cannot list the folder: \(String(cString: strerror(errno)))")
        }
        defer { closedir(d) }
        var out: [Entry] = []
        while true {
            errno = 0
            guard let e = readdir(d) else {
                // The end, or a failed read (EIO, a stale NFS handle), which must not pass for it.
                if errno != 0 { throw PrepareError.unreadable(path: dir, detail: "cannot list the folder: \(String(cString: strerror(errno)))") }
                break
            }
            let bytes = withUnsafeBytes(of: e.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if bytes == [46] || bytes == [46, 46] { continue }
            let valid = String(validating: bytes, as: UTF8.self)
            var st = stat()
            let cName = bytes.map { CChar(bitPattern: $0) } + [0]
            let folder = fstatat(dirfd(d), cName, &st, 0) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
            out.append(Entry(bytes: bytes, name: valid ?? String(decoding: bytes, as: UTF8.self), valid: valid != nil, isFolder: folder))
        }
        return out.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
    }

    static func isDirectory(_ p: String) -> Bool {
        var st = stat()
        return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}
