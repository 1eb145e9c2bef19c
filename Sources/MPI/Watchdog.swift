import CMPI
import Foundation

// The collective watchdog (`train --collective-timeout S`; docs/TRAINING.md §Stalled ranks).
//
// A dead rank ends an MPI job within seconds (mpirun sees it go); a stalled one — stopped, frozen,
// stuck in a read — leaves every other rank waiting in a collective forever. So, with the watchdog
// on, every collective first waits for all ranks to arrive in an `MPI_Ibarrier` (on the watchdog's
// own communicator), polled with
// `MPI_Test` — yielding the core for the first 10 ms, then sleeping with a back-off (a waiting rank
// hands its core to a slow one) — and each rank
// announces its arrival — (collective number, the caller's step) — to every other rank in a small
// message on a communicator of its own. When the barrier has not completed after the timeout,
// every waiting rank knows which ranks have not arrived and the last step each announced; the
// lowest-numbered waiting rank prints one line naming them and ends the job with `MPI_Abort`.
// Once the barrier completes, the collective itself runs as before (the tuned blocking one).

/// The ranks a collective waited for in vain.
public struct CollectiveTimeout: Error, CustomStringConvertible, Sendable {
    public struct Missing: Sendable {
        public let rank: Int
        public let host: String
        /// The step the rank announced at its last collective (its last completed step), or nil
        /// when it never announced one.
        public let lastStep: Int?
    }

    public let seconds: Double
    public let step: Int
    public let missing: [Missing]
    /// The exit status of a job ended by the watchdog (docs/TRAINING.md §Exit status).
    public static let exitCode: Int32 = 6

    public var description: String {
        let who = missing.map { m in
            "rank \(m.rank) on \(m.host) (last completed step \(m.lastStep.map(String.init) ?? "none"))"
        }.joined(separator: ", ")
        return "collective timeout: waited \(Int(seconds.rounded())) s in step \(step); \(missing.count == 1 ? "this rank has" : "these ranks have") "
            + "not arrived: \(who) (stalled: stopped, frozen or stuck in I/O?); the job stops with status \(Self.exitCode), "
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
    private var comm: MPI_Comm
    /// Collectives entered by this rank; the caller's step label.
    private var sequence: Int64 = 0
    var step = 0
    /// Per rank: the last (sequence, step) it announced (−1: none yet).
    private var announcedSequence: [Int64]
    private var announcedStep: [Int64]
    /// One receive posted per other rank, and one send in flight per other rank, with their buffers.
    private var receives: [MPI_Request?]
    private var sends: [MPI_Request?]
    private let receiveBuffers: UnsafeMutablePointer<Int64>
    private let sendBuffers: UnsafeMutablePointer<Int64>
    private static let tag: Int32 = 7301

    init(timeout: Double, rank: Int, size: Int, hosts: [String], comm: MPI_Comm) throws {
        self.timeout = timeout
        self.rank = rank
        self.size = size
        self.hosts = hosts
        self.comm = comm
        announcedSequence = [Int64](repeating: -1, count: size)
        announcedStep = [Int64](repeating: -1, count: size)
        receives = [MPI_Request?](repeating: rd_mpi_request_null(), count: size)
        sends = [MPI_Request?](repeating: rd_mpi_request_null(), count: size)
        receiveBuffers = .allocate(capacity: 2 * size)
        receiveBuffers.initialize(repeating: 0, count: 2 * size)
        sendBuffers = .allocate(capacity: 2 * size)
        sendBuffers.initialize(repeating: 0, count: 2 * size)
        for peer in 0..<size where peer != rank { try postReceive(from: peer) }
    }

    deinit {
        receiveBuffers.deallocate()
        sendBuffers.deallocate()
    }

    private func postReceive(from peer: Int) throws {
        try check(MPI_Irecv(receiveBuffers + 2 * peer, 2, rd_mpi_int64(), Int32(peer), Self.tag, comm, &receives[peer]),
                  "MPI_Irecv(watchdog)")
    }

    /// Records every announcement that has arrived (and posts the next receive).
    private func drain() throws {
        for peer in 0..<size where peer != rank {
            while true {
                var done: Int32 = 0
                try check(MPI_Test(&receives[peer], &done, rd_mpi_status_ignore()), "MPI_Test(watchdog)")
                guard done != 0 else { break }
                announcedSequence[peer] = receiveBuffers[2 * peer]
                announcedStep[peer] = receiveBuffers[2 * peer + 1]
                try postReceive(from: peer)
            }
        }
    }

    /// Announces this rank's arrival at its next collective to every other rank.
    private func announce() throws {
        sequence += 1
        announcedSequence[rank] = sequence
        announcedStep[rank] = Int64(step)
        for peer in 0..<size where peer != rank {
            // The previous announcement to this peer left long ago (small messages go eagerly);
            // its buffer is reused only once its send has completed.
            try check(MPI_Wait(&sends[peer], rd_mpi_status_ignore()), "MPI_Wait(watchdog send)")
            sendBuffers[2 * peer] = sequence
            sendBuffers[2 * peer + 1] = Int64(step)
            try check(MPI_Isend(sendBuffers + 2 * peer, 2, rd_mpi_int64(), Int32(peer), Self.tag, comm, &sends[peer]),
                      "MPI_Isend(watchdog)")
        }
    }

    /// Returns once every rank has arrived at this collective; throws `CollectiveTimeout` (on the
    /// rank that reports) or ends the job when the timeout passes first.
    func awaitArrival(world: MPI_Comm, clock: () -> Double) throws {
        try announce()
        // On the watchdog's own communicator: the world's non-blocking all-reduces (the exchange
        // behind backward) start when each rank gets to them, and a world barrier between them
        // would break the one order of collectives every rank must keep on a communicator.
        var barrier: MPI_Request? = rd_mpi_request_null()
        try check(MPI_Ibarrier(comm, &barrier), "MPI_Ibarrier")
        let start = clock()
        var pause: UInt32 = 50          // µs; doubles up to 500 µs once the first 10 ms have passed
        while true {
            var done: Int32 = 0
            try check(MPI_Test(&barrier, &done, rd_mpi_status_ignore()), "MPI_Test(barrier)")
            if done != 0 { return try drain() }
            let waited = clock() - start
            if waited >= timeout { break }
            if waited < 0.01 {
                sched_yield()           // the usual wait (ranks a few ms apart): give way, answer at once
            } else {
                usleep(pause)           // a long wait: sleep, so a slow rank sharing this core runs
                pause = min(pause * 2, 500)
            }
        }
        try drain()
        let missing = (0..<size).filter { announcedSequence[$0] < sequence }.map { r in
            CollectiveTimeout.Missing(rank: r, host: hosts[r], lastStep: announcedStep[r] >= 0 ? Int(announcedStep[r]) : nil)
        }
        let timeoutError = CollectiveTimeout(seconds: timeout, step: step, missing: missing)
        // The lowest-numbered rank that has arrived reports; the others give it time to end the job.
        let reporter = (0..<size).first { announcedSequence[$0] >= sequence } ?? rank
        if reporter == rank { throw timeoutError }
        sleep(5)
        MPI_Abort(world, CollectiveTimeout.exitCode)
        exit(CollectiveTimeout.exitCode)
    }

    /// Cancels the posted receives (before `MPI_Finalize`).
    func stop() {
        for peer in 0..<size where peer != rank {
            if receives[peer] != rd_mpi_request_null() {
                _ = MPI_Cancel(&receives[peer])
                _ = MPI_Request_free(&receives[peer])
            }
            _ = MPI_Wait(&sends[peer], rd_mpi_status_ignore())
        }
    }
}
