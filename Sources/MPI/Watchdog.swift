import CMPI
import Foundation

// The collective watchdog (`train --collective-timeout S`; docs/TRAINING.md §Stalled ranks).
//
// A dead rank ends an MPI job within seconds (mpirun sees it go); a stalled one — stopped, frozen,
// stuck in a read — leaves every other rank waiting in a collective forever. So, with the watchdog
// on, every collective first waits for all ranks to arrive in an `MPI_Ibarrier` (on the watchdog's
// own communicator), polled with `MPI_Test` — yielding the core for the first 10 ms, then sleeping
// with a back-off (a waiting rank hands its core to a slow one) — and is then started non-blocking
// and polled to its end (yielding only: a sleep between the steps of its protocol would slow it),
// never entered as a blocking call: a rank that stalls before the collective, or inside it after
// its peers saw it arrive, is caught alike.
//
// Each rank tells every other one, in small messages on a communicator of its own, when it arrives
// at a collective (collective number, the caller's step) and when it has completed it. When a
// collective has not completed after the timeout, the rank says so to every other rank ("waiting
// in collective n"), and any rank that hears this while it waits itself answers the same; after a
// short grace the ranks that neither answered, nor completed the collective, nor went past it are
// the stalled ones: those that never arrived, and those that arrived but stopped inside. A rank
// that hears a peer wait starts its own grace too; the lowest-numbered of the ranks in their grace
// prints one line naming the stalled ones and ends the job with `MPI_Abort`; the others give it
// 5 s, then print and abort themselves.

/// The ranks a collective waited for in vain.
public struct CollectiveTimeout: Error, CustomStringConvertible, Sendable {
    public struct Missing: Sendable {
        public let rank: Int
        public let host: String
        /// The step the rank announced at its last collective (its last completed step; for a rank
        /// stalled inside the collective, the step it was in), or nil when it never announced one.
        public let lastStep: Int?
    }

    public let seconds: Double
    public let step: Int
    /// Ranks that never arrived at the collective.
    public let missing: [Missing]
    /// Ranks that arrived, then neither completed it nor answered (stopped inside it).
    public let stalledInside: [Missing]
    /// The exit status of a job ended by the watchdog (docs/TRAINING.md §Exit status).
    public static let exitCode: Int32 = 6

    public init(seconds: Double, step: Int, missing: [Missing], stalledInside: [Missing] = []) {
        self.seconds = seconds
        self.step = step
        self.missing = missing
        self.stalledInside = stalledInside
    }

    public var description: String {
        func list(_ ranks: [Missing], inside: Bool = false) -> String {
            ranks.map { m in
                "rank \(m.rank) on \(m.host) (" + (inside ? "in step " : "last completed step ") + (m.lastStep.map(String.init) ?? "none") + ")"
            }.joined(separator: ", ")
        }
        var parts: [String] = []
        if !missing.isEmpty {
            parts.append("\(missing.count == 1 ? "this rank has" : "these ranks have") not arrived: \(list(missing))")
        }
        if !stalledInside.isEmpty {
            parts.append("\(stalledInside.count == 1 ? "this rank" : "these ranks") arrived but stopped inside it: \(list(stalledInside, inside: true))")
        }
        let who = parts.isEmpty ? "every rank arrived and is waiting, yet it has not completed (a network fault?)"
                                : parts.joined(separator: "; ") + " (stalled: stopped, frozen or stuck in I/O?)"
        return "collective timeout: waited \(Int(seconds.rounded())) s in step \(step); \(who); the job stops with status \(Self.exitCode), "
            + "resume from the last checkpoint"
    }
}

