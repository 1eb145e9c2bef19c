import MPI
import RNN

/// The exchange of `--reproducible` (docs/TRAINING.md §Reproducible training): the same bits for
/// any number of ranks.
///
/// Every optimizer step's rows are cut into chunks of C rows at fixed positions of the global batch
/// (`Schedule.chunkPart`); whichever rank holds a chunk computes its gradient sum alone, with the
/// same call shapes, so a chunk's sum is the same float bits on any rank. Those sums are then added
/// in integers, where the order does not matter:
/// 1. Each rank keeps its chunks' sums as backward left them (`keep`).
/// 2. One MAX all-reduce of bytes agrees on the embedding rows any chunk touched and, per tensor of
///    the parameter table (and for the loss), the largest binary exponent of any chunk's values.
/// 3. Each value becomes an integer at that tensor's scale 2^(62 − ⌈log₂ K⌉ − e) for values below
///    2^e and K chunks in the step: round(x · scale). The K integers of a position cannot overflow
///    (|Σ| ≤ 2^62), so a SUM all-reduce of Int64 is exact, whatever order MPI adds in.
/// 4. Each sum goes back to Float: Float(Double(Σ) / scale).
///
/// The error against the exact sum is at most K/2 units of 2^(⌈log₂ K⌉ + e − 62) before the final
/// rounding to Float: for the K = 8 chunks of a 128-row step, 2^(e − 57), below 2⁻⁵⁶ of the tensor's
/// largest chunk value (Float's own spacing there is 2⁻²³ of it); values under about 2⁻³² of the
/// largest lose bits a float sum would keep. A
/// non-finite chunk value has exponent 255; then no integer is formed, and the step reports the
/// loss or gradient non-finite as the float exchange does.
final class ReproducibleExchange {
    let comm: Communicator
    /// C: rows per chunk.
    let chunkRows: Int
    /// Exchange every embedding row (the dense hook, as `GradientExchange.dense`).
    var dense = false
    private(set) var traffic = ExchangeTraffic()

    /// One chunk's gradient sum as backward left it: the embedding rows it touched (their values
    /// first, `rows.count` × E) and then every parameter after the embedding; and its statistics.
    private struct Chunk {
        var rows: [Int32] = []
        var values: [Float] = []
        var stats = BatchStats.zero
    }
    private var chunks: [Chunk] = []
    /// Chunks kept this step (the storage of `chunks` is reused).
    private var kept = 0
    /// The MAX all-reduce: V row flags (unless frozen or dense), then one exponent per tensor, then
    /// the loss's.
    private var flags: [UInt8] = []
    private var wire: [Int64] = []
    /// Row → its place among the step's touched rows.
    private var slot: [Int32] = []

    init(comm: Communicator, chunkRows: Int) {
        self.comm = comm
        self.chunkRows = chunkRows
    }

    func resetTraffic() { traffic = ExchangeTraffic() }

    /// K: the chunks of a step of `rows` rows.
    func chunkCount(rows: Int) -> Int { (rows + chunkRows - 1) / chunkRows }

    /// Starts a step.
    func begin() { kept = 0 }

    /// Keeps the chunk whose gradient sum `model.gradients` holds (accumulated since the last zeroing).
    func keep(_ model: Model, stats: BatchStats) {
        if kept == chunks.count { chunks.append(Chunk()) }
        let e = model.embeddingRange, width = model.config.embeddingWidth
        let rows = model.config.embeddingTrainable ? model.touchedEmbeddingRows : []
        let rest = model.gradients.count - e.upperBound
        chunks[kept].stats = stats
        // Copied into storage kept from step to step (a fresh allocation per chunk costs page faults).
        chunks[kept].rows.removeAll(keepingCapacity: true)
        chunks[kept].rows.append(contentsOf: rows)
        chunks[kept].values.removeAll(keepingCapacity: true)
        model.gradients.withUnsafeBufferPointer { g in
            let grad = g.baseAddress!
            for row in rows {
                chunks[kept].values.append(contentsOf: UnsafeBufferPointer(start: grad + e.lowerBound + Int(row) * width, count: width))
            }
            chunks[kept].values.append(contentsOf: UnsafeBufferPointer(start: grad + e.upperBound, count: rest))
        }
        kept += 1
    }

