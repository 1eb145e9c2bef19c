#!/usr/bin/env python3
"""A straightforward Python version of `rnn-dist prepare`, the reference it is checked and timed against.

usage: python3 Launch/py_tokenize_reference.py aclImdb_v1.tar.gz [--num-words 10000] [--maxlen 500]
                                              [--seed 113] [--dump DIR] [--show SPLIT/LABEL/ID ...]
       python3 Launch/py_tokenize_reference.py TRAIN.csv --format csv|tsv|jsonl --test-source TEST.csv
                                              [--text-column text] [--label-column label]
                                              [--num-words 10000] [--maxlen 500] [--seed 113] [--dump DIR]
       python3 Launch/py_tokenize_reference.py DIR --format folders [...]   (DIR/{train,test}/<class>/*.txt)

Standard library only (tarfile, csv, json + re). Same rules as docs/DATASET.md: `<br />` -> space,
lowercase, tokens = runs of letters/digits (`[^\\W_]`, i.e. str.isalnum) with inner apostrophes,
vocabulary from the training split ranked by (count desc, UTF-8 bytes asc), ids rank + 3, OOV 2,
start 1, pad 0 (pre-padding, pre-truncation), rows sorted by (label, review id) then shuffled by
SplitMix64 + Fisher-Yates. It prints a SHA-256 of each array (int32/int8 little-endian, row-major), so its
output can be compared with the dataset file; --dump writes the raw arrays and the vocabulary into DIR.
(Python's str.lower() applies the final-sigma rule, rnn-dist does not: the two differ only on a
capital Sigma ending a word, which the IMDB reviews never contain.)

--format (default aclimdb: the tarball, as above; its output is unchanged) reads the user's own data
as `prepare --format` does:
  csv, tsv  a header row, then one row per example, RFC 4180 quoting (Python's csv module; TSV is the
            same with a tab as delimiter); the columns named by --text-column / --label-column (other
            columns are ignored); read as UTF-8 with errors="surrogateescape", so a field's bytes are the
            file's bytes (a leading UTF-8 byte order mark is skipped; empty lines are skipped)
  jsonl     one JSON object per line (blank lines skipped); the text a JSON string, the label a JSON
            string or integer (an integer's class name is its decimal form)
  folders   DIR/train/<class>/*.txt and DIR/test/<class>/*.txt, each file one example (its exact
            bytes), the class its folder's name
The train rows come from SOURCE, the test rows from --test-source (csv/tsv/jsonl; `prepare
--test-split` is not mirrored here). Rows keep the source's own order before the shuffle (line order;
folders: files in sorted path order, compared as bytes). The classes are the distinct training labels,
sorted numerically when every label of both splits is an integer (an optional '-' then 1-18 ASCII
digits; equal numbers such as "7" and "07" stay two classes, ordered by bytes), otherwise by their
UTF-8 bytes; y is the class index (int8 up to 127 classes, else int32 here: the dtype is printed).
Fewer than two training classes, a test label that no training row has, a missing column, a row
with another number of fields than the header, an empty label or a label that is neither string nor
integer is an error (exit 1).
Besides the hash lines it prints the class names (as a JSON list) and a hash of them:
    classes: K ["name", ...]; sha256 HEX    (names joined by newlines, UTF-8)
    train: N rows (name count, ...), T tokens; sha256 x HEX y HEX (y int8)
--show (SPLIT/LABEL/ID) is for the tarball only.
"""
import argparse, array, csv, hashlib, json, os, re, sys, tarfile, time
from collections import Counter

WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
NAME = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d{1,9})_(\d{1,2})\.txt$")
INTEGER = re.compile(r"-?[0-9]{1,18}")
MASK = (1 << 64) - 1
FORMATS = ("aclimdb", "csv", "tsv", "jsonl", "folders")
MAX_TEXT = 16 << 20  # `prepare` refuses a review over 16 MiB


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, bound):
        excess = (1 << 64) % bound
        while True:
            x = self.next()
            if x < (1 << 64) - excess:
                return x % bound


def permutation(n, rng):
    p = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.below(i + 1)
        p[i], p[j] = p[j], p[i]
    return p


def tokenize(raw):
    text = raw.decode("utf-8", "replace").replace("<br />", " ").lower()
    return WORD.findall(text)


def tokenize_text(text):
    """The tokens of a str decoded with errors="surrogateescape": a lone surrogate (an invalid byte) is
    no word character, so it separates tokens exactly as U+FFFD does in tokenize()."""
    return WORD.findall(text.replace("<br />", " ").lower())


