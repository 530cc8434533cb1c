"""Budgets and ``expect_faster`` (``stats/checks.py``) on both sides of each boundary, exactly:
a budget is broken only when the interval's low end is above it; a speed-up holds when its
interval's low end reaches the factor and fails only when its high end stays below it."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from pytest_hostperf.stats import checks, verdict
from pytest_hostperf.stats.percentiles import BlockStats


def _blocks(p99s: list[float], maxes: list[float] | None = None) -> list[BlockStats]:
    maxes = maxes or [2 * v for v in p99s]
    return [BlockStats(100, v / 2, v * 0.9, v, v * 1.05, m) for v, m in zip(p99s, maxes)]


def _result(estimate: float, lo: float, hi: float, blocks: list[BlockStats] | None = None, mode: str = "single") -> Any:
    """A measurement as the budget reads it: the pooled estimate and its interval, and its blocks."""
    def interval(stat: str) -> tuple[float, float]:
        assert stat == "p99", "max is read from the blocks"
        return lo, hi

    return SimpleNamespace(id="t.py::test[f]", p99=estimate, max=1e12, interval=interval, mode=mode,
                           blocks=blocks or _blocks([estimate] * 3))


@pytest.mark.parametrize(("estimate", "lo", "budget", "status"), [
    (120.0, 100.0 + 1e-9, 100, "over-budget"),
    (120.0, 100.0, 100, "inconclusive"),  # the low end exactly on the budget: not confidently over
    (120.0, 99.0, 100, "inconclusive"),
    (100.0 + 1e-9, 90.0, 100, "inconclusive"),
    (100.0, 90.0, 100, "within"),  # the estimate exactly on the budget
    (90.0, 80.0, 100, "within"),
])
def test_budget_edges(estimate: float, lo: float, budget: int, status: str) -> None:
    c = checks.check_budget(_result(estimate, lo, estimate + 10), "p99", budget)
    assert c == checks.BudgetCheck("t.py::test[f]", "p99", budget, estimate, (lo, estimate + 10), status, "single")
    assert c.failed == (status == "over-budget")


def test_budget_on_max_reads_the_median_block_max() -> None:
    spread = _result(10.0, 9.0, 11.0, _blocks([10.0] * 5, maxes=[100.0, 300.0, 200.0, 250.0, 150.0]))
    assert checks.estimate_of(spread, "max") == 200.0  # not the run's single worst call (r.max)
    assert checks.estimate_of(spread, "p99") == 10.0
    r = _result(10.0, 9.0, 11.0, _blocks([10.0] * 5, maxes=[200.0] * 5))
    c = checks.check_budget(r, "max", 150)
    assert (c.estimate_ns, c.status) == (200.0, "over-budget")  # every bootstrap median of the block maxes is 200
    assert c.interval_ns == (200.0, 200.0)
    assert checks.check_budget(r, "max", 200).status == "within"
    assert c.message == ("t.py::test[f]: max (median block max) 200 ns [95% CI 200 ns .. 200 ns] is over its "
                         "budget of 150 ns")


def test_budget_messages() -> None:
    c = checks.check_budget(_result(120.0, 99.0, 130.0, mode="batched(8)"), "p99", 100)
    assert c.message == ("t.py::test[f]: p99 120 ns [95% CI 99 ns .. 130 ns] may be over its budget of 100 ns "
                         "(batched(8): percentiles of 8-call means)")
    assert checks.check_budget(_result(90.0, 80.0, 95.0), "p99", 100).message.endswith("is within its budget of 100 ns")


def _timed(name: str, p99s: list[float]) -> Any:
    return SimpleNamespace(id=f"t.py::test[{name}]", blocks=_blocks(p99s))


def test_speedup_edges() -> None:
    # constant blocks: every bootstrap ratio is 25/100, the speed-up exactly 4
    fast, slow = _timed("fast", [25.0] * 5), _timed("slow", [100.0] * 5)
    assert checks.check_speedup(fast, slow, factor=4).status == "holds"  # exactly the factor: holds
    assert checks.check_speedup(fast, slow, factor=4 * (1 + 1e-9)).status == "fails"
    assert checks.check_speedup(fast, slow, factor=4 * (1 - 1e-9)).status == "holds"
    # slow blocks 100 or 200 (5 and 6 of 11): every bootstrap median is one of them, the speed-up in [4, 8]
    wide = _timed("slow", [100.0] * 5 + [200.0] * 6)
    c = checks.check_speedup(fast, wide, factor=6)
    assert (c.interval, c.status, c.failed) == ((4.0, 8.0), "inconclusive", False)
    assert checks.check_speedup(fast, wide, factor=8).status == "inconclusive"  # the high end exactly the factor
    assert checks.check_speedup(fast, wide, factor=8 * (1 + 1e-9)).status == "fails"
    assert checks.check_speedup(fast, wide, factor=4).status == "holds"
    assert checks.check_speedup(fast, wide, factor=4 * (1 + 1e-9)).status == "inconclusive"
    # an estimate short of the factor fails nothing while the interval still reaches it
    lopsided = checks.check_speedup(fast, _timed("slow", [100.0] * 6 + [200.0] * 5), factor=6)
    assert (lopsided.speedup, lopsided.interval, lopsided.status) == (4.0, (4.0, 8.0), "inconclusive")


def test_speedup_uses_the_given_generator_and_reports_exactly() -> None:
    rng = np.random.default_rng(5)
    fast, slow = _timed("fast", list(rng.lognormal(3, 0.3, 12))), _timed("slow", list(rng.lognormal(5, 0.3, 12)))
    c = checks.check_speedup(fast, slow, factor=2, stat="p99", rng=np.random.default_rng(8))
    ratio, (lo, hi) = verdict.ratio_interval(np.array([b.p99 for b in fast.blocks]),
                                             [np.array([b.p99 for b in slow.blocks])], rng=np.random.default_rng(8))
    assert (c.speedup, c.interval) == (1 / ratio, (1 / hi, 1 / lo))
    assert c.interval != checks.check_speedup(fast, slow, factor=2).interval
    f = checks.check_speedup(_timed("fast", [50.0] * 3), _timed("slow", [100.0] * 3), factor=3)
    assert (f.status, f.failed) == ("fails", True)
    assert f.message == ("t.py::test[fast] is not 3x faster than t.py::test[slow] at block-median p99: "
                         "speedup 2.00x [95% CI 2.00 .. 2.00]")
