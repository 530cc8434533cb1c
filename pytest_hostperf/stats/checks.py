"""Latency budgets: absolute (``p99="50us"``: the estimate confidently over its budget fails)
and relative (``expect_faster``: two measurements of one run, a speed-up confidently short of
its factor fails). Both hold on any host without a baseline.

A budget is broken only when the measurement is *confidently* over it: the lower end of the
95% interval of the estimate lies above the budget. An estimate above the budget whose
interval still reaches below it is ``inconclusive``: reported, never silently passed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pytest_hostperf.stats import percentiles as stats
from pytest_hostperf.stats.verdict import GATED, ratio_interval
from pytest_hostperf.units import STAT_LABELS, format_ns

if TYPE_CHECKING:
    from pytest_hostperf.stats.result import Result


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
        label = "max (median block max)" if self.stat == "max" else STAT_LABELS[self.stat]
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
    """Compare one estimate and its interval with a budget (for ``max``: the median block max
    and its interval over blocks; for percentiles: over all calls, as reported)."""
    est = estimate_of(result, stat)
    if stat == "max":
        lo, hi = stats.interval(stats.block_values(result.blocks, "max"))
    else:
        lo, hi = result.interval(stat)
    if lo > budget_ns:
        status = "over-budget"
    elif est > budget_ns:
        status = "inconclusive"
    else:
        status = "within"
    return BudgetCheck(result.id, stat, int(budget_ns), est, (lo, hi), status, result.mode)


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
        return (f"{self.fast_id} {verb} {self.factor:g}x faster than {self.slow_id} at {GATED[self.stat]}: "
                f"speedup {self.speedup:.2f}x [95% CI {lo:.2f} .. {hi:.2f}]")


def check_speedup(fast: Result, slow: Result, *, factor: float, stat: str = "p99",
                  rng: np.random.Generator | None = None) -> SpeedupCheck:
    """Whether ``fast`` is at least ``factor`` times faster than ``slow`` at ``stat``.

    Fails only when confidently not (the interval of slow/fast lies below ``factor``); holds
    when the interval lies at or above it; inconclusive in between. Both come from the same
    run, so this holds on any host without a baseline.
    """
    ratio, (lo, hi) = ratio_interval(stats.block_values(fast.blocks, stat), [stats.block_values(slow.blocks, stat)],
                                     rng=rng)
    speedup, s_lo, s_hi = 1 / ratio, 1 / hi, 1 / lo
    status = "holds" if s_lo >= factor else "fails" if s_hi < factor else "inconclusive"
    return SpeedupCheck(fast.id, slow.id, stat, factor, speedup, (s_lo, s_hi), status)
