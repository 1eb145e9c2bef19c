import Foundation
import MPI
import Training

/// Runs a command's body on every rank with the failure rules of docs/TRAINING.md §Failure behaviour.
/// Where an error arose decided its kind:
/// - a `CollectiveError` (every rank met it alike: bad input agreed on at set-up, a non-finite
///   step, an agreed stop) is printed once by rank 0 and every rank exits with its code;
/// - any other error is this rank's alone: it prints one line naming the rank and ends the whole
///   job with `MPI_Abort`, so no rank is left waiting in a collective.
func runDistributed(comm: Communicator, _ body: () throws -> Void) throws {
    do {
        try body()
        try comm.finalize()
    } catch let e as CollectiveError {
        // A stop on purpose (a signal, checkpoint written) is no error: said without "error:".
        if comm.isRoot { e.exitCode == CollectiveError.interrupted ? printNotice("\(e)") : printError("\(e)") }
        try? comm.finalize()
        exit(e.exitCode)
    } catch {
        printError(comm.size > 1 ? "rank \(comm.rank): \(error)" : "\(error)")
        comm.abort(code: 1)
    }
}

/// Collective: rank 0 prints one line on stderr when a host runs more ranks than it has cores.
func printHostLoadNote(_ comm: Communicator) throws {
    guard let note = try HostLoad.note(comm: comm), comm.isRoot else { return }
    FileHandle.standardError.write(Data((note + "\n").utf8))
}
