#!/usr/bin/env python3
"""Keras 3 reference run of the same IMDB classifiers, for Launch/bench.py to time rnn-dist against.

usage: python Launch/keras_imdb.py IMDB.h5 MODEL EPOCHS [--batch-size 128] [--threads 2] [--json OUT]
                                   [--units 32] [--embed-dim 32] [--layers 1] [--limit N] [--test-limit N]
                                   [--seed 1] [--bidirectional] [--dropout R] [--recurrent-dropout R]
                                   [--gru-reset-after true|false]

IMDB.h5 is a file written by `rnn-dist prepare` (see docs/DATASET.md): int32 /train/x and /test/x of
shape (N, maxlen), int8 /train/y and /test/y, and the root attribute num_words. MODEL is simple-rnn,
lstm or gru. The network is the one `rnn-dist train` builds, with Keras 3's default initializers:

    Input(maxlen, int32) -> Embedding(num_words, embed_dim) -> RNN(units) x layers -> Dense(1, sigmoid)

(every recurrent layer but the last returns sequences; with --bidirectional each is wrapped in
Bidirectional(merge_mode="concat"); --dropout/--recurrent-dropout are the layers' dropout rates;
--gru-reset-after false builds GRU(reset_after=False)), compiled with RMSprop(learning_rate=1e-3) and
binary cross-entropy, fitted with batch_size 128 and validation_split 0.2 (the trailing 20 % of the
training rows, as rnn-dist), then evaluated on the test split. --limit takes the first N training rows
(as `rnn-dist train --limit`), --test-limit the first N test rows: quick trials only.

Output: one JSON object per line on stdout for every epoch
    {"model", "epoch", "seconds", "loss", "acc", "val_loss", "val_acc", "train_samples"}
then one for the test split
    {"model", "split": "test", "loss", "acc", "samples", "eval_seconds", "keras", "tensorflow"};
--json OUT also writes all of them as one JSON list (what Launch/bench.py reads).

It needs keras (3.x), tensorflow and h5py, which are NOT dependencies of rnn-dist: Launch/bench.py
runs it from its own virtual environment, ~/.venvs/rnn-dist-keras
(python3 -m venv ~/.venvs/rnn-dist-keras && ~/.venvs/rnn-dist-keras/bin/pip install tensorflow-cpu h5py).
"""
import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CELLS = ("simple-rnn", "lstm", "gru")


def parse_args(argv):
    p = argparse.ArgumentParser(description="Keras 3 baseline of rnn-dist's IMDB classifiers, timed per epoch.")
    p.add_argument("data", help="dataset written by `rnn-dist prepare`")
    p.add_argument("model", choices=CELLS, help="recurrent cell")
    p.add_argument("epochs", type=int, help="epochs to train")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads (inter-op: 1)")
    p.add_argument("--json", metavar="OUT", help="also write every row as one JSON list to OUT")
    p.add_argument("--units", type=int, default=32)
    p.add_argument("--embed-dim", type=int, default=32)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--limit", type=int, help="train on the first N training rows only")
    p.add_argument("--test-limit", type=int, help="evaluate on the first N test rows only")
    p.add_argument("--seed", type=int, default=1, help="keras.utils.set_random_seed")
    p.add_argument("--bidirectional", action="store_true", help="wrap every recurrent layer in Bidirectional")
    p.add_argument("--dropout", type=float, default=0.0, help="the recurrent layers' dropout")
    p.add_argument("--recurrent-dropout", type=float, default=0.0, help="the recurrent layers' recurrent_dropout")
    p.add_argument("--gru-reset-after", choices=("true", "false"), default="true", help="GRU reset_after")
    a = p.parse_args(argv)
    for name in ("dropout", "recurrent_dropout"):
        if not 0 <= getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be in [0, 1)")
    for name in ("epochs", "batch_size", "threads", "units", "embed_dim", "layers"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("limit", "test_limit"):
        if getattr(a, name) is not None and getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return a


def load_split(f, split, limit):
    """(x int32 (N, maxlen), y float32 (N)) of one split, the first `limit` rows when given."""
    rows = slice(None) if limit is None else slice(0, limit)
    x = f[f"{split}/x"][rows]
    y = f[f"{split}/y"][rows].astype("float32")
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise SystemExit(f"keras_imdb: {split}/x {x.shape} and {split}/y {y.shape} do not fit together")
    return x.astype("int32", copy=False), y


def build_model(keras, kind, num_words, maxlen, embed_dim, units, layers, bidirectional=False, dropout=0.0,
                recurrent_dropout=0.0, reset_after=True):
    """The rnn-dist network as a Keras Sequential (layer classes named as in the weights file)."""
    cell = {"simple-rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[kind]
    options = {"dropout": dropout, "recurrent_dropout": recurrent_dropout}
    if kind == "gru":
        options["reset_after"] = reset_after
    stack = [keras.Input(shape=(maxlen,), dtype="int32"), keras.layers.Embedding(num_words, embed_dim)]
    for i in range(layers):
        layer = cell(units, return_sequences=(i < layers - 1), **options)
        stack.append(keras.layers.Bidirectional(layer) if bidirectional else layer)
    stack.append(keras.layers.Dense(1, activation="sigmoid"))
    return keras.Sequential(stack)


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)

    import h5py
    import tensorflow as tf

    # Thread counts can only be set before TensorFlow runs its first op.
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    with h5py.File(a.data, "r") as f:
        if f.attrs.get("format") not in (b"rnn-dist-imdb", "rnn-dist-imdb"):
            print(f"keras_imdb: warning: {a.data} has no format = rnn-dist-imdb attribute", file=sys.stderr)
        num_words = int(f.attrs["num_words"])
        x_train, y_train = load_split(f, "train", a.limit)
        x_test, y_test = load_split(f, "test", a.test_limit)
    maxlen = x_train.shape[1]

    keras.utils.set_random_seed(a.seed)
    model = build_model(keras, a.model, num_words, maxlen, a.embed_dim, a.units, a.layers, a.bidirectional,
                        a.dropout, a.recurrent_dropout, a.gru_reset_after == "true")
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-3),
                  loss="binary_crossentropy", metrics=["acc"])

    rows = []

    def emit(row):
        rows.append(row)
        print(json.dumps(row), flush=True)

    train_samples = int(math.floor(x_train.shape[0] * (1.0 - 0.2)))  # as Keras splits off validation

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.started
            logs = logs or {}
            emit({"model": a.model, "epoch": epoch + 1, "seconds": round(seconds, 3),
                  **{k: float(logs[k]) for k in ("loss", "acc", "val_loss", "val_acc") if k in logs},
                  "train_samples": train_samples})

    model.fit(x_train, y_train, batch_size=a.batch_size, epochs=a.epochs, validation_split=0.2,
              shuffle=True, callbacks=[EpochClock()], verbose=0)

    started = time.perf_counter()
    loss, acc = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
    emit({"model": a.model, "split": "test", "loss": float(loss), "acc": float(acc),
          "samples": int(x_test.shape[0]), "eval_seconds": round(time.perf_counter() - started, 3),
          "keras": keras.__version__, "tensorflow": tf.__version__})

    if a.json:
        with open(a.json, "w") as out:
            json.dump(rows, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
