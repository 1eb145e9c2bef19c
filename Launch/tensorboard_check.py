#!/usr/bin/env python3
"""Reads a run's TensorBoard folder with TensorBoard's own reader and lists every tag with its steps.

usage: tensorboard_check.py RUN_DIR/tensorboard [--expect-epochs E] [--expect-batch-steps N]
Uses the `tensorboard` package (pip install tensorboard, in the venv Launch/bench makes, outside the
repository); a check to run by hand or from the benchmark, never a dependency of rnn-dist or its tests.
Exits 1 when a tag appears twice at one step, or when the expected step counts do not match.
"""
import argparse
import collections
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logdir")
    ap.add_argument("--expect-epochs", type=int, help="epochs the run trained: each epoch_* tag must have that many steps")
    ap.add_argument("--expect-batch-steps", type=int, help="steps each of batch_loss and learning_rate must have")
    a = ap.parse_args()
    try:
        from tensorboard.backend.event_processing import event_file_loader
    except ImportError:
        sys.exit("tensorboard_check: the tensorboard package is missing (pip install tensorboard)")
    files = sorted(f for f in os.listdir(a.logdir) if "tfevents" in f)
    if not files:
        sys.exit(f"tensorboard_check: no event file in {a.logdir}")
    steps = collections.defaultdict(list)
    for name in files:
        for event in event_file_loader.LegacyEventFileLoader(os.path.join(a.logdir, name)).Load():
            for value in event.summary.value:
                steps[value.tag].append(event.step)
    bad = 0
    print(f"{len(files)} event file(s) in {a.logdir}")
    for tag in sorted(steps):
        s = sorted(steps[tag])
        dup = len(s) - len(set(s))
        print(f"{tag:18} {len(s):5} steps  {s[0]} … {s[-1]}" + (f"  {dup} DUPLICATE(S)" if dup else ""))
        bad += dup > 0
        if a.expect_epochs is not None and tag.startswith("epoch_") and len(s) != a.expect_epochs:
            print(f"  expected {a.expect_epochs} steps"); bad += 1
        if a.expect_batch_steps is not None and tag in ("batch_loss", "learning_rate") and len(s) != a.expect_batch_steps:
            print(f"  expected {a.expect_batch_steps} steps"); bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
