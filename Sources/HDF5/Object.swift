import CHDF5

/// An open HDF5 object (group, dataset) and its attributes. Owns its handle, closed in `deinit`.
public class H5Object: @unchecked Sendable {
    let id: hid_t
    /// The file's path, for error messages.
    public let path: String
    /// The object's name inside the file (e.g. `/train/x`).
    public let name: String
    private let closer: (hid_t) -> herr_t
    /// The group this object was opened from, kept alive while this lives: a file is released (and
    /// closed, its digest sealed again if it was opened writable) only after every object of it.
    var parent: H5Object?

    init(id: hid_t, path: String, name: String, closer: @escaping (hid_t) -> herr_t) {
        self.id = id
        self.path = path
        self.name = name
        self.closer = closer
    }

    deinit { _ = closer(id) }

    /// `child`, opened from this object, which it keeps alive.
    func adopt<T: H5Object>(_ child: T) -> T {
        child.parent = self
        return child
    }

    func error(_ kind: HDF5Error.Kind, _ detail: String, object: String? = nil) -> HDF5Error {
        HDF5Error(kind, path: path, object: object ?? name, detail: detail)
    }

    func child(_ n: String) -> String { name == "/" ? "/" + n : name + "/" + n }

    /// The object's address in its file (`H5Oget_info2`): equal addresses, same object.
    func objectAddress() throws -> UInt64 {
        var info = H5O_info_t()
        try h5check(H5Oget_info2(id, &info, UInt32(H5O_INFO_BASIC)), "H5Oget_info2", path: path, object: name)
        return UInt64(info.addr)
    }

    // MARK: Attributes (scalars and fixed-length UTF-8 strings; never variable-length)

    /// Whether an attribute of that name exists (`H5Aexists`).
    public func hasAttribute(_ attr: String) -> Bool { H5Aexists(id, attr) > 0 }

    /// Whether the attribute exists, throwing when the object's header cannot be read (a damaged
    /// header is not an absent attribute).
    public func attributeExists(_ attr: String) throws -> Bool {
        try h5check(H5Aexists(id, attr), "H5Aexists", path: path, object: name) > 0
    }

