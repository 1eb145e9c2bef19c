/// Failures of training, checkpoints and weights files, each one line naming what is wrong.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case badFile(path: String, object: String, detail: String)
    case mismatch(path: String, field: String, checkpoint: String, requested: String)
    /// The loss, the reduced gradient or the updated weights hold NaN or ±∞.
    case nonFinite(what: String, epoch: Int, batch: Int)
    case replicasDiverged(epoch: Int)
    case invalid(String)
    case interrupted(signal: String, checkpoint: String)
    /// The run folder is locked by another run (exit status 5: worth retrying later).
    case busy(String)

    public var description: String {
        switch self {
        case .badFile(let p, let o, let d):
            return "\(p)" + (o.isEmpty ? "" : ": \(o)") + ": \(d)"
        case .mismatch(let p, let f, let c, let r):
            return "\(p): checkpoint was written with \(f) = \(c), this run asks for \(r); " +
                "resume with the checkpoint's setting, or start a new run"
        case .nonFinite(let what, let e, let b):
            return "\(what) became non-finite at epoch \(e), batch \(b); training stopped, nothing written from that step on (the last checkpoint, if any, is kept)"
        case .replicasDiverged(let e):
            return "model replicas differ across ranks after epoch \(e) (checksum mismatch); aborting"
        case .invalid(let s), .busy(let s):
            return s
        case .interrupted(let s, let c):
            return "interrupted by \(s); checkpoint written to \(c) (resume with --resume \(c))"
        }
    }
}
