import XCTest
@testable import TextData

/// The row permutation of docs/DATASET.md: SplitMix64 + Fisher–Yates with rejection sampling.
final class ShuffleTests: XCTestCase {
    func testSplitMix64MatchesTheReferenceStream() {
        var zero = SplitMix64(seed: 0)
        XCTAssertEqual(zero.next(), 0xE220_A839_7B1D_CDAF, "the published first output for seed 0")
        var rng = SplitMix64(seed: 113)
        XCTAssertEqual([rng.next(), rng.next(), rng.next()],
                       [0xAEA0_B056_15E9_7B6C, 0xDB57_CCA2_1DF1_6C58, 0x88A4_212C_140D_A970])
    }

    /// Pinned against Launch/py_tokenize_reference.py (an independent implementation).
    func testPinnedPermutations() {
        var rng = SplitMix64(seed: 113)
        XCTAssertEqual(Shuffle.permutation(10, using: &rng), [3, 2, 9, 8, 5, 7, 4, 0, 1, 6])
        XCTAssertEqual(Shuffle.permutation(5, using: &rng), [3, 0, 2, 1, 4], "the test split continues the stream")
        var one = SplitMix64(seed: 1)
        XCTAssertEqual(Shuffle.permutation(4, using: &one), [2, 0, 3, 1])
    }

    func testDeterministicAndAPermutation() {
        var a = SplitMix64(seed: 42), b = SplitMix64(seed: 42), c = SplitMix64(seed: 43)
        let pa = Shuffle.permutation(1000, using: &a)
        XCTAssertEqual(pa, Shuffle.permutation(1000, using: &b))
        XCTAssertNotEqual(pa, Shuffle.permutation(1000, using: &c))
        XCTAssertEqual(pa.sorted(), Array(0 ..< 1000))
        var d = SplitMix64(seed: 0)
        XCTAssertEqual(Shuffle.permutation(0, using: &d), [])
        XCTAssertEqual(Shuffle.permutation(1, using: &d), [0])
    }

    func testBoundedDrawsAreInRangeAndRoughlyUniform() {
        var rng = SplitMix64(seed: 7)
        var hist = [Int](repeating: 0, count: 3)
        for _ in 0 ..< 30_000 { hist[Int(rng.below(3))] += 1 }
        for h in hist { XCTAssertEqual(Double(h), 10_000, accuracy: 400) }
        XCTAssertEqual(rng.below(1), 0)
        // A bound just above 2⁶³ rejects almost half the draws: here the first three (pinned
        // against the Python reference; plain `x % bound` would return other values).
        var fresh = SplitMix64(seed: 113)
        let big = (UInt64(1) << 63) + 12345
        XCTAssertEqual((0 ..< 4).map { _ in fresh.below(big) },
                       [7_471_729_358_062_301_490, 7_861_591_277_162_741_850, 7_352_033_537_507_284_515, 7_292_306_653_673_305_044])
    }
}
