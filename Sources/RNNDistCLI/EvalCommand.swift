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
        abstract: "Loss, accuracy, per-class precision, recall, F1 and the confusion matrix of saved weights on a split.",
        discussion: """
        Runs alone or under mpirun: the ranks share the rows and their sums are reduced exactly, so any number of ranks prints the same numbers. --split val and train are the validation and training rows of the run that wrote the weights (its --limit and --validation-split), on that run's dataset only (a dataset with other training rows or another prepare --seed is refused for them).
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
        try refuseEmptyPaths([("--weights", weights), ("--data", data)])
        guard (1 ... TrainConfig.maxRows).contains(batchSize) else {
            throw ValidationError("--batch-size must be in 1 … \(TrainConfig.maxRows), not \(batchSize)")
        }
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
                // The run's own rows (`load` checked that the dataset is the run's).
                let s = config.schedule
                rows = split == .train ? 0 ..< s.trainCount : s.validationRows

            }
            ProductCounting.begin()
            let c = try Evaluator.counts(model: model, source: source, rows: rows, comm: comm, batchSize: batchSize)
            try ProductCounting.finish(isRoot: comm.isRoot)
            let seconds = comm.wallTime() - t0
            if comm.isRoot { report(c, config: config, classes: data.classNames, seconds: seconds, ranks: comm.size) }
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
        guard meta.classNames == data.classNames else {
            throw CLIError("\(self.data) has the classes \(data.classNames.joined(separator: ", ")) but \(weights) was trained on \(meta.classNames.joined(separator: ", "))")
        }
        if let difference = meta.vocabularyDifference(from: data.vocabulary) {
            throw CLIError("\(self.data) has another vocabulary than \(weights) was trained with (\(difference)): its token ids would mean other words")
        }
        // --split train and val cut the dataset's rows as the run cut its own, which are these rows
        // only when the dataset is the run's: same rows in the same order (prepare's seed).
        if split != .test && (cfg.dataRows != data.train.rowCount || cfg.dataSeed != data.seed) {
            throw CLIError("--split \(split.rawValue): \(self.data) has \(data.train.rowCount) training rows shuffled with seed \(data.seed), but \(weights) was trained on \(cfg.dataRows) shuffled with seed \(cfg.dataSeed): its \(split.rawValue) rows would be other rows (some trained on); use the run's dataset, or --split test")
        }
        if split != .test, let was = cfg.dataChecksum, let now = data.trainChecksum, was != now {
            throw CLIError("--split \(split.rawValue): \(self.data) holds other training rows than \(weights) was trained on (train_checksum \(now), the run's \(was)): its \(split.rawValue) rows would be other rows (some trained on); use the run's dataset, or --split test")
        }
        if split == .val && cfg.schedule.validationRows.isEmpty {
            throw CLIError("--split val: the run that wrote \(weights) had no validation rows (--validation-split \(cfg.validationSplit))")
        }
        let model = Model(config: cfg.model, seed: 0)
        model.weights = w
        return (model, data, cfg)
    }

    func report(_ c: ClassificationCounts, config: TrainConfig, classes: [String], seconds: Double, ranks: Int) {
        let per = (0 ..< c.classes).map(c.metrics(of:))
        let (macro, weighted) = c.averages()
        let positive = c.classes == 2 ? per[1] : nil
        if json {
            // JSONEncoder writes the shortest digits that read back as the same Double (the metrics
            // equal the history's bit for bit); JSONSerialization would round them.
            func avg(_ m: ClassificationCounts.ClassMetrics) -> JSONReport.Average {
                .init(precision: m.precision, recall: m.recall, f1: m.f1)
            }
            let report = JSONReport(
                weights: weights, data: data, split: split.rawValue, model: config.model.kindName,
                samples: c.count, loss: c.loss, accuracy: c.accuracy,
                precision: positive?.precision, recall: positive?.recall, f1: positive?.f1, seconds: seconds, ranks: ranks,
                confusion: c.classes == 2 ? .init(true_positive: c.count(actual: 1, predicted: 1),
                                                   false_positive: c.count(actual: 0, predicted: 1),
                                                   true_negative: c.count(actual: 0, predicted: 0),
                                                   false_negative: c.count(actual: 1, predicted: 0)) : nil,
                classes: classes,
                per_class: zip(classes, per).map { .init(name: $0, precision: $1.precision, recall: $1.recall, f1: $1.f1, support: $1.support) },
                macro_avg: avg(macro), weighted_avg: avg(weighted),
                confusion_matrix: (0 ..< c.classes).map { a in (0 ..< c.classes).map { c.count(actual: a, predicted: $0) } })
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .prettyPrinted]
            e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            print(String(decoding: (try? e.encode(report)) ?? Data(), as: UTF8.self))
            return
        }
        print("\(weights) on \(data) [\(split.rawValue)], \(c.count) rows, \(config.model.label), " +
              "\(ranks) rank\(ranks == 1 ? "" : "s"), \(String(format: "%.2f", seconds)) s")
        var line = String(format: "loss %.4f  accuracy %.4f  macro F1 %.4f", c.loss, c.accuracy, macro.f1)
        if let p = positive {
            line += String(format: "  (%@: precision %.4f  recall %.4f  F1 %.4f)", classes[1], p.precision, p.recall, p.f1)
        }
        print(line)
        let width = max(12, (classes.map(\.count).max() ?? 0) + 2)
        func pad(_ s: String) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }
        print(pad("class") + "precision     recall         F1    support")
        for (name, m) in zip(classes, per) {
            print(pad(name) + String(format: "%9.4f  %9.4f  %9.4f  %9d", m.precision, m.recall, m.f1, m.support))
        }
        for (name, m) in [("macro avg", macro), ("weighted avg", weighted)] {
            print(pad(name) + String(format: "%9.4f  %9.4f  %9.4f  %9d", m.precision, m.recall, m.f1, m.support))
        }
        let cell = max(9, (classes.map(\.count).max() ?? 0) + 1)
        func right(_ s: String) -> String { String(repeating: " ", count: max(0, cell - s.count)) + s }
        print("confusion (rows: actual, columns: predicted)")
        print(pad("") + classes.map(right).joined(separator: " "))
        for a in 0 ..< c.classes {
            print(pad(classes[a]) + (0 ..< c.classes).map { right(String(c.count(actual: a, predicted: $0))) }.joined(separator: " "))
        }
    }
}

/// `eval --json`'s document. `precision`, `recall`, `f1` and `confusion` are the second class's
/// (IMDB's pos), for two classes only.
private struct JSONReport: Encodable {
    struct Confusion: Encodable {
        var true_positive, false_positive, true_negative, false_negative: Int
    }
    struct Average: Encodable { var precision, recall, f1: Double }
    struct PerClass: Encodable {
        var name: String
        var precision, recall, f1: Double
        var support: Int
    }
    var weights, data, split, model: String
    var samples: Int
    var loss, accuracy: Double
    var precision, recall, f1: Double?
    var seconds: Double
    var ranks: Int
    var confusion: Confusion?
    var classes: [String]
    var per_class: [PerClass]
    var macro_avg, weighted_avg: Average
    var confusion_matrix: [[Int]]
}

/// Weights from a weights file or a checkpoint (see `Classifier.loadWeights`).
func loadWeights(_ path: String) throws -> ([Float], WeightsMetadata) {
    try Classifier.loadWeights(path)
}
