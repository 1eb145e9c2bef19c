"""Writes the chapter-6 Keras fixtures of KerasConfigTests (keras-*.json) with Keras 3:
/root/.venvs/rnn-dist-keras/bin/python Tests/RNNTests/Fixtures/make_fixtures.py
Vocabulary 18 and maxlen 40 (the tests put the toy dataset's vocabulary in). Not part of the build."""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
from keras import layers

here = os.path.dirname(os.path.abspath(__file__))


def write(name, model_layers):
    model = keras.Sequential([keras.Input((40,), dtype="int32")] + model_layers)
    with open(os.path.join(here, f"keras-{name}.json"), "w") as f:
        f.write(json.dumps(json.loads(model.to_json()), indent=1) + "\n")


models = {
    # 6.1: Embedding + Flatten + Dense (the book's maxlen 20 there; 40 here like the toy data).
    "flatten": [layers.Embedding(18, 8), layers.Flatten(), layers.Dense(1, activation="sigmoid")],
    # 6.4's convnet, its sizes scaled to 40 steps: 40 → 36 → 12 → 8 → 1, logits out.
    "convnet": [layers.Embedding(18, 8), layers.Conv1D(4, 5, activation="relu"), layers.MaxPooling1D(3),
                layers.Conv1D(4, 5, activation="relu"), layers.GlobalMaxPooling1D(), layers.Dense(1)],
    # 6.4.4: Conv1D → MaxPooling1D → Conv1D → GRU with dropout.
    "convgru": [layers.Embedding(18, 8), layers.Conv1D(4, 5, activation="relu"), layers.MaxPooling1D(3),
                layers.Conv1D(4, 5, activation="relu"), layers.GRU(6, dropout=0.1, recurrent_dropout=0.5),
                layers.Dense(1, activation="sigmoid")],
    # Every other option once: a frozen embedding, Dropout on a sequence and on a vector, same and
    # causal padding, strided same pooling, go_backwards with return_sequences, average pooling, and
    # hidden Dense layers with each activation.
    "mixed": [layers.Embedding(18, 8, trainable=False), layers.Dropout(0.25),
              layers.Conv1D(6, 4, padding="same", activation="tanh"), layers.MaxPooling1D(3, strides=2, padding="same"),
              layers.Conv1D(5, 2, padding="causal", activation="sigmoid"),
              layers.LSTM(6, go_backwards=True, return_sequences=True), layers.GlobalAveragePooling1D(),
              layers.Dense(7, activation="relu"), layers.Dropout(0.2), layers.Dense(5, activation="tanh"),
              layers.Dense(4), layers.Dense(1, activation="sigmoid")],
    # use_bias=False on each layer kind that has a bias.
    "nobias": [layers.Embedding(18, 8), layers.Conv1D(4, 3, use_bias=False, activation="relu"),
               layers.Bidirectional(layers.GRU(5, use_bias=False, return_sequences=True)),
               layers.SimpleRNN(4, use_bias=False, return_sequences=True), layers.LSTM(3, use_bias=False),
               layers.Dense(6, use_bias=False, activation="tanh"), layers.Dense(1, activation="sigmoid", use_bias=False)],
}
for name in sys.argv[1:] or models:
    write(name, models[name])
