import XCTest
@testable import Training

final class ScheduleTests: XCTestCase {
    func testValidationIsTheTrailingFractionAsKeras() {
        let s = Schedule(rows: 25_000, validationSplit: 0.2, batchSize: 128, seed: 1)
        XCTAssertEqual(s.trainCount, 20_000)
        XCTAssertEqual(s.valCount, 5_000)
        XCTAssertEqual(s.batchesPerEpoch, 157)   // 156 full batches + one of 32, used not dropped
        XCTAssertEqual(s.batch(156), 19_968 ..< 20_000)
        let odd = Schedule(rows: 101, validationSplit: 0.25, batchSize: 10, seed: 1)
        XCTAssertEqual(odd.trainCount, 75)       // floor(101 · 0.75)
        XCTAssertEqual(odd.valCount, 26)
    }

    func testEveryTrainingRowIsUsedOncePerEpochWhateverTheWorldSize() {
        let s = Schedule(rows: 1_000, validationSplit: 0.2, batchSize: 37, seed: 5)
        let perm = s.permutation(epoch: 3)
        for size in [1, 2, 3, 4, 7] {
            var seen: [Int] = []
            for k in 0 ..< s.batchesPerEpoch {
                let b = s.batch(k)
                var covered = b.lowerBound
                var sizes: [Int] = []
                for r in 0 ..< size {
                    let part = Schedule.part(of: b, rank: r, size: size)
                    XCTAssertEqual(part.lowerBound, covered, "parts are contiguous and in rank order")
                    covered = part.upperBound
                    sizes.append(part.count)
                    seen += perm[part]
                }
                XCTAssertEqual(covered, b.upperBound)
                XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1, "sizes differ by at most one")
            }
            XCTAssertEqual(seen.sorted(), Array(0 ..< 800), "size \(size)")
        }
    }

    func testPermutationIsSeededPerEpochAndUnbiased() {
        let s = Schedule(rows: 500, validationSplit: 0, batchSize: 10, seed: 9)
        XCTAssertEqual(s.permutation(epoch: 0), s.permutation(epoch: 0))
        XCTAssertNotEqual(s.permutation(epoch: 0), s.permutation(epoch: 1))
        XCTAssertNotEqual(s.permutation(epoch: 0), Schedule(rows: 500, validationSplit: 0, batchSize: 10, seed: 10).permutation(epoch: 0))
        // Where does element 0 land? Over many epochs each position of 5 should be hit ~equally.
        let small = Schedule(rows: 5, validationSplit: 0, batchSize: 5, seed: 1)
        var counts = [Int](repeating: 0, count: 5)
        for e in 0 ..< 5_000 { counts[small.permutation(epoch: e).firstIndex(of: 0)!] += 1 }
        for c in counts { XCTAssertEqual(Double(c), 1_000, accuracy: 130, "\(counts)") }  // ±4σ
    }

    func testValidationRowsAreTheTrailingRows() {
        let s = Schedule(rows: 103, validationSplit: 0.3, batchSize: 8, seed: 1)
        XCTAssertEqual(s.validationRows, 72 ..< 103)   // ⌊103 · 0.7⌋ = 72 train rows
        XCTAssertEqual(Schedule(rows: 50, validationSplit: 0, batchSize: 8, seed: 1).validationRows.count, 0)
    }
}
