import ArgumentParser
import ONNX
import POSIX
import Training

/// `rnn-dist export --keras-legacy WEIGHTS -o FILE.h5`: weights in the Keras 2 HDF5 layout;
/// `rnn-dist export --onnx WEIGHTS -o FILE.onnx`: the whole classifier as an ONNX model.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the model in another format: --keras-legacy, the Keras 2 HDF5 file of tf.keras 2.x save_weights; --onnx, an ONNX model.",
        discussion: """
        WEIGHTS is a weights file or a checkpoint written by train.

        --keras-legacy: the file loads with model.load_weights("FILE.h5") in Keras 2 (tf.keras 2.x) and Keras 3, into the Sequential of the same architecture (Embedding → the recurrent layers → Dense). Keras chooses how to read a file by its name, so -o must end in .h5 or .hdf5 and not in .weights.h5 (Keras 3's own format).

        --onnx: the classifier as an ONNX model (IR version 8, opset 17) for onnxruntime and other ONNX runtimes. Input "input_ids", int64 [batch, maxlen] (maxlen of the weights' dataset): the token ids predict feeds the model (the text tokenized with the vocabulary stored in WEIGHTS, as prepare does, left-padded with 0). Output "probabilities", float [batch, K]: the numbers predict prints ([1 − p, p] for a one-logit model, the softmax for K classes); the class names are in the model's metadata ("class_names"). Operators: Gather (embedding); RNN, LSTM, GRU (time-major; Bidirectional as direction bidirectional, go_backwards as reverse; reset-after GRU with linear_before_reset = 1); MatMul, Add, Relu, Tanh, Sigmoid (Dense); Conv, MaxPool, ReduceMax, ReduceMean, Flatten; Transpose, Reshape, Slice, Softmax, Sub, Concat. Dropout vanishes at inference. Every layer train builds is covered.
        """)

    @Flag(help: "Keras 2 HDF5 layout (root layer_names, backend, keras_version; per layer weight_names).")
    var kerasLegacy = false
    @Flag(help: "An ONNX model: int64 token ids in, class probabilities out.")
    var onnx = false
    @Argument(help: "A weights file (model.weights.h5, best.weights.h5) or a checkpoint.")
    var weights: String
    @Option(name: .shortAndLong, help: "The file to write.")
    var output: String

    func validate() throws {
        try refuseEmptyPaths([("<weights>", weights)])
        guard !output.isEmpty else { throw ValidationError("-o is empty: name the file to write") }
        guard kerasLegacy || onnx else { throw ValidationError("choose the format to export: --keras-legacy or --onnx") }
        guard !(kerasLegacy && onnx) else { throw ValidationError("--keras-legacy and --onnx exclude each other: export one format at a time") }
        // Keras picks the reader by the name: *.weights.h5 is Keras 3's own format, *.keras a zip, and
        // a name without .h5 or .hdf5 no format at all — each refused the file this writes.
        if kerasLegacy, let problem = Self.kerasLegacyNameProblem(output) {
            throw ValidationError("-o \(output): \(problem); name the Keras 2 file *.h5, e.g. model.keras2.h5")
        }
    }

    /// Why Keras would not read a Keras 2 HDF5 file by this name (Keras 3's `load_weights` chooses
    /// its reader by the name's end), or nil.
    static func kerasLegacyNameProblem(_ name: String) -> String? {
        if name.hasSuffix(".weights.h5") { return "Keras 3 reads a file named *.weights.h5 as its own format, not the Keras 2 one" }
        if name.hasSuffix(".keras") { return "Keras reads a file named *.keras as a zip archive" }
        if !name.hasSuffix(".h5") && !name.hasSuffix(".hdf5") { return "Keras reads Keras 2 HDF5 weights only from a file named *.h5 or *.hdf5" }
        return nil
    }

    func run() throws {
        SignalTemporaries.removeOnStopSignals()   // Ctrl-C while writing leaves no temporary
        guard !sameFile(weights, output) else {
            throw CLIError("-o \(output) is the input \(weights): the export would replace the weights it is made from; choose another -o")
        }
        let (w, meta) = try loadWeights(weights)
        // The checks predict and serve make (the vocabulary, the class names, the weights' count):
        // a file they refuse is not exported either.
        _ = try Classifier(weights: w, metadata: meta, source: weights)
        guard onnx else {
            try KerasLegacyFile.write(to: output, weights: w, table: meta.config.model.parameterTable)
            print("wrote \(output) (Keras 2 HDF5 weights, \(meta.config.model.summary))")
            return
        }
        let model: ONNXModel
        do {
            model = try ONNXExport.model(config: meta.config.model, weights: w, maxlen: meta.config.maxlen,
                                         classNames: meta.classNames, producerVersion: RNNDist.configuration.version)
        } catch {
            throw CLIError("\(weights): cannot export to ONNX: \(error)")
        }
        try TextFile.writeAtomically(bytes: model.serialized(), to: output)
        print("wrote \(output) (ONNX opset \(ONNXExport.opsetVersion), \(ONNXExport.inputName) int64 [batch, \(meta.config.maxlen)] → "
              + "\(ONNXExport.outputName) float [batch, \(meta.config.model.classCount)], \(meta.config.model.summary))")
    }
}
