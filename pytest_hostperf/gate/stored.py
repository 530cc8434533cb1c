"""The stored-baseline gate: how many blocks a round takes, how many rounds a verdict rests on,
and the gate that measures a test against the stored runs of its baseline.

The rules (:func:`plan_by_noise`, :func:`settle`) are pure over typed values: ``verdict``
decides one comparison, this module how often to take one. :class:`StoredGate` applies them
to one measurement and, where a regression holds, has it confirmed paired
(``gate/confirm.py``) before it fails a test.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from pytest_hostperf.gate.seam import Asked, Judged
from pytest_hostperf.measure import sampling
from pytest_hostperf.stats import percentiles, verdict

if TYPE_CHECKING:
    from pytest_hostperf.gate.confirm import Confirmation
    from pytest_hostperf.measure.sampling import Plan, Samples
    from pytest_hostperf.stats.result import Result
    from pytest_hostperf.store.records import StoredMeasurement

#: Spread added (in quadrature) to every verdict's run-to-run spread when the noise probe
#: found the host well noisier than during the baseline (noise.py).
NOISY_SPREAD = 0.08
#: Spread added (in quadrature) when the baseline's runs were all saved within CLOSE_RUNS_S of
#: each other: runs saved minutes apart learn the spread of minutes, not the drift between one
#: day's host and the next (issue 23 measured 3 false failures in 20 gates of unchanged code
#: against 5 runs saved seconds apart). Chosen with benchmarks/stored_alone.py (docs/gate.md).
CLOSE_RUNS_SPREAD = 0.20
CLOSE_RUNS_S = 3600.0


def runs_span_s(created: Sequence[str]) -> float | None:
    """Seconds between the first and the last of baseline runs' ``created_utc`` stamps (None
    for fewer than two, or a stamp that does not parse)."""
    from datetime import datetime

    try:
        times = sorted(datetime.strptime(c, "%Y-%m-%dT%H:%M:%SZ") for c in created)
    except (TypeError, ValueError):
        return None
    return (times[-1] - times[0]).total_seconds() if len(times) >= 2 else None


#: Fewest blocks a round sampled by its noise takes: a median of fewer block values is moved
#: too easily by one disturbed block.
MIN_NOISE_BLOCKS = 5
#: How large a round's own error (the bootstrap standard error of its block median) may grow,
#: as a share of the baseline's run-to-run spread σ, when a round is sampled by its noise: at
#: a third the verdict's spread grows by at most 5% (hypot(1, 1/3) = 1.054), so more blocks
#: could narrow its interval by no more than that.
NOISE_SHARE = 1 / 3


def noise_blocks(runs: Sequence[np.ndarray], rng: np.random.Generator | None = None) -> int:
    """The fewest blocks whose block median's own error (bootstrap) stays within ``NOISE_SHARE``
    of the run-to-run spread σ of ``runs`` (each stored run's block values of one statistic),
    at least ``MIN_NOISE_BLOCKS``. A stored verdict's interval is set by σ (how far the
    run-level estimate moves between runs, :func:`verdict.run_spread`), not by one round's own
    error, which shrinks as 1/sqrt(blocks): blocks beyond this narrow it by under 5%."""
    rng = np.random.default_rng(0) if rng is None else rng
    runs = [np.asarray(r, dtype=float) for r in runs if len(r) >= 2]
    if not runs:
        return 10**9  # nothing to learn the noise from: every block
    sigma = verdict.run_spread(runs)
    # bootstrap variance of a run's block median × its blocks: the variance one block adds
    per_block = float(np.median([len(r) * verdict.median_bootstrap_se(r, rng, 200) ** 2 for r in runs]))
    return max(MIN_NOISE_BLOCKS, math.ceil(per_block / (NOISE_SHARE * sigma) ** 2))


def scaled(plan: Plan, blocks: int) -> Plan:
    """``plan`` with ``blocks`` blocks (never more than it had), each as large and as long as before."""
    if blocks >= plan.blocks:
        return plan
    return replace(plan, samples=max(blocks, math.ceil(plan.samples * blocks / plan.blocks)), blocks=blocks,
                   max_seconds=plan.max_seconds * blocks / plan.blocks)


def plan_by_noise(plan: Plan, base: Sequence[StoredMeasurement], gated: Sequence[str] = ("p99",)) -> Plan:
    """The plan of one round compared with ``base``: no more blocks than its verdict can use.

    For each gated statistic, :func:`noise_blocks` from the baseline's runs; the round takes
    the most any of them needs, at most ``plan.blocks``. Samples and time budget shrink in
    proportion, so every block is as large as before and its statistics compare like for like:
    time is spent only where it can change a verdict."""
    if not base or plan.blocks <= MIN_NOISE_BLOCKS:
        return plan
    rng = np.random.default_rng(0)
    need = max(noise_blocks([np.array([b.get(s) for b in m.blocks], dtype=float) for m in base], rng)
               for s in gated)
    return scaled(plan, need)


@dataclass(frozen=True, slots=True)
class Settled:
    """A measurement and the verdict it settled on, after ``extra_rounds`` re-measured rounds."""

    result: Result
    verdict: verdict.Verdict
    extra_rounds: int


def gated_verdict(rounds: Sequence[Sequence[percentiles.BlockStats]], base: Sequence[StoredMeasurement],
                  gated: Sequence[str], *, tolerance: float, extra_spread: float = 0.0) -> verdict.Verdict:
    """The verdict of one measurement's rounds (each round's blocks) against the baseline, on each
    statistic of ``gated`` (``--hostperf-gate``: block medians of p99 by default): the worst of
    them, holding the others (``verdict.worst``)."""
    return verdict.worst([verdict.compare([percentiles.block_values(r, s) for r in rounds],
                                          [np.array([b.get(s) for b in m.blocks], dtype=float) for m in base],
                                          tolerance_pct=tolerance, stat=s, extra_spread=extra_spread)
                          for s in gated])


#: Appended to the reason of an inconclusive verdict settle stopped re-measuring (verdict.cannot_fail).
CANNOT_FAIL_NOTE = ("not re-measured: even one standard error higher it stays within the tolerance, so no "
                    "number of rounds could fail it (--hostperf-strict re-measures it)")


def settle(first: Samples, again: Callable[[], Samples], summarize: Callable[[Samples], Result],
           base: Sequence[StoredMeasurement], *, tolerance: float, noisy: bool, max_rounds: int,
           gated: Sequence[str] = ("p99",), retry: Sequence[str] = ("regressed", "inconclusive"),
           strict: bool = False, drift: float = 0.0) -> Settled:
    """Compare ``first`` with the baseline; while the verdict is one of ``retry`` (regressed or
    inconclusive), take up to ``max_rounds`` more rounds (``again()``, same batch size and
    bounds) so that a regression must hold over several rounds and one disturbed round cannot
    fail the run. An inconclusive verdict is not re-measured when no number of rounds could
    decide it (``verdict.undecidable``) nor, unless ``strict`` (where inconclusive fails), when
    no number of rounds could make it fail (``verdict.cannot_fail``). The result returned is of
    all rounds' samples together. ``gated``: the statistics compared (:func:`gated_verdict`).
    ``drift``: spread the baseline's runs cannot show (``CLOSE_RUNS_SPREAD`` when they were saved
    close together), added in quadrature as a noisy host's is."""
    raw = first
    res = summarize(raw)
    widen = float(np.hypot(NOISY_SPREAD if noisy else 0.0, drift))
    rounds = [res.blocks]
    v = gated_verdict(rounds, base, gated, tolerance=tolerance, extra_spread=widen)

    def passes_anyway(v: verdict.Verdict) -> bool:  # more rounds could change no outcome
        return not strict and verdict.cannot_fail(v)

    while v.status in retry and len(rounds) <= max_rounds \
            and not verdict.undecidable(v, max_rounds + 1) and not passes_anyway(v):
        more = again()
        rounds.append(summarize(more).blocks)
        raw = sampling.merge(raw, more)
        res = summarize(raw)
        v = gated_verdict(rounds, base, gated, tolerance=tolerance, extra_spread=widen)
    if v.status in retry and len(rounds) <= max_rounds and passes_anyway(v):
        v = replace(v, reason=f"{v.reason}; {CANNOT_FAIL_NOTE}")
    return Settled(res, v, len(rounds) - 1)


