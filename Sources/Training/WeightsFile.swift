import Foundation
import HDF5
import RNN
import TextData

/// What a weights file carries besides the tensors, so that `eval` and `predict` need nothing else:
/// the training config, the tokenizer settings and the vocabulary.
public struct WeightsMetadata: Sendable, Equatable {
    public var config: TrainConfig
    /// Tokenizer settings as JSON (num_words, maxlen, index_from, start_char, oov_char, tokenizer version).
    var tokenizerJSON: String
    /// Entry k is the word with id k + 4.
    public var vocabulary: [String]
    /// The dataset's class names (`config.model.classCount` of them); labels are indices into them.
    public var classNames: [String]

    public init(config: TrainConfig, tokenizerJSON: String, vocabulary: [String], classNames: [String] = ["neg", "pos"]) {
        self.config = config
        self.tokenizerJSON = tokenizerJSON
        self.vocabulary = vocabulary
        self.classNames = classNames
    }
}

extension WeightsMetadata {
    /// The tokenizer settings stored in a weights file (`/rnn_dist@tokenizer`) as JSON: this build's
    /// tokenizer for `numWords` and `maxlen`, plus `extra` fields (the dataset's seed and source;
    /// they replace a field of the same name).
    public static func tokenizerJSON(numWords: Int, maxlen: Int, extra: [String: Any] = [:]) -> String {
        var d = tokenizerFields(numWords: numWords, maxlen: maxlen)
        d.merge(extra) { _, b in b }
        let data = (try? JSONSerialization.data(withJSONObject: d, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// The settings that say how a text becomes ids, as this build tokenizes for these sizes.
    static func tokenizerFields(numWords: Int, maxlen: Int) -> [String: Any] {
        ["num_words": numWords, "maxlen": maxlen, "index_from": Vocabulary.indexFrom, "start_char": Int(Vocabulary.startID),
         "oov_char": Int(Vocabulary.oovID), "tokenizer": Tokenizer.version]
    }

    /// Nil when `words` (a dataset's vocabulary, entry k the word of id k + 4) is the vocabulary
    /// these weights were trained with; else where they first differ, for a one-line refusal: with
    /// another vocabulary every token id names another word, and the model would answer garbage.
    public func vocabularyDifference(from words: [String]) -> String? {
        guard words != vocabulary else { return nil }
        guard let k = (0 ..< min(words.count, vocabulary.count)).first(where: { words[$0] != vocabulary[$0] }) else {
            return "\(words.count) words against the \(vocabulary.count) it was trained with"
        }
        return "token id \(k + Vocabulary.indexFrom + 1) is '\(words[k].prefix(40))' there, '\(vocabulary[k].prefix(40))' in training"
    }
}

/// The Keras 3 `.weights.h5` layout (docs/FILES.md §Weights): `/layers/embedding/vars/0`,
/// `/layers/lstm/cell/vars/0..2`, `/layers/dense/vars/0..1`, empty `vars` groups where Keras keeps
/// them, plus our `/rnn_dist` group (Keras ignores it) with the config and the vocabulary.
public enum WeightsFile {
    static let format = "rnn-dist-weights"
    static let formatVersion = 1

    /// Writes the Keras layout of `weights` into `root` (a file, or a checkpoint's group).
    static func writeTensors(_ weights: [Float], table: [ParameterView], into root: H5Group) throws {
        precondition(weights.count == (table.last.map { $0.offset + $0.count } ?? 0), "weights do not match the table")
        var groupsDone = Set<String>()
        for view in table {
            if !groupsDone.contains(view.layerPath) {
                groupsDone.insert(view.layerPath)
                if let sublayer = view.sublayer {
                    // Bidirectional: its own (empty) vars, then each wrapped layer's, as Keras 3 writes them:
                    // layers/bidirectional/vars, …/forward_layer/vars (name "forward_lstm"), …/cell/vars.
                    if !groupsDone.contains(view.pathName) {
                        groupsDone.insert(view.pathName)
                        try root.createGroup("layers/\(view.pathName)/vars").setAttribute("name", view.layerName)
                    }
                    let inner = view.innerLayerName ?? view.layerName
                    let prefix = sublayer == "backward_layer" ? "backward_" : "forward_"
                    try root.createGroup(view.layerPath + "/vars").setAttribute("name", prefix + inner)
                    try root.createGroup(view.layerPath + "/cell/vars").setAttribute("name", baseName(inner) + "_cell")
                } else {
                    let vars = try root.createGroup("layers/\(view.pathName)/vars")
                    try vars.setAttribute("name", view.layerName)
                    if view.isRecurrentCell {
                        let cellVars = try root.createGroup("layers/\(view.pathName)/cell/vars")
                        try cellVars.setAttribute("name", baseName(view.layerName) + "_cell")
                    }
                }
            }
            try root.createDataset(view.kerasPath, shape: view.shape, data: Array(weights[view.range]))
        }
        let top = try root.createGroup("vars")
        try top.setAttribute("name", "sequential")
    }

    /// "lstm_1" → "lstm", "simple_rnn" → "simple_rnn": Keras names a layer's cell after its class.
    static func baseName(_ layer: String) -> String {
        let parts = layer.split(separator: "_")
        if parts.count > 1, let last = parts.last, last.allSatisfy(\.isNumber) {
            return parts.dropLast().joined(separator: "_")
        }
        return layer
    }

    /// Reads the tensors of `table` from `root`, checking every shape and type.
    static func readTensors(table: [ParameterView], from root: H5Group) throws -> [Float] {
        let count = table.last.map { $0.offset + $0.count } ?? 0
        if let f = root as? H5File, f.fileSize > 0, count * 4 > f.fileSize {
            throw TrainingError.badFile(path: root.path, object: "/rnn_dist@config",
                                        detail: "describes \(count) parameters, more than the file's \(f.fileSize) bytes hold")
        }
        var weights = [Float](repeating: 0, count: count)
        // A file of an earlier rnn-dist keeps a layer after a Bidirectional under the layer's name:
        // told by the first tensor whose two paths differ (a Keras 3 file has the first, an earlier
        // one never does), and then read so for every tensor.
        let earlier = try table.first { $0.earlierPath != $0.kerasPath }.map { try !root.contains($0.kerasPath) && root.contains($0.earlierPath) } ?? false
        for view in table {
            let d = try root.dataset(earlier ? view.earlierPath : view.kerasPath)
            guard d.shape == view.shape else {
                throw TrainingError.badFile(path: root.path, object: d.name,
                                            detail: "shape \(d.shape), the model needs \(view.shape)")
            }
            let values: [Float] = try d.read()
            for v in values where !v.isFinite {
                throw TrainingError.badFile(path: root.path, object: d.name, detail: "holds a non-finite value")
            }
            weights.replaceSubrange(view.range, with: values)
        }
        return weights
    }

    /// Writes a complete weights file atomically.
    static func write(to path: String, weights: [Float], metadata: WeightsMetadata) throws {
        let table = metadata.config.model.parameterTable
        try H5File.writeAtomically(to: path) { f in
            try writeTensors(weights, table: table, into: f)
            try writeMetadata(metadata, into: f, kind: format)
        }
    }

    /// The `/rnn_dist` group: format, config JSON, tokenizer JSON, vocabulary.
    static func writeMetadata(_ m: WeightsMetadata, into f: H5Group, kind: String) throws {
        let g = try f.createGroup("rnn_dist")
        try g.setAttribute("format", kind)
        try g.setAttribute("format_version", formatVersion)
        try g.setAttribute("config", m.config.json())
        try g.setAttribute("tokenizer", m.tokenizerJSON)
        try g.writeStringList("vocab", m.vocabulary)
        try g.writeStringList("class_names", m.classNames)
    }

    static func readMetadata(from f: H5Group, expecting kind: String) throws -> WeightsMetadata {
        guard f.exists("rnn_dist") else {
            // Another file of rnn-dist (a history, a dataset) keeps its format at the root.
            if f.hasAttribute("format"), let other = try? f.stringAttribute("format"), other.hasPrefix("rnn-dist") {
                throw TrainingError.badFile(path: f.path, object: "/@format", detail: "is '\(other)', expected '\(kind)'")
            }
            throw TrainingError.badFile(path: f.path, object: "/rnn_dist",
                                        detail: "missing: not a file written by rnn-dist (no config or vocabulary)")
        }
        let g = try f.group("rnn_dist")
        let found = try g.stringAttribute("format")
        guard found == kind else {
            throw TrainingError.badFile(path: f.path, object: "/rnn_dist@format", detail: "is '\(found)', expected '\(kind)'")
        }
        try g.checkFormatVersion(formatVersion, object: "/rnn_dist@format_version")
        let config = try TrainConfig.from(json: try g.stringAttribute("config"), path: f.path)
        try config.model.validate()
        // The tokenizer settings predict and serve apply are this build's, for this config's sizes.
        let tokenizer = try g.stringAttribute("tokenizer")
        let t = (try? JSONSerialization.jsonObject(with: Data(tokenizer.utf8))) as? [String: Any] ?? [:]
        let fields = WeightsMetadata.tokenizerFields(numWords: config.model.vocabularySize, maxlen: config.maxlen)
        guard fields.allSatisfy({ key, value in t[key].map { "\($0)" } == "\(value)" }) else {
            throw TrainingError.badFile(path: f.path, object: "/rnn_dist@tokenizer",
                                        detail: "not the settings this rnn-dist tokenizes with for num_words \(config.model.vocabularySize) and maxlen \(config.maxlen)")
        }
        // Files written before class names were stored hold IMDB's two classes.
        let classes = g.exists("class_names") ? try g.readStringList("class_names") : ["neg", "pos"]
        guard classes.count == config.model.classCount else {
            throw TrainingError.badFile(path: f.path, object: "/rnn_dist/class_names",
                                        detail: "\(classes.count) names, the model tells \(config.model.classCount) distinct classes apart")
        }
        if let repeated = classes.indices.first(where: { classes[..<$0].contains(classes[$0]) }) {
            throw TrainingError.badFile(path: f.path, object: "/rnn_dist/class_names",
                                        detail: "name \(repeated + 1) '\(OneLine.flattened(String(classes[repeated].prefix(40))))' repeats an earlier one: the classes' names must differ")
        }
        if let problem = classes.lazy.compactMap(ClassName.problem).first {
            throw TrainingError.badFile(path: f.path, object: "/rnn_dist/class_names", detail: problem)
        }
        return WeightsMetadata(config: config, tokenizerJSON: tokenizer,
                               vocabulary: try g.readStringList("vocab"), classNames: classes)
    }

    /// Opens a complete weights file: its metadata and the tensors for the config it records.
    public static func read(from path: String) throws -> (weights: [Float], metadata: WeightsMetadata) {
        let f = try H5File.open(path, requireComplete: true)
        let m = try readMetadata(from: f, expecting: format)
        return (try readTensors(table: m.config.model.parameterTable, from: f), m)
    }
}

extension H5Object {
    /// Refuses a `format_version` attribute other than `expected`, naming `object` (a file written
    /// before the attribute existed has none, and is read).
    func checkFormatVersion(_ expected: Int, object: String) throws {
        guard hasAttribute("format_version") else { return }
        let version = try intAttribute("format_version")
        guard version == Int64(expected) else {
            throw TrainingError.badFile(path: path, object: object,
                                        detail: "is \(version); this rnn-dist reads version \(expected)\(version > expected ? " (a newer rnn-dist wrote it)" : "")")
        }
    }
}
