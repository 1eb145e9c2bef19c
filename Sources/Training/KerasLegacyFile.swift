import HDF5
import RNN

/// The Keras 2 HDF5 weights layout that `tf.keras` 2.x `model.save_weights("x.h5")` writes and that
/// Keras 2 and Keras 3 `load_weights("x.h5")` read (`rnn-dist export --keras-legacy`):
///     /@layer_names   ["embedding", "lstm", "lstm_1", "dense"]      fixed-length byte strings
///     /@backend "tensorflow", /@keras_version "2.15.0"
///     /lstm/@weight_names ["lstm/lstm_cell/kernel:0", "lstm/lstm_cell/recurrent_kernel:0", "lstm/lstm_cell/bias:0"]
///     /lstm/lstm/lstm_cell/kernel:0  (I, 4H) float32, and so on for every weight
/// Keras matches layers by their order among the layers that have weights, then weights by the
/// order of `weight_names`; the names follow tf.keras 2.x's (a second LSTM is `lstm_1`, its cell
/// `lstm_cell_1`).
public enum KerasLegacyFile {
    static let kerasVersion = "2.15.0"

    /// The weight names of `view`'s layer in Keras 2's spelling, e.g. `lstm_1/lstm_cell_1/kernel:0`.
    /// Inside a Bidirectional layer: `bidirectional/forward_lstm/lstm_cell/kernel:0`,
    /// `bidirectional_1/backward_lstm_1/lstm_cell_1/bias:0` (Keras loads a layer's weights in the
    /// order of `weight_names`: the forward layer's, then the backward layer's, as rnn-dist stores them).
    static func weightName(_ view: ParameterView) -> String {
        if let sublayer = view.sublayer, let inner = view.innerLayerName {
            let base = WeightsFile.baseName(inner)
            let suffix = String(inner.dropFirst(base.count))
            let direction = sublayer == "backward_layer" ? "backward_" : "forward_"
            return "\(view.layerName)/\(direction)\(inner)/\(base)_cell\(suffix)/\(view.varName):0"
        }
        let layer = view.layerName
        guard view.isRecurrentCell else { return "\(layer)/\(view.varName):0" }   // embeddings, kernel, bias
        let base = WeightsFile.baseName(layer)
        let suffix = layer == base ? "" : String(layer.dropFirst(base.count))   // "" or "_1", "_2", …
        return "\(layer)/\(base)_cell\(suffix)/\(view.varName):0"
    }

    /// Writes the file atomically: every tensor of `table` from `weights`.
    public static func write(to path: String, weights: [Float], table: [ParameterView]) throws {
        precondition(weights.count == (table.last.map { $0.offset + $0.count } ?? 0), "weights do not match the table")
        var layers: [String] = []
        for view in table where !layers.contains(view.layerName) { layers.append(view.layerName) }
        try H5File.writeAtomically(to: path) { f in
            try f.setAttribute("layer_names", fixedStrings: layers)
            try f.setAttribute("backend", "tensorflow")
            try f.setAttribute("keras_version", kerasVersion)
            for layer in layers {
                let views = table.filter { $0.layerName == layer }
                let g = try f.createGroup(layer)
                try g.setAttribute("weight_names", fixedStrings: views.map(weightName))
                for view in views {
                    try g.createDataset(weightName(view), shape: view.shape, data: Array(weights[view.range]))
                }
            }
        }
    }
}
