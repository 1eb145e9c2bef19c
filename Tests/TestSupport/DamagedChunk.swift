import CHDF5
import Foundation

/// Zeroes the stored chunk (its values and its Fletcher-32) that holds `row` of `dataset` in the
/// file at `path`, as a zero-filled disk block would; returns the chunk's stored size in bytes.
/// Where the chunk lies comes from HDF5 (`H5Dget_chunk_info_by_coord`).
@discardableResult
public func zeroStoredChunk(of dataset: String, containingRow row: Int, in path: String) throws -> Int {
    var address: haddr_t = 0, size: hsize_t = 0
    do {
        let f = H5Fopen(path, rd_h5f_acc_rdonly(), rd_h5p_default())
        defer { H5Fclose(f) }
        let d = H5Dopen2(f, dataset, rd_h5p_default())
        defer { H5Dclose(d) }
        let space = H5Dget_space(d), plist = H5Dget_create_plist(d)
        defer { H5Sclose(space); H5Pclose(plist) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        var chunk = [hsize_t](repeating: 0, count: rank), offset = [hsize_t](repeating: 0, count: rank), mask: UInt32 = 0
        guard f >= 0, d >= 0, rank >= 1, H5Pget_chunk(plist, Int32(rank), &chunk) == rank else {
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: path + ":" + dataset])
        }
        offset[0] = hsize_t(row) / chunk[0] * chunk[0]
        guard H5Dget_chunk_info_by_coord(d, &offset, &mask, &address, &size) >= 0 else {
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: path + ":" + dataset])
        }
    }
    guard let h = FileHandle(forUpdatingAtPath: path) else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
    }
    defer { try? h.close() }
    try h.seek(toOffset: UInt64(address))
    try h.write(contentsOf: Data(count: Int(size)))
    return Int(size)
}
