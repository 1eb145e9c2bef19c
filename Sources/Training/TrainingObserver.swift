import RNN

/// What the trainer reports as it goes, to rank 0's progress line and TensorBoard log.
public protocol TrainingObserver: AnyObject {
    /// After each step: `batch` of `batches` of the (0-based) epoch; `step` the optimizer step over
    /// the whole run (1-based); `stats` the global batch's, `running` the epoch's so far.
    func batchDone(epoch: Int, batch: Int, of batches: Int, step: Int, stats: BatchStats, running: BatchStats,
                   elapsed: Double)
    func epochDone(_ record: EpochRecord, epochs: Int)
    /// After rank 0 wrote a file (`what`: "checkpoint").
    func wrote(_ path: String, what: String) throws
}
