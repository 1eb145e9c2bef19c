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
    private let check: (@Sendable (String) -> String?)?

    init(path: String, threads: Int, check: (@Sendable (String) -> String?)? = nil) throws {
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
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        // Unopenable: the load names why (missing, not readable, …).
        guard fd >= 0 else { return try LoadedModel(path: path, threads: threads, generation: generation) }
        defer { close(fd) }
        let here = "/proc/self/fd/\(fd)", there = "/proc/\(getpid())/fd/\(fd)"
        func named(_ text: String) -> String {
            text.replacingOccurrences(of: there, with: path).replacingOccurrences(of: here, with: path)
        }
        if let problem = check(there) { throw ReloadRefused(description: named(problem)) }
        do { return try LoadedModel(path: here, threads: threads, generation: generation) } catch {
            if FileIdentity(path: here) != FileIdentity(path: path) {
                throw ReloadRefused(description: "\(path): replaced while it was being reloaded; the new file is read at the next reload")
            }
            throw ReloadRefused(description: named("\(error)"))
        }
    }

    /// Reloads (SIGHUP).
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
        if case .failure = reload() { lastFailed = now } else { lastFailed = nil }
    }
    private var lastFailed: FileIdentity?
}
