#!/usr/bin/env python3
"""Checks that rnn-dist's dropout is Keras 3's: Keras, given rnn-dist's masks, computes rnn-dist's training loss.

usage: python Launch/keras_dropout_check.py --bin PATH/rnn-dist --data IMDB.h5 [--tolerance 2e-6]

For each model (LSTM, GRU, reset-before GRU, SimpleRNN, bidirectional LSTM, two stacked bidirectional
GRUs; all with --dropout and --recurrent-dropout):
  1. `rnn-dist train --limit 2 --validation-split 0 --batch-size 1 --epochs 1 --optimizer sgd --lr 1e-30`
     trains two one-row batches: positions 0 and 1 of epoch 0's permutation of training rows 0 and 1.
     With that learning rate the weights do not move (w − 1e-30·g rounds to w, and zeros become
     ~1e-31), so history.csv's epoch loss is the mean of the two rows' training losses — with their
     dropout masks — at the weights the run wrote to model.weights.h5.
  2. Keras 3 loads model.weights.h5 into the same Sequential (Launch/keras_imdb.py's build_model),
     with `DropoutRNNCell.get_dropout_mask` / `get_recurrent_dropout_mask` replaced by rnn-dist's
     masks, computed here from their definition (docs/TRAINING.md §Dropout: a SplitMix64 hash of
     seed, epoch, position, layer, direction, input/recurrent, gate and unit), and computes the
     training-mode loss of each row at each position.
  3. One of the two assignments of rows to positions must give rnn-dist's loss within --tolerance;
     the other, and Keras without masks, must be more than 10× the tolerance away (or the check would
     prove nothing).
Prints one PASS/FAIL line per model; exits 1 when any fails, 2 on a set-up problem. Needs keras (3.x),
tensorflow and h5py (the benchmark's virtual environment, ~/.venvs/rnn-dist-keras, as keras_check.py).
"""
import argparse
import csv
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
from keras_check import REEXEC_MARK, VENV_PYTHON  # noqa: E402

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

M64 = (1 << 64) - 1
SITE = {"input": 1, "recurrent": 2}

MODELS = [
    ("lstm", ["--model", "lstm"]),
    ("gru", ["--model", "gru"]),
    ("gru reset-before", ["--model", "gru", "--gru-reset-after", "false"]),
    ("simple-rnn", ["--model", "simple-rnn"]),
    ("bidirectional lstm", ["--model", "lstm", "--bidirectional"]),
    ("bidirectional gru x2", ["--model", "gru", "--bidirectional", "--layers", "2"]),
]


def mix(x):
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def mask(count, rate, seed, epoch, position, layer, direction, site, gate):
    """rnn-dist's DropoutMask.fill: 1/(1 − rate) where kept, else 0 (float32)."""
    import numpy as np
    h = mix(seed ^ 0x64726F706F757421)
    h = mix(h ^ epoch)
    h = mix(h ^ position)
    h = mix(h ^ ((layer << 16) | (direction << 8) | (SITE[site] << 4) | gate))
    threshold = math.ceil(rate * 2.0 ** 53)
    keep = np.float32(1 / (1 - rate))
    return np.array([keep if (mix((h + j * 0xD1B54A32D192ED03) & M64) >> 11) >= threshold else 0
                     for j in range(count)], dtype=np.float32)


def reexec_with_venv_if_needed():
    """As keras_check.py: without keras here, run again with the benchmark's virtual environment."""
    try:
        import h5py  # noqa: F401
        import keras  # noqa: F401
        return
    except ImportError as e:
        missing = e.name
    if os.environ.get(REEXEC_MARK) != "1" and os.path.exists(VENV_PYTHON):
        os.environ[REEXEC_MARK] = "1"
        os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
    print(f"keras_dropout_check: cannot import {missing}: run with a Python that has keras (3.x), tensorflow and h5py",
          file=sys.stderr)
    sys.exit(2)


