// The few C library facts several modules report: why a system call failed, the host's name, and
// a value of a /proc file.
// Linux only (Glibc), as the package is.

import CTemporaries
import Glibc

/// The error of the system call that just failed: its `errno`, captured when this is made, so make
/// it right after the failing call, before anything else can set `errno` again.
public struct SystemError: Error, Sendable, CustomStringConvertible {
    public let code: Int32

    /// - Parameter code: an error number; default the calling thread's `errno` now.
    public init(_ code: Int32 = errno) { self.code = code }

    /// The C library's sentence for the code, e.g. "No such file or directory".
    public var description: String { String(cString: strerror(code)) }
}

/// This host's name (`gethostname`), or "unknown".
public func hostName() -> String {
    var buffer = [UInt8](repeating: 0, count: 256)
    let ok = buffer.withUnsafeMutableBufferPointer { p in
        p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { gethostname($0, p.count - 1) } == 0
    }
    guard ok, let end = buffer.firstIndex(of: 0), end > 0 else { return "unknown" }
    return String(decoding: buffer[..<end], as: UTF8.self)
}

/// Bytes an unprivileged process may still write on the file system holding `path` (statvfs's
/// f_bavail × f_frsize), or nil where it cannot be asked (a missing folder).
public func freeBytes(atPath path: String) -> Int? {
    var s = statvfs()
    guard statvfs(path, &s) == 0 else { return nil }
    let (bytes, overflow) = Int(clamping: s.f_bavail).multipliedReportingOverflow(by: Int(clamping: s.f_frsize))
    return overflow ? Int.max : bytes
}

/// The number after `field` on its line of a /proc file (e.g. "MemAvailable:" of /proc/meminfo,
/// "Pss:" of /proc/self/smaps_rollup; those are in kB), or nil where the file or field is missing.
public func procValue(_ path: String, field: String) -> Int? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var line: UnsafeMutablePointer<CChar>?
    var capacity = 0
    defer { free(line) }
    while getline(&line, &capacity, file) > 0 {
        let text = String(cString: line!)
        guard text.hasPrefix(field) else { continue }
        return text.dropFirst(field.count).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) }
    }
    return nil
}

/// A file's identity and version (device, inode, size, modification time; links followed), or
/// nil: an atomic rewrite (a rename over it) changes it.
public func fileStamp(_ path: String) -> [Int]? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return [Int(st.st_dev), Int(st.st_ino), Int(st.st_size), Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec)]
}

/// Whether both paths name one existing file (links followed, another spelling, a hard link): the
/// same device and inode.
public func sameFile(_ a: String, _ b: String) -> Bool {
    guard let x = fileStamp(a), let y = fileStamp(b) else { return false }
    return x.prefix(2) == y.prefix(2)
}

/// Whether a file whose name ends in `suffix`, in `folder` or in its folders down to `depth` levels
/// (links followed, as the folder readers follow them), is the file `path` names — the same device
/// and inode, whatever the spelling, link or hard link; false when `path` names no file.
public func folderHoldsFile(_ folder: String, _ path: String, suffix: String, depth: Int) -> Bool {
    guard let target = fileStamp(path)?.prefix(2) else { return false }
    func walk(_ dir: String, _ level: Int) -> Bool {
        guard let d = opendir(dir) else { return false }
        defer { closedir(d) }
        while let e = readdir(d) {
            let name = String(decoding: withUnsafeBytes(of: e.pointee.d_name) { Array($0.prefix { $0 != 0 }) }, as: UTF8.self)
            if name == "." || name == ".." { continue }
            // Only links, unknown types and a plain file with the target's inode need a stat: the
            // 100,000 reviews of an extracted aclImdb are told apart by readdir alone.
            let type = Int32(e.pointee.d_type)
            if type == Int32(DT_REG) && (!name.hasSuffix(suffix) || Int(e.pointee.d_ino) != target[target.startIndex + 1]) { continue }
            if type == Int32(DT_DIR) && level >= depth { continue }
            let p = dir + "/" + name
            var st = stat()
            guard stat(p, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                if level < depth && walk(p, level + 1) { return true }
            } else if name.hasSuffix(suffix) && [Int(st.st_dev), Int(st.st_ino)] == Array(target) {
                return true
            }
        }
        return false
    }
    return walk(folder, 0)
}

/// What an input path is when it is no file to read text from: "a folder", "a device" (/dev/zero
/// would be read forever), "a socket"; nil for a regular file, a FIFO (a pipe, `<(zcat …)`), or
/// nothing there (the open that follows says why).
public func notAnInputFile(_ path: String) -> String? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    switch st.st_mode & S_IFMT {
    case S_IFDIR: return "a folder"
    case S_IFCHR, S_IFBLK: return "a device"
    case S_IFSOCK: return "a socket"
    default: return nil
    }
}

