// A trained model put to use: raw texts in, class probabilities out. `predict` and `serve` both
// answer through this type, so they tokenize and score by the same code and give the same numbers.

import Foundation
import HDF5
import RNN
import TextData

/// A weights file (or a checkpoint) loaded for prediction: the model, its vocabulary and its classes.
/// Not thread-safe (the model keeps its work buffers): a thread that scores uses its own `replica()`.
public final class Classifier {
    /// The file the weights came from.
    public let source: String
    public let metadata: WeightsMetadata
    /// The class names in the order of the probabilities.
    public var classNames: [String] { metadata.classNames }
    /// T: every text becomes T ids (cut to its last T, left-padded with 0), as in `prepare`.
    public var maxlen: Int { metadata.config.maxlen }
    let vocabulary: Vocabulary
    let model: Model

    /// Texts scored per forward pass (memory stays bounded for any number of texts).
    public static let chunk = 256

    /// Loads `path`: a weights file or a checkpoint written by `train`.
    public convenience init(path: String) throws {
        let (w, meta) = try Self.loadWeights(path)
        try self.init(weights: w, metadata: meta, source: path)
    }

    public init(weights: [Float], metadata: WeightsMetadata, source: String) throws {
        let vocabulary: Vocabulary
        do { vocabulary = try Vocabulary(words: metadata.vocabulary) } catch {
            throw ClassifierError("\(source): /rnn_dist/vocab: \(error)")
        }
        guard vocabulary.numWords == metadata.config.model.vocabularySize else {
            throw ClassifierError("\(source): the vocabulary has \(vocabulary.numWords) ids but the model has num_words \(metadata.config.model.vocabularySize)")
        }
        guard metadata.classNames.count == metadata.config.model.classCount else {
            throw ClassifierError("\(source): \(metadata.classNames.count) class names for a model of \(metadata.config.model.classCount) classes")
        }
        let model = Model(config: metadata.config.model, seed: 0)
        guard weights.count == model.weights.count else {
            throw ClassifierError("\(source): \(weights.count) weights for a model of \(model.weights.count)")
        }
        model.weights = weights
        self.source = source
        self.metadata = metadata
        self.vocabulary = vocabulary
        self.model = model
    }

    private init(copying c: Classifier) {
        source = c.source
        metadata = c.metadata
        vocabulary = c.vocabulary
        model = Model(config: c.metadata.config.model, seed: 0)
        model.weights = c.model.weights
    }

    /// Another classifier with the same weights and its own work buffers, for another thread.
    public func replica() -> Classifier { Classifier(copying: self) }

    /// One text as the model's input row (T ids).
    public func encode(_ text: String) -> [Int32] { vocabulary.encode(text, maxlen: maxlen) }

    /// Every class's probability and the predicted class (the head's own rule, as `eval` counts
    /// it) for each text, `chunk` texts per forward pass.
    public func classify(_ texts: [String]) -> [Prediction] {
        let T = maxlen, K = model.head.outputs
        var out: [Prediction] = []
        out.reserveCapacity(texts.count)
        var start = 0
        while start < texts.count {
            let part = texts[start ..< min(texts.count, start + Self.chunk)]
            var x: [Int32] = []
            x.reserveCapacity(part.count * T)
            for t in part { x += encode(t) }
            let z = model.logits(x: x, batch: part.count)
            z.withUnsafeBufferPointer { zp in
                for i in 0 ..< part.count {
                    let zi = zp.baseAddress! + i * K
                    out.append(Prediction(probabilities: model.head.probabilities(logits: zi),
                                          predictedClass: model.head.predictedClass(logits: zi)))
                }
            }
            start += part.count
        }
        return out
    }

    /// Weights from a weights file or a checkpoint (whose weights are in the same layout), read by
    /// the kind its format mark names (so a damaged checkpoint's error names what is damaged in it),
    /// with a clear message when the file is another kind of rnn-dist file.
    public static func loadWeights(_ path: String) throws -> ([Float], WeightsMetadata) {
        let file = try? H5File.open(path)
        // The kind of a complete file (an unreadable format mark is then an error); a file without
        // the completion mark is refused below as incomplete or not rnn-dist's.
        switch try file.flatMap({ $0.isComplete ? try RunFileSummary.kind(of: $0) : nil }) {
        case "checkpoint":
            let c = try Checkpoint.read(from: path)
            return (c.weights, c.metadata)
        case "history":
            throw ClassifierError("\(path) is a history file, not weights: pass model.weights.h5 or best.weights.h5")
        default:
            if let file, (try? file.stringAttribute("format")) == TextDataset.format {
                throw ClassifierError("\(path) is a dataset written by prepare, not weights: pass a run's model.weights.h5 or best.weights.h5")
            }
            let r = try WeightsFile.read(from: path)
            return (r.weights, r.metadata)
        }
    }
}

/// One text's answer.
public struct Prediction: Sendable, Equatable {
    /// One per class, in the order of `Classifier.classNames`.
    public let probabilities: [Double]
    public let predictedClass: Int
}

/// A weights file that loads but cannot be used to classify.
public struct ClassifierError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