def main():
    ap = argparse.ArgumentParser(description="Keras 3 with rnn-dist's dropout masks computes rnn-dist's training loss.")
    ap.add_argument("--bin", default=os.environ.get("RNN_DIST_BIN", os.path.join(os.path.dirname(HERE), ".build", "release", "rnn-dist")))
    ap.add_argument("--data", required=True, help="a dataset written by `rnn-dist prepare`")
    ap.add_argument("--tolerance", type=float, default=2e-6, help="largest |loss_keras − loss_rnn-dist| (default 2e-6)")
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--recurrent-dropout", type=float, default=0.4)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        ap.error(f"--bin {args.bin}: not an executable file")
    if not os.path.isfile(args.data):
        ap.error(f"--data {args.data}: no such file")
    reexec_with_venv_if_needed()
    import h5py
    import keras
    import numpy as np
    from keras.src.layers.rnn import dropout_rnn_cell
    from keras_check import WeightsInfo

    with h5py.File(args.data, "r") as f:
        x = np.asarray(f["train/x"][:2], dtype=np.int32)
        y = np.asarray(f["train/y"][:2], dtype=np.float32)

    failed = 0
    for name, flags in MODELS:
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = os.path.join(tmp, "run")
            cmd = [args.bin, "train", "--data", args.data, "--run-dir", run_dir, "--limit", "2", "--validation-split", "0",
                   "--batch-size", "1", "--epochs", "1", "--optimizer", "sgd", "--lr", "1e-30", "--units", "8",
                   "--embed-dim", "8", "--seed", str(args.seed), "--dropout", str(args.dropout),
                   "--recurrent-dropout", str(args.recurrent_dropout), *flags]
            r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
            if r.returncode != 0:
                print(f"FAIL {name}: rnn-dist train failed: {r.stderr.strip()[-500:]}", flush=True)
                failed += 1
                continue
            with open(os.path.join(run_dir, "history.csv")) as h:
                ours = float(next(csv.DictReader(h))["loss"])
            info = WeightsInfo(os.path.join(run_dir, "model.weights.h5"))
            model = info.build(keras)
            model.load_weights(os.path.join(run_dir, "model.weights.h5"))

        # Which (layer, direction) each recurrent cell is, in rnn-dist's numbering.
        cells = {}
        for layer_index, layer in enumerate(l for l in model.layers if hasattr(l, "cell") or hasattr(l, "forward_layer")):
            if hasattr(layer, "forward_layer"):
                cells[id(layer.forward_layer.cell)] = (layer_index, 0)
                cells[id(layer.backward_layer.cell)] = (layer_index, 1)
            else:
                cells[id(layer.cell)] = (layer_index, 0)
        position = {"p": 0}

        def masks_for(cell, step_input, site, rate):
            layer, direction = cells[id(cell)]
            count = getattr(cell, "dropout_mask_count", None)
            width = int(step_input.shape[-1])
            ms = [keras.ops.convert_to_tensor(mask(width, rate, args.seed, 0, position["p"], layer, direction, site, g)[None, :])
                  for g in range(count or 1)]
            return ms if count else ms[0]

        def get_dropout_mask(cell, step_input):
            return masks_for(cell, step_input, "input", cell.dropout) if cell.dropout > 0 else None

        def get_recurrent_dropout_mask(cell, step_input):
            return masks_for(cell, step_input, "recurrent", cell.recurrent_dropout) if cell.recurrent_dropout > 0 else None

        original = (dropout_rnn_cell.DropoutRNNCell.get_dropout_mask,
                    dropout_rnn_cell.DropoutRNNCell.get_recurrent_dropout_mask)
        dropout_rnn_cell.DropoutRNNCell.get_dropout_mask = get_dropout_mask
        dropout_rnn_cell.DropoutRNNCell.get_recurrent_dropout_mask = get_recurrent_dropout_mask
        try:
            def loss(row, pos, training=True):
                position["p"] = pos
                p = float(np.asarray(model(x[row:row + 1], training=training))[0, 0])
                return -(y[row] * np.log(p) + (1 - y[row]) * np.log(1 - p))
            straight = (loss(0, 0) + loss(1, 1)) / 2
            swapped = (loss(1, 0) + loss(0, 1)) / 2
            unmasked = (loss(0, 0, False) + loss(1, 0, False)) / 2
        finally:
            (dropout_rnn_cell.DropoutRNNCell.get_dropout_mask,
             dropout_rnn_cell.DropoutRNNCell.get_recurrent_dropout_mask) = original
        best, other = sorted([straight, swapped], key=lambda v: abs(v - ours))
        ok = abs(best - ours) <= args.tolerance and abs(other - ours) > 10 * args.tolerance \
            and abs(unmasked - ours) > 10 * args.tolerance
        failed += 0 if ok else 1
        print(f"{'PASS' if ok else 'FAIL'} {name}: rnn-dist loss {ours:.9f}, Keras with its masks {best:.9f} "
              f"(|Δ| {abs(best - ours):.2g}, tolerance {args.tolerance:g}); other row order {other:.6f}, "
              f"no masks {unmasked:.6f}", flush=True)
    print(f"keras_dropout_check: {len(MODELS) - failed} of {len(MODELS)} passed (Keras {keras.__version__})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