    /// Replaces `model.gradients` by the step's exact-order sum over every rank's chunks and returns
    /// the global statistics and whether any rank asked to stop. `chunksInStep` is K, the same on
    /// every rank. A non-finite value anywhere returns a NaN loss (from the loss) or leaves a NaN
    /// in the gradient, for the caller's checks.
    func reduce(_ model: Model, stop: Bool, chunksInStep k: Int) throws -> (stats: BatchStats, stop: Bool) {
        let e = model.embeddingRange, width = model.config.embeddingWidth
        let table = model.config.parameterTable
        let vocabulary = model.config.vocabularySize
        let trainable = model.config.embeddingTrainable
        precondition(table.first?.range == e, "ReproducibleExchange: the parameter table must start with the embedding")
        let sendsFlags = trainable && !dense
        let flagCount = sendsFlags ? vocabulary : 0
        let lossSlot = flagCount + table.count
        if flags.count != lossSlot + 1 { flags = [UInt8](repeating: 0, count: lossSlot + 1) }
        flags.withUnsafeMutableBufferPointer { f in
            f.update(repeating: 0)
            for c in chunks[..<kept] {
                if sendsFlags { for row in c.rows { f[Int(row)] = 1 } }
                c.values.withUnsafeBufferPointer { v in
                    let embeddingValues = c.rows.count * width
                    for (t, view) in table.enumerated() {
                        let range = t == 0 ? 0 ..< embeddingValues
                            : (embeddingValues + view.range.lowerBound - e.upperBound) ..< (embeddingValues + view.range.upperBound - e.upperBound)
                        f[flagCount + t] = max(f[flagCount + t], Self.exponent(UnsafeBufferPointer(rebasing: v[range])))
                    }
                }
                f[lossSlot] = max(f[lossSlot], Self.exponent(of: c.stats.lossSum))
            }
        }
        if comm.size > 1 { try comm.allReduce(&flags, op: .max) }
        traffic.batches += 1
        traffic.bytes += comm.size > 1 ? flags.count : 0
        // A non-finite value on some rank: every rank sees 255 in the same place and stops alike.
        guard flags[lossSlot] != 255 else { return (BatchStats(lossSum: .nan, correct: 0, count: 0), stop) }
        guard !flags[flagCount ..< lossSlot].contains(255) else {
            model.gradients[model.gradients.count - 1] = .nan
            return (BatchStats(lossSum: 0, correct: 0, count: 0), stop)
        }
        // The touched rows, ascending, and each one's place on the wire.
        let touched: [Int]
        if !trainable { touched = [] } else if dense { touched = Array(0 ..< vocabulary) } else {
            touched = (0 ..< vocabulary).filter { flags[$0] != 0 }
        }
        if slot.count != vocabulary { slot = [Int32](repeating: -1, count: vocabulary) }
        for (i, row) in touched.enumerated() { slot[row] = Int32(i) }
        let embeddingCount = touched.count * width
        let rest = model.gradients.count - e.upperBound
        let n = embeddingCount + rest
        let headroom = Self.headroomBits(chunks: k)
        let exponents = table.indices.map { Self.scaleExponent(exponent: flags[flagCount + $0], headroom: headroom) }
        let scales = exponents.map { Double(sign: .plus, exponent: $0, significand: 1) }
        let lossScale = Self.scale(exponent: flags[lossSlot], headroom: headroom)
        if wire.count < n + 4 { wire = [Int64](repeating: 0, count: n + 4 + n / 4) }   // grows, never shrinks
        wire.withUnsafeMutableBufferPointer { w in
            let out = w.baseAddress!
            out.update(repeating: 0, count: n + 4)
            for c in chunks[..<kept] {
                c.values.withUnsafeBufferPointer { v in
                    let values = v.baseAddress!
                    let s0 = exponents[0]
                    for (i, row) in c.rows.enumerated() {
                        Self.add(values + i * width, count: width, scaleExponent: s0, into: out + Int(slot[Int(row)]) * width)
                    }
                    let restValues = values + c.rows.count * width
                    for (t, view) in table.enumerated() where t > 0 {
                        let offset = view.range.lowerBound - e.upperBound
                        Self.add(restValues + offset, count: view.count, scaleExponent: exponents[t], into: out + embeddingCount + offset)
                    }
                }
                out[n] &+= Self.fixed(c.stats.lossSum, lossScale)
                out[n + 1] &+= Int64(c.stats.correct)
                out[n + 2] &+= Int64(c.stats.count)
            }
            out[n + 3] = stop ? 1 : 0
        }
        for row in touched { slot[row] = -1 }
        if comm.size > 1 { try wire.withUnsafeMutableBufferPointer { try comm.allReduce(UnsafeMutableBufferPointer(rebasing: $0[..<(n + 4)])) } }
        traffic.bytes += comm.size > 1 ? (n + 4) * MemoryLayout<Int64>.size : 0
        traffic.touchedRows += touched.count
        wire.withUnsafeBufferPointer { w in
            model.gradients.withUnsafeMutableBufferPointer { g in
                let grad = g.baseAddress!, from = w.baseAddress!
                let inverse0 = 1 / scales[0]
                for (i, row) in touched.enumerated() {
                    Self.restore(from + i * width, count: width, inverse: inverse0, into: grad + e.lowerBound + row * width)
                }
                for (t, view) in table.enumerated() where t > 0 {
                    let offset = view.range.lowerBound - e.upperBound
                    Self.restore(from + embeddingCount + offset, count: view.count, inverse: 1 / scales[t], into: grad + view.range.lowerBound)
                }
            }
        }
        let stats = BatchStats(lossSum: Double(wire[n]) / lossScale, correct: Int(wire[n + 1]), count: Int(wire[n + 2]))
        return (stats, wire[n + 3] > 0)
    }

