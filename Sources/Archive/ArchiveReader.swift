import CArchive
import CGunzip
import Glibc

/// A libarchive failure: the archive's path and what went wrong (libarchive's message and the step).
public struct ArchiveError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let detail: String
    public var description: String { "\(path): \(detail)" }
}

/// libarchive's message for `a`'s last error, worded as its other decompressors word it where
/// liblzma's is opaque: a cut `.xz` file gave "Lzma library error:  No progress is possible".
func errorMessage(_ a: OpaquePointer) -> String? {
    guard let m = archive_error_string(a).map({ String(cString: $0) }) else { return nil }
    return m.hasPrefix("Lzma library error") && m.hasSuffix("No progress is possible") ? "truncated xz input" : m
}

/// A tar archive (plain or compressed: gzip, bzip2, xz…) read as a stream of entries with
/// libarchive. The only file that calls libarchive; the handle is freed in `deinit`.
public final class ArchiveReader {
    private let handle: OpaquePointer
    private let path: String
    private var buffer: UnsafeMutablePointer<UInt8>
    private var capacity = 1 << 16
    /// zlib's reader of a gzip file, until its data has been read to the end (`next`).
    private var gzip: UnsafeMutableRawPointer?

    /// Opens `path` (`archive_read_open_filename`); format detection happens here.
    public init(path: String) throws {
        guard let a = archive_read_new() else { throw ArchiveError(path: path, detail: "archive_read_new failed") }
        handle = a
        self.path = path
        buffer = .allocate(capacity: capacity)
        archive_read_support_filter_all(a)
        archive_read_support_format_tar(a)
        guard try Self.open(a, path, gzip: &gzip) != nil else {
            throw failure("expected a tar or tar.gz such as aclImdb_v1.tar.gz, or an aclImdb/ folder")
        }
    }

    deinit {
        archive_read_free(handle)
        buffer.deallocate()
    }

    /// Opens `path` for `a`: gzip through zlib (`rd_archive_open_gunzip`: every member's CRC-32 and
    /// length checked, which libarchive's own gzip filter skips), anything else with libarchive's
    /// filters. Returns whether zlib reads it (nil: libarchive could not open it), and zlib's reader
    /// in `gzip`; throws when the file cannot be read at all.
    static func open(_ a: OpaquePointer, _ path: String, gzip: inout UnsafeMutableRawPointer?) throws -> Bool? {
        var state: UnsafeMutableRawPointer?
        defer { gzip = state }
        switch rd_archive_open_gunzip(a, path, &state) {
        case 1: return archive_read_open_filename(a, path, 1 << 20) == ARCHIVE_OK ? false : nil
        case 0: return true
        default:
            if archive_errno(a) == 0, errno != 0 {
                throw ArchiveError(path: path, detail: String(cString: strerror(errno)))
            }
            return nil
        }
    }

    private func failure(_ what: String) -> ArchiveError {
        let msg = errorMessage(handle) ?? "unknown error"
        return ArchiveError(path: path, detail: "\(msg) (\(what))")
    }

    /// The next entry's path and, for a regular file, its declared size (nil for anything else, whose
    /// `kind` then says what it is: "a hard link to …", "a symbolic link to …", "a folder", …); nil at
    /// the end of the archive (a gzip file's data then read to its end, every member's CRC-32
    /// and length checked: the tar's end-of-archive marker comes before them).
    public func next() throws -> (path: String, size: Int?, kind: String)? {
        var e: OpaquePointer?
        let r = archive_read_next_header(handle, &e)
        if r == ARCHIVE_EOF {
            if let state = gzip {
                gzip = nil
                guard rd_archive_gunzip_finish(handle, state) == 0 else { throw failure("after the archive's last entry") }
            }
            return nil
        }
        guard r == ARCHIVE_OK || r == ARCHIVE_WARN, let e else { throw failure("reading an entry header") }
        let name = archive_entry_pathname(e).map { String(cString: $0) } ?? ""
        // AE_IFREG, AE_IFDIR, AE_IFLNK: cast macros Swift does not import. A hard link's entry is a
        // regular file's type with a link target and no data.
        let type = archive_entry_filetype(e), hardlink = archive_entry_hardlink(e).map { String(cString: $0) }
        let isFile = type == 0o100000 && hardlink == nil
        let size = archive_entry_size_is_set(e) != 0 ? Int(archive_entry_size(e)) : nil
        let kind = hardlink.map { "a hard link to \($0)" }
            ?? (type == 0o120000 ? "a symbolic link to \(archive_entry_symlink(e).map { String(cString: $0) } ?? "?")"
                : type == 0o040000 ? "a folder" : isFile ? "a file" : "not a regular file")
        return (name, isFile ? size ?? 0 : nil, kind)
    }

