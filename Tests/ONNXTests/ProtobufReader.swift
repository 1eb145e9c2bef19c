import Foundation

/// A protobuf message read back field by field: the tests' own decoder of the wire format (varint,
/// 64-bit, length-delimited, 32-bit), written from the protobuf encoding spec, not from the writer.
struct ProtoMessage {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes([UInt8])
        case fixed32(UInt32)
    }

    struct DecodeError: Error, CustomStringConvertible {
        let description: String
    }

    /// Every field in file order.
    private(set) var fields: [(number: Int, value: Value)] = []

    init(_ data: [UInt8]) throws {
        var i = 0
        func varint() throws -> UInt64 {
            var result: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard i < data.count else { throw DecodeError(description: "truncated varint at \(i)") }
                guard shift < 64 else { throw DecodeError(description: "varint longer than 10 bytes at \(i)") }
                let b = data[i]
                i += 1
                result |= UInt64(b & 0x7f) << shift
                if b & 0x80 == 0 { return result }
                shift += 7
            }
        }
        func fixed(_ n: Int) throws -> UInt64 {
            guard i + n <= data.count else { throw DecodeError(description: "truncated fixed\(n * 8) at \(i)") }
            var v: UInt64 = 0
            for k in 0..<n { v |= UInt64(data[i + k]) << UInt64(8 * k) }
            i += n
            return v
        }
        while i < data.count {
            let key = try varint()
            let number = Int(key >> 3)
            guard number >= 1 else { throw DecodeError(description: "field number 0 at \(i)") }
            switch key & 7 {
            case 0: fields.append((number, .varint(try varint())))
            case 1: fields.append((number, .fixed64(try fixed(8))))
            case 2:
                let n = Int(try varint())
                guard n >= 0, i + n <= data.count else { throw DecodeError(description: "length \(n) past the end at \(i)") }
                fields.append((number, .bytes(Array(data[i..<(i + n)]))))
                i += n
            case 5: fields.append((number, .fixed32(UInt32(try fixed(4)))))
            default: throw DecodeError(description: "wire type \(key & 7) at \(i)")
            }
        }
    }

    func values(_ number: Int) -> [Value] { fields.filter { $0.number == number }.map(\.value) }

    /// A repeated int field, unpacked or packed.
    func ints(_ number: Int) throws -> [Int64] {
        try values(number).flatMap { v -> [Int64] in
            switch v {
            case .varint(let u): return [Int64(bitPattern: u)]
            case .bytes(let b):
                let packed = try ProtoMessage.packedVarints(b)
                return packed.map { Int64(bitPattern: $0) }
            default: throw DecodeError(description: "field \(number) is not an integer")
            }
        }
    }

    /// The last value of an int field (protobuf's rule for a repeated scalar read as optional).
    func int(_ number: Int) throws -> Int64? { try ints(number).last }

    func bytes(_ number: Int) throws -> [[UInt8]] {
        try values(number).map { v in
            guard case .bytes(let b) = v else { throw DecodeError(description: "field \(number) is not length-delimited") }
            return b
        }
    }

    func strings(_ number: Int) throws -> [String] { try bytes(number).map { String(decoding: $0, as: UTF8.self) } }
    func string(_ number: Int) throws -> String? { try strings(number).last }
    func messages(_ number: Int) throws -> [ProtoMessage] { try bytes(number).map(ProtoMessage.init) }
    func message(_ number: Int) throws -> ProtoMessage? { try messages(number).last }

    func float(_ number: Int) throws -> Float? {
        guard let v = values(number).last else { return nil }
        guard case .fixed32(let bits) = v else { throw DecodeError(description: "field \(number) is not a 32-bit float") }
        return Float(bitPattern: bits)
    }

    private static func packedVarints(_ b: [UInt8]) throws -> [UInt64] {
        var out: [UInt64] = [], v: UInt64 = 0, shift: UInt64 = 0
        for byte in b {
            v |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { out.append(v); v = 0; shift = 0 } else { shift += 7 }
        }
        guard shift == 0 else { throw DecodeError(description: "truncated packed varint") }
        return out
    }
}

/// An ONNX file read back with onnx.proto's field numbers (only what the tests look at).
struct DecodedONNX {
    struct Node {
        let opType: String
        let name: String
        let inputs: [String]
        let outputs: [String]
        /// Attribute name → (AttributeProto.type, the message).
        let attributes: [String: (type: Int64, message: ProtoMessage)]

