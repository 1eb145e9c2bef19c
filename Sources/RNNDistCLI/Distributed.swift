import Foundation
import MPI
import Training

/// Runs a command's body on every rank with the failure rules of SPEC §7:
/// - an error every rank meets alike (bad input found before training, a non-finite loss, an
///   interruption) is printed once by rank 0 and every rank exits with the same status;
/// - any other error on any rank ends the whole job at once with `MPI_Abort`, so no rank is left
///   waiting in a collective.
func runDistributed(comm: Communicator, _ body: () throws -> Void) throws {
    do {
        try body()
        try comm.finalize()
    } catch let e as AgreedFailure {
        if comm.isRoot { printError(e.message) }
        try? comm.finalize()
        exit(e.code)
    } catch let e as TrainingError {
        switch e {
        case .nonFinite, .replicasDiverged, .interrupted:
            if comm.isRoot { printError("\(e)") }
            try? comm.finalize()
            if case .interrupted = e { exit(4) }
            exit(1)
        default:
            abortJob(comm, e)
        }
    } catch {
        abortJob(comm, error)
    }
}

/// One rank's unexpected failure: print it (naming the rank when there are several) and end the job.
func abortJob(_ comm: Communicator, _ error: Error) -> Never {
    printError(comm.size > 1 ? "rank \(comm.rank): \(error)" : "\(error)")
    comm.abort(code: 1)
}

/// An error found by every rank's check, or by rank 0 and shared: reported once, exit `code`.
struct AgreedFailure: Error {
    let message: String
    let code: Int32
}

/// Collective check-point after set-up: if rank 0 (or any rank) failed, all ranks learn the first
/// failing rank's message and stop with it; call it with the error caught on this rank, or nil.
func agree(_ comm: Communicator, error: Error? = nil) throws {
    let failed = try comm.allReduce(Int32(error == nil ? 0 : 1), op: .max)
    guard failed == 1 else { return }
    // The lowest failing rank's message wins.
    let who = try comm.allReduce(Int32(error == nil ? Int32(comm.size) : Int32(comm.rank)), op: .min)
    let msg = try comm.broadcast(comm.rank == Int(who) ? Array("\(error!)".utf8) : [], root: Int(who))
    throw AgreedFailure(message: String(decoding: msg, as: UTF8.self), code: 1)
}

/// Collective: rank 0 prints one line on stderr when a host runs more ranks than it has cores.
func printHostLoadNote(_ comm: Communicator) throws {
    guard let note = try HostLoad.note(comm: comm), comm.isRoot else { return }
    FileHandle.standardError.write(Data((note + "\n").utf8))
}
