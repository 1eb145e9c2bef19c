#!/usr/bin/env python3
"""Checks that weights written by `rnn-dist train` are Keras 3 weights, and that Keras computes what we do.

usage: python Launch/keras_check.py --bin PATH/rnn-dist WEIGHTS.h5 [WEIGHTS.h5 ...]
                                    [--data IMDB.h5 [--rows 32]] [--tolerance 1e-6] [--threads 1]
                                    [--model-json MODEL.json] [--legacy] [--json OUT]

For every weights file (model.weights.h5 or best.weights.h5 of a run):
  1. the run's config is read from the file's /rnn_dist group (attribute `config`, JSON: model.kind,
     model.layers, model.units, model.embedDim, model.numWords, maxlen), the tokenizer settings from
     the attribute `tokenizer` and the vocabulary from /rnn_dist/vocab (bytes + offsets);
  2. the matching Keras 3 Sequential is built (Launch/keras_imdb.py's build_model: Embedding ->
     SimpleRNN|LSTM|GRU x layers, each optionally in Bidirectional, with the file's dropout rates and GRU
     reset_after -> Dense(1, sigmoid), or Dense(K, softmax) when the config's model.head is
     "softmax_sparse_categorical_crossentropy" and its last layer {"type": "dense", "units": K}, K > 2;
     the class names from /rnn_dist/class_names, neg and pos without it; Keras defaults) and the file
     is loaded, unchanged, with model.load_weights(); then every Keras variable is compared bit for bit with the tensor at its place
     in the file (layers/<name>/[forward_layer/|backward_layer/][cell/]vars/<i>), and every tensor of the
     file must be used;
  3. the same reviews are scored by `rnn-dist predict --json` (which tokenizes raw text with the
     vocabulary stored in the weights file) and by Keras's model.predict() on the same ids, encoded
     here with Launch/py_tokenize_reference.py's tokenizer and that vocabulary. The reviews are a
     fixed set (punctuation, `<br />`, apostrophes, accents, one longer than maxlen, one without any
     word) plus pseudo-random ones drawn from the whole vocabulary with out-of-vocabulary words, of
     lengths up to twice maxlen; with --data, also the first --rows rows of the test split, written
     back as text (and checked to encode to exactly the stored row).
     For a two-class model predict's "probability" (of class 1) is compared; for K > 2 classes every
     class's probability in predict's "probabilities" (keyed by class name, all K names required), and
     predict's "class" must name a class of highest probability;
  4. the same forward pass in float64 NumPy (float64_reference, the book's presets only) tells float32
     round-off from a real disagreement; with --legacy, the file is also exported with `rnn-dist export
     --keras-legacy` (Keras 2 HDF5) and that file loaded by Keras 3's legacy reader must predict the same.

--model-json MODEL.json (weights of `rnn-dist train --model-config MODEL.json`): step 2 builds the Keras
model with keras.models.model_from_json(MODEL.json's text), a fresh one per file, instead of from the
preset, so any architecture train --model-config accepts is checked (Embedding, Flatten, Dropout,
SimpleRNN/LSTM/GRU, Bidirectional(concat), Conv1D, MaxPooling1D, GlobalMax/AveragePooling1D, hidden Dense,
last Dense(1, sigmoid), Dense(1) linear or Dense(K, softmax)). The file's config
then need not be a preset; only num_words, maxlen, the class names and the head are read from it. Each
Keras variable's place in the file is Keras 3's save_weights layout, walked over the built model
(layers/<snake_case class name>[_<n>]/[forward_layer/|backward_layer/][cell/]vars/<i>); the checks of step
2 (bit for bit, every tensor used) and 3 follow unchanged. The Keras model's output must fit the file:
Dense(1) for two classes, sigmoid under the head "sigmoid_binary_crossentropy" and linear under
"linear_binary_crossentropy_from_logits" (rnn-dist trains that as logits and predict reports sigmoid(z),
so sigmoid(Keras's output) is compared), Dense(K, softmax) for K > 2 classes or for two (each class's
probability compared). A Sequential without an InputLayer is built for (None, maxlen). The float64 reference runs
when the file's config is a preset (not when a recurrent layer reads backwards or has no bias), and is reported null (skipped) otherwise. With --legacy, a refused or
failed export, or a legacy file Keras cannot load, is that file's FAIL with the reason, after its other
results.

Prints one line per file, PASS or FAIL with the largest |p_keras - p_rnn-dist| over all reviews (and
classes), and
exits 1 when any file fails to load or differs by more than --tolerance (absolute, on probabilities),
2 on a usage or set-up problem. Where the float64 reference runs it arbitrates: a probability more than
--tolerance from Keras's is still right when rnn-dist's is within --tolerance of the float64 value and
nearer it than Keras's, and Keras's within 10 × --tolerance of it (Keras's own float32 round-off; the
line says how many were so judged). The Keras 2 export (--legacy) must predict what Keras predicts
from the Keras 3 file, within --tolerance.

Keras, TensorFlow and h5py are not dependencies of rnn-dist. Run this with the benchmark's virtual
environment (~/.venvs/rnn-dist-keras, see Launch/bench); started by another Python without Keras, the
script re-runs itself with that environment's Python when it exists.
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV_PYTHON = os.path.expanduser("~/.venvs/rnn-dist-keras/bin/python")
REEXEC_MARK = "RNN_DIST_KERAS_CHECK_REEXEC"

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Hand-written reviews exercising the tokenizer's rules (no capital Sigma: Python's str.lower() applies
# the final-sigma rule and rnn-dist does not, see Launch/py_tokenize_reference.py).
FIXED_REVIEWS = [
    "A wonderful film.",
    "Dull and far too long.",
    "This movie was terrible, I couldn't believe how bad the acting was!<br /><br />Avoid it.",
    "One of the best films of the 80's: rock'n'roll, great music and a story that doesn't let go.",
    "I didn't like it... the plot was 'predictable' and the ending -- well -- a let-down_really.",
    "Café, naïve, ÉCOLE, Straße and don’t: accents, capitals and a curly apostrophe.",
    "10/10 would watch again 🎬🍿 — simply brilliant, 2nd time even better than the 1st.",
    "?!... --- !!!",
    "THE WORST. THE WORST EVER. <BR />Seriously, <br/>the worst.",
]


def reexec_with_venv_if_needed(modules=("h5py", "keras"), tool="keras_check",
                                needs="keras (3.x), tensorflow and h5py",
                                install="python3 -m venv ~/.venvs/rnn-dist-keras && ~/.venvs/rnn-dist-keras/bin/pip install "
                                        "tensorflow-cpu h5py"):
    """Returns when `modules` import; else re-runs the calling script (sys.argv[0]) once with the
    benchmark's virtual environment when it exists, else exits 2 saying what to install."""
    import importlib
    try:
        for m in modules:
            importlib.import_module(m)
        return
    except ImportError as e:
        missing = e.name
    venv = os.path.dirname(os.path.dirname(VENV_PYTHON))
    if os.environ.get(REEXEC_MARK) != "1" and os.path.exists(VENV_PYTHON) \
            and os.path.realpath(sys.prefix) != os.path.realpath(venv):
        os.environ[REEXEC_MARK] = "1"
        os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(sys.argv[0])] + sys.argv[1:])
    print(f"{tool}: cannot import {missing}: run with a Python that has {needs}, e.g. {install}", file=sys.stderr)
    sys.exit(2)


