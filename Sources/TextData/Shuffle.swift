/// SplitMix64 (Steele, Lea & Flood 2014): a 64-bit generator simple enough to reimplement anywhere
/// in five lines, which is the point: the dataset's row order must be reproducible from docs/DATASET.md.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private(set) var state: UInt64

    init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0 ..< bound` by rejection: draws `x` until `x < 2⁶⁴ − (2⁶⁴ mod bound)`,
    /// then returns `x mod bound` (no modulo bias).
    mutating func below(_ bound: UInt64) -> UInt64 {
        precondition(bound > 0)
        let excess = (0 &- bound) % bound          // 2⁶⁴ mod bound
        while true {
            let x = next()
            if x <= UInt64.max - excess { return x % bound }
        }
    }
}

/// The seeded permutation `prepare` applies to each split (docs/DATASET.md).
public enum Shuffle {
    /// Stored in the dataset (`/@shuffle`).
    static let version = "splitmix64-fisher-yates/1"

    /// Fisher–Yates ("Durstenfeld") on `[0, 1, …, n−1]`: for i = n−1 down to 1, j = `below(i + 1)`,
    /// swap entries i and j. Row r of the shuffled split is row `p[r]` of the sorted split.
    static func permutation(_ n: Int, using rng: inout SplitMix64) -> [Int] {
        var p = Array(0 ..< n)
        var i = n - 1
        while i > 0 {
            let j = Int(rng.below(UInt64(i + 1)))
            p.swapAt(i, j)
            i -= 1
        }
        return p
    }
}
