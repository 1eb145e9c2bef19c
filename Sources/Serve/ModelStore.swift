// The model `serve` answers with, and its reloads. Loading happens off the request path: a new file is
// read and checked completely before it replaces the old model, so a request never sees a half-loaded
// model and a bad file leaves the old one answering.

import Foundation
import Training
#if canImport(Glibc)
import Glibc
#endif

/// The loaded weights file: one classifier per compute thread (a model keeps its work buffers).
final class LoadedModel: Sendable {
    nonisolated(unsafe) let replicas: [Classifier]
    let classNames: [String]
    let summary: String
    /// When the file was loaded (seconds since 1970) and how long loading took.
    let loadedAt: Double
    let loadSeconds: Double
    let file: FileIdentity?
    /// 1 for the first model, +1 per reload.
    let generation: Int

    init(path: String, threads: Int, generation: Int) throws {
        let start = Date()
        // The identity is read before the file, so a replacement during the read is seen next time.
        file = FileIdentity(path: path)
        let first = try Classifier(path: path)
        replicas = [first] + (1 ..< max(1, threads)).map { _ in first.replica() }
        classNames = first.classNames
        summary = first.metadata.config.model.summary
        loadedAt = Date().timeIntervalSince1970
        loadSeconds = Date().timeIntervalSince(start)
        self.generation = generation
    }
}

/// A replacement file that `ServeOptions.reloadCheck` refused.
struct ReloadRefused: Error, CustomStringConvertible {
    let description: String
}

/// A reload that could not be tried now for a reason of the server's, not the file's (no file
/// descriptor left, no process for the check): the file is not held bad, and the watch tries it again.
public struct ReloadDeferred: Error, CustomStringConvertible {
    public let description: String
    /// "PATH: WHAT (the system's reason for `code`); not held against the file: …".
    public init(_ path: String, _ what: String, code: Int32) {
        description = "\(path): \(what) (\(String(cString: strerror(code)))); not held against the file: the watch, or a SIGHUP, tries it again"
    }
    init(description: String) { self.description = description }
}

/// Whether this process has no file descriptor left (EMFILE) or the system none (ENFILE).
func descriptorsExhausted() -> Bool {
    let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
    if fd >= 0 { close(fd); return false }
    return errno == EMFILE || errno == ENFILE
}

/// What tells a file replaced (a new inode from an atomic rename) or rewritten (size, mtime).
struct FileIdentity: Equatable, Sendable {
    let device: UInt64, inode: UInt64, size: Int64, modified: Int64

    init?(path: String) {
        var s = stat()
        guard stat(path, &s) == 0 else { return nil }
        device = UInt64(s.st_dev)
        inode = UInt64(s.st_ino)
        size = Int64(s.st_size)
        modified = Int64(s.st_mtim.tv_sec) * 1_000_000_000 + Int64(s.st_mtim.tv_nsec)
    }
}

/// Holds the current model; `reload` swaps in a new one only when it loaded completely.
final class ModelStore: @unchecked Sendable {
    let path: String
    let threads: Int
    private let lock = NSLock()
    private var loaded: LoadedModel
    /// Called after each reload attempt: the new model or the error.
    var onReload: (@Sendable (Result<LoadedModel, any Error>) -> Void)?
    /// Reloads read files and wait on this serial queue's thread, not on Swift concurrency's few
    /// threads (which the HTTP side awaits on); being serial, it also keeps SIGHUP and the file
    /// watch from loading at once.
    private let queue = DispatchQueue(label: "rnn-dist-serve-reload")

    /// Run before each reload (ServeOptions.reloadCheck).
    private let check: (@Sendable (String) throws -> String?)?

    init(path: String, threads: Int, check: (@Sendable (String) throws -> String?)? = nil) throws {
        self.path = path
        self.threads = threads
        self.check = check
        loaded = try LoadedModel(path: path, threads: threads, generation: 1)
    }

    var current: LoadedModel {
        lock.lock(); defer { lock.unlock() }
        return loaded
    }

    /// Loads the file again (on `queue`); on success the next batch uses it, on failure the old model stays.
    private func reload() -> Result<LoadedModel, any Error> {
        let result = Result { try loadChecked() }
        if case .success(let m) = result {
            lock.lock(); loaded = m; lock.unlock()
        }
        onReload?(result)
        return result
    }

