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

from pytest_hostperf.measure.openloop import format_rate
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
    saturated: str | None = None  # an open-loop measurement that could not keep up: never within a budget

    @property
    def failed(self) -> bool:
        return self.status == "over-budget"

    @property
    def message(self) -> str:
        lo, hi = self.interval_ns
        label = "max (median block max)" if self.stat == "max" else STAT_LABELS[self.stat]
        what = {"within": "is within", "over-budget": "is over", "inconclusive": "may be over"}[self.status]
        if self.saturated:  # its figure may sit below the budget: the queue it measured never drained
            what = "counts as over"
        text = (f"{self.result_id}: {label} {format_ns(self.estimate_ns)} "
                f"[95% CI {format_ns(lo)} .. {format_ns(hi)}] {what} its budget of {format_ns(self.budget_ns)}")
        if self.mode.startswith("batched("):
            text += f" ({self.mode}: percentiles of {self.mode[8:-1]}-call means)"
        if self.saturated:
            text += f"; {self.saturated}"
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
    why = saturation_text(result)
    if why:  # its latency grows with the run's length: no budget is met by a queue that never drains
        status = "over-budget"
    return BudgetCheck(result.id, stat, int(budget_ns), est, (lo, hi), status, result.mode, why)


def saturation_text(result: Result) -> str | None:
    """Why an open-loop result cannot be judged as it stands (None unless saturated): the rate it
    achieved against the rate asked."""
    load = getattr(result, "load", None)  # results of another kind (test doubles) have no load
    if not load or not load.get("saturated"):
        return None
    return (f"saturated: achieved {format_rate(load['achieved'])} of the {format_rate(load['rate'])} asked "
            f"({load['backlogged_blocks']} of {load['blocks']} blocks ended with a backlog); the function cannot "
            "keep up with this rate, so its latency from the intended start grows with the run")


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


# --------------------------------------------------------------------------- rate sweeps


@dataclass(frozen=True, slots=True)
class SweepRow:
    """One offered rate of a sweep: what it measured (ns) and the rate it achieved."""

    rate: float
    achieved: float
    p50: float
    p99: float
    p999: float
    saturated: bool
    result_id: str


@dataclass(frozen=True, slots=True)
class Sweep:
    """Latency against offered rate (``hostperf.sweep``): one row per rate, and the knee, the
    highest unsaturated rate whose p99 stays within ``limit_ns`` (None: no rate did)."""

    name: str
    rows: tuple[SweepRow, ...]
    limit_ns: float
    limit: str  # how the limit was set: "p99 <= 200 us" or "p99 <= 3x the unloaded p99 (...)"
    knee: float | None

    def table(self) -> str:
        """The sweep as lines: rate, achieved, p50, p99, p99.9, and where the knee is."""
        lines = [f"{'offered':>10}  {'achieved':>10}  {'p50':>9}  {'p99':>9}  {'p99.9':>9}"]
        for r in self.rows:
            mark = "  saturated" if r.saturated else ("  <- knee" if self.knee == r.rate else "")
            lines.append(f"{format_rate(r.rate):>10}  {format_rate(r.achieved):>10}  {format_ns(r.p50):>9}  "
                         f"{format_ns(r.p99):>9}  {format_ns(r.p999):>9}{mark}")
        return "\n".join(lines)


def knee(rates: list[tuple[float, float, bool]], limit_ns: float) -> float | None:
    """The highest rate whose p99 is within ``limit_ns`` and that was not saturated, among
    ``(rate, p99_ns, saturated)``; None: no rate was. A lower rate that failed does not move it: a
    lightly loaded path can have its own tail (an idle consumer napping between requests), which
    is not the tail falling apart under load."""
    within = [rate for rate, p99, sat in rates if not sat and p99 <= limit_ns]
    return max(within) if within else None
