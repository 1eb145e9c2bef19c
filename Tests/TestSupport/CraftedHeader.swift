import Foundation

/// Makes a file whose metadata checksums all match but whose first group with a Link Info message
/// (HDF5 format spec §IV.A.2.c; the root group of a file rnn-dist writes) claims its links are in a
/// fractal heap at `heapAddress`: the damage that crashed HDF5 1.10.8 in `H5Literate` (SIGSEGV).
/// The version-2 object header ("OHDR") is parsed, the address replaced and the header's Jenkins
/// lookup3 checksum recomputed. Returns false when no such header is found.
@discardableResult
public func redirectLinkHeap(in path: String, to heapAddress: UInt64 = 0x100) throws -> Bool {
    var buf = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    func le(_ at: Int, _ n: Int) -> Int { (0 ..< n).reduce(0) { $0 | Int(buf[at + $1]) << (8 * $1) } }
    var from = 0
    while let p = find(Array("OHDR".utf8), in: buf, from: from) {
        from = p + 4
        let flags = buf[p + 5]
        var q = p + 6
        if flags & 0x20 != 0 { q += 16 }     // times
        if flags & 0x10 != 0 { q += 4 }      // attribute phase change values
        let width = 1 << Int(flags & 3)
        guard q + width <= buf.count else { continue }
        let size = le(q, width)
        let start = q + width, end = start + size
        guard size > 0, end + 4 <= buf.count, lookup3(buf[p ..< end]) == UInt32(le(end, 4)) else { continue }
        var m = start
        while m + 4 <= end {
            let type = buf[m], length = le(m + 1, 2)
            let data = m + 4 + (flags & 0x04 != 0 ? 2 : 0)   // creation order of each message
            if type == 0x02 {                                 // Link Info
                let address = data + 2 + (buf[data + 1] & 1 != 0 ? 8 : 0)
                for k in 0 ..< 8 { buf[address + k] = UInt8(truncatingIfNeeded: heapAddress >> (8 * UInt64(k))) }
                let sum = lookup3(buf[p ..< end])
                for k in 0 ..< 4 { buf[end + k] = UInt8(truncatingIfNeeded: sum >> (8 * UInt32(k))) }
                try Data(buf).write(to: URL(fileURLWithPath: path))
                return true
            }
            m = data + length
        }
    }
    return false
}

private func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
    guard haystack.count >= needle.count else { return nil }
    var i = from
    while i + needle.count <= haystack.count {
        if haystack[i] == needle[0], Array(haystack[i ..< i + needle.count]) == needle { return i }
        i += 1
    }
    return nil
}

/// Bob Jenkins' lookup3 `hashlittle` with initial value 0: HDF5's metadata checksum.
func lookup3(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    let k = Array(bytes)
    var length = k.count
    var a = 0xdeadbeef &+ UInt32(truncatingIfNeeded: length), b = a, c = a
    func rot(_ x: UInt32, _ r: UInt32) -> UInt32 { (x << r) | (x >> (32 - r)) }
    func word(_ i: Int) -> UInt32 {
        (0 ..< 4).reduce(UInt32(0)) { $0 | (i + $1 < k.count ? UInt32(k[i + $1]) << (8 * UInt32($1)) : 0) }
    }
    var i = 0
    while length > 12 {
        a &+= word(i); b &+= word(i + 4); c &+= word(i + 8)
        a &-= c; a ^= rot(c, 4); c &+= b
        b &-= a; b ^= rot(a, 6); a &+= c
        c &-= b; c ^= rot(b, 8); b &+= a
        a &-= c; a ^= rot(c, 16); c &+= b
        b &-= a; b ^= rot(a, 19); a &+= c
        c &-= b; c ^= rot(b, 4); b &+= a
        length -= 12; i += 12
    }
    if length == 0 { return c }
    // The last 1…12 bytes, zero-padded (word() reads nothing beyond the end).
    a &+= word(i); b &+= word(i + 4); c &+= word(i + 8)
    c ^= b; c &-= rot(b, 14)
    a ^= c; a &-= rot(c, 11)
    b ^= a; b &-= rot(a, 25)
    c ^= b; c &-= rot(b, 16)
    a ^= c; a &-= rot(c, 4)
    b ^= a; b &-= rot(a, 14)
    c ^= b; c &-= rot(b, 24)
    return c
}