final class Watchdog {
    let timeout: Double
    let rank: Int
    let size: Int
    let hosts: [String]
    /// The communicator of the announcements (a duplicate of the world: no message of it can
    /// match another).
    let comm: MPI_Comm
    /// Collectives entered by this rank; the caller's step label.
    private var sequence: Int64 = 0
    var step = 0
    /// When this rank arrived at collective `sequence`.
    private var since = 0.0
    /// When this rank last ran its watchdog (arrived or polled): a gap of over a second is this
    /// rank's own stall.
    private var lastRun = 0.0
    /// Whether this rank was itself stopped since it arrived at collective `sequence`: then it is
    /// the stalled one, and it leaves the report to the others.
    private var stoppedHere = false
    /// Whether this rank has told the others it is waiting in collective `sequence`.
    private var saidWaiting: Int64 = -1
    /// Whether a wait is polling now (an announcement "waiting" is then answered at once).
    private var polling = false
    /// Per rank: the last collective it arrived at (with its step), completed, and said it waits in
    /// (−1: none yet).
    private var arrived: [Int64]
    private var arrivedStep: [Int64]
    private var completed: [Int64]
    private var waiting: [Int64]
    /// Per rank: the last collective in which its own timeout passed (−1: none).
    private var timedOut: [Int64]
    /// One receive posted per other rank; a few sends in flight per other rank, with their buffers.
    private var receives: [MPI_Request?]
    private var sends: [MPI_Request?]
    private let receiveBuffers: UnsafeMutablePointer<Int64>
    private let sendBuffers: UnsafeMutablePointer<Int64>
    private static let tag: Int32 = 7301
    /// Int64s per message: collective number, step, kind.
    private static let fields = 3
    /// Sends in flight per peer (small messages complete at once; a stalled peer's may not).
    private static let slots = 4
    /// `waiting`: this rank's own timeout passed; `answering`: it waits too, told by a peer.
    private enum Kind: Int64 { case arrived = 0, completed = 1, waiting = 2, answering = 3 }

    /// `--inject-stall …:inside` (tests): stop this rank (SIGSTOP) right after it starts the next
    /// collective, before it completes.
    var stopInsideNext = false

    init(timeout: Double, rank: Int, size: Int, hosts: [String], comm: MPI_Comm) throws {
        self.timeout = timeout
        self.rank = rank
        self.size = size
        self.hosts = hosts
        self.comm = comm
        arrived = [Int64](repeating: -1, count: size)
        arrivedStep = [Int64](repeating: -1, count: size)
        completed = [Int64](repeating: -1, count: size)
        waiting = [Int64](repeating: -1, count: size)
        timedOut = [Int64](repeating: -1, count: size)
        receives = [MPI_Request?](repeating: rd_mpi_request_null(), count: size)
        sends = [MPI_Request?](repeating: rd_mpi_request_null(), count: size * Self.slots)
        receiveBuffers = .allocate(capacity: Self.fields * size)
        receiveBuffers.initialize(repeating: 0, count: Self.fields * size)
        sendBuffers = .allocate(capacity: Self.fields * size * Self.slots)
        sendBuffers.initialize(repeating: 0, count: Self.fields * size * Self.slots)
        for peer in 0..<size where peer != rank { try postReceive(from: peer) }
    }

    deinit {
        receiveBuffers.deallocate()
        sendBuffers.deallocate()
    }

    private func postReceive(from peer: Int) throws {
        try check(MPI_Irecv(receiveBuffers + Self.fields * peer, Int32(Self.fields), rd_mpi_int64(), Int32(peer), Self.tag, comm,
                            &receives[peer]), "MPI_Irecv(watchdog)")
    }

    /// Records every announcement that has arrived (and posts the next receive); answers a
    /// "waiting" with this rank's own while it waits too.
    private func drain() throws {
        for peer in 0..<size where peer != rank {
            while true {
                var done: Int32 = 0
                try check(MPI_Test(&receives[peer], &done, rd_mpi_status_ignore()), "MPI_Test(watchdog)")
                guard done != 0 else { break }
                let b = receiveBuffers + Self.fields * peer
                let (n, label, kind) = (b[0], b[1], Kind(rawValue: b[2]))   // read before the buffer is reused
                switch kind {
                case .arrived?: arrived[peer] = max(arrived[peer], n); arrivedStep[peer] = label
                case .completed?: completed[peer] = max(completed[peer], n)
                case .waiting?: waiting[peer] = max(waiting[peer], n); timedOut[peer] = max(timedOut[peer], n)
                case .answering?: waiting[peer] = max(waiting[peer], n)
                case nil: break
                }
                try postReceive(from: peer)
            }
        }
    }

    /// Tells every other rank `kind` for collective `sequence`. A send to a peer whose earlier
    /// sends have not left (it has stopped draining them) is dropped rather than waited for.
    private func announce(_ kind: Kind) throws {
        for peer in 0..<size where peer != rank {
            var slot: Int?
            for s in 0..<Self.slots {
                let i = peer * Self.slots + s
                var done: Int32 = 1
                if sends[i] != rd_mpi_request_null() {
                    try check(MPI_Test(&sends[i], &done, rd_mpi_status_ignore()), "MPI_Test(watchdog send)")
                }
                if done != 0 { slot = i; break }
            }
            guard let i = slot else { continue }
            let b = sendBuffers + Self.fields * i
            b[0] = sequence
            b[1] = Int64(step)
            b[2] = kind.rawValue
            try check(MPI_Isend(b, Int32(Self.fields), rd_mpi_int64(), Int32(peer), Self.tag, comm, &sends[i]), "MPI_Isend(watchdog)")
        }
    }

