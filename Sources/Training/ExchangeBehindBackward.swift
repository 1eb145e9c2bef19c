import MPI
import RNN

/// The exchange behind backward (docs/TRAINING.md §The exchange behind backward): the fp32
/// touched-rows exchange of `GradientExchange`, with the rows agreed during the forward pass and most
/// of them sent while the first layer's BPTT still runs.
///
/// 1. After the embedding lookup, each rank starts a MIN all-reduce of V first steps (UInt16; 65535
///    for a token its rows do not use): afterwards every rank knows each token's first step in the
///    whole global batch, hence which rows travel and when each one is final.
/// 2. The rows travel in order of first step, latest first (then by id). BPTT walks the steps from
///    last to first; when it has passed step θ_k (θ = ¾T, ½T, ¼T), the rows first used at θ_k or
///    later are final: this rank forms them (`EmbeddingRowGradients`) and starts their all-reduce.
///    Between slices every 8th step lets the started ones progress (`MPI_Test`; Open MPI moves a
///    non-blocking collective only inside MPI calls). Nothing here blocks: a slow or stalled rank
///    delays a slice, never the walk, and the watchdog still guards the one blocking wait.
/// 3. At the exchange: the watchdog's arrival, any slice not started yet (the same slices on every
///    rank, whenever each starts them), then the rest — the remaining rows, every other parameter and
///    the `Statistic`s — in a last all-reduce, and one wait for all.
///
/// Every value is summed over the ranks exactly as in `GradientExchange` (at 2 ranks the same bits;
/// with more, MPI may add in another order for another buffer size), and a row formed during BPTT is
/// the same bits as the one `finishBackward` forms after it (`tokenRowGradient`): the weights are
/// those of the exchange without overlap (`ExchangeOverlapTests`).
final class ExchangeBehindBackward: BackwardObserver {
    let comm: Communicator
    let vocabulary: Int
    /// A token the rank's rows do not use.
    static let absent = UInt16.max
    /// BPTT steps after which a slice starts, as fractions of T.
    static let sliceFractions: [(Int, Int)] = [(3, 4), (1, 2), (1, 4)]

    /// (V): first steps, reduced in place by `agreement`.
    private let firstSteps: UnsafeMutableBufferPointer<UInt16>
    private var agreement = PendingCollective.none
    /// Whether this step's lookup started the exchange (reset by `finish`).
    private(set) var active = false
    private var steps = 0
    private var planned = false
    /// The rows that travel, in wire order, and each slice's end in it and BPTT step.
    private(set) var order: [Int32] = []
    private var sliceEnds: [Int] = []
    private var thresholds: [Int] = []
    private var started = 0
    private var slices: [PendingCollective] = []
    /// The wire buffers: rows, then `restCount` other parameters, then the statistics; this rank's
    /// values go out from `outgoing` and the sums arrive in `sums` (at the same offsets). Not in
    /// place: that lets MPI use a bandwidth-optimal all-reduce from 4 ranks up
    /// (`Communicator.startAllReduce(_:into:)`). Their memory must not move while slices are in
    /// flight, so they grow only in `plan`.
    private var outgoing = UnsafeMutableBufferPointer<Float>(start: nil, count: 0)
    private var sums = UnsafeMutableBufferPointer<Float>(start: nil, count: 0)
    private let width: Int
    private let restCount: Int
    private let statistics: Int
    /// The first MPI error inside BPTT, thrown by `finish`.
    private var failure: Error?
    /// `--timeline`: spans `agree` (the first steps' all-reduce started in forward) and
    /// `slice_k` (slice k's rows formed and their all-reduce started), inside `forward_backward`.
    var timeline: Timeline?

    init(comm: Communicator, vocabulary: Int, width: Int, restCount: Int, statistics: Int) {
        self.comm = comm
        self.vocabulary = vocabulary
        self.width = width
        self.restCount = restCount
        self.statistics = statistics
        firstSteps = .allocate(capacity: vocabulary)
        firstSteps.initialize(repeating: Self.absent)
    }

    deinit {
        firstSteps.deallocate()
        outgoing.deallocate()
        sums.deallocate()
    }

    // MARK: During forward and backward (the model calls these)

    func didLookUp(tokens: UnsafeBufferPointer<Int32>, firstSteps steps: UnsafeBufferPointer<Int32>, steps T: Int) {
        precondition(!active, "ExchangeBehindBackward: a second lookup before the exchange")
        precondition(T < Int(Self.absent), "ExchangeBehindBackward: \(T) steps do not fit the UInt16 first steps")
        firstSteps.update(repeating: Self.absent)
        for (u, v) in tokens.enumerated() { firstSteps[Int(v)] = UInt16(steps[u]) }
        active = true
        planned = false
        started = 0
        slices.removeAll(keepingCapacity: true)
        self.steps = T
        attempt { try span("agree") { agreement = try comm.startAllReduce(firstSteps, op: .min) } }
    }

    func didBackpropagate(step t: Int, rows: EmbeddingRowGradients) {
        guard active, failure == nil else { return }
        let due = started < thresholds.count ? t <= thresholds[started] : false
        guard t % 8 == 0 || due || !planned else { return }
        attempt {
            if !planned {
                guard try comm.test(&agreement) else { return }
                plan()
            }
            for i in slices.indices where !slices[i].isDone { _ = try comm.test(&slices[i]) }
            while started < thresholds.count && t <= thresholds[started] {
                try span("slice_\(started)") {
                    for (i, v) in order[slice(started)].enumerated() {
                        rows.gradient(ofToken: Int(v), into: outgoing.baseAddress! + (slice(started).lowerBound + i) * width)
                    }
                    try startSlice()
                }
            }
        }
    }

