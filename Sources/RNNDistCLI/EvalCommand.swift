import ArgumentParser
import Foundation
import MPI
import RNN
import Training

enum EvalSplit: String, ExpressibleByArgument, CaseIterable {
    case test, train, val
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Loss, accuracy, precision, recall, F1 and the confusion matrix of saved weights on a split.",
        discussion: """
        Runs alone or under mpirun: the ranks share the rows and their sums are reduced exactly, so any number of ranks prints the same numbers. --split val and train are the validation and training rows of the run that wrote the weights (its --limit and --validation-split).
        """)

    @Option(help: "Weights file written by `train` (model.weights.h5, best.weights.h5) or a checkpoint.")
    var weights: String
    @Option(help: "Dataset written by `prepare`.")
    var data = "data/imdb.h5"
    @Option(help: "test, train or val.")
    var split: EvalSplit = .test
    @Option(help: "Refuse weights of another cell kind (simple-rnn, lstm, gru); default: whatever the file holds.")
    var model: ModelConfig.Kind?
    @Option(parsing: .unconditional, help: "Rows per forward pass.")
    var batchSize = 128
    @Flag(help: "Print machine-readable JSON.")
    var json = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1 (got \(batchSize))") }
    }

    func run() throws {
        let comm = try Communicator.world()
        try runDistributed(comm: comm) {
            let (model, data, config) = try CollectiveError.agree(comm) { try load() }
            try printHostLoadNote(comm)
            let t0 = comm.wallTime()
            let source: RowSource
            let rows: Range<Int>
            switch split {
            case .test:
                source = data.test; rows = 0 ..< data.test.rowCount
            case .train, .val:
                source = data.train
                // The rows of this dataset, cut as the run that wrote the weights cut its own.
                var run = config
                run.dataRows = data.train.rowCount
                let s = run.schedule
                rows = split == .train ? 0 ..< s.trainCount : s.validationRows
            }
            let c = try Evaluator.counts(model: model, source: source, rows: rows, comm: comm, batchSize: batchSize)
            let seconds = comm.wallTime() - t0
            if comm.isRoot { report(c, config: config, seconds: seconds, ranks: comm.size) }
        }
    }

    /// Reads the weights (and their config), opens the dataset, and checks that they fit each other.
    func load() throws -> (Model, TrainingDataset, TrainConfig) {
        let (w, meta) = try loadWeights(weights)
        let data = try TrainingDataset.open(self.data)
        let cfg = meta.config
        if let model, model.rawValue != cfg.model.kindName {
            throw CLIError("\(weights) holds a \(cfg.model.kindName) model, not \(model.rawValue) as --model says")
        }
        guard cfg.model.vocabularySize == data.numWords else {
            throw CLIError("\(self.data) has num_words \(data.numWords) but \(weights) was trained with num_words \(cfg.model.vocabularySize)")
        }
        guard cfg.maxlen == data.maxlen else {
            throw CLIError("\(self.data) has maxlen \(data.maxlen) but \(weights) was trained with maxlen \(cfg.maxlen)")
        }
        let model = Model(config: cfg.model, seed: 0)
        model.weights = w
        return (model, data, cfg)
    }

    func report(_ c: ClassificationCounts, config: TrainConfig, seconds: Double, ranks: Int) {
        if json {
            // JSONEncoder writes the shortest digits that read back as the same Double (the metrics
            // equal the history's bit for bit); JSONSerialization would round them.
            let report = JSONReport(
                weights: weights, data: data, split: split.rawValue, model: config.model.kindName,
                samples: c.count, loss: c.loss, accuracy: c.accuracy, precision: c.precision, recall: c.recall,
                f1: c.f1, seconds: seconds, ranks: ranks,
                confusion: .init(true_positive: c.truePositives, false_positive: c.falsePositives,
                                 true_negative: c.trueNegatives, false_negative: c.falseNegatives))
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .prettyPrinted]
            e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            print(String(decoding: (try? e.encode(report)) ?? Data(), as: UTF8.self))
            return
        }
        print("\(weights) on \(data) [\(split.rawValue)], \(c.count) reviews, \(config.model.label), " +
              "\(ranks) rank\(ranks == 1 ? "" : "s"), \(String(format: "%.2f", seconds)) s")
        print(String(format: "loss %.4f  accuracy %.4f  precision %.4f  recall %.4f  F1 %.4f",
                     c.loss, c.accuracy, c.precision, c.recall, c.f1))
        print("confusion     predicted neg  predicted pos")
        print(String(format: "actual neg    %13d  %13d", c.trueNegatives, c.falsePositives))
        print(String(format: "actual pos    %13d  %13d", c.falseNegatives, c.truePositives))
    }
}

/// `eval --json`'s document.
private struct JSONReport: Encodable {
    struct Confusion: Encodable {
        var true_positive, false_positive, true_negative, false_negative: Int
    }
    var weights, data, split, model: String
    var samples: Int
    var loss, accuracy, precision, recall, f1, seconds: Double
    var ranks: Int
    var confusion: Confusion
}

/// Weights from a weights file or a checkpoint (whose weights are in the same layout), with a clear
/// message when the file is another kind of rnn-dist file.
func loadWeights(_ path: String) throws -> ([Float], WeightsMetadata) {
    do {
        let r = try WeightsFile.read(from: path)
        return (r.weights, r.metadata)
    } catch TrainingError.badFile(_, let object, let detail) where object.hasPrefix("/rnn_dist") {
        if let c = try? Checkpoint.read(from: path) { return (c.weights, c.metadata) }
        if (try? HistoryFile.read(from: path)) != nil {
            throw CLIError("\(path) is a history file, not weights: pass model.weights.h5 or best.weights.h5")
        }
        throw TrainingError.badFile(path: path, object: object, detail: detail)
    }
}
