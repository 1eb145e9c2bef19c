#!/usr/bin/env python3
"""A straightforward Python version of `rnn-dist prepare`, the reference it is checked and timed against.

usage: python3 Launch/py_tokenize_reference.py aclImdb_v1.tar.gz [--num-words 10000] [--maxlen 500]
                                              [--seed 113] [--dump DIR] [--show SPLIT/LABEL/ID ...]

Standard library only (tarfile + re). Same rules as docs/DATASET.md: `<br />` -> space, lowercase,
tokens = runs of letters/digits (`[^\\W_]`, i.e. str.isalnum) with inner apostrophes, vocabulary from
the training split ranked by (count desc, UTF-8 bytes asc), ids rank + 3, OOV 2, start 1, pad 0
(pre-padding, pre-truncation), rows sorted by (label, review id) then shuffled by SplitMix64 +
Fisher-Yates. It prints a SHA-256 of each array (int32/int8 little-endian, row-major), so its output can
be compared with the dataset file; --dump writes the raw arrays and the vocabulary into DIR.
(Python's str.lower() applies the final-sigma rule, rnn-dist does not: the two differ only on a
capital Sigma ending a word, which the IMDB reviews never contain.)
"""
import argparse, array, hashlib, os, re, sys, tarfile, time
from collections import Counter

WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
NAME = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d{1,9})_(\d{1,2})\.txt$")
MASK = (1 << 64) - 1


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("--num-words", type=int, default=10000)
    ap.add_argument("--maxlen", type=int, default=500)
    ap.add_argument("--seed", type=int, default=113)
    ap.add_argument("--dump")
    ap.add_argument("--show", nargs="*", default=[])
    a = ap.parse_args()
    start = time.time()

    reviews = {"train": [], "test": []}  # (label, id, rating, tokens)
    with tarfile.open(a.source, "r:*") as tar:
        for m in tar:
            match = NAME.search(m.name)
            if not m.isfile() or not match:
                continue
            split, label, rid, rating = match.groups()
            tokens = tokenize(tar.extractfile(m).read())
            reviews[split].append((1 if label == "pos" else 0, int(rid), int(rating), tokens))

    counts = Counter()
    for r in reviews["train"]:
        counts.update(r[3])
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].encode("utf-8")))
    words = [w for w, _ in ranked[: max(0, a.num_words - 4)]]
    ids = {w: k + 4 for k, w in enumerate(words)}

    rng = SplitMix64(a.seed)
    out = {}
    for split in ("train", "test"):
        rows = sorted(reviews[split], key=lambda r: (r[0], r[1]))
        order = permutation(len(rows), rng)
        x, y, rid = array.array("i"), array.array("b"), array.array("i")
        for k in order:
            label, review_id, _, tokens = rows[k]
            seq = [1] + [ids.get(t, 2) for t in tokens]
            seq = seq[-a.maxlen:]
            x.extend([0] * (a.maxlen - len(seq)) + seq)
            y.append(label)
            rid.append(review_id)
        out[split] = (x, y, rid, rows)
    seconds = time.time() - start

    for split in ("train", "test"):
        x, y, rid, rows = out[split]
        if sys.byteorder != "little":
            x.byteswap(); rid.byteswap()
        print(f"{split}: {len(y)} reviews, {sum(y)} pos, {sum(len(r[3]) for r in rows)} tokens; "
              f"sha256 x {hashlib.sha256(x.tobytes()).hexdigest()[:16]} "
              f"y {hashlib.sha256(y.tobytes()).hexdigest()[:16]} "
              f"review_id {hashlib.sha256(rid.tobytes()).hexdigest()[:16]}")
        if a.dump:
            os.makedirs(a.dump, exist_ok=True)
            for name, arr in (("x", x), ("y", y), ("review_id", rid)):
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
    print(f"python reference: {seconds:.2f} s")


if __name__ == "__main__":
    main()
