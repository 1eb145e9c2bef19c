// `ModelConfig.fromKeras`: the JSON Keras 3.15 writes (`model.to_json()`, fixtures in Fixtures/,
// made by `keras.Sequential([...]).to_json()`) becomes the model rnn-dist runs, or one line naming the
// layer and the option it cannot run as Keras would.

import Foundation
import JSONSyntax
@testable import RNN
import XCTest

final class KerasConfigTests: XCTestCase {
    func fixture(_ name: String) throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/keras-\(name).json")
        return try String(contentsOf: url, encoding: .utf8)
    }

    func refusal(_ json: String) -> String {
        do {
            _ = try ModelConfig.fromKeras(json: json)
            return "accepted"
        } catch {
            XCTAssertTrue(error is KerasConfigError, "\(type(of: error))")
            return "\(error)"
        }
    }

    /// Embedding(18, 8) → LSTM(8) → Dense(1, sigmoid) at maxlen 40 is the `--model lstm` preset.
    func testTheBookModelIsThePreset() throws {
        let (config, maxlen) = try ModelConfig.fromKeras(json: fixture("lstm"))
        XCTAssertEqual(maxlen, 40)
        XCTAssertEqual(config, ModelConfig(kind: .lstm, numWords: 18, embedDim: 8, units: 8))
        XCTAssertEqual(config.preset?.kind, .lstm)
    }

    /// Bidirectional(GRU(6, return_sequences, dropout 0.2)) → SimpleRNN(5, recurrent_dropout 0.1) →
    /// Dense(1) (no activation: logits).
    func testAStackWithOptionsAndALogitOutput() throws {
        let (config, _) = try ModelConfig.fromKeras(json: fixture("stack"))
        var gru = RecurrentSpec(kind: .gru, units: 6, returnSequences: true, bidirectional: true, dropout: 0.2)
        gru.resetAfter = true
        XCTAssertEqual(config.layers, [.embedding(EmbeddingSpec(inputDim: 18, outputDim: 8)), .recurrent(gru),
                                       .recurrent(RecurrentSpec(kind: .simpleRNN, units: 5, recurrentDropout: 0.1)),
                                       .dense(DenseSpec(units: 1))])
        XCTAssertEqual(config.head, .logit)
        XCTAssertEqual(config.classCount, 2)
        XCTAssertNil(config.preset)
        // Keras 3.15's model.summary() of this model: 144, 576, 90 and 6 parameters, 816 in all.
        let table = config.kerasSummary(maxlen: 40).joined(separator: "\n")
        for row in ["embedding (Embedding)          (None, 40, 8)             144",
                    "bidirectional (Bidirectional)  (None, 40, 12)            576",
                    "simple_rnn (SimpleRNN)         (None, 5)                  90",
                    "dense (Dense)                  (None, 1)                   6",
                    " Total params: 816 (3.19 KB)", " Non-trainable params: 0 (0.00 B)"] {
            XCTAssertTrue(table.contains(row), "missing \(row) in\n\(table)")
        }
    }

    func testSoftmaxOutputAndTheResetBeforeGRU() throws {
        let (config, _) = try ModelConfig.fromKeras(json: fixture("softmax3"))
        XCTAssertEqual(config, ModelConfig(kind: .gru, numWords: 18, embedDim: 8, units: 8, resetAfter: false, classes: 3))
        XCTAssertEqual(config.head, .softmax)
    }

    /// The chapter-6 layers: 6.1's Flatten fixes the input length; the layers of the `mixed` fixture
    /// read as written, and the summary is Keras 3.15's `model.summary()` of the same JSON (its
    /// shapes, parameter counts, and the frozen embedding's 144 as non-trainable).
    func testChapterSixLayersAndTheirSummary() throws {
        let (flatten, maxlen) = try ModelConfig.fromKeras(json: fixture("flatten"))
        XCTAssertEqual(maxlen, 40)
        XCTAssertEqual(flatten.inputLength, 40)
        XCTAssertEqual(flatten.layers, [.embedding(EmbeddingSpec(inputDim: 18, outputDim: 8)), .flatten(FlattenSpec()), .dense(DenseSpec(units: 1))])
        XCTAssertTrue(flatten.kerasSummary(maxlen: 40).contains { $0.hasPrefix("flatten (Flatten)") && $0.contains("(None, 320)") })
        XCTAssertThrowsError(try flatten.validate(steps: 41))
        let (convnet, _) = try ModelConfig.fromKeras(json: fixture("convnet"))
        XCTAssertNil(convnet.inputLength, "a convnet runs at any length its windows fit")
        XCTAssertNoThrow(try convnet.validate(steps: 19))
        XCTAssertThrowsError(try convnet.validate(steps: 18)) { XCTAssertTrue("\($0)".contains("max_pooling1d") || "\($0)".contains("conv1d"), "\($0)") }
        let (mixed, _) = try ModelConfig.fromKeras(json: fixture("mixed"))
        XCTAssertEqual(mixed.layers, [
            .embedding(EmbeddingSpec(inputDim: 18, outputDim: 8, trainable: false)), .dropout(DropoutSpec(rate: 0.25)),
            .conv1D(Conv1DSpec(filters: 6, kernelSize: 4, padding: .same, activation: .tanh)),
            .pooling1D(Pooling1DSpec(poolSize: 3, strides: 2, padding: .same)),
            .conv1D(Conv1DSpec(filters: 5, kernelSize: 2, padding: .causal, activation: .sigmoid)),
            .recurrent(RecurrentSpec(kind: .lstm, units: 6, returnSequences: true, goBackwards: true)),
            .globalPooling1D(GlobalPooling1DSpec(average: true)), .dense(DenseSpec(units: 7, activation: .relu)),
            .dropout(DropoutSpec(rate: 0.2)), .dense(DenseSpec(units: 5, activation: .tanh)), .dense(DenseSpec(units: 4)),
            .dense(DenseSpec(units: 1))])
        XCTAssertEqual(mixed.head, .sigmoid)
        let table = mixed.kerasSummary(maxlen: 40).joined(separator: "\n")
        for (layer, shape, count) in [("embedding (Embedding)", "(None, 40, 8)", 144), ("dropout (Dropout)", "(None, 40, 8)", 0),
                                      ("conv1d (Conv1D)", "(None, 40, 6)", 198), ("max_pooling1d (MaxPooling1D)", "(None, 20, 6)", 0),
                                      ("conv1d_1 (Conv1D)", "(None, 20, 5)", 65), ("lstm (LSTM)", "(None, 20, 6)", 288),
                                      ("global_average_pooling1d (GlobalAveragePooling1D)", "(None, 6)", 0), ("dense (Dense)", "(None, 7)", 49),
                                      ("dropout_1 (Dropout)", "(None, 7)", 0), ("dense_1 (Dense)", "(None, 5)", 40),
                                      ("dense_2 (Dense)", "(None, 4)", 24), ("dense_3 (Dense)", "(None, 1)", 5)] {
            let row = table.split(separator: "\n").first { $0.hasPrefix(layer + " ") }.map(String.init) ?? ""
            XCTAssertEqual(row.split(separator: " ").suffix(shape.split(separator: " ").count + 1).joined(separator: " "),
                           shape + " \(count)", "\(layer) in\n\(table)")
        }
        for line in [" Total params: 813 (3.18 KB)", " Trainable params: 669 (2.61 KB)", " Non-trainable params: 144 (576.00 B)"] {
            XCTAssertTrue(table.contains(line), "missing \(line) in\n\(table)")
        }
        // The config survives its own JSON (weights and checkpoints carry it).
        let data = try JSONEncoder().encode(mixed)
        XCTAssertEqual(try JSONDecoder().decode(ModelConfig.self, from: data), mixed)
        XCTAssertEqual(try JSONDecoder().decode(ModelConfig.self, from: try JSONEncoder().encode(flatten)), flatten)
    }

    /// Without an InputLayer, the Embedding's Keras 2 length options fix the sequence length as
    /// an InputLayer would (Keras builds the model at that length); null leaves it open.
    func testAnEmbeddingsLengthOptionsFixTheSequenceLength() throws {
        let lstm = try fixture("lstm")
        let start = try XCTUnwrap(lstm.range(of: "   {\n    \"module\": \"keras.layers\",\n    \"class_name\": \"InputLayer\""))
        let end = try XCTUnwrap(lstm.range(of: "   {\n    \"module\": \"keras.layers\",\n    \"class_name\": \"Embedding\""))
        let noInput = lstm.replacingCharacters(in: start.lowerBound ..< end.lowerBound, with: "")
        XCTAssertNil(try ModelConfig.fromKeras(json: noInput).maxlen)
        for (option, maxlen) in [(#""input_shape": [30]"#, 30), (#""input_length": 25"#, 25), (#""batch_input_shape": [null, 35]"#, 35),
                                 (#""input_length": null"#, nil)] as [(String, Int?)] {
            let json = noInput.replacingOccurrences(of: #""input_dim": 18"#, with: option + #", "input_dim": 18"#)
            XCTAssertEqual(try ModelConfig.fromKeras(json: json).maxlen, maxlen, option)
        }
        XCTAssertEqual(refusal(noInput.replacingOccurrences(of: #""input_dim": 18"#, with: #""input_shape": [30, 2], "input_dim": 18"#)),
                       "layer 1 'embedding' (Embedding): option 'input_shape' must be [maxlen]: token ids, one sequence per row")
    }

    func testWhatCannotRunAsKerasWouldIsRefusedNamingLayerAndOption() throws {
        XCTAssertEqual(refusal(try fixture("functional")),
                       "a Functional model: only Sequential models are supported (model.to_json() of keras.Sequential)")
        let lstm = try fixture("lstm"), stack = try fixture("stack"), convnet = try fixture("convnet"), mixed = try fixture("mixed")
        let edits: [(String, String, String, String)] = [
            (lstm, #""activation": "tanh""#, #""activation": "relu""#, "layer 3 'lstm' (LSTM): option 'activation' = 'relu' is not supported (only 'tanh')"),
            (lstm, #""mask_zero": false"#, #""mask_zero": true"#, "layer 2 'embedding' (Embedding): option 'mask_zero' = true is not supported (only false; rnn-dist does not mask padding)"),
            (lstm, #""unit_forget_bias": true"#, #""unit_forget_bias": false"#, "layer 3 'lstm' (LSTM): option 'unit_forget_bias' = false is not supported (only true)"),
            (lstm, #""activation": "sigmoid""#, #""activation": "relu""#, "layer 4 'dense' (Dense): activation 'relu' with 1 unit is not supported as the output"),
            (lstm, #""class_name": "GlorotUniform""#, #""class_name": "HeNormal""#, "layer 3 'lstm' (LSTM): option 'kernel_initializer' = HeNormal is not supported (only Keras's default GlorotUniform)"),
            (lstm, #""units": 8,"#, #""units": 8.5,"#, "layer 3 'lstm' (LSTM): option 'units' must be an integer"),
            // Integral numbers written as floats are floats to Python's json, and Keras refuses them
            // (JSONDecoder read them as integers: the model trained and its weights did not load).
            (lstm, #""units": 8,"#, #""units": 8.0,"#, "layer 3 'lstm' (LSTM): option 'units' must be an integer"),
            (lstm, #""units": 8,"#, #""units": 8e0,"#, "layer 3 'lstm' (LSTM): option 'units' must be an integer"),
            (convnet, "\"kernel_size\": [\n      5\n     ]", "\"kernel_size\": [\n      5.0\n     ]",
             "layer 3 'conv1d' (Conv1D): option 'kernel_size' must be an integer or a list of one integer"),
            (lstm, #""dropout": 0.0"#, #""dropout": 1.5"#, "dropout = 1.5 is outside [0, 1)"),
            (stack, #""merge_mode": "concat""#, #""merge_mode": "sum""#, "layer 3 'bidirectional' (Bidirectional): option 'merge_mode' = 'sum' is not supported (only 'concat')"),
            (lstm, #""trainable": true,"#, #""trainable": false,"#, "the Sequential: option 'trainable' = false is not supported"),
            (lstm, "\"name\": \"lstm\",\n     \"trainable\": true", "\"name\": \"lstm\",\n     \"trainable\": false", "layer 3 'lstm' (LSTM): option 'trainable' = false is not supported (only true; only an Embedding can be frozen)"),
            (lstm, #""return_sequences": false"#, #""return_sequences": true"#, "layer 4 'dense' (Dense): cannot take a sequence of width 8 and length 40 (a Dense reads a vector: return_sequences of the layer before, or a Flatten or pooling missing)"),
            (convnet, #""padding": "valid""#, #""padding": "reflect""#, "layer 3 'conv1d' (Conv1D): option 'padding' = 'reflect' is not supported (valid, same or causal)"),
            (convnet, #""activation": "relu""#, #""activation": "gelu""#, "layer 3 'conv1d' (Conv1D): option 'activation' = 'gelu' is not supported (relu, tanh, sigmoid or linear)"),
            (convnet, "\"strides\": [\n      1\n     ]", "\"strides\": [\n      2\n     ]", "layer 3 'conv1d' (Conv1D): option 'strides' = [2] is not supported (only 1)"),
            (convnet, "\"dilation_rate\": [\n      1\n     ]", "\"dilation_rate\": [\n      2\n     ]", "layer 3 'conv1d' (Conv1D): option 'dilation_rate' = [2] is not supported (only 1)"),
            (convnet, #""data_format": "channels_last""#, #""data_format": "channels_first""#, "layer 3 'conv1d' (Conv1D): option 'data_format' = 'channels_first' is not supported (only 'channels_last')"),
            (convnet, "\"kernel_size\": [\n      5\n     ]", "\"kernel_size\": [\n      39\n     ]", "layer 4 'max_pooling1d' (MaxPooling1D): cannot take a sequence of width 4 and length 2: too few steps for its window"),
            (convnet, "\"strides\": [\n      3\n     ]", "\"strides\": [\n      0\n     ]", "layer 4 'max_pooling1d' (MaxPooling1D): pooling strides = 0 is outside 1…4096"),
            (convnet, "\"strides\": [\n      3\n     ]", "\"strides\": [\n      -2\n     ]", "layer 4 'max_pooling1d' (MaxPooling1D): pooling strides = -2 is outside 1…4096"),
            (convnet, "\"pool_size\": [\n      3\n     ]", "\"pool_size\": [\n      0\n     ]", "layer 4 'max_pooling1d' (MaxPooling1D): pool_size = 0 is outside 1…4096"),
            (convnet, #""keepdims": false"#, #""keepdims": true"#, "layer 6 'global_max_pooling1d' (GlobalMaxPooling1D): option 'keepdims' = true is not supported (only false)"),
            (mixed, #""activation": "relu""#, #""activation": "softmax""#, "option 'activation' = 'softmax' is not supported before the output (relu, tanh, sigmoid or linear)"),
            (mixed, #""noise_shape": null"#, #""noise_shape": [null, 1, 8]"#, "layer 3 'dropout' (Dropout): option 'noise_shape' = [null, 1, 8] is not supported (only null)"),
            (convnet, "\"batch_shape\": [\n      null,\n      40\n     ]", "\"batch_shape\": [\n      null,\n      3\n     ]", "layer 3 'conv1d' (Conv1D): cannot take a sequence of width 8 and length 3: too few steps for its window"),
            (try fixture("flatten"), "\"batch_shape\": [\n      null,\n      40\n     ]", "\"batch_shape\": [\n      null,\n      null\n     ]", "a Flatten needs the sequence length: give the InputLayer batch_shape [null, maxlen]"),
            (stack, #""go_backwards": false"#, #""go_backwards": true"#, "option 'go_backwards' = true is not supported (only false; Bidirectional runs the backward direction itself)"),
            // A layer object as the activation (activation=layers.LeakyReLU(0.2)) carries parameters the name would drop.
            (mixed, #""activation": "relu""#, #""activation": {"module": "keras.layers", "class_name": "LeakyReLU", "config": {"negative_slope": 0.2}}"#,
             "layer 9 'dense_3' (Dense): option 'activation' = {…} is not supported (only an activation's name"),
            (convnet, #""activation": "relu""#, #""activation": {"module": "keras.layers", "class_name": "ReLU", "config": {"max_value": 0.01}}"#,
             "layer 3 'conv1d' (Conv1D): option 'activation' = {"),
            (lstm, #""activation": "sigmoid""#, #""activation": {"module": "keras.layers", "class_name": "Softmax", "config": {}}"#,
             "layer 4 'dense' (Dense): option 'activation' = {"),
            // Options it does not know, LoRA on the Embedding, another dtype policy, Keras 2's time_major.
            (lstm, #""return_sequences": false"#, #""frobnicate": 3, "return_sequences": false"#,
             "layer 3 'lstm' (LSTM): option 'frobnicate' is not one rnn-dist knows (it could change what the layer computes)"),
            (lstm, #""input_dim": 18"#, #""lora_rank": 2, "input_dim": 18"#, "layer 2 'embedding' (Embedding): option 'lora_rank' = 2 is not supported (only null)"),
            (lstm, "\"name\": \"lstm\",\n     \"trainable\": true,\n     \"dtype\": {\n      \"module\": \"keras\",\n      \"class_name\": \"DTypePolicy\",\n      \"config\": {\n       \"name\": \"float32\"",
             "\"name\": \"lstm\",\n     \"trainable\": true,\n     \"dtype\": {\n      \"module\": \"keras\",\n      \"class_name\": \"DTypePolicy\",\n      \"config\": {\n       \"name\": \"mixed_bfloat16\"",
             "layer 3 'lstm' (LSTM): option 'dtype' = 'mixed_bfloat16' is not supported (only float32: rnn-dist computes in float32)"),
            (lstm, #""return_sequences": false"#, #""time_major": true, "return_sequences": false"#, "layer 3 'lstm' (LSTM): option 'time_major' = true is not supported (only false)"),
            (lstm, #""input_dim": 18"#, #""input_length": 30, "input_dim": 18"#, "layer 2 'embedding' (Embedding): option 'input_length' = 30 disagrees with the length 40 given before"),
        ]
        for (json, from, to, expect) in edits {
            XCTAssertTrue(json.contains(from), from)
            let message = refusal(json.replacingOccurrences(of: from, with: to, options: [], range: json.range(of: from)))
            XCTAssertTrue(message.contains(expect), "\(to): \(message)")
            XCTAssertFalse(message.contains("\n"))
        }
        XCTAssertEqual(refusal("[1, 2]"), "the JSON is not an object")
        XCTAssertEqual(refusal(lstm.replacingOccurrences(of: #""sparse": false"#, with: #""sparse": true"#, options: [], range: lstm.range(of: #""sparse": false"#))),
                       "layer 1 'input_layer' (InputLayer): option 'sparse' = true is not supported (only false)")
        XCTAssertEqual(refusal("{\"class_name\": "), "not valid JSON (the text ends where a value should be at byte 16)")
        // What Python's json (model_from_json) refuses and Foundation's parser accepted: a trailing
        // comma (it trained, exit 0), a number ending in '.'.
        let last = try XCTUnwrap(lstm.range(of: #""optional": false"#))
        XCTAssertTrue(refusal(lstm.replacingCharacters(in: last, with: #""optional": false,"#)).hasPrefix("not valid JSON (a trailing comma at byte "))
        let list = try XCTUnwrap(lstm.range(of: "]"))
        XCTAssertTrue(refusal(lstm.replacingCharacters(in: list, with: ",]")).hasPrefix("not valid JSON (a trailing comma at byte "))
        let number = try XCTUnwrap(lstm.range(of: "40"))
        XCTAssertTrue(refusal(lstm.replacingCharacters(in: number, with: "40.")).hasPrefix("not valid JSON (a number without digits after its '.' at byte "))
    }

    /// A compiled model's JSON (`keras-lstm-compiled.json`: the book's `compile(optimizer="rmsprop",
    /// loss="binary_crossentropy", metrics=["accuracy"])`, Keras 3.15) names its optimizer, which `train`
    /// compares with its own; an optimizer option rnn-dist does not run, or a loss other than the output
    /// layer's, is refused (both were dropped without a word: RMSprop at 0.001 trained for Adam(0.01)
    /// and loss "mse"). A layer entry that is not an object, and a Dropout without a rate, are refused
    /// (the first was dropped, the second trained as rate 0).
    func testCompileConfigLayerEntriesAndDropoutRateAreReadNotDropped() throws {
        let compiled = try fixture("lstm-compiled")
        let model = try KerasModel(json: compiled)
        XCTAssertEqual(model.config, try ModelConfig.fromKeras(json: try fixture("lstm")).config)
        let compile = try XCTUnwrap(model.compile)
        XCTAssertEqual(compile.label, "RMSprop(learning_rate=0.001)")
        XCTAssertTrue(compile.matches(optimizer: .rmsprop, learningRate: 0.001, momentum: 0, clipNorm: nil))
        XCTAssertFalse(compile.matches(optimizer: .rmsprop, learningRate: 0.002, momentum: 0, clipNorm: nil))
        XCTAssertFalse(compile.matches(optimizer: .adam, learningRate: 0.001, momentum: 0, clipNorm: nil))
        XCTAssertNil(try KerasModel(json: try fixture("lstm")).compile)
        // Keras's clipping by the global norm is --clip-norm's.
        let clipped = try XCTUnwrap(try KerasModel(json: compiled.replacingOccurrences(of: #""global_clipnorm": null"#, with: #""global_clipnorm": 1.0"#)).compile)
        XCTAssertEqual(clipped.label, "RMSprop(learning_rate=0.001, global_clipnorm=1.0)")
        XCTAssertTrue(clipped.matches(optimizer: .rmsprop, learningRate: 0.001, momentum: 0, clipNorm: 1))
        XCTAssertFalse(clipped.matches(optimizer: .rmsprop, learningRate: 0.001, momentum: 0, clipNorm: nil))
        XCTAssertFalse(compile.matches(optimizer: .rmsprop, learningRate: 0.001, momentum: 0, clipNorm: 1))
        let edits: [(String, String, String)] = [
            (#""loss": "binary_crossentropy""#, #""loss": "mse""#, "compile_config: loss 'mse' is not this output layer's (rnn-dist trains it with BinaryCrossentropy(from_logits=False)"),
            (#""loss": "binary_crossentropy""#, #""loss": {"module": "keras.losses", "class_name": "BinaryCrossentropy", "config": {"from_logits": false, "label_smoothing": 0.2}}"#,
             "compile_config: loss {…} is not this output layer's"),
            (#""loss": "binary_crossentropy""#, #""loss": {"module": "keras.losses", "class_name": "BinaryCrossentropy", "config": {"from_logits": false, "reduction": "sum"}}"#,
             "compile_config: loss {…} is not this output layer's"),
            (#""centered": false"#, #""centered": true"#, "compile_config: optimizer option 'centered' = true is not supported (only Keras's default false)"),
            (#""clipnorm": null"#, #""clipnorm": 1.0"#, "compile_config: optimizer option 'clipnorm' = 1.0 is not supported (only Keras's default null)"),
            (#""class_name": "RMSprop""#, #""class_name": "Nadam""#, "compile_config: optimizer 'nadam' is not supported (RMSprop, Adam or SGD)"),
            (#""loss_weights": null"#, #""loss_weights": [2.0]"#, "compile_config: option 'loss_weights' = [2.0] is not supported (only null)"),
            (#""rho": 0.9"#, #""rho": 0.9, "frobnicate": 1"#, "compile_config: optimizer option 'frobnicate' is not one rnn-dist knows"),
        ]
        for (from, to, expect) in edits {
            XCTAssertTrue(compiled.contains(from), from)
            let message = refusal(compiled.replacingOccurrences(of: from, with: to))
            XCTAssertTrue(message.hasPrefix(expect), "\(to): \(message)")
        }
        // The same loss written as a class, and the optimizer as a name, are the book's.
        XCTAssertEqual(refusal(compiled.replacingOccurrences(of: #""loss": "binary_crossentropy""#, with:
            #""loss": {"module": "keras.losses", "class_name": "BinaryCrossentropy", "config": {"from_logits": false, "label_smoothing": 0.0, "axis": -1}}"#)), "accepted")

        var top = try JSONSerialization.jsonObject(with: Data(try fixture("lstm").utf8)) as! [String: Any]
        var config = top["config"] as! [String: Any]
        for entry: Any in [NSNull(), "Dense", 5] {
            var layers = config["layers"] as! [Any]
            layers.insert(entry, at: 3)
            config["layers"] = layers
            top["config"] = config
            let message = refusal(String(decoding: try JSONSerialization.data(withJSONObject: top), as: UTF8.self))
            XCTAssertTrue(message.hasPrefix("layer 4: ") && message.hasSuffix("is not a layer (an object with class_name and config)"), message)
            config["layers"] = (config["layers"] as! [Any]).enumerated().filter { $0.offset != 3 }.map(\.element)
        }
        let mixed = try fixture("mixed")
        XCTAssertEqual(refusal(mixed.replacingOccurrences(of: "\"rate\": 0.25,", with: "")),
                       "layer 3 'dropout' (Dropout): option 'rate' is missing")
    }

    /// What Keras itself reads as its defaults is accepted: an initializer by name ("glorot_uniform",
    /// "uniform", …: refused, "only Keras's default GlorotUniform"), `data_format` null, a
    /// MaxPooling1D without `pool_size` (2); an option inside an initializer's config that rnn-dist
    /// does not know is refused (it was accepted).
    func testKerasDefaultsWrittenOtherwiseAreAccepted() throws {
        let lstm = try fixture("lstm"), convnet = try fixture("convnet")
        func replacingBlock(_ json: String, after key: String, with value: String) throws -> String {
            let start = try XCTUnwrap(json.range(of: "\"\(key)\": {"))
            let end = try XCTUnwrap(json.range(of: "\"registered_name\": null\n     }", range: start.upperBound ..< json.endIndex))
            return json.replacingCharacters(in: start.lowerBound ..< end.upperBound, with: "\"\(key)\": \(value)")
        }
        let base = try ModelConfig.fromKeras(json: lstm).config
        for (key, name) in [("kernel_initializer", "glorot_uniform"), ("recurrent_initializer", "orthogonal"),
                            ("bias_initializer", "zeros"), ("embeddings_initializer", "uniform"), ("embeddings_initializer", "RandomUniform")] {
            let edited = try replacingBlock(lstm, after: key, with: "\"\(name)\"")
            XCTAssertEqual(try ModelConfig.fromKeras(json: edited).config, base, "\(key) = \(name)")
        }
        XCTAssertEqual(refusal(try replacingBlock(lstm, after: "kernel_initializer", with: "\"he_normal\"")),
                       "layer 3 'lstm' (LSTM): option 'kernel_initializer' = 'he_normal' is not supported (only Keras's default GlorotUniform)")
        XCTAssertEqual(refusal(lstm.replacingOccurrences(of: "\"gain\": 1.0", with: "\"gain\": 1.0, \"scale\": 2")),
                       "layer 3 'lstm' (LSTM): option 'recurrent_initializer': Orthogonal option 'scale' is not one rnn-dist knows")
        XCTAssertTrue(refusal(lstm.replacingOccurrences(of: "\"input_axes\": null", with: "\"input_axes\": [0]")).hasSuffix(
            "option 'kernel_initializer' = GlorotUniform with other input_axes, output_axes is not supported (only Keras's defaults)"))
        let convBase = try ModelConfig.fromKeras(json: convnet).config
        XCTAssertEqual(try ModelConfig.fromKeras(json: convnet.replacingOccurrences(of: "\"data_format\": \"channels_last\"", with: "\"data_format\": null")).config,
                       convBase)
        let noPool = convnet.replacingOccurrences(of: "\"pool_size\": [\n      3\n     ],", with: "")
        XCTAssertNotEqual(noPool, convnet)
        var sizes: [Int] = []
        for layer in try ModelConfig.fromKeras(json: noPool).config.layers {
            if case .pooling1D(let p) = layer { sizes.append(p.poolSize) }
        }
        XCTAssertEqual(sizes, [2])
    }

    /// A custom class registered under a built-in's name runs its own code: refused, not trained as
    /// Keras's layer. A key given twice is refused (Keras's json reads the last value, Swift's the first).
    func testCustomClassesAndRepeatedKeysAreRefused() throws {
        func edited(_ name: String, _ edit: (inout [[String: Any]]) -> Void) throws -> String {
            var top = try JSONSerialization.jsonObject(with: Data(try fixture(name).utf8)) as! [String: Any]
            var config = top["config"] as! [String: Any]
            var layers = config["layers"] as! [[String: Any]]
            edit(&layers)
            config["layers"] = layers
            top["config"] = config
            return String(decoding: try JSONSerialization.data(withJSONObject: top), as: UTF8.self)
        }
        XCTAssertEqual(refusal(try edited("lstm") { _ in }), "accepted")
        XCTAssertEqual(refusal(try edited("lstm") { $0[2]["registered_name"] = "my_package>LSTM"; $0[2]["module"] = "my_package.layers" }),
                       "layer 3 'lstm' (LSTM): a custom class (registered_name 'my_package>LSTM' from module 'my_package.layers'); only Keras's built-in layers are supported")
        let wrapped = refusal(try edited("stack") { layers in
            var config = layers[2]["config"] as! [String: Any]
            var inner = config["layer"] as! [String: Any]
            inner["registered_name"] = "GRU"
            config["layer"] = inner
            layers[2]["config"] = config
        })
        XCTAssertTrue(wrapped.hasSuffix("a custom class (registered_name 'GRU' from module 'keras.layers'); only Keras's built-in layers are supported"), wrapped)
        let lstm = try fixture("lstm")
        XCTAssertEqual(refusal(lstm.replacingOccurrences(of: #""units": 8,"#, with: #""units": 8, "units": 9,"#)),
                       "the key 'units' appears twice in one object (Keras would read its last value)")
        XCTAssertEqual(refusal(lstm.replacingOccurrences(of: #""units": 8,"#, with: #""units": 8, "\u0075nits": 9,"#)),
                       "the key 'units' appears twice in one object (Keras would read its last value)")
        // The same key in two objects, in an array, or as a string value is no repetition.
        func repeated(_ json: String) -> String? {
            Array(json.utf8).withUnsafeBufferPointer { JSONValue.firstRepeatedKey(JSONSyntax.check($0, memberDepth: .max).members, in: $0) }
        }
        XCTAssertNil(repeated(#"{"a": {"a": 1}, "b": [{"a": 2}, {"a": "a"}], "c": ["a", "a"]}"#))
        XCTAssertEqual(repeated(#"{"a": [1, {"b": 1, "c": "\"", "b": 2}]}"#), "b")
        XCTAssertEqual(repeated(#"{"a": {"\ud83d\ude00": 1, "x": {}, "😀": 2}, "a": 3}"#), "😀")   // the inner object's repeat comes first
    }
}