def compare_once(res: Result, base: Sequence[StoredMeasurement], *, tolerance: float,
                 gated: Sequence[str] = ("p99",), drift: float = 0.0) -> verdict.Verdict:
    """One round against the baseline (samples timed by another tool cannot be re-measured);
    ``drift`` as for :func:`settle`."""
    return gated_verdict([res.blocks], base, gated, tolerance=tolerance, extra_spread=drift)


#: The run's note when a measurement took fewer blocks than asked for (:func:`plan_by_noise`).
NOISE_NOTE = ("sampled by noise: a measurement compared with a baseline takes only the blocks its verdict can use "
              "(until its own error is a third of the baseline's run-to-run spread, at least 5 blocks; n shows what "
              "was taken); --hostperf-save, and a measurement with a budget, take every sample")


class Progress(Protocol):
    """The run's status line, as the gate drives it."""

    def begin(self, mid: str, budget_s: float = 0.0) -> None: ...

    def step(self, what: str, budget_s: float | None = None) -> None: ...


class StoredGate:
    """Measure against the stored runs of the baseline: rounds while regressed or inconclusive
    (at most ``max_rounds`` more), and each regressed statistic confirmed paired."""

    def __init__(self, *, baseline_of: Callable[[str], list[StoredMeasurement]], gated: Sequence[str],
                 strict: bool, by_noise: bool, noisy: Callable[[], bool], progress: Progress,
                 note_once: Callable[[str], None], confirmation: Confirmation | None, max_rounds: int = 2,
                 runs_created: Sequence[str] = ()) -> None:
        self.baseline_of = baseline_of
        self.gated = tuple(gated)
        self.strict = strict
        self.by_noise = by_noise  # False under --hostperf-save: a saved run takes every sample
        self.noisy = noisy
        self.progress = progress
        self.note_once = note_once
        self.confirmation = confirmation
        self.max_rounds = max_rounds
        span = runs_span_s(runs_created)
        # runs saved close together: their spread is of minutes, not of the drift between days
        self.drift = CLOSE_RUNS_SPREAD if span is not None and span < CLOSE_RUNS_S else 0.0
        self.span = span

    def judge(self, asked: Asked) -> Judged:
        base = self.baseline_of(asked.mid)
        plan = asked.plan
        if base and not asked.budgeted and self.by_noise:  # a budget checks the calls asked for
            plan = plan_by_noise(plan, base, self.gated)
            if plan.blocks < asked.plan.blocks:
                self.note_once(NOISE_NOTE)
        rounds = 1 + self.max_rounds
        self.progress.begin(asked.mid, rounds * plan.max_seconds + plan.warmup_seconds)
        self.progress.step(f"round 1/{rounds}")
        with asked.sampler.controlled() as host:
            raw = asked.sampler.sample(plan, None)
        later = itertools.count(2)

        def again() -> Samples:
            self.progress.step(f"round {next(later)}/{rounds}")
            with asked.sampler.controlled():
                return asked.sampler.sample(replace(plan, batch=raw.batch, warmup_calls=10), None)

        if self.drift and base:
            minutes = (self.span or 0.0) / 60
            self.note_once(f"the baseline's runs were saved within {minutes:.0f} min of each other: their "
                           "spread is of minutes, not the drift between days, so the stored gate assumes "
                           f"{CLOSE_RUNS_SPREAD:.0%} more (save runs at least {CLOSE_RUNS_S / 3600:.0f} h apart to "
                           "let it learn this host's own)")
        settled = settle(raw, again, asked.summarize, base, tolerance=asked.tolerance, noisy=self.noisy(),
                         drift=self.drift, max_rounds=self.max_rounds, gated=self.gated, strict=self.strict)
        v = settled.verdict
        if v.status == "regressed" and self.confirmation is not None:
            # each gated statistic that regressed is confirmed on its own (paired: p99 only)
            v = verdict.worst([self.confirmation.confirm(part, asked) if part.status == "regressed" else part
                               for part in verdict.gated_parts(v)])
        return Judged(settled.result, host, v, tuple(base), settled.extra_rounds)
