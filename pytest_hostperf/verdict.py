"""Pure decision rules: budgets, comparison with a baseline, relative budgets (expect_faster).

A budget is broken only when the measurement is *confidently* over it: the lower end of the
95% interval of the estimate lies above the budget. An estimate above the budget whose
interval still reaches below it is ``inconclusive``: reported, never silently passed.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pytest_hostperf import stats
from pytest_hostperf.result import Result
from pytest_hostperf.units import format_ns

BUDGET_STATS = ("p99", "p999", "max")
_LABEL = {"p50": "p50", "p90": "p90", "p99": "p99", "p999": "p99.9", "max": "max"}


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """One budget applied to one measurement."""

    result_id: str
    stat: str
    budget_ns: int
    estimate_ns: float
    interval_ns: tuple[float, float]
    status: str  # "within" | "over-budget" | "inconclusive"
    mode: str

    @property
    def failed(self) -> bool:
        return self.status == "over-budget"

    @property
    def message(self) -> str:
        lo, hi = self.interval_ns
        label = _LABEL[self.stat]
        what = {"within": "is within", "over-budget": "is over", "inconclusive": "may be over"}[self.status]
        text = (f"{self.result_id}: {label} {format_ns(self.estimate_ns)} "
                f"[95% CI {format_ns(lo)} .. {format_ns(hi)}] {what} its budget of {format_ns(self.budget_ns)}")
        if self.mode != "single":
            text += f" ({self.mode}: percentiles of {self.mode[8:-1]}-call means)"
        return text


def estimate_of(result: Result, stat: str) -> float:
    """The estimate of ``stat`` for budgets: percentiles as estimated, ``max`` as the median block max.

    Budgets on ``max`` use the typical block's worst call, not the single worst call of the
    run, so one hypervisor hiccup cannot fail a test; the run's true max is still reported.
    """
    if stat == "max":
        return stats.estimate(result.blocks, "max")
    return float(getattr(result, stat))


def check_budget(result: Result, stat: str, budget_ns: int) -> BudgetCheck:
    """Compare one estimate and its interval with a budget."""
    est = estimate_of(result, stat)
    lo, hi = result.interval(stat)
    if lo > budget_ns:
        status = "over-budget"
    elif est > budget_ns:
        status = "inconclusive"
    else:
        status = "within"
    return BudgetCheck(result.id, stat, int(budget_ns), est, (lo, hi), status, result.mode)


# --------------------------------------------------------------------------- baseline comparison

#: Verdicts of a comparison against a baseline (``over-budget`` comes from budgets).
STATUSES = ("regressed", "improved", "unchanged", "inconclusive", "over-budget", "new")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Current run vs baseline runs for one measurement and one statistic (p99 by default)."""

    status: str
    stat: str
    ratio: float | None  # current / baseline
    interval: tuple[float, float] | None  # 95% interval of the ratio
    baseline_ns: float | None
    current_ns: float
    tolerance_pct: float
    baseline_runs: int
    reason: str

    @property
    def failed(self) -> bool:
        return self.status in ("regressed", "over-budget")

    def delta_text(self) -> str:
        """``+38% [+30%, +46%]`` — the change and its interval, in percent."""
        if self.ratio is None or self.interval is None:
            return "-"
        lo, hi = self.interval
        return f"{self.ratio - 1:+.0%} [{lo - 1:+.0%}, {hi - 1:+.0%}]"


