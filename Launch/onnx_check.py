#!/usr/bin/env python3
"""Checks `rnn-dist export --onnx`: onnxruntime, given the exported model, computes what `rnn-dist predict` prints.

usage: python Launch/onnx_check.py [--bin PATH/rnn-dist] [--tolerance 1e-5] [--only NAME ...]
                                   [--epochs 3] [--keep DIR] [--json OUT]

  1. Two small synthetic datasets are written as class folders (DIR/{train,test}/<class>/*.txt: two
     classes neg/pos, and three classes for a softmax model) and prepared by `rnn-dist prepare`
     (num_words 60, maxlen 40).
  2. Each model below is trained with the binary for a few epochs (`rnn-dist train --limit 320 --lr 0.01`; the
     preset flags, or --model-config with a Keras Sequential JSON written here), so its weights are no
     longer the initial ones.
  3. `rnn-dist export --onnx` writes the model; onnx.checker.check_model(full_check=True) must accept
     it, and its input must be input_ids int64 [batch, maxlen], its output probabilities float [batch, K].
  4. The same texts are scored by `rnn-dist predict --json` (raw text, tokenized by rnn-dist) and by
     onnxruntime on the ids encoded here (Launch/keras_check.py's encode: Launch/py_tokenize_reference.py's
     tokenizer with the file's vocabulary): keras_check's fixed and pseudo-random reviews plus 64 test
     rows of the dataset written back as text (each checked to encode to exactly its stored row). The
     largest |p_onnx - p_predict| over every text and class must be at most --tolerance; the first rows
     are also run one at a time (a batch of 1) and must agree with the batched run as closely.

Prints a table (model, texts, the range of the last class's probability over the texts, max abs diff,
batch of 1 against the batch, result, ONNX operators) and exits 1 when any model fails,
2 on a set-up problem. onnx, onnxruntime, numpy and h5py are not dependencies of rnn-dist: run this
with the benchmark's virtual environment (~/.venvs/rnn-dist-keras); started by another Python without
them, the script re-runs itself with that environment's Python when it exists.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
from keras_check import reexec_with_venv_if_needed as reexec_with  # noqa: E402

NUM_WORDS, MAXLEN = 60, 40
POSITIVE = ["great", "wonderful", "loved", "superb", "brilliant", "moving", "fun", "best"]
NEGATIVE = ["awful", "boring", "hated", "terrible", "worst", "dull", "waste", "poor"]
MIXED = ["uneven", "okay", "average", "partly", "sometimes", "mixed", "fine", "middling"]
NEUTRAL = ["the", "movie", "film", "plot", "actor", "scene", "story", "a", "and", "it", "was", "this", "of", "to",
           "in", "ending", "cast", "music", "time", "director's", "don't"]


def keras_json(layers, num_words, maxlen=None):
    """A Keras 3 Sequential's model.to_json() with only the options that differ from Keras's defaults
    (what `rnn-dist train --model-config` reads); the Embedding's input_dim is the dataset's num_words."""
    stack = ([{"class_name": "InputLayer", "config": {"batch_shape": [None, maxlen], "dtype": "int32"}}] if maxlen else [])
    for class_name, config in layers:
        stack.append({"class_name": class_name, "config": dict(config, input_dim=num_words) if class_name == "Embedding" else config})
    return json.dumps({"class_name": "Sequential", "config": {"name": "sequential", "trainable": True, "layers": stack}})


EMBED = ("Embedding", {"output_dim": 8})

# (name, dataset "2" or "3" classes, train flags or None, Keras layers or None, what the model exercises)
MODELS = [
    ("simple-rnn", "2", ["--model", "simple-rnn"], None),
    ("lstm", "2", ["--model", "lstm"], None),
    ("gru (reset_after=True)", "2", ["--model", "gru"], None),
    ("gru (reset_after=False)", "2", ["--model", "gru", "--gru-reset-after", "false"], None),
    ("bidirectional lstm", "2", ["--model", "lstm", "--bidirectional"], None),
    ("2 stacked gru (return_sequences)", "2", ["--model", "gru", "--layers", "2", "--dropout", "0.2"], None),
    ("bidirectional gru, softmax 3 classes", "3", ["--model", "gru", "--bidirectional"], None),
    ("go_backwards lstm (sequences) -> go_backwards simple-rnn", "2", None, [
        EMBED, ("LSTM", {"units": 8, "return_sequences": True, "go_backwards": True}),
        ("SimpleRNN", {"units": 6, "go_backwards": True}), ("Dense", {"units": 1, "activation": "sigmoid"})]),
    ("lstm no bias (sequences) -> global avg -> dense relu, logit", "2", None, [
        EMBED, ("LSTM", {"units": 8, "return_sequences": True, "use_bias": False}), ("GlobalAveragePooling1D", {}),
        ("Dense", {"units": 8, "activation": "relu"}), ("Dropout", {"rate": 0.3}), ("Dense", {"units": 1})]),
    ("convnet: conv relu, maxpool, conv same, global max, logit", "2", None, [
        EMBED, ("Conv1D", {"filters": 8, "kernel_size": 5, "activation": "relu"}), ("MaxPooling1D", {"pool_size": 3}),
        ("Conv1D", {"filters": 8, "kernel_size": 4, "padding": "same", "activation": "relu"}), ("GlobalMaxPooling1D", {}),
        ("Dense", {"units": 1})]),
    ("conv causal, maxpool same, gru, softmax 3 classes", "3", None, [
        EMBED, ("Conv1D", {"filters": 8, "kernel_size": 3, "padding": "causal", "activation": "tanh"}),
        ("MaxPooling1D", {"pool_size": 3, "strides": 2, "padding": "same"}), ("GRU", {"units": 8}),
        ("Dense", {"units": 3, "activation": "softmax"})]),
    ("flatten -> dense tanh", "2", None, [
        EMBED, ("Flatten", {}), ("Dense", {"units": 6, "activation": "tanh"}), ("Dense", {"units": 1, "activation": "sigmoid"})]),
]


def write_texts(root, classes, per_class, seed):
    """DIR/{train,test}/<class>/<i>.txt: each class leans on its own words, as Tests/TestSupport/ToyIMDB.swift."""
    rng = random.Random(seed)
    for split in ("train", "test"):
        for name, words in classes:
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(per_class):
                text = [rng.choice(words) if rng.random() < 0.25 else rng.choice(NEUTRAL) for _ in range(8 + rng.randrange(30))]
                with open(os.path.join(folder, f"{i}.txt"), "w", encoding="utf-8") as f:
                    f.write(" ".join(text).capitalize() + ".<br /><br />The End!")


def run(cmd, what):
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"), timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed ({r.returncode}): {(r.stderr.strip() or r.stdout.strip())[-1500:]}")
    return r.stdout


def check_model(args, work, name, classes, flags, layers, tokenize):
    import h5py
    import numpy as np
    import onnx
    import onnxruntime as ort
    from keras_check import WeightsInfo, dataset_reviews, encode, review_texts, rnn_dist_predict

    slug = "".join(c if c.isalnum() else "_" for c in name)[:40]
    run_dir = os.path.join(work, "runs", slug)
    data = os.path.join(work, f"data{classes}.h5")
    cmd = [args.bin, "train", "--data", data, "--run-dir", run_dir, "--epochs", str(args.epochs), "--limit", "320",
           "--batch-size", "32", "--lr", "0.01", "--seed", "5", "--log-format", "json"]
    model_json = None
    if layers is not None:
        model_json = os.path.join(work, f"{slug}.json")
        with h5py.File(data, "r") as f:
            num_words = int(f.attrs["num_words"])     # the toy texts have fewer distinct words than NUM_WORDS
        with open(model_json, "w") as f:
            f.write(keras_json(layers, num_words, MAXLEN if any(c == "Flatten" for c, _ in layers) else None))
        cmd += ["--model-config", model_json]
    else:
        cmd += flags + ["--units", "8", "--embed-dim", "8"]
    run(cmd, "rnn-dist train")
    weights = os.path.join(run_dir, "model.weights.h5")
    path = os.path.join(run_dir, "model.onnx")
    run([args.bin, "export", "--onnx", weights, "-o", path], "rnn-dist export --onnx")

    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    info = WeightsInfo(weights, model_json)
    K = len(info.class_names)
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    (inp,), (out,) = model.graph.input, model.graph.output
    want = [("input_ids", onnx.TensorProto.INT64, ["batch", MAXLEN]), ("probabilities", onnx.TensorProto.FLOAT, ["batch", K])]
    got = [(inp.name, inp.type.tensor_type.elem_type, dims(inp)), (out.name, out.type.tensor_type.elem_type, dims(out))]
    if got != want:
        raise ValueError(f"graph input/output {got}, expected {want}")
    if json.loads(dict((p.key, p.value) for p in model.metadata_props).get("class_names", "null")) != info.class_names:
        raise ValueError("the model's metadata class_names differ from the weights file's")
    ops = []
    for n in model.graph.node:
        if n.op_type not in ops:
            ops.append(n.op_type)

    texts = review_texts(info, tokenize, args.seed)
    x = [encode(info, tokenize, t) for t in texts]
    more, rows = dataset_reviews(info, tokenize, data, 64)
    texts, x = texts + more, x + rows

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    ids = np.asarray(x, dtype=np.int64)
    theirs = session.run(["probabilities"], {"input_ids": ids})[0].astype(np.float64)
    single = np.concatenate([session.run(["probabilities"], {"input_ids": ids[i:i + 1]})[0] for i in range(4)]).astype(np.float64)
    ours = np.asarray(rnn_dist_predict(args.bin, weights, texts, info.class_names), dtype=np.float64)
    if theirs.shape != ours.shape:
        raise ValueError(f"onnxruntime gave {theirs.shape}, predict {ours.shape}")
    diff = float(np.abs(theirs - ours).max())
    batch_diff = float(np.abs(single - theirs[:4]).max())
    spread = float(ours[:, -1].max() - ours[:, -1].min())
    return {"model": name, "ops": ops, "texts": len(texts), "classes": K, "max_abs_diff": diff,
            "batch1_max_abs_diff": batch_diff, "probability_spread": spread,
            "ok": diff <= args.tolerance and batch_diff <= args.tolerance}


def main():
    ap = argparse.ArgumentParser(description="Export rnn-dist models to ONNX and compare onnxruntime with rnn-dist predict.")
    default_bin = os.path.join(ROOT, ".build", "release", "rnn-dist")
    if not os.access(default_bin, os.X_OK):
        default_bin = os.path.join(ROOT, ".build", "debug", "rnn-dist")
    ap.add_argument("--bin", default=os.environ.get("RNN_DIST_BIN", default_bin),
                    help="the rnn-dist executable (default: $RNN_DIST_BIN, else .build/release/rnn-dist, else .build/debug/rnn-dist)")
    ap.add_argument("--tolerance", type=float, default=1e-5, help="largest allowed |p_onnx - p_predict| (default 1e-5)")
    ap.add_argument("--epochs", type=int, default=3, help="training epochs of each model (default 3)")
    ap.add_argument("--only", nargs="+", metavar="TEXT", help="check only the models whose name contains one of these")
    ap.add_argument("--seed", type=int, default=20240613, help="seed of the pseudo-random reviews")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR (datasets, runs, .onnx files) and keep it")
    ap.add_argument("--json", metavar="OUT", help="also write the results as a JSON list to OUT")
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        ap.error(f"--bin {args.bin}: not an executable file")
    if args.epochs < 1:
        ap.error("--epochs must be at least 1")
    reexec_with(("h5py", "numpy", "onnx", "onnxruntime"), "onnx_check", "onnx, onnxruntime, numpy and h5py",
                "~/.venvs/rnn-dist-keras/bin/pip install onnx onnxruntime h5py")
    import onnx
    import onnxruntime
    from py_tokenize_reference import tokenize

    models = [m for m in MODELS if not args.only or any(o in m[0] for o in args.only)]
    if not models:
        ap.error("--only matches no model")
    work = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="onnx-check-")
    os.makedirs(work, exist_ok=True)
    results, failed = [], 0
    try:
        for classes, sets in (("2", [("neg", NEGATIVE), ("pos", POSITIVE)]),
                              ("3", [("bad", NEGATIVE), ("good", POSITIVE), ("mixed", MIXED)])):
            source = os.path.join(work, f"texts{classes}")
            shutil.rmtree(source, ignore_errors=True)
            write_texts(source, sets, 200, seed=7 + int(classes))
            data = os.path.join(work, f"data{classes}.h5")
            run([args.bin, "prepare", "--source", source, "--format", "folders", "-o", data,
                 "--num-words", str(NUM_WORDS), "--maxlen", str(MAXLEN)], "rnn-dist prepare")
        for name, classes, flags, layers in models:
            try:
                r = check_model(args, work, name, classes, flags, layers, tokenize)
            except Exception as e:  # noqa: BLE001 - every failure is that model's FAIL row
                r = {"model": name, "ok": False, "error": " ".join(f"{type(e).__name__}: {e}".split())}
            results.append(r)
            failed += not r["ok"]
            if "error" in r:
                print(f"FAIL {name}: {r['error']}", flush=True)
            else:
                print(f"{'PASS' if r['ok'] else 'FAIL'} {name}: max |p_onnx - p_predict| {r['max_abs_diff']:.3g} over "
                      f"{r['texts']} texts x {r['classes']} classes", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print()
    w = max(len(r["model"]) for r in results)
    print(f"{'model':<{w}}  {'texts':>5}  {'p range':>7}  {'max |onnx - predict|':>20}  {'batch 1 vs N':>12}  result  ONNX operators (distinct, in graph order)")
    for r in results:
        if "error" in r:
            print(f"{r['model']:<{w}}  {'':>5}  {'':>7}  {'':>20}  {'':>12}  FAIL    {r['error'][:120]}")
            continue
        print(f"{r['model']:<{w}}  {r['texts']:>5}  {r['probability_spread']:>7.3f}  {r['max_abs_diff']:>20.3g}  {r['batch1_max_abs_diff']:>12.3g}  "
              f"{'PASS' if r['ok'] else 'FAIL':<6}  {' '.join(r['ops'])}")
    print(f"onnx_check: {len(results) - failed} of {len(results)} passed (tolerance {args.tolerance:g}; "
          f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__})")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