def text_attr(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


HEADS = {"sigmoid_binary_crossentropy": "sigmoid", "softmax_sparse_categorical_crossentropy": "softmax"}


def preset(model):
    """The book's model fields (kind, layers, units, embedDim, numWords, …, numClasses) of a stored model
    config: files from before 2026-12-04 store them as they are; later files store a list of layers, which
    must have the preset's shape (Embedding, recurrent layers alike but for return_sequences, then
    Dense(1) under the sigmoid head or Dense(K), K > 2, under the softmax head)."""
    if "kind" in model:
        return dict(model, numClasses=2)
    layers = model["layers"]
    rec = [l for l in layers if l["type"] == "recurrent"]
    head = HEADS.get(model.get("head"))
    last = layers[-1] if layers else {}
    units = last.get("units") if isinstance(last, dict) else None
    good_head = (head == "sigmoid" and units == 1) or \
        (head == "softmax" and isinstance(units, int) and not isinstance(units, bool) and units > 2)
    if (not good_head or layers[0]["type"] != "embedding" or not rec
            or set(last) != {"type", "units"} or last["type"] != "dense" or len(rec) != len(layers) - 2
            or any({k: v for k, v in l.items() if k != "return_sequences"}
                   != {k: v for k, v in rec[0].items() if k != "return_sequences"} for l in rec)):
        raise ValueError("the model is not one of the book's recurrent classifiers; this check builds those only")
    r = rec[0]
    # Keras options no train flag sets (rnn-dist names such a model by its layers, as here).
    if r.get("go_backwards", False) or not r.get("use_bias", True):
        raise ValueError("the model's recurrent layers read backwards or have no bias; this check builds the book's only")
    return {"kind": r["kind"], "layers": len(rec), "units": r["units"], "embedDim": layers[0]["output_dim"],
            "numWords": layers[0]["input_dim"], "bidirectional": r["bidirectional"], "dropout": r["dropout"],
            "recurrentDropout": r["recurrent_dropout"], "resetAfter": r["reset_after"],
            "numClasses": 2 if head == "sigmoid" else units}


class WeightsInfo:
    """What keras_check needs from one rnn-dist weights file, read with h5py (never with Keras). With
    `model_json` (--model-json's file name) the config need not be a preset: `self.preset` is then False
    and the preset fields (kind, layers, units, …) None."""

    def __init__(self, path, model_json=None):
        import h5py
        import numpy as np
        with h5py.File(path, "r") as f:
            if "rnn_dist" not in f:
                raise ValueError("no /rnn_dist group: not a weights file written by rnn-dist")
            g = f["rnn_dist"]
            fmt = text_attr(g.attrs.get("format", b""))
            if fmt != "rnn-dist-weights":
                raise ValueError(f"/rnn_dist@format is '{fmt}', not 'rnn-dist-weights' "
                                 "(pass model.weights.h5 or best.weights.h5, not a checkpoint)")
            self.config = json.loads(text_attr(g.attrs["config"]))
            self.tokenizer = json.loads(text_attr(g.attrs["tokenizer"]))
            raw = g["vocab/bytes"][...].tobytes()
            offsets = g["vocab/offsets"][...]
            self.vocab = [raw[offsets[k]:offsets[k + 1]].decode("utf-8") for k in range(len(offsets) - 1)]
            self.class_names = ["neg", "pos"]
            if "class_names" in g:
                raw = g["class_names/bytes"][...].tobytes()
                offsets = g["class_names/offsets"][...]
                self.class_names = [raw[offsets[k]:offsets[k + 1]].decode("utf-8") for k in range(len(offsets) - 1)]
            self.tensors = {}

            def keep(name, obj):
                if isinstance(obj, h5py.Dataset) and not name.startswith("rnn_dist/"):
                    self.tensors[name] = np.asarray(obj[...])
            f.visititems(keep)
        self.model_json = model_json
        self.head = self.config["model"].get("head", "sigmoid_binary_crossentropy")
        if model_json is not None:
            try:
                m = preset(self.config["model"])
            except ValueError:
                self.init_custom(self.config["model"])
                return
        m = preset(self.config["model"])
        self.preset = True
        self.kind, self.layers, self.units = m["kind"], int(m["layers"]), int(m["units"])
        self.embed_dim, self.num_words = int(m["embedDim"]), int(m["numWords"])
        self.bidirectional = bool(m.get("bidirectional", False))
        self.dropout, self.recurrent_dropout = float(m.get("dropout", 0)), float(m.get("recurrentDropout", 0))
        self.reset_after = bool(m.get("resetAfter", True))
        self.num_classes = int(m["numClasses"])
        self.output_units = 1 if self.num_classes == 2 else self.num_classes
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"the model has {self.num_classes} classes, /rnn_dist/class_names {len(self.class_names)} names")
        self.init_tokens()

    def init_tokens(self):
        self.maxlen = int(self.config["maxlen"])
        self.index_from = int(self.tokenizer.get("index_from", 3))
        self.start_char = int(self.tokenizer.get("start_char", 1))
        self.oov_char = int(self.tokenizer.get("oov_char", 2))
        if len(self.vocab) != self.num_words - self.index_from - 1:
            raise ValueError(f"vocabulary has {len(self.vocab)} words, num_words {self.num_words} needs "
                             f"{self.num_words - self.index_from - 1}")
        self.ids = {w: k + self.index_from + 1 for k, w in enumerate(self.vocab)}

    def init_custom(self, model):
        """A --model-config model that is not a preset: the fields the check needs, from its layer list."""
        layers = model.get("layers")
        if not isinstance(layers, list) or not layers or not all(isinstance(l, dict) for l in layers) \
                or layers[0].get("type") != "embedding" or layers[-1].get("type") != "dense":
            raise ValueError("the file's model config is not a layer list from Embedding to Dense")
        self.preset = False
        self.kind = self.layers = self.units = None
        self.bidirectional, self.dropout, self.recurrent_dropout, self.reset_after = None, None, None, None
        self.num_words = int(layers[0]["input_dim"])
        self.embed_dim = int(layers[0]["output_dim"])
        units = int(layers[-1]["units"])
        self.num_classes = 2 if units == 1 else units
        self.output_units = units   # Dense(2, softmax) is a two-class model too
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"the model has {self.num_classes} classes, /rnn_dist/class_names {len(self.class_names)} names")
        self.init_tokens()

    def describe_custom(self):
        parts = []
        for l in self.config["model"]["layers"]:
            t = l.get("type")
            if t == "embedding":
                parts.append(f"embedding {l['input_dim']}x{l['output_dim']}")
            elif t == "recurrent":
                opts = [f"dropout {l['dropout']:g}"] if l.get("dropout") else []
                opts += [f"recurrent dropout {l['recurrent_dropout']:g}"] if l.get("recurrent_dropout") else []
                opts += ["reset-before"] if l.get("kind") == "gru" and not l.get("reset_after", True) else []
                opts += ["sequences"] if l.get("return_sequences") else []
                parts.append(("bidirectional " if l.get("bidirectional") else "") + f"{l.get('kind')}({l.get('units')})"
                             + (f" [{', '.join(opts)}]" if opts else ""))
            else:
                keys = [k for k in ("units", "filters", "kernel_size", "pool_size", "strides", "padding", "activation", "rate",
                                    "average", "trainable", "go_backwards") if k in l]
                parts.append(f"{t}({', '.join(f'{k} {l[k]}' for k in keys)})")
        return f"{' -> '.join(parts)}, head {self.head}, num_words {self.num_words}, maxlen {self.maxlen}"

    def describe(self):
        if self.model_json is not None:
            text = self.describe_preset() if self.preset else self.describe_custom()
            return f"{text}; Keras model from {self.model_json}"
        return self.describe_preset()

    def describe_preset(self):
        extra = (" bidirectional" if self.bidirectional else "") + \
            (" reset-before" if self.kind == "gru" and not self.reset_after else "") + \
            (f" dropout {self.dropout:g}/{self.recurrent_dropout:g}" if self.dropout or self.recurrent_dropout else "")
        return (f"{self.kind}{extra} {self.layers}x{self.units}, embed {self.embed_dim}, "
                f"num_words {self.num_words}, maxlen {self.maxlen}"
                + (f", softmax over {self.num_classes} classes" if self.num_classes > 2 else ""))

    def build(self, keras):
        from keras_imdb import build_model
        return build_model(keras, self.kind, self.num_words, self.maxlen, self.embed_dim, self.units, self.layers,
                           self.bidirectional, self.dropout, self.recurrent_dropout, self.reset_after, self.num_classes)

    def tensor_paths(self):
        """Where rnn-dist puts each Keras variable, in the order of model.weights (WeightsFile.swift)."""
        base = {"simple-rnn": "simple_rnn", "lstm": "lstm", "gru": "gru"}[self.kind]
        if self.bidirectional:
            base = "bidirectional"
        paths = ["layers/embedding/vars/0"]
        for i in range(self.layers):
            name = base if i == 0 else f"{base}_{i}"
            for sub in (["forward_layer/", "backward_layer/"] if self.bidirectional else [""]):
                paths += [f"layers/{name}/{sub}cell/vars/{k}" for k in range(3)]
        return paths + ["layers/dense/vars/0", "layers/dense/vars/1"]


