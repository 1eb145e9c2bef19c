/// The kinds of raw text `prepare` reads (docs/DATASET.md §Sources).
public enum SourceFormat: String, CaseIterable, Sendable {
    /// The IMDB tarball or an extracted `aclImdb/` folder.
    case aclimdb
    /// `DIR/<class>/*.txt`, optionally under `DIR/train/` and `DIR/test/`.
    case folders
    /// Comma-separated values with a header row.
    case csv
    /// Tab-separated values with a header row.
    case tsv
    /// One JSON object per line.
    case jsonl

    /// The format a path's kind and name imply: a folder is aclImdb when it looks like one
    /// (`AclImdbSource.classify`), else class folders (or refused when it is not clear which); a file by its extension, after a
    /// `.gz`/`.bz2`/`.xz`/`.zst` suffix: `.csv`, `.tsv`/`.tab`, `.jsonl`/`.ndjson`, `.tar`/`.tgz`/`.tar.*`.
    static func detect(_ path: String) throws -> SourceFormat {
        if FolderSource.isDirectory(path) {
            switch AclImdbSource.classify(path) {
            case .imdb: return .aclimdb
            case .folders: return .folders
            case .ambiguous(let outlier): throw PrepareError.ambiguousIMDB(path: path, folder: outlier)
            }
        }
        let name = String(path.split(separator: "/").last ?? "").lowercased()
        if name.hasSuffix(".tgz") || name.hasSuffix(".tbz2") || name.hasSuffix(".txz") { return .aclimdb }
        let base = ByteStream.strip(name).base
        if base.hasSuffix(".tar") { return .aclimdb }
        if base.hasSuffix(".csv") { return .csv }
        if base.hasSuffix(".tsv") || base.hasSuffix(".tab") { return .tsv }
        if base.hasSuffix(".jsonl") || base.hasSuffix(".ndjson") { return .jsonl }
        throw PrepareError.unknownFormat(path: path)
    }

    /// Whether the rows carry a text column and a label column (`--text-column`, `--label-column`).
    var hasColumns: Bool { self == .csv || self == .tsv || self == .jsonl }
}