def fail(message):
    print(f"py_tokenize_reference: error: {message}", file=sys.stderr)
    sys.exit(1)


def read_delimited(path, delimiter, text_column, label_column):
    """[(label, tokens)] of a CSV/TSV file with a header row, in line order."""
    csv.field_size_limit(MAX_TEXT * 4)
    rows = []
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            fail(f"{path}: empty file (no header row)")
        for name in (text_column, label_column):
            if name not in header:
                fail(f"{path}: no column '{name}' in the header {header}")
        t, l = header.index(text_column), header.index(label_column)
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                fail(f"{path}: line {reader.line_num}: {len(row)} fields, the header has {len(header)}")
            label = row[l]  # invalid bytes kept as surrogates: labels are told apart by their bytes
            if not label:
                fail(f"{path}: line {reader.line_num}: empty label")
            rows.append((label, tokenize_text(row[t])))
    return rows


def read_jsonl(path, text_column, label_column):
    """[(label, tokens)] of a JSON Lines file, in line order."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                fail(f"{path}: line {n}: not JSON ({e})")
            if not isinstance(obj, dict):
                fail(f"{path}: line {n}: not a JSON object")
            text, label = obj.get(text_column), obj.get(label_column)
            if not isinstance(text, str):
                fail(f"{path}: line {n}: '{text_column}' is missing or not a string")
            if isinstance(label, int) and not isinstance(label, bool):
                label = str(label)
            if not isinstance(label, str) or not label:
                fail(f"{path}: line {n}: '{label_column}' is missing, empty or neither a string nor an integer")
            rows.append((label, tokenize_text(text)))
    return rows


def read_folders(root, split):
    """[(class folder name, tokens)] of ROOT/SPLIT/<class>/*.txt, files in sorted path order (bytes)."""
    base = os.path.join(root, split)
    if not os.path.isdir(base):
        fail(f"{root}: no {split}/ folder")
    files = []
    for cls in os.listdir(base):
        d = os.path.join(base, cls)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            p = os.path.join(d, name)
            if name.endswith(".txt") and os.path.isfile(p):
                files.append((os.fsencode(os.path.join(cls, name)), cls, p))
    files.sort()
    rows = []
    for _, cls, p in files:
        with open(p, "rb") as f:
            rows.append((cls, tokenize(f.read())))
    return rows


def class_names(train_labels, all_labels):
    """The distinct training labels, sorted numerically when every label is an integer, else by bytes."""
    names = set(train_labels)
    if all(INTEGER.fullmatch(l) for l in all_labels):
        return sorted(names, key=lambda l: (int(l), l.encode("utf-8", "surrogateescape")))
    return sorted(names, key=lambda l: l.encode("utf-8", "surrogateescape"))


def read_tarball(source):
    reviews = {"train": [], "test": []}  # (label, id, rating, tokens)
    with tarfile.open(source, "r:*") as tar:
        for m in tar:
            match = NAME.search(m.name)
            if not m.isfile() or not match:
                continue
            split, label, rid, rating = match.groups()
            tokens = tokenize(tar.extractfile(m).read())
            reviews[split].append((1 if label == "pos" else 0, int(rid), int(rating), tokens))
    return reviews


def read_own(a):
    """The user's own data: ({split: [(class index, 0, 0, tokens)]}, class names)."""
    if a.format == "folders":
        if a.test_source:
            fail("--test-source is not used with --format folders (DIR/test/ is the test split)")
        raw = {s: read_folders(a.source, s) for s in ("train", "test")}
    else:
        if not a.test_source:
            fail(f"--format {a.format} needs --test-source (this reference does not mirror --test-split)")
        read = (lambda p: read_jsonl(p, a.text_column, a.label_column)) if a.format == "jsonl" else \
            (lambda p: read_delimited(p, "," if a.format == "csv" else "\t", a.text_column, a.label_column))
        raw = {"train": read(a.source), "test": read(a.test_source)}
    for split in raw:
        if not raw[split]:
            fail(f"the {split} split has no rows")
    names = class_names([r[0] for r in raw["train"]], [r[0] for s in raw for r in raw[s]])
    if len(names) < 2:
        fail(f"every training row has the label {ascii(names[0])}: a classifier needs at least two classes")
    index = {n: k for k, n in enumerate(names)}
    unknown = sorted({r[0] for r in raw["test"]} - set(index))
    if unknown:
        fail(f"test labels that no training row has: {', '.join(ascii(u) for u in unknown[:10])}")
    return {s: [(index[label], 0, 0, tokens) for label, tokens in raw[s]] for s in raw}, names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("--format", choices=FORMATS, default="aclimdb")
    ap.add_argument("--test-source", help="the test split's file (csv, tsv, jsonl)")
    ap.add_argument("--text-column", default="text")
    ap.add_argument("--label-column", default="label")
    ap.add_argument("--num-words", type=int, default=10000)
    ap.add_argument("--maxlen", type=int, default=500)
    ap.add_argument("--seed", type=int, default=113)
    ap.add_argument("--dump")
    ap.add_argument("--show", nargs="*", default=[])
    a = ap.parse_args()
    tarball = a.format == "aclimdb"
    if not tarball and a.show:
        ap.error("--show is for the tarball (--format aclimdb) only")
    if tarball and a.test_source:
        ap.error("--test-source is for --format csv, tsv and jsonl")
    start = time.time()

    if tarball:
        reviews, names = read_tarball(a.source), ["neg", "pos"]
    else:
        reviews, names = read_own(a)

    counts = Counter()
    for r in reviews["train"]:
        counts.update(r[3])
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].encode("utf-8")))
    words = [w for w, _ in ranked[: max(0, a.num_words - 4)]]
    ids = {w: k + 4 for k, w in enumerate(words)}

    rng = SplitMix64(a.seed)
    out = {}
    ycode = "b" if len(names) <= 127 else "i"
    for split in ("train", "test"):
        # The tarball's rows are sorted by (label, review id); other sources keep their own order.
        rows = sorted(reviews[split], key=lambda r: (r[0], r[1])) if tarball else reviews[split]
        order = permutation(len(rows), rng)
        x, y, rid = array.array("i"), array.array(ycode), array.array("i")
        for k in order:
            label, review_id, _, tokens = rows[k]
            seq = [1] + [ids.get(t, 2) for t in tokens]
            seq = seq[-a.maxlen:]
            x.extend([0] * (a.maxlen - len(seq)) + seq)
            y.append(label)
            rid.append(review_id)
        out[split] = (x, y, rid, rows)
    seconds = time.time() - start

    if not tarball:
        joined = "\n".join(names).encode("utf-8", "surrogateescape")
        shown = [n.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for n in names]
        print(f"classes: {len(names)} {json.dumps(shown, ensure_ascii=False)}; sha256 "
              f"{hashlib.sha256(joined).hexdigest()[:16]}")
    for split in ("train", "test"):
        x, y, rid, rows = out[split]
        if sys.byteorder != "little":
            x.byteswap(); rid.byteswap(); y.byteswap()
        if tarball:
            print(f"{split}: {len(y)} reviews, {sum(y)} pos, {sum(len(r[3]) for r in rows)} tokens; "
                  f"sha256 x {hashlib.sha256(x.tobytes()).hexdigest()[:16]} "
                  f"y {hashlib.sha256(y.tobytes()).hexdigest()[:16]} "
                  f"review_id {hashlib.sha256(rid.tobytes()).hexdigest()[:16]}")
        else:
            per = Counter(r[0] for r in rows)
            print(f"{split}: {len(rows)} rows ({', '.join(f'{n} {per[k]}' for k, n in enumerate(shown))}), "
                  f"{sum(len(r[3]) for r in rows)} tokens; "
                  f"sha256 x {hashlib.sha256(x.tobytes()).hexdigest()[:16]} "
                  f"y {hashlib.sha256(y.tobytes()).hexdigest()[:16]} (y {'int8' if ycode == 'b' else 'int32'})")
        if a.dump:
            os.makedirs(a.dump, exist_ok=True)
            for name, arr in (("x", x), ("y", y)) + ((("review_id", rid),) if tarball else ()):
                with open(os.path.join(a.dump, f"{split}_{name}.bin"), "wb") as f:
                    f.write(arr.tobytes())
    print(f"vocabulary: {len(counts)} distinct training words, kept {len(words)}; first {' '.join(words[:10])}")
    print(f"vocab sha256 {hashlib.sha256(chr(10).join(words).encode('utf-8')).hexdigest()[:16]}")
    for spec in a.show:
        split, label, rid = spec.split("/")
        for r in out[split][3]:
            if r[0] == (1 if label == "pos" else 0) and r[1] == int(rid):
                seq = ([1] + [ids.get(t, 2) for t in r[3]])[-a.maxlen:]
                print(f"{spec}: {len(r[3])} tokens, first ids {seq[:12]}, first tokens {r[3][:8]}")
    if a.dump:
        with open(os.path.join(a.dump, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(words))
        if not tarball:
            with open(os.path.join(a.dump, "classes.txt"), "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write("\n".join(names))
    print(f"python reference: {seconds:.2f} s")


if __name__ == "__main__":
    main()
