"""The gate: when a measurement is re-measured, and when a test fails because of one.

Pure rules over typed values (``verdict.py`` decides one comparison; this module decides
how many rounds a verdict rests on and what a test's outcome is). No pytest hooks here:
``session.py`` calls :func:`outcome` from its ``pytest_runtest_call``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_hostperf import measure, stats, verdict

if TYPE_CHECKING:
    from pytest_hostperf.measure import Samples
    from pytest_hostperf.recorder import Recorder
    from pytest_hostperf.records import StoredMeasurement
    from pytest_hostperf.result import Result

#: Spread added (in quadrature) to every verdict's run-to-run spread when the noise probe
#: found the host well noisier than during the baseline (noise.py).
NOISY_SPREAD = 0.08


@dataclass(frozen=True, slots=True)
class Settled:
    """A measurement and the verdict it settled on, after ``extra_rounds`` re-measured rounds."""

    result: Result
    verdict: verdict.Verdict
    extra_rounds: int


def baseline_p99(base: Sequence[StoredMeasurement]) -> list[np.ndarray]:
    """Per baseline run: the p99 of each block."""
    return [np.array([b.p99_ns for b in m.blocks], dtype=float) for m in base]


def gated_verdict(rounds: Sequence[Sequence[stats.BlockStats]], base: Sequence[StoredMeasurement],
                  gated: Sequence[str], *, tolerance: float, extra_spread: float = 0.0) -> verdict.Verdict:
    """The verdict of one measurement's rounds (each round's blocks) against the baseline, on each
    statistic of ``gated`` (``--hostperf-gate``: block medians of p99 by default): the worst of
    them, holding the others (``verdict.worst``)."""
    return verdict.worst([verdict.compare([stats.block_values(r, s) for r in rounds],
                                          [np.array([b.get(s) for b in m.blocks], dtype=float) for m in base],
                                          tolerance_pct=tolerance, stat=s, extra_spread=extra_spread)
                          for s in gated])


def settle(first: Samples, again: Callable[[], Samples], summarize: Callable[[Samples], Result],
           base: Sequence[StoredMeasurement], *, tolerance: float, noisy: bool, max_rounds: int,
           gated: Sequence[str] = ("p99",)) -> Settled:
    """Compare ``first`` with the baseline; while the verdict is regressed or inconclusive, take
    up to ``max_rounds`` more rounds (``again()``, same batch size and bounds) so that a
    regression must hold over several rounds and one disturbed round cannot fail the run.
    The result returned is of all rounds' samples together. ``gated``: the statistics compared
    (:func:`gated_verdict`)."""
    raw = first
    res = summarize(raw)
    widen = NOISY_SPREAD if noisy else 0.0
    rounds = [res.blocks]
    v = gated_verdict(rounds, base, gated, tolerance=tolerance, extra_spread=widen)
    while v.status in ("regressed", "inconclusive") and len(rounds) <= max_rounds \
            and not verdict.undecidable(v, max_rounds + 1):  # more rounds could change nothing
        more = again()
        rounds.append(summarize(more).blocks)
        raw = measure.merge(raw, more)
        res = summarize(raw)
        v = gated_verdict(rounds, base, gated, tolerance=tolerance, extra_spread=widen)
    return Settled(res, v, len(rounds) - 1)


def compare_once(res: Result, base: Sequence[StoredMeasurement], *, tolerance: float,
                 gated: Sequence[str] = ("p99",)) -> verdict.Verdict:
    """One round against the baseline (samples timed by another tool cannot be re-measured)."""
    return gated_verdict([res.blocks], base, gated, tolerance=tolerance)


def outcome(rec: Recorder, *, strict: bool) -> tuple[list[str], list[str]]:
    """A test's failures (over budget, regressed; inconclusive ones too under ``strict``) and
    its warnings (inconclusive verdicts, budgets and speedups), each message one line or more."""
    def why(mid: str) -> str:
        return f" — {rec.why[mid]}" if mid in rec.why else ""

    failures = [c.message + why(c.result_id) for c in rec.checks if c.failed]
    failures += [verdict.regression_message(mid, v) + why(mid) for mid, v in rec.verdicts.items() if v.failed]
    unsure = [c.message for c in rec.checks if c.status == "inconclusive"]
    unsure += [f"{mid}: {verdict.GATED[v.stat]} inconclusive: {v.detail}" for mid, v in rec.verdicts.items()
               if v.status == "inconclusive"]
    unsure += [c.message for c in rec.speedups if c.status == "inconclusive"]
    if strict:
        return failures + [f"{u} (failing: --hostperf-strict)" for u in unsure], []
    return failures, [u + "; measure longer (--hostperf-max-time) or on a quieter host" for u in unsure]


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
