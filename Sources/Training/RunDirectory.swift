import Foundation

/// The run folder, made ready by rank 0 before the first batch: created if missing, checked
/// writable (a file is created and removed in it), and locked for this run. Every failure is one
/// line naming the folder and the reason.
///
/// The lock is `flock` on `RUN_DIR/.lock`, which holds the holder's pid, host and start time. The
/// kernel releases it when the holder exits or dies (no stale lock to clean up); a second run on the
/// same folder is refused naming the holder.
public struct RunDirectory {
    public let path: String

    /// Prepares and locks `path`; the lock is held until this process exits (its descriptor is
    /// never closed), which is as long as it writes into the folder.
    @discardableResult
    public init(_ path: String) throws {
        self.path = path
        try Self.createFolder(path)
        try checkWritable()
        try lock()
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
                throw TrainingError.invalid("\(path): cannot create the folder (\(String(cString: strerror(errno))))")
            }
        }
    }

    private func checkWritable() throws {
        let probe = path + "/.rnn-dist-write-test-\(getpid())"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TrainingError.invalid("\(path): the run folder is not writable (\(String(cString: strerror(errno))))")
        }
        close(fd)
        unlink(probe)
    }

    private func lock() throws {
        let lockPath = path + "/.lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TrainingError.invalid("\(lockPath): cannot open the run lock (\(String(cString: strerror(errno))))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            var buf = [UInt8](repeating: 0, count: 512)
            let n = read(fd, &buf, buf.count)
            close(fd)
            let holder = String(decoding: buf.prefix(max(0, n)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw TrainingError.invalid(busy
                ? "\(path): in use by another rnn-dist run (\(holder.isEmpty ? "holder unknown" : holder)); wait for it or use another --run-dir"
                : "\(lockPath): cannot lock the run folder (\(String(cString: strerror(errno))))")
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let since = ISO8601DateFormatter().string(from: Date())
        let info = Array("pid \(getpid()) on host \(String(cString: host)), since \(since)\n".utf8)
        _ = ftruncate(fd, 0)
        _ = info.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }
}
