import MPI

/// An error that every rank meets alike — found on values every rank holds (the reduced loss and
/// gradient, the weights), or agreed on through a collective (`agree`): rank 0 reports it once and
/// every rank exits with `exitCode`, with no abort. Whoever raises an error decides: any other
/// error is local to its rank, and the job must end with `MPI_Abort` so no rank waits in a
/// collective for it.
public struct CollectiveError: Error, CustomStringConvertible {
    let underlying: Error
    public let exitCode: Int32

    /// Exit statuses a supervisor can act on (docs/TRAINING.md §Exit status): bad input found at
    /// set-up, and training that cannot go on (non-finite values, diverged replicas) are not worth a
    /// restart; an interruption left a checkpoint on purpose.
    static let badInput: Int32 = 2
    static let trainingFailed: Int32 = 3
    public static let interrupted: Int32 = 4
    /// The run folder is in use by another run: retry after a pause.
    static let runFolderBusy: Int32 = 5

    init(_ underlying: Error, exitCode: Int32) {
        self.underlying = underlying
        self.exitCode = exitCode
    }

    public var description: String { "\(underlying)" }

    /// The status a set-up failure ends the job with: a busy run folder's, else bad input's.
    static func exitCode(for error: Error) -> Int32 {
        if let e = error as? CollectiveError { return e.exitCode }
        if case TrainingError.busy? = error as? TrainingError { return runFolderBusy }
        return badInput
    }

    /// Collective: runs `body` on every rank; if it fails on any rank, every rank throws the same
    /// `CollectiveError` carrying the lowest failing rank's message. For work that can fail on bad
    /// input (opening files, checking flags) before the ranks depend on each other.
    public static func agree<T>(_ comm: Communicator, _ body: () throws -> T) throws -> T {
        var result: Result<T, Error>
        do { result = .success(try body()) } catch { result = .failure(error) }
        let failed: Error? = if case .failure(let e) = result { e } else { nil }
        let anyFailed = try comm.allReduce(Int32(failed == nil ? 0 : 1), op: .max)
        if anyFailed == 1 {
            let who = try comm.allReduce(Int32(failed == nil ? comm.size : comm.rank), op: .min)
            let msg = try comm.broadcast(comm.rank == Int(who) ? Array("\(failed!)".utf8) : [], root: Int(who))
            var code = [failed.map(exitCode) ?? badInput]
            try comm.broadcast(&code, root: Int(who))
            throw CollectiveError(TrainingError.invalid(String(decoding: msg, as: UTF8.self)), exitCode: code[0])
        }
        return try result.get()
    }
}
