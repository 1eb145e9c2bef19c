#!/usr/bin/env python3
"""The α–β projection of docs/BENCHMARKS.md (§Projection: more hosts): epoch time of the book's LSTM
on H hosts of 2 ranks, with the exchange after backward and behind it (`train --exchange-overlap`).

Inputs are measured figures (docs/BENCHMARKS.md) and stated assumptions, not a benchmark:
  - compute per step on one host (2 ranks) and the exchange's bytes per step, per global batch;
  - α (latency per message) and β (bytes/s) per link speed (assumed);
  - a ring all-reduce between p hosts costs 2(p−1)α + 2(p−1)/p · n/β;
  - behind backward: the row bytes split by first step (measured on IMDB batches), slices start after
    ¼, ½, ¾ of the first layer's BPTT, backward ⅔ of a step's compute (assumed), one slice after
    the other on the link, each its own ring with its own latency.

  python3 Launch/project-hosts.py
"""
import argparse

ALPHA = {"1 Gbit/s": 50e-6, "10 Gbit/s": 20e-6, "100 Gbit/s": 10e-6}
BETA = {"1 Gbit/s": 1e9 / 8, "10 Gbit/s": 10e9 / 8, "100 Gbit/s": 100e9 / 8}
# (label, compute s per step on one host, exchange bytes per step, steps per epoch)
BATCHES = [("batch 128", 25.49e-3, 0.556e6, 157), ("batch 1,024", 203.90e-3, 1.169e6, 20)]
ROW_SHARE = 0.94                                     # embedding rows' share of the exchanged values
SLICES = [s * ROW_SHARE for s in (0.33, 0.29, 0.20)]  # first used at ≥ ¾T, [½T, ¾T), [¼T, ½T)
BACKWARD = 2 / 3                                      # backward's share of a step's compute (assumed)
STARTS = [1 - BACKWARD * f for f in (0.75, 0.5, 0.25)]  # when each slice can start, as a fraction of compute


def ring(p, n, a, b):
    return 0.0 if p == 1 else 2 * (p - 1) * a + 2 * (p - 1) / p * n / b


def step(compute, p, n, a, b, behind):
    """Seconds of one step and of its exposed exchange."""
    if p == 1:
        return compute, 0.0
    if not behind:
        x = ring(p, n, a, b)
        return compute + x, x
    link = 0.0
    for share, start in zip(SLICES, STARTS):
        link = max(link, start * compute) + ring(p, share * n, a, b)
    end = max(link, compute) + ring(p, (1 - sum(SLICES)) * n, a, b)
    return end, end - compute


def main():
    # No options: --help prints the above, anything else is refused (it was ignored).
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    for label, compute1, n, steps in BATCHES:
        print(f"\n{label}: exposed exchange ms per step, epoch s — behind backward (after backward)")
        print("| hosts (2 ranks each) | compute ms/step | " + " | ".join(ALPHA) + " |")
        print("|---|---|" + "---|" * len(ALPHA))
        for p in (1, 2, 4, 8, 16, 32, 64):
            c = compute1 / p
            cells = []
            for link in ALPHA:
                on = step(c, p, n, ALPHA[link], BETA[link], True)
                off = step(c, p, n, ALPHA[link], BETA[link], False)
                cells.append(f"{on[1] * 1e3:.2f} ({off[1] * 1e3:.2f}), {on[0] * steps:.2f} ({off[0] * steps:.2f})")
            print(f"| {p} | {c * 1e3:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