def snake_case(name):
    """Keras 3's naming.to_snake_case: the group name save_weights gives a layer of that class."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def keras_variable_paths(keras, model):
    """Where Keras 3's save_weights puts each variable of `model` (a Sequential of the layers --model-json
    supports), in the order of model.weights: layers/<snake_case class>[_<n>], n counting earlier layers of
    the same class; Bidirectional's forward_layer/ and backward_layer/, a recurrent layer's cell/; each
    layer's own variables under vars/<i>."""
    paths = {}

    def own(layer, prefix):
        for i, v in enumerate(layer.weights):
            paths[id(v)] = f"{prefix}/vars/{i}"

    def walk(layer, prefix):
        if isinstance(layer, keras.layers.Bidirectional):
            walk(layer.forward_layer, prefix + "/forward_layer")
            walk(layer.backward_layer, prefix + "/backward_layer")
        elif isinstance(layer, keras.layers.RNN):
            own(layer.cell, prefix + "/cell")
        elif isinstance(layer, (keras.layers.Embedding, keras.layers.Dense, keras.layers.InputLayer,
                                keras.layers.Conv1D, keras.layers.Flatten, keras.layers.Dropout,
                                keras.layers.MaxPooling1D, keras.layers.GlobalMaxPooling1D,
                                keras.layers.GlobalAveragePooling1D)):
            own(layer, prefix)
        else:
            raise ValueError(f"the Keras model has a {type(layer).__name__} layer ({layer.name}); rnn-dist "
                             "trains InputLayer, Embedding, Flatten, Dropout, SimpleRNN/LSTM/GRU, Bidirectional, "
                             "Conv1D, MaxPooling1D, GlobalMax/AveragePooling1D and Dense only")

    used = {}
    for layer in model.layers:
        name = snake_case(type(layer).__name__)
        used[name] = used.get(name, -1) + 1
        walk(layer, f"layers/{name}" + (f"_{used[name]}" if used[name] else ""))
    missing = [v.path for v in model.weights if id(v) not in paths]
    if missing or len(paths) != len(model.weights):
        raise ValueError(f"cannot place the Keras variables {', '.join(missing) or '(count differs)'} in the "
                         "save_weights layout")
    return [paths[id(v)] for v in model.weights]


