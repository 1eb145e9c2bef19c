#!/usr/bin/env python3
"""Writes the labelled IMDB reviews of the official tarball in the other source formats `rnn-dist prepare` reads.

usage: python3 Launch/imdb_repackage.py aclImdb_v1.tar.gz OUTDIR [--formats csv,tsv,jsonl,folders,ratings4]

Standard library only. Reads `{train,test}/{neg,pos}/<id>_<rating>.txt` (unsup/ and everything else is
skipped, as `prepare` does) and writes, for each split, the reviews in the order `prepare` sorts the
tarball's: label neg before pos, then review id as a number. So `prepare` of any of these re-packagings
(with --test-source for the file formats) must write the same /train/x, /train/y, /test/x, /test/y and
/vocab as `prepare` of the tarball (classes neg, pos are 0, 1 there too):

  OUTDIR/csv/train.csv, test.csv        header `id,rating,text,label` (label "neg" / "pos"; the extra
                                        columns are there to exercise --text-column/--label-column),
                                        csv module, QUOTE_MINIMAL, lines ended by CRLF
  OUTDIR/tsv/train.tsv, test.tsv        the same with a tab as delimiter (RFC 4180 quoting too)
  OUTDIR/jsonl/train.jsonl, test.jsonl  one {"id", "rating", "text", "label"} object per line,
                                        ensure_ascii=False (control characters are \\-escaped)
  OUTDIR/folders/{train,test}/{neg,pos}/<id, 9 digits zero-padded>.txt
                                        each file the review's exact bytes; the padding makes sorted
                                        path order the id order
  OUTDIR/ratings4/train.csv, test.csv   a 4-class task from the star rating in each file name: awful
                                        (1-2), bad (3-4), good (7-8), great (9-10); header `text,label`;
                                        rows in source order, i.e. the same (neg/pos, id) order as the
                                        other formats (not grouped by rating class)

Bytes go through unchanged: a review is decoded as UTF-8 with errors="surrogateescape" and the CSV/TSV
files are written with the same error handler, so every byte of every review (invalid UTF-8 included)
is in the file as it was in the tarball. JSON cannot hold invalid UTF-8: the JSONL files decode with
errors="replace" (each bad sequence becomes U+FFFD, which separates tokens just as the bytes do in
`prepare`, so the token ids are the same; only the dataset's invalid_utf8_bytes_* counts differ).
Prints how many reviews contain a newline, a carriage return, a tab, a double quote, a NUL or invalid
UTF-8, per split (a field with a newline, tab or quote must be quoted: the files exercise the readers'
quoting). Files are written under a temporary name and renamed.
"""
import argparse, csv, json, os, re, sys, tarfile, time

NAME = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d{1,9})_(\d{1,2})\.txt$")
FORMATS = ("csv", "tsv", "jsonl", "folders", "ratings4")
LABELS = ("neg", "pos")
SPLITS = ("train", "test")


def rating_class(rating):
    """The 4-class label of a star rating (IMDB's labelled reviews have 1-4 or 7-10 stars)."""
    if 1 <= rating <= 2:
        return "awful"
    if 3 <= rating <= 4:
        return "bad"
    if 7 <= rating <= 8:
        return "good"
    if 9 <= rating <= 10:
        return "great"
    raise ValueError(f"rating {rating} has no class (the labelled reviews have 1-4 or 7-10 stars)")


def read_reviews(tarball):
    """{split: [(label, id, rating, raw bytes)]}, each split sorted as `prepare` sorts it."""
    reviews = {s: [] for s in SPLITS}
    seen = set()
    with tarfile.open(tarball, "r:*") as tar:
        for m in tar:
            match = NAME.search(m.name)
            if not m.isfile() or not match:
                continue
            split, label, rid, rating = match.groups()
            key = (split, label, int(rid))
            if key in seen:
                raise SystemExit(f"imdb_repackage: {m.name}: the same (split, label, id) twice")
            seen.add(key)
            reviews[split].append((label, int(rid), int(rating), tar.extractfile(m).read()))
    for split in SPLITS:
        if not reviews[split]:
            raise SystemExit(f"imdb_repackage: {tarball} has no {split} review")
        reviews[split].sort(key=lambda r: (LABELS.index(r[0]), r[1]))
    return reviews