    // MARK: The exchange

    /// Completes the step's exchange (after `finishBackward`, so `gradients` holds every row) and
    /// writes the sums back into `gradients` and `stats` (the `Statistic`s, in and out).
    /// Returns the bytes this rank sent, the rows exchanged and how many of them started during BPTT.
    func finish(gradients: inout [Float], embedding e: Range<Int>, rest: Range<Int>,
                stats: inout [Float]) throws -> (bytes: Int, rows: Int, behind: Int) {
        precondition(active, "ExchangeBehindBackward: an exchange without a lookup")
        defer { active = false }
        if let failure { throw failure }
        try comm.arriveBeforeWaiting()
        if !planned {
            try comm.wait(&agreement)
            plan()
        }
        let E = width, out = outgoing.baseAddress!, rowCount = order.count
        // The rows of slices BPTT did not start (their rank's agreement came late) and the last
        // part's, from `gradients` now: the same bits (`tokenRowGradient`).
        let firstUnstarted = started == 0 ? 0 : sliceEnds[started - 1]
        gradients.withUnsafeBufferPointer { g in
            let grad = g.baseAddress! + e.lowerBound
            for i in firstUnstarted ..< rowCount { (out + i * E).update(from: grad + Int(order[i]) * E, count: E) }
            (out + rowCount * E).update(from: g.baseAddress! + rest.lowerBound, count: rest.count)
        }
        for (j, value) in stats.enumerated() { out[rowCount * E + rest.count + j] = value }
        while started < thresholds.count { try startSlice() }
        let tail = (sliceEnds.last ?? 0) * E
        var last = try comm.startAllReduce(UnsafeBufferPointer(rebasing: outgoing[tail ..< used]),
                                           into: UnsafeMutableBufferPointer(rebasing: sums[tail ..< used]))
        for i in slices.indices { try comm.wait(&slices[i]) }
        try comm.wait(&last)
        try comm.doneWaiting()
        let summed = sums.baseAddress!
        gradients.withUnsafeMutableBufferPointer { g in
            let grad = g.baseAddress! + e.lowerBound
            for (i, v) in order.enumerated() { (grad + Int(v) * E).update(from: summed + i * E, count: E) }
            (g.baseAddress! + rest.lowerBound).update(from: summed + rowCount * E, count: rest.count)
        }
        for j in stats.indices { stats[j] = summed[rowCount * E + rest.count + j] }
        return (firstSteps.count * MemoryLayout<UInt16>.size + used * MemoryLayout<Float>.size, rowCount, firstUnstarted)
    }

    // MARK: Plumbing

    /// Values on the wire: every row, the other parameters and the statistics.
    private var used: Int { order.count * width + restCount + statistics }
    /// Slice k's rows in `order`.
    private func slice(_ k: Int) -> Range<Int> { (k == 0 ? 0 : sliceEnds[k - 1]) ..< sliceEnds[k] }

    /// Starts the all-reduce of slice `started`'s rows (already in `outgoing`).
    private func startSlice() throws {
        let r = slice(started)
        if !r.isEmpty {
            let values = (r.lowerBound * width) ..< (r.upperBound * width)
            slices.append(try comm.startAllReduce(UnsafeBufferPointer(rebasing: outgoing[values]),
                                                  into: UnsafeMutableBufferPointer(rebasing: sums[values])))
        }
        started += 1
    }

    /// After the agreement: the rows in wire order (first step descending, then id; a counting sort),
    /// the slices' ends and steps, and a buffer large enough.
    private func plan() {
        let T = steps
        var counts = [Int](repeating: 0, count: T + 1)
        for v in 0..<vocabulary where firstSteps[v] != Self.absent { counts[Int(firstSteps[v])] += 1 }
        // Position of the first row of each first step, latest step first.
        var next = [Int](repeating: 0, count: T + 1)
        var position = 0
        for s in stride(from: T, through: 0, by: -1) { next[s] = position; position += counts[s] }
        order = [Int32](repeating: 0, count: position)
        for v in 0..<vocabulary where firstSteps[v] != Self.absent {
            let s = Int(firstSteps[v])
            order[next[s]] = Int32(v)
            next[s] += 1
        }
        thresholds = Self.sliceFractions.map { T * $0.0 / $0.1 }
        sliceEnds = thresholds.map { θ in order.prefix { Int(firstSteps[Int($0)]) >= θ }.count }
        if outgoing.count < used {
            for b in [outgoing, sums] { b.deallocate() }
            outgoing = .allocate(capacity: used + used / 4)
            outgoing.initialize(repeating: 0)
            sums = .allocate(capacity: used + used / 4)
            sums.initialize(repeating: 0)
        }
        planned = true
    }

    private func span(_ name: String, _ body: () throws -> Void) throws {
        if let timeline { try timeline.span(name, body) } else { try body() }
    }

    private func attempt(_ body: () throws -> Void) {
        do { try body() } catch { if failure == nil { failure = error } }
    }
}