def layout_problems(model, paths, info):
    """Before load_weights (whose errors print whole tensors): every Keras variable's place in the file
    and shape, and every tensor of the file used; a short list of what does not match."""
    problems = []
    for v, p in zip(model.weights, paths):
        if p not in info.tensors:
            problems.append(f"Keras's {v.path} {tuple(v.shape)} would be {p}, not in the file")
        elif tuple(info.tensors[p].shape) != tuple(v.shape):
            problems.append(f"Keras's {v.path} is {tuple(v.shape)}, the file's {p} {tuple(info.tensors[p].shape)}")
    unused = sorted(set(info.tensors) - set(paths))
    if unused:
        problems.append(f"the file's {', '.join(unused)} fit no Keras variable")
    return problems


def keras_output(keras, model, info):
    """How the Keras model's output becomes predict's probabilities: "sigmoid" (Dense(1) linear: logits),
    "as is" (Dense(1, sigmoid) or Dense(K, softmax)); raises when the output layer does not fit the file."""
    last = model.layers[-1] if model.layers else None
    if not isinstance(last, keras.layers.Dense):
        raise ValueError(f"the Keras model's last layer is {type(last).__name__}, not Dense")
    act = last.get_config().get("activation")
    act = act if isinstance(act, str) else json.dumps(act)
    want = info.output_units
    if last.units != want:
        raise ValueError(f"the Keras model ends in Dense({last.units}); the weights file's model has "
                         f"{info.num_classes} classes (Dense({want}))")
    expected = {"sigmoid_binary_crossentropy": "sigmoid", "linear_binary_crossentropy_from_logits": "linear",
                "softmax_sparse_categorical_crossentropy": "softmax"}.get(info.head)
    if expected is None:
        raise ValueError(f"the weights file's head is {info.head!r}, which this check does not know")
    if act != expected:
        raise ValueError(f"the Keras model ends in Dense({last.units}, {act}); the weights file's head "
                         f"{info.head} needs Dense({want}, {expected})")
    return "sigmoid" if act == "linear" else "as is"


