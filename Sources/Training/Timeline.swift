import Foundation
import MPI
import POSIX

/// `train --timeline FILE`: what every rank spent its time on, as one Chrome trace-event file
/// (chrome://tracing, Perfetto), a track per rank — like Horovod's timeline.
///
/// Each rank records complete spans ("ph": "X") of its own work: `step` around `read`,
/// `forward_backward`, `allreduce` (the wait and the transfer) and `optimizer`; `validation`; on rank
/// 0 `files` (weights and history) and `checkpoint`. At every checkpoint (and so at every epoch end
/// and at a stop) all ranks hand their new spans to rank 0, which appends them to FILE and fsyncs: an
/// interrupted run keeps its trace up to its last checkpoint. The file is Chrome's JSON Array Format,
/// which may end without its closing bracket while a run is writing it; a finished run closes it.
/// Timestamps are microseconds of the monotonic clock, shifted to the wall clock once per process.
public final class Timeline {
    struct Span: Codable {
        var name: String
        var start: Int64     // µs since the Unix epoch
        var duration: Int64  // µs
    }

    private let comm: Communicator
    private var pending: [Span] = []
    private var fd: Int32 = -1
    private var written = 0
    let path: String

    /// Collective. Rank 0 creates (truncates) `path`; a failure is reported on every rank alike.
    public init(path: String, comm: Communicator) throws {
        self.path = path
        self.comm = comm
        try CollectiveError.agree(comm) {
            guard comm.isRoot else { return }
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw TrainingError.invalid("\(path): cannot create the timeline (\(SystemError().description))") }
        }
        if comm.isRoot {
            // One named track per rank.
            let names = (0 ..< comm.size).map {
                #"{"name":"process_name","ph":"M","pid":\#($0),"tid":0,"args":{"name":"rank \#($0)"}}"#
            }
            try append(names)
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// The monotonic clock (immune to clock steps, so spans nest as they ran) shifted once by the
    /// wall clock, so that tracks of several hosts line up as well as their clocks agree.
    private static func micros(_ clock: clockid_t) -> Int64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1_000
    }
    private static let offset = micros(CLOCK_REALTIME) - micros(CLOCK_MONOTONIC)
    static func now() -> Int64 { micros(CLOCK_MONOTONIC) + offset }

    /// Runs `body` as a span called `name`.
    @discardableResult
    public func span<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let start = Self.now()
        defer { pending.append(Span(name: name, start: start, duration: Self.now() - start)) }
        return try body()
    }

    /// Collective: rank 0 appends every rank's spans since the last flush to the file.
    public func flush() throws {
        let mine = try JSONEncoder().encode(pending)
        pending.removeAll(keepingCapacity: true)
        let all = try comm.gather(Array(mine))
        guard comm.isRoot else { return }
        var events: [String] = []
        for (rank, bytes) in all.enumerated() {
            for s in try JSONDecoder().decode([Span].self, from: Data(bytes)) {
                let name = s.name.replacingOccurrences(of: "\"", with: "'")
                events.append(#"{"name":"\#(name)","ph":"X","pid":\#(rank),"tid":0,"ts":\#(s.start),"dur":\#(s.duration)}"#)
            }
        }
        try append(events)
    }

    /// Collective: the last flush, and the closing bracket.
    func finish() throws {
        try flush()
        if comm.isRoot { try write("\n]\n") }
    }

    private func append(_ events: [String]) throws {
        guard !events.isEmpty else { return }
        try write((written == 0 ? "[\n" : ",\n") + events.joined(separator: ",\n"))
    }

    private func write(_ text: String) throws {
        let bytes = Array(text.utf8)
        let failed = TextFile.writeAll(fd, bytes)
        guard failed == 0 else {
            // Back to the last whole write (a full disk left an event cut in the middle of a string):
            // the trace then loads as it stood at the last flush.
            _ = ftruncate(fd, off_t(written))
            _ = lseek(fd, off_t(written), SEEK_SET)
            throw TrainingError.invalid("\(path): writing the timeline failed (\(SystemError(failed).description))")
        }
        written += bytes.count
        guard fsync(fd) == 0 else { throw TrainingError.invalid("\(path): fsync failed (\(SystemError().description))") }
    }
}
