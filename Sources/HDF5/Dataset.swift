import CHDF5

/// An open N-D dataset. Reads check the element type exactly: an int8 dataset is never silently
/// converted to float, nor the reverse (docs/FILES.md §Robustness: wrong dtypes are errors).
/// One thread reads a dataset at a time (HDF5 is not built thread-safe here, and the block checks
/// carry a partly read block from one read to the next).
public final class H5Dataset: H5Object, @unchecked Sendable {
    /// Dimensions, axis 0 first (rows).
    public let shape: [Int]
    /// The stored element type.
    public let elementType: H5ElementType
    let maxReadBytes: Int

    init(id: hid_t, path: String, name: String, shape: [Int], elementType: H5ElementType, maxReadBytes: Int) {
        self.shape = shape
        self.elementType = elementType
        self.maxReadBytes = maxReadBytes
        super.init(id: id, path: path, name: name, closer: H5Dclose)
    }

    /// Number of elements.
    var count: Int { shape.reduce(1, *) }
    /// Elements per row (the product of all axes but the first).
    var rowElements: Int { shape.dropFirst().reduce(1, *) }
    /// Rows along axis 0.
    var rows: Int { shape[0] }

    private func checkType<T: H5Element>(_: T.Type) throws {
        guard T.h5Type == elementType else {
            throw error(.invalid, "holds \(elementType.rawValue), expected \(T.h5Type.rawValue)")
        }
    }

    /// Reads the whole dataset (row-major), checking its content checksum where it has one.
    public func read<T: H5Element>(as _: T.Type = T.self) throws -> [T] {
        try checkType(T.self)
        guard count * elementType.size <= maxReadBytes else { throw error(.invalid, "too large to read") }
        let count = self.count
        if count == 0 { return [] }
        // Uninitialised storage that H5Dread fills (see `readRows`).
        let values = try [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            _ = try h5check(H5Dread(id, elementType.memoryType, rd_h5s_all(), rd_h5s_all(), rd_h5p_default(),
                                    buffer.baseAddress), "H5Dread", path: path, object: name)
            initialized = count
        }
        try checkContent(of: values)
        return values
    }

    /// Reads rows `start ..< start + count` (a hyperslab: only their chunks are read); all rows are
    /// checked against the content checksum as `read` does.
    public func readRows<T: H5Element>(_ range: Range<Int>, as _: T.Type = T.self) throws -> [T] {
        try checkType(T.self)
        guard range.lowerBound >= 0, range.upperBound <= rows else {
            throw error(.invalid, "rows \(range) out of 0..<\(rows)")
        }
        let count = range.count * rowElements
        // Uninitialised storage that H5Dread fills: `[T](repeating:count:)` is not specialised across
        // the module boundary and copied each value through the type's witness table (2.5% of `eval`).
        return try [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            try readRows(range, into: UnsafeMutableBufferPointer(rebasing: buffer[0 ..< count]))
            initialized = count
        }
    }

    /// As `readRows(_:)`, into `buffer`, which holds exactly `range.count` rows: a caller reading
    /// group after group reuses one buffer (a new array each time page-faulted its megabytes in
    /// again: 24,000 faults in an `eval` of the 25,000 IMDB test reviews).
    public func readRows<T: H5Element>(_ range: Range<Int>, into buffer: UnsafeMutableBufferPointer<T>) throws {
        try checkType(T.self)
        guard range.lowerBound >= 0, range.upperBound <= rows else {
            throw error(.invalid, "rows \(range) out of 0..<\(rows)")
        }
        let count = range.count * rowElements
        precondition(buffer.count == count, "readRows: a buffer of \(buffer.count) values for \(count)")
        if count > 0 { try readRows(range, into: buffer.baseAddress!) }
        // The block checksums where the file has them (a failure names the rows), else the whole
        // content's when every row was read.
        if try storedBlocks() == nil && range == 0 ..< rows && count > 0 {
            var hasher = ContentChecksum()
            hasher.update(UnsafeRawBufferPointer(buffer))
            try checkContent(hasher)
        } else {
            try checkBlocks(range, UnsafeRawBufferPointer(buffer))
        }
    }

