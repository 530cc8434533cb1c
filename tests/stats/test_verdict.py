"""Decision rules on synthetic block data: exact outcomes and hypothesis properties."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pytest_hostperf.measure import sampling
from pytest_hostperf.stats import checks, verdict
from pytest_hostperf.stats.result import summarize

RNG = np.random.default_rng(42)
BASE = [RNG.normal(100_000, 1_000, 20) for _ in range(5)]  # 5 runs of 20 block p99s, ~1% spread


def test_clearly_slower_is_regressed_with_message() -> None:
    v = verdict.compare(RNG.normal(200_000, 1_000, 20), BASE, tolerance_pct=10)
    assert v.status == "regressed" and v.failed
    assert 1.8 < v.interval[0] <= v.ratio <= v.interval[1] < 2.2
    msg = verdict.regression_message("t.py::test[x]", v)
    assert msg.startswith("t.py::test[x]: block-median p99 regressed: baseline 100.0 us -> current 200 us, "
                          "ratio 2.00 [95% CI 1.8")
    assert msg.endswith("(tolerance 10%, 5 baseline run(s)); held over 1 measurement round(s)")
    assert v.delta_text().startswith("+100% [+8")


def test_clearly_same_is_unchanged() -> None:
    v = verdict.compare(RNG.normal(100_000, 1_000, 20), BASE, tolerance_pct=10)
    assert v.status == "unchanged" and not v.failed


def test_clearly_faster_is_improved() -> None:
    assert verdict.compare(RNG.normal(50_000, 500, 20), BASE, tolerance_pct=10).status == "improved"


def test_too_noisy_to_tell_is_inconclusive() -> None:
    noisy = RNG.lognormal(np.log(112_000), 0.5, 20)
    assert verdict.compare(noisy, BASE, tolerance_pct=10).status == "inconclusive"


def test_significant_but_below_tolerance_is_not_regressed() -> None:
    v = verdict.compare(RNG.normal(105_000, 500, 20), BASE, tolerance_pct=10)
    assert v.status in ("unchanged", "inconclusive") and v.ratio > 1.04


def test_no_baseline_is_new() -> None:
    v = verdict.compare(np.array([5.0, 6.0]), [], tolerance_pct=10)
    assert (v.status, v.ratio, v.baseline_runs, v.failed) == ("new", None, 0, False)


def test_run_to_run_spread_widens_the_interval() -> None:
    spread_runs = [r * f for r, f in zip(BASE, (0.8, 0.9, 1.0, 1.1, 1.2))]
    assert verdict.run_spread(BASE) == pytest.approx(verdict.RUN_SPREAD_FLOOR)
    assert verdict.run_spread(spread_runs) > 0.1
    cur = RNG.normal(125_000, 1_000, 20)
    assert verdict.compare(cur, BASE, tolerance_pct=10).status == "regressed"
    # +25% is within what those noisier runs do among themselves: no longer confident
    assert verdict.compare(cur, spread_runs, tolerance_pct=10).status == "inconclusive"


def test_one_disturbed_run_moves_neither_the_spread_nor_the_verdict() -> None:
    disturbed = BASE[:4] + [BASE[4] * 3]  # a neighbour tripled p99 during one saved run
    assert verdict.run_spread(disturbed) == pytest.approx(verdict.RUN_SPREAD_FLOOR)
    assert verdict.compare(RNG.normal(125_000, 1_000, 20), disturbed, tolerance_pct=10).status == "regressed"
    # ... nor does one disturbed round of three in the current run
    rounds = [RNG.normal(100_000, 1_000, 20), RNG.normal(300_000, 1_000, 20), RNG.normal(100_000, 1_000, 20)]
    v = verdict.compare(rounds, BASE, tolerance_pct=10)
    assert v.status != "regressed" and v.rounds == 3 and v.ratio == pytest.approx(1.0, abs=0.03)
    # while a regression in every round is confirmed, with a narrower interval than one round gives
    slow = [RNG.normal(125_000, 1_000, 20) for _ in range(3)]
    one, three = verdict.compare(slow[:1], BASE, tolerance_pct=10), verdict.compare(slow, BASE, tolerance_pct=10)
    assert one.status == three.status == "regressed"
    assert three.interval[1] / three.interval[0] < one.interval[1] / one.interval[0]


def test_few_runs_assume_the_few_runs_spread() -> None:
    assert verdict.run_spread(BASE[:1]) == verdict.run_spread(BASE[:2]) == verdict.FEW_RUNS_SPREAD
    # rounds of the current run, taken moments apart, do not stand in for baseline runs
    assert verdict.run_spread(BASE[:1], BASE[1:4]) == verdict.FEW_RUNS_SPREAD
    assert verdict.run_spread(BASE[:3], BASE[3:4]) == pytest.approx(verdict.RUN_SPREAD_FLOOR)


blocks = hnp.arrays(np.float64, st.integers(3, 30), elements=st.floats(1_000, 1e7))


@given(blocks, st.lists(blocks, min_size=1, max_size=5), st.floats(1.0, 5.0), st.floats(0, 50))
@settings(max_examples=60, deadline=None)
def test_scaling_current_up_never_turns_regressed_into_improved(cur: np.ndarray, base: list, f: float,
                                                                tol: float) -> None:
    rank = {"improved": 0, "unchanged": 1, "inconclusive": 1, "regressed": 2}
    before = verdict.compare(cur, base, tolerance_pct=tol).status
    after = verdict.compare(cur * f, base, tolerance_pct=tol).status
    assert not (before == "regressed" and after == "improved")
    assert rank[after] >= rank[before] or before in ("unchanged", "inconclusive")


@given(st.lists(blocks, min_size=1, max_size=5), st.integers(0, 4), st.floats(0, 50))
@settings(max_examples=60, deadline=None)
def test_identical_runs_are_never_regressed(base: list, pick: int, tol: float) -> None:
    cur = base[pick % len(base)]
    assert verdict.compare(base, base, tolerance_pct=tol).status != "regressed"  # same runs, as rounds
    assert verdict.compare(cur, [cur], tolerance_pct=tol).status != "regressed"
    assert verdict.compare([cur, cur], [cur] * 3, tolerance_pct=tol).status != "regressed"


def _result(values: np.ndarray, blocks: int = 10, name: str = "x"):
    n = len(values) // blocks
    raw = sampling.Samples(values=values[: n * blocks].astype(float), block_sizes=(n,) * blocks, batch=1,
                          warmup_calls=0, calls=n * blocks, seconds=0.1, truncated=False)
    return summarize(raw, nodeid="t.py::test", name=name)


def test_budget_over_within_inconclusive() -> None:
    r = _result(RNG.normal(100_000, 2_000, 10_000))
    assert checks.check_budget(r, "p99", 50_000).status == "over-budget"
    assert checks.check_budget(r, "p99", 1_000_000).status == "within"
    lo, hi = r.interval("p99")
    assert checks.check_budget(r, "p99", int((r.p99 + lo) / 2)).status in ("inconclusive", "over-budget")
    msg = checks.check_budget(r, "max", 50_000).message
    assert "max" in msg and "is over its budget of 50.0 us" in msg


def test_speedup_holds_fails_and_inconclusive() -> None:
    slow = _result(RNG.normal(100_000, 1_000, 10_000), name="slow")
    fast = _result(RNG.normal(20_000, 200, 10_000), name="fast")
    assert checks.check_speedup(fast, slow, factor=4).status == "holds"
    failing = checks.check_speedup(fast, slow, factor=10)
    assert failing.status == "fails" and failing.failed
    assert failing.message.startswith("t.py::test[fast] is not 10x faster than t.py::test[slow] "
                                      "at block-median p99: speedup 5.0")
    noisy_fast = _result(RNG.lognormal(np.log(20_000), 0.8, 10_000), name="nf")
    noisy_slow = _result(RNG.lognormal(np.log(100_000), 0.8, 10_000), name="ns")
    assert checks.check_speedup(noisy_fast, noisy_slow, factor=5).status == "inconclusive"


def test_undecidable_only_when_more_rounds_could_not_decide() -> None:
    def v(ratio: float, lo: float, hi: float, rounds: int = 1, runs: int = 3) -> verdict.Verdict:
        return verdict.Verdict(status="inconclusive", stat="p99", ratio=ratio, interval=(lo, hi), baseline_ns=100.0,
                               current_ns=100.0 * ratio, tolerance_pct=10.0, baseline_runs=runs, reason="",
                               rounds=rounds)

    # centred near 1 with a wide interval (3 baseline runs): no number of rounds, nor a shift of the
    # estimate by one standard error, could put it inside the ±10% band or clear it
    assert verdict.undecidable(v(1.02, 0.70, 1.49), max_rounds=3)
    # centred on +10%: a shift could clear the tolerance, so it is re-measured
    assert not verdict.undecidable(v(1.10, 0.80, 1.51), max_rounds=3)
    # close to deciding: narrower by three rounds, it could fit within ±10%
    assert not verdict.undecidable(v(1.00, 0.91, 1.10), max_rounds=3)
    # well above the tolerance, interval reaching 1: more rounds could clear it
    assert not verdict.undecidable(v(1.40, 0.98, 2.00), max_rounds=3)
    # only inconclusive verdicts are ever undecidable
    done = verdict.Verdict(status="regressed", stat="p99", ratio=2.0, interval=(1.8, 2.2), baseline_ns=100.0,
                           current_ns=200.0, tolerance_pct=10.0, baseline_runs=3, reason="", rounds=1)
    assert not verdict.undecidable(done, max_rounds=3)


def test_cannot_fail_only_when_even_a_higher_estimate_stays_within_the_tolerance() -> None:
    def v(ratio: float, lo: float, hi: float, status: str = "inconclusive") -> verdict.Verdict:
        return verdict.Verdict(status=status, stat="p99", ratio=ratio, interval=(lo, hi), baseline_ns=100.0,
                               current_ns=100.0 * ratio, tolerance_pct=10.0, baseline_runs=3, reason="", rounds=1)

    # faster than the baseline, interval reaching below -10%: improved or unchanged, never a failure
    assert verdict.cannot_fail(v(0.94, 0.876, 0.9998))
    # centred near 1 but wide: one standard error up reaches past +10%, so it might still regress
    assert not verdict.cannot_fail(v(1.05, 0.757, 1.468))
    # just inside: ratio 1.08 with a one-SE shift of ~3% crosses +10%
    assert not verdict.cannot_fail(v(1.08, 1.02, 1.14))
    # only inconclusive verdicts, and only when every gated statistic is unable to fail
    assert not verdict.cannot_fail(v(0.9, 0.85, 0.95, status="improved"))
    p999 = verdict.Verdict(status="inconclusive", stat="p999", ratio=1.3, interval=(0.9, 1.9), baseline_ns=100.0,
                           current_ns=130.0, tolerance_pct=10.0, baseline_runs=3, reason="", rounds=1)
    both = replace(v(0.94, 0.876, 0.9998), others=(p999,))
    assert not verdict.cannot_fail(both)


def test_settle_stops_an_inconclusive_verdict_that_cannot_fail_unless_strict() -> None:
    from pytest_hostperf.gate import stored
    from pytest_hostperf.stats.result import Result
    from pytest_hostperf.store.records import ResultRecord, StoredMeasurement

    rng = np.random.default_rng(1)

    def samples(scale: float) -> sampling.Samples:
        values = rng.lognormal(np.log(1000 * scale), 0.05, 4000)
        return sampling.Samples(values=values, block_sizes=(200,) * 20, batch=1, warmup_calls=0, calls=4000,
                               seconds=0.1, truncated=False)

    base = [StoredMeasurement.of(ResultRecord.of(summarize(samples(s), nodeid="t", name="f"), histogram={}))
            for s in (1.0, 1.04, 0.97)]
    asked: list[int] = []

    def again() -> sampling.Samples:
        asked.append(1)
        return samples(0.93)

    def summ(s: sampling.Samples) -> Result:
        return summarize(s, nodeid="t", name="f")

    first = samples(0.93)
    loose = stored.settle(first, again, summ, base, tolerance=10, noisy=False, max_rounds=2)
    assert loose.verdict.status == "inconclusive" and verdict.cannot_fail(loose.verdict) and asked == []
    assert loose.verdict.reason.endswith(stored.CANNOT_FAIL_NOTE)
    strict = stored.settle(first, again, summ, base, tolerance=10, noisy=False, max_rounds=2, strict=True)
    assert strict.extra_rounds == len(asked) == 2, strict.verdict
