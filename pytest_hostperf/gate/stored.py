"""The gate: when a measurement is re-measured, and when a test fails because of one.

Pure rules over typed values (``verdict.py`` decides one comparison; this module decides
how many rounds a verdict rests on and what a test's outcome is). No pytest hooks here:
``session.py`` calls :func:`outcome` from its ``pytest_runtest_call``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_hostperf.measure import sampling as measure
from pytest_hostperf.stats import percentiles, verdict

if TYPE_CHECKING:
    from pytest_hostperf.measure.sampling import Plan, Samples
    from pytest_hostperf.run.fixture import Recorder
    from pytest_hostperf.stats.result import Result
    from pytest_hostperf.store.records import StoredMeasurement

#: Spread added (in quadrature) to every verdict's run-to-run spread when the noise probe
#: found the host well noisier than during the baseline (noise.py).
NOISY_SPREAD = 0.08


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
    proportion, so every block is as large as before and its statistics compare like for like
    (issue 15: spend time only where it can change a verdict)."""
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


def baseline_p99(base: Sequence[StoredMeasurement]) -> list[np.ndarray]:
    """Per baseline run: the p99 of each block."""
    return [np.array([b.p99_ns for b in m.blocks], dtype=float) for m in base]


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
           strict: bool = False) -> Settled:
    """Compare ``first`` with the baseline; while the verdict is one of ``retry`` (regressed or
    inconclusive), take up to ``max_rounds`` more rounds (``again()``, same batch size and
    bounds) so that a regression must hold over several rounds and one disturbed round cannot
    fail the run. An inconclusive verdict is not re-measured when no number of rounds could
    decide it (``verdict.undecidable``) nor, unless ``strict`` (where inconclusive fails), when
    no number of rounds could make it fail (``verdict.cannot_fail``). The result returned is of
    all rounds' samples together. ``gated``: the statistics compared (:func:`gated_verdict`)."""
    raw = first
    res = summarize(raw)
    widen = NOISY_SPREAD if noisy else 0.0
    rounds = [res.blocks]
    v = gated_verdict(rounds, base, gated, tolerance=tolerance, extra_spread=widen)

    def passes_anyway(v: verdict.Verdict) -> bool:  # more rounds could change no outcome
        return not strict and verdict.cannot_fail(v)

    while v.status in retry and len(rounds) <= max_rounds \
            and not verdict.undecidable(v, max_rounds + 1) and not passes_anyway(v):
        more = again()
        rounds.append(summarize(more).blocks)
        raw = measure.merge(raw, more)
        res = summarize(raw)
        v = gated_verdict(rounds, base, gated, tolerance=tolerance, extra_spread=widen)
    if v.status in retry and len(rounds) <= max_rounds and passes_anyway(v):
        v = replace(v, reason=f"{v.reason}; {CANNOT_FAIL_NOTE}")
    return Settled(res, v, len(rounds) - 1)


def compare_once(res: Result, base: Sequence[StoredMeasurement], *, tolerance: float,
                 gated: Sequence[str] = ("p99",)) -> verdict.Verdict:
    """One round against the baseline (samples timed by another tool cannot be re-measured)."""
    return gated_verdict([res.blocks], base, gated, tolerance=tolerance)


def outcome(rec: Recorder, *, strict: bool) -> list[str]:
    """A test's failures (over budget, regressed; inconclusive ones too under ``strict``), each
    message one line or more. An inconclusive verdict is not a Python warning: the summary
    lists it with its reason and what would decide it (``report.py``), so a suite run under
    ``filterwarnings = error`` is not failed by hostperf for a verdict it passes (issue 16)."""
    def why(mid: str) -> str:
        return f" — {rec.why[mid]}" if mid in rec.why else ""

    failures = [c.message + why(c.result_id) for c in rec.checks if c.failed]
    failures += [verdict.regression_message(mid, v) + why(mid) for mid, v in rec.verdicts.items() if v.failed]
    if not strict:
        return failures
    unsure = [c.message for c in rec.checks if c.status == "inconclusive"]
    unsure += [f"{mid}: {verdict.GATED[v.stat]} inconclusive: {v.detail}" for mid, v in rec.verdicts.items()
               if v.status == "inconclusive"]
    unsure += [c.message for c in rec.speedups if c.status == "inconclusive"]
    return failures + [f"{u} (failing: --hostperf-strict)" for u in unsure]


def missing_baselines(rec: Recorder, *, fix: str) -> list[str]:
    """``--hostperf-require-baseline``: a failure for each of the test's measurements that had no
    stored baseline to be compared with (verdict ``new``), ending with ``fix`` (where none was
    found, the command that records one)."""
    return [f"{mid}: no baseline to compare with, and --hostperf-require-baseline is set: {fix}"
            for mid, v in rec.verdicts.items() if v.status == "new"]


def junit_properties(rec: Recorder) -> list[tuple[str, Any]]:
    """``record_property`` entries of a test's measurements, so ``--junitxml`` shows them:
    ``hostperf[<name>].p99_ns`` and ``hostperf[<name>].verdict`` (over-budget wins, as in reports)."""
    props: list[tuple[str, Any]] = []
    for e in rec.entries:
        props += [(f"hostperf[{e.result.name}].p99_ns", e.record.p99_ns),
                  (f"hostperf[{e.result.name}].verdict", e.record.status)]
    return props
