import BLAS
import Training
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS reads `OPENBLAS_CORETYPE` once, when it is loaded — before `main`. When it has picked a
/// kernel family without AVX2 on a CPU that has AVX2 and FMA (a CPU newer than the library, e.g. a
/// Sapphire Rapids Xeon under Debian 12's OpenBLAS 0.3.21, which it runs as "Prescott"), the process
/// sets `OPENBLAS_CORETYPE` to the family the CPU can run and executes itself again, once, with the
/// same arguments: MPI has not started yet, so under `mpirun` the rank simply continues as itself.
/// A `OPENBLAS_CORETYPE` set by the user is always respected (and ends any loop).
/// See docs/TRAINING.md §BLAS kernel.
public enum KernelChoice {
    public static func reexecWithAVX2KernelsIfNeeded() {
        // Test hook: execute again once whatever the kernel, keeping it (the signal tests; no CPU here
        // needs the re-execution).
        if getenv("RNN_DIST_TEST_REEXEC") != nil {
            unsetenv("RNN_DIST_TEST_REEXEC")
            FileHandle.standardError.write(Data("rnn-dist: test hook: executing again\n".utf8))
            return reexec(coreType: BLAS.coreName)
        }
        guard getenv("OPENBLAS_CORETYPE") == nil,
              let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return }
        let flags = Set(line.split(separator: ":").last.map { $0.split(separator: " ").map(String.init) } ?? [])
        guard let better = BLAS.betterCoreType(current: BLAS.coreName, cpuFlags: flags) else { return }
        reexec(coreType: better)
    }

    private static func reexec(coreType: String) {
        setenv("OPENBLAS_CORETYPE", coreType, 1)
        // train's stop signals wait, blocked, for the new image (the other commands keep theirs as they are).
        let train = RNNDist.catchesStopSignals(CommandLine.arguments)
        if train { Trainer.keepStopSignalsAcrossExec() }
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_CORETYPE")   // exec failed: carry on with the kernel OpenBLAS chose
        if train { Trainer.stopSignalsAfterAFailedExec() }
    }
}