    /// Tells the others this rank waits in collective `sequence`: its own timeout passed (`own`),
    /// or it answers a peer's. Once per collective, and once more when its own timeout passes after
    /// it answered.
    private func sayWaiting(own: Bool) throws {
        guard saidWaiting < sequence || (own && timedOut[rank] < sequence) else { return }
        saidWaiting = sequence
        waiting[rank] = sequence
        if own { timedOut[rank] = sequence }
        try announce(own ? .waiting : .answering)
    }

    /// This rank arrives at its next collective, and returns once every rank has (an `MPI_Ibarrier`
    /// on the announcements' communicator, polled with the back-off): the timeout counts from here.
    func arrive(clock: () -> Double) throws {
        sequence += 1
        arrived[rank] = sequence
        arrivedStep[rank] = Int64(step)
        since = clock()
        lastRun = since
        stoppedHere = false
        try announce(.arrived)
        var barrier: MPI_Request? = rd_mpi_request_null()
        try check(MPI_Ibarrier(comm, &barrier), "MPI_Ibarrier")
        try poll(&barrier, clock: clock, backOff: true)
    }

    /// This rank has completed its collective `sequence`.
    func complete() throws {
        completed[rank] = sequence
        try announce(.completed)
    }

    /// Once every rank has arrived, starts a collective with `start` (a non-blocking MPI call giving
    /// its request) and polls it to its end (`arrive`, `poll`, `complete`).
    func run(clock: () -> Double, start: () throws -> MPI_Request?) throws {
        try arrive(clock: clock)
        var request = try start()
        if stopInsideNext {
            stopInsideNext = false
            kill(getpid(), SIGSTOP)
        }
        try poll(&request, clock: clock)
        try complete()
    }

    /// Polls `request`, a collective of this rank's current `sequence`, until it completes, or ends
    /// the job (status 6) when the timeout passes first, the rank that reports printing one line
    /// naming the stalled ranks.
    /// With `backOff` (waiting for the others to arrive) it sleeps between polls once 10 ms have
    /// passed; without (the collective itself, every rank there), it only yields, as MPI's
    /// blocking calls do: a non-blocking collective moves only inside MPI calls, and a sleep
    /// between the steps of its protocol would slow it.
    func poll(_ request: inout MPI_Request?, clock: () -> Double, backOff: Bool = false) throws {
        polling = true
        defer { polling = false }
        // Once the timeout has passed: a short grace for the others' answers (and for a collective
        // that was only slow to complete).
        let grace = min(2.0, timeout)
        var graceEnds: Double?
        var pause: UInt32 = 50          // µs; doubles up to 500 µs once the first 10 ms have passed
        while true {
            var done: Int32 = 0
            try check(MPI_Test(&request, &done, rd_mpi_status_ignore()), "MPI_Test(collective)")
            if done != 0 { return try drain() }     // the announcements never pile up unread
            let now = clock()
            // Not run for a second between two polls: this rank was the one stopped or frozen. Its
            // own stall does not count against the others (if it was long, they end the job).
            if now - lastRun > 1 {
                since += now - lastRun
                stoppedHere = true
            }
            lastRun = now
            let waited = now - since
            if waited < 0.01 {
                sched_yield()           // the usual wait (ranks a few ms apart): give way, answer at once
                continue
            }
            try drain()
            // A peer that waits in this collective, or still in the one before, has timed out: this
            // rank answers (it is alive) and starts its own grace, so that it reports in time if it
            // is the one to.
            let peerWaits = (0..<size).contains { $0 != rank && stillWaiting($0) }
            if waited >= timeout, timedOut[rank] < sequence { try sayWaiting(own: true) }
            if graceEnds == nil, waited >= timeout || peerWaits {
                if waited < timeout { try sayWaiting(own: false) }
                graceEnds = waited + grace
            }
            if let end = graceEnds, waited >= end { break }
            if backOff {
                usleep(pause)           // a long wait: sleep, so a slow rank sharing this core runs
                pause = min(pause * 2, 500)
            } else {
                sched_yield()
            }
        }
        try drain()
        // Alive: this rank; a rank waiting in this collective, or still in the one before (which
        // this rank has completed); a rank that completed this one or arrived at a later one.
        let alive = (0..<size).map { r in r == rank || stillWaiting(r) || completed[r] >= sequence || arrived[r] > sequence }
        func missing(_ r: Int) -> CollectiveTimeout.Missing {
            CollectiveTimeout.Missing(rank: r, host: hosts[r], lastStep: arrivedStep[r] >= 0 ? Int(arrivedStep[r]) : nil)
        }
        let stalled = (0..<size).filter { !alive[$0] }
        let timeoutError = CollectiveTimeout(seconds: timeout, step: step,
                                             missing: stalled.filter { arrived[$0] < sequence }.map(missing),
                                             stalledInside: stalled.filter { arrived[$0] >= sequence }.map(missing))
        // The lowest-numbered rank whose own timeout passed (this one, if it did; every peer that
        // said so) reports; the others give it 5 s to end the job, then report and end it
        // themselves. Printed and ended here, with the collective still pending: its buffers stay valid.
        let ownTimeout = (0..<size).map { r in
            timedOut[r] >= sequence || (timedOut[r] == sequence - 1 && completed[r] < sequence - 1)
        }
        let reporter = (0..<size).first { alive[$0] && ownTimeout[$0] } ?? rank
        if reporter != rank || stoppedHere || !ownTimeout[rank] {
            // 5 s by the clock: the signals that end the job (SIGTERM first) cut a plain sleep short.
            let end = clock() + 5
            while clock() < end { usleep(100_000) }
        }
        let line = "rnn-dist: error: rank \(rank): \(timeoutError)\n"
        line.withCString { _ = write(2, $0, strlen($0)) }
        MPI_Abort(rd_mpi_comm_world(), CollectiveTimeout.exitCode)
        exit(CollectiveTimeout.exitCode)
    }

