// The few protocol-buffer encodings an ONNX file needs (protobuf's wire format, proto2 as
// onnx.proto declares it): varints, length-delimited fields (bytes, strings, nested messages) and
// 32-bit floats. Fields are written in the order they are given; a reader accepts any order.

/// Appends protobuf fields to a byte buffer.
struct ProtobufWriter {
    /// The wire types used here (0 varint, 2 length-delimited, 5 fixed 32-bit).
    enum WireType: UInt64 {
        case varint = 0
        case lengthDelimited = 2
        case fixed32 = 5
    }

    /// The fields written so far.
    private(set) var encoded: [UInt8] = []

    /// Base-128, least significant group first, the high bit set on every byte but the last.
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            encoded.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        encoded.append(UInt8(v))
    }

    /// The key of a field: (number << 3) | wire type.
    mutating func key(_ field: Int, _ wire: WireType) {
        precondition(field >= 1 && field < 1 << 29, "protobuf field number \(field)")
        varint(UInt64(field) << 3 | wire.rawValue)
    }

    /// An int32/int64 field; a negative value takes ten bytes (its two's complement), as protobuf
    /// encodes `int64`.
    mutating func int(_ field: Int, _ value: Int64) {
        key(field, .varint)
        varint(UInt64(bitPattern: value))
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, .fixed32)
        appendLittleEndian(value.bitPattern)
    }

    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        key(field, .lengthDelimited)
        varint(UInt64(value.count))
        encoded += value
    }

    mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

    /// A `bytes` field holding `values` as little-endian IEEE 754 floats (ONNX's raw_data).
    mutating func rawFloats(_ field: Int, _ values: [Float]) {
        key(field, .lengthDelimited)
        varint(UInt64(values.count * 4))
        encoded.reserveCapacity(encoded.count + values.count * 4)
        for v in values { appendLittleEndian(v.bitPattern) }
    }

    /// A `bytes` field holding `values` as little-endian 64-bit integers.
    mutating func rawInt64s(_ field: Int, _ values: [Int64]) {
        key(field, .lengthDelimited)
        varint(UInt64(values.count * 8))
        for v in values { appendLittleEndian(UInt64(bitPattern: v)) }
    }

    /// A nested message, built by `body` into its own writer.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        body(&inner)
        bytes(field, inner.encoded)
    }

    /// Appends a 32-bit value's bytes, least significant first.
    mutating func appendLittleEndian(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { encoded.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    /// Appends a 64-bit value's bytes, least significant first.
    mutating func appendLittleEndian(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { encoded.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
}
