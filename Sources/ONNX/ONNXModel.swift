// The parts of onnx.proto an inference graph needs (ModelProto, GraphProto, NodeProto,
// AttributeProto, TensorProto, ValueInfoProto and their type and shape messages), as small value
// types that encode themselves with onnx.proto's field numbers.

/// TensorProto.DataType values used here.
public enum ONNXDataType: Int64, Sendable {
    case float = 1
    case int64 = 7
}

/// A constant tensor of the graph (GraphProto.initializer), row-major.
public struct ONNXTensor: Sendable {
    public enum Values: Sendable {
        case floats([Float])
        case int64s([Int64])
    }

    public var name: String
    public var dims: [Int]
    public var values: Values

    public init(name: String, dims: [Int], floats: [Float]) {
        precondition(dims.reduce(1, *) == floats.count, "\(name): \(floats.count) values for dims \(dims)")
        self.name = name
        self.dims = dims
        values = .floats(floats)
    }

    public init(name: String, dims: [Int], int64s: [Int64]) {
        precondition(dims.reduce(1, *) == int64s.count, "\(name): \(int64s.count) values for dims \(dims)")
        self.name = name
        self.dims = dims
        values = .int64s(int64s)
    }

    public var dataType: ONNXDataType {
        switch values {
        case .floats: return .float
        case .int64s: return .int64
        }
    }

    /// TensorProto: dims 1, data_type 2, name 8, raw_data 9 (little-endian).
    func encode(into w: inout ProtobufWriter) {
        for d in dims { w.int(1, Int64(d)) }
        w.int(2, dataType.rawValue)
        w.string(8, name)
        switch values {
        case .floats(let v): w.rawFloats(9, v)
        case .int64s(let v): w.rawInt64s(9, v)
        }
    }
}

/// A node attribute (AttributeProto).
public struct ONNXAttribute: Sendable {
    public enum Value: Sendable {
        case int(Int64)
        case float(Float)
        case string(String)
        case ints([Int64])
    }

    public var name: String
    public var value: Value

    public init(_ name: String, _ value: Value) {
        self.name = name
        self.value = value
    }

    /// AttributeProto: name 1, f 2, i 3, s 4, ints 8, type 20 (FLOAT 1, INT 2, STRING 3, INTS 7).
    func encode(into w: inout ProtobufWriter) {
        w.string(1, name)
        switch value {
        case .float(let f): w.float(2, f); w.int(20, 1)
        case .int(let i): w.int(3, i); w.int(20, 2)
        case .string(let s): w.string(4, s); w.int(20, 3)
        case .ints(let v): for i in v { w.int(8, i) }; w.int(20, 7)
        }
    }
}

/// One operator application (NodeProto) of the default domain ("ai.onnx").
public struct ONNXNode: Sendable {
    public var opType: String
    public var name: String
    /// Value names; "" leaves an optional input or output out.
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [ONNXAttribute]

    public init(_ opType: String, name: String, inputs: [String], outputs: [String], attributes: [ONNXAttribute] = []) {
        self.opType = opType
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    /// NodeProto: input 1, output 2, name 3, op_type 4, attribute 5.
    func encode(into w: inout ProtobufWriter) {
        for i in inputs { w.string(1, i) }
        for o in outputs { w.string(2, o) }
        w.string(3, name)
        w.string(4, opType)
        for a in attributes { w.message(5) { a.encode(into: &$0) } }
    }
}

/// A graph input or output: a tensor's name, element type and shape (ValueInfoProto).
public struct ONNXValueInfo: Sendable {
    /// A dimension: fixed, or named and given at run time (the batch).
    public enum Dimension: Sendable, Equatable {
        case value(Int)
        case param(String)
    }

    public var name: String
    public var elementType: ONNXDataType
    public var shape: [Dimension]

    public init(name: String, elementType: ONNXDataType, shape: [Dimension]) {
        self.name = name
        self.elementType = elementType
        self.shape = shape
    }

    /// ValueInfoProto name 1, type 2 → TypeProto tensor_type 1 → elem_type 1, shape 2 →
    /// TensorShapeProto dim 1 → Dimension dim_value 1 | dim_param 2.
    func encode(into w: inout ProtobufWriter) {
        w.string(1, name)
        w.message(2) { type in
            type.message(1) { tensor in
                tensor.int(1, elementType.rawValue)
                tensor.message(2) { shapeProto in
                    for d in shape {
                        shapeProto.message(1) { dim in
                            switch d {
                            case .value(let v): dim.int(1, Int64(v))
                            case .param(let p): dim.string(2, p)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The graph: nodes in topological order, constant tensors, inputs and outputs (GraphProto).
public struct ONNXGraph: Sendable {
    public var name: String
    public var nodes: [ONNXNode] = []
    public var initializers: [ONNXTensor] = []
    public var inputs: [ONNXValueInfo] = []
    public var outputs: [ONNXValueInfo] = []

    public init(name: String) { self.name = name }

    /// GraphProto: node 1, name 2, initializer 5, input 11, output 12.
    func encode(into w: inout ProtobufWriter) {
        for n in nodes { w.message(1) { n.encode(into: &$0) } }
        w.string(2, name)
        for t in initializers { w.message(5) { t.encode(into: &$0) } }
        for i in inputs { w.message(11) { i.encode(into: &$0) } }
        for o in outputs { w.message(12) { o.encode(into: &$0) } }
    }
}

/// A whole model file (ModelProto) of the default operator set.
public struct ONNXModel: Sendable {
    public var irVersion: Int64
    public var opsetVersion: Int64
    public var producerName: String
    public var producerVersion: String
    public var graph: ONNXGraph
    /// ModelProto.metadata_props: (key, value) pairs for the model's users.
    public var metadata: [(key: String, value: String)]

    public init(irVersion: Int64, opsetVersion: Int64, producerName: String, producerVersion: String, graph: ONNXGraph,
                metadata: [(key: String, value: String)] = []) {
        self.irVersion = irVersion
        self.opsetVersion = opsetVersion
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.graph = graph
        self.metadata = metadata
    }

    /// The file's bytes. ModelProto: ir_version 1, producer_name 2, producer_version 3, graph 7,
    /// opset_import 8 (OperatorSetIdProto domain 1 = "" the default, version 2), metadata_props 14
    /// (StringStringEntryProto key 1, value 2).
    public func serialized() -> [UInt8] {
        var w = ProtobufWriter()
        w.int(1, irVersion)
        w.string(2, producerName)
        w.string(3, producerVersion)
        w.message(7) { graph.encode(into: &$0) }
        w.message(8) { opset in
            opset.string(1, "")
            opset.int(2, opsetVersion)
        }
        for (key, value) in metadata {
            w.message(14) { entry in
                entry.string(1, key)
                entry.string(2, value)
            }
        }
        return w.encoded
    }
}
