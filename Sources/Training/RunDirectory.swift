import Foundation
import POSIX

/// The run folder, made ready by rank 0 before the first batch: created if missing, checked
/// writable (a file is created and removed in it), and locked for this run. Every failure is one
/// line naming the folder and the reason.
///
/// The lock is `flock` on `RUN_DIR/.lock`, which holds the holder's pid, host and start time. The
/// kernel releases it when the holder exits or dies (no stale lock to clean up); a second run on the
/// same folder is refused naming the holder.
public struct RunDirectory {
    let path: String

    /// Prepares and locks `path`; the lock is held until this process exits (its descriptor is
    /// never closed), which is as long as it writes into the folder.
    @discardableResult
    public init(_ path: String) throws {
        self.path = path
        try Self.createFolder(path)
        try checkWritable()
        let fd = try lock()
        // Each file the run writes is replaced by a rename: what is in its place must be a file (or
        // a link to one), or the run would fail at its first write, after training an epoch.
        // Temporaries of writers that were killed are removed now, with the lock held (so no writer
        // of this folder lives, on any host; a refused run touches nothing): each was removed by the
        // next write of its own file only, and on a full disk the model's write at an epoch's end
        // failed before the checkpoint's would have removed a killed checkpoint write's (every
        // restart, again).
        for file in RunFiles(directory: path).all {
            let target: String
            do { target = try atomicWriteTarget(file) } catch { throw TrainingError.invalid("\(error)") }
            let (dir, base) = splitFolder(target)
            removeStaleTemporaries(dir: dir, base: base)
        }
        // A full disk (or quota) is found at set-up (exit 2), not at the first epoch's end after an
        // epoch of training (exit 1, and a supervised job restarted into the same failure). (The
        // lock's note proved nothing: it reuses its own block.)
        try Self.checkWritable(path, what: "run folder", room: true)
        try writeNote(fd)
    }

    /// Creates `path` and its missing parents (mode 0755) with a readable reason on failure.
    public static func createFolder(_ path: String) throws {
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw TrainingError.invalid("\(path): is a file, not a folder") }
            return
        }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + part
            if stat(prefix, &st) == 0 {
                guard (st.st_mode & S_IFMT) == S_IFDIR else {
                    throw TrainingError.invalid("\(path): cannot create the folder: \(prefix) is a file")
                }
                continue
            }
            guard mkdir(prefix, 0o755) == 0 || errno == EEXIST else {
                throw TrainingError.invalid("\(path): cannot create the folder (\(SystemError().description))")
            }
        }
        // A dangling link where the folder goes: mkdir said EEXIST, and there is still no folder.
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw TrainingError.invalid("\(path): cannot create the folder (a link to nowhere, or removed meanwhile)")
        }
    }

    /// `createFolder`, then a file made and removed in it: a folder files cannot be written into
    /// (read-only, /proc) is refused now, not at the first write.
    public static func createWritableFolder(_ path: String, what: String = "folder") throws {
        try createFolder(path)
        try checkWritable(path, what: what)
    }

    private func checkWritable() throws { try Self.checkWritable(path, what: "run folder") }

    /// A file can be created in `path`; with `room`, it can also hold one block (4 KiB).
    private static func checkWritable(_ path: String, what: String, room: Bool = false) throws {
        let probe = path + "/.rnn-dist-write-test-\(getpid())"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TrainingError.invalid("\(path): the \(what) is not writable (\(SystemError().description))")
        }
        let failed = room ? posix_fallocate(fd, 0, 4096) : 0
        close(fd)
        unlink(probe)
        if failed == ENOSPC || failed == EDQUOT {
            throw TrainingError.invalid("\(path): the \(what) is full (\(SystemError(failed).description): no room for 4 KiB)")
        }
    }

    /// Seconds to wait for a run folder's lock held by a process on this host.
    static let lockWait = 10.0

    /// The lock file's note of who holds it ("pid 123 on host h, since …"), or "".
    private static func holder(_ fd: Int32) -> String {
        var buf = [UInt8](repeating: 0, count: 512)
        let n = pread(fd, &buf, buf.count, 0)
        return String(decoding: buf.prefix(max(0, n)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Takes the folder's lock (waiting, within `lockWait`, for a holder on this host); its
    /// descriptor, whose note `writeNote` then writes.
    private func lock() throws -> Int32 {
        let lockPath = path + "/.lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TrainingError.invalid("\(lockPath): cannot open the run lock (\(SystemError().description))")
        }
        // A holder on this host may be a rank of a job whose mpirun was killed a moment ago: Open
        // MPI's ranks then live on for about a second. Wait for it, within a bound; also for a
        // holder that has not yet written who it is (two runs started at once), to name it.
        let deadline = Date().addingTimeInterval(Self.lockWait)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let error = SystemError()
            let holder = Self.holder(fd)
            guard error.code == EWOULDBLOCK else {
                close(fd)
                throw TrainingError.invalid("\(lockPath): cannot lock the run folder (\(error))")
            }
            // An empty note: the holder has just locked and not yet written it (or it is being written).
            guard holder.isEmpty || holder.contains("on host \(hostName()),"), Date() < deadline else {
                close(fd)
                throw TrainingError.busy("\(path): in use by another rnn-dist run (\(holder.isEmpty ? "holder unknown" : holder)); " +
                                         "wait for it or use another --run-dir")
            }
            usleep(100_000)
        }
        return fd
    }

    /// Who holds the lock, for a second run to name.
    private func writeNote(_ fd: Int32) throws {
        let since = ISO8601DateFormatter().string(from: Date())
        let info = Array("pid \(getpid()) on host \(hostName()), since \(since)\n".utf8)
        _ = ftruncate(fd, 0)
        let written = info.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        if written != info.count {
            let why = written < 0 ? SystemError().description : "\(written) of \(info.count) bytes written"
            throw TrainingError.invalid("\(path): the run folder is not writable (\(why): writing its lock note)")
        }
    }
}

/// Files a run writes into its run directory (rank 0 only).
public struct RunFiles: Sendable {
    let directory: String
    var weights: String { directory + "/model.weights.h5" }
    public var best: String { directory + "/best.weights.h5" }
    public var checkpoint: String { directory + "/checkpoint.h5" }
    var history: String { directory + "/history.h5" }
    /// Keras `CSVLogger`'s file.
    var csv: String { directory + "/history.csv" }
    public var all: [String] { [weights, best, checkpoint, history, csv] }
    public init(directory: String) { self.directory = directory }
}
