#!/usr/bin/env python3
"""Keras 3 reference run of the same IMDB classifiers, for Launch/bench.py to time rnn-dist against.

usage: python Launch/keras_imdb.py IMDB.h5 MODEL EPOCHS [--batch-size 128] [--threads 2] [--json OUT]
                                   [--units 32] [--embed-dim 32] [--layers 1] [--limit N] [--test-limit N]
                                   [--seed 1] [--bidirectional] [--dropout R] [--recurrent-dropout R]
                                   [--gru-reset-after true|false]

IMDB.h5 is a file written by `rnn-dist prepare` (see docs/DATASET.md): int32 /train/x and /test/x of
shape (N, maxlen), int8 /train/y and /test/y, and the root attribute num_words; a dataset of K > 2
classes also has the root attribute num_classes and the string list /class_names (bytes + offsets, as
/vocab), and y holds class indices 0..K-1 (a file without them has the two classes neg, pos). MODEL is
simple-rnn, lstm or gru. The network is the one `rnn-dist train` builds, with Keras 3's default
initializers:

    Input(maxlen, int32) -> Embedding(num_words, embed_dim) -> RNN(units) x layers -> Dense(1, sigmoid)
                                                                       (K > 2 classes: Dense(K, softmax))

(every recurrent layer but the last returns sequences; with --bidirectional each is wrapped in
Bidirectional(merge_mode="concat"); --dropout/--recurrent-dropout are the layers' dropout rates;
--gru-reset-after false builds GRU(reset_after=False)), compiled with RMSprop(learning_rate=1e-3) and
binary cross-entropy (K > 2 classes: sparse categorical cross-entropy), fitted with batch_size 128 and
validation_split 0.2 (the trailing 20 % of the training rows, as rnn-dist), then evaluated on the test
split. --limit takes the first N training rows
(as `rnn-dist train --limit`), --test-limit the first N test rows: quick trials only.

Output: one JSON object per line on stdout for every epoch
    {"model", "epoch", "seconds", "loss", "acc", "val_loss", "val_acc", "train_samples"}
then one for the test split
    {"model", "split": "test", "loss", "acc", "samples", "eval_seconds", "keras", "tensorflow"};
with K > 2 classes that line also has "num_classes", "classes" (names), "macro_f1", "per_class"
[{"name", "precision", "recall", "f1", "support"}], "macro_avg" and "weighted_avg" {"precision",
"recall", "f1"}, "confusion_matrix" (rows = actual class, columns = predicted, as `rnn-dist eval
--json`) and "predict_seconds", computed with NumPy from model.predict's argmax on the test split
(a class with no prediction has precision 0, one without support recall 0, F1 0 when both are 0;
the macro average is over all K classes);
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
    p.add_argument("model", choices=CELLS + ("json",), help="recurrent cell (json: --model-json's model)")
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
    p.add_argument("--model-json", metavar="FILE",
                   help="build the model with keras.models.model_from_json(FILE) instead (what `rnn-dist train "
                        "--model-config FILE` trains); a last Dense(1) without activation is trained on logits "
                        "(from_logits=True, accuracy at threshold 0)")
    p.add_argument("--lr", type=float, default=1e-3, help="RMSprop learning rate")
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
    if not os.path.isfile(a.data):
        p.error(f"{a.data}: no such file (a dataset written by rnn-dist prepare)")
    if a.model == "json" and not a.model_json:
        p.error("the model json needs --model-json FILE")
    if a.model_json and (not os.path.exists(a.model_json) or os.path.isdir(a.model_json)):   # a pipe is fine
        p.error(f"--model-json {a.model_json}: no such file")
    return a


def load_split(f, split, limit, num_classes=2):
    """(x int32 (N, maxlen), y (N)) of one split, the first `limit` rows when given: y float32 0/1 for two
    classes, int32 class indices for more."""
    rows = slice(None) if limit is None else slice(0, limit)
    x = f[f"{split}/x"][rows]
    y = f[f"{split}/y"][rows]
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise SystemExit(f"keras_imdb: {split}/x {x.shape} and {split}/y {y.shape} do not fit together")
    if y.size and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise SystemExit(f"keras_imdb: {split}/y holds {int(y.min())}..{int(y.max())}, outside 0..{num_classes - 1}")
    return x.astype("int32", copy=False), y.astype("float32" if num_classes <= 2 else "int32")


def string_list(group):
    """A string list stored as rnn-dist stores /vocab: uint8 `bytes` and int64 `offsets` (count + 1)."""
    raw = group["bytes"][...].tobytes()
    offsets = [int(o) for o in group["offsets"][...]]
    return [raw[offsets[k]:offsets[k + 1]].decode("utf-8", "replace") for k in range(len(offsets) - 1)]


def dataset_classes(f):
    """The dataset's class names: /class_names, or neg, pos for files written before it existed."""
    names = string_list(f["class_names"]) if "class_names" in f else ["neg", "pos"]
    k = int(f.attrs.get("num_classes", len(names)))
    if k != len(names) or k < 2:
        raise SystemExit(f"keras_imdb: num_classes {k} and /class_names ({len(names)} names) do not fit together")
    return names


