import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A folder of class folders, Keras `text_dataset_from_directory`'s layout: `DIR/<class>/*.txt`.
/// Classes are the subfolder names; every `.txt` file is one row, its whole content the text; other
/// files, hidden entries and deeper folders are ignored (and counted). Rows are read in sorted path
/// order (class names, then file names, by UTF-8 bytes). When `DIR/train/` and `DIR/test/` both
/// hold class folders, they are the two splits.
enum FolderSource {
    /// Whether `DIR/train/` and `DIR/test/` both hold class folders.
    static func hasSplits(_ dir: String) -> Bool {
        ["train", "test"].allSatisfy { !((try? classFolders("\(dir)/\($0)")) ?? []).isEmpty }
    }

    /// Reads `dir`: as the two splits when it has them (and `split` is `.train`: a test source's
    /// class folders are all test rows), otherwise every row as `split`.
    static func read(_ dir: String, split: Split, context: SourceContext, _ body: RowSink) throws -> Int {
        if split == .train && hasSplits(dir) {
            return try readClasses("\(dir)/train", split: .train, context: context, body)
                + readClasses("\(dir)/test", split: .test, context: context, body)
        }
        return try readClasses(dir, split: split, context: context, body)
    }

    /// The subfolders of `dir` that are not hidden, sorted by UTF-8 bytes.
    static func classFolders(_ dir: String) throws -> [String] {
        try entries(dir).filter { isDirectory("\(dir)/\($0)") }
    }

    /// Reads `dir/<class>/*.txt`; returns the entries ignored.
    private static func readClasses(_ dir: String, split: Split, context: SourceContext, _ body: RowSink) throws -> Int {
        let classes = try classFolders(dir)
        guard !classes.isEmpty else { throw PrepareError.noClassFolders(path: dir) }
        var ignored = 0
        var buffer = [UInt8]()
        for name in classes {
            let folder = "\(dir)/\(name)"
            let label = context.labels.id(Array(name.utf8))
            let file = context.add(file: folder)
            ignored += ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasPrefix(".") }.count
            var rows = 0
            for entry in try entries(folder) {
                let path = "\(folder)/\(entry)"
                guard entry.hasSuffix(".txt"), !isDirectory(path) else { ignored += 1; continue }
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

    /// The names in `dir` that do not start with '.', sorted by their UTF-8 bytes.
    private static func entries(_ dir: String) throws -> [String] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dir) } catch {
            throw PrepareError.unreadable(path: dir, detail: "cannot list the folder")
        }
        return names.filter { !$0.hasPrefix(".") }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    static func isDirectory(_ p: String) -> Bool {
        var st = stat()
        return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}
