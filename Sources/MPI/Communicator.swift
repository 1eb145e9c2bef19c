import CMPI
#if canImport(Glibc)
import Glibc
#endif

/// An MPI failure: the call that failed, its return code and `MPI_Error_string`'s text.
public struct MPIError: Error, CustomStringConvertible, Sendable {
    let call: String
    let code: Int32
    let message: String
    public var description: String { "MPI error in \(call) (code \(code)): \(message)" }
}

/// Turns an MPI return code into a thrown `MPIError` carrying the call's name.
@inline(__always)
func check(_ code: Int32, _ call: @autoclosure () -> String) throws {
    guard code != rd_mpi_success() else { return }
    var buf = [CChar](repeating: 0, count: Int(rd_mpi_max_error_string()) + 1)
    var len: Int32 = 0
    _ = MPI_Error_string(code, &buf, &len)
    let message = String(decoding: buf.prefix(Int(max(0, len))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    throw MPIError(call: call(), code: code, message: message)
}

/// A value that can travel in an MPI reduction or broadcast.
public protocol MPIScalar: Numeric {
    static var mpiType: MPI_Datatype { get }
}
extension Float: MPIScalar { public static var mpiType: MPI_Datatype { rd_mpi_float() } }
extension Double: MPIScalar { public static var mpiType: MPI_Datatype { rd_mpi_double() } }
extension Int64: MPIScalar { public static var mpiType: MPI_Datatype { rd_mpi_int64() } }
extension Int32: MPIScalar { public static var mpiType: MPI_Datatype { rd_mpi_int32() } }
extension UInt8: MPIScalar { public static var mpiType: MPI_Datatype { rd_mpi_uint8() } }
extension UInt16: MPIScalar { public static var mpiType: MPI_Datatype { rd_mpi_uint16() } }

/// Reduction operators for `allReduce`.
public enum ReduceOp: Sendable {
    case sum, max, min
    var handle: MPI_Op {
        switch self {
        case .sum: return rd_mpi_sum()
        case .max: return rd_mpi_max()
        case .min: return rd_mpi_min()
        }
    }
}

/// The world communicator of this process.
///
/// One process is the ordinary case of many: a program started without a launcher (no `mpirun`,
/// `srun`, …) never calls `MPI_Init` and is rank 0 of 1, and every collective is then a no-op.
/// Under a launcher, `MPI_Init` runs once and errors are returned, not fatal (`MPI_ERRORS_RETURN`),
/// so each becomes a Swift `MPIError`.
public final class Communicator: @unchecked Sendable {
    /// This process's rank, 0 ..< size.
    public let rank: Int
    /// The number of processes in the job.
    public let size: Int
    /// True when MPI was initialised (launched under `mpirun`/`srun`), false when running alone.
    let usesMPI: Bool
    private var finalized = false
    /// Blocks shared by the ranks of this host (SharedMemory.swift), freed at `finalize`.
    var sharedBlocks: [HostSharedMemory] = []
    /// The collective watchdog, when `startWatchdog` turned it on.
    private var watchdog: Watchdog?
    private var watchdogComm = MPI_Comm(bitPattern: 0)

    /// Collective: from here on, every collective waits at most `timeout` seconds for every rank to
    /// arrive and complete it (Watchdog.swift); past that the job ends (status 6), one rank naming
    /// the ranks that stalled. `hostName`: this rank's, for the message.
    public func startWatchdog(timeout: Double, hostName: String) throws {
        guard usesMPI, size > 1, watchdog == nil else { return }
        var name = [UInt8](hostName.utf8.prefix(63))
        name += [UInt8](repeating: 0, count: 64 - name.count)
        let all = try allGather(name)
        let hosts = (0..<size).map { r in
            String(decoding: all[(r * 64)..<(r * 64 + 64)].prefix { $0 != 0 }, as: UTF8.self)
        }
        try check(MPI_Comm_dup(rd_mpi_comm_world(), &watchdogComm), "MPI_Comm_dup")
        guard let dup = watchdogComm else { throw MPIError(call: "MPI_Comm_dup", code: 0, message: "no communicator") }
        watchdog = try Watchdog(timeout: timeout, rank: rank, size: size, hosts: hosts, comm: dup)
    }

    /// The caller's progress (the optimizer steps completed), announced with each collective and
    /// named in a timeout's message.
    public var watchdogStep: Int {
        get { watchdog?.step ?? 0 }
        set { watchdog?.step = newValue }
    }

    /// Test hook (`train --inject-stall-inside`): with the watchdog on, this rank stops itself
    /// (SIGSTOP) right after it starts its next collective.
    public var stopInsideNextCollective: Bool {
        get { watchdog?.stopInsideNext ?? false }
        set { watchdog?.stopInsideNext = newValue }
    }

    /// With the watchdog on: returns once every rank has reached this point (a barrier on the
    /// watchdog's communicator, under the watchdog) — before the set-up collectives MPI has no
    /// non-blocking form of (SharedMemory.swift).
    func arrive() throws {
        guard let w = watchdog else { return }
        try w.arrive(clock: wallTime)
        try w.complete()
    }

    /// Runs a collective: with the watchdog on, started non-blocking by `start` and polled to its
    /// end under the watchdog (a rank that stalls before or inside it ends the job); else the
    /// blocking call.
    private func collective(_ start: () throws -> MPI_Request?, blocking: () throws -> Void) throws {
        if let w = watchdog { try w.run(clock: wallTime, start: start) } else { try blocking() }
    }

    /// The largest all-reduce that goes through `scratch` (bytes; `selftest collectives` lowers it).
    nonisolated(unsafe) public static var scratchLimit = 64 << 20
    /// Scratch memory for a not-in-place all-reduce under the watchdog (grown, never shrunk).
    private var scratch = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    private func scratch<T>(_: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let bytes = count * MemoryLayout<T>.stride
        if scratch.count < bytes {
            scratch.deallocate()
            scratch = .allocate(byteCount: bytes, alignment: 64)
        }
        return scratch.baseAddress!.bindMemory(to: T.self, capacity: count)
    }

    deinit { scratch.deallocate() }

    /// Environment variables set by the launchers we support (Open MPI's mpirun, PMIx/PMI as
    /// used by Slurm's srun). `RNN_DIST_FORCE_MPI=1` initialises MPI regardless.
    static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"]

    /// Where launchers put this process's rank before MPI_Init (Open MPI, PMIx, PMI, Slurm), first
    /// found first; CFaultGuard's fault_guard.c reads the same list in C.
    public static let launcherRankVariables = ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"]

    /// This process's rank as its launcher set it, before MPI_Init; nil outside a launcher.
    public static var launcherRank: Int? {
        launcherRankVariables.lazy.compactMap { (name: String) -> Int? in getenv(name).flatMap { Int(String(cString: $0)) } }.first
    }

    /// Whether this process was started by an MPI launcher.
    public static var launchedByMPI: Bool {
        if let force = getenv("RNN_DIST_FORCE_MPI"), String(cString: force) == "1" { return true }
        return launcherVariables.contains { getenv($0) != nil }
    }

    /// Initialises MPI when launched under a launcher; otherwise a 1-process world.
    /// Wraps `MPI_Init`, `MPI_Comm_set_errhandler`, `MPI_Comm_rank`, `MPI_Comm_size`.
    public static func world() throws -> Communicator {
        guard launchedByMPI else { return Communicator(rank: 0, size: 1, usesMPI: false) }
        var initialized: Int32 = 0
        try check(MPI_Initialized(&initialized), "MPI_Initialized")
        if initialized == 0 {
            try check(MPI_Init(nil, nil), "MPI_Init")
        }
        let comm = rd_mpi_comm_world()
        try check(MPI_Comm_set_errhandler(comm, rd_mpi_errors_return()), "MPI_Comm_set_errhandler")
        var r: Int32 = 0, s: Int32 = 0
        try check(MPI_Comm_rank(comm, &r), "MPI_Comm_rank")
        try check(MPI_Comm_size(comm, &s), "MPI_Comm_size")
        return Communicator(rank: Int(r), size: Int(s), usesMPI: true)
    }

    /// A 1-process world that never touches MPI (for tests and the model math).
    public static func single() -> Communicator { Communicator(rank: 0, size: 1, usesMPI: false) }

    private init(rank: Int, size: Int, usesMPI: Bool) {
        self.rank = rank
        self.size = size
        self.usesMPI = usesMPI
    }

    /// Rank 0 is the one that prints and writes files.
    public var isRoot: Bool { rank == 0 }

    /// In-place all-reduce of `buffer` over all ranks (`MPI_Allreduce` with `MPI_IN_PLACE`).
    public func allReduce<T: MPIScalar>(_ buffer: inout [T], op: ReduceOp = .sum) throws {
        try buffer.withUnsafeMutableBufferPointer { try allReduce($0, op: op) }
    }

    /// In-place all-reduce of the memory `p` points to (a prefix of a buffer kept between calls).
    public func allReduce<T: MPIScalar>(_ p: UnsafeMutableBufferPointer<T>, op: ReduceOp = .sum) throws {
        guard usesMPI, size > 1, p.count > 0 else { return }
        guard watchdog != nil else {
            try check(MPI_Allreduce(rd_mpi_in_place(), p.baseAddress, Int32(p.count), T.mpiType, op.handle,
                                    rd_mpi_comm_world()), "MPI_Allreduce(\(p.count) values)")
            return
        }
        // Not in place: Open MPI's non-blocking all-reduce then chooses a bandwidth-optimal
        // algorithm for large messages from 4 ranks up (in place, always a binomial tree) — up to
        // 64 MB; a larger buffer (a dense exchange of a large vocabulary) is summed in place rather
        // than held twice.
        let inPlace = p.count * MemoryLayout<T>.stride > Self.scratchLimit
        let sums = inPlace ? p.baseAddress! : scratch(T.self, count: p.count)
        try collective({
            var request: MPI_Request? = rd_mpi_request_null()
            try check(MPI_Iallreduce(inPlace ? UnsafeRawPointer(rd_mpi_in_place()) : UnsafeRawPointer(p.baseAddress), sums, Int32(p.count), T.mpiType,
                                     op.handle, rd_mpi_comm_world(), &request), "MPI_Iallreduce(\(p.count) values)")
            return request
        }, blocking: {})
        if !inPlace { p.baseAddress!.update(from: sums, count: p.count) }
    }

    /// All-reduce of one value.
    public func allReduce<T: MPIScalar>(_ value: T, op: ReduceOp = .sum) throws -> T {
        var b = [value]
        try allReduce(&b, op: op)
        return b[0]
    }

    /// Broadcasts `buffer` from `root` to every rank (`MPI_Bcast`). Every rank must pass a buffer
    /// of the same count.
    public func broadcast<T: MPIScalar>(_ buffer: inout [T], root: Int = 0) throws {
        guard usesMPI, size > 1, !buffer.isEmpty else { return }
        try buffer.withUnsafeMutableBufferPointer { p in
            let what = "(\(p.count) values from rank \(root))"
            try collective({
                var request: MPI_Request? = rd_mpi_request_null()
                try check(MPI_Ibcast(p.baseAddress, Int32(p.count), T.mpiType, Int32(root), rd_mpi_comm_world(), &request), "MPI_Ibcast" + what)
                return request
            }, blocking: {
                try check(MPI_Bcast(p.baseAddress, Int32(p.count), T.mpiType, Int32(root), rd_mpi_comm_world()), "MPI_Bcast" + what)
            })
        }
    }

    /// Broadcasts a byte string (e.g. an error message or a JSON config) from `root`.
    public func broadcast(_ bytes: [UInt8], root: Int = 0) throws -> [UInt8] {
        guard usesMPI, size > 1 else { return bytes }
        var count: [Int64] = [Int64(bytes.count)]
        try broadcast(&count, root: root)
        var buf = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count[0]))
        try broadcast(&buf, root: root)
        return buf
    }

    /// Every rank's `values` (the same count on each), concatenated in rank order, on every rank
    /// (`MPI_Allgather`).
    public func allGather<T: MPIScalar>(_ values: [T]) throws -> [T] {
        guard usesMPI, size > 1 else { return values }
        var out = [T](repeating: 0, count: values.count * size)
        try values.withUnsafeBufferPointer { send in
            try out.withUnsafeMutableBufferPointer { recv in
                let (n, what) = (Int32(values.count), "(\(values.count) values)")
                try collective({
                    var request: MPI_Request? = rd_mpi_request_null()
                    try check(MPI_Iallgather(send.baseAddress, n, T.mpiType, recv.baseAddress, n, T.mpiType, rd_mpi_comm_world(), &request),
                              "MPI_Iallgather" + what)
                    return request
                }, blocking: {
                    try check(MPI_Allgather(send.baseAddress, n, T.mpiType, recv.baseAddress, n, T.mpiType, rd_mpi_comm_world()),
                              "MPI_Allgather" + what)
                })
            }
        }
        return out
    }

    /// Gathers every rank's bytes on `root`, in rank order (`MPI_Gather` of the sizes, then
    /// `MPI_Gatherv`); the other ranks get an empty list. Every rank must call it.
    public func gather(_ bytes: [UInt8], root: Int = 0) throws -> [[UInt8]] {
        guard usesMPI, size > 1 else { return [bytes] }
        var mine = Int32(bytes.count)
        var counts = [Int32](repeating: 0, count: rank == root ? size : 1)
        try withUnsafeMutablePointer(to: &mine) { m in
            try counts.withUnsafeMutableBufferPointer { c in
                try collective({
                    var request: MPI_Request? = rd_mpi_request_null()
                    try check(MPI_Igather(m, 1, rd_mpi_int32(), c.baseAddress, 1, rd_mpi_int32(), Int32(root), rd_mpi_comm_world(), &request),
                              "MPI_Igather(sizes)")
                    return request
                }, blocking: {
                    try check(MPI_Gather(m, 1, rd_mpi_int32(), c.baseAddress, 1, rd_mpi_int32(), Int32(root), rd_mpi_comm_world()),
                              "MPI_Gather(sizes)")
                })
            }
        }
        var offsets = [Int32](repeating: 0, count: counts.count)
        for i in counts.indices.dropFirst() { offsets[i] = offsets[i - 1] + counts[i - 1] }
        let total = rank == root ? Int(offsets.last! + counts.last!) : 0
        var all = [UInt8](repeating: 0, count: max(1, total))
        try bytes.withUnsafeBufferPointer { send in
            try all.withUnsafeMutableBufferPointer { a in
                try counts.withUnsafeBufferPointer { c in
                    try offsets.withUnsafeBufferPointer { o in
                        let what = "(\(bytes.count) bytes)"
                        try collective({
                            var request: MPI_Request? = rd_mpi_request_null()
                            try check(MPI_Igatherv(send.baseAddress, mine, rd_mpi_uint8(), a.baseAddress, c.baseAddress, o.baseAddress,
                                                   rd_mpi_uint8(), Int32(root), rd_mpi_comm_world(), &request), "MPI_Igatherv" + what)
                            return request
                        }, blocking: {
                            try check(MPI_Gatherv(send.baseAddress, mine, rd_mpi_uint8(), a.baseAddress, c.baseAddress, o.baseAddress,
                                                  rd_mpi_uint8(), Int32(root), rd_mpi_comm_world()), "MPI_Gatherv" + what)
                        })
                    }
                }
            }
        }
        guard rank == root else { return [] }
        return counts.indices.map { Array(all[Int(offsets[$0]) ..< Int(offsets[$0] + counts[$0])]) }
    }

    // MARK: Non-blocking all-reduce (the exchange behind backward)

    /// Starts an in-place all-reduce of the memory `p` points to, which must stay untouched until
    /// `wait` (`MPI_Iallreduce`). Every rank must start the same all-reduces in the same order. No
    /// watchdog here: the caller calls `arriveBeforeWaiting` before `wait`, and `doneWaiting` after.
    public func startAllReduce<T: MPIScalar>(_ p: UnsafeMutableBufferPointer<T>, op: ReduceOp = .sum) throws -> PendingCollective {
        guard usesMPI, size > 1, p.count > 0 else { return .none }
        var request: MPI_Request? = rd_mpi_request_null()
        try check(MPI_Iallreduce(rd_mpi_in_place(), p.baseAddress, Int32(p.count), T.mpiType, op.handle,
                                 rd_mpi_comm_world(), &request), "MPI_Iallreduce(\(p.count) values)")
        return PendingCollective(request: request)
    }

    /// Starts an all-reduce of `send` into `receive` (`MPI_Iallreduce`, not in place; the same
    /// count). Neither may be touched until `wait`. Unlike the in-place form, it lets Open MPI's
    /// non-blocking collectives choose a bandwidth-optimal algorithm for large messages at 4 ranks
    /// or more (reduce-scatter then all-gather); in place they always use a binomial tree, whose
    /// root sends and receives the whole message 2·log₂(p) times one after the other.
    public func startAllReduce<T: MPIScalar>(_ send: UnsafeBufferPointer<T>, into receive: UnsafeMutableBufferPointer<T>,
                                             op: ReduceOp = .sum) throws -> PendingCollective {
        precondition(send.count == receive.count, "startAllReduce: \(send.count) values into \(receive.count)")
        guard usesMPI, size > 1 else {
            if send.count > 0 { receive.baseAddress!.update(from: send.baseAddress!, count: send.count) }
            return .none
        }
        guard send.count > 0 else { return .none }
        var request: MPI_Request? = rd_mpi_request_null()
        try check(MPI_Iallreduce(send.baseAddress, receive.baseAddress, Int32(send.count), T.mpiType, op.handle,
                                 rd_mpi_comm_world(), &request), "MPI_Iallreduce(\(send.count) values)")
        return PendingCollective(request: request)
    }

    /// Lets started collectives progress (`MPI_Test`): Open MPI moves a non-blocking collective
    /// only inside MPI calls. Returns whether `pending` has completed; never blocks.
    public func test(_ pending: inout PendingCollective) throws -> Bool {
        guard let started = pending.request else { return true }
        var request: MPI_Request? = started
        var done: Int32 = 0
        try check(MPI_Test(&request, &done, rd_mpi_status_ignore()), "MPI_Test")
        pending.request = done != 0 ? nil : request
        return done != 0
    }

    /// With the watchdog on: this rank arrives at the waits that follow (`wait`), which the
    /// watchdog then guards as one collective, timed from here; `doneWaiting` ends it.
    public func arriveBeforeWaiting() throws {
        guard usesMPI, size > 1 else { return }
        try watchdog?.arrive(clock: wallTime)
    }

    /// After the waits `arriveBeforeWaiting` began: tells the watchdog they have completed.
    public func doneWaiting() throws {
        guard usesMPI, size > 1 else { return }
        try watchdog?.complete()
    }

    /// Returns once `pending` has completed: `MPI_Wait`, or polled under the watchdog when it is on.
    public func wait(_ pending: inout PendingCollective) throws {
        guard let started = pending.request else { return }
        var request: MPI_Request? = started
        if let w = watchdog {
            try w.poll(&request, clock: wallTime)
        } else {
            try check(MPI_Wait(&request, rd_mpi_status_ignore()), "MPI_Wait")
        }
        pending.request = nil
    }

    /// Waits until every rank has arrived (`MPI_Barrier`; `MPI_Ibarrier` under the watchdog).
    public func barrier() throws {
        guard usesMPI, size > 1 else { return }
        try collective({
            var request: MPI_Request? = rd_mpi_request_null()
            try check(MPI_Ibarrier(rd_mpi_comm_world(), &request), "MPI_Ibarrier")
            return request
        }, blocking: { try check(MPI_Barrier(rd_mpi_comm_world()), "MPI_Barrier") })
    }

    /// How many ranks of the job share this process's host (shared memory), 1 without MPI.
    /// Wraps `MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)`.
    public func ranksOnThisHost() throws -> Int {
        guard usesMPI, size > 1 else { return 1 }
        var local = MPI_Comm(bitPattern: 0)
        try check(MPI_Comm_split_type(rd_mpi_comm_world(), rd_mpi_comm_type_shared(), Int32(rank), rd_mpi_info_null(),
                                      &local), "MPI_Comm_split_type(SHARED)")
        defer { _ = MPI_Comm_free(&local) }
        var n: Int32 = 0
        try check(MPI_Comm_size(local, &n), "MPI_Comm_size(host)")
        return Int(n)
    }

    /// Ends the whole job with `code` (`MPI_Abort`): no rank is left waiting in a collective.
    /// Without MPI it simply exits.
    public func abort(code: Int32) -> Never {
        if usesMPI && size > 1 {
            _ = MPI_Abort(rd_mpi_comm_world(), code)
        }
        exit(code)
    }

    /// Seconds on a monotonic wall clock (`MPI_Wtime`, or `clock_gettime` without MPI).
    public func wallTime() -> Double {
        if usesMPI { return MPI_Wtime() }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Shuts MPI down (`MPI_Finalize`); call once at the end of a successful run.
    public func finalize() throws {
        guard usesMPI, !finalized else { return }
        finalized = true
        for block in sharedBlocks.reversed() { block.free() }
        sharedBlocks.removeAll()
        if let w = watchdog {
            w.stop()
            watchdog = nil
            _ = MPI_Comm_free(&watchdogComm)
        }
        try check(MPI_Finalize(), "MPI_Finalize")
    }
}

/// A started non-blocking collective (`Communicator.startAllReduce`); `request` is nil once done.
public struct PendingCollective {
    var request: MPI_Request?
    /// None started (done).
    public static var none: PendingCollective { PendingCollective(request: nil) }
    public var isDone: Bool { request == nil }
}