    /// Whether `peer` has said it waits in this rank's collective, or still in the one before.
    private func stillWaiting(_ peer: Int) -> Bool {
        waiting[peer] >= sequence || (waiting[peer] == sequence - 1 && completed[peer] < sequence - 1)
    }

    /// Cancels the posted receives and lets the sends go (before `MPI_Finalize`).
    func stop() {
        for peer in 0..<size where peer != rank {
            if receives[peer] != rd_mpi_request_null() {
                _ = MPI_Cancel(&receives[peer])
                _ = MPI_Request_free(&receives[peer])
            }
        }
        for i in sends.indices where sends[i] != rd_mpi_request_null() { _ = MPI_Request_free(&sends[i]) }
    }
}

/// The watchdog of a job's start (`train --collective-timeout S`): `MPI_Init` and the watchdog's own
/// set-up are collectives no `Watchdog` can guard yet, and a rank stopped while the job starts
/// leaves the others waiting inside them. A thread of this process (no MPI call in it) waits S
/// seconds — rank 0; the other ranks 5 s more, so that rank 0 alone reports unless it is the stalled
/// one — and, unless `cancel` came first, prints one line and ends this rank with status 6, on which
/// the launcher ends the job. A gap of over a second in its own clock is this process's own stall
/// and moves the deadline on.
public final class StartUpGuard: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false

    /// Starts the guard when this process was started by an MPI launcher (else it does nothing).
    public init(seconds: Double) {
        guard Communicator.launchedByMPI, seconds > 0 else { return }
        let rank = Communicator.launcherRank
        let message = "rnn-dist: error: rank \(rank.map(String.init) ?? "?"): collective timeout: the job has not started after "
            + "\(Int(seconds.rounded())) s (MPI_Init and the watchdog's set-up): a rank stalled while starting (stopped, frozen or "
            + "stuck in I/O?); the job stops with status \(CollectiveTimeout.exitCode)\n"
        let wait = seconds + (rank == 0 ? 0 : 5)
        let thread = Thread { [self] in
            var deadline = Self.now() + wait
            var last = Self.now()
            while true {
                Thread.sleep(forTimeInterval: 0.2)
                let now = Self.now()
                if now - last > 1 { deadline += now - last }
                last = now
                if lock.withLock({ cancelled }) { return }
                if now >= deadline { break }
            }
            message.withCString { _ = write(2, $0, strlen($0)) }
            _exit(CollectiveTimeout.exitCode)
        }
        thread.start()
    }

    /// The job has started: the guard ends without a word.
    public func cancel() { lock.withLock { cancelled = true } }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
