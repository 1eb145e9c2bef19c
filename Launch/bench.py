#!/usr/bin/env python3
"""Benchmark driver for Launch/bench (standard library only; Keras runs in its own venv).

Every comparison is a ratio of medians measured in this one run, the two sides alternating.
"""
import argparse, datetime, hashlib, json, os, platform, re, shutil, statistics, subprocess, sys, tempfile, time, types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
VENV = os.path.expanduser("~/.venvs/rnn-dist-keras")


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


_json_log = {}


def supports_json_log(binary):
    """Whether `binary train` has --log-format (builds from 2026-12-04 on; --baseline-bin may be older)."""
    if binary not in _json_log:
        r = subprocess.run([binary, "train", "--help"], capture_output=True, text=True)
        _json_log[binary] = "--log-format" in r.stdout
    return _json_log[binary]


def run(cmd, **kw):
    """Runs a command; an `rnn-dist train` is asked for its machine-readable epoch log."""
    if "train" in cmd:
        i = cmd.index("train")
        if i > 0 and os.path.isfile(cmd[i - 1]) and supports_json_log(cmd[i - 1]):
            cmd = cmd[:i + 1] + ["--log-format", "json"] + cmd[i + 1:]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r, dt


# The human epoch line of builds without --log-format (a --baseline-bin from before 2026-12-04).
OLD_EPOCH_LINE = re.compile(r"Epoch (\d+)/\d+ - ([\d.]+)s - (\d+) samples/s - loss: ([\d.na]+) - acc: ([\d.na]+) - "
                            r"val_loss: ([\d.na]+) - val_acc: ([\d.na]+) - mpi: ([\d.]+)%"
                            r"(?: - exchange: ([\d.]+) MB/batch, (\d+) of (\d+) embedding rows)?")


def parse_epochs(stdout):
    """One dict per epoch, from `train --log-format json` (or an older build's epoch lines)."""
    rows = []
    for line in stdout.splitlines():
        if line.startswith('{"'):
            e = json.loads(line)
            bpb = e.get("exchange_bytes_per_batch")
            rows.append({"epoch": e["epoch"], "seconds": e["seconds"], "samples_per_second": e["samples_per_second"],
                         "loss": float(e["loss"]), "acc": float(e["acc"]), "val_loss": float(e["val_loss"]),
                         "val_acc": float(e["val_acc"]), "mpi_share": e["mpi_share"],
                         "exchange_mb_per_batch": bpb / 1e6 if bpb is not None else None,
                         "embedding_rows_per_batch": e.get("embedding_rows_per_batch")})
    if rows:
        return rows
    for m in OLD_EPOCH_LINE.finditer(stdout):
        rows.append({"epoch": int(m[1]), "seconds": float(m[2]), "samples_per_second": float(m[3]),
                     "loss": float(m[4]), "acc": float(m[5]), "val_loss": float(m[6]), "val_acc": float(m[7]),
                     "mpi_share": float(m[8]) / 100,
                     "exchange_mb_per_batch": float(m[9]) if m[9] else None,
                     "embedding_rows_per_batch": float(m[10]) if m[10] else None})
    return rows


def keras_python():
    py = os.path.join(VENV, "bin", "python")
    if os.path.exists(py):
        r = subprocess.run([py, "-c", "import keras, tensorflow, h5py"], capture_output=True)
        if r.returncode == 0:
            return py
    log(f"creating {VENV} (pip install tensorflow-cpu h5py)")
    try:
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "tensorflow-cpu", "h5py"], check=True)
        return py
    except Exception as e:  # noqa: BLE001 - any failure means: no Keras column
        log(f"Keras could not be installed ({e}); its columns are skipped")
        return None


def section_models(c):
    # 2. epoch time per model: mpirun -n 2 rnn-dist vs Keras with 2 threads, alternating.
    a, skip, models, work, res, kpy, keras_script = c.a, c.skip, c.models, c.work, c.res, c.kpy, c.keras_script
    res["models_table"] = {}
    for m in (models if "models" not in skip else []):
        ours, theirs, theirs_later, ours_rows, keras_rows, n1, n1_base, n2_pairs = [], [], [], [], [], [], [], []
        for rep in range(a.reps):
            rd = os.path.join(work, f"{m}-{rep}")
            r, _ = run(["mpirun", "-n", "2", a.bin, "train", "--data", a.data, "--run-dir", rd, "--model", m,
                        "--epochs", str(a.epochs)])
            rows = parse_epochs(r.stdout)
            ours_rows.append(rows)
            ours += [x["seconds"] for x in rows]
            if a.baseline_bin:   # the same -n 2 run of the other build right after (epoch 1 each)
                rb, _ = run(["mpirun", "-n", "2", a.baseline_bin, "train", "--data", a.data, "--run-dir", rd + "-baseline",
                             "--model", m, "--epochs", str(a.epochs)])
                n2_pairs.append((rows[0]["seconds"], parse_epochs(rb.stdout)[0]["seconds"]))
            if kpy:
                js = os.path.join(work, f"keras-{m}-{rep}.json")
                run([kpy, keras_script, a.data, m, str(a.epochs), "--threads", "2", "--json", js])
                krows = json.load(open(js))
                keras_rows.append(krows)
                theirs += [x["seconds"] for x in krows if "epoch" in x]
                theirs_later += [x["seconds"] for x in krows if x.get("epoch", 1) > 1]
            # One process, one BLAS thread, two epochs: the model math alone against Keras on 2
            # threads (epoch 2), and epoch 1 against epoch 2 (a first epoch slowed by subnormal
            # numbers shows here); with --baseline-bin the same run of that binary right after.
            for tag, binary in [("", a.bin)] + ([("baseline", a.baseline_bin)] if a.baseline_bin else []):
                r1, _ = run([binary, "train", "--data", a.data, "--run-dir", os.path.join(work, f"{m}-n1{tag}-{rep}"),
                             "--model", m, "--epochs", "2"])
                e = parse_epochs(r1.stdout)
                (n1 if not tag else n1_base).append((e[0]["seconds"], e[1]["seconds"]))
        entry = {"rnn_dist_epoch_s": statistics.median(ours), "rnn_dist_epochs": ours_rows,
                 "rnn_dist_n1_epoch1_s": statistics.median(x[0] for x in n1),
                 "rnn_dist_n1_epoch_s": statistics.median(x[1] for x in n1),
                 "first_epoch_ratio": statistics.median(x[0] / x[1] for x in n1)}
        if n1_base:
            entry.update(baseline_n1_epoch1_s=statistics.median(x[0] for x in n1_base),
                         baseline_n1_epoch_s=statistics.median(x[1] for x in n1_base),
                         baseline_first_epoch_ratio=statistics.median(x[0] / x[1] for x in n1_base),
                         n1_vs_baseline=statistics.median(x[1] / y[1] for x, y in zip(n1, n1_base)),
                         n2_vs_baseline=statistics.median(x / y for x, y in n2_pairs))
        last = ours_rows[-1]
        entry["best_val_acc"] = max(x["val_acc"] for x in last)
        entry["mpi_share_n2"] = statistics.median(x["mpi_share"] for x in last)
        if theirs:
            # n1_speedup sets rnn-dist's epoch 2 against Keras's epochs after its first (its first
            # traces the graph) where the run has them (--epochs ≥ 2); with one epoch, against that one.
            entry.update(keras_epoch_s=statistics.median(theirs), keras=keras_rows,
                         ratio=statistics.median(ours) / statistics.median(theirs),
                         n1_speedup=statistics.median(theirs_later or theirs) / entry["rnn_dist_n1_epoch_s"],
                         n1_speedup_keras_epochs="after the first" if theirs_later else "the first only (--epochs 1)")
            kt = [x for x in keras_rows[-1] if x.get("split") == "test"]
            if kt:
                entry["keras_test_acc"] = kt[0]["acc"]
                entry["keras_eval_s"] = kt[0]["eval_seconds"]
                entry["keras_best_val_acc"] = max(x["val_acc"] for x in keras_rows[-1] if "epoch" in x)
        # eval of the kept best weights on the test split at -n 2.
        if "eval" not in skip:
            best = os.path.join(work, f"{m}-{a.reps - 1}", "best.weights.h5")
            r, t = run(["mpirun", "-n", "2", a.bin, "eval", "--weights", best, "--data", a.data, "--json"])
            ev = json.loads(r.stdout)
            entry.update(test_acc_best=ev["accuracy"], eval_s=ev["seconds"], eval_wall_s=t)
            if "keras_eval_s" in entry:
                entry["eval_speedup"] = entry["keras_eval_s"] / ev["seconds"]
        res["models_table"][m] = entry
        log(m, {k: v for k, v in entry.items() if not isinstance(v, list)})


def section_keras_check(c):
    # 2b. Keras 3 loads each model's best weights and predicts what rnn-dist predicts (Launch/keras_check.py).
    a, skip, work, res, kpy = c.a, c.skip, c.work, c.res, c.kpy
    models = [m for m in c.models if m in res["models_table"]]      # the models section trained them
    if kpy and "keras-check" not in skip and models:
        js = os.path.join(work, "keras-check.json")
        weights = [os.path.join(work, f"{m}-{a.reps - 1}", "best.weights.h5") for m in models]
        r = subprocess.run([kpy, os.path.join(ROOT, "Launch", "keras_check.py"), "--legacy", "--bin", a.bin, "--data", a.data,
                            "--json", js, *weights], capture_output=True, text=True)
        log("keras_check:\n" + (r.stdout.strip() or r.stderr.strip()[-2000:]))
        checks = {c["weights"]: c for c in json.load(open(js))} if os.path.exists(js) else {}
        for m, w in zip(models, weights):
            c = checks.get(w, {"ok": False, "max_abs_diff": None})
            res["models_table"][m].update(keras_check="pass" if c["ok"] else "fail",
                                          keras_check_max_diff=c["max_abs_diff"],
                                          **({"keras_check_error": c["error"]} if "error" in c else {}))