    /// The attributes of a row dataset that is read in parts (a dataset file's ids and labels):
    /// rows per block, and each block's `ContentChecksum` (int64 array), the last block short.
    static let blockRowsAttribute = "rnn_dist_block_rows"
    static let blockChecksumsAttribute = "rnn_dist_block_checksums"

    /// Rows per block for a dataset of `rows` rows: a power of two from 8 up, at most 4,096 blocks
    /// (a 32 KiB attribute). A power of two up to 1,024 divides the slabs the trainer loads and the
    /// row groups evaluation reads (1,024 rows at the default batch), so their reads cover whole blocks.
    static func blockRows(rows: Int) -> Int {
        var b = 8
        while (rows + b - 1) / b > 4096 { b *= 2 }
        return b
    }

    /// The block checksums of the values `bytes` of `rows` rows (`blockRows(rows:)` rows each).
    static func blockChecksums(_ bytes: UnsafeRawBufferPointer, rows: Int) -> [Int64] {
        let b = blockRows(rows: rows), rowBytes = rows == 0 ? 0 : bytes.count / rows
        return stride(from: 0, to: rows, by: b).map { start in
            var h = ContentChecksum()
            h.update(UnsafeRawBufferPointer(rebasing: bytes[(start * rowBytes) ..< (min(rows, start + b) * rowBytes)]))
            return Int64(bitPattern: h.value)
        }
    }

    /// The stored block checksums, read once: nil when the dataset has none (files before them,
    /// datasets read whole).
    private var blocks: (rows: Int, sums: [UInt64])?? = .none
    /// A block whose first rows an earlier read hashed and stopped in (rows are read in order, in
    /// slabs or groups that need not fall on blocks): the next read that continues it finishes it.
    private var pendingBlock: (block: Int, next: Int, hasher: ContentChecksum)?

    private func storedBlocks() throws -> (rows: Int, sums: [UInt64])? {
        if case .some(let known) = blocks { return known }
        var found: (rows: Int, sums: [UInt64])? = nil
        if try attributeExists(Self.blockChecksumsAttribute) {
            let b = Int(try intAttribute(Self.blockRowsAttribute))
            let sums = try int64sAttribute(Self.blockChecksumsAttribute, limit: 1 << 20)
            guard (1 ... 1 << 40).contains(b), sums.count == (rows + b - 1) / b else {
                throw error(.invalid, "\(sums.count) block checksums of \(b) rows do not fit its \(rows) rows")
            }
            found = (b, sums.map { UInt64(bitPattern: $0) })
        }
        blocks = .some(found)
        return found
    }

    /// Checks every block that `range`'s values (`bytes`) complete against its stored checksum: the
    /// blocks inside the range, and one that the previous read of this dataset began. A block only
    /// partly read (its other rows read by another rank, or never) is not checked.
    func checkBlocks(_ range: Range<Int>, _ bytes: UnsafeRawBufferPointer) throws {
        guard !range.isEmpty, let (b, sums) = try storedBlocks() else { return }
        let rowBytes = bytes.count / range.count
        let pending = pendingBlock
        pendingBlock = nil
        var r = range.lowerBound
        while r < range.upperBound {
            let block = r / b, start = block * b, end = min(start + b, rows), upTo = min(end, range.upperBound)
            var hasher: ContentChecksum? = nil
            if r == start { hasher = ContentChecksum() }
            else if let pending, pending.block == block, pending.next == r { hasher = pending.hasher }
            if var h = hasher {
                let from = (r - range.lowerBound) * rowBytes, to = (upTo - range.lowerBound) * rowBytes
                h.update(UnsafeRawBufferPointer(rebasing: bytes[from ..< to]))
                if upTo == end {
                    guard h.value == sums[block] else {
                        throw error(.invalid, "rows \(start)..<\(end) do not match their checksum (damaged: e.g. a block of zeros)")
                    }
                } else {
                    pendingBlock = (block, upTo, h)
                }
            }
            r = upTo
        }
    }

    /// The attribute holding the checksum of a dataset's content (`ContentChecksum` of its values as
    /// stored, little-endian), written with every dataset: HDF5's Fletcher-32 of a chunk zeroed with
    /// its checksum (a zero-filled disk block) is 0 again, so such a chunk read as zeros, no error.
    static let checksumAttribute = "rnn_dist_checksum"

