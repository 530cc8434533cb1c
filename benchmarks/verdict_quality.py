"""How often does the p99 gate cry wolf, and how often does it catch a real regression?

Usage:  python benchmarks/verdict_quality.py [--comparisons 100] [--baseline-runs 5]

It saves a baseline of ``work(n)`` (several runs, as ``--hostperf-save`` keeps them), then
measures and compares, exactly as ``pytest --hostperf`` does (same sampling, same host
controls, same rule, same re-measurement of regressed and inconclusive results):
- ``--comparisons`` unchanged runs: any ``regressed`` is a false alarm;
- as many runs slowed by +10%, +25% and +50%: ``regressed`` is a detection.
It prints the rates and the time one comparison takes. Targets (DESIGN.md section 5, on a
shared 2-core VM): at most 1 false alarm in 100, at least 95 of 100 caught at +25%.

Bounded: every measurement is capped in samples and seconds; the whole script takes about
``(baseline_runs + 4 * comparisons) * 0.3 s`` plus re-measurements.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

if not __package__:  # run as ``python benchmarks/verdict_quality.py``: benchmarks/ is found from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.workloads.synthetic import BASE_ITERATIONS, work
from pytest_hostperf import measure, stats, verdict
from pytest_hostperf.host import control
from pytest_hostperf.result import summarize

PLAN = measure.Plan(samples=20_000, blocks=20, max_seconds=0.5, warmup_calls=500, warmup_seconds=0.05)
EXTRA_ROUNDS = 2


def measure_p99_blocks(n: int, timer: measure.TimerInfo,
                       batch: int | None = None) -> tuple[measure.Samples, np.ndarray]:
    raw = measure.sample(work, (n,), plan=replace(PLAN, batch=batch), timer=timer)
    return raw, stats.block_values(summarize(raw, nodeid="q", name="work").blocks, "p99")


def compare_once(n: int, baseline: list[np.ndarray], timer: measure.TimerInfo, tolerance: float,
                 batch: int) -> tuple[verdict.Verdict, int]:
    rounds = [measure_p99_blocks(n, timer, batch)[1]]
    v = verdict.compare(rounds, baseline, tolerance_pct=tolerance)
    while v.status in ("regressed", "inconclusive") and len(rounds) <= EXTRA_ROUNDS:
        rounds.append(measure_p99_blocks(n, timer, batch)[1])
        v = verdict.compare(rounds, baseline, tolerance_pct=tolerance)
    return v, len(rounds) - 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comparisons", type=int, default=100, help="comparisons per slowdown (default 100)")
    parser.add_argument("--baseline-runs", type=int, default=5, help="runs in the baseline (default 5)")
    parser.add_argument("--tolerance", type=float, default=10.0, help="tolerance in percent (default 10)")
    parser.add_argument("--slowdowns", default="1.0,1.1,1.25,1.5", help="factors to test (default 1.0,1.1,1.25,1.5)")
    args = parser.parse_args(argv)
    factors = [float(f) for f in args.slowdowns.split(",")]
    timer = measure.calibrate()
    slowed = [f for f in factors if f != 1.0]
    counts = {f: Counter() for f in factors}
    remeasured = Counter()
    seconds = Counter()
    with control.controlled() as applied:
        state = ", ".join(f"{a.control} {'on' if a.applied else 'off'}" for a in applied)
        # The baseline rolls, as --hostperf-save keeps the last K runs: each unchanged run is
        # compared with the K unchanged runs before it, then joins them; each slowed run is
        # compared with the same K runs, measured moments apart under the same host noise.
        first = [measure_p99_blocks(BASE_ITERATIONS, timer) for _ in range(args.baseline_runs)]
        batch = first[0][0].batch
        baseline = [blocks for _, blocks in first]
        print(f"host control: {state}; rolling baseline of {args.baseline_runs} runs of work({BASE_ITERATIONS}), "
              f"p99 {np.median([np.median(b) for b in baseline]) / 1e3:.1f} us, tolerance {args.tolerance:g}%, "
              f"{args.comparisons} comparisons per factor")
        for _ in range(args.comparisons):
            for f in ([1.0] if 1.0 in factors else []) + slowed:
                t0 = time.monotonic()
                v, rounds = compare_once(int(BASE_ITERATIONS * f), baseline[-args.baseline_runs:], timer,
                                         args.tolerance, batch)
                seconds[f] += time.monotonic() - t0
                counts[f][v.status] += 1
                remeasured[f] += rounds > 0
            _, blocks = measure_p99_blocks(BASE_ITERATIONS, timer, batch)
            baseline.append(blocks)
    print(f"{'slowdown':>9} {'regressed':>10} {'unchanged':>10} {'improved':>9} {'inconcl.':>9} "
          f"{'re-measured':>12} {'s/compare':>10}")
    for f in factors:
        c = counts[f]
        print(f"{f:>8.2f}x {c['regressed']:>10} {c['unchanged']:>10} {c['improved']:>9} {c['inconclusive']:>9} "
              f"{remeasured[f]:>12} {seconds[f] / args.comparisons:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
