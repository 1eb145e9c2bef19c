/// One object found by `H5Group.walk()`.
public struct H5Entry: Sendable {
    public enum Kind: Sendable { case group, dataset(shape: [Int], type: H5ElementType), other }
    /// Full name inside the file, e.g. `/train/x`.
    public let name: String
    public let kind: Kind
    /// Attribute names of the object.
    public let attributes: [String]
}

extension H5Group {
    /// Every object below this group, depth first in name order. With `verifyData`, each dataset is
    /// read in full, so a flipped byte anywhere in its data fails its Fletcher-32 check here.
    public func walk(verifyData: Bool = false, maxObjects: Int = 100_000) throws -> [H5Entry] {
        var out: [H5Entry] = []
        var seen = Set<UInt64>()
        try walk(into: &out, seen: &seen, depth: 0, verifyData: verifyData, maxObjects: maxObjects)
        return out
    }

    /// Groups nest at most this deep in our files (the Keras layout needs 5).
    static var maxDepth: Int { 32 }

    private func walk(into out: inout [H5Entry], seen: inout Set<UInt64>, depth: Int, verifyData: Bool,
                      maxObjects: Int) throws {
        guard depth < Self.maxDepth else { throw error(.invalid, "groups nested deeper than \(Self.maxDepth)") }
        // A group reached twice (hard links can form cycles in a crafted file) is an error.
        guard seen.insert(try objectAddress()).inserted else { throw error(.invalid, "is linked more than once (a cycle)") }
        for n in try childNames() {
            guard out.count < maxObjects else { throw error(.invalid, "more than \(maxObjects) objects") }
            switch try kind(of: n) {
            case .group:
                let g = try group(n)
                out.append(H5Entry(name: g.name, kind: .group, attributes: try g.attributeNames()))
                try g.walk(into: &out, seen: &seen, depth: depth + 1, verifyData: verifyData, maxObjects: maxObjects)
            case .dataset:
                let d = try dataset(n)
                if verifyData { try d.verifyReadable() }
                out.append(H5Entry(name: d.name, kind: .dataset(shape: d.shape, type: d.elementType),
                                   attributes: try d.attributeNames()))
            case .other:
                out.append(H5Entry(name: child(n), kind: .other, attributes: []))
            }
        }
    }
}

extension H5Dataset {
    /// Reads every element, in slabs of rows, and discards them: a Fletcher-32, decoding or content
    /// checksum failure throws.
    func verifyReadable() throws {
        let rowBytes = max(1, rowElements * elementType.size)
        let step = max(1, (4 << 20) / rowBytes)
        var r = 0
        var hasher = ContentChecksum()
        // Read through the unchecked `readRows(_:into:)`: the content is checked once, below.
        func slab<T: H5Element>(_ range: Range<Int>, _: T.Type) throws {
            let values = try [T](unsafeUninitializedCapacity: range.count * rowElements) { buffer, initialized in
                if !buffer.isEmpty { try readRows(range, into: buffer.baseAddress!) }
                initialized = buffer.count
            }
            values.withUnsafeBytes { hasher.update($0) }
        }
        while r < rows {
            let range = r ..< min(rows, r + step)
            switch elementType {
            case .float32: try slab(range, Float.self)
            case .float64: try slab(range, Double.self)
            case .int64: try slab(range, Int64.self)
            case .int32: try slab(range, Int32.self)
            case .int8: try slab(range, Int8.self)
            case .uint8: try slab(range, UInt8.self)
            }
            r = range.upperBound
        }
        try checkContent(hasher)
    }
}
