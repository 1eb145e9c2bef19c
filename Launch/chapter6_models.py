#!/usr/bin/env python3
"""Writes the Keras JSON (model.to_json()) of the book's chapter-6 IMDB models beyond 6.2's recurrent
ones, for `rnn-dist train --model-config` and Launch/keras_imdb.py --model-json (bench section chapter6).

usage: python Launch/chapter6_models.py OUTDIR [--num-words 10000]

  flatten.json   6.1: Input(20) -> Embedding(10000, 8) -> Flatten -> Dense(1, sigmoid)
  convnet.json   6.4: Input(500) -> Embedding(10000, 128) -> Conv1D(32, 7, relu) -> MaxPooling1D(5)
                      -> Conv1D(32, 7, relu) -> GlobalMaxPooling1D -> Dense(1)   (logits)
  convgru.json   6.4.4's Conv1D -> GRU stack on IMDB: Input(500) -> Embedding(10000, 32) -> Conv1D(32, 5, relu)
                      -> MaxPooling1D(3) -> Conv1D(32, 5, relu) -> GRU(32, dropout 0.1, recurrent_dropout 0.5)
                      -> Dense(1, sigmoid)

Needs keras 3 (the bench's ~/.venvs/rnn-dist-keras); not a dependency of rnn-dist.
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("outdir")
    p.add_argument("--num-words", type=int, default=10000)
    a = p.parse_args()
    import keras
    from keras import layers
    v = a.num_words
    models = {
        "flatten": (20, [layers.Embedding(v, 8), layers.Flatten(), layers.Dense(1, activation="sigmoid")]),
        "convnet": (500, [layers.Embedding(v, 128), layers.Conv1D(32, 7, activation="relu"), layers.MaxPooling1D(5),
                          layers.Conv1D(32, 7, activation="relu"), layers.GlobalMaxPooling1D(), layers.Dense(1)]),
        "convgru": (500, [layers.Embedding(v, 32), layers.Conv1D(32, 5, activation="relu"), layers.MaxPooling1D(3),
                          layers.Conv1D(32, 5, activation="relu"), layers.GRU(32, dropout=0.1, recurrent_dropout=0.5),
                          layers.Dense(1, activation="sigmoid")]),
    }
    os.makedirs(a.outdir, exist_ok=True)
    for name, (maxlen, stack) in models.items():
        model = keras.Sequential([keras.Input((maxlen,), dtype="int32")] + stack)
        with open(os.path.join(a.outdir, f"{name}.json"), "w") as f:
            f.write(model.to_json())
        print(os.path.join(a.outdir, f"{name}.json"))


if __name__ == "__main__":
    main()