/// An output path that a write by temporary file and rename must not replace: a folder, a device
/// (`/dev/null`), a FIFO, a socket, or a symbolic link to none of the others or to nothing.
public struct NotAFilePath: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let what: String
    public var description: String {
        "\(path): is \(what), not a file; give the path of a file to create or replace"
    }
}

/// Where an atomic write (a temporary file in the same folder, renamed over the target) to `path`
/// lands: `path` when nothing or a regular file is there; the file a symbolic link points at (so the
/// link stays a link and its file is replaced); otherwise throws `NotAFilePath` — renaming over a
/// device or a FIFO would replace the node itself.
public func atomicWriteTarget(_ path: String) throws -> String {
    // "new.h5/" names a folder: refused now, not at the rename after all the work.
    if path.count > 1 && path.hasSuffix("/") { throw NotAFilePath(path: path, what: "a folder's path (it ends in '/')") }
    var s = stat()
    guard lstat(path, &s) == 0 else { return path }          // nothing there (or unreadable: the write says why)
    func kind(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "a folder"
        case S_IFCHR, S_IFBLK: return "a device"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }
    if (s.st_mode & S_IFMT) != S_IFLNK {
        if let what = kind(s.st_mode) { throw NotAFilePath(path: path, what: what) }
        return path
    }
    var t = stat()
    guard stat(path, &t) == 0 else { throw NotAFilePath(path: path, what: "a symbolic link to a missing file") }
    // What the link reaches first: /dev/stdout into a pipe reaches a FIFO through /proc's
    // "pipe:[…]", which is no path (it was called a link to a missing file).
    if let what = kind(t.st_mode) { throw NotAFilePath(path: path, what: "a symbolic link to \(what)") }
    guard let resolved = realpath(path, nil) else {
        throw NotAFilePath(path: path, what: "a symbolic link to a file without a path")
    }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// A path's folder and last name, as `dirname` and `basename` give them: "." for a bare name, "/" for
/// a name at the root; trailing slashes are not part of the name ("a/b/" → "a", "b").
public func splitFolder(_ path: String) -> (folder: String, name: String) {
    var p = Substring(path)
    while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
    guard let slash = p.lastIndex(of: "/") else { return (".", String(p)) }
    let name = String(p[p.index(after: slash)...])
    var folder = p[..<slash]
    while folder.count > 1 && folder.hasSuffix("/") { folder = folder.dropLast() }   // "a//b"
    return (folder.isEmpty ? "/" : String(folder), name.isEmpty ? "/" : name)
}

/// The temporary file an atomic write of `path` fills before renaming it over `path`: in the same
/// folder (a rename does not cross file systems), hidden, named after the file and this process
/// (`.NAME.tmp-PID-RANDOM`, which `removeStaleTemporaries` recognises once PID is gone).
public func atomicTemporary(for path: String) -> (folder: String, name: String, temporary: String) {
    let (folder, name) = splitFolder(path)
    let hidden = ".\(name).tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    // A bare name stays relative ("x.h5" → ".x.h5.tmp-…"), as the caller wrote it.
    let temporary = folder == "." && !path.hasPrefix("./") ? hidden : (folder == "/" ? "/" : folder + "/") + hidden
    return (folder, name, temporary)
}

/// Removes `.BASE.tmp-PID…` files in `dir` left by writers that were killed (no process PID): the
/// temporary names of rnn-dist's atomic writes (HDF5 files, and history.csv, SVG, ONNX).
public func removeStaleTemporaries(dir: String, base: String) {
    guard let d = opendir(dir) else { return }
    defer { closedir(d) }
    let prefix = ".\(base).tmp-"
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard name.hasPrefix(prefix), let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }) else { continue }
        if kill(pid, 0) != 0 && errno == ESRCH { unlink(dir + "/" + name) }
    }
}

/// Temporaries of atomic writes that a stop signal removes (see `CTemporaries`).
public enum SignalTemporaries {
    /// Runs `body` with `path` remembered as a temporary being written.
    public static func writing<T>(_ path: String, _ body: () throws -> T) rethrows -> T {
        let slot = rd_temporary_register(path)
        defer { rd_temporary_unregister(slot) }
        return try body()
    }

    /// SIGINT, SIGTERM and SIGHUP remove the temporaries being written, then end the process by
    /// that signal. For commands with no signal handling of their own (prepare, export, plot).
    public static func removeOnStopSignals() { rd_temporaries_remove_on_signals() }
}
