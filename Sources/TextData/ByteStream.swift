import Archive
#if canImport(Glibc)
import Glibc
import POSIX
#endif

/// A text source file read in chunks: plain, or one compressed file (`.gz`, `.bz2`, `.xz`, `.zst`)
/// decompressed as a stream by libarchive's raw filter. A file whose bytes are not what its name
/// says (a `.gz` that is not gzip, a `.csv` that is gzip, zip or HDF5 data) is refused.
struct ByteStream {
    /// The compression suffixes read through libarchive, with the filter libarchive must report.
    static let compressions: [(suffix: String, filter: String)] = [
        (".gz", "gzip"), (".bz2", "bzip2"), (".xz", "xz"), (".zst", "zstd"),
    ]

    /// `name` without a compression suffix, and that suffix's filter when there was one.
    static func strip(_ name: String) -> (base: String, filter: String?) {
        for c in compressions where name.hasSuffix(c.suffix) && name.count > c.suffix.count {
            return (String(name.dropLast(c.suffix.count)), c.filter)
        }
        return (name, nil)
    }

    /// What a file's first bytes say it is, when it is a known binary format.
    static func binaryKind(_ p: UnsafeBufferPointer<UInt8>) -> String? {
        func starts(_ m: [UInt8]) -> Bool { p.count >= m.count && zip(p, m).allSatisfy { $0 == $1 } }
        if starts([0x1F, 0x8B]) { return "gzip" }
        if starts([0x42, 0x5A, 0x68]) { return "bzip2" }
        if starts([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) { return "xz" }
        if starts([0x28, 0xB5, 0x2F, 0xFD]) { return "zstd" }
        if starts([0x50, 0x4B, 0x03, 0x04]) { return "zip" }
        if starts([0x89, 0x48, 0x44, 0x46]) { return "HDF5" }
        if p.count > 262, p[257] == 0x75, p[258] == 0x73, p[259] == 0x74, p[260] == 0x61, p[261] == 0x72 { return "tar" }
        return nil
    }

    /// Calls `body` with consecutive chunks of the (decompressed) file; `what` names the expected
    /// content for messages ("CSV", "JSON Lines").
    static func read(_ path: String, what: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        let chunk = 1 << 20
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        defer { buffer.deallocate() }
        var first = true
        func check(_ p: UnsafeBufferPointer<UInt8>) throws {
            if first, let kind = binaryKind(p) {
                throw PrepareError.notText(path: path, detail: "is \(kind) data, not \(what)")
            }
            first = false
        }
        if let filter = strip(path).filter {
            let stream: CompressedStream
            do { stream = try CompressedStream(path: path) } catch let e as ArchiveError {
                throw PrepareError.archive(path: path, detail: e.detail)
            }
            guard stream.filterName == filter else {
                throw PrepareError.notText(path: path, detail: "is not \(filter) data (libarchive found: \(stream.filterName))")
            }
            while true {
                let n: Int
                do { n = try stream.read(into: buffer, count: chunk) } catch let e as ArchiveError {
                    throw PrepareError.archive(path: path, detail: e.detail)
                }
                if n == 0 { break }
                let p = UnsafeBufferPointer(start: buffer, count: n)
                try check(p)
                try body(p)
            }
            return
        }
        if let kind = notAnInputFile(path) { throw PrepareError.unreadable(path: path, detail: "is \(kind), not a file") }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            if errno == ENOENT { throw PrepareError.sourceMissing(path: path) }
            throw PrepareError.unreadable(path: path, detail: SystemError().description)
        }
        defer { close(fd) }
        while true {
            let n = Glibc.read(fd, buffer, chunk)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw PrepareError.unreadable(path: path, detail: SystemError().description) }
            if n == 0 { break }
            let p = UnsafeBufferPointer(start: buffer, count: n)
            try check(p)
            try body(p)
        }
    }
}

extension ByteStream {
    /// A line longer than `readLines`' `maxLineBytes`: refused when it passes them, before it is held whole.
    struct LineTooLong: Error { var limit: Int }

    /// `read`, cut into lines: `line` gets each line without its LF (a last line without one too),
    /// valid during the call; `chunk` sees every chunk first (checks, checksums). A line longer than
    /// `maxLineBytes` throws `LineTooLong`.
    static func readLines(_ path: String, what: String, maxLineBytes: Int = .max,
                          chunk: (UnsafeBufferPointer<UInt8>) throws -> Void = { _ in },
                          line: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        var pending: [UInt8] = []
        try read(path, what: what) { bytes in
            try chunk(bytes)
            var start = 0
            while let nl = bytes.index(of: 10, from: start) {
                guard pending.count + (nl - start) <= maxLineBytes else { throw LineTooLong(limit: maxLineBytes) }
                if pending.isEmpty {
                    try line(UnsafeBufferPointer(rebasing: bytes[start ..< nl]))
                } else {
                    pending.append(contentsOf: bytes[start ..< nl])
                    try pending.withUnsafeBufferPointer { try line($0) }
                    pending.removeAll(keepingCapacity: true)
                }
                start = nl + 1
            }
            guard pending.count + (bytes.count - start) <= maxLineBytes else { throw LineTooLong(limit: maxLineBytes) }
            pending.append(contentsOf: bytes[start...])
        }
        if !pending.isEmpty { try pending.withUnsafeBufferPointer { try line($0) } }
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// The index of the first `byte` at or after `start` (memchr), or nil.
    func index(of byte: UInt8, from start: Int) -> Int? {
        guard let base = baseAddress, start < count, let hit = memchr(base + start, Int32(byte), count - start) else { return nil }
        return UnsafePointer(hit.assumingMemoryBound(to: UInt8.self)) - base
    }
}