def section_scaling(c):
    # 3. scaling: samples/s at -n 1, 2, 4 for every cell (and -n 2 with the dense exchange, to see
    #    what exchanging only the touched rows changed), alternating, one epoch on --scaling-limit rows.
    #    "pair" is the machine's own ceiling for -n 2: two independent -n 1 runs at once, one per
    #    core; their summed samples/s over the lone -n 1's. On a VM whose cores share a host this is
    #    below 2, and no -n 2 run can beat it.
    a, skip, models, work, res = c.a, c.skip, c.models, c.work, c.res
    if "scaling" not in skip:
        res["scaling"] = {}
        cores = os.cpu_count() or 1
        for m in models:
            sps = {"1": [], "2": [], "4": [], "2-dense": [], "pair": []}
            base = ["train", "--data", a.data, "--model", m, "--epochs", "1", "--limit", str(a.scaling_limit)]
            for rep in range(a.reps):
                for key in ("1", "2", "4", "2-dense") + (("pair",) if cores >= 2 else ()):
                    rd = os.path.join(work, f"scale-{m}-{key}-{rep}")
                    if key == "pair":
                        procs = [subprocess.Popen(["mpirun", "--cpu-set", str(c), "--bind-to", "core", "-n", "1", a.bin] + base +
                                                  ["--run-dir", f"{rd}-{c}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                                 for c in (0, 1)]
                        outs = [p.communicate() for p in procs]
                        if any(p.returncode != 0 for p in procs):
                            raise RuntimeError("concurrent -n 1 runs failed:\n" + "\n".join(e[-2000:] for _, e in outs))
                        sps[key].append(sum(parse_epochs(o)[0]["samples_per_second"] for o, _ in outs))
                        continue
                    n = key.split("-")[0]
                    r, _ = run(["mpirun", "-n", n, a.bin] + base + ["--run-dir", rd] + (["--dense-exchange"] if "dense" in key else []))
                    sps[key].append(parse_epochs(r.stdout)[0]["samples_per_second"])
            med = {k: statistics.median(v) for k, v in sps.items() if v}
            res["scaling"][m] = {"samples_per_second": med, "runs": sps, "n2_over_n1": med["2"] / med["1"],
                                 "n2_over_n1_paired": statistics.median(b / a for a, b in zip(sps["1"], sps["2"])),
                                 "n4_over_n2": med["4"] / med["2"], "n2_dense_over_n1": med["2-dense"] / med["1"]}
            if sps["pair"]:
                res["scaling"][m]["pair_over_n1"] = statistics.median(p / a for a, p in zip(sps["1"], sps["pair"]))
                res["scaling"][m]["n2_over_pair"] = statistics.median(b / p for b, p in zip(sps["2"], sps["pair"]))
            log("scaling", m, {k: v for k, v in res["scaling"][m].items() if k != "runs"})


def section_cluster(c):
    # 3b. the emulated cluster (Launch/cluster-sim, root only): LSTM, 2 hosts × 2 ranks at 1 and 10
    #     Gbit/s with the dense fp32, touched-rows fp32 and touched-rows bf16 exchanges, against the
    #     same job on one host (-n 4), one epoch each, one host first and last.
    a, skip, work, res = c.a, c.skip, c.work, c.res
    if "cluster" not in skip and os.geteuid() == 0:
        def epoch(cmd):
            r, _ = run(cmd)
            return parse_epochs(r.stdout)[0]
        base = ["train", "--data", a.data, "--epochs", "1", "--model", "lstm"]
        one = lambda i: epoch(["mpirun", "-n", "4", a.bin] + base + ["--run-dir", os.path.join(work, f"one-host-{i}")])
        c = {"one_host": [one(0)]}
        for rate in ("1gbit", "10gbit"):
            for mode, extra in (("dense_fp32", ["--dense-exchange"]), ("touched_fp32", []), ("touched_bf16", ["--allreduce-dtype", "bf16"])):
                rd = os.path.join(work, f"sim-{rate}-{mode}")
                c[f"{rate}_{mode}"] = epoch(["bash", os.path.join(ROOT, "Launch", "cluster-sim"), "--hosts", "2", "--slots", "2",
                                             "--rate", rate, "--", *base, "--run-dir", rd, *extra])
        c["one_host"].append(one(1))
        one_s = statistics.median(x["seconds"] for x in c["one_host"])
        res["cluster"] = c
        res["cluster_ratios"] = {k: v["seconds"] / one_s for k, v in c.items() if k != "one_host"}
        log("cluster", res["cluster_ratios"])


def section_bf16(c):
    # 3c. bf16 transport, accuracy: LSTM, --accuracy-epochs epochs at -n 2, fp32 and bf16.
    a, skip, work, res = c.a, c.skip, c.work, c.res
    if "bf16" not in skip:
        acc = {}
        for dt in ("fp32", "bf16"):
            r, _ = run(["mpirun", "-n", "2", a.bin, "train", "--data", a.data, "--model", "lstm", "--epochs", str(a.accuracy_epochs),
                        "--run-dir", os.path.join(work, f"acc-{dt}"), "--allreduce-dtype", dt])
            rows = parse_epochs(r.stdout)
            acc[dt] = {"best_val_acc": max(x["val_acc"] for x in rows), "epochs": rows}
        res["bf16"] = {"fp32_best_val_acc": acc["fp32"]["best_val_acc"], "bf16_best_val_acc": acc["bf16"]["best_val_acc"],
                       "difference": acc["bf16"]["best_val_acc"] - acc["fp32"]["best_val_acc"], "runs": acc}
        log("bf16", {k: v for k, v in res["bf16"].items() if k != "runs"})


def section_timeline(c):
    # 3c'. what --timeline costs: the measured cost of recording and flushing one span
    #      (`selftest timeline-cost`) times the spans per step of a real traced run, over its median
    #      step; and, for reference, alternating runs with and without the timeline (noisy).
    a, skip, work, res = c.a, c.skip, c.work, c.res
    if "timeline" not in skip:
        r, _ = run([a.bin, "selftest", "timeline-cost", "--output", os.path.join(work, "cost.json")])
        cost = json.loads(r.stdout)
        trace = os.path.join(work, "trace.json")
        run(["mpirun", "-n", "2", a.bin, "train", "--data", a.data, "--epochs", "1", "--limit", str(a.scaling_limit),
             "--run-dir", os.path.join(work, "traced"), "--timeline", trace])
        events = [e for e in json.load(open(trace)) if e.get("ph") == "X"]
        steps = [e["dur"] for e in events if e["name"] == "step"]
        per_step = len(events) / len(steps)
        step_s = statistics.median(steps) / 1e6
        per_span = cost["record_seconds_per_span"] + cost["flush_seconds_per_span"]
        sps = {"with": [], "without": []}
        for rep in range(max(a.reps, 3)):
            for k in ("without", "with"):
                rr, _ = run(["mpirun", "-n", "2", a.bin, "train", "--data", a.data, "--epochs", "1", "--limit", str(a.scaling_limit),
                             "--run-dir", os.path.join(work, f"tl-{k}-{rep}")]
                            + (["--timeline", os.path.join(work, f"tl-{rep}.json")] if k == "with" else []))
                sps[k].append(parse_epochs(rr.stdout)[0]["samples_per_second"])
        res["timeline"] = {"cost": cost, "spans_per_step": per_step, "median_step_s": step_s,
                           "estimated_overhead": per_step * per_span / step_s,
                           "samples_per_second": sps,
                           "wall_clock_ratio": statistics.median(sps["without"]) / statistics.median(sps["with"])}
        log("timeline", res["timeline"])


def section_ch63(c):
    # 3d. chapter 6.3: dropout, recurrent dropout, bidirectional (issue targets in docs/BENCHMARKS.md).
    a, skip, work, res, kpy, keras_script = c.a, c.skip, c.work, c.res, c.kpy, c.keras_script
    if "ch63" not in skip:
        res["ch63"] = ch63(a, kpy, keras_script, work)


def section_memory(c):
    # 4. peak RSS per rank at -n 4, as the trainer reports it (VmHWM, max over ranks).
    a, skip, work, res = c.a, c.skip, c.work, c.res
    if "memory" not in skip:
        rd = os.path.join(work, "mem")
        r, _ = run(["mpirun", "-n", "4", a.bin, "train", "--data", a.data, "--run-dir", rd, "--epochs", "1",
                    "--limit", str(a.scaling_limit)])
        m = re.search(r"peak RSS per rank: ([\d.]+) MB", r.stdout + r.stderr)   # stderr with --log-format json
        res["peak_rss_mb_per_rank"] = float(m[1]) if m else None
        log("peak RSS per rank (MB)", res["peak_rss_mb_per_rank"])


# What section_own_data reads from each dataset file, printed as JSON by a Python that has h5py (the
# benchmark's venv): every array's dtype, shape and SHA-256 (of its bytes as stored), the class names
# (/class_names, bytes + offsets; none in files written before it existed) and num_classes.
H5_DIGEST = r"""
import hashlib, json, sys, h5py
out = {}
for path in sys.argv[1:]:
    with h5py.File(path, "r") as f:
        d = {}
        for name in ("train/x", "train/y", "test/x", "test/y", "vocab/bytes", "vocab/offsets"):
            a = f[name][...]
            d[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": hashlib.sha256(a.tobytes()).hexdigest()}
        raw, off = f["vocab/bytes"][...].tobytes(), f["vocab/offsets"][...]
        d["vocab_words_sha256"] = hashlib.sha256(b"\n".join(raw[off[k]:off[k + 1]] for k in range(len(off) - 1))).hexdigest()
        if "class_names" in f:
            raw, off = f["class_names/bytes"][...].tobytes(), f["class_names/offsets"][...]
            d["class_names"] = [raw[off[k]:off[k + 1]].decode("utf-8", "replace") for k in range(len(off) - 1)]
        d["num_classes"] = int(f.attrs["num_classes"]) if "num_classes" in f.attrs else None
        out[path] = d
print(json.dumps(out))
"""
OWN_ARRAYS = ("train/x", "train/y", "test/x", "test/y", "vocab/bytes", "vocab/offsets")


def h5_python(c):
    """A Python with h5py: the Keras venv's, else this one when it has h5py, else None."""
    for py in (c.kpy, sys.executable):
        if py and subprocess.run([py, "-c", "import h5py"], capture_output=True).returncode == 0:
            return py
    return None


def section_own_data(c):
    # 5. the user's own data (`prepare --format`): IMDB re-packaged by Launch/imdb_repackage.py as CSV,
    #    TSV, JSONL (train + --test-source) and class folders must give the tarball's /train/x, /train/y,
    #    /test/x, /test/y and /vocab, array for array; prepare of the CSV pair against the Python
    #    reference on the same pair (alternating, --own-data-reps runs each); and a 4-class task (star
    #    ratings: awful, bad, good, great) trained with LSTM at -n 2 for --own-data-epochs epochs,
    #    evaluated on the test split (accuracy, macro F1), against Keras on the same file.
    a, skip, work, res, kpy, keras_script = c.a, c.skip, c.work, c.res, c.kpy, c.keras_script
    if "own-data" in skip:
        return
    if not os.path.exists(a.tarball):
        log(f"own-data: the IMDB tarball {a.tarball} does not exist: section skipped")
        return
    od = os.path.join(work, "own-data")
    repack = os.path.join(od, "repack")
    os.makedirs(od, exist_ok=True)
    out = res["own_data"] = {}
    r, t = run([sys.executable, os.path.join(ROOT, "Launch", "imdb_repackage.py"), a.tarball, repack])
    out["repackage"] = {"seconds": t, "report": r.stdout.splitlines()}
    log("own-data repackage:\n" + r.stdout.strip())

    def pair(fmt, ext, *extra):
        d = os.path.join(repack, fmt)
        return ["--source", os.path.join(d, f"train.{ext}"), "--format", "csv" if fmt == "ratings4" else fmt,
                "--test-source", os.path.join(d, f"test.{ext}"), *extra]
    csv_train, csv_test = (os.path.join(repack, "csv", f"{s}.csv") for s in ("train", "test"))
    sources = {"csv": pair("csv", "csv", "--text-column", "text", "--label-column", "label"),
               "tsv": pair("tsv", "tsv"), "jsonl": pair("jsonl", "jsonl"),
               "folders": ["--source", os.path.join(repack, "folders"), "--format", "folders"]}

    # (2) prepare of each re-packaging against prepare of the tarball, array for array.
    files = {"tarball": os.path.join(od, "tarball.h5")}
    run([a.bin, "prepare", "--source", a.tarball, "-o", files["tarball"]])
    errors = {}
    for fmt, args in sources.items():
        files[fmt] = os.path.join(od, f"{fmt}.h5")
        try:
            run([a.bin, "prepare", *args, "-o", files[fmt]])
        except RuntimeError as e:
            errors[fmt] = " ".join(str(e).split())[-500:]
            del files[fmt]
    py = h5_python(c)
    out["formats"] = {fmt: {"identical": False, "error": errors[fmt]} for fmt in errors}
    if py:
        r, _ = run([py, "-c", H5_DIGEST, *files.values()])
        digest = json.loads(r.stdout)
        ref = digest[files["tarball"]]
        out["tarball_class_names"] = ref.get("class_names")
        for fmt in sources:
            if fmt in files:
                d = digest[files[fmt]]
                differs = [n for n in OWN_ARRAYS if d[n] != ref[n]]
                out["formats"][fmt] = {"identical": not differs, "differs": differs,
                                       "class_names": d.get("class_names"), "num_classes": d.get("num_classes")}
    else:
        log("own-data: no Python with h5py: the arrays are not compared")
    log("own-data formats", out["formats"])

    # (3) prepare of the CSV pair against the Python reference on the same pair, alternating.
    ours, theirs = [], []
    ref_out = None
    for rep in range(a.own_data_reps):
        _, t = run([a.bin, "prepare", *sources["csv"], "-o", os.path.join(od, f"csv-timed-{rep}.h5")])
        ours.append(t)
        r, t = run([sys.executable, os.path.join(ROOT, "Launch", "py_tokenize_reference.py"), csv_train,
                    "--format", "csv", "--test-source", csv_test])
        theirs.append(t)
        ref_out = r.stdout
    out["prepare_csv"] = {"rnn_dist_s": statistics.median(ours), "python_s": statistics.median(theirs),
                          "speedup": statistics.median(theirs) / statistics.median(ours), "rnn_dist_runs": ours,
                          "python_runs": theirs}
    if py and "csv" in files:
        # The reference's printed hashes (16 hex digits) against the arrays prepare wrote.
        d = digest[files["csv"]]
        hashes = {m[0]: (m[1], m[2]) for m in re.findall(r"^(train|test): .*sha256 x (\w+) y (\w+)", ref_out, re.M)}
        vocab = re.search(r"^vocab sha256 (\w+)", ref_out, re.M)
        out["prepare_csv"]["python_reference_agrees"] = bool(
            vocab and vocab[1] == d["vocab_words_sha256"][:16]
            and all(hashes.get(s) == (d[f"{s}/x"]["sha256"][:16], d[f"{s}/y"]["sha256"][:16]) for s in ("train", "test")))
    log("own-data prepare csv", {k: v for k, v in out["prepare_csv"].items() if not k.endswith("_runs")})

    # (4) the 4-class task: prepare, train -n 2, eval --json on the test split; Keras on the same file.
    r4 = os.path.join(od, "ratings4.h5")
    r, _ = run([a.bin, "prepare", *pair("ratings4", "csv"), "-o", r4])
    rd = os.path.join(od, "ratings4-lstm")
    r, t = run(["mpirun", "-n", "2", a.bin, "train", "--data", r4, "--run-dir", rd, "--model", "lstm",
                "--epochs", str(a.own_data_epochs)])
    rows = parse_epochs(r.stdout)
    ev, _ = run(["mpirun", "-n", "2", a.bin, "eval", "--weights", os.path.join(rd, "best.weights.h5"), "--data", r4,
                 "--split", "test", "--json"])
    e = json.loads(ev.stdout)
    four = out["ratings4"] = {
        "epochs": a.own_data_epochs, "classes": e.get("classes"), "train_wall_s": t,
        "epoch_s": statistics.median(x["seconds"] for x in rows) if rows else None,
        "best_val_acc": max(x["val_acc"] for x in rows) if rows else None,
        "test_acc_best": e["accuracy"], "test_macro_f1_best": e["macro_avg"]["f1"],
        "per_class": e.get("per_class"), "confusion_matrix": e.get("confusion_matrix"), "epochs_log": rows}
    if kpy:
        js = os.path.join(od, "keras-ratings4.json")
        run([kpy, keras_script, r4, "lstm", str(a.own_data_epochs), "--threads", "2", "--json", js])
        krows = json.load(open(js))
        kt = next(x for x in krows if x.get("split") == "test")
        ep = [x for x in krows if "epoch" in x]
        four.update(keras_test_acc=kt["acc"], keras_macro_f1=kt.get("macro_f1"),
                    keras_best_val_acc=max(x["val_acc"] for x in ep), keras_epoch_s=statistics.median(x["seconds"] for x in ep),
                    keras_per_class=kt.get("per_class"), keras_confusion_matrix=kt.get("confusion_matrix"))
        if "keras-check" not in skip:
            # Keras 3 loads the softmax model and predicts every class's probability as rnn-dist does.
            jc = os.path.join(od, "keras-check-ratings4.json")
            r = subprocess.run([kpy, os.path.join(ROOT, "Launch", "keras_check.py"), "--bin", a.bin, "--data", r4, "--json", jc,
                                os.path.join(rd, "best.weights.h5")], capture_output=True, text=True)
            log("own-data keras_check:\n" + (r.stdout.strip() or r.stderr.strip()[-2000:]))
            chk = json.load(open(jc))[0] if os.path.exists(jc) else {"ok": False, "max_abs_diff": None}
            four.update(keras_check="pass" if chk["ok"] else "fail", keras_check_max_diff=chk.get("max_abs_diff"),
                        **({"keras_check_error": chk["error"]} if "error" in chk else {}))
    log("own-data ratings4", {k: v for k, v in four.items() if k not in ("epochs_log", "per_class", "keras_per_class")})
    shutil.rmtree(repack, ignore_errors=True)


# The chapter-6 models of section chapter6: (data: "500" the main dataset or "20" one prepared with
# --maxlen 20, the book's batch, its RMSprop learning rate, the epochs flag that sets their count).
CH6 = {"flatten": ("20", 32, 1e-3, "ch6_epochs"), "convnet": ("500", 128, 1e-4, "ch6_epochs"),
       "convgru": ("500", 128, 1e-3, "ch6_gru_epochs")}


def section_chapter6(c):
    # 6. the book's chapter-6 models from their Keras JSON (Launch/chapter6_models.py): 6.1's Flatten
    #    model (maxlen 20, batch 32), 6.4's convnet (lr 1e-4) and Conv1D -> GRU, each trained with
    #    `mpirun -n 2 rnn-dist train --model-config` and by Keras (2 threads) on the same arrays: epoch
    #    time, best val_acc, and keras_check of the best weights (model_from_json + load_weights
    #    predicts as rnn-dist predict). Then the book LSTM -n 2 with and without --freeze-embeddings:
    #    exchange MB/batch and epoch time.
    a, skip, work, res, kpy, keras_script = c.a, c.skip, c.work, c.res, c.kpy, c.keras_script
    if "chapter6" in skip:
        return
    if not kpy:
        log("chapter6: no Keras (its venv) to write the models' JSON: section skipped")
        return
    d = os.path.join(work, "chapter6")
    os.makedirs(d, exist_ok=True)
    out = res["chapter6"] = {"models": {}}
    run([kpy, os.path.join(ROOT, "Launch", "chapter6_models.py"), d])
    data = {"500": a.data, "20": os.path.join(d, "imdb-maxlen20.h5")}
    if os.path.exists(a.tarball):
        run([a.bin, "prepare", "--source", a.tarball, "--maxlen", "20", "-o", data["20"]])
    only = [m for m in (a.ch6_models.split(",") if a.ch6_models else CH6) if m in CH6]
    for name in only:
        which, batch, lr, epochs_flag = CH6[name]
        if not os.path.exists(data[which]):
            log(f"chapter6 {name}: no maxlen-{which} dataset (the tarball is needed): skipped")
            continue
        epochs = getattr(a, epochs_flag)
        cfg = os.path.join(d, f"{name}.json")
        rd = os.path.join(d, f"run-{name}")
        r, t = run(["mpirun", "-n", "2", a.bin, "train", "--data", data[which], "--run-dir", rd, "--model-config", cfg,
                    "--epochs", str(epochs), "--batch-size", str(batch), "--lr", str(lr)])
        rows = parse_epochs(r.stdout)
        m = out["models"][name] = {
            "epochs": epochs, "batch": batch, "lr": lr, "maxlen": int(which), "train_wall_s": t,
            "rnn_dist_epoch_s": statistics.median(x["seconds"] for x in rows[1:] or rows),
            "rnn_dist_best_val_acc": max(x["val_acc"] for x in rows), "epochs_log": rows}
        js = os.path.join(d, f"keras-{name}.json")
        run([kpy, keras_script, data[which], "json", str(epochs), "--model-json", cfg, "--lr", str(lr), "--batch-size", str(batch),
             "--threads", "2", "--json", js])
        krows = [x for x in json.load(open(js)) if "epoch" in x]
        m.update(keras_epoch_s=statistics.median(x["seconds"] for x in krows[1:] or krows),
                 keras_best_val_acc=max(x["val_acc"] for x in krows), keras_epochs_log=krows)
        m["ratio"] = m["rnn_dist_epoch_s"] / m["keras_epoch_s"]
        m["val_acc_difference"] = m["rnn_dist_best_val_acc"] - m["keras_best_val_acc"]
        if "keras-check" not in skip:
            jc = os.path.join(d, f"check-{name}.json")
            r = subprocess.run([kpy, os.path.join(ROOT, "Launch", "keras_check.py"), "--legacy", "--bin", a.bin, "--data", data[which],
                                "--rows", "64", "--model-json", cfg, "--json", jc, os.path.join(rd, "best.weights.h5")],
                               capture_output=True, text=True)
            log(f"chapter6 {name} keras_check:\n" + (r.stdout.strip() or r.stderr.strip()[-2000:]))
            chk = json.load(open(jc))[0] if os.path.exists(jc) else {"ok": False, "max_abs_diff": None}
            m.update(keras_check="pass" if chk["ok"] else "fail", keras_check_max_diff=chk.get("max_abs_diff"),
                     keras_legacy_max_diff=chk.get("legacy_max_abs_diff"))
        log(f"chapter6 {name}", {k: v for k, v in m.items() if not k.endswith("epochs_log")})
    # Every supported layer and option once: the test fixtures (Tests/RNNTests/Fixtures/keras-*.json,
    # vocabulary 18, maxlen 40) on IMDB prepared at those sizes, one epoch at -n 2, then keras_check.
    fixtures = sorted(f[6:-5] for f in os.listdir(os.path.join(ROOT, "Tests", "RNNTests", "Fixtures"))
                      if f.startswith("keras-") and f.endswith(".json"))
    small = os.path.join(d, "imdb-18-40.h5")
    if "keras-check" not in skip and os.path.exists(a.tarball):
        run([a.bin, "prepare", "--source", a.tarball, "--num-words", "18", "--maxlen", "40", "-o", small])
        out["fixtures"] = {}
        for name in fixtures:
            cfg = os.path.join(ROOT, "Tests", "RNNTests", "Fixtures", f"keras-{name}.json")
            rd = os.path.join(d, f"fixture-{name}")
            r = subprocess.run(["mpirun", "-n", "2", a.bin, "train", "--data", small, "--run-dir", rd, "--model-config", cfg,
                                "--epochs", "1", "--limit", "4000"], capture_output=True, text=True)
            if r.returncode != 0:      # the fixtures Keras cannot run as rnn-dist would are refused: that line
                line = next((l for l in r.stderr.splitlines() if "rnn-dist: error:" in l), r.stderr.strip()[-300:])
                out["fixtures"][name] = {"trained": False, "refusal": line}
                continue
            jc = os.path.join(d, f"check-fixture-{name}.json")
            subprocess.run([kpy, os.path.join(ROOT, "Launch", "keras_check.py"), "--legacy", "--bin", a.bin, "--data", small,
                            "--model-json", cfg, "--json", jc, os.path.join(rd, "model.weights.h5")], capture_output=True, text=True)
            chk = json.load(open(jc))[0] if os.path.exists(jc) else {"ok": False}
            out["fixtures"][name] = {"trained": True, "keras_check": "pass" if chk.get("ok") else "fail",
                                     "max_abs_diff": chk.get("max_abs_diff"), "legacy_max_abs_diff": chk.get("legacy_max_abs_diff"),
                                     **({"error": chk["error"]} if "error" in chk else {})}
        log("chapter6 fixtures", out["fixtures"])
    # Frozen against trainable embeddings, the book LSTM at -n 2, one epoch each (the second of two).
    frozen = out["frozen_embeddings"] = {}
    for label, extra in (("trainable", []), ("frozen", ["--freeze-embeddings"])):
        r, _ = run(["mpirun", "-n", "2", a.bin, "train", "--data", a.data, "--run-dir", os.path.join(d, f"lstm-{label}"),
                    "--model", "lstm", "--epochs", "2"] + extra)
        rows = parse_epochs(r.stdout)
        frozen[label] = {"epoch_s": rows[-1]["seconds"], "exchange_mb_per_batch": rows[-1]["exchange_mb_per_batch"],
                         "embedding_rows_per_batch": rows[-1]["embedding_rows_per_batch"], "val_acc": rows[-1]["val_acc"]}
    frozen["time_ratio"] = frozen["frozen"]["epoch_s"] / frozen["trainable"]["epoch_s"]
    log("chapter6 frozen embeddings", frozen)


def section_watchdog(c):
    # 7. the collective watchdog's cost (#22): the book LSTM at -n 2 on --watchdog-limit rows, 2 epochs,
    #    --collective-timeout 0 (off) and the default (on) alternating --watchdog-reps times; the
    #    ratio of epoch-2 samples/s, per back-to-back pair, then the median.
    a, skip, work, res = c.a, c.skip, c.work, c.res
    if "watchdog" in skip:
        return
    out = res["watchdog"] = {"off": [], "on": [], "pair_ratios": []}
    for rep in range(a.watchdog_reps):
        pair = {}
        for label, extra in (("off", ["--collective-timeout", "0"]), ("on", [])):
            r, _ = run(["mpirun", "-n", "2", a.bin, "train", "--data", a.data, "--run-dir", os.path.join(work, f"wd-{label}-{rep}"),
                        "--model", "lstm", "--epochs", "2", "--limit", str(a.watchdog_limit)] + extra)
            pair[label] = parse_epochs(r.stdout)[-1]["samples_per_second"]
            out[label].append(pair[label])
        out["pair_ratios"].append(pair["off"] / pair["on"])
    out["time_ratio_on_over_off"] = statistics.median(out["pair_ratios"])
    log("watchdog", out)


REPRODUCIBLE_MODELS = {"simple-rnn": ["--model", "simple-rnn"], "lstm": ["--model", "lstm"], "gru": ["--model", "gru"],
                       "bilstm-dropout": ["--model", "lstm", "--bidirectional", "--dropout", "0.2", "--recurrent-dropout", "0.2"]}


def section_reproducible(c):
    # 8. --reproducible (#25). (a) One full-data epoch of each REPRODUCIBLE_MODELS model at -n 1, 2
    #    and 4 with --reproducible: is model.weights.h5 the same bytes (the file holds no clock), and
    #    are the epoch's metrics equal? Against the default exchange at -n 2: epoch time and bytes per
    #    batch. (b) --reproducible-pair-models at -n 2, --reproducible-reps back-to-back pairs: the
    #    epoch-time ratio. (c) Root only, unless skipped as reproducible-cluster: 2 emulated hosts x 2 ranks at 1 Gbit/s, --reproducible, against -n 1 (bits) and against
    #    the default exchange on the same emulated cluster (time). (d) LSTM, --accuracy-epochs epochs
    #    at -n 2, both modes: best val_acc.
    a, skip, work, res = c.a, c.skip, c.work, c.res
    if "reproducible" in skip:
        return
    out = res["reproducible"] = {"models": {}}

    def train(n, rd, flags, *extra, launcher=None):
        args = ["train", "--data", a.data, "--run-dir", os.path.join(work, rd)] + flags + list(extra)
        if launcher:       # Launch/cluster-sim runs the binary RNN_DIST_BIN names
            r, _ = run(launcher + ["train", "--log-format", "json"] + args[1:], env=dict(os.environ, RNN_DIST_BIN=a.bin))
        else:
            r, _ = run(["mpirun", "-n", str(n), a.bin] + args)
        with open(os.path.join(work, rd, "model.weights.h5"), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        return parse_epochs(r.stdout), digest

    metrics = ("loss", "acc", "val_loss", "val_acc")
    for name, flags in REPRODUCIBLE_MODELS.items():
        if name not in a.reproducible_models.split(","):
            continue
        m = out["models"][name] = {}
        runs = {}
        for n in (1, 2, 4):
            runs[n] = train(n, f"repro-{name}-{n}", flags, "--epochs", "1", "--reproducible")
        default = train(2, f"default-{name}-2", flags, "--epochs", "1")
        m["identical_weights"] = len({d for _, d in runs.values()}) == 1
        m["identical_metrics"] = len({tuple(e[0][k] for k in metrics) for e, _ in runs.values()}) == 1
        m["seconds"] = {str(n): e[0]["seconds"] for n, (e, _) in runs.items()}
        m["default_n2_seconds"] = default[0][0]["seconds"]
        m["n2_time_ratio"] = runs[2][0][0]["seconds"] / default[0][0]["seconds"]
        m["mb_per_batch"] = runs[2][0][0]["exchange_mb_per_batch"]
        m["default_mb_per_batch"] = default[0][0]["exchange_mb_per_batch"]
        m["val_loss"] = {"reproducible": runs[1][0][0]["val_loss"], "default_n2": default[0][0]["val_loss"]}
        log("reproducible", name, m)
    out["pairs"] = {}
    for name in filter(None, a.reproducible_pair_models.split(",")):
        pairs = out["pairs"][name] = {"default": [], "reproducible": [], "ratios": []}
        for rep in range(a.reproducible_reps):
            d = train(2, f"pair-d-{name}-{rep}", REPRODUCIBLE_MODELS[name] + ["--epochs", "1"])[0][0]["seconds"]
            r = train(2, f"pair-r-{name}-{rep}", REPRODUCIBLE_MODELS[name] + ["--epochs", "1", "--reproducible"])[0][0]["seconds"]
            pairs["default"].append(d); pairs["reproducible"].append(r); pairs["ratios"].append(r / d)
        if pairs["ratios"]:
            pairs["median_ratio"] = statistics.median(pairs["ratios"])
            log("reproducible pairs", name, pairs)
    if "reproducible-cluster" not in skip and os.geteuid() == 0:
        sim = ["bash", os.path.join(ROOT, "Launch", "cluster-sim"), "--hosts", "2", "--slots", "2", "--rate", "1gbit", "--"]
        lstm = ["--model", "lstm", "--epochs", "1"]
        one = train(1, "cl-one", lstm, "--reproducible")
        simr = train(None, "cl-sim-r", lstm, "--reproducible", launcher=sim)
        simd = train(None, "cl-sim-d", lstm, launcher=sim)
        out["cluster"] = {"identical_to_n1": one[1] == simr[1], "reproducible_seconds": simr[0][0]["seconds"],
                          "default_seconds": simd[0][0]["seconds"], "time_ratio": simr[0][0]["seconds"] / simd[0][0]["seconds"],
                          "mpi_share": {"reproducible": simr[0][0]["mpi_share"], "default": simd[0][0]["mpi_share"]}}
        log("reproducible cluster", out["cluster"])
    if a.reproducible_accuracy:
        acc = out["accuracy"] = {}
        for label, extra in (("default", []), ("reproducible", ["--reproducible"])):
            e, _ = train(2, f"acc-{label}", ["--model", "lstm", "--epochs", str(a.accuracy_epochs)], *extra)
            acc[label] = {"best_val_acc": max(x["val_acc"] for x in e), "val_acc": [x["val_acc"] for x in e],
                          "seconds": [x["seconds"] for x in e]}
        acc["difference"] = acc["reproducible"]["best_val_acc"] - acc["default"]["best_val_acc"]
        log("reproducible accuracy", acc)


# The sections --skip names.
SKIPPABLE = ("models", "keras", "keras-check", "prepare", "scaling", "cluster", "bf16", "eval", "memory", "ch63", "timeline",
            "own-data", "chapter6", "watchdog", "reproducible", "reproducible-cluster", "floor", "serve")
FLOOR_MODELS = {"simple-rnn": ["--model", "simple-rnn"], "lstm": ["--model", "lstm"], "gru": ["--model", "gru"],
                "bilstm": ["--model", "lstm", "--bidirectional"]}


def section_floor(c):
    # 9. The machine's floor (#24), per --floor-models cell at -n 1, batch 128, every training row
    #    (--validation-split 0: 196 steps of 500 time steps an epoch): (1) the matrix products the
    #    code performs, counted by shape while it runs (RNN_DIST_COUNT_PRODUCTS; 2 epochs, halved);
    #    (2) each shape timed alone on this machine, single-threaded (`selftest products`); (3) the
    #    epoch-2 training-step time over that product time. Then the same for `eval` of the 25,000
    #    test reviews with the epoch's weights.
    a, skip, work, res = c.a, c.skip, c.work, c.res
    if "floor" in skip:
        return
    out = res["floor"] = {}
    for name in filter(None, a.floor_models.split(",")):
        rd = os.path.join(work, f"floor-{name}")
        counts, ecounts = os.path.join(work, f"floor-{name}.json"), os.path.join(work, f"floor-{name}-eval.json")
        r, _ = run([a.bin, "train", "--data", a.data, "--run-dir", rd, "--epochs", "2", "--validation-split", "0"] + FLOOR_MODELS[name],
                   env=dict(os.environ, RNN_DIST_COUNT_PRODUCTS=counts))
        e2 = parse_epochs(r.stdout)[-1]
        m = re.search(r"(\d+) training and", r.stdout + r.stderr)   # stderr with --log-format json
        rows = int(m[1]) if m else 25000
        step_seconds = rows / e2["samples_per_second"]
        p, _ = run([a.bin, "selftest", "products", counts, "--per", "2"])
        prod = json.loads(p.stdout)
        er, _ = run([a.bin, "eval", "--weights", os.path.join(rd, "model.weights.h5"), "--data", a.data, "--split", "test", "--json"],
                    env=dict(os.environ, RNN_DIST_COUNT_PRODUCTS=ecounts))
        eval_seconds = json.loads(er.stdout)["seconds"]
        ep, _ = run([a.bin, "selftest", "products", ecounts])
        eprod = json.loads(ep.stdout)
        time_steps = -(-rows // 128) * 500
        out[name] = {"epoch_step_seconds": step_seconds, "product_seconds": prod["product_seconds"],
                     "ratio": step_seconds / prod["product_seconds"], "us_per_time_step": step_seconds / time_steps * 1e6,
                     "product_us_per_time_step": prod["product_seconds"] / time_steps * 1e6, "gflop_per_epoch": prod["flop"] / 1e9,
                     "product_gflops": prod["gflops"], "calls_per_epoch": prod["calls"], "top": prod["top"],
                     "eval_seconds": eval_seconds, "eval_product_seconds": eprod["product_seconds"],
                     "eval_ratio": eval_seconds / eprod["product_seconds"], "eval_top": eprod["top"],
                     "as_run_product_seconds": prod.get("as_run_seconds"), "eval_as_run_product_seconds": eprod.get("as_run_seconds")}
        log("floor", name, {k: v for k, v in out[name].items() if not k.endswith("top")})


def print_floor(f):
    print("\nfloor, -n 1, batch 128: epoch-2 training steps and eval of the 25,000 test reviews against the time of the matrix "
          "products they perform (each shape timed alone here)")
    print("| cell | step s/epoch | products s/epoch | ratio | µs per time step (products) | GFLOP/epoch | eval s | eval products s | eval ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, x in f.items():
        print(f"| {name} | {x['epoch_step_seconds']:.2f} | {x['product_seconds']:.2f} | {x['ratio']:.2f} | "
              f"{x['us_per_time_step']:.1f} ({x['product_us_per_time_step']:.1f}) | {x['gflop_per_epoch']:.1f} | "
              f"{x['eval_seconds']:.2f} | {x['eval_product_seconds']:.2f} | {x['eval_ratio']:.2f} |")
    # The same products as the code runs them: rnn-dist's own kernel where it takes a shape (BLAS.ownKernel).
    if all(x.get("as_run_product_seconds") is not None for x in f.values()):
        print("\nthe same products as the code runs them (rnn-dist's own kernel for the small ones where the CPU has AVX2 "
              "and FMA; RNN_DIST_OWN_GEMM=0 turns it off), each shape timed alone")
        print("| cell | training products s/epoch: OpenBLAS, as run | eval products s: OpenBLAS, as run |")
        print("| --- | --- | --- |")
        for name, x in f.items():
            print(f"| {name} | {x['product_seconds']:.2f}, {x['as_run_product_seconds']:.2f} | "
                  f"{x['eval_product_seconds']:.2f}, {x['eval_as_run_product_seconds']:.2f} |")

# One made-up review of typical length (~170 words; IMDB's median is ~175), sent as one request each.
SERVE_REVIEW = ("I went into this film expecting very little, and for the first half hour that is exactly what I got: a slow, "
                "muddled setup, characters who talk past each other, and a score that never stops telling you how to feel. Then "
                "something changes. The lead, who had been coasting, suddenly finds the heart of the story, and the scenes with her "
                "estranged father are some of the most honest I have seen this year. The cinematography is lovely without showing "
                "off, the editing tightens, and by the end I was genuinely moved. It is not a perfect movie; the subplot about the "
                "business deal goes nowhere and the villain is a cartoon. But the performances carry it, and I would recommend it "
                "to anyone who likes quiet family dramas with a little humour. Seven out of ten, and a reminder not to judge a film "
                "by its first act.")


def wrk_duration(text):
    """wrk's '3.99ms' / '512.00us' / '1.02s' in seconds."""
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m[1]) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m[2]]


def section_serve(c):
    # 10. `serve` under load (#23): the LSTM of Launch/run (book defaults, one epoch at -n 2: the
    #     weights' values do not change the cost), `serve` with its defaults on loopback, `wrk` with one
    #     review per POST /v1/predict for --serve-seconds at 1, 16 and 64 connections (one wrk thread):
    #     requests/s (= predictions/s), p50/p99 latency, errors (non-2xx, socket errors).
    a, skip, work, res = c.a, c.skip, c.work, c.res
    if "serve" in skip:
        return
    if not shutil.which("wrk"):
        log("serve: wrk is not installed (Launch/bench installs it); section skipped")
        return
    rd = os.path.join(work, "serve-lstm")
    run(["mpirun", "-n", "2", a.bin, "train", "--data", a.data, "--run-dir", rd, "--epochs", "1"])
    weights = os.path.join(rd, "model.weights.h5")
    script = os.path.join(work, "serve.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = {json.dumps(json.dumps({'texts': [SERVE_REVIEW]}))}\n")
    out = res["serve"] = {"seconds": a.serve_seconds, "runs": {}}
    server = subprocess.Popen([a.bin, "serve", "--weights", weights, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        port = int(re.search(r":(\d+) ", line)[1])
        url = f"http://127.0.0.1:{port}/v1/predict"
        for conns in (1, 16, 64):
            r, _ = run(["wrk", "-t", "1", "-c", str(conns), "-d", f"{a.serve_seconds}s", "--latency", "-s", script, url])
            t = r.stdout
            lat = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)$", t, re.M))
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
            sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
            out["runs"][conns] = {"requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", t)[1]),
                                  "p50_seconds": wrk_duration(lat["50"]), "p99_seconds": wrk_duration(lat["99"]),
                                  "errors": (int(non2xx[1]) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)}
            log("serve", conns, "connections", out["runs"][conns])
        import urllib.request
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        m_sum = re.search(r"^rnn_dist_batch_texts_sum ([\d.e+]+)$", metrics, re.M)
        m_cnt = re.search(r"^rnn_dist_batch_texts_count (\d+)$", metrics, re.M)
        if m_sum and m_cnt and int(m_cnt[1]) > 0:
            out["mean_batch_texts"] = float(m_sum[1]) / int(m_cnt[1])
    finally:
        server.terminate()
        out["exit_status"] = server.wait(timeout=30)


def print_serve(s):
    print(f"\nserve, LSTM of Launch/run, one review per request, wrk {s['seconds']} s per row; mean texts per forward pass "
          f"{s.get('mean_batch_texts', float('nan')):.1f}; exit status after SIGTERM {s['exit_status']}")
    print("| connections | predictions/s | p50 ms | p99 ms | errors |")
    print("| --- | --- | --- | --- | --- |")
    for conns, x in s["runs"].items():
        print(f"| {conns} | {x['requests_per_second']:.0f} | {x['p50_seconds'] * 1e3:.2f} | {x['p99_seconds'] * 1e3:.2f} | {x['errors']} |")


# In the order they run.
SECTIONS = [section_models, section_keras_check, section_scaling, section_cluster, section_bf16, section_timeline, section_ch63,
            section_memory, section_own_data, section_chapter6, section_watchdog, section_reproducible, section_floor,
            section_serve]


def main():
    ap = argparse.ArgumentParser(description="The benchmark (docs/BENCHMARKS.md). Launch/bench sets up, builds the release "
                                 "binary and passes it as --bin; every other option goes through.")
    ap.add_argument("--bin", required=True, help="the rnn-dist binary to measure")
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "imdb.h5"))
    ap.add_argument("--tarball", default=os.environ.get("IMDB_TARBALL", os.path.join(SHARED, "data", "aclImdb_v1.tar.gz")))
    ap.add_argument("--models", default="simple-rnn,lstm,gru")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--scaling-limit", type=int, default=10000, help="training rows for the -n 1/2/4 scaling runs")
    ap.add_argument("--accuracy-epochs", type=int, default=10, help="epochs of the bf16-vs-fp32 accuracy runs")
    ap.add_argument("--baseline-bin", help="another rnn-dist build: its -n 1 two-epoch runs alternate with ours")
    ap.add_argument("--ch63-only", default="",
                    help="comma list of ch63 parts: speed,accuracy,check,keras-bidirectional,keras-dropout (default all)")
    ap.add_argument("--ch63-keras-epochs", type=int, default=10,
                    help="epochs of Keras's bidirectional LSTM in the chapter 6.3 section (its accuracy comparison)")
    ap.add_argument("--own-data-epochs", type=int, default=10, help="epochs of the 4-class (star ratings) LSTM of the own-data section")
    ap.add_argument("--own-data-reps", type=int, default=3, help="alternating runs of prepare and the Python reference on the CSV pair")
    ap.add_argument("--ch6-epochs", type=int, default=10, help="epochs of the chapter6 Flatten model and convnet (both sides)")
    ap.add_argument("--ch6-gru-epochs", type=int, default=3, help="epochs of the chapter6 Conv1D -> GRU model (both sides)")
    ap.add_argument("--watchdog-reps", type=int, default=5, help="alternating pairs of the watchdog section")
    ap.add_argument("--watchdog-limit", type=int, default=10000, help="training rows of the watchdog section's runs")
    ap.add_argument("--reproducible-models", default=",".join(REPRODUCIBLE_MODELS),
                    help="comma list of the reproducible section's models: " + ",".join(REPRODUCIBLE_MODELS))
    ap.add_argument("--reproducible-reps", type=int, default=5, help="alternating -n 2 pairs (default, --reproducible) per pair model")
    ap.add_argument("--reproducible-pair-models", default="simple-rnn,lstm", help="models of the alternating pairs")
    ap.add_argument("--reproducible-accuracy", type=int, default=1, help="0 skips the reproducible section's 10-epoch accuracy runs")
    ap.add_argument("--floor-models", default=",".join(FLOOR_MODELS), help="comma list of the floor section's cells: " + ",".join(FLOOR_MODELS))
    ap.add_argument("--serve-seconds", type=int, default=30, help="wrk's duration per connection count in the serve section")
    ap.add_argument("--ch6-models", default="", help="comma list of chapter6 models: flatten,convnet,convgru (default all)")
    ap.add_argument("--skip", default="",
                    help="comma list of: " + ",".join(SKIPPABLE))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-results"))
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    if skip - set(SKIPPABLE):
        ap.error(f"--skip: no section named {', '.join(sorted(skip - set(SKIPPABLE)))} (the sections: {','.join(SKIPPABLE)})")
    # Every value checked before any work: a bad name was a KeyError after hours of other sections,
    # or silently nothing.
    for flag, value, known, empty_ok in (
            ("--models", a.models, ("simple-rnn", "lstm", "gru"), False),
            ("--floor-models", a.floor_models, tuple(FLOOR_MODELS), True),
            ("--reproducible-models", a.reproducible_models, tuple(REPRODUCIBLE_MODELS), True),
            ("--reproducible-pair-models", a.reproducible_pair_models, tuple(REPRODUCIBLE_MODELS), True),
            ("--ch63-only", a.ch63_only, ("speed", "accuracy", "check", "keras-bidirectional", "keras-dropout"), True),
            ("--ch6-models", a.ch6_models, tuple(CH6), True)):
        names = value.split(",") if value else []
        if (not names and not empty_ok) or "" in names or set(names) - set(known):
            ap.error(f"{flag} {value!r}: not a comma list of {','.join(known)}")
    for flag, value in (("--epochs", a.epochs), ("--reps", a.reps), ("--accuracy-epochs", a.accuracy_epochs),
                        ("--own-data-reps", a.own_data_reps), ("--watchdog-reps", a.watchdog_reps),
                        ("--reproducible-reps", a.reproducible_reps), ("--serve-seconds", a.serve_seconds)):
        if value < 1:
            ap.error(f"{flag} {value}: must be 1 or more")
    for flag, binary in (("--bin", a.bin), ("--baseline-bin", a.baseline_bin)):
        if binary is not None and not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            ap.error(f"{flag} {binary}: not an executable file")
    if not a.data or not a.out:
        ap.error("--data and --out need a path")
    if os.path.exists(a.data) and os.path.exists(a.tarball) and "prepare" not in skip:
        # The prepare section writes IMDB to --data: never over a file that is not IMDB prepared before.
        info = subprocess.run([a.bin, "inspect", a.data], capture_output=True, text=True)
        if info.returncode != 0 or "@source_format = aclimdb" not in info.stdout:
            ap.error(f"--data {a.data} exists and is not an IMDB dataset prepared from the tarball: the prepare section "
                     "would overwrite it (pass another --data, or --skip prepare to use it as it is)")
    models = a.models.split(",")
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.data)), exist_ok=True)
    work = tempfile.mkdtemp(prefix="rnn-dist-bench-")
    try:
        bench(a, skip, models, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(a, skip, models, work):
    res = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": platform.node(), "baseline_bin": a.baseline_bin,
           "cpus": os.cpu_count(), "epochs": a.epochs, "reps": a.reps, "models": models}
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
        res["cpu"] = cpu
    except Exception:  # noqa: BLE001
        pass

    if not os.path.exists(a.tarball):
        if not os.path.exists(a.data):
            sys.exit(f"bench: the IMDB tarball {a.tarball} does not exist and there is no {a.data} yet: "
                     "set IMDB_TARBALL=/path/to/aclImdb_v1.tar.gz (or pass --tarball)")
        if "prepare" not in skip:
            log(f"the IMDB tarball {a.tarball} does not exist: prepare is not timed, {a.data} is used as it is "
                "(set IMDB_TARBALL=/path/to/aclImdb_v1.tar.gz to time it)")
            skip.add("prepare")

    # 1. prepare vs the Python tokenizer, alternating.
    if "prepare" not in skip or not os.path.exists(a.data):
        ours, py = [], []
        for _ in range(a.reps if "prepare" not in skip else 1):
            _, t = run([a.bin, "prepare", "--source", a.tarball, "-o", a.data])
            ours.append(t)
            if "prepare" not in skip:
                _, t = run([sys.executable, os.path.join(ROOT, "Launch", "py_tokenize_reference.py"), a.tarball])
                py.append(t)
        res["prepare"] = {"rnn_dist_s": statistics.median(ours)}
        if py:
            res["prepare"].update(python_s=statistics.median(py), speedup=statistics.median(py) / statistics.median(ours))
        log("prepare", res["prepare"])

    kpy = None if "keras" in skip else keras_python()
    keras_script = os.path.join(ROOT, "Launch", "keras_imdb.py")
    c = types.SimpleNamespace(a=a, skip=skip, models=models, work=work, res=res, kpy=kpy, keras_script=keras_script)
    for section in SECTIONS:
        section(c)

    stamp = res["date"].replace(":", "")
    path = os.path.join(a.out, f"bench-{stamp}.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    print_table(res)
    print_chapter6(res)
    if "watchdog" in res:
        w = res["watchdog"]
        print(f"\ncollective watchdog, LSTM -n 2, epoch time on / off (median of {len(w['pair_ratios'])} back-to-back pairs): "
              f"{w['time_ratio_on_over_off']:.4f} (target <= 1.01); samples/s off {w['off']}, on {w['on']}")
    if "reproducible" in res:
        print_reproducible(res["reproducible"])
    if "floor" in res:
        print_floor(res["floor"])
    if "serve" in res:
        print_serve(res["serve"])
    print(f"\nwritten to {path}")


CH63 = {"plain": ["--model", "lstm"],
        "dropout": ["--model", "lstm", "--dropout", "0.2", "--recurrent-dropout", "0.2"],
        "bidirectional": ["--model", "lstm", "--bidirectional"]}
KERAS_FLAGS = {"plain": [], "dropout": ["--dropout", "0.2", "--recurrent-dropout", "0.2"], "bidirectional": ["--bidirectional"]}
# Timed only: recurrent dropout alone.
CH63_SPEED = dict(CH63, recurrent=["--model", "lstm", "--recurrent-dropout", "0.2"])


def ch63(a, kpy, keras_script, work):
    """Speed at -n 2 (one full epoch each, ours alternating over --reps, Keras once each), accuracy at
    -n 4 over --accuracy-epochs epochs with the best weights evaluated on the test split, Keras's
    bidirectional LSTM (and LSTM with dropout) on the same arrays, and the Keras loading check of the
    new models. --ch63-only picks parts: speed, accuracy, check, keras-bidirectional, keras-dropout
    (Keras's accuracy runs, last: they take longest)."""
    out = {}
    only = set(filter(None, a.ch63_only.split(",")))
    part = lambda name: not only or name in only  # noqa: E731

    if part("speed"):
        times = {k: [] for k in CH63_SPEED}
        for rep in range(a.reps):
            for k, flags in CH63_SPEED.items():
                r, _ = run(["mpirun", "-n", "2", a.bin, "train", "--data", a.data, "--epochs", "1",
                            "--run-dir", os.path.join(work, f"ch63-speed-{k}-{rep}"), *flags])
                times[k].append(parse_epochs(r.stdout)[0]["seconds"])
        med = {k: statistics.median(v) for k, v in times.items()}
        # The ratio of each repetition's pair (the two ran back to back), then their median: on a
        # noisy machine steadier than the ratio of the medians.
        paired = {k: statistics.median(x / p for x, p in zip(times[k], times["plain"])) for k in times if k != "plain"}
        out["speed_n2"] = {"rnn_dist_epoch_s": med, "runs": times, "dropout_over_plain": paired["dropout"],
                           "recurrent_over_plain": paired["recurrent"], "bidirectional_over_plain": paired["bidirectional"]}
        if kpy:
            kt = {}
            for k in ("dropout", "bidirectional"):
                js = os.path.join(work, f"ch63-keras-speed-{k}.json")
                run([kpy, keras_script, a.data, "lstm", "1", "--threads", "2", "--json", js, "--test-limit", "512",
                     *KERAS_FLAGS[k]])
                kt[k] = next(x["seconds"] for x in json.load(open(js)) if "epoch" in x)
            out["speed_n2"].update(keras_epoch_s=kt, **{f"{k}_over_keras": med[k] / kt[k] for k in kt})
        log("ch63 speed", out["speed_n2"])

    if part("accuracy"):
        out["accuracy_n4"] = {}
        for k, flags in CH63.items():
            rd = os.path.join(work, f"ch63-acc-{k}")
            r, _ = run(["mpirun", "-n", "4", a.bin, "train", "--data", a.data, "--epochs", str(a.accuracy_epochs),
                        "--run-dir", rd, *flags])
            rows = parse_epochs(r.stdout)
            ev, _ = run(["mpirun", "-n", "2", a.bin, "eval", "--weights", os.path.join(rd, "best.weights.h5"), "--data", a.data,
                         "--json"])
            last = rows[-1]
            out["accuracy_n4"][k] = {"best_val_acc": max(x["val_acc"] for x in rows),
                                     "test_acc_best": json.loads(ev.stdout)["accuracy"],
                                     "last_acc": last["acc"], "last_val_acc": last["val_acc"],
                                     "gap_last": last["acc"] - last["val_acc"], "epochs": rows}
            log("ch63 accuracy", k, {x: y for x, y in out["accuracy_n4"][k].items() if x != "epochs"})

    if kpy and part("check"):
        # The Keras loading check: the 10-epoch models (when this run trained them) plus a
        # bidirectional 2-layer GRU with dropout and a reset-before GRU (one epoch on --scaling-limit rows).
        weights = [os.path.join(work, f"ch63-acc-{k}", "best.weights.h5") for k in CH63]
        weights = [w for w in weights if os.path.exists(w)]
        extra = [("bi-gru-2", ["--model", "gru", "--bidirectional", "--layers", "2", "--dropout", "0.2", "--recurrent-dropout", "0.2"]),
                 ("gru-reset-before", ["--model", "gru", "--gru-reset-after", "false"])]
        if not weights:
            extra.insert(0, ("bi-lstm", CH63["bidirectional"]))
        for name, flags in extra:
            rd = os.path.join(work, f"ch63-{name}")
            run(["mpirun", "-n", "2", a.bin, "train", "--data", a.data, "--epochs", "1", "--limit", str(a.scaling_limit),
                 "--run-dir", rd, *flags])
            weights.append(os.path.join(rd, "best.weights.h5"))
        js = os.path.join(work, "ch63-keras-check.json")
        r = subprocess.run([kpy, os.path.join(ROOT, "Launch", "keras_check.py"), "--legacy", "--bin", a.bin, "--data", a.data,
                            "--json", js, *weights], capture_output=True, text=True)
        log("ch63 keras_check:\n" + (r.stdout.strip() or r.stderr.strip()[-2000:]))
        checks = json.load(open(js)) if os.path.exists(js) else []
        out["keras_check"] = [{k: c.get(k) for k in ("describe", "ok", "max_abs_diff", "legacy_max_abs_diff", "error")}
                              for c in checks]
        # Keras, given rnn-dist's dropout masks, computes rnn-dist's training loss (Launch/keras_dropout_check.py).
        r = subprocess.run([kpy, os.path.join(ROOT, "Launch", "keras_dropout_check.py"), "--bin", a.bin, "--data", a.data],
                           capture_output=True, text=True)
        out["keras_dropout_check"] = {"ok": r.returncode == 0,
                                      "lines": [l for l in r.stdout.splitlines() if l.startswith(("PASS", "FAIL", "keras_"))]}
        log("ch63 keras_dropout_check:\n" + "\n".join(out["keras_dropout_check"]["lines"]))
    if kpy and (part("keras-bidirectional") or part("keras-dropout")):
        out["keras"] = {}
        for k in [k for k in ("bidirectional", "dropout") if part(f"keras-{k}")]:
            js = os.path.join(work, f"ch63-keras-{k}.json")
            run([kpy, keras_script, a.data, "lstm", str(a.ch63_keras_epochs), "--threads", "2", "--json", js, *KERAS_FLAGS[k]])
            krows = json.load(open(js))
            ep = [x for x in krows if "epoch" in x]
            out["keras"][k] = {"epochs": a.ch63_keras_epochs, "best_val_acc": max(x["val_acc"] for x in ep),
                               "test_acc_last": next(x["acc"] for x in krows if x.get("split") == "test"),
                               "gap_last": ep[-1]["acc"] - ep[-1]["val_acc"],
                               "epoch_s": statistics.median(x["seconds"] for x in ep), "rows": krows}
            log("ch63 keras", k, {x: y for x, y in out["keras"][k].items() if x != "rows"})

    return out


def print_reproducible(r):
    print("\n--reproducible, one full-data epoch: the same weights bytes at -n 1, 2, 4; epoch time against the default exchange at -n 2")
    print("| model | identical weights | identical metrics | s/epoch -n 1 / 2 / 4 | default -n 2 | ratio -n 2 | MB/batch (default) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, m in r["models"].items():
        s = m["seconds"]
        print(f"| {name} | {m['identical_weights']} | {m['identical_metrics']} | {s['1']:.2f} / {s['2']:.2f} / {s['4']:.2f} | "
              f"{m['default_n2_seconds']:.2f} | {m['n2_time_ratio']:.3f} | {m['mb_per_batch']:.3f} ({m['default_mb_per_batch']:.3f}) |")
    for name, p in r.get("pairs", {}).items():
        if p.get("ratios"):
            print(f"{name} -n 2, reproducible / default epoch time, median of {len(p['ratios'])} back-to-back pairs: "
                  f"{p['median_ratio']:.3f} (target <= 1.10); pairs {[round(x, 3) for x in p['ratios']]}")
    if "cluster" in r:
        c = r["cluster"]
        print(f"2 emulated hosts x 2 ranks, 1 Gbit/s: identical to -n 1: {c['identical_to_n1']}; epoch {c['reproducible_seconds']:.2f} s "
              f"against {c['default_seconds']:.2f} s default ({c['time_ratio']:.3f})")
    if "accuracy" in r:
        acc = r["accuracy"]
        print(f"LSTM -n 2 best val_acc: default {acc['default']['best_val_acc']:.4f}, reproducible {acc['reproducible']['best_val_acc']:.4f} "
              f"(difference {acc['difference']:+.4f}, target within 0.005)")


def print_chapter6(res):
    c = res.get("chapter6")
    if not c:
        return
    print("\nchapter 6 from Keras JSON (train --model-config), rnn-dist -n 2 vs Keras 2 threads, same arrays:")
    print("| model | epochs | batch | rnn-dist s/epoch | Keras s/epoch | ratio (convnet target <= 0.2) | best val_acc rnn-dist | Keras | difference (convnet target within 0.01) | keras_check |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, m in c["models"].items():
        chk = m.get("keras_check", "—") + (f" ({m['keras_check_max_diff']:.2g})" if m.get("keras_check_max_diff") is not None else "")
        print(f"| {name} | {m['epochs']} | {m['batch']} | {m['rnn_dist_epoch_s']:.2f} | {m['keras_epoch_s']:.2f} | {m['ratio']:.3f} | "
              f"{m['rnn_dist_best_val_acc']:.4f} | {m['keras_best_val_acc']:.4f} | {m['val_acc_difference']:+.4f} | {chk} |")
    for name, fx in c.get("fixtures", {}).items():
        print(f"  fixture {name}: " + (f"keras_check {fx['keras_check']} (max |dp| {fx.get('max_abs_diff')}, legacy {fx.get('legacy_max_abs_diff')})"
                                       if fx["trained"] else f"refused: {fx['refusal']}"))
    f = c.get("frozen_embeddings")
    if f:
        print(f"frozen embeddings (LSTM -n 2, epoch 2): exchange {f['trainable']['exchange_mb_per_batch']:.3f} -> "
              f"{f['frozen']['exchange_mb_per_batch']:.3f} MB/batch, epoch {f['trainable']['epoch_s']:.2f} -> {f['frozen']['epoch_s']:.2f} s "
              f"({f['time_ratio']:.3f}x)")


def print_table(res):
    print(f"\nrnn-dist benchmark {res['date']} on {res.get('cpu', '?')} ({res['cpus']} cpus), "
          f"{res['epochs']} epoch(s), {res['reps']} rep(s); medians, ratios from this run")
    if "prepare" in res:
        p = res["prepare"]
        line = f"prepare: rnn-dist {p['rnn_dist_s']:.2f} s"
        if "python_s" in p:
            line += f", Python tokenizer {p['python_s']:.2f} s, speed-up {p['speedup']:.1f}x (target >= 8x)"
        print(line)
    print("\n| model | rnn-dist -n 1 s/epoch | -n 1 speed-up vs Keras | rnn-dist -n 2 s/epoch | Keras 2 threads s/epoch | ratio (target LSTM <= 0.2, others <= 0.125) | MPI share | best val_acc | test acc (best weights) | Keras best val_acc / test acc | eval s (-n 2) | Keras eval s | eval speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for m, e in res["models_table"].items():
        def f(k, fmt="{:.2f}"):
            return fmt.format(e[k]) if k in e and e[k] is not None else "—"
        print(f"| {m} | {f('rnn_dist_n1_epoch_s')} | {f('n1_speedup', '{:.2f}x')} | {f('rnn_dist_epoch_s')} | {f('keras_epoch_s')} | {f('ratio', '{:.3f}')} | "
              f"{f('mpi_share_n2', '{:.1%}')} | {f('best_val_acc', '{:.4f}')} | {f('test_acc_best', '{:.4f}')} | "
              f"{f('keras_best_val_acc', '{:.4f}')} / {f('keras_test_acc', '{:.4f}')} | {f('eval_s')} | {f('keras_eval_s')} | {f('eval_speedup', '{:.1f}x')} |")
    mt = res["models_table"]
    print("\nfirst epoch at -n 1, epoch 1 / epoch 2 (target <= 1.15): " + ", ".join(
        f"{m} {e['first_epoch_ratio']:.3f} ({e['rnn_dist_n1_epoch1_s']:.2f} s / {e['rnn_dist_n1_epoch_s']:.2f} s)" for m, e in mt.items()))
    if any("baseline_n1_epoch_s" in e for e in mt.values()):
        print(f"baseline {res.get('baseline_bin')}: -n 1 epoch 1 / epoch 2 " + ", ".join(
            f"{m} {e['baseline_first_epoch_ratio']:.3f} ({e['baseline_n1_epoch1_s']:.2f} s / {e['baseline_n1_epoch_s']:.2f} s)"
            for m, e in mt.items()))
        print("-n 1 epoch 2 time, this build / baseline: " + ", ".join(f"{m} {e['n1_vs_baseline']:.3f}" for m, e in mt.items()))
    checked = [(m, e) for m, e in res["models_table"].items() if "keras_check" in e]
    if checked:
        print("\nKeras 3 load_weights of best.weights.h5, predictions vs rnn-dist (tolerance 1e-6): " + ", ".join(
            f"{m} {e['keras_check']}" + (f" (max |dp| {e['keras_check_max_diff']:.2g})" if e["keras_check_max_diff"] is not None else "")
            for m, e in checked))
    for m, s in res.get("scaling", {}).items():
        sp = s["samples_per_second"]
        print(f"\nscaling ({m}, training samples/s): -n 1 {sp['1']:.0f}, -n 2 {sp['2']:.0f} (dense exchange {sp['2-dense']:.0f}), "
              f"-n 4 {sp['4']:.0f}; -n 2/-n 1 = {s['n2_over_n1']:.2f} (median of back-to-back ratios {s['n2_over_n1_paired']:.2f}; "
              f"target >= 1.9; dense {s['n2_dense_over_n1']:.2f}), -n 4/-n 2 = {s['n4_over_n2']:.2f} (target >= 0.85)")
        if "pair_over_n1" in s:
            print(f"  two independent -n 1 runs at once, one per core: {s['pair_over_n1']:.2f}x one run (the machine's "
                  f"ceiling for -n 2); -n 2 reached {s['n2_over_pair']:.2f} of it")
    if "cluster" in res:
        print("\nemulated cluster, LSTM, 2 hosts × 2 ranks vs one host -n 4 (targets: 1gbit <= 1.25, 10gbit <= 1.1):")
        for k, v in res["cluster"].items():
            vv = v if isinstance(v, dict) else v[0]
            ratio = res["cluster_ratios"].get(k)
            print(f"  {k:22} {vv['seconds']:.2f} s/epoch" + (f", {ratio:.3f}x one host" if ratio else "") +
                  f", mpi {vv['mpi_share']:.1%}, exchange {vv['exchange_mb_per_batch']} MB/batch, rows {vv['embedding_rows_per_batch']}")
    if "bf16" in res:
        b = res["bf16"]
        print(f"\nbf16 transport, LSTM -n 2: best val_acc {b['bf16_best_val_acc']:.4f} vs fp32 {b['fp32_best_val_acc']:.4f} "
              f"(difference {b['difference']:+.4f}; target within 0.005)")
    if "timeline" in res:
        t = res["timeline"]
        print(f"\n--timeline cost: {t['cost']['record_seconds_per_span'] * 1e9:.0f} ns to record and "
              f"{t['cost']['flush_seconds_per_span'] * 1e9:.0f} ns to flush a span; {t['spans_per_step']:.2f} spans per "
              f"step of median {t['median_step_s'] * 1e3:.1f} ms -> estimated overhead {t['estimated_overhead']:.3%} "
              f"(target <= 2%); wall-clock time with/without (samples/s without / with) over {len(t['samples_per_second']['with'])} alternating runs: "
              f"{t['wall_clock_ratio']:.3f}")
    if "ch63" in res:
        c = res["ch63"]
        if "speed_n2" in c:
            sp = c["speed_n2"]
            e = sp["rnn_dist_epoch_s"]
            print(f"\nchapter 6.3, LSTM -n 2 s/epoch (medians; ratios: median over repetitions of each back-to-back pair): plain {e['plain']:.2f}, recurrent dropout 0.2 {e['recurrent']:.2f} "
                  f"({sp['recurrent_over_plain']:.2f}x), dropout 0.2 + recurrent dropout 0.2 {e['dropout']:.2f} "
                  f"({sp['dropout_over_plain']:.2f}x, target <= 1.3), bidirectional {e['bidirectional']:.2f} "
                  f"({sp['bidirectional_over_plain']:.2f}x, target <= 2.1)")
            if "keras_epoch_s" in sp:
                print(f"  vs Keras 2 threads: dropout {sp['keras_epoch_s']['dropout']:.2f} s ({sp['dropout_over_keras']:.3f}), "
                      f"bidirectional {sp['keras_epoch_s']['bidirectional']:.2f} s ({sp['bidirectional_over_keras']:.3f}); target <= 0.2")
        for k, v in c.get("accuracy_n4", {}).items():
            print(f"  {k:14} -n 4: best val_acc {v['best_val_acc']:.4f}, test acc (best weights) {v['test_acc_best']:.4f}, "
                  f"last epoch acc {v['last_acc']:.4f} val_acc {v['last_val_acc']:.4f} (gap {v['gap_last']:+.4f})")
        for k, v in c.get("keras", {}).items():
            print(f"  Keras {k} LSTM, {v['epochs']} epochs: best val_acc {v['best_val_acc']:.4f}, test acc (last weights) "
                  f"{v['test_acc_last']:.4f}, last gap {v['gap_last']:+.4f}, {v['epoch_s']:.1f} s/epoch")
        for line in c.get("keras_dropout_check", {}).get("lines", []):
            print("  " + line)
        for chk in c.get("keras_check", []):
            print(f"  keras_check {'PASS' if chk['ok'] else 'FAIL'} {chk.get('describe') or ''} "
                  f"max |dp| {chk.get('max_abs_diff')}, legacy {chk.get('legacy_max_abs_diff')} {chk.get('error') or ''}")
    if res.get("peak_rss_mb_per_rank"):
        print(f"peak RSS per rank at -n 4: {res['peak_rss_mb_per_rank']:.0f} MB (target <= 150)")
    if "own_data" in res:
        o = res["own_data"]
        print("\nown data (`prepare --format`), IMDB re-packaged; /train/x, /train/y, /test/x, /test/y, /vocab against the tarball's: " +
              ", ".join(f"{k} " + ("identical" if v.get("identical") else "ERROR " + v["error"][-200:] if "error" in v
                                   else "DIFFERENT (" + ", ".join(v.get("differs", [])) + ")")
                        for k, v in o.get("formats", {}).items()))
        if "prepare_csv" in o:
            p = o["prepare_csv"]
            print(f"  prepare of the CSV pair: rnn-dist {p['rnn_dist_s']:.2f} s, Python reference {p['python_s']:.2f} s "
                  f"(medians of {len(p['rnn_dist_runs'])} alternating runs): {p['speedup']:.1f}x"
                  + (f"; the reference's hashes {'agree' if p['python_reference_agrees'] else 'DISAGREE'}"
                     if "python_reference_agrees" in p else ""))
        if "ratings4" in o:
            f = o["ratings4"]
            print(f"  4 classes ({', '.join(f['classes'] or [])}), LSTM -n 2, {f['epochs']} epochs: test acc (best weights) "
                  f"{f['test_acc_best']:.4f}, macro F1 {f['test_macro_f1_best']:.4f}, best val_acc {f['best_val_acc']:.4f}, "
                  f"{f['epoch_s']:.2f} s/epoch"
                  + (f"; Keras test acc {f['keras_test_acc']:.4f}, macro F1 {f['keras_macro_f1']:.4f}, {f['keras_epoch_s']:.2f} s/epoch"
                     if "keras_test_acc" in f else "")
                  + (f"; keras_check {f['keras_check']}" + (f" (max |dp| {f['keras_check_max_diff']:.2g})"
                                                            if f.get("keras_check_max_diff") is not None else "")
                     if "keras_check" in f else ""))


if __name__ == "__main__":
    main()
