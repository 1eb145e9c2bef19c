import CHDF5

/// The element types rnn-dist stores in datasets and attributes.
public enum H5ElementType: String, Sendable, CaseIterable {
    case float32, float64, int64, int32, int8, uint8

    /// Bytes per element.
    var size: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .int8, .uint8: return 1
        }
    }
    var isFloat: Bool { self == .float32 || self == .float64 }
    var isSigned: Bool { self != .uint8 }

    // Two parallel tables on purpose (file type, memory type): a new element type must add a row to each.
    /// The little-endian file type written for this element.
    var fileType: hid_t {
        switch self {
        case .float32: return rd_h5t_ieee_f32le()
        case .float64: return rd_h5t_ieee_f64le()
        case .int64: return rd_h5t_std_i64le()
        case .int32: return rd_h5t_std_i32le()
        case .int8: return rd_h5t_std_i8le()
        case .uint8: return rd_h5t_std_u8le()
        }
    }
    /// The in-memory type used when reading or writing.
    var memoryType: hid_t {
        switch self {
        case .float32: return rd_h5t_native_float()
        case .float64: return rd_h5t_native_double()
        case .int64: return rd_h5t_native_int64()
        case .int32: return rd_h5t_native_int32()
        case .int8: return rd_h5t_native_int8()
        case .uint8: return rd_h5t_native_uint8()
        }
    }

    /// Classifies a stored datatype, or nil when it is none of ours (strings, compounds, …).
    static func of(typeID t: hid_t) -> H5ElementType? {
        let size = H5Tget_size(t)
        let et: H5ElementType
        switch H5Tget_class(t) {
        case H5T_FLOAT:
            guard size == 4 || size == 8 else { return nil }
            et = size == 4 ? .float32 : .float64
        case H5T_INTEGER:
            let signed = H5Tget_sign(t) == H5T_SGN_2
            switch (size, signed) {
            case (8, true): et = .int64
            case (4, true): et = .int32
            case (1, true): et = .int8
            case (1, false): et = .uint8
            default: return nil
            }
        default: return nil
        }
        return et.hasTheLayout(of: t) ? et : nil
    }

    /// Whether `t` lays its bits out as this type's standard type does (either byte order): a float
    /// with another exponent bias or field positions, or an integer with padding bits, would convert
    /// to other numbers without an error.
    private func hasTheLayout(of t: hid_t) -> Bool {
        let ref = fileType
        guard H5Tget_precision(t) == H5Tget_precision(ref), H5Tget_offset(t) == H5Tget_offset(ref) else { return false }
        guard isFloat else { return true }
        func fields(_ type: hid_t) -> [Int]? {
            var spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0
            guard H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) >= 0 else { return nil }
            return [spos, epos, esize, mpos, msize]
        }
        guard let a = fields(t), let b = fields(ref) else { return false }
        return a == b && H5Tget_ebias(t) == H5Tget_ebias(ref) && H5Tget_norm(t) == H5Tget_norm(ref)
    }
}

/// A Swift value that maps to one `H5ElementType`.
public protocol H5Element: Numeric, Sendable {
    static var h5Type: H5ElementType { get }
}
extension Float: H5Element { public static var h5Type: H5ElementType { .float32 } }
extension Double: H5Element { public static var h5Type: H5ElementType { .float64 } }
extension Int64: H5Element { public static var h5Type: H5ElementType { .int64 } }
extension Int32: H5Element { public static var h5Type: H5ElementType { .int32 } }
extension Int8: H5Element { public static var h5Type: H5ElementType { .int8 } }
extension UInt8: H5Element { public static var h5Type: H5ElementType { .uint8 } }
