import RNN

/// Which rows train and which validate, and how an epoch's rows are cut into global batches and
/// then into each rank's part (docs/TRAINING.md §Training semantics).
///
/// Shape letters: N rows used (after `--limit`), B the global batch, R ranks.
public struct Schedule: Sendable, Equatable {
    /// Rows of the training split used for training: `0 ..< trainCount`.
    public let trainCount: Int
    /// Rows used for validation: the trailing fraction, `trainCount ..< trainCount + valCount` (Keras
    /// `validation_split`: the last ⌊N·split⌋… rows before any shuffling).
    public let valCount: Int
    /// The global batch B.
    let batchSize: Int
    let seed: UInt64

    /// - Parameters:
    ///   - rows: N, the rows of the split in use (the first `--limit` rows, or all).
    ///   - validationSplit: fraction in [0, 1); Keras keeps `floor(N · (1 − split))` rows for training.
    init(rows: Int, validationSplit: Double, batchSize: Int, seed: UInt64) {
        let train = Int((Double(rows) * (1 - validationSplit)).rounded(.down))
        trainCount = train
        valCount = rows - train
        self.batchSize = batchSize
        self.seed = seed
    }

    /// Global batches per epoch; the last, short one is used, not dropped.
    var batchesPerEpoch: Int { (trainCount + batchSize - 1) / batchSize }

    /// The epoch's order of the training rows: the same on every rank, for any world size.
    /// Fisher–Yates driven by xoshiro256** seeded with (seed, stream 1 + epoch), bounded integers by
    /// rejection so that no index is favoured.
    func permutation(epoch: Int) -> [Int] {
        var g = SeededGenerator(seed: seed, stream: UInt64(1 + epoch))
        var p = Array(0 ..< trainCount)
        var i = trainCount - 1
        while i > 0 {
            let j = Self.bounded(UInt64(i + 1), &g)
            p.swapAt(i, Int(j))
            i -= 1
        }
        return p
    }

    /// Uniform in 0 ..< n by rejection of the top partial range.
    static func bounded(_ n: UInt64, _ g: inout SeededGenerator) -> UInt64 {
        let limit = UInt64.max - UInt64.max % n
        while true {
            let x = g.next()
            if x < limit { return x % n }
        }
    }

    /// Positions `k·B ..< min((k+1)·B, N_train)` of the epoch's permutation: global batch k.
    func batch(_ k: Int) -> Range<Int> {
        (k * batchSize) ..< min((k + 1) * batchSize, trainCount)
    }

    /// Rank r's contiguous part of `range` among `size` ranks; sizes differ by at most one.
    static func part(of range: Range<Int>, rank: Int, size: Int) -> Range<Int> {
        let n = range.count
        let lo = range.lowerBound + n * rank / size
        let hi = range.lowerBound + n * (rank + 1) / size
        return lo ..< hi
    }

    /// Rank r's part of `range` under `--reproducible`: the chunks of `chunkRows` rows at fixed
    /// positions from the range's start (the last one may be short), `part` of them to each rank, so
    /// every chunk is the same rows whatever the number of ranks.
    static func chunkPart(of range: Range<Int>, chunkRows: Int, rank: Int, size: Int) -> Range<Int> {
        let chunks = part(of: 0 ..< (range.count + chunkRows - 1) / chunkRows, rank: rank, size: size)
        return min(range.upperBound, range.lowerBound + chunks.lowerBound * chunkRows)
            ..< min(range.upperBound, range.lowerBound + chunks.upperBound * chunkRows)
    }

    /// The validation rows: the trailing `valCount` of the rows used (the ranks share them as
    /// `Evaluator` cuts them).
    public var validationRows: Range<Int> { trainCount ..< (trainCount + valCount) }
}
