import CFaultGuard
import CHDF5
#if canImport(Glibc)
import Glibc
import POSIX
#endif

/// Limits applied to every size read from a file, before memory is allocated (docs/FILES.md §Robustness).
public enum H5Limits {
    /// The most elements one dataset may declare (2³¹: ample for IMDB, small enough to allocate).
    static let maxElements = 1 << 31
    /// The longest string attribute or object name we read.
    static let maxStringBytes = 1 << 24
    /// The most children a group may list.
    static let maxChildren = 1 << 20
    /// The most dimensions of a dataset.
    static let maxRank = 8
}

/// An HDF5 file, owned by this object and closed in `deinit` (or by `close()`, which reports errors).
///
/// Files written by rnn-dist use libver bounds V110 (checksummed metadata), chunked datasets with
/// Fletcher-32 and no variable-length strings, so a flipped byte is a read error, not a crash or a
/// wrong number (docs/FILES.md §Robustness).
public final class H5File: H5Group, @unchecked Sendable {
    /// The root attribute written last by `writeAtomically`: a file without it is partial.
    public static let completeAttribute = "rnn_dist_complete"
    public let fileSize: Int
    private var isOpen = true
    /// This file's slot in the fault guard's list of files open (-1: none; H5Library.prepare).
    private let guardSlot: Int32

    /// Opened writable (`open(writable: true)`: only tests, editing a file as another writer of
    /// rnn-dist would): its digest, where it has one, is computed again when it is closed.
    private let reseals: Bool

    private init(id: hid_t, path: String, fileSize: Int, guardSlot: Int32 = -1, reseals: Bool = false) {
        self.fileSize = fileSize
        self.guardSlot = guardSlot
        self.reseals = reseals
        super.init(id: id, path: path, name: "/", closer: { _ in 0 })
    }

