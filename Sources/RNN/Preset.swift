// The book's IMDB classifiers (chapters 6.2 and 6.3) as `train`'s flags describe them:
// Embedding(V, E) → `layers` × recurrent(H) (optionally Bidirectional, with dropout) → Dense(1,
// sigmoid), or Dense(K, softmax) for K > 2 classes. A preset is built into a `ModelConfig` (the one description the model runs from), and a
// config of that shape is recognised as its preset again (for flag names in messages and labels).

extension ModelConfig {
    public struct Preset: Decodable, Hashable, Sendable {
        /// V: vocabulary size, token ids are 0..<V; default 10,000.
        public var numWords: Int
        /// E: embedding width; default 32.
        public var embedDim: Int
        /// Number of stacked recurrent layers (all but the last return sequences); default 1.
        public var layers: Int
        /// Every recurrent layer (`returnSequences` aside): an LSTM of 32 units by default, as in the
        /// book; Keras `Bidirectional` (concat), `dropout`, `recurrent_dropout` and, GRU only,
        /// `reset_after` as set.
        public var recurrent: RecurrentSpec
        /// Classes told apart: 2 (one sigmoid logit, the book's) or more (a softmax over K).
        public var classes: Int

        public var kind: Kind { recurrent.kind }
        public var units: Int { recurrent.units }
        public var bidirectional: Bool { recurrent.bidirectional }
        public var dropout: Double { recurrent.dropout }
        public var recurrentDropout: Double { recurrent.recurrentDropout }
        public var resetAfter: Bool { recurrent.resetAfter }

        public init(kind: Kind = .lstm, numWords: Int = 10_000, embedDim: Int = 32, units: Int = 32, layers: Int = 1,
                    bidirectional: Bool = false, dropout: Double = 0, recurrentDropout: Double = 0,
                    resetAfter: Bool = true, classes: Int = 2) {
            self.numWords = numWords
            self.classes = classes
            self.embedDim = embedDim
            self.layers = layers
            recurrent = RecurrentSpec(kind: kind, units: units, bidirectional: bidirectional, dropout: dropout,
                                      recurrentDropout: recurrentDropout, resetAfter: resetAfter)
        }

        private enum CodingKeys: String, CodingKey {
            case kind, numWords, embedDim, units, layers, bidirectional, dropout, recurrentDropout, resetAfter
        }

        /// The config JSON of files written before 2026-12-04; files from before the 6.3 options lack
        /// their keys, which then mean the defaults.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            // Checked before the stack is built from it (a damaged 10⁹ allocated 48 GB and aborted).
            let layers = try c.decode(Int.self, forKey: .layers)
            guard (1...ModelConfig.maxLayers).contains(layers) else {
                throw ModelConfigError.outOfRange(name: "layers", value: layers, limit: ModelConfig.maxLayers)
            }
            self.init(kind: try c.decode(Kind.self, forKey: .kind), numWords: try c.decode(Int.self, forKey: .numWords),
                      embedDim: try c.decode(Int.self, forKey: .embedDim), units: try c.decode(Int.self, forKey: .units),
                      layers: layers,
                      bidirectional: try c.decodeIfPresent(Bool.self, forKey: .bidirectional) ?? false,
                      dropout: try c.decodeIfPresent(Double.self, forKey: .dropout) ?? 0,
                      recurrentDropout: try c.decodeIfPresent(Double.self, forKey: .recurrentDropout) ?? 0,
                      resetAfter: try c.decodeIfPresent(Bool.self, forKey: .resetAfter) ?? true)
        }

        /// Throws for the first value out of range, named as the flag's config key ("units"): the
        /// rules of `ModelConfig.validate` plus a layer count of at least 1 and 2 or more classes.
        public func validate() throws {
            guard classes >= 2 else { throw ModelConfigError.badStack("a classifier needs at least 2 classes, not \(classes)") }
            guard (1...ModelConfig.maxLayers).contains(layers) else {
                throw ModelConfigError.outOfRange(name: "layers", value: layers, limit: ModelConfig.maxLayers)
            }
            try config.validate()
        }

        /// The model as layers: Embedding, the recurrent stack (all but the last return sequences),
        /// Dense(1) with the sigmoid head, or Dense(K) with the softmax head for K > 2 classes.
        public var config: ModelConfig {
            let head = HeadSpec.forClasses(classes)
            let stack = (0..<max(layers, 0)).map { l in
                var r = recurrent
                r.returnSequences = l < layers - 1
                return LayerSpec.recurrent(r)
            }
            return ModelConfig(layers: [.embedding(EmbeddingSpec(inputDim: numWords, outputDim: embedDim))] + stack
                                   + [.dense(DenseSpec(units: head.width))], head: head.spec)
        }

        /// "lstm", "bidirectional gru (reset before), dropout 0.2, recurrent dropout 0.2".
        public var label: String {
            var out = (bidirectional ? "bidirectional " : "") + kind.rawValue + (kind == .gru && !resetAfter ? " (reset before)" : "")
            if dropout > 0 { out += ", dropout \(dropout)" }
            if recurrentDropout > 0 { out += ", recurrent dropout \(recurrentDropout)" }
            if classes > 2 { out += ", \(classes) classes" }
            return out
        }
    }

    /// A preset's config (the flags' model; tests).
    init(kind: Kind = .lstm, numWords: Int = 10_000, embedDim: Int = 32, units: Int = 32, layers: Int = 1,
                bidirectional: Bool = false, dropout: Double = 0, recurrentDropout: Double = 0, resetAfter: Bool = true,
                classes: Int = 2) {
        self = Preset(kind: kind, numWords: numWords, embedDim: embedDim, units: units, layers: layers,
                      bidirectional: bidirectional, dropout: dropout, recurrentDropout: recurrentDropout,
                      resetAfter: resetAfter, classes: classes).config
    }

    /// The preset this config is, if it has a preset's shape (else nil).
    public var preset: Preset? {
        guard case .embedding(let e)? = layers.first, case .dense? = layers.last,
              let r = recurrentLayers.first, recurrentLayers.count == layers.count - 2 else { return nil }
        var p = Preset(numWords: e.inputDim, embedDim: e.outputDim, layers: recurrentLayers.count, classes: classCount)
        p.recurrent = r
        p.recurrent.returnSequences = false
        // What no flag sets (Keras `go_backwards`, `use_bias=False`) is not a preset's: such a model
        // is named and compared by its layers, so that the difference is never dropped.
        p.recurrent.goBackwards = false
        p.recurrent.useBias = true
        return p.config == self ? p : nil
    }
}

extension ModelConfig {
    /// The cell name files and `eval --json` report: a preset's ("lstm"), else "sequential". A frozen
    /// Embedding (`--freeze-embeddings`) does not change the cell: it was "sequential" (history.h5's
    /// @model, and `eval --model lstm` refused such weights).
    public var kindName: String { cellPreset?.kind.rawValue ?? "sequential" }

    /// The preset this model is with its Embedding trainable: a frozen Embedding keeps the preset's
    /// words in labels and summaries, followed by `frozenMark`.
    public var cellPreset: Preset? { embedding(trainable: true).preset }

    /// ", frozen embedding" when the Embedding does not train, else "".
    public var frozenMark: String { embeddingTrainable ? "" : ", frozen embedding" }

    /// "lstm, 2 layers of 32 units, embedding 10000×32" for a preset, else the layers.
    public var summary: String {
        guard let p = cellPreset else { return label }
        return "\(p.label), \(p.layers) layer\(p.layers == 1 ? "" : "s") of \(p.units) units, embedding \(p.numWords)×\(p.embedDim)"
            + frozenMark
    }
}
