import CFaultGuard
import CHDF5

/// An HDF5 failure, as one readable line naming the file, the object and the problem.
public struct HDF5Error: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The C library reported a failure (its error stack is in `detail`).
        case library(call: String)
        /// The object is missing.
        case missing
        /// The object exists but has the wrong type, shape, size or value.
        case invalid
        /// The file lacks the completion mark written last by rnn-dist: it is partial.
        case incomplete
    }
    let kind: Kind
    let path: String
    let object: String
    let detail: String

    init(_ kind: Kind, path: String, object: String, detail: String) {
        self.kind = kind
        self.path = path
        self.object = object
        self.detail = detail
    }

    public var description: String {
        var s = path
        if !object.isEmpty { s += ": \(object)" }
        switch kind {
        case .library(let call): s += ": \(call) failed"
            if !detail.isEmpty { s += " (\(detail))" }
        case .missing: s += ": missing" + (detail.isEmpty ? "" : " (\(detail))")
        case .invalid, .incomplete: s += ": \(detail)"
        }
        return s
    }
}

/// HDF5 set-up: the library opened once per process, and its own error printing silenced
/// (`H5Eset_auto2`) so that errors reach the user only as `HDF5Error` lines. A thread-safe HDF5
/// keeps that setting per thread (`serve` reloads a model on another thread, which printed HDF5's
/// multi-line dump), so it is set again at every file opened or created: a few nanoseconds.
enum H5Library {
    nonisolated(unsafe) static var ready = false
    static func prepare() {
        if ready { _ = rd_h5_silence_errors(); return }
        // No library shutdown at exit: a file whose flush failed (a full disk) stays half-open in
        // HDF5, and its atexit handler then crashes closing it (seen: exit 139 after the right error
        // line). Every file we write is closed (or abandoned and unlinked) explicitly; read-only
        // handles need no flush.
        _ = H5dont_atexit()
        _ = H5open()
        _ = rd_h5_silence_errors()
        // HDF5 1.10 follows addresses in metadata whose checksums match: a crafted file (an address
        // changed, its checksum recomputed) crashed it inside H5Literate. A fault with HDF5 on the
        // stack while a file is open for reading (and none is being written) ends the process with
        // one line naming the file(s) and exit status 2 (CFaultGuard); any other fault goes to the
        // handler that was there. RNN_DIST_FAULT_GUARD=0 turns the guard off.
        _ = rd_fault_guard_install("libhdf5")
        ready = true
    }

    /// The library's error stack as one line (then cleared).
    static func stackMessage() -> String {
        var buf = [CChar](repeating: 0, count: 1024)
        rd_h5_error_message(&buf, buf.count)
        return decodeCString(buf)
    }
}

/// Throws an `HDF5Error` when an HDF5 call returned a negative status or id.
@inline(__always)
@discardableResult
func h5check<T: BinaryInteger>(_ result: T, _ call: @autoclosure () -> String,
                               path: String, object: String) throws -> T {
    if result < 0 {
        throw HDF5Error(.library(call: call()), path: path, object: object, detail: H5Library.stackMessage())
    }
    return result
}

/// The text of a NUL-terminated C buffer (invalid UTF-8 repaired).
func decodeCString(_ buf: [CChar]) -> String {
    let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
