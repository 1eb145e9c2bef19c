import ArgumentParser
import Training

/// `rnn-dist export --keras-legacy WEIGHTS -o FILE.h5`: weights in the Keras 2 HDF5 layout.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write weights in another layout: --keras-legacy, the Keras 2 HDF5 file of tf.keras 2.x save_weights.",
        discussion: """
        The file loads with model.load_weights("FILE.h5") in Keras 2 (tf.keras 2.x) and Keras 3, into the Sequential of the same architecture (Embedding → the recurrent layers → Dense). WEIGHTS is a weights file or a checkpoint written by train.
        """)

    @Flag(help: "Keras 2 HDF5 layout (root layer_names, backend, keras_version; per layer weight_names).")
    var kerasLegacy = false
    @Argument(help: "A weights file (model.weights.h5, best.weights.h5) or a checkpoint.")
    var weights: String
    @Option(name: .shortAndLong, help: "The file to write.")
    var output: String

    func validate() throws {
        guard kerasLegacy else { throw ValidationError("choose the layout to export: --keras-legacy") }
    }

    func run() throws {
        let (w, meta) = try loadWeights(weights)
        try KerasLegacyFile.write(to: output, weights: w, table: meta.config.model.parameterTable)
        print("wrote \(output) (Keras 2 HDF5 weights, \(meta.config.model.summary))")
    }
}
