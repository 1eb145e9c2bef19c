// stdio's `stdout` is a C global that Swift 6 counts as shared mutable state; this file alone reads it.
@preconcurrency import Glibc

extension RNNDist {
    /// Output that could not be written (a full disk, /dev/full) ends the command with one line and
    /// exit 1: `predict --json > full/x.jsonl` kept 33 of 600 lines, the last cut short, and exited 0.
    static func checkStandardOutput() {
        errno = 0
        let flushed = fflush(stdout) == 0
        let why = errno != 0 ? String(cString: strerror(errno)) : "an earlier write failed"
        guard !flushed || ferror(stdout) != 0 else { return }
        printError("standard output: cannot write (\(why)): the output is incomplete")
        Glibc.exit(1)
    }
}
