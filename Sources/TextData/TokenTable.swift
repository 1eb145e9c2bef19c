/// An interning table of byte strings: each distinct word gets a dense id 0, 1, 2, … in order of
/// first appearance, with a count per word. Open addressing over unsafe buffers, because `prepare`
/// interns ≈ 14 million tokens and a `Dictionary<String, Int>` spends most of its time in `String`.
///
/// A value type holding raw buffers: the owner calls `release()` exactly once.
struct TokenTable {
    /// Words' bytes, concatenated.
    private(set) var bytes: UnsafeMutablePointer<UInt8>
    private var byteCapacity: Int
    private(set) var byteCount = 0
    /// Per word: start in `bytes` (the end is the next word's start), hash, count.
    private(set) var starts: UnsafeMutablePointer<Int>
    private(set) var hashes: UnsafeMutablePointer<UInt64>
    private(set) var counts: UnsafeMutablePointer<Int>
    private var wordCapacity: Int
    private(set) var count = 0
    /// Hash slots holding word id + 1 (0 = empty); a power of two, at most half full.
    private var slots: UnsafeMutablePointer<Int32>
    private var mask: Int

    init(expectedWords: Int = 1 << 14) {
        var n = 16
        while n < 2 * expectedWords { n <<= 1 }
        mask = n - 1
        slots = .allocate(capacity: n)
        slots.initialize(repeating: 0, count: n)
        wordCapacity = max(16, expectedWords)
        starts = .allocate(capacity: wordCapacity + 1)
        starts[0] = 0
        hashes = .allocate(capacity: wordCapacity)
        counts = .allocate(capacity: wordCapacity)
        byteCapacity = 8 * wordCapacity
        bytes = .allocate(capacity: byteCapacity)
    }

    func release() {
        slots.deallocate(); starts.deallocate(); hashes.deallocate(); counts.deallocate(); bytes.deallocate()
    }

    /// The bytes of word `id`.
    @inline(__always)
    func word(_ id: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: bytes + starts[id], count: starts[id + 1] - starts[id])
    }

    /// FNV-1a over the bytes, then a 64-bit finalizer so that the low bits (the slot) mix well.
    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for k in 0 ..< n { h = (h ^ UInt64(p[k])) &* 0x100_0000_01B3 }
        h ^= h >> 33; h = h &* 0xFF51_AFD7_ED55_8CCD; h ^= h >> 33
        return h
    }

    /// The id of the word `p[0..<n]`, added (count 0) if new.
    @inline(__always)
    mutating func intern(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64) -> Int {
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let v = Int(slots[s])
            if v == 0 { break }
            let id = v - 1
            if hashes[id] == h && starts[id + 1] - starts[id] == n && memeq(bytes + starts[id], p, n) { return id }
            s = (s + 1) & mask
        }
        return insert(p, n, hash: h, slot: s)
    }

    @inline(__always)
    private func memeq(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        for k in 0 ..< n where a[k] != b[k] { return false }
        return true
    }

    private mutating func insert(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64, slot: Int) -> Int {
        if count == wordCapacity { growWords() }
        if byteCount + n > byteCapacity { growBytes(byteCount + n) }
        let id = count
        (bytes + byteCount).update(from: p, count: n)
        byteCount += n
        starts[id + 1] = byteCount
        hashes[id] = h
        counts[id] = 0
        count += 1
        slots[slot] = Int32(id + 1)
        if 2 * count > mask { rehash() }
        return id
    }

    private mutating func growWords() {
        let c = 2 * wordCapacity
        func grow<T>(_ old: UnsafeMutablePointer<T>, _ used: Int, _ cap: Int) -> UnsafeMutablePointer<T> {
            let new = UnsafeMutablePointer<T>.allocate(capacity: cap)
            new.moveInitialize(from: old, count: used)
            old.deallocate()
            return new
        }
        starts = grow(starts, count + 1, c + 1)
        hashes = grow(hashes, count, c)
        counts = grow(counts, count, c)
        wordCapacity = c
    }

    private mutating func growBytes(_ need: Int) {
        var c = 2 * byteCapacity
        while c < need { c *= 2 }
        let new = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        new.update(from: bytes, count: byteCount)
        bytes.deallocate()
        bytes = new
        byteCapacity = c
    }

    private mutating func rehash() {
        let n = 2 * (mask + 1)
        slots.deallocate()
        slots = .allocate(capacity: n)
        slots.initialize(repeating: 0, count: n)
        mask = n - 1
        for id in 0 ..< count {
            var s = Int(truncatingIfNeeded: hashes[id]) & mask
            while slots[s] != 0 { s = (s + 1) & mask }
            slots[s] = Int32(id + 1)
        }
    }

    /// Adds `k` to the count of word `id`.
    @inline(__always)
    mutating func add(_ id: Int, _ k: Int) { counts[id] += k }
}
