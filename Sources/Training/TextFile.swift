import Foundation
import POSIX

/// Small text files (history.csv, the SVG plot), and the ONNX export's bytes, written as the HDF5
/// files are: into a temporary file in the same folder, fsync'ed, renamed into place; the previous file stays intact on failure.
public enum TextFile {
    /// Writes all of `bytes` to `fd`, retrying short writes and EINTR; 0, or the failing call's errno.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32 {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return n < 0 ? errno : EIO }
            done += n
        }
        return 0
    }

    public static func writeAtomically(_ contents: String, to path: String) throws {
        try writeAtomically(bytes: Array(contents.utf8), to: path)
    }

    /// The same for any bytes (`export --onnx`'s model file).
    public static func writeAtomically(bytes: [UInt8], to requested: String) throws {
        let path: String
        do { path = try atomicWriteTarget(requested) } catch let e as NotAFilePath { throw TrainingError.invalid(e.description) }
        let (dir, base, tmp) = atomicTemporary(for: path)
        // Those of writers that were killed (their PID is gone) go first, as for the HDF5 files.
        removeStaleTemporaries(dir: dir, base: base)
        func fail(_ what: String) -> TrainingError {
            let reason = SystemError().description
            unlink(tmp)
            return TrainingError.invalid("\(path): cannot \(what) (\(reason))")
        }
        try SignalTemporaries.writing(tmp) {
            let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw fail("write") }
            let failed = writeAll(fd, bytes)
            guard failed == 0 else { close(fd); errno = failed; throw fail("write") }
            guard fsync(fd) == 0 else { close(fd); throw fail("flush") }
            close(fd)
            guard rename(tmp, path) == 0 else { throw fail("rename the temporary file into place") }
        }
    }
}

/// `history.csv` in Keras `CSVLogger`'s format: header `epoch,acc,learning_rate,loss,val_acc,val_loss`
/// (Keras sorts the keys; it logs `learning_rate` as the rate at the epoch's end) and our
/// extra columns after them, the epoch 0-based as Keras writes it, one row per epoch. Rewritten
/// whole from the history at each epoch end, so a resumed run continues the rows of the run it
/// resumed (and never repeats one, even when the earlier run died after writing it).
public enum HistoryCSV {
    static let header = "epoch,acc,learning_rate,loss,val_acc,val_loss,seconds,samples_per_second,mpi_share"

    static func text(_ history: History) -> String {
        var lines = [header]
        for r in history.records {
            // Swift prints the shortest digits that read back as the same Double, as Python's repr.
            lines.append([String(r.epoch - 1), "\(r.acc)", "\(r.learningRate)", "\(r.loss)", "\(r.valAcc)", "\(r.valLoss)", "\(r.seconds)",
                          "\(r.samplesPerSecond)", "\(r.mpiShare)"].joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func write(to path: String, history: History) throws {
        try TextFile.writeAtomically(text(history), to: path)
    }
}
