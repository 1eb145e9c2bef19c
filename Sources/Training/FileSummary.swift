import Foundation
import HDF5

/// What `inspect` says about a weights file, a checkpoint or a history file, after reading it in
/// full with the same code that `eval`, `predict`, `serve`, `--resume` and `plot` use (so "valid"
/// means usable).
public struct RunFileSummary {
    public let kind: String
    public let lines: [String]
    public let json: [String: Any]

    /// The kind named by the file's format attributes, or nil when it is none of these three.
    /// A format mark that is there but cannot be read (a variable-length string, another type) is
    /// an error, as for the commands that read the file, not a file without a mark.
    public static func kind(of f: H5File) throws -> String? {
        if try f.attributeExists("format"), try f.stringAttribute("format") == HistoryFile.format { return "history" }
        guard f.exists("rnn_dist") else { return nil }
        let g = try f.group("rnn_dist")
        guard try g.attributeExists("format") else { return nil }
        let s = try g.stringAttribute("format")
        switch s {
        case WeightsFile.format: return "weights"
        case Checkpoint.format: return "checkpoint"
        default: return nil
        }
    }

    /// A metric for JSON: null where it is not a number (val_loss without validation rows is NaN).
    static func number(_ v: Double) -> Any { v.isFinite ? v : NSNull() }

    public init(path: String, kind: String) throws {
        self.kind = kind
        func describe(_ c: TrainConfig) -> String {
            "\(c.model.summary), maxlen \(c.maxlen), \(c.model.parameterCount) parameters"
        }
        switch kind {
        case "weights":
            let (w, m) = try WeightsFile.read(from: path)
            _ = try Classifier(weights: w, metadata: m, source: path)    // what predict, eval and serve check too
            lines = ["weights: \(describe(m.config))", "  vocabulary: \(m.vocabulary.count) words (\(m.vocabulary.prefix(8).joined(separator: ", ")), …)",
                     "  classes (\(m.classNames.count)): \(m.classNames.joined(separator: ", "))",
                     "  trained with \(m.config.optimizer) lr \(m.config.learningRate), batch \(m.config.batchSize), seed \(m.config.seed)",
                     String(format: "  weights: %d values, max |w| %.4g", w.count, w.map { abs($0) }.max() ?? 0)]
                + m.config.model.kerasSummary(maxlen: m.config.maxlen).map { "  " + $0 }
            json = ["kind": kind, "config": (try? JSONSerialization.jsonObject(with: Data(m.config.json().utf8))) ?? [:],
                    "vocabulary_words": m.vocabulary.count, "parameters": w.count, "class_names": m.classNames]
        case "checkpoint":
            let c = try Checkpoint.read(from: path)
            _ = try Classifier(path: path)    // its weights as predict, eval and serve read them
            let s = c.state
            lines = ["checkpoint: \(describe(c.metadata.config))",
                     "  classes (\(c.metadata.classNames.count)): \(c.metadata.classNames.joined(separator: ", "))",
                     "  \(c.isFinished ? "" : "at ")\(c.progress); \(c.iterations) optimizer steps (\(c.optimizerName), slots \(c.slots.map(\.name).joined(separator: ", ")))",
                     "  written by \(s.worldSize) rank\(s.worldSize == 1 ? "" : "s"); \(c.history.records.count) epoch\(c.history.records.count == 1 ? "" : "s") of history; "
                        // What was monitored: without validation rows, the training loss (it read "best val_loss").
                        + "best \(c.metadata.config.validationSplit > 0 ? "val_loss" : "training loss (no validation rows)") \(s.bestValLoss)"]
                + (s.interruptedBy.map { ["  written when \($0) stopped the run (a clean interruption: resume it)"] } ?? [])
            json = ["kind": kind, "epoch": s.epoch, "next_batch": s.nextBatch, "epochs": c.metadata.config.epochs,
                    "finished": c.isFinished, "iterations": c.iterations,
                    "optimizer": c.optimizerName, "world_size": s.worldSize, "history_epochs": c.history.records.count,
                    "interrupted_by": s.interruptedBy ?? NSNull(), "class_names": c.metadata.classNames]
        default:
            let (h, cfg, ws) = try HistoryFile.read(from: path)
            var l = ["history: \(describe(cfg)), \(ws) rank\(ws == 1 ? "" : "s"), \(h.records.count) epochs"]
            for r in h.records {
                l.append(String(format: "  epoch %2d  %6.1fs  %6.0f samples/s  loss %.4f  acc %.4f  val_loss %.4f  val_acc %.4f",
                                r.epoch, r.seconds, r.samplesPerSecond, r.loss, r.acc, r.valLoss, r.valAcc))
            }
            lines = l
            json = ["kind": kind, "world_size": ws, "epochs": h.records.count,
                    "loss": h.records.map(\.loss).map(Self.number), "acc": h.records.map(\.acc).map(Self.number),
                    "val_acc": h.records.map(\.valAcc).map(Self.number), "val_loss": h.records.map(\.valLoss).map(Self.number)]
        }
    }
}