def encode(info, tokenize, text):
    """`rnn-dist predict`'s model input for one review: [start] + ids, last maxlen, left-padded with 0."""
    seq = [info.start_char]
    for token in tokenize(text.encode("utf-8")):
        i = info.ids.get(token, info.oov_char)
        seq.append(i if i < info.num_words else info.oov_char)
    seq = seq[-info.maxlen:]
    return [0] * (info.maxlen - len(seq)) + seq


def synthetic_reviews(info, tokenize, seed, count=24):
    """Reviews of vocabulary words (any id, rare ones too) and out-of-vocabulary words, lengths up to 2·maxlen."""
    rng = random.Random(seed)
    words = [w for w in info.vocab if tokenize(w.encode("utf-8")) == [w]]
    if not words:
        return []
    unknown = ["qzxjvk", "zzyzxq", "xqwzvj"]
    unknown = [w for w in unknown if w not in info.ids]
    T = info.maxlen
    lengths = [1, 2, 5, 20, max(1, T - 2), max(1, T - 1), T, T + 1, 2 * T]
    while len(lengths) < count:
        lengths.append(rng.randint(1, 2 * T))
    out = []
    for n in lengths[:count]:
        picked = [rng.choice(unknown) if unknown and rng.random() < 0.05 else rng.choice(words) for _ in range(n)]
        out.append(" ".join(picked))
    return out


