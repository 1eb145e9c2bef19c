import ArgumentParser
import Foundation
import POSIX
import Training

struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The book's two charts from history.h5: training vs validation accuracy and loss, as SVG.")

    @Argument(help: "history.h5 written by `train`.")
    var history: String
    @Option(name: .shortAndLong, help: "The SVG file to write.")
    var output = "history.svg"

    func validate() throws {
        try refuseEmptyPaths([("<history>", history)])
        guard !output.isEmpty else { throw ValidationError("-o is empty: name the SVG file to write") }
    }

    func run() throws {
        SignalTemporaries.removeOnStopSignals()   // Ctrl-C while writing leaves no temporary
        guard !sameFile(history, output) else {
            throw CLIError("-o \(output) is the input \(history): the chart would replace the history it is drawn from; choose another -o")
        }
        let ext = (output as NSString).pathExtension.lowercased()
        guard ext.isEmpty || ext == "svg" else {
            throw CLIError("-o \(output): plot writes SVG only; name the file *.svg (a browser shows it, and rsvg-convert or inkscape turn it into .\(ext))")
        }
        let (h, config, worldSize) = try HistoryFile.read(from: history)
        guard !h.records.isEmpty else { throw CLIError("\(history): no epochs recorded yet") }
        // The recurrent layers' count too (a 2-layer LSTM was titled "lstm (8 units)").
        let model = config.model.cellPreset.map {
            "\($0.label) (\($0.layers == 1 ? "" : "\($0.layers) layers of ")\($0.units) units)\(config.model.frozenMark)"
        } ?? config.model.label
        let title = "\(model), \(worldSize) rank\(worldSize == 1 ? "" : "s"), " +
            "\(h.records.count) epoch\(h.records.count == 1 ? "" : "s")"
        let svg = HistoryPlot.svg(h, title: title)
        let dir = splitFolder(output).folder
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw CLIError("\(output): folder '\(dir)' does not exist")
        }
        try TextFile.writeAtomically(svg, to: output)
        print("wrote \(output)")
    }
}
