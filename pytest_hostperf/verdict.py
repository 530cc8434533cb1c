"""Pure decision rules: a measurement against its latency budgets.

A budget is broken only when the measurement is *confidently* over it: the lower end of the
95% interval of the estimate lies above the budget. An estimate above the budget whose
interval still reaches below it is ``inconclusive``: reported, never silently passed.
"""
from __future__ import annotations

from dataclasses import dataclass

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