def classification_report(y_true, y_pred, names):
    """Per-class precision, recall, F1 and support, their macro and support-weighted averages and the
    confusion matrix (rows = actual class, columns = predicted), with NumPy."""
    import numpy as np
    k = len(names)
    cm = np.bincount(np.asarray(y_true, np.int64) * k + np.asarray(y_pred, np.int64), minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(np.float64)
    predicted, support = cm.sum(axis=0).astype(np.float64), cm.sum(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    weights = support / support.sum() if support.sum() else np.zeros(k)
    avg = lambda w: {"precision": float(precision @ w), "recall": float(recall @ w), "f1": float(f1 @ w)}  # noqa: E731
    return {"per_class": [{"name": n, "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                           "support": int(support[i])} for i, n in enumerate(names)],
            "macro_avg": avg(np.full(k, 1.0 / k)), "weighted_avg": avg(weights),
            "confusion_matrix": cm.tolist(), "accuracy": float(tp.sum() / max(1, cm.sum()))}


def build_model(keras, kind, num_words, maxlen, embed_dim, units, layers, bidirectional=False, dropout=0.0,
                recurrent_dropout=0.0, reset_after=True, num_classes=2):
    """The rnn-dist network as a Keras Sequential (layer classes named as in the weights file); its head
    is Dense(1, sigmoid) for two classes, Dense(num_classes, softmax) for more."""
    cell = {"simple-rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[kind]
    options = {"dropout": dropout, "recurrent_dropout": recurrent_dropout}
    if kind == "gru":
        options["reset_after"] = reset_after
    stack = [keras.Input(shape=(maxlen,), dtype="int32"), keras.layers.Embedding(num_words, embed_dim)]
    for i in range(layers):
        layer = cell(units, return_sequences=(i < layers - 1), **options)
        stack.append(keras.layers.Bidirectional(layer) if bidirectional else layer)
    stack.append(keras.layers.Dense(1, activation="sigmoid") if num_classes <= 2
                 else keras.layers.Dense(num_classes, activation="softmax"))
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
        names = dataset_classes(f)
        x_train, y_train = load_split(f, "train", a.limit, len(names))
        x_test, y_test = load_split(f, "test", a.test_limit, len(names))
    maxlen = x_train.shape[1]

    keras.utils.set_random_seed(a.seed)
    binary = len(names) <= 2
    logits = False
    if a.model_json:
        with open(a.model_json, encoding="utf-8") as f:
            model = keras.models.model_from_json(f.read())
        last = model.layers[-1]
        logits = binary and last.units == 1 and last.get_config().get("activation") == "linear"
    else:
        model = build_model(keras, a.model, num_words, maxlen, a.embed_dim, a.units, a.layers, a.bidirectional,
                            a.dropout, a.recurrent_dropout, a.gru_reset_after == "true", len(names))
    if logits:
        loss, metric = keras.losses.BinaryCrossentropy(from_logits=True), keras.metrics.BinaryAccuracy(name="acc", threshold=0.0)
    else:
        loss = "binary_crossentropy" if binary else "sparse_categorical_crossentropy"
        metric = "acc" if binary else keras.metrics.SparseCategoricalAccuracy(name="acc")
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=a.lr), loss=loss, metrics=[metric])

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
    row = {"model": a.model, "split": "test", "loss": float(loss), "acc": float(acc),
           "samples": int(x_test.shape[0]), "eval_seconds": round(time.perf_counter() - started, 3),
           "keras": keras.__version__, "tensorflow": tf.__version__}
    if not binary:
        started = time.perf_counter()
        predicted = model.predict(x_test, batch_size=512, verbose=0).argmax(axis=1)
        report = classification_report(y_test, predicted, names)
        row.update(num_classes=len(names), classes=names, macro_f1=report["macro_avg"]["f1"],
                   predict_seconds=round(time.perf_counter() - started, 3),
                   **{k: report[k] for k in ("per_class", "macro_avg", "weighted_avg", "confusion_matrix")})
    emit(row)

    if a.json:
        with open(a.json, "w") as out:
            json.dump(rows, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