def review_texts(info, tokenize, seed):
    """The fixed reviews, one longer than maxlen, and the pseudo-random ones."""
    long_one = " ".join(["an outstanding", "performance", "by everyone involved"] * (info.maxlen // 5 + 2))
    return list(FIXED_REVIEWS) + [long_one] + synthetic_reviews(info, tokenize, seed)


def dataset_reviews(info, tokenize, data_path, rows):
    """The first `rows` test rows as text that encodes back to exactly the stored row, with those rows."""
    import h5py
    with h5py.File(data_path, "r") as f:
        if int(f.attrs["num_words"]) != info.num_words or f["test/x"].shape[1] != info.maxlen:
            raise ValueError(f"{data_path} has num_words {int(f.attrs['num_words'])}, maxlen "
                             f"{f['test/x'].shape[1]}; the weights need {info.num_words}, {info.maxlen}")
        x = f["test/x"][:rows]
    oov_word = next(w for w in ("qzxjvk", "zzyzxq", "xqwzvj", "qqqzzzxxx") if w not in info.ids)
    texts, kept = [], []
    for row in x:
        ids = [int(i) for i in row if i != 0]
        if ids and ids[0] == info.start_char:
            ids = ids[1:]
        if any(i < info.index_from + 1 and i != info.oov_char for i in ids):
            continue  # a start mark or reserved id inside the row: no text encodes to it
        text = " ".join(oov_word if i == info.oov_char else info.vocab[i - info.index_from - 1] for i in ids)
        if encode(info, tokenize, text) != [int(i) for i in row]:
            raise ValueError("a test row written back as text does not encode to the same ids "
                             "(the Python tokenizer or vocabulary reading disagrees with the dataset)")
        texts.append(text)
        kept.append([int(i) for i in row])
    return texts, kept


# How far from the float64 value Keras's own float32 round-off may take a probability, in tolerances,
# for a difference from Keras beyond the tolerance to count as Keras's round-off.
ROUND_OFF = 10


def float64_reference(info, x):
    """The same forward pass in float64 NumPy (Keras 3's cell equations; GRU with reset_after): a third
    opinion telling float32 round-off, which both sides have, from a real disagreement."""
    import numpy as np
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    w = [info.tensors[p].astype(np.float64) for p in info.tensor_paths()]
    seq = w[0][np.asarray(x)]  # (B, T, E)

    def run(seq, kernel, recurrent, bias):
        inputs = seq @ kernel  # (B, T, gates*H)
        h = np.zeros((seq.shape[0], recurrent.shape[0]))
        c = np.zeros_like(h)
        H = h.shape[1]
        outputs = np.empty((seq.shape[0], seq.shape[1], H))
        for t in range(seq.shape[1]):
            if info.kind == "simple-rnn":
                h = np.tanh(inputs[:, t] + h @ recurrent + bias)
            elif info.kind == "lstm":
                i, f, g, o = np.split(inputs[:, t] + h @ recurrent + bias, 4, axis=1)
                c = sig(f) * c + sig(i) * np.tanh(g)
                h = sig(o) * np.tanh(c)
            elif info.reset_after:
                xz, xr, xh = np.split(inputs[:, t] + bias[0], 3, axis=1)
                hz, hr, hh = np.split(h @ recurrent + bias[1], 3, axis=1)
                z, r = sig(xz + hz), sig(xr + hr)
                h = z * h + (1 - z) * np.tanh(xh + r * hh)
            else:  # Keras 2's GRU: the reset gate acts on h before U_h; bias (3H,) on the input side
                xz, xr, xh = np.split(inputs[:, t] + bias, 3, axis=1)
                z = sig(xz + h @ recurrent[:, :H])
                r = sig(xr + h @ recurrent[:, H:2 * H])
                h = z * h + (1 - z) * np.tanh(xh + (r * h) @ recurrent[:, 2 * H:])
            outputs[:, t] = h
        return outputs

    k = 1
    for layer in range(info.layers):
        if info.bidirectional:
            forward = run(seq, *w[k:k + 3])
            backward = run(seq[:, ::-1], *w[k + 3:k + 6])[:, ::-1]  # read reversed, flipped back
            k += 6
            if layer == info.layers - 1:
                seq = np.concatenate([forward[:, -1:], backward[:, :1]], axis=2)
            else:
                seq = np.concatenate([forward, backward], axis=2)
        else:
            seq = run(seq, *w[k:k + 3])
            k += 3
    logits = seq[:, -1] @ w[-2] + w[-1]
    if info.num_classes > 2:  # softmax, (B, K)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return sig(logits).reshape(-1)


def rnn_dist_predict(binary, weights, texts, class_names=None):
    """Probabilities from `rnn-dist predict --json`, reviews one per line on stdin: P(class 1) per review
    for a two-class model (`class_names` None), else each review's K probabilities in class order."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([binary, "predict", "--json", "--weights", weights], input="\n".join(texts) + "\n",
                       capture_output=True, text=True, encoding="utf-8", env=env, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"rnn-dist predict failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    if len(rows) != len(texts):
        raise RuntimeError(f"rnn-dist predict printed {len(rows)} results for {len(texts)} reviews")
    for i, (row, text) in enumerate(zip(rows, texts)):
        if row.get("text") != text:
            raise RuntimeError(f"rnn-dist predict result {i} is for another text than the one sent")
    if class_names is None:
        return [float(row["probability"]) for row in rows]
    out = []
    for i, row in enumerate(rows):
        probs = row.get("probabilities")
        if not isinstance(probs, dict) or set(probs) != set(class_names):
            raise RuntimeError(f"rnn-dist predict result {i}: 'probabilities' has the classes "
                               f"{sorted(probs) if isinstance(probs, dict) else probs}, the model {class_names}")
        p = [float(probs[n]) for n in class_names]
        if row.get("class") not in probs or float(probs[row["class"]]) != max(p):
            raise RuntimeError(f"rnn-dist predict result {i}: 'class' is {row.get('class')!r}, its highest "
                               f"probability is that of {class_names[max(range(len(p)), key=p.__getitem__)]!r}")
        out.append(p)
    return out


def check_file(path, args, keras, tokenize):
    import numpy as np

    result = {"weights": path, "ok": False, "max_abs_diff": None}
    info = WeightsInfo(path, args.model_json)
    result.update(model=info.kind, layers=info.layers, units=info.units, embed_dim=info.embed_dim,
                  num_words=info.num_words, maxlen=info.maxlen, num_classes=info.num_classes,
                  classes=info.class_names, describe=info.describe())
    multi = info.output_units > 1   # softmax outputs: every class compared (Dense(2, softmax) too)
    shape = (-1, info.output_units) if multi else (-1,)
    if args.model_json is not None:
        result.update(model_json=args.model_json, head=info.head, preset=info.preset)

        def build():
            m = keras.models.model_from_json(args.model_json_text)
            if not m.built:   # a Sequential without an InputLayer builds on its first input
                m.build((None, info.maxlen))
            return m
    else:
        def build():
            return info.build(keras)

    # Keras reads the file itself, unchanged.
    model = build()
    if args.model_json is not None:
        paths = keras_variable_paths(keras, model)
        problems = layout_problems(model, paths, info)
        if problems:
            raise ValueError(f"the Keras model from {args.model_json} is not the one of these weights: "
                             + "; ".join(problems[:6]) + (f"; … ({len(problems)} in all)" if len(problems) > 6 else ""))
        post = keras_output(keras, model, info)
        result.update(keras_output=post)
    model.load_weights(path)
    if args.model_json is None:
        paths = info.tensor_paths()
    variables = model.weights
    if len(variables) != len(paths):
        raise ValueError(f"the Keras model has {len(variables)} variables, rnn-dist's layout {len(paths)}")
    for var, p in zip(variables, paths):
        if p not in info.tensors:
            raise ValueError(f"the file has no {p} (for Keras variable {var.path})")
        got = np.asarray(keras.ops.convert_to_numpy(var))
        want = info.tensors[p]
        if got.shape != want.shape or got.dtype != want.dtype or not np.array_equal(got.view(np.uint32), want.view(np.uint32)):
            raise ValueError(f"Keras variable {var.path} {got.shape} differs from the file's {p} {want.shape} after load_weights")
    unused = sorted(set(info.tensors) - set(paths))
    if unused:
        raise ValueError(f"tensors Keras's model does not use: {', '.join(unused)}")

    texts = review_texts(info, tokenize, args.seed)
    x = [encode(info, tokenize, t) for t in texts]
    if args.data:
        more, rows = dataset_reviews(info, tokenize, args.data, args.rows)
        texts += more
        x += rows

    def keras_predict(m):
        out = np.asarray(m.predict(np.asarray(x, dtype=np.int32), batch_size=64, verbose=0),
                         dtype=np.float64).reshape(shape)
        return 1.0 / (1.0 + np.exp(-out)) if args.model_json is not None and post == "sigmoid" else out

    ours = np.asarray(rnn_dist_predict(args.bin, path, texts, info.class_names if multi else None), dtype=np.float64)
    theirs = keras_predict(model)
    exact = float64_reference(info, x) if info.preset else None
    diff = np.abs(ours - theirs)
    # Over the tolerance against Keras, a probability is still right when the float64 reference says the
    # difference is Keras's float32 round-off: rnn-dist within the tolerance of the exact value and
    # nearer it than Keras, and Keras itself within ROUND_OFF × the tolerance of it (float32 round-off
    # is that small; a real disagreement — a wrong layout, gate order or activation — is not). A
    # 1-epoch LSTM: Keras 2.1e-6 from float64, rnn-dist 1e-7. The replay reads rnn-dist's tensors
    # in rnn-dist's layout, so it cannot vouch for a layout both share: the bound on Keras's distance
    # is what still catches one. Without the reference (not a preset) the tolerance is the only test.
    def judged(keras_p):
        """(over the tolerance against Keras, of those Keras's round-off) per review and class."""
        over = np.abs(ours - keras_p) > args.tolerance
        if exact is None:
            return over, np.zeros_like(over)
        ours_error, keras_error = np.abs(ours - exact), np.abs(keras_p - exact)
        return over, over & (ours_error <= args.tolerance) & (ours_error <= keras_error) & (keras_error <= ROUND_OFF * args.tolerance)

    over, keras_round_off = judged(theirs)
    failing = over & ~keras_round_off
    # The worst (review, class) — among the failing ones when any fail; for two classes the class is 1
    # (the probability compared).
    ranked = np.where(failing, diff, -1.0) if failing.any() else diff
    worst, worst_class = np.unravel_index(int(np.argmax(ranked)), diff.shape) if multi else (int(np.argmax(ranked)), None)
    at = (worst, worst_class) if multi else worst
    result.update(reviews=len(texts), max_abs_diff=float(diff.max()), worst_abs_diff=float(diff[at]),
                  mean_abs_diff=float(diff.mean()), over_tolerance=int(over.sum()),
                  keras_round_off=int(keras_round_off.sum()),
                  worst_review=int(worst), worst_rnn_dist=float(ours[at]), worst_keras=float(theirs[at]),
                  worst_float64=None if exact is None else float(exact[at]),
                  **({"worst_class": info.class_names[worst_class]} if multi else {}),
                  rnn_dist_vs_float64=None if exact is None else float(np.abs(ours - exact).max()),
                  keras_vs_float64=None if exact is None else float(np.abs(theirs - exact).max()),
                  ok=not bool(failing.any()))
    if args.legacy and args.model_json is not None:
        # As below, with the Keras model from the JSON; a refused export is reported, not raised.
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            legacy = os.path.join(tmp, "legacy.h5")
            r = subprocess.run([args.bin, "export", "--keras-legacy", path, "-o", legacy], capture_output=True, text=True)
            if r.returncode != 0:
                why = " ".join((r.stderr.strip() or r.stdout.strip() or f"exit status {r.returncode}").split())
                result.update(legacy_error=f"rnn-dist export --keras-legacy refused this model ({r.returncode}): {why}",
                              ok=False)
                return result
            try:
                old = build()
                old.load_weights(legacy)
                p2 = keras_predict(old)
            except Exception as e:  # noqa: BLE001 - reported with the file's other results
                result.update(legacy_error="Keras 3 could not load the rnn-dist export --keras-legacy file: "
                              + " ".join(f"{type(e).__name__}: {e}".split()), ok=False)
                return result
        # The same Keras on the same weights in another file: its predictions must be Keras's own from
        # the Keras 3 file (no round-off between them to arbitrate).
        result.update(legacy_max_abs_diff=float(np.abs(ours - p2).max()),
                      legacy_vs_keras=float(np.abs(theirs - p2).max()),
                      ok=bool(result["ok"] and np.abs(theirs - p2).max() <= args.tolerance))
    elif args.legacy:
        # `rnn-dist export --keras-legacy`: the Keras 2 HDF5 layout, loaded by Keras 3's legacy reader.
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            legacy = os.path.join(tmp, "legacy.h5")
            r = subprocess.run([args.bin, "export", "--keras-legacy", path, "-o", legacy], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"rnn-dist export failed: {r.stderr.strip()}")
            old = info.build(keras)
            old.load_weights(legacy)
            p2 = np.asarray(old.predict(np.asarray(x, dtype=np.int32), batch_size=64, verbose=0), dtype=np.float64).reshape(shape)
        # The same Keras on the same weights in another file: its predictions must be Keras's own from
        # the Keras 3 file (no round-off between them to arbitrate).
        result.update(legacy_max_abs_diff=float(np.abs(ours - p2).max()),
                      legacy_vs_keras=float(np.abs(theirs - p2).max()),
                      ok=bool(result["ok"] and np.abs(theirs - p2).max() <= args.tolerance))
    return result


def main():
    ap = argparse.ArgumentParser(description="Load rnn-dist weights into Keras 3 and compare predictions.")
    ap.add_argument("--bin", default=os.environ.get("RNN_DIST_BIN", os.path.join(ROOT, ".build", "release", "rnn-dist")),
                    help="the rnn-dist executable (default: $RNN_DIST_BIN, else .build/release/rnn-dist)")
    ap.add_argument("weights", nargs="+", help="weights files written by `rnn-dist train`")
    ap.add_argument("--data", help="also score the first --rows test rows of this dataset (written by `rnn-dist prepare`)")
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--tolerance", type=float, default=1e-6, help="largest allowed |p_keras - p_rnn-dist| (default 1e-6)")
    ap.add_argument("--threads", type=int, default=1, help="TensorFlow threads (default 1)")
    ap.add_argument("--seed", type=int, default=20240613, help="seed of the pseudo-random reviews")
    ap.add_argument("--json", metavar="OUT", help="also write the results as a JSON list to OUT")
    ap.add_argument("--legacy", action="store_true",
                    help="also export each file with `rnn-dist export --keras-legacy` and check that Keras 3 loads that too")
    ap.add_argument("--model-json", metavar="FILE",
                    help="build the Keras model with keras.models.model_from_json(FILE's text), the model.to_json() "
                         "given to `rnn-dist train --model-config`, instead of from the file's preset")
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        ap.error(f"--bin {args.bin}: not an executable file")
    if args.rows < 1 or args.threads < 1:
        ap.error("--rows and --threads must be at least 1")
    if not args.tolerance >= 0:
        ap.error(f"--tolerance {args.tolerance}: must be 0 or more")
    if args.data is not None and not os.path.isfile(args.data):
        ap.error(f"--data {args.data}: no such file")
    if args.json is not None and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        ap.error(f"--json {args.json}: no folder {os.path.dirname(os.path.abspath(args.json))} to write it in")
    if args.model_json is not None:
        try:
            with open(args.model_json, encoding="utf-8") as f:
                args.model_json_text = f.read()
            json.loads(args.model_json_text)
        except (OSError, ValueError) as e:
            ap.error(f"--model-json {args.model_json}: {e}")

    reexec_with_venv_if_needed()
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.get_logger().setLevel("ERROR")  # one model per file: predict's retracing warnings are expected
    import keras
    if args.model_json is not None:
        try:
            keras.models.model_from_json(args.model_json_text)
        except Exception as e:  # noqa: BLE001 - a usage problem, before any file
            print(f"keras_check: --model-json {args.model_json}: Keras cannot build it: "
                  + " ".join(f"{type(e).__name__}: {e}".split()), file=sys.stderr)
            return 2
    sys.dont_write_bytecode = True  # no __pycache__ in Launch/ for the sibling modules imported below
    sys.path.insert(0, HERE)
    from py_tokenize_reference import tokenize

    results, failed = [], 0
    for path in args.weights:
        try:
            r = check_file(path, args, keras, tokenize)
        except Exception as e:  # noqa: BLE001 - every failure is reported as that file's FAIL line
            r = {"weights": path, "ok": False, "max_abs_diff": None, "error": " ".join(f"{type(e).__name__}: {e}".split())}
        results.append(r)
        if "error" in r:
            failed += 1
            print(f"FAIL {path}: {r['error']}", flush=True)
            continue
        line = (f"{path}: {r['describe']}; {r['reviews']} reviews; max |p_keras - p_rnn-dist| = "
                f"{r['max_abs_diff']:.3g}"
                + (f"; Keras 2 legacy export: {r['legacy_max_abs_diff']:.3g} (from Keras 3's {r['legacy_vs_keras']:.3g})" if "legacy_max_abs_diff" in r else "")
                + (f"; Keras 2 legacy export: {r['legacy_error']}" if "legacy_error" in r else ""))
        if r["rnn_dist_vs_float64"] is None:
            ref = "float64 reference: skipped, not a preset"
        else:
            ref = (f"float64 reference: rnn-dist within {r['rnn_dist_vs_float64']:.2g}, "
                   f"Keras within {r['keras_vs_float64']:.2g}")
        if r["keras_round_off"]:
            ref += (f"; {r['keras_round_off']} of the {r['over_tolerance']} over the tolerance are Keras's round-off: "
                    f"rnn-dist within {args.tolerance:g} of float64 there and nearer it than Keras, Keras within "
                    f"{ROUND_OFF * args.tolerance:g}")
        if r["ok"]:
            print(f"PASS {line} (tolerance {args.tolerance:g}; {ref})", flush=True)
        else:
            failed += 1
            if r["over_tolerance"] == r["keras_round_off"]:     # the Keras 2 legacy export failed
                print(f"FAIL {line} (the Keras 2 legacy export; tolerance {args.tolerance:g}; {ref})", flush=True)
                continue
            print(f"FAIL {line}: {r['over_tolerance'] - r['keras_round_off']} over {args.tolerance:g} (worst review {r['worst_review']}"
                  + (f", class {r['worst_class']}" if "worst_class" in r else "") + ": rnn-dist "
                  f"{r['worst_rnn_dist']:.9f}, Keras {r['worst_keras']:.9f}, float64 "
                  + ("skipped" if r["worst_float64"] is None else f"{r['worst_float64']:.9f}") + f"; "
                  f"{ref})", flush=True)
    print(f"keras_check: {len(results) - failed} of {len(results)} passed (Keras {keras.__version__})", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
