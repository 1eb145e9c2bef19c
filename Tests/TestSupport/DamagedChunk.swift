import Foundation
import HDF5

/// Zeroes the stored chunk (its values and its Fletcher-32) that holds `row` of `dataset` in the
/// file at `path`, as a zero-filled disk block would; returns the chunk's stored size in bytes.
@discardableResult
public func zeroStoredChunk(of dataset: String, containingRow row: Int, in path: String) throws -> Int {
    let (offset, size) = try {
        let f = try H5File.open(path)
        return try f.dataset(dataset).storedChunk(containingRow: row)
    }()
    guard let h = FileHandle(forUpdatingAtPath: path) else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
    }
    defer { try? h.close() }
    try h.seek(toOffset: UInt64(offset))
    try h.write(contentsOf: Data(count: size))
    return size
}