    /// Reads the current entry's data, exactly `size` bytes as declared. The bytes stay valid until
    /// the next call.
    public func read(size: Int, entryName: String) throws -> UnsafeBufferPointer<UInt8> {
        if size > capacity {
            buffer.deallocate()
            capacity = max(size, 2 * capacity)
            buffer = .allocate(capacity: capacity)
        }
        var got = 0
        while got < size {
            let n = archive_read_data(handle, buffer + got, size - got)
            guard n > 0 else {
                throw n < 0 ? failure("reading \(entryName)")
                            : ArchiveError(path: path, detail: "\(entryName) ends after \(got) of \(size) bytes")
            }
            got += n
        }
        return UnsafeBufferPointer(start: buffer, count: size)
    }
}

/// One compressed file (`.gz`, `.bz2`, `.xz`, `.zst`, …) read as a stream of its decompressed bytes
/// through libarchive's raw format. `filterName` says which decompressor libarchive chose ("none"
/// when the bytes were not compressed at all), so a caller can tell a file that is not what its
/// name says.
public final class CompressedStream {
    private let handle: OpaquePointer
    private let path: String
    /// libarchive's name of the outermost filter: "gzip", "bzip2", "xz", "zstd", … or "none".
    public let filterName: String
    /// The decompressed stream holds no byte.
    private let empty: Bool

    public init(path: String) throws {
        guard let a = archive_read_new() else { throw ArchiveError(path: path, detail: "archive_read_new failed") }
        handle = a
        self.path = path
        archive_read_support_filter_all(a)
        archive_read_support_format_raw(a)
        // The raw format needs one byte; a compressed empty file (`: | gzip`) is the empty format.
        archive_read_support_format_empty(a)
        let opened: Bool?
        var gzip: UnsafeMutableRawPointer?   // read to its end by `read` (the raw format's data is the whole stream)
        do { opened = try ArchiveReader.open(a, path, gzip: &gzip) } catch { archive_read_free(a); throw error }
        guard let viaZlib = opened else {
            let msg = errorMessage(a) ?? "unknown error"
            archive_read_free(a)
            throw ArchiveError(path: path, detail: msg)
        }
        var e: OpaquePointer?
        let r = archive_read_next_header(a, &e)
        guard r == ARCHIVE_OK || r == ARCHIVE_WARN || (r == ARCHIVE_EOF && archive_errno(a) == 0) else {
            let msg = errorMessage(a) ?? "empty or unreadable"
            archive_read_free(a)
            throw ArchiveError(path: path, detail: msg)
        }
        empty = r == ARCHIVE_EOF
        // zlib inflated a gzip file before libarchive saw it; libarchive names any filter under that.
        let name = archive_filter_name(a, 0).map { String(cString: $0) } ?? "none"
        filterName = viaZlib && name == "none" ? "gzip" : name
    }

    deinit { archive_read_free(handle) }

    /// Reads up to `count` decompressed bytes into `buffer`; 0 at the end.
    public func read(into buffer: UnsafeMutablePointer<UInt8>, count: Int) throws -> Int {
        if empty { return 0 }
        let n = archive_read_data(handle, buffer, count)
        guard n >= 0 else {
            let msg = errorMessage(handle) ?? "unknown error"
            throw ArchiveError(path: path, detail: "\(msg) (decompressing)")
        }
        return n
    }
}