def is_valid_utf8(raw):
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def census(rows):
    """How many reviews contain each character that matters to a CSV/TSV/JSONL reader."""
    return {"newline": sum(b"\n" in r[3] for r in rows), "carriage_return": sum(b"\r" in r[3] for r in rows),
            "tab": sum(b"\t" in r[3] for r in rows), "double_quote": sum(b'"' in r[3] for r in rows),
            "nul": sum(b"\0" in r[3] for r in rows), "invalid_utf8": sum(not is_valid_utf8(r[3]) for r in rows)}


class Output:
    """A file written under a temporary name in its folder and renamed when closed without error."""

    def __init__(self, path, **kw):
        self.path, self.tmp = path, path + ".tmp"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.kw = kw

    def __enter__(self):
        self.f = open(self.tmp, "w" if "encoding" in self.kw else "wb", **self.kw)
        return self.f

    def __exit__(self, kind, *_):
        self.f.close()
        if kind is None:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


def text_of(raw):
    return raw.decode("utf-8", "surrogateescape")


def write_delimited(path, rows, delimiter, header, fields):
    with Output(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        w = csv.writer(f, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        w.writerow(header)
        for r in rows:
            w.writerow(fields(r))


def write_jsonl(path, rows):
    with Output(path, encoding="utf-8", newline="") as f:
        for label, rid, rating, raw in rows:
            f.write(json.dumps({"id": rid, "rating": rating, "text": raw.decode("utf-8", "replace"), "label": label},
                               ensure_ascii=False) + "\n")


def write_folders(root, split, rows):
    for label, rid, _, raw in rows:
        with Output(os.path.join(root, split, label, f"{rid:09d}.txt")) as f:
            f.write(raw)


def main():
    ap = argparse.ArgumentParser(description="Re-package IMDB's labelled reviews as CSV, TSV, JSONL, class folders "
                                             "and a 4-class rating task.")
    ap.add_argument("tarball", help="aclImdb_v1.tar.gz")
    ap.add_argument("outdir")
    ap.add_argument("--formats", default=",".join(FORMATS), help=f"comma list of {', '.join(FORMATS)} (default all)")
    a = ap.parse_args()
    formats = [f for f in a.formats.split(",") if f]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        ap.error(f"--formats: unknown {', '.join(bad) or '(empty)'}; choose from {', '.join(FORMATS)}")
    if not os.path.isfile(a.tarball):
        ap.error(f"{a.tarball}: no such file")

    start = time.time()
    reviews = read_reviews(a.tarball)
    for split in SPLITS:
        rows = reviews[split]
        c = census(rows)
        print(f"{split}: {len(rows)} reviews ({sum(r[0] == 'pos' for r in rows)} pos); containing "
              f"a newline {c['newline']}, a carriage return {c['carriage_return']}, a tab {c['tab']}, "
              f"a double quote {c['double_quote']}, a NUL {c['nul']}, invalid UTF-8 {c['invalid_utf8']}")
        if "csv" in formats:
            write_delimited(os.path.join(a.outdir, "csv", f"{split}.csv"), rows, ",", ["id", "rating", "text", "label"],
                            lambda r: [r[1], r[2], text_of(r[3]), r[0]])
        if "tsv" in formats:
            write_delimited(os.path.join(a.outdir, "tsv", f"{split}.tsv"), rows, "\t", ["id", "rating", "text", "label"],
                            lambda r: [r[1], r[2], text_of(r[3]), r[0]])
        if "jsonl" in formats:
            write_jsonl(os.path.join(a.outdir, "jsonl", f"{split}.jsonl"), rows)
        if "folders" in formats:
            write_folders(os.path.join(a.outdir, "folders"), split, rows)
        if "ratings4" in formats:
            write_delimited(os.path.join(a.outdir, "ratings4", f"{split}.csv"), rows, ",", ["text", "label"],
                            lambda r: [text_of(r[3]), rating_class(r[2])])
            counts = {}
            for r in rows:
                counts[rating_class(r[2])] = counts.get(rating_class(r[2]), 0) + 1
            print(f"  ratings4 {split}: " + ", ".join(f"{k} {counts[k]}" for k in sorted(counts)))
    print(f"imdb_repackage: wrote {', '.join(formats)} into {a.outdir} in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