    /// The names of this object's attributes, in creation order where known.
    public func attributeNames() throws -> [String] {
        var info = H5O_info_t()
        try h5check(H5Oget_info2(id, &info, UInt32(H5O_INFO_NUM_ATTRS)), "H5Oget_info2", path: path, object: name)
        let n = Int(info.num_attrs)
        guard n <= H5Limits.maxChildren else { throw error(.invalid, "claims \(n) attributes") }
        var names: [String] = []
        for i in 0 ..< n {
            let len = H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(i), nil, 0, rd_h5p_default())
            try h5check(len, "H5Aget_name_by_idx", path: path, object: name)
            guard len < H5Limits.maxStringBytes else { throw error(.invalid, "attribute name of \(len) bytes") }
            var buf = [CChar](repeating: 0, count: Int(len) + 1)
            try h5check(H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(i), &buf, buf.count, rd_h5p_default()),
                        "H5Aget_name_by_idx", path: path, object: name)
            names.append(decodeCString(buf))
        }
        return names
    }

    /// Creates (or replaces) attribute `attr` of `type`: a scalar, or a 1-D array of `count` values.
    private func replaceAttribute(_ attr: String, type: hid_t, count: Int? = nil, write: (hid_t) -> herr_t) throws {
        if hasAttribute(attr) {
            try h5check(H5Adelete(id, attr), "H5Adelete", path: path, object: name + "@" + attr)
        }
        var dims = [hsize_t(count ?? 1)]
        let space = try h5check(count == nil ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dims, nil), "H5Screate",
                                path: path, object: name)
        defer { H5Sclose(space) }
        let a = try h5check(H5Acreate2(id, attr, type, space, rd_h5p_default(), rd_h5p_default()),
                            "H5Acreate2", path: path, object: name + "@" + attr)
        defer { H5Aclose(a) }
        try h5check(write(a), "H5Awrite", path: path, object: name + "@" + attr)
    }

    /// Sets a 64-bit integer attribute (replacing one of the same name).
    public func setAttribute(_ attr: String, _ value: Int64) throws {
        var v = value
        try replaceAttribute(attr, type: rd_h5t_std_i64le()) { H5Awrite($0, rd_h5t_native_int64(), &v) }
    }

    /// Sets an integer attribute.
    public func setAttribute(_ attr: String, _ value: Int) throws { try setAttribute(attr, Int64(value)) }

    /// Sets a 1-D array of 64-bit integers (replacing an attribute of the same name).
    func setAttribute(_ attr: String, int64s values: [Int64]) throws {
        var v = values.isEmpty ? [0] : values
        try replaceAttribute(attr, type: rd_h5t_std_i64le(), count: values.count) { a in
            v.withUnsafeMutableBufferPointer { H5Awrite(a, rd_h5t_native_int64(), $0.baseAddress) }
        }
    }

    /// Reads a 1-D array of integers (any integer type) as Int64, of at most `limit` values.
    func int64sAttribute(_ attr: String, limit: Int) throws -> [Int64] {
        try withArrayAttribute(attr) { a, t, space, object in
            guard H5Tget_class(t) == H5T_INTEGER, H5Tget_size(t) <= 8, H5Sget_simple_extent_ndims(space) == 1 else {
                throw error(.invalid, "expected a 1-D array of integers", object: object)
            }
            let count = Int(H5Sget_simple_extent_npoints(space))
            guard (0 ... limit).contains(count) else { throw error(.invalid, "holds \(count) values", object: object) }
            var v = [Int64](repeating: 0, count: max(1, count))
            try v.withUnsafeMutableBufferPointer { p in
                _ = try h5check(H5Aread(a, rd_h5t_native_int64(), p.baseAddress), "H5Aread", path: path, object: object)
            }
            return Array(v.prefix(count))
        }
    }

    /// The stored bytes of attribute `attr`, in its own type (any fixed-size type: numbers, fixed-length
    /// strings, arrays of them); a variable-length type is refused unread, as `stringAttribute` does.
    func attributeBytes(_ attr: String) throws -> [UInt8] {
        try withArrayAttribute(attr) { a, t, space, object in
            guard H5Tis_variable_str(t) == 0 else {
                throw error(.invalid, "variable-length string attributes are not read (not written by rnn-dist)", object: object)
            }
            // Integers, floats and fixed-length strings (what rnn-dist writes): an array or compound
            // type may hold variable-length members, read from the global heap (as pointers).
            let typeClass = H5Tget_class(t)
            guard typeClass == H5T_INTEGER || typeClass == H5T_FLOAT || typeClass == H5T_STRING else {
                throw error(.invalid, "attributes of this type (HDF5 class \(typeClass.rawValue)) are not read (not written by rnn-dist)", object: object)
            }
            let width = H5Tget_size(t), count = Int(H5Sget_simple_extent_npoints(space))
            let (bytes, overflow) = width.multipliedReportingOverflow(by: count)
            guard width > 0, count >= 0, !overflow, bytes <= H5Limits.maxStringBytes else {
                throw error(.invalid, "\(count) values of \(width) bytes", object: object)
            }
            var buf = [UInt8](repeating: 0, count: max(1, bytes))
            try buf.withUnsafeMutableBytes { p in
                _ = try h5check(H5Aread(a, t, p.baseAddress), "H5Aread", path: path, object: object)
            }
            return Array(buf.prefix(bytes))
        }
    }

    /// Opens attribute `attr` with its type and dataspace for `body` (then closes them); `object`
    /// names the attribute in errors.
    private func withArrayAttribute<R>(_ attr: String, _ body: (_ a: hid_t, _ t: hid_t, _ space: hid_t, _ object: String) throws -> R) throws -> R {
        let object = name + "@" + attr
        guard hasAttribute(attr) else { throw error(.missing, "", object: object) }
        let a = try h5check(H5Aopen(id, attr, rd_h5p_default()), "H5Aopen", path: path, object: object)
        defer { H5Aclose(a) }
        let t = try h5check(H5Aget_type(a), "H5Aget_type", path: path, object: object)
        defer { H5Tclose(t) }
        let space = try h5check(H5Aget_space(a), "H5Aget_space", path: path, object: object)
        defer { H5Sclose(space) }
        return try body(a, t, space, object)
    }

    /// Sets a double attribute.
    public func setAttribute(_ attr: String, _ value: Double) throws {
        var v = value
        try replaceAttribute(attr, type: rd_h5t_ieee_f64le()) { H5Awrite($0, rd_h5t_native_double(), &v) }
    }

    /// Sets a fixed-length, NUL-padded UTF-8 string attribute.
    public func setAttribute(_ attr: String, _ value: String) throws {
        let bytes = Array(value.utf8)
        let t = try h5check(H5Tcopy(rd_h5t_c_s1()), "H5Tcopy", path: path, object: name)
        defer { H5Tclose(t) }
        try h5check(H5Tset_size(t, max(1, bytes.count)), "H5Tset_size", path: path, object: name)
        try h5check(H5Tset_cset(t, H5T_CSET_UTF8), "H5Tset_cset", path: path, object: name)
        try h5check(H5Tset_strpad(t, H5T_STR_NULLPAD), "H5Tset_strpad", path: path, object: name)
        var buf = bytes.isEmpty ? [UInt8(0)] : bytes
        try replaceAttribute(attr, type: t) { a in buf.withUnsafeMutableBytes { H5Awrite(a, t, $0.baseAddress) } }
    }

    /// Sets a 1-D array of fixed-length byte strings, NUL-padded to the longest (numpy's `S` dtype,
    /// as Keras 2 writes `layer_names` and `weight_names`; never variable-length).
    public func setAttribute(_ attr: String, fixedStrings values: [String]) throws {
        let encoded = values.map { Array($0.utf8) }
        let width = max(1, encoded.map(\.count).max() ?? 1)
        let t = try h5check(H5Tcopy(rd_h5t_c_s1()), "H5Tcopy", path: path, object: name)
        defer { H5Tclose(t) }
        try h5check(H5Tset_size(t, width), "H5Tset_size", path: path, object: name)
        try h5check(H5Tset_strpad(t, H5T_STR_NULLPAD), "H5Tset_strpad", path: path, object: name)
        var buf = [UInt8](repeating: 0, count: max(1, width * values.count))
        for (i, e) in encoded.enumerated() { buf.replaceSubrange(i * width ..< i * width + e.count, with: e) }
        try replaceAttribute(attr, type: t, count: values.count) { a in buf.withUnsafeMutableBytes { H5Awrite(a, t, $0.baseAddress) } }
    }

    /// Opens an attribute that must hold exactly one value; returns it and its type (caller closes both).
    private func openScalarAttribute(_ attr: String) throws -> (hid_t, hid_t) {
        guard hasAttribute(attr) else { throw error(.missing, "", object: name + "@" + attr) }
        let a = try h5check(H5Aopen(id, attr, rd_h5p_default()), "H5Aopen", path: path, object: name + "@" + attr)
        let space = H5Aget_space(a)
        defer { if space >= 0 { H5Sclose(space) } }
        let n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1
        guard n == 1 else {
            H5Aclose(a)
            throw error(.invalid, "expected one value, found \(n)", object: name + "@" + attr)
        }
        let t = H5Aget_type(a)
        guard t >= 0 else {
            H5Aclose(a)
            throw HDF5Error(.library(call: "H5Aget_type"), path: path, object: name + "@" + attr, detail: H5Library.stackMessage())
        }
        return (a, t)
    }

    /// Reads one number stored with one of `classes`, converted by HDF5 to `memoryType`.
    private func numericAttribute<T: Numeric & BitwiseCopyable>(_ attr: String, classes: [H5T_class_t], memoryType: hid_t,
                                              kind: String) throws -> T {
        let (a, t) = try openScalarAttribute(attr)
        defer { H5Tclose(t); H5Aclose(a) }
        guard classes.contains(H5Tget_class(t)), H5Tget_size(t) <= 8 else {
            throw error(.invalid, "expected \(kind) attribute", object: name + "@" + attr)
        }
        var v: T = 0
        try h5check(H5Aread(a, memoryType, &v), "H5Aread", path: path, object: name + "@" + attr)
        return v
    }

    /// Reads an integer attribute (stored as any integer type).
    public func intAttribute(_ attr: String) throws -> Int64 {
        try numericAttribute(attr, classes: [H5T_INTEGER], memoryType: rd_h5t_native_int64(), kind: "an integer")
    }

    /// Reads a numeric attribute as Double (stored as float or integer).
    public func doubleAttribute(_ attr: String) throws -> Double {
        try numericAttribute(attr, classes: [H5T_FLOAT, H5T_INTEGER], memoryType: rd_h5t_native_double(), kind: "a numeric")
    }

    /// Reads a 1-D array of fixed-length strings (as `setAttribute(_:fixedStrings:)` writes it).
    func fixedStringsAttribute(_ attr: String) throws -> [String] {
        try withArrayAttribute(attr) { a, t, space, object in
            guard H5Tget_class(t) == H5T_STRING, H5Tis_variable_str(t) == 0, H5Sget_simple_extent_ndims(space) == 1 else {
                throw error(.invalid, "expected a 1-D array of fixed-length strings", object: object)
            }
            let width = H5Tget_size(t), count = Int(H5Sget_simple_extent_npoints(space))
            guard width > 0, width <= H5Limits.maxStringBytes, (0 ... H5Limits.maxChildren).contains(count) else {
                throw error(.invalid, "\(count) strings of \(width) bytes", object: object)
            }
            var buf = [UInt8](repeating: 0, count: max(1, width * count))
            try buf.withUnsafeMutableBytes { p in
                _ = try h5check(H5Aread(a, t, p.baseAddress), "H5Aread", path: path, object: object)
            }
            return (0 ..< count).map { i in
                let item = buf[(i * width) ..< ((i + 1) * width)]
                return String(decoding: item.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
    }

    /// Reads a fixed-length string attribute. Variable-length strings are refused unread: reading
    /// them from a damaged file can crash HDF5 (docs/FILES.md §Robustness).
    public func stringAttribute(_ attr: String) throws -> String {
        let (a, t) = try openScalarAttribute(attr)
        defer { H5Tclose(t); H5Aclose(a) }
        guard H5Tget_class(t) == H5T_STRING else {
            throw error(.invalid, "expected a string attribute", object: name + "@" + attr)
        }
        guard H5Tis_variable_str(t) == 0 else {
            throw error(.invalid, "variable-length string attributes are not read (not written by rnn-dist)",
                        object: name + "@" + attr)
        }
        let size = H5Tget_size(t)
        guard size > 0, size <= H5Limits.maxStringBytes else {
            throw error(.invalid, "string attribute of \(size) bytes", object: name + "@" + attr)
        }
        var buf = [UInt8](repeating: 0, count: size)
        try buf.withUnsafeMutableBytes { p in
            _ = try h5check(H5Aread(a, t, p.baseAddress), "H5Aread", path: path, object: name + "@" + attr)
        }
        let end = buf.firstIndex(of: 0) ?? buf.count
        return String(decoding: buf[..<end], as: UTF8.self)
    }
}

