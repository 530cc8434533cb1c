"""How often does the p99 gate cry wolf, and how often does it catch a real regression?

Usage:  python benchmarks/verdict_quality.py [--comparisons 100] [--baseline-runs 5] [--mode stored|paired|both]

It saves a baseline of ``work(n)`` (several runs, as ``--hostperf-save`` keeps them), then
measures and compares, exactly as ``pytest --hostperf`` does (same sampling, same host
controls, same rule, same re-measurement of regressed and inconclusive results):
- ``--comparisons`` unchanged runs: any ``regressed`` is a false alarm;
- as many runs slowed by +10%, +25% and +50%: ``regressed`` is a detection.
``--mode paired`` measures each comparison the paired way instead (pytest_hostperf/paired.py):
the base side (unchanged ``work``) in a forked process and the head side here, both on one
CPU under the same controls, taking turns block by block (ABBA), the verdict from the block
pairs' p99 log ratios; ``both`` prints the two modes side by side.
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
from pytest_hostperf import measure, paired, stats, verdict
from pytest_hostperf.host import control
from pytest_hostperf.result import summarize

PLAN = measure.Plan(samples=20_000, blocks=20, max_seconds=0.5, warmup_calls=500, warmup_seconds=0.05)
EXTRA_ROUNDS = 2
#: Paired mode: 20 block pairs of 1000 calls (~5-10 ms a block here), each side its own warm-up.
PAIRED_PLAN = measure.Plan(samples=20_000, blocks=20, max_seconds=2.0, warmup_calls=500, warmup_seconds=0.05,
                           batch=1)


def _paired_base(sock_fd: int, n: int, cpu: int, timer: measure.TimerInfo, out: object) -> None:
    """The base side, in a forked child: same CPU and controls, its blocks when the baton says."""
    import socket

    with control.controlled(cpus=[cpu]):
        sock = socket.socket(fileno=sock_fd)
        turns = paired.BatonTurns("base", sock, paired.schedule(PAIRED_PLAN.blocks))
        raw = measure.sample(work, (n,), plan=PAIRED_PLAN, timer=timer, turns=turns)
        sock.close()
    out.send(stats.block_values(summarize(raw, nodeid="q", name="base").blocks, "p99").tolist())  # type: ignore[attr-defined]


def compare_paired(n_head: int, timer: measure.TimerInfo, tolerance: float, cpu: int) -> paired.PairedVerdict:
    """One paired comparison: work(n_head) here against work(BASE_ITERATIONS) in a forked child."""
    import multiprocessing as mp

    a, b = paired.socketpair()
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_paired_base, args=(b.fileno(), BASE_ITERATIONS, cpu, timer, send))
    child.start()
    try:
        b.close()
        turns = paired.BatonTurns("head", a, paired.schedule(PAIRED_PLAN.blocks))
        raw = measure.sample(work, (n_head,), plan=PAIRED_PLAN, timer=timer, turns=turns)
        if not recv.poll(60):
            raise RuntimeError("the paired base side sent no result within 60 s")
        base = recv.recv()
    finally:
        a.close()
        child.join(30)
        if child.is_alive():
            child.kill()
            child.join(10)
    head = stats.block_values(summarize(raw, nodeid="q", name="head").blocks, "p99")
    return paired.verdict(paired.log_ratios(head, base), tolerance_pct=tolerance)


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
    parser.add_argument("--mode", choices=("stored", "paired", "both"), default="stored",
                        help="stored baseline (default), paired now, or both side by side")
    args = parser.parse_args(argv)
    factors = [float(f) for f in args.slowdowns.split(",")]
    if args.mode in ("paired", "both"):
        paired_counts, paired_seconds = _paired_mode(factors, args)
        if args.mode == "paired":
            _print_table("paired", factors, paired_counts, Counter(), paired_seconds, args.comparisons)
            return 0
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
    _print_table("stored baseline", factors, counts, remeasured, seconds, args.comparisons)
    if args.mode == "both":
        _print_table("paired", factors, paired_counts, Counter(), paired_seconds, args.comparisons)
    return 0


def _paired_mode(factors: list[float], args: argparse.Namespace) -> tuple[dict[float, Counter[str]], Counter[float]]:
    timer = measure.calibrate()
    cpu = sorted(control.allowed_cpus())[-1]
    counts: dict[float, Counter[str]] = {f: Counter() for f in factors}
    seconds: Counter[float] = Counter()
    with control.controlled(cpus=[cpu]) as applied:
        state = ", ".join(f"{a.control} {'on' if a.applied else 'off'}" for a in applied)
        print(f"paired: host control {state}; work({BASE_ITERATIONS}) in a forked base side vs the head side on "
              f"cpu {cpu}, {PAIRED_PLAN.blocks} block pairs, tolerance {args.tolerance:g}%")
        for _ in range(args.comparisons):
            for f in factors:
                t0 = time.monotonic()
                v = compare_paired(int(BASE_ITERATIONS * f), timer, args.tolerance, cpu)
                seconds[f] += time.monotonic() - t0
                counts[f][v.status] += 1
    return counts, seconds


def _print_table(title: str, factors: list[float], counts: dict[float, Counter[str]], remeasured: Counter[float],
                 seconds: Counter[float], comparisons: int) -> None:
    print(f"{title}:")
    print(f"{'slowdown':>9} {'regressed':>10} {'unchanged':>10} {'improved':>9} {'inconcl.':>9} "
          f"{'re-measured':>12} {'s/compare':>10}")
    for f in factors:
        c = counts[f]
        print(f"{f:>8.2f}x {c['regressed']:>10} {c['unchanged']:>10} {c['improved']:>9} {c['inconclusive']:>9} "
              f"{remeasured[f]:>12} {seconds[f] / comparisons:>10.2f}")


if __name__ == "__main__":
    sys.exit(main())