def _run_medians(runs: Sequence[np.ndarray], rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Bootstrap of the baseline's estimate: the median over resampled runs of each resampled
    run's median block value (a two-level bootstrap: runs, then blocks within runs), so the
    interval carries run-to-run variance as well as within-run variance."""
    k = len(runs)
    pick = rng.integers(0, k, size=(resamples, k))
    per_run = np.empty((k, resamples))
    for j, values in enumerate(runs):
        per_run[j] = stats.bootstrap_medians(values, resamples=resamples, rng=rng)
    chosen = per_run[pick, np.arange(resamples)[:, None]]  # (resamples, k)
    return np.median(chosen, axis=1)


#: Smallest run-to-run spread (standard deviation of log p99 between runs) ever assumed. A
#: run's p99 moves between runs on any host (neighbours, frequency, page placement) by more
#: than blocks within one run show; with few stored runs the spread measured from them is
#: unreliable, so it is never taken below this. Chosen with benchmarks/verdict_quality.py.
RUN_SPREAD_FLOOR = 0.025
#: Spread assumed while the baseline holds fewer than 3 runs and so cannot show its own: on the
#: shared 2-vCPU development VM a neighbour on the sibling vCPU moved p99 by 8-25% between runs.
FEW_RUNS_SPREAD = 0.08


def run_spread(baseline_runs: Sequence[np.ndarray], floor: float = RUN_SPREAD_FLOOR) -> float:
    """Run-to-run spread: the standard deviation of the log of each run's median block value,
    at least ``floor``; at least ``FEW_RUNS_SPREAD`` with fewer than three runs."""
    medians = [float(np.median(r)) for r in baseline_runs if len(r)]
    measured = float(np.std(np.log(np.maximum(medians, 1e-9)), ddof=1)) if len(medians) >= 2 else 0.0
    return max(floor if len(medians) >= 3 else max(floor, FEW_RUNS_SPREAD), measured)


def ratio_interval(current: np.ndarray, baseline_runs: Sequence[np.ndarray], *, confidence: float = 0.95,
                   resamples: int = stats.BOOTSTRAP_RESAMPLES, spread: float | None = None,
                   rng: np.random.Generator | None = None) -> tuple[float, tuple[float, float]]:
    """Point estimate and bootstrap interval of median(current) / baseline estimate.

    ``current`` holds the current run's block values; ``baseline_runs`` one array of block
    values per stored run. The baseline estimate is the median of the runs' medians; its
    uncertainty comes from a two-level bootstrap (runs, then blocks). The current run is one
    more run: besides its own block-to-block uncertainty it may sit anywhere in the
    run-to-run spread, so each resampled ratio is also multiplied by ``exp(spread * Z)``,
    ``spread`` defaulting to :func:`run_spread` of the baseline (0 for a same-run comparison).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    runs = [np.asarray(r, dtype=np.float64) for r in baseline_runs if len(r)]
    if not runs or not len(current):
        raise ValueError("ratio_interval needs current blocks and at least one baseline run")
    base = float(np.median([np.median(r) for r in runs]))
    cur = float(np.median(current))
    cur_boot = stats.bootstrap_medians(np.asarray(current, dtype=np.float64), resamples=resamples, rng=rng)
    base_boot = _run_medians(runs, rng, resamples)
    spread = run_spread(runs) if spread is None else spread
    ratios = cur_boot / np.maximum(base_boot, 1e-9) * np.exp(spread * rng.standard_normal(resamples))
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(ratios, [alpha, 1 - alpha])
    return cur / max(base, 1e-9), (float(lo), float(hi))


def compare(current: np.ndarray, baseline_runs: Sequence[np.ndarray], *, tolerance_pct: float, stat: str = "p99",
            rng: np.random.Generator | None = None) -> Verdict:
    """Decide ``regressed`` / ``improved`` / ``unchanged`` / ``inconclusive`` (DESIGN.md section 5).

    - regressed: the ratio's interval lies above 1 and its point estimate above 1 + tolerance;
    - improved: the mirror image (interval below 1, point below 1 / (1 + tolerance));
    - unchanged: the interval lies within [1 / (1 + tolerance), 1 + tolerance];
    - inconclusive: anything else (the caller re-measures, then warns).
    The bounds are symmetric on a log scale: 2x slower and 2x faster are equally far from 1.
    """
    if not baseline_runs:
        cur = float(np.median(current))
        return Verdict("new", stat, None, None, None, cur, tolerance_pct, 0, "no baseline for this measurement")
    ratio, (lo, hi) = ratio_interval(current, baseline_runs, rng=rng)
    up = 1 + tolerance_pct / 100
    down = 1 / up
    base = float(np.median([np.median(r) for r in baseline_runs]))
    cur = float(np.median(current))
    label = _LABEL[stat]
    if lo > 1 and ratio > up:
        status, why = "regressed", f"{label} confidently above baseline by more than the {tolerance_pct:g}% tolerance"
    elif hi < 1 and ratio < down:
        status, why = "improved", f"{label} confidently below baseline by more than the {tolerance_pct:g}% tolerance"
    elif down <= lo and hi <= up:
        status, why = "unchanged", f"{label} interval within ±{tolerance_pct:g}% of baseline"
    else:
        status, why = "inconclusive", (f"{label} interval [{lo - 1:+.0%}, {hi - 1:+.0%}] is too wide or too close "
                                       f"to the {tolerance_pct:g}% tolerance to decide")
    return Verdict(status, stat, ratio, (lo, hi), base, cur, tolerance_pct, len(baseline_runs), why)


def regression_message(result_id: str, v: Verdict) -> str:
    """The failure message of a regressed measurement: baseline, current, ratio with interval, tolerance."""
    lo, hi = v.interval or (float("nan"), float("nan"))
    return (f"{result_id}: {_LABEL[v.stat]} {v.status}: baseline {format_ns(v.baseline_ns)} -> current "
            f"{format_ns(v.current_ns)}, ratio {v.ratio:.2f} [95% CI {lo:.2f} .. {hi:.2f}] "
            f"(tolerance {v.tolerance_pct:g}%, {v.baseline_runs} baseline run(s))")


# --------------------------------------------------------------------------- relative budgets


@dataclass(frozen=True, slots=True)
class SpeedupCheck:
    """``expect_faster(fast, slow, factor, at)``: the speedup slow/fast and its interval."""

    fast_id: str
    slow_id: str
    stat: str
    factor: float
    speedup: float
    interval: tuple[float, float]
    status: str  # "holds" | "fails" | "inconclusive"

    @property
    def failed(self) -> bool:
        return self.status == "fails"

    @property
    def message(self) -> str:
        lo, hi = self.interval
        verb = {"holds": "is", "fails": "is not", "inconclusive": "may not be"}[self.status]
        return (f"{self.fast_id} {verb} {self.factor:g}x faster than {self.slow_id} at {_LABEL[self.stat]}: "
                f"speedup {self.speedup:.2f}x [95% CI {lo:.2f} .. {hi:.2f}]")


def check_speedup(fast: Result, slow: Result, *, factor: float, stat: str = "p99",
                  rng: np.random.Generator | None = None) -> SpeedupCheck:
    """Whether ``fast`` is at least ``factor`` times faster than ``slow`` at ``stat``.

    Fails only when confidently not (the interval of slow/fast lies below ``factor``); holds
    when the interval lies at or above it; inconclusive in between. Both come from the same
    run, so this holds on any host without a baseline.
    """
    ratio, (lo, hi) = ratio_interval(stats.block_values(fast.blocks, stat), [stats.block_values(slow.blocks, stat)],
                                     spread=0.0, rng=rng)
    speedup, s_lo, s_hi = 1 / ratio, 1 / hi, 1 / lo
    status = "holds" if s_lo >= factor else "fails" if s_hi < factor else "inconclusive"
    return SpeedupCheck(fast.id, slow.id, stat, factor, speedup, (s_lo, s_hi), status)
