"""pytest-benchmark's rounds against the stored baseline: samples another tool timed, compared
only with the stored runs of as many rounds and iterations (like for like), a regression
re-measured by running pytest-benchmark's runner again. Under ``--hostperf-against`` they are
not paired (pytest-benchmark runs its rounds back to back, which cannot take turns)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from pytest_hostperf.gate.seam import NotCompared
from pytest_hostperf.gate.stored import compare_once, settle
from pytest_hostperf.stats import verdict
from pytest_hostperf.store import pbench

if TYPE_CHECKING:
    from pytest_hostperf.measure.sampling import Samples
    from pytest_hostperf.stats.result import Result
    from pytest_hostperf.store.records import StoredMeasurement

#: The run's note when --hostperf-against meets pytest-benchmark tests.
PAIRED_NOTE = ("--hostperf-against: pytest-benchmark tests are measured on the head only (pytest-benchmark "
               "runs its rounds back to back, which cannot take turns with the base block by block): shown "
               "as new; to pair one, time it with the hostperf fixture (docs/xdist-and-pytest-benchmark.md)")
NOT_PAIRED = "not paired: pytest-benchmark times its rounds itself (docs/xdist-and-pytest-benchmark.md)"


def judge_rounds(res: Result, raw: Samples, base: Sequence[StoredMeasurement], *, tolerance: float,
                 gated: Sequence[str], noisy: bool, max_rounds: int, summarize: Callable[[Samples], Result],
                 again: Callable[[], Samples] | None) -> tuple[verdict.Verdict, tuple[StoredMeasurement, ...], int]:
    """The verdict on pytest-benchmark's rounds ``res``, the stored runs it was compared with,
    and the rounds re-measured. Only the stored runs of as many rounds and iterations compare;
    with ``again`` (its runner, for as many rounds) a regressed verdict must hold over more
    rounds; an inconclusive one passes without them (not worth the time)."""
    alike = tuple(m for m in base if pbench.like_for_like(res.n, res.batch, (m.n, m.batch)) is None)
    extra = 0
    if base and not alike:
        unlike = pbench.like_for_like(res.n, res.batch, (base[-1].n, base[-1].batch))
        v = verdict.not_comparable(current_ns=res.gate_p99, tolerance_pct=tolerance, baseline_runs=len(base),
                                   reason=f"not like for like with the baseline: {unlike}; save three runs "
                                   "with hostperf's fixed rounds (pytest --hostperf --hostperf-save)")
    elif again is not None and alike:
        settled = settle(raw, again, summarize, alike, tolerance=tolerance, noisy=noisy, max_rounds=max_rounds,
                         gated=gated, retry=("regressed",))
        # the verdict rests on every round; the result stays pytest-benchmark's own rounds,
        # the figures its table shows and the count a saved baseline fixes for later runs
        v, extra = settled.verdict, settled.extra_rounds
    else:
        v = compare_once(res, alike, tolerance=tolerance, gated=gated)
    if base and alike and len(alike) < len(base):
        v = replace(v, reason=f"{v.reason}; compared with the {len(alike)} of {len(base)} baseline runs "
                              "taken with as many rounds and iterations")
    return v, alike, extra


def not_paired() -> NotCompared:
    return NotCompared(NOT_PAIRED)