    /// The file at `path` now, checked by `check` first. The check and the load read one file: the
    /// one open on a descriptor taken before either (through /proc/PID/fd/N), so a file renamed over
    /// `path` in between (a probe swapped a crafted file in 0.14 s after SIGHUP) is not loaded
    /// unchecked: HDF5 cannot open the replaced file by that name, the reload fails saying so, and
    /// the new file is checked and loaded at the next reload (the watch sees its new identity).
    /// Messages name `path`.
    private func loadChecked() throws -> LoadedModel {
        let generation = current.generation + 1
        guard let check else { return try LoadedModel(path: path, threads: threads, generation: generation) }
        // What is not a regular file is not opened at all (opening a device can act on it); the open
        // does not block either, and the descriptor is checked again (the path may change between):
        // a FIFO put at the path blocked here, and so every later reload and the exit at SIGTERM.
        var before = stat()
        if stat(path, &before) == 0, (before.st_mode & S_IFMT) != S_IFREG {
            throw ReloadRefused(description: "\(path): not a regular file")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let reason = errno
            if reason == EMFILE || reason == ENFILE {
                throw ReloadDeferred(path, "cannot be opened now", code: reason)
            }
            // Unopenable: the load names why (missing, not readable, …).
            return try LoadedModel(path: path, threads: threads, generation: generation)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw ReloadRefused(description: "\(path): not a regular file")
        }
        let here = "/proc/self/fd/\(fd)", there = "/proc/\(getpid())/fd/\(fd)"
        func named(_ text: String) -> String {
            text.replacingOccurrences(of: there, with: path).replacingOccurrences(of: here, with: path)
        }
        let problem: String?
        do { problem = try check(there) } catch let e as ReloadDeferred { throw ReloadDeferred(description: named(e.description)) }
        if let problem { throw ReloadRefused(description: named(problem)) }
        do { return try LoadedModel(path: here, threads: threads, generation: generation) } catch {
            // Out of descriptors, HDF5 called the file "not an HDF5 file": the server's state, not the file's.
            if descriptorsExhausted() {
                throw ReloadDeferred(path, "cannot be read now", code: EMFILE)
            }
            if FileIdentity(path: here) != FileIdentity(path: path) {
                throw ReloadRefused(description: "\(path): replaced while it was being reloaded; the new file is read at the next reload")
            }
            throw ReloadRefused(description: named("\(error)"))
        }
    }

    /// Reloads (SIGHUP), without waiting. Signals that come while a reload waits to start join it:
    /// a burst of 50 SIGHUPs loaded the file 50 times (each with a checking process), and a new
    /// file waited behind them; now it is at most the reload running and one after it.
    func requestReload() {
        lock.lock()
        defer { lock.unlock() }
        guard !reloadWaiting else { return }
        reloadWaiting = true
        queue.async {
            self.lock.lock(); self.reloadWaiting = false; self.lock.unlock()
            _ = self.reload()
        }
    }
    private var reloadWaiting = false

    /// Reloads now (on the queue) and returns when done (tests).
    func reloadInBackground() async { await onQueue { _ = self.reload() } }

    /// Reloads when the file changed (the file watch).
    func reloadIfChangedInBackground() async { await onQueue { self.reloadIfChanged() } }

    private func onQueue(_ work: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            queue.async { work(); c.resume() }
        }
    }

    /// Reloads when the file on disk is not the one loaded (checked by the file watch).
    private func reloadIfChanged() {
        let now = FileIdentity(path: path)
        guard let now, now != current.file else { return }
        // A file being written in place may still grow: wait until it has been still for a moment.
        usleep(200_000)
        guard FileIdentity(path: path) == now else { return }
        // A failed load of this version is not retried until the file changes again.
        if lastFailed == now { return }
        switch reload() {
        case .success: lastFailed = nil
        case .failure(let e) where e is ReloadDeferred: lastFailed = nil   // not the file's fault: tried again
        case .failure: lastFailed = now
        }
    }
    private var lastFailed: FileIdentity?
}