    /// Creates (truncating) a file with libver bounds V110. Wraps `H5Fcreate`.
    static func create(_ path: String) throws -> H5File {
        H5Library.prepare()
        let fapl = try h5check(H5Pcreate(rd_h5p_file_access()), "H5Pcreate", path: path, object: "")
        defer { H5Pclose(fapl) }
        try h5check(H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110),
                    "H5Pset_libver_bounds", path: path, object: "")
        // The root group without modification times too (a file creation list is a group's).
        let fcpl = try h5check(H5Pcreate(rd_h5p_file_create()), "H5Pcreate", path: path, object: "")
        defer { H5Pclose(fcpl) }
        try h5check(H5Pset_obj_track_times(fcpl, false), "H5Pset_obj_track_times", path: path, object: "")
        // While it is written, a fault in HDF5 is not a damaged input's (H5Library.prepare's guard).
        let slot = rd_fault_guard_file_opened(path, 1)
        let id: hid_t
        do {
            id = try h5check(H5Fcreate(path, rd_h5f_acc_trunc(), fcpl, fapl), "H5Fcreate", path: path, object: "")
        } catch {
            rd_fault_guard_file_closed(slot)
            throw error
        }
        return H5File(id: id, path: path, fileSize: 0, guardSlot: slot)
    }

    /// Opens an existing file read-only (or read-write). Wraps `H5Fopen`.
    /// - Parameter requireComplete: refuse a file without the completion attribute.
    public static func open(_ path: String, writable: Bool = false, requireComplete: Bool = false) throws -> H5File {
        H5Library.prepare()
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw HDF5Error(.missing, path: path, object: "", detail: SystemError().description)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw HDF5Error(.invalid, path: path, object: "", detail: "not a regular file")
        }
        guard access(path, writable ? (R_OK | W_OK) : R_OK) == 0 else {
            throw HDF5Error(.invalid, path: path, object: "", detail: "not readable: \(SystemError().description)")
        }
        guard H5Fis_hdf5(path) > 0 else {
            throw HDF5Error(.invalid, path: path, object: "", detail: "not an HDF5 file (no valid superblock)")
        }
        let id: hid_t
        // Named from here on if HDF5 crashes on the file's metadata (H5Library.prepare's guard); one
        // opened to be changed counts as written.
        let slot = rd_fault_guard_file_opened(path, writable ? 1 : 0)
        do {
            id = try h5check(H5Fopen(path, writable ? rd_h5f_acc_rdwr() : rd_h5f_acc_rdonly(), rd_h5p_default()),
                             "H5Fopen", path: path, object: "")
        } catch let e as HDF5Error where e.detail.contains("already open for write") {
            rd_fault_guard_file_closed(slot)
            // HDF5 marks a file open for writing in its superblock and clears the mark on close: a
            // writer killed before it closed the file left it set (a temporary checkpoint of a run
            // killed mid-write), or one still writing it (where file locking is off). Partial either
            // way, whatever h5clear would make of it.
            throw HDF5Error(.incomplete, path: path, object: "", detail: Self.unclosedDetail)
        } catch {
            rd_fault_guard_file_closed(slot)
            throw error
        }
        let file = H5File(id: id, path: path, fileSize: Int(st.st_size), guardSlot: slot, reseals: writable)
        if requireComplete {
            // A root header that cannot be read is damage, named as such, not an unfinished write.
            guard try file.hasCompletionMark() else {
                throw HDF5Error(.incomplete, path: path, object: "", detail: incompleteDetail)
            }
            try file.checkDigest()
        }
        return file
    }

    /// What a file without the completion mark is (one line, after the path).
    public static let incompleteDetail =
        "incomplete or not written by rnn-dist (no '\(completeAttribute)' mark: a file of another program, or one whose writing did not finish)"

    /// What a file whose writer never closed it is (one line, after the path).
    public static let unclosedDetail =
        "incomplete: its writing did not finish, or is still going on (HDF5's open-for-write mark is set: the program writing it has not closed it, or was stopped first)"

    /// Whether the completion mark is present.
    public var isComplete: Bool { (try? hasCompletionMark()) == true }

    /// The root attribute `writeAtomically` sets with the completion mark: `contentDigest()` of what
    /// it wrote. Per-dataset checksums cannot see a file whose parts come from two writes of files
    /// laid out alike (another run's weights copied over it in place — `rsync --inplace`, `dd
    /// conv=notrunc` — and stopped, or read mid-copy); this can.
    public static let digestAttribute = "rnn_dist_digest"

    /// What a file whose digest does not match is (one line, after the path).
    public static let mixedDetail =
        "damaged: its parts do not belong together (the whole-file digest does not match: written over in place by a copy that did not finish, or read while one was running; replace files with a rename, e.g. cp to a temporary name, then mv)"

    /// A digest of everything the file holds but its two marks: every object's name, every attribute's
    /// name and stored bytes, and so every dataset's values through its content checksum attribute
    /// (which `read` checks). Objects in `walk()`'s order (depth first, names sorted), attributes by
    /// name.
    func contentDigest() throws -> UInt64 {
        var h = ContentChecksum()
        func add(_ bytes: [UInt8]) {
            var n = UInt64(bytes.count).littleEndian
            withUnsafeBytes(of: &n) { h.update($0) }
            bytes.withUnsafeBytes { h.update($0) }
        }
        func add(_ object: H5Object, _ name: String, _ attributes: [String]) throws {
            add(Array(name.utf8))
            for a in attributes.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
                if object === self && (a == Self.completeAttribute || a == Self.digestAttribute) { continue }
                add(Array(a.utf8))
                add(try object.attributeBytes(a))
            }
        }
        try add(self, "/", try attributeNames())
        for e in try walk() {
            let relative = String(e.name.dropFirst())
            switch e.kind {
            case .group: try add(try group(relative), e.name, e.attributes)
            case .dataset(let shape, let type):
                try add(try dataset(relative), e.name + " \(type.rawValue) \(shape)", e.attributes)
            case .other: add(Array(e.name.utf8))
            }
        }
        return h.value
    }

    /// Sets the digest again for the file's content now (a file opened writable, when it is closed).
    func resealDigest() throws {
        guard try attributeExists(Self.digestAttribute) else { return }
        try setAttribute(Self.digestAttribute, Int64(bitPattern: try contentDigest()))
    }

    /// Throws `mixedDetail` when the file has a digest and its content does not match it (files
    /// written before the digest have none: nothing to check).
    public func checkDigest() throws {
        guard try attributeExists(Self.digestAttribute) else { return }
        let want = UInt64(bitPattern: try intAttribute(Self.digestAttribute))
        guard try contentDigest() == want else {
            throw HDF5Error(.invalid, path: path, object: "", detail: Self.mixedDetail)
        }
    }

    /// Whether the completion mark is present, throwing when the root header cannot be read.
    func hasCompletionMark() throws -> Bool {
        try attributeExists(Self.completeAttribute) && intAttribute(Self.completeAttribute) == 1
    }

    /// Flushes buffers to the operating system (`H5Fflush`).
    func flush() throws {
        try h5check(H5Fflush(id, H5F_SCOPE_GLOBAL), "H5Fflush", path: path, object: "")
    }

    /// Closes the file, reporting failures (`H5Fclose`). Objects opened from it must be released first.
    func close() throws {
        guard isOpen else { return }
        if reseals { try resealDigest() }
        isOpen = false
        defer { rd_fault_guard_file_closed(guardSlot) }
        try h5check(H5Fclose(id), "H5Fclose", path: path, object: "")
    }

    deinit {
        if isOpen {
            if reseals { try? resealDigest() }
            H5Fclose(id)
            rd_fault_guard_file_closed(guardSlot)
        }
    }

    /// Most bytes a single read may allocate: a dataset of ours is never larger than its file
    /// (no compression), so a declared size beyond that means a damaged file.
    var maxReadBytes: Int { fileSize > 0 ? fileSize + (1 << 16) : Int.max }

    /// Writes a file atomically: `body` fills a temporary file in the same folder, then the completion
    /// attribute is set, the file flushed, closed and fsync'ed, and renamed over `path`. If anything
    /// fails the temporary file is removed and any previous file at `path` is untouched.
    public static func writeAtomically(to requested: String, _ body: (H5File) throws -> Void) throws {
        let path: String
        do { path = try atomicWriteTarget(requested) } catch let e as NotAFilePath {
            throw HDF5Error(.invalid, path: requested, object: "", detail: "is \(e.what), not a file; give the path of a file to create or replace")
        }
        let (dir, base, tmp) = atomicTemporary(for: path)
        var dirStat = stat()
        guard stat(dir, &dirStat) == 0, (dirStat.st_mode & S_IFMT) == S_IFDIR else {
            throw HDF5Error(.missing, path: path, object: "", detail: "folder '\(dir)' does not exist")
        }
        POSIX.removeStaleTemporaries(dir: dir, base: base)
        let existed = access(path, F_OK) == 0
        do {
            // A stop signal meanwhile removes the temporary (in commands that ask for it).
            try SignalTemporaries.writing(tmp) {
                let file = try create(tmp)
                do {
                    try body(file)
                    try file.setAttribute(digestAttribute, Int64(bitPattern: try file.contentDigest()))
                    try file.setAttribute(completeAttribute, Int64(1))
                    try file.flush()
                    try file.close()
                } catch {
                    try? file.close()
                    throw error
                }
                try fsyncPath(tmp)
                guard rename(tmp, path) == 0 else {
                    throw HDF5Error(.invalid, path: path, object: "",
                                    detail: "rename from temporary file failed: \(SystemError().description)")
                }
            }
            try? fsyncPath(dir)
        } catch {
            unlink(tmp)
            // Name the file the caller asked for (not the temporary one) and, for a failed write,
            // the system's reason, in one short line: e.g. a full disk.
            if let e = error as? HDF5Error, let reason = e.detail.systemReason {
                throw HDF5Error(.invalid, path: path, object: "", detail: "cannot write (\(reason))" + (existed ? "; the previous file is kept" : ""))
            }
            throw error
        }
    }

    static func fsyncPath(_ p: String) throws {
        let fd = Glibc.open(p, O_RDONLY)
        guard fd >= 0 else {
            throw HDF5Error(.invalid, path: p, object: "", detail: "cannot open for fsync: \(SystemError().description)")
        }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else {
            throw HDF5Error(.invalid, path: p, object: "", detail: "fsync failed: \(SystemError().description)")
        }
    }
}

extension String {
    /// The C library's message HDF5 quotes when a system call failed (`error message = '…'`).
    var systemReason: String? {
        guard let r = firstRange(of: "error message = '") else { return nil }
        let rest = self[r.upperBound...]
        return rest.firstIndex(of: "'").map { String(rest[..<$0]) }
    }
}
