import ArgumentParser
import Foundation
import IMDB
import RNN
import Training

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sentiment probability for raw review text.",
        discussion: """
        Reviews come from the arguments, or one per line on standard input. Each is tokenized with the vocabulary and settings stored in the weights file, by the same code as `prepare`. Prints one line per review: probability of positive, label, and the review's start.
        """)

    @Option(help: "Weights file written by `train`.")
    var weights: String
    @Flag(help: "Print JSON lines instead of text.")
    var json = false
    @Argument(help: "Review texts (default: one per line on stdin).")
    var texts: [String] = []

    func run() throws {
        let (w, meta) = try loadWeights(weights)
        let vocab: Vocabulary
        do { vocab = try Vocabulary(words: meta.vocabulary) } catch {
            throw CLIError("\(weights): /rnn_dist/vocab: \(error)")
        }
        guard vocab.numWords == meta.config.model.vocabularySize else {
            throw CLIError("\(weights): the vocabulary has \(vocab.numWords) ids but the model has num_words \(meta.config.model.vocabularySize)")
        }
        var reviews = texts
        if reviews.isEmpty {
            while let line = readLine(strippingNewline: true) {
                if !line.trimmingCharacters(in: .whitespaces).isEmpty { reviews.append(line) }
            }
            guard !reviews.isEmpty else { throw CLIError("no reviews: pass them as arguments or one per line on stdin") }
        }
        let T = meta.config.maxlen
        let model = Model(config: meta.config.model, seed: 0)
        model.weights = w
        // Encoded and scored 256 reviews at a time, so memory stays bounded for any input.
        var z: [Float] = []
        z.reserveCapacity(reviews.count)
        var start = 0
        while start < reviews.count {
            let chunk = reviews[start ..< min(reviews.count, start + 256)]
            var x: [Int32] = []
            x.reserveCapacity(chunk.count * T)
            for r in chunk { x += vocab.encode(r, maxlen: T) }
            z += model.logits(x: x, batch: chunk.count)
            start += chunk.count
        }
        for (i, r) in reviews.enumerated() {
            let p = SigmoidHead.probability(logit: z[i])
            let label = SigmoidHead.predictsPositive(logit: z[i]) ? "positive" : "negative"
            if json {
                let d: [String: Any] = ["probability": Double(p), "label": label, "text": r]
                let out = (try? JSONSerialization.data(withJSONObject: d, options: [.sortedKeys])) ?? Data()
                print(String(decoding: out, as: UTF8.self))
            } else {
                let head = r.count > 60 ? String(r.prefix(57)) + "..." : r
                print(String(format: "%.4f  ", p) + label + "  " + head)
            }
        }
    }
}
