import Foundation

/// Holds a run folder's lock as a run would (flock on RUN_DIR/.lock, the holder described inside),
/// creating the folder; close the returned descriptor to let go.
/// - Parameter holder: e.g. "pid 4242 on host test-host, since 2026-11-30T00:00:00Z".
public func holdRunFolderLock(_ dir: String, holder: String) throws -> Int32 {
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let fd = open(dir + "/.lock", O_RDWR | O_CREAT, 0o644)
    guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: dir + "/.lock"])
    }
    _ = (holder + "\n").withCString { write(fd, $0, strlen($0)) }
    return fd
}
