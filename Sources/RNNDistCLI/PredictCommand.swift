import ArgumentParser
import Foundation
import TextData
import RNN
import Training

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Class probabilities for raw text.",
        discussion: """
        Texts come from the arguments, or one per line on standard input. Each is tokenized with the vocabulary and settings stored in the weights file, by the same code as `prepare`. Prints one line per text: the top class's probability and name, every class's probability, and the text's start. --json: one object per line with "class" (and "label", the same), "probabilities" (class name → probability), "text", and for a two-class model "probability", that of the second class (IMDB's pos).
        """)

    @Option(help: "Weights file written by `train`.")
    var weights: String
    @Flag(help: "Print JSON lines instead of text.")
    var json = false
    @Argument(help: "Texts (default: one per line on stdin).")
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
            guard !reviews.isEmpty else { throw CLIError("no texts: pass them as arguments or one per line on stdin") }
        }
        let T = meta.config.maxlen
        let model = Model(config: meta.config.model, seed: 0)
        model.weights = w
        // Encoded and scored 256 reviews at a time, so memory stays bounded for any input.
        let K = model.head.outputs
        var z: [Float] = []
        z.reserveCapacity(reviews.count * K)
        var start = 0
        while start < reviews.count {
            let chunk = reviews[start ..< min(reviews.count, start + 256)]
            var x: [Int32] = []
            x.reserveCapacity(chunk.count * T)
            for r in chunk { x += vocab.encode(r, maxlen: T) }
            z += model.logits(x: x, batch: chunk.count)
            start += chunk.count
        }
        let names = meta.classNames
        for (i, r) in reviews.enumerated() {
            let (p, top) = z.withUnsafeBufferPointer { zp in
                let zi = zp.baseAddress! + i * K
                return (model.head.probabilities(logits: zi), model.head.predictedClass(logits: zi))
            }
            if json {
                var d: [String: Any] = ["class": names[top], "label": names[top], "text": r,
                                        "probabilities": Dictionary(uniqueKeysWithValues: zip(names, p))]
                if p.count == 2 { d["probability"] = p[1] }
                let out = (try? JSONSerialization.data(withJSONObject: d, options: [.sortedKeys])) ?? Data()
                print(String(decoding: out, as: UTF8.self))
            } else {
                let head = r.count > 60 ? String(r.prefix(57)) + "..." : r
                let all = zip(names, p).prefix(8).map { String(format: "%@ %.4f", $0, $1) }.joined(separator: ", ")
                print(String(format: "%.4f  ", p[top]) + names[top] + "  (" + all + (names.count > 8 ? ", …" : "") + ")  " + head)
            }
        }
    }
}