        func int(_ name: String) throws -> Int64? {
            guard let a = attributes[name] else { return nil }
            guard a.type == 2 else { throw ProtoMessage.DecodeError(description: "attribute \(name) has type \(a.type), not INT (2)") }
            return try a.message.int(3)
        }

        func ints(_ name: String) throws -> [Int64]? {
            guard let a = attributes[name] else { return nil }
            guard a.type == 7 else { throw ProtoMessage.DecodeError(description: "attribute \(name) has type \(a.type), not INTS (7)") }
            return try a.message.ints(8)
        }

        func string(_ name: String) throws -> String? {
            guard let a = attributes[name] else { return nil }
            guard a.type == 3 else { throw ProtoMessage.DecodeError(description: "attribute \(name) has type \(a.type), not STRING (3)") }
            return try a.message.string(4)
        }
    }

    struct Tensor {
        let dims: [Int]
        let dataType: Int64
        let raw: [UInt8]

        var floats: [Float] {
            stride(from: 0, to: raw.count, by: 4).map { k in
                Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(raw[k + $1]) << UInt32(8 * $1) })
            }
        }

        var int64s: [Int64] {
            stride(from: 0, to: raw.count, by: 8).map { k in
                Int64(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(raw[k + $1]) << UInt64(8 * $1) })
            }
        }
    }

    /// A graph input or output: name, element type, dims (Int for dim_value, String for dim_param).
    struct Value {
        let name: String
        let elementType: Int64
        let dims: [String]
    }

    let irVersion: Int64
    let producerName: String
    /// (domain, version) of each opset_import.
    let opsets: [(domain: String, version: Int64)]
    let nodes: [Node]
    let initializers: [String: Tensor]
    let inputs: [Value]
    let outputs: [Value]
    let metadata: [String: String]

    var opTypes: [String] { nodes.map(\.opType) }

    func node(_ name: String) throws -> Node {
        guard let n = nodes.first(where: { $0.name == name }) else {
            throw ProtoMessage.DecodeError(description: "no node \(name) among \(nodes.map(\.name))")
        }
        return n
    }

    func tensor(_ name: String) throws -> Tensor {
        guard let t = initializers[name] else {
            throw ProtoMessage.DecodeError(description: "no initializer \(name) among \(initializers.keys.sorted())")
        }
        return t
    }

    init(_ bytes: [UInt8]) throws {
        let model = try ProtoMessage(bytes)
        irVersion = try model.int(1) ?? -1
        producerName = try model.string(2) ?? ""
        opsets = try model.messages(8).map { (try $0.string(1) ?? "", try $0.int(2) ?? -1) }
        var meta: [String: String] = [:]
        for entry in try model.messages(14) { meta[try entry.string(1) ?? ""] = try entry.string(2) }
        metadata = meta
        guard let graph = try model.message(7) else { throw ProtoMessage.DecodeError(description: "no graph") }
        nodes = try graph.messages(1).map { n in
            var attributes: [String: (type: Int64, message: ProtoMessage)] = [:]
            for a in try n.messages(5) { attributes[try a.string(1) ?? ""] = (try a.int(20) ?? 0, a) }
            return Node(opType: try n.string(4) ?? "", name: try n.string(3) ?? "", inputs: try n.strings(1),
                        outputs: try n.strings(2), attributes: attributes)
        }
        var tensors: [String: Tensor] = [:]
        for t in try graph.messages(5) {
            tensors[try t.string(8) ?? ""] = Tensor(dims: try t.ints(1).map { Int($0) }, dataType: try t.int(2) ?? 0,
                                                    raw: try t.bytes(9).last ?? [])
        }
        initializers = tensors
        func value(_ v: ProtoMessage) throws -> Value {
            let tensorType = try v.message(2)?.message(1)
            let dims = try tensorType?.message(2)?.messages(1).map { d -> String in
                if let p = try d.string(2) { return p }
                return String(try d.int(1) ?? -1)
            } ?? []
            return Value(name: try v.string(1) ?? "", elementType: try tensorType?.int(1) ?? 0, dims: dims)
        }
        inputs = try graph.messages(11).map(value)
        outputs = try graph.messages(12).map(value)
    }
}
