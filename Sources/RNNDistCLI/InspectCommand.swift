import ArgumentParser
import HDF5
import Training
import TextData
import Foundation

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What an rnn-dist HDF5 file holds, and whether it is complete and intact.",
        discussion: """
        Lists every group and dataset with its shape and type, and the root's attributes with their values (--json: every object's attribute names too), and reads every dataset in full so that each Fletcher-32 checksum is verified. A dataset, weights file, checkpoint or history file is then read as `train`, `eval` and `plot` read it, and summarised. Exit status 0: the file is complete and intact; 1: it is damaged, partial or unreadable (one line on stderr says why); 2: its metadata crashed the HDF5 library (one line says so). A file name that begins with '-' goes after '--'.
        """)

    @Argument(help: "The HDF5 file to inspect.")
    var file: String

    @Flag(help: "Print machine-readable JSON instead of text.")
    var json = false

    /// What an attribute whose type rnn-dist does not read is shown as.
    static let unread = "(not read: a type rnn-dist does not read)"

    func validate() throws {
        try refuseEmptyPaths([("<file>", file)])
    }

    func run() throws {
        let f = try H5File.open(file)
        let entries = try f.walk(verifyData: true)
        let rootAttrs = try f.attributeNames()
        // The root's attributes: strings, integers and floats by value (typed in --json); any other
        // (a variable-length string, an array, a compound) is listed as unread, never left out.
        var attrValues: [String: String] = [:], attrJSON: [String: Any] = [:]
        for a in rootAttrs {
            if let s = try? f.stringAttribute(a) { attrValues[a] = s; attrJSON[a] = s }
            else if let i = try? f.intAttribute(a) { attrValues[a] = String(i); attrJSON[a] = i }
            else if let d = try? f.doubleAttribute(a) { attrValues[a] = String(d); attrJSON[a] = d.isFinite ? d : String(d) }
            else { attrValues[a] = Self.unread; attrJSON[a] = Self.unread }
        }
        let complete = f.isComplete
        // Parts of two writes (a copy over it in place) are damage, though each dataset reads.
        if complete { try f.checkDigest() }
        // A dataset written by `prepare` also gets its own report (validating every row).
        let dataset = complete && attrValues["format"] == TextDataset.format ? try DatasetSummary(path: file) : nil
        // Weights, checkpoints and history files are read by the code that uses them.
        let runFile = try complete ? RunFileSummary.kind(of: f).map { try RunFileSummary(path: file, kind: $0) } : nil
        if json {
            var objects: [[String: Any]] = []
            for e in entries {
                var o: [String: Any] = ["name": e.name, "attributes": e.attributes]
                switch e.kind {
                case .group: o["kind"] = "group"
                case .dataset(let shape, let type): o["kind"] = "dataset"; o["shape"] = shape; o["type"] = type.rawValue
                case .other: o["kind"] = "other"
                }
                objects.append(o)
            }
            let doc: [String: Any] = ["file": file, "complete": complete, "valid": complete,
                                      "attributes": attrJSON, "objects": objects]
                .merging(dataset.map { ["dataset": $0.json] } ?? [:]) { a, _ in a }
                .merging(runFile.map { [$0.kind: $0.json] } ?? [:]) { a, _ in a }
            let data = try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys, .prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("\(file): \(f.fileSize) bytes, \(entries.count) objects, \(complete ? "complete" : "NOT complete")")
            for k in attrValues.keys.sorted() { print("  @\(k) = \(attrValues[k]!)") }
            for e in entries {
                switch e.kind {
                case .group: print("  \(e.name)/")
                case .dataset(let shape, let type):
                    print("  \(e.name)  \(type.rawValue) \(shape.map(String.init).joined(separator: "×"))")
                case .other: print("  \(e.name)  (other object)")
                }
            }
            dataset?.lines().forEach { print($0) }
            runFile?.lines.forEach { print($0) }
            if complete && dataset == nil && runFile == nil {
                // Still a readable HDF5 file (the exit status says intact), but not one of ours.
                print("not a dataset, weights, checkpoint or history file of rnn-dist (no format mark it knows): its objects only")
            }
        }
        if !complete {
            throw CLIError("\(file): \(H5File.incompleteDetail)")
        }

    }
}