    // MARK: - The fixed-point arithmetic

    /// ⌈log₂ K⌉: the bits K integers' sum may need beyond one of them.
    static func headroomBits(chunks k: Int) -> Int {
        k <= 1 ? 0 : Int.bitWidth - (k - 1).leadingZeroBitCount
    }

    /// The biased exponent field e (0…255) of the largest |x|: every |x| < 2^(e − 126); 255 when
    /// some value is ±inf or NaN. An integer max over the bit patterns, which vectorizes.
    static func exponent(_ values: UnsafeBufferPointer<Float>) -> UInt8 {
        var m: UInt32 = 0
        for x in values { m = max(m, x.bitPattern & 0x7fff_ffff) }
        return UInt8(truncatingIfNeeded: m >> 23)
    }

    /// The exponent field bounding a Double statistic (the loss sum): |x| < 2^(e − 126).
    static func exponent(of x: Double) -> UInt8 {
        let bound = Float(x.magnitude).nextUp          // ≥ |x|; inf or NaN for a non-finite x
        return UInt8(truncatingIfNeeded: (bound.bitPattern & 0x7fff_ffff) >> 23)
    }

    /// 2^(62 − headroom − (e − 126)): |x| < 2^(e − 126) becomes at most 2^(62 − headroom) in magnitude.
    static func scale(exponent e: UInt8, headroom: Int) -> Double {
        Double(sign: .plus, exponent: scaleExponent(exponent: e, headroom: headroom), significand: 1)
    }

    /// log₂ of `scale`.
    static func scaleExponent(exponent e: UInt8, headroom: Int) -> Int { 188 - headroom - Int(e) }

    /// x at `scale`, rounded to the nearest integer (ties to even).
    @inline(__always)
    static func fixed(_ x: Double, _ scale: Double) -> Int64 {
        Int64((x * scale).rounded(.toNearestOrEven))
    }

    /// out[i] += round(values[i] · 2^s) (ties to even) for `count` values: `fixed` of the value,
    /// computed from the float's bits in integers (a third of the time; subnormals exact too).
    /// The float is m · 2^(e − 150) with m its 24-bit significand (e ≥ 1), so the scaled value is
    /// m shifted left by e − 150 + s, or right with rounding. Every |result| ≤ 2^62 by the scale's choice.
    static func add(_ values: UnsafePointer<Float>, count: Int, scaleExponent s: Int, into out: UnsafeMutablePointer<Int64>) {
        // Branch-free, in wrapping 64-bit integer operations, so that the loop vectorizes.
        let offset = Int64(s - 150)
        for i in 0 ..< count {
            let bits = Int64(values[i].bitPattern)
            let field = (bits &>> 23) & 0xff
            let m = (bits & 0x7f_ffff) | (field == 0 ? 0 : 0x80_0000)
            let shift = (field == 0 ? 1 : field) &+ offset
            let left = m &<< shift
            let r = shift >= 0 ? 1 : (shift < -40 ? 40 : 0 &- shift)   // m < 2^24: 25 or more leaves 0
            let kept = m &>> r, rest = m & ((1 &<< r) &- 1), half = Int64(1) &<< (r &- 1)
            let up: Int64 = rest > half ? 1 : (rest == half ? kept & 1 : 0)
            let q = shift >= 0 ? left : kept &+ up
            let sign = 0 &- ((bits &>> 31) & 1)                        // 0 or −1
            out[i] &+= (q ^ sign) &- sign
        }
    }

    /// out[i] = Float(sums[i] / scale) for `count` values (the division by a power of two is exact).
    static func restore(_ sums: UnsafePointer<Int64>, count: Int, inverse: Double, into out: UnsafeMutablePointer<Float>) {
        for i in 0 ..< count { out[i] = Float(Double(sums[i]) * inverse) }
    }
}