    /// Throws unless `values`, the whole content, match the dataset's checksum (files written
    /// before the checksum have none: nothing to check).
    func checkContent<T>(of values: [T]) throws {
        var hasher = ContentChecksum()
        values.withUnsafeBytes { hasher.update($0) }
        try checkContent(hasher)
    }

    /// As `checkContent(of:)`, for content hashed piece by piece (`verifyReadable`).
    func checkContent(_ hasher: ContentChecksum) throws {
        guard count > 0, hasAttribute(Self.checksumAttribute) else { return }
        let want = UInt64(bitPattern: try intAttribute(Self.checksumAttribute))
        guard hasher.value == want else {
            throw error(.invalid, "its values do not match their checksum (damaged: e.g. a block of zeros)")
        }
    }

    /// Reads rows `range` into `dest`, which must hold `range.count * rowElements` values.
    func readRows<T: H5Element>(_ range: Range<Int>, into dest: UnsafeMutablePointer<T>) throws {
        try checkType(T.self)
        guard range.lowerBound >= 0, range.upperBound <= rows else {
            throw error(.invalid, "rows \(range) out of 0..<\(rows)")
        }
        if range.isEmpty || rowElements == 0 { return }
        let fspace = try h5check(H5Dget_space(id), "H5Dget_space", path: path, object: name)
        defer { H5Sclose(fspace) }
        var start = [hsize_t](repeating: 0, count: shape.count)
        start[0] = hsize_t(range.lowerBound)
        var cnt = shape.map { hsize_t($0) }
        cnt[0] = hsize_t(range.count)
        try h5check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, nil, &cnt, nil), "H5Sselect_hyperslab",
                    path: path, object: name)
        let mspace = try h5check(H5Screate_simple(Int32(shape.count), &cnt, nil), "H5Screate_simple", path: path, object: name)
        defer { H5Sclose(mspace) }
        try h5check(H5Dread(id, elementType.memoryType, mspace, fspace, rd_h5p_default(), dest), "H5Dread",
                    path: path, object: name)
    }

    /// Reads an arbitrary set of rows, in the order given; consecutive runs are read as one hyperslab.
    public func readRows<T: H5Element>(_ indices: [Int], as _: T.Type = T.self) throws -> [T] {
        try checkType(T.self)
        let re = rowElements
        let count = indices.count * re
        return try [T](unsafeUninitializedCapacity: count) { buf, initialized in
            var i = 0
            while i < indices.count {
                var j = i + 1
                while j < indices.count && indices[j] == indices[j - 1] + 1 { j += 1 }
                let run = indices[i] ..< indices[i] + (j - i)
                try readRows(run, into: buf.baseAddress! + i * re)
                try checkBlocks(run, UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buf[(i * re) ..< (j * re)])))
                i = j
            }
            initialized = count
        }
    }
}

/// A 64-bit checksum of a byte stream, fed in pieces of any size: FNV-1a's step over 64-bit
/// little-endian words (a 1-byte step would cost ~0.1 s per 100 MB), the last partial word byte by
/// byte, then the length.
struct ContentChecksum {
    private(set) var state: UInt64 = 0xCBF2_9CE4_8422_2325
    private var pending: UInt64 = 0
    private var pendingBytes = 0
    private var total = 0
    private static let prime: UInt64 = 0x100_0000_01B3

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        let n = bytes.count
        total += n
        // Complete a word begun in an earlier piece.
        while pendingBytes > 0 && pendingBytes < 8 && i < n {
            pending |= UInt64(bytes[i]) << (8 * UInt64(pendingBytes))
            pendingBytes += 1
            i += 1
        }
        if pendingBytes == 8 {
            state = (state ^ pending) &* Self.prime
            pending = 0
            pendingBytes = 0
        }
        guard let base = bytes.baseAddress else { return }
        while i + 8 <= n {
            let w = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            state = (state ^ w) &* Self.prime
            i += 8
        }
        while i < n {
            pending |= UInt64(bytes[i]) << (8 * UInt64(pendingBytes))
            pendingBytes += 1
            i += 1
        }
    }

    var value: UInt64 {
        var h = state
        var p = pending
        for _ in 0 ..< pendingBytes {
            h = (h ^ (p & 0xFF)) &* Self.prime
            p >>= 8
        }
        return (h ^ UInt64(total)) &* Self.prime
    }
}
