"""How often does the p99 gate cry wolf, and how often does it catch a real regression?

Usage:  python benchmarks/verdict_quality.py [--comparisons 100] [--unchanged 300] [--mode stored|paired|both]

The cases (each compared ``--comparisons`` times, the unchanged code ``--unchanged`` times):
- ``unchanged``: ``work(200)`` again; any ``regressed`` is a false alarm;
- ``+10% tol 5``: ``work(220)`` judged with a 5% tolerance (a 10% tolerance cannot, by
  construction, call a 10% change regressed);
- ``+25%``, ``+50%``: ``work(250)``, ``work(300)``;
- ``tail 2% x3``: every 50th call does three times the work, the others none more (mean +4%,
  the p99 moves to the slow calls): a regression confined to the tail; ``tail 2% x2`` the
  same at twice the work (mean +2%), as slow as this host's own tail on a noisy minute.
``regressed`` on a slowed case is a detection.

``--mode stored`` gates as ``pytest --hostperf`` does against a stored baseline: a rolling
baseline of ``--baseline-runs`` runs of ``work(200)`` (as ``--hostperf-save`` keeps them),
the same sampling, host controls and rule, regressed and inconclusive results re-measured,
and a regression confirmed paired before it counts as a failure (the column ``failed``).
``--mode paired`` measures each comparison the ``--hostperf-against`` way: the base side
(unchanged ``work``) in a forked process and the head side here, both on one CPU under the
same controls, taking turns block by block (ABBA), the verdict from the block pairs' p99 log
ratios with sequential stopping (``paired.sequential`` with the driver's constants).
``both`` interleaves the two modes, comparison by comparison, so they see the same host.
It prints the rates and the seconds one comparison takes.

Bounded: every measurement is capped in samples and seconds; a paired comparison takes at
most 60 pairs or 10 s of extra pairs; the child of each paired comparison is reaped.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

if not __package__:  # run as ``python benchmarks/verdict_quality.py``: benchmarks/ is found from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.workloads.synthetic import BASE_ITERATIONS, TailWork, work
from pytest_hostperf.gate import stored as gate
from pytest_hostperf.host import control
from pytest_hostperf.measure import sampling as measure
from pytest_hostperf.measure.turns import BatonTurns, schedule, socketpair
from pytest_hostperf.stats import paired, percentiles, verdict
from pytest_hostperf.stats.result import summarize

PLAN = measure.Plan(samples=20_000, blocks=20, max_seconds=0.5, warmup_calls=500, warmup_seconds=0.05)
EXTRA_ROUNDS = 2
#: Paired mode: 20 block pairs of 1000 calls first (~5-20 ms a block here), each side its own
#: warm-up; then 10 more pairs at a time while undecided (the driver's constants).
PAIRED_PLAN = measure.Plan(samples=20_000, blocks=20, max_seconds=2.0, warmup_calls=500, warmup_seconds=0.05,
                           batch=1)


@dataclass(frozen=True)
class Case:
    label: str
    make: Callable[[], tuple[Callable[..., Any], tuple[Any, ...]]]  # a fresh (fn, args) per comparison
    tolerance: float
    unchanged: bool = False


def cases(tolerance: float) -> list[Case]:
    def slowed(f: float) -> Callable[[], tuple[Callable[..., Any], tuple[Any, ...]]]:
        return lambda: (work, (int(BASE_ITERATIONS * f),))

    return [Case("unchanged", slowed(1.0), tolerance, unchanged=True),
            Case("+10% tol 5", slowed(1.1), min(tolerance, 5.0)),
            Case("+25%", slowed(1.25), tolerance),
            Case("+50%", slowed(1.5), tolerance),
            Case("tail 2% x3", lambda: (TailWork(BASE_ITERATIONS, every=50, factor=3.0), ()), tolerance),
            Case("tail 2% x2", lambda: (TailWork(BASE_ITERATIONS, every=50, factor=2.0), ()), tolerance)]


def _plan(k: int, first: bool) -> measure.Plan:
    per_block = PAIRED_PLAN.samples // PAIRED_PLAN.blocks
    if first:
        return PAIRED_PLAN
    return replace(PAIRED_PLAN, samples=per_block * k, blocks=k, warmup_calls=10, warmup_seconds=0.01,
                   max_seconds=PAIRED_PLAN.max_seconds * k / PAIRED_PLAN.blocks)


def _paired_base(sock_fd: int, cmd: Any, out: Any, cpu: int, timer: measure.TimerInfo) -> None:
    """The base side, in a forked child: same CPU and controls; for each request of k pairs its
    k blocks when the baton says, then their p99s back; a request of 0 ends it."""
    import socket

    with control.controlled(cpus=[cpu]):
        sock = socket.socket(fileno=sock_fd)
        first = True
        while cmd.poll(60):
            k = cmd.recv()
            if not k:
                break
            raw = measure.sample(work, (BASE_ITERATIONS,), plan=_plan(k, first), timer=timer,
                                 turns=BatonTurns("base", sock, schedule(k)))
            first = False
            out.send(percentiles.block_values(summarize(raw, nodeid="q", name="base").blocks, "p99").tolist())
        sock.close()


def compare_paired(case: Case, timer: measure.TimerInfo, cpu: int) -> paired.PairedVerdict:
    """One paired comparison of ``case`` here against ``work(BASE_ITERATIONS)`` in a forked child."""
    import multiprocessing as mp

    fn, args = case.make()
    a, b = socketpair()
    ctx = mp.get_context("fork")
    cmd_r, cmd_w = ctx.Pipe(duplex=False)
    res_r, res_w = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_paired_base, args=(b.fileno(), cmd_r, res_w, cpu, timer))
    child.start()
    rounds = 0

    def next_pairs(k: int) -> np.ndarray:
        nonlocal rounds
        cmd_w.send(k)
        raw = measure.sample(fn, args, plan=_plan(k, rounds == 0), timer=timer,
                             turns=BatonTurns("head", a, schedule(k)))
        rounds += 1
        if not res_r.poll(60):
            raise RuntimeError("the paired base side sent no result within 60 s")
        head = percentiles.block_values(summarize(raw, nodeid="q", name="head").blocks, "p99")
        return paired.log_ratios(head, res_r.recv())

    try:
        b.close()
        return paired.sequential(next_pairs, tolerance_pct=case.tolerance, first=PAIRED_PLAN.blocks)
    finally:
        try:
            cmd_w.send(0)
        except OSError:
            pass
        a.close()
        child.join(30)
        if child.is_alive():
            child.kill()
            child.join(10)


def measure_p99_blocks(fn: Callable[..., Any], args: tuple[Any, ...], timer: measure.TimerInfo,
                       batch: int | None = None, blocks: int = PLAN.blocks) -> tuple[measure.Samples, np.ndarray]:
    raw = measure.sample(fn, args, plan=gate.scaled(replace(PLAN, batch=batch), blocks), timer=timer)
    return raw, percentiles.block_values(summarize(raw, nodeid="q", name="work").blocks, "p99")


def _stored_rounds(case: Case, baseline: list[np.ndarray], timer: measure.TimerInfo, batch: int, *,
                   shipped: bool) -> tuple[verdict.Verdict, int, float]:
    """One stored comparison: its verdict, extra rounds and seconds. ``shipped``: as gate.settle
    does it (rounds of the blocks the baseline's noise asks for, ``gate.noise_blocks``, and no
    re-measuring once ``verdict.undecidable``); else every round of the whole plan, up to the
    limit (the rule before issue 15)."""
    fn, args = case.make()
    blocks = gate.noise_blocks(baseline) if shipped else PLAN.blocks
    t0 = time.monotonic()
    rounds = [measure_p99_blocks(fn, args, timer, batch, blocks)[1]]
    v = verdict.compare(rounds, baseline, tolerance_pct=case.tolerance)
    while v.status in ("regressed", "inconclusive") and len(rounds) <= EXTRA_ROUNDS \
            and not (shipped and (verdict.undecidable(v, EXTRA_ROUNDS + 1) or verdict.cannot_fail(v))):
        rounds.append(measure_p99_blocks(fn, args, timer, batch, blocks)[1])
        v = verdict.compare(rounds, baseline, tolerance_pct=case.tolerance)
    return v, len(rounds) - 1, time.monotonic() - t0


def compare_stored(case: Case, baseline: list[np.ndarray], timer: measure.TimerInfo, batch: int
                   ) -> tuple[verdict.Verdict, int, float, verdict.Verdict, int, float]:
    """One stored comparison done both ways, one right after the other: the shipped rule and
    the whole plan with every round (see :func:`_stored_rounds`)."""
    return (*_stored_rounds(case, baseline, timer, batch, shipped=True),
            *_stored_rounds(case, baseline, timer, batch, shipped=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comparisons", type=int, default=100, help="comparisons per slowed case (default 100)")
    parser.add_argument("--unchanged", type=int, default=300,
                        help="comparisons of unchanged code (default 300: 1 in 100 has a 95%% interval reaching 5.4%%)")
    parser.add_argument("--baseline-runs", type=int, default=5, help="runs in the stored baseline (default 5)")
    parser.add_argument("--tolerance", type=float, default=10.0, help="tolerance in percent (default 10)")
    parser.add_argument("--cases", default="", help="comma-separated case labels to run (default all)")
    parser.add_argument("--mode", choices=("stored", "paired", "both"), default="both",
                        help="stored baseline, paired now, or both interleaved (default)")
    args = parser.parse_args(argv)
    chosen = [c for c in cases(args.tolerance) if not args.cases or c.label in args.cases.split(",")]
    if not chosen:
        parser.error(f"--cases {args.cases!r} names none of: {', '.join(c.label for c in cases(args.tolerance))}")
    modes = ("stored", "paired") if args.mode == "both" else (args.mode,)
    timer = measure.calibrate()
    cpu = sorted(control.allowed_cpus())[-1]
    counts: dict[tuple[str, str], Counter[str]] = {(m, c.label): Counter() for m in (*modes, "stored-all")
                                                   for c in chosen}
    seconds: Counter[tuple[str, str]] = Counter()
    done: Counter[str] = Counter()
    with control.controlled(cpus=[cpu]) as applied:
        state = ", ".join(f"{a.control} {'on' if a.applied else 'off'}" for a in applied)
        baseline: list[np.ndarray] = []
        batch = 1
        if "stored" in modes:
            first = [measure_p99_blocks(work, (BASE_ITERATIONS,), timer) for _ in range(args.baseline_runs)]
            batch = first[0][0].batch
            baseline = [blocks for _, blocks in first]
        print(f"host control: {state} (cpu {cpu}); work({BASE_ITERATIONS}); modes {', '.join(modes)}; "
              f"{args.unchanged} unchanged comparisons, {args.comparisons} per slowed case", flush=True)
        for i in range(max(args.unchanged, args.comparisons)):
            for case in chosen:
                if i >= (args.unchanged if case.unchanged else args.comparisons):
                    continue
                done[case.label] += 1
                if "stored" in modes:
                    v, rounds, took, v_all, rounds_all, took_all = compare_stored(
                        case, baseline[-args.baseline_runs:], timer, batch)
                    c, c_all = counts["stored", case.label], counts["stored-all", case.label]
                    c[v.status] += 1
                    c["re-measured"] += rounds > 0
                    c_all[v_all.status] += 1
                    c_all["re-measured"] += rounds_all > 0
                    seconds["stored-all", case.label] += took_all
                    t0 = time.monotonic()
                    if v.status == "regressed":  # the product confirms it paired before failing
                        c["failed"] += compare_paired(case, timer, cpu).status == "regressed"
                    seconds["stored", case.label] += took + time.monotonic() - t0
                if "paired" in modes:
                    t0 = time.monotonic()
                    pv = compare_paired(case, timer, cpu)
                    seconds["paired", case.label] += time.monotonic() - t0
                    c = counts["paired", case.label]
                    c[pv.status] += 1
                    c["failed"] += pv.status == "regressed"
                    c["pairs"] += pv.pairs
            if "stored" in modes:  # the baseline rolls, as --hostperf-save keeps the last K runs
                baseline.append(measure_p99_blocks(work, (BASE_ITERATIONS,), timer, batch)[1])
            if (i + 1) % 25 == 0:
                print(f"  ... {i + 1} comparisons per case done", flush=True)
    for m in modes + (("stored-all",) if "stored" in modes else ()):
        _print_table(m, chosen, counts, seconds, done)
    return 0


def _print_table(mode: str, chosen: list[Case], counts: dict[tuple[str, str], Counter[str]],
                 seconds: Counter[tuple[str, str]], done: Counter[str]) -> None:
    title = {"stored": "stored baseline, as shipped: rounds sampled by noise (gate.noise_blocks), no re-measuring "
                       "once undecidable (regressed = before confirmation, failed = confirmed paired)",
             "stored-all": "stored baseline, the whole plan, every inconclusive re-measured to the limit (the rule "
                           "before issue 15's run-speed work; measured right after the shipped one; failed not "
                           "measured)",
             }.get(mode, "paired (sequential stopping)")
    print(f"{title}:")
    print(f"{'case':>12} {'n':>4} {'tol':>4} {'regressed':>10} {'failed':>7} {'unchanged':>10} {'improved':>9} "
          f"{'inconcl.':>9} {'pairs/cmp':>10} {'s/compare':>10}")
    for case in chosen:
        c, n = counts[mode, case.label], done[case.label]
        pairs = f"{c['pairs'] / n:.1f}" if mode == "paired" else f"{c['re-measured']} re-m."
        print(f"{case.label:>12} {n:>4} {case.tolerance:>3g}% {c['regressed']:>10} {c['failed']:>7} "
              f"{c['unchanged']:>10} {c['improved']:>9} {c['inconclusive']:>9} {pairs:>10} "
              f"{seconds[mode, case.label] / n:>10.2f}")


if __name__ == "__main__":
    sys.exit(main())
