import ArgumentParser
import Foundation
import TextData
import Training

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Class probabilities for raw text.",
        discussion: """
        Texts come from the arguments, or one per line on standard input (every line, blank ones too: output line i answers input line i; a blank line is a text without words). Each is tokenized with the vocabulary and settings stored in the weights file, by the same code as `prepare`. Prints one line per text: the top class's probability and name, every class's probability, and the text's start. --json: one object per line with "class" (and "label", the same), "probabilities" (class name → probability), "text", and for a two-class model "probability", that of the second class (IMDB's pos).
        """)

    @Option(help: "Weights file written by `train` (model.weights.h5, best.weights.h5), or a checkpoint.")
    var weights: String
    @Flag(help: "Print JSON lines instead of text.")
    var json = false
    @Argument(help: "Texts (default: one per line on stdin). A text that begins with '-' goes after '--'.")
    var texts: [String] = []

    func run() throws {
        let classifier = try Classifier(path: weights)
        var reviews = texts
        if reviews.isEmpty {
            // Every line, blank ones too (a text without words, classified as `serve` does an empty
            // text), so that output line i answers input line i.
            var st = stat()
            if fstat(0, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                throw CLIError("standard input is a folder: pass the texts as arguments or one per line on stdin")
            }
            while let line = readLine(strippingNewline: true) { reviews.append(line.hasSuffix("\r") ? String(line.dropLast()) : line) }
            guard !reviews.isEmpty else { throw CLIError("no texts: pass them as arguments or one per line on stdin") }
        }
        let names = classifier.classNames
        for (r, answer) in zip(reviews, classifier.classify(reviews)) {
            let p = answer.probabilities, top = answer.predictedClass
            if json {
                var d: [String: Any] = ["class": names[top], "label": names[top], "text": r,
                                        "probabilities": Dictionary(uniqueKeysWithValues: zip(names, p))]
                if p.count == 2 { d["probability"] = p[1] }
                let out = (try? JSONSerialization.data(withJSONObject: d, options: [.sortedKeys])) ?? Data()
                print(String(decoding: out, as: UTF8.self))
            } else {
                // One line per text: line breaks, tabs and escape sequences' control characters as spaces.
                let shown = OneLine.flattened(r)
                let head = shown.count > 60 ? String(shown.prefix(57)) + "..." : shown
                let all = zip(names, p).prefix(8).map { String(format: "%@ %.4f", $0, $1) }.joined(separator: ", ")
                print(String(format: "%.4f  ", p[top]) + names[top] + "  (" + all + (names.count > 8 ? ", …" : "") + ")  " + head)
            }
        }
    }
}
