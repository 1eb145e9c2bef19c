import ArgumentParser
import Foundation
import TextData
import Training

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Class probabilities for raw text.",
        discussion: """
        Texts come from the arguments, or one per line on standard input (every line, blank ones too: output line i answers input line i; a blank line is a text without words). Each is tokenized with the vocabulary and settings stored in the weights file, by the same code as `prepare`. Prints one line per text: the top class's probability and name, every class's probability (beyond 8 classes, the 8 most probable and how many more --json lists), and the text's start. --json: one object per line with "class" (and "label", the same), "probabilities" (class name → probability), "text", and for a two-class model "probability", that of the second class (IMDB's pos).
        """)

    /// Classes the text line lists, at most.
    static let classesShown = 8

    @Option(help: "Weights file written by `train` (model.weights.h5, best.weights.h5), or a checkpoint.")
    var weights: String
    @Flag(help: "Print JSON lines instead of text.")
    var json = false
    @Argument(help: "Texts (default: one per line on stdin). A text that begins with '-' goes after '--'.")
    var texts: [String] = []

    func validate() throws {
        try refuseEmptyPaths([("--weights", weights)])
    }

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
                // Every class in order; beyond 8, the 8 most probable (the top one among them, which
                // the first 8 in order left out) and how many more --json lists.
                let shownClasses = names.count <= Self.classesShown ? Array(names.indices)
                    : Array(p.indices.sorted { p[$0] != p[$1] ? p[$0] > p[$1] : $0 < $1 }.prefix(Self.classesShown))
                let all = shownClasses.map { String(format: "%@ %.4f", names[$0], p[$0]) }.joined(separator: ", ")
                let more = names.count - shownClasses.count
                print(String(format: "%.4f  ", p[top]) + names[top] + "  (" + all + (more > 0 ? ", \(more) more in --json" : "") + ")  " + head)
            }
        }
    }
}
