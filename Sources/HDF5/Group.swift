import CHDF5

/// What a child of a group is.
public enum H5ChildKind: Sendable { case group, dataset, other }

/// An HDF5 group: a folder of groups and datasets. `H5File` is the root group.
public class H5Group: H5Object, @unchecked Sendable {

    /// Whether a link of that (relative, possibly nested) name exists; intermediate groups are
    /// checked one by one so a missing parent is not an error (`H5Lexists`).
    public func exists(_ relative: String) -> Bool {
        (try? resolve(relative)) == true
    }

    /// As `exists`, but a header that cannot be read, or a soft or external link, is an error, not
    /// an absent link.
    public func contains(_ relative: String) throws -> Bool { try resolve(relative) }

    /// Whether every component of `relative` is present (false: missing). Only hard links are
    /// followed: rnn-dist never writes soft or external links, and following one from a crafted
    /// file could open another file, a device or a FIFO (and hang).
    func resolve(_ relative: String) throws -> Bool {
        var prefix = ""
        for part in relative.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + part
            guard H5Lexists(id, prefix, rd_h5p_default()) > 0 else { return false }
            var info = H5L_info_t()
            try h5check(H5Lget_info(id, prefix, &info, rd_h5p_default()), "H5Lget_info", path: path, object: child(prefix))
            guard info.type == H5L_TYPE_HARD else {
                throw error(.invalid, "is a soft or external link, which rnn-dist does not follow", object: child(prefix))
            }
        }
        return !prefix.isEmpty
    }

    /// Creates a child group (`H5Gcreate2`); intermediate groups are created as needed, each like
    /// the group itself without modification times (HDF5's own intermediate groups would carry
    /// them, so the same content would not give the same bytes).
    @discardableResult
    public func createGroup(_ relative: String) throws -> H5Group {
        try createParents(of: relative)
        let gcpl = try h5check(H5Pcreate(rd_h5p_group_create()), "H5Pcreate", path: path, object: name)
        defer { H5Pclose(gcpl) }
        try h5check(H5Pset_obj_track_times(gcpl, false), "H5Pset_obj_track_times", path: path, object: name)
        let g = try h5check(H5Gcreate2(id, relative, rd_h5p_default(), gcpl, rd_h5p_default()),
                            "H5Gcreate2", path: path, object: child(relative))
        return adopt(H5Group(id: g, path: path, name: child(relative), closer: H5Gclose))
    }

    /// Creates every missing group on the way to `relative` (not `relative` itself).
    private func createParents(of relative: String) throws {
        let parts = relative.split(separator: "/")
        var prefix = ""
        for part in parts.dropLast() {
            prefix += (prefix.isEmpty ? "" : "/") + part
            if !exists(prefix) { try createGroup(prefix) }
        }
    }

    /// Opens a child group (`H5Gopen2`).
    public func group(_ relative: String) throws -> H5Group {
        guard try resolve(relative) else { throw error(.missing, "", object: child(relative)) }
        guard try kind(of: relative) == .group else { throw error(.invalid, "not a group", object: child(relative)) }
        let g = try h5check(H5Gopen2(id, relative, rd_h5p_default()), "H5Gopen2", path: path, object: child(relative))
        return adopt(H5Group(id: g, path: path, name: child(relative), closer: H5Gclose))
    }

    /// Whether a child is a group or a dataset (`H5Oopen` + `H5Iget_type`). An object that cannot
    /// be opened (e.g. its header fails its checksum) is an error, not "other".
    func kind(of relative: String) throws -> H5ChildKind {
        guard try resolve(relative) else { throw error(.missing, "", object: child(relative)) }
        let o = try h5check(H5Oopen(id, relative, rd_h5p_default()), "H5Oopen", path: path, object: child(relative))
        defer { H5Oclose(o) }
        switch H5Iget_type(o) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return .other
        }
    }

    /// The names of this group's direct children, in name order (`strcmp`'s: by bytes). A group of
    /// many links keeps them in "dense" storage (a fractal heap and B-trees); for it, HDF5 1.10
    /// builds a table of every link to sort them, and on a damaged heap frees that table's unfilled
    /// entries and aborts the process. So the links are visited in the index's own order
    /// (`H5_ITER_NATIVE`, no table) and sorted here.
    func childNames() throws -> [String] {
        final class Box { var names: [String] = []; var overflow = false }
        let box = Box()
        var idx: hsize_t = 0
        let status = withExtendedLifetime(box) {
            H5Literate(id, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, { _, cname, _, data in
                let b = Unmanaged<Box>.fromOpaque(data!).takeUnretainedValue()
                guard b.names.count < H5Limits.maxChildren, let cname else { b.overflow = true; return 1 }
                b.names.append(String(cString: cname))
                return 0
            }, Unmanaged.passUnretained(box).toOpaque())
        }
        try h5check(status, "H5Literate", path: path, object: name)
        if box.overflow { throw error(.invalid, "more than \(H5Limits.maxChildren) children") }
        return box.names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Creates a chunked dataset with the Fletcher-32 checksum filter and writes `data` to it.
    /// - Parameters:
    ///   - shape: dimensions, rank ≥ 1; `data.count` must equal their product.
    ///   - chunkRows: rows per chunk along axis 0 (default: about 256 KiB per chunk), so that a range
    ///     of rows reads only its chunks.
    ///   - blockChecksums: also store a checksum per block of rows (`H5Dataset.blockRows`), for a
    ///     dataset read in parts, whose reads the whole content's checksum cannot check.
    @discardableResult
    public func createDataset<T: H5Element>(_ relative: String, shape: [Int], data: [T], chunkRows: Int? = nil,
                                            blockChecksums: Bool = false) throws -> H5Dataset {
        try data.withUnsafeBufferPointer {
            try createDataset(relative, shape: shape, buffer: $0, chunkRows: chunkRows, blockChecksums: blockChecksums)
        }
    }

    /// A 1-D dataset holding `data`.
    @discardableResult
    public func createDataset<T: H5Element>(_ relative: String, data: [T]) throws -> H5Dataset {
        try createDataset(relative, shape: [data.count], data: data)
    }

    /// As `createDataset(_:shape:data:chunkRows:blockChecksums:)`, from a raw buffer.
    @discardableResult
    public func createDataset<T: H5Element>(_ relative: String, shape: [Int], buffer: UnsafeBufferPointer<T>,
                                            chunkRows: Int? = nil, blockChecksums: Bool = false) throws -> H5Dataset {
        let obj = child(relative)
        guard !shape.isEmpty, shape.count <= H5Limits.maxRank, shape.allSatisfy({ $0 >= 0 }) else {
            throw error(.invalid, "bad shape \(shape)", object: obj)
        }
        let count = shape.reduce(1, *)
        guard count == buffer.count else {
            throw error(.invalid, "shape \(shape) needs \(count) values, given \(buffer.count)", object: obj)
        }
        let rowElems = max(1, shape.dropFirst().reduce(1, *))
        let rows = chunkRows ?? max(1, (256 << 10) / (rowElems * T.h5Type.size))
        var dims = shape.map { hsize_t($0) }
        var maxDims = dims
        maxDims[0] = hsize_t(bitPattern: -1)  // H5S_UNLIMITED: lets a chunk exceed a short (or empty) axis 0
        var chunk = shape.map { hsize_t(max(1, $0)) }
        chunk[0] = hsize_t(max(1, min(rows, max(1, shape[0]))))
        let space = try h5check(H5Screate_simple(Int32(shape.count), &dims, &maxDims), "H5Screate_simple", path: path, object: obj)
        defer { H5Sclose(space) }
        let dcpl = try h5check(H5Pcreate(rd_h5p_dataset_create()), "H5Pcreate", path: path, object: obj)
        defer { H5Pclose(dcpl) }
        try h5check(H5Pset_chunk(dcpl, Int32(shape.count), &chunk), "H5Pset_chunk", path: path, object: obj)
        try h5check(H5Pset_fletcher32(dcpl), "H5Pset_fletcher32", path: path, object: obj)
        // No modification times in object headers: the same content gives the same bytes.
        try h5check(H5Pset_obj_track_times(dcpl, false), "H5Pset_obj_track_times", path: path, object: obj)
        try createParents(of: relative)
        let d = try h5check(H5Dcreate2(id, relative, T.h5Type.fileType, space, rd_h5p_default(), dcpl, rd_h5p_default()),
                            "H5Dcreate2", path: path, object: obj)
        let ds = adopt(H5Dataset(id: d, path: path, name: obj, shape: shape, elementType: T.h5Type, maxReadBytes: Int.max))
        if count > 0 {
            try h5check(H5Dwrite(d, T.h5Type.memoryType, rd_h5s_all(), rd_h5s_all(), rd_h5p_default(), buffer.baseAddress),
                        "H5Dwrite", path: path, object: obj)
            var hasher = ContentChecksum()
            hasher.update(UnsafeRawBufferPointer(buffer))
            try ds.setAttribute(H5Dataset.checksumAttribute, Int64(bitPattern: hasher.value))
            if blockChecksums {
                try ds.setAttribute(H5Dataset.blockRowsAttribute, H5Dataset.blockRows(rows: shape[0]))
                try ds.setAttribute(H5Dataset.blockChecksumsAttribute,
                                    int64s: H5Dataset.blockChecksums(UnsafeRawBufferPointer(buffer), rows: shape[0]))
            }
        }
        return ds
    }

    /// Opens a dataset, checking its rank and declared size against the limits and the file's size
    /// before anything is allocated (`H5Dopen2`).
    public func dataset(_ relative: String) throws -> H5Dataset {
        let obj = child(relative)
        guard try resolve(relative) else { throw error(.missing, "", object: obj) }
        guard try kind(of: relative) == .dataset else { throw error(.invalid, "not a dataset", object: obj) }
        let d = try h5check(H5Dopen2(id, relative, rd_h5p_default()), "H5Dopen2", path: path, object: obj)
        func fail(_ e: HDF5Error) -> HDF5Error { H5Dclose(d); return e }
        let space = H5Dget_space(d)
        guard space >= 0 else {
            throw fail(HDF5Error(.library(call: "H5Dget_space"), path: path, object: obj, detail: H5Library.stackMessage()))
        }
        defer { H5Sclose(space) }
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 1, Int(rank) <= H5Limits.maxRank else { throw fail(error(.invalid, "rank \(rank) is not supported", object: obj)) }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        guard H5Sget_simple_extent_dims(space, &dims, nil) == rank else {
            throw fail(HDF5Error(.library(call: "H5Sget_simple_extent_dims"), path: path, object: obj, detail: H5Library.stackMessage()))
        }
        var count = 1
        for dim in dims {
            guard dim <= hsize_t(H5Limits.maxElements) else { throw fail(error(.invalid, "dimension \(dim) exceeds the limit", object: obj)) }
            let (p, o) = count.multipliedReportingOverflow(by: Int(dim))
            guard !o, p <= H5Limits.maxElements else { throw fail(error(.invalid, "shape \(dims) exceeds the size limit", object: obj)) }
            count = p
        }
        let t = H5Dget_type(d)
        guard t >= 0 else {
            throw fail(HDF5Error(.library(call: "H5Dget_type"), path: path, object: obj, detail: H5Library.stackMessage()))
        }
        defer { H5Tclose(t) }
        guard let et = H5ElementType.of(typeID: t) else { throw fail(error(.invalid, "unsupported element type", object: obj)) }
        let limit = (self as? H5File)?.maxReadBytes ?? fileReadLimit()
        guard count * et.size <= limit else {
            throw fail(error(.invalid, "declares \(count * et.size) bytes, more than the file holds", object: obj))
        }
        // A chunk is decoded whole: bound its size too (ours are at most a few hundred KiB).
        let dcpl = H5Dget_create_plist(d)
        if dcpl >= 0 {
            defer { H5Pclose(dcpl) }
            if H5Pget_layout(dcpl) == H5D_CHUNKED {
                var chunk = [hsize_t](repeating: 0, count: Int(rank))
                let n = H5Pget_chunk(dcpl, rank, &chunk)
                let bytes = chunk.reduce(UInt64(et.size)) { $0.multipliedReportingOverflow(by: max(1, $1)).partialValue }
                guard n == rank, chunk.allSatisfy({ $0 <= hsize_t(H5Limits.maxElements) }), bytes <= 64 << 20 else {
                    throw fail(error(.invalid, "declares chunks of \(chunk) elements, beyond the limit", object: obj))
                }
            }
        }
        return adopt(H5Dataset(id: d, path: path, name: obj, shape: dims.map { Int($0) }, elementType: et, maxReadBytes: limit))
    }

    /// The file's size bound for reads made through a sub-group.
    private func fileReadLimit() -> Int {
        var size: hsize_t = 0
        let f = H5Iget_file_id(id)
        guard f >= 0 else { return Int.max }
        defer { H5Fclose(f) }
        guard H5Fget_filesize(f, &size) >= 0, size > 0 else { return Int.max }
        return Int(size) + (1 << 16)
    }

    // MARK: String lists, as bytes + offsets (never HDF5 variable-length strings)

    /// Stores `strings` as a group holding `bytes` (uint8, all UTF-8 concatenated) and `offsets`
    /// (int64, count + 1 entries, the first 0, the last the byte count).
    public func writeStringList(_ relative: String, _ strings: [String]) throws {
        var bytes: [UInt8] = []
        var offsets: [Int64] = [0]
        offsets.reserveCapacity(strings.count + 1)
        for s in strings {
            bytes.append(contentsOf: s.utf8)
            offsets.append(Int64(bytes.count))
        }
        let g = try createGroup(relative)
        try g.createDataset("bytes", data: bytes)
        try g.createDataset("offsets", data: offsets)
    }

    /// Reads a list written by `writeStringList`, validating the offsets against the bytes and each
    /// entry as UTF-8.
    public func readStringList(_ relative: String) throws -> [String] {
        let g = try group(relative)
        let bytes: [UInt8] = try g.dataset("bytes").read()
        let offsets: [Int64] = try g.dataset("offsets").read()
        guard let first = offsets.first, first == 0, offsets.last == Int64(bytes.count) else {
            throw error(.invalid, "offsets do not span the \(bytes.count) bytes", object: child(relative) + "/offsets")
        }
        var out: [String] = []
        out.reserveCapacity(offsets.count - 1)
        for i in 1 ..< offsets.count {
            let a = offsets[i - 1], b = offsets[i]
            guard a <= b else { throw error(.invalid, "offsets decrease at entry \(i)", object: child(relative) + "/offsets") }
            guard b <= Int64(bytes.count) else {
                throw error(.invalid, "offset \(b) at entry \(i) is beyond the \(bytes.count) bytes", object: child(relative) + "/offsets")
            }
            // Every writer wrote Swift strings: bytes that are not UTF-8 are damage, not text to repair.
            guard let text = String(validating: bytes[Int(a) ..< Int(b)], as: UTF8.self) else {
                throw error(.invalid, "entry \(i) is not UTF-8", object: child(relative) + "/bytes")
            }
            out.append(text)
        }
        return out
    }
}
