"""The stored rule's boundaries (``verdict.compare`` and what decides around it), pinned by exact
values on both sides of each: an interval 1e-9 (log scale) inside and outside, and the exact
edge itself. Built so that a loosened or tightened rule fails a test (docs/mutation.md)."""
from __future__ import annotations

from dataclasses import replace
from statistics import NormalDist

import numpy as np
import pytest

from pytest_hostperf.stats import percentiles, verdict

EPS = 1e-9
Z = NormalDist().inv_cdf(0.975)
#: Half-width (log scale) of compare's interval for one constant round against three equal
#: constant runs: no spread within them, so σ is the floor and the error σ·sqrt(1 + π/2/3).
HALF = Z * verdict.RUN_SPREAD_FLOOR * float(np.sqrt(1 + np.pi / 2 / 3))
BASE_NS = 100_000.0
RUNS = [np.full(10, BASE_NS) for _ in range(3)]


def _at(log_ratio: float, tolerance_pct: float) -> verdict.Verdict:
    """compare() of one constant round ``exp(log_ratio)`` times the constant baseline."""
    return verdict.compare(np.full(10, BASE_NS * np.exp(log_ratio)), RUNS, tolerance_pct=tolerance_pct)


def test_the_degenerate_interval_is_the_floor_spread_exactly() -> None:
    v = _at(0.0, 10)
    assert v.ratio == pytest.approx(1.0, abs=1e-15)
    assert np.log(v.interval[1]) == pytest.approx(HALF, rel=1e-12)
    assert np.log(v.interval[0]) == pytest.approx(-HALF, rel=1e-12)
    assert (v.baseline_ns, v.current_ns) == (pytest.approx(BASE_NS), pytest.approx(BASE_NS))
    assert (v.baseline_runs, v.rounds) == (3, 1)


@pytest.mark.parametrize("tol", [0.0, 5.0])
def test_regressed_only_when_the_whole_interval_is_above_1(tol: float) -> None:
    # the point estimate is well above 1 + tolerance (+7.8%): the interval's low end decides
    assert _at(HALF + EPS, tol).status == "regressed"
    assert _at(HALF - EPS, tol).status == "inconclusive"


def test_regressed_needs_the_estimate_above_1_plus_tolerance() -> None:
    d = HALF + 0.05  # lo = exp(0.05) > 1: the estimate against the tolerance decides
    tol = 100 * np.expm1(d)
    assert _at(d, tol - 1e-6).status == "regressed"
    assert _at(d, tol + 1e-6).status == "inconclusive"


@pytest.mark.parametrize("tol", [0.0, 5.0])
def test_improved_only_when_the_whole_interval_is_below_1(tol: float) -> None:
    assert _at(-HALF - EPS, tol).status == "improved"
    assert _at(-HALF + EPS, tol).status == "inconclusive"


def test_improved_needs_the_estimate_below_1_over_1_plus_tolerance() -> None:
    d = HALF + 0.05
    tol = 100 * np.expm1(d)  # 1 / (1 + tol) == exp(-d)
    assert _at(-d, tol - 1e-6).status == "improved"
    assert _at(-d, tol + 1e-6).status == "inconclusive"


def test_unchanged_only_when_the_interval_lies_within_the_tolerance() -> None:
    for d in (0.01, -0.01):  # the upper end, then (mirrored) the lower end, on the edge
        tol = 100 * np.expm1(abs(d) + HALF)
        assert _at(d, tol + 1e-6).status == "unchanged"
        assert _at(d, tol - 1e-6).status == "inconclusive"


def _fake_interval(monkeypatch: pytest.MonkeyPatch, ratio: float, lo: float, hi: float) -> None:
    monkeypatch.setattr(verdict, "baseline_ratio_interval", lambda *a, **k: (ratio, (lo, hi), 0.03))


UP = 1 + 10 / 100  # the edges at tolerance 10%, computed as compare computes them
DOWN = 1 / UP


@pytest.mark.parametrize(("ratio", "lo", "hi", "status"), [
    (1.3, 1.0, 1.6, "inconclusive"),  # lo exactly 1: not above it
    (1.3, 1.0 + 1e-12, 1.6, "regressed"),
    (UP, 1.05, 1.15, "inconclusive"),  # the estimate exactly 1 + tolerance: not above it
    (0.7, 0.4, 1.0, "inconclusive"),  # hi exactly 1
    (0.7, 0.4, 1.0 - 1e-12, "improved"),
    (DOWN, 0.85, 0.95, "inconclusive"),  # the estimate exactly 1 / (1 + tolerance)
    (1.0, DOWN, UP, "unchanged"),  # both ends exactly on the tolerance: within it
    (1.0, DOWN, UP * (1 + 1e-12), "inconclusive"),
    (1.0, DOWN * (1 - 1e-12), UP, "inconclusive"),
])
def test_the_exact_edges(monkeypatch: pytest.MonkeyPatch, ratio: float, lo: float, hi: float, status: str) -> None:
    _fake_interval(monkeypatch, ratio, lo, hi)
    v = verdict.compare(np.full(5, 100.0), RUNS, tolerance_pct=10)
    assert v.status == status
    assert (v.ratio, v.interval) == (ratio, (lo, hi))
    assert (v.baseline_ns, v.current_ns) == (pytest.approx(BASE_NS), pytest.approx(BASE_NS * ratio))


def test_reasons_name_the_statistic_and_the_tolerance(monkeypatch: pytest.MonkeyPatch) -> None:
    def reason(ratio: float, lo: float, hi: float, stat: str = "p99") -> str:
        _fake_interval(monkeypatch, ratio, lo, hi)
        return verdict.compare(np.full(5, 100.0), RUNS, tolerance_pct=10, stat=stat).reason

    assert reason(1.5, 1.2, 1.8) == "block-median p99 confidently above baseline by more than the 10% tolerance"
    assert reason(0.5, 0.4, 0.6, "p50") == "block-median p50 confidently below baseline by more than the 10% tolerance"
    assert reason(1.0, 0.95, 1.05) == "block-median p99 interval within ±10% of baseline"
    assert reason(1.1, 0.8, 1.4) == ("block-median p99 interval [-20%, +40%] is too wide or too close to the 10% "
                                     "tolerance to decide (run-to-run spread 3%)")


def test_no_baseline_is_new_with_the_current_median() -> None:
    v = verdict.compare([np.array([1.0, 3.0]), np.array([5.0])], [], tolerance_pct=7, stat="p50")
    assert v == verdict.Verdict(status="new", stat="p50", ratio=None, interval=None, baseline_ns=None, current_ns=3.0,
                                tolerance_pct=7, baseline_runs=0, reason="no baseline for this measurement", rounds=2)
    empty = verdict.compare([], [], tolerance_pct=7)
    assert np.isnan(empty.current_ns) and empty.rounds == 0


def test_extra_spread_widens_in_quadrature() -> None:
    v = verdict.compare(np.full(10, BASE_NS * 1.2), RUNS, tolerance_pct=5, extra_spread=0.4)
    sigma = float(np.hypot(verdict.RUN_SPREAD_FLOOR, 0.4))
    assert np.log(v.interval[1] / v.ratio) == pytest.approx(HALF * sigma / verdict.RUN_SPREAD_FLOOR, rel=1e-12)
    assert v.status == "inconclusive" and _at(np.log(1.2), 5).status == "regressed"


# ----------------------------------------------------------------------------- the interval itself


NOISY = [np.random.default_rng(s).lognormal(np.log(1e5), 0.5, 9) for s in (1, 1, 1)]  # 3 equal runs


def test_within_run_error_is_bootstrapped_with_the_given_generator() -> None:
    rounds = [NOISY[0] * 1.3]
    default = verdict.baseline_ratio_interval(rounds, NOISY)
    assert default == verdict.baseline_ratio_interval(rounds, NOISY, resamples=500, rng=np.random.default_rng(0))
    seeded = verdict.baseline_ratio_interval(rounds, NOISY, rng=np.random.default_rng(5))
    assert seeded != default and seeded[2] > verdict.RUN_SPREAD_FLOOR  # σ is the within-run error here
    v = verdict.compare(rounds, NOISY, tolerance_pct=10, rng=np.random.default_rng(5))
    assert (v.ratio, v.interval) == (seeded[0], seeded[1])


def test_the_current_rounds_count_in_the_spread() -> None:
    a, b = 0.1, 0.5  # baseline run logs 0, a, a (deviations a, 0, 0); two rounds ±b
    runs = [np.full(5, 100.0 * np.exp(x)) for x in (0.0, a, a)]
    rounds = [np.full(5, 100.0 * np.exp(x)) for x in (b, -b)]
    assert verdict.run_spread(runs) == verdict.RUN_SPREAD_FLOOR
    assert verdict.run_spread(runs, rounds) == pytest.approx(1.4826 * a)
    assert verdict.baseline_ratio_interval(rounds, runs)[2] == pytest.approx(1.4826 * a)


def test_run_spread_edges() -> None:
    three = [np.full(4, 100.0 * np.exp(x)) for x in (-0.2, 0.0, 0.3)]
    assert verdict.run_spread(three) == pytest.approx(1.4826 * 0.2)  # three runs: measured
    two = [np.full(4, 100.0), np.full(4, 100.0 * np.e)]
    assert verdict.run_spread(two) == verdict.FEW_RUNS_SPREAD  # two deviations: not measured
    assert verdict.run_spread(two, floor=0.5) == 0.5
    assert verdict.run_spread(two, two) == pytest.approx(1.4826 * 0.5)  # four deviations, still few runs


def test_interval_needs_both_sides() -> None:
    message = "baseline_ratio_interval needs current blocks and at least one baseline run"
    with pytest.raises(ValueError, match=f"^{message}$"):
        verdict.baseline_ratio_interval([], RUNS)
    with pytest.raises(ValueError, match=f"^{message}$"):
        verdict.baseline_ratio_interval([np.ones(3)], [np.array([])])


def test_sub_nanosecond_blocks_keep_their_ratio() -> None:
    runs = [np.full(4, 0.25) for _ in range(3)]
    assert verdict.compare(np.full(4, 0.5), runs, tolerance_pct=10).ratio == pytest.approx(2.0, rel=1e-12)
    assert verdict.ratio_interval(np.full(4, 0.5), runs) == (pytest.approx(2.0), (2.0, 2.0))


def test_median_bootstrap_se_exact() -> None:
    values = np.array([0.2, 0.5, 0.9, 0.3, 0.7])
    boot = percentiles.bootstrap_medians(values, resamples=300, rng=np.random.default_rng(4))
    want = float(np.std(np.log(boot), ddof=1))
    assert verdict.median_bootstrap_se(values, np.random.default_rng(4), 300) == pytest.approx(want, rel=1e-12)
    assert verdict.median_bootstrap_se(np.array([0.5]), np.random.default_rng(4), 300) == 0.0
    assert verdict.median_bootstrap_se(values[:2], np.random.default_rng(4), 300) > 0


def test_ratio_interval_is_the_percentile_bootstrap_of_the_medians() -> None:
    rng = np.random.default_rng(9)
    cur, base = rng.lognormal(0, 0.3, 15), [rng.lognormal(0.2, 0.3, 10), rng.lognormal(0.2, 0.3, 8)]
    ratio, (lo, hi) = verdict.ratio_interval(cur, base, confidence=0.9, resamples=400, rng=np.random.default_rng(3))
    g = np.random.default_rng(3)
    cb = percentiles.bootstrap_medians(cur, resamples=400, rng=g)
    bb = percentiles.bootstrap_medians(np.concatenate(base), resamples=400, rng=g)
    assert (lo, hi) == tuple(pytest.approx(x, rel=1e-12) for x in np.quantile(cb / bb, [0.05, 0.95]))
    assert ratio == pytest.approx(np.median(cur) / np.median(np.concatenate(base)), rel=1e-12)
    default = verdict.ratio_interval(cur, base)
    assert default == verdict.ratio_interval(cur, base, resamples=percentiles.BOOTSTRAP_RESAMPLES,
                                             rng=np.random.default_rng(0))
    message = "^ratio_interval needs current blocks and at least one baseline run$"
    with pytest.raises(ValueError, match=message):
        verdict.ratio_interval(np.array([]), base)
    with pytest.raises(ValueError, match=message):
        verdict.ratio_interval(cur, [np.array([])])


# ----------------------------------------------------------------------------- could_decide and its users

M10 = float(np.log1p(0.10))


def _around(log_ratio: float, half: float) -> tuple[float, tuple[float, float]]:
    return float(np.exp(log_ratio)), (float(np.exp(log_ratio - half)), float(np.exp(log_ratio + half)))


def test_could_fit_within_the_tolerance_on_both_sides_of_the_edge() -> None:
    # centred on 1, the shrunk half-width against the tolerance
    for keep in (1.0, 0.5):
        r, iv = _around(0.0, M10 / keep - EPS)
        assert verdict.could_decide(r, iv, keep, 10, clear_at_tolerance=True)
        r, iv = _around(0.0, M10 / keep + EPS)
        assert not verdict.could_decide(r, iv, keep, 10, clear_at_tolerance=True)


def test_could_fit_after_moving_the_estimate_by_one_standard_error() -> None:
    half, keep = 0.1, 0.8  # one standard error: 0.1 / 1.96; shrunk half-width 0.08
    d = M10 - keep * half + half / 1.96
    for sign in (1, -1):
        r, iv = _around(sign * (d - EPS), half)
        assert verdict.could_decide(r, iv, keep, 10, clear_at_tolerance=True)
        r, iv = _around(sign * (d + EPS), half)
        # beyond: nor could it clear (the shrunk interval still reaches inside the tolerance)
        assert not verdict.could_decide(r, iv, keep, 10, clear_at_tolerance=True)


def test_could_clear_the_tolerance_or_1() -> None:
    half, keep = 0.3, 0.9  # too wide to fit within ±10% at any shift
    se = half / 1.96
    for sign in (1, -1):
        # paired: the estimate one SE further, less the shrunk half-width, must clear the tolerance
        d = M10 - se + keep * half
        r, iv = _around(sign * (d + EPS), half)
        assert verdict.could_decide(r, iv, keep, 10, clear_at_tolerance=True)
        r, iv = _around(sign * (d - EPS), half)
        assert not verdict.could_decide(r, iv, keep, 10, clear_at_tolerance=True)
        # stored: it must clear 1, and the estimate one SE further must clear the tolerance
        d = keep * half - se
        r, iv = _around(sign * (d + EPS), half)
        assert verdict.could_decide(r, iv, keep, 10, clear_at_tolerance=False)
        r, iv = _around(sign * (d - EPS), half)
        assert not verdict.could_decide(r, iv, keep, 10, clear_at_tolerance=False)


def _inconclusive(ratio: float, lo: float, hi: float, rounds: int = 1, runs: int = 3, status: str = "inconclusive",
                  stat: str = "p99") -> verdict.Verdict:
    return verdict.Verdict(status=status, stat=stat, ratio=ratio, interval=(lo, hi), baseline_ns=100.0,
                           current_ns=100.0 * ratio, tolerance_pct=10.0, baseline_runs=runs, reason="", rounds=rounds)


def test_undecidable_keeps_the_baselines_share_of_the_error() -> None:
    # centred on 1: fits within ±10% iff the kept half-width plus one SE fits; keep = sqrt(f(K) / (f(m) + f(K)))
    keep = float(np.sqrt((np.pi / 6) / (1 + np.pi / 6)))
    half = M10 / keep  # centred on 1, the shift does not move the fit
    assert not verdict.undecidable(_inconclusive(*_flat(half - EPS)), max_rounds=3)
    assert verdict.undecidable(_inconclusive(*_flat(half + EPS)), max_rounds=3)


def _flat(half: float) -> tuple[float, float, float]:
    r, (lo, hi) = _around(0.0, half)
    return r, lo, hi


WIDE = _flat(0.5)  # no number of rounds could decide it


def test_undecidable_only_for_a_comparable_inconclusive_verdict() -> None:
    assert verdict.undecidable(_inconclusive(*WIDE), max_rounds=2)
    assert verdict.undecidable(_inconclusive(*WIDE, runs=1), max_rounds=2)
    assert not verdict.undecidable(_inconclusive(*WIDE, runs=0), max_rounds=2)
    assert not verdict.undecidable(_inconclusive(*WIDE, status="regressed"), max_rounds=2)
    assert not verdict.undecidable(replace(_inconclusive(*WIDE), ratio=None), max_rounds=2)
    assert not verdict.undecidable(replace(_inconclusive(*WIDE), interval=None), max_rounds=2)
    assert not verdict.undecidable(_inconclusive(1.0, 0.0, 2.0), max_rounds=2)
    assert not verdict.undecidable(_inconclusive(1.0, 1.0, 1.0), max_rounds=2)
    assert not verdict.undecidable(_inconclusive(*WIDE, rounds=2), max_rounds=2)  # no round left to take
    assert verdict.undecidable(_inconclusive(*WIDE, rounds=2), max_rounds=3)


def _could_fail_at(d: float) -> verdict.Verdict:
    """Inconclusive, one SE (0.02) wide, estimate ``d`` below the tolerance (log scale)."""
    se = 0.02
    r, (lo, hi) = _around(M10 - se + d, 1.96 * se)
    return _inconclusive(r, lo, hi)


def test_cannot_fail_on_both_sides_of_the_tolerance() -> None:
    assert verdict.cannot_fail(_could_fail_at(-EPS))
    assert not verdict.cannot_fail(_could_fail_at(EPS))


def test_cannot_fail_looks_at_every_gated_statistic() -> None:
    safe, unsafe = _could_fail_at(-0.01), _could_fail_at(0.01)
    for other in ("improved", "unchanged"):
        done = replace(unsafe, status=other, stat="p50")
        assert verdict.cannot_fail(replace(safe, others=(done,)))
        assert not verdict.cannot_fail(replace(safe, others=(done, replace(unsafe, stat="p999"))))
    assert not verdict.cannot_fail(replace(safe, others=(replace(unsafe, status="regressed"),)))
    for broken in (dict(ratio=None), dict(interval=None), dict(interval=(1.0, 1.0)), dict(ratio=0.0),
                   dict(interval=(0.0, 1.0))):
        assert not verdict.cannot_fail(replace(safe, others=(replace(safe, stat="p50", **broken),)))
    assert not verdict.cannot_fail(replace(safe, status="unchanged"))


# ----------------------------------------------------------------------------- records and messages


def test_from_pairs_and_not_comparable_fill_every_field() -> None:
    v = verdict.from_pairs(status="regressed", ratio=1.5, interval=(1.2, 1.8), head=[3.0, 1.0, 2.0],
                           base=[2.0, 4.0, 1.0], tolerance_pct=5.0, reason="paired with abc")
    assert v == verdict.Verdict(status="regressed", stat="p99", ratio=1.5, interval=(1.2, 1.8), baseline_ns=2.0,
                                current_ns=2.0, tolerance_pct=5.0, baseline_runs=0, reason="paired with abc",
                                pairs=((3.0, 2.0), (1.0, 4.0), (2.0, 1.0)))
    n = verdict.not_comparable(current_ns=12.0, tolerance_pct=3.0, baseline_runs=4, reason="other mode")
    assert n == verdict.Verdict(status="inconclusive", stat="p99", ratio=None, interval=None, baseline_ns=None,
                                current_ns=12.0, tolerance_pct=3.0, baseline_runs=4, reason="other mode")


def test_delta_text() -> None:
    v = _inconclusive(1.25, 0.9, 1.6)
    assert v.delta_text() == "+25% [-10%, +60%]"
    assert replace(v, ratio=None).delta_text() == "-"
    assert replace(v, interval=None).delta_text() == "-"


def test_regression_messages_exact() -> None:
    v = verdict.Verdict(status="regressed", stat="p99", ratio=1.5, interval=(1.25, 1.75), baseline_ns=1000.0,
                        current_ns=1500.0, tolerance_pct=5.0, baseline_runs=3, reason="r", rounds=2,
                        confirmation="confirmed paired")
    assert verdict.regression_message("t::x", v) == (
        "t::x: block-median p99 regressed: baseline 1.00 us -> current 1.50 us, ratio 1.50 [95% CI 1.25 .. 1.75] "
        "(tolerance 5%, 3 baseline run(s)); held over 2 measurement round(s); confirmed paired")
    paired = replace(v, reason="paired with HEAD~1: 20 pairs")
    assert verdict.regression_message("t::x", paired) == (
        "t::x: block-median p99 regressed: base 1.00 us -> head 1.50 us, ratio 1.50 [95% CI 1.25 .. 1.75] "
        "(tolerance 5%; paired with HEAD~1: 20 pairs)")
    no_interval = replace(v, interval=None, confirmation="")
    assert "[95% CI nan .. nan]" in verdict.regression_message("t::x", no_interval)
    p999 = replace(v, stat="p999", confirmation="")
    also = verdict.regression_message("t::x", replace(v, confirmation="", others=(
        p999, replace(v, stat="p50", status="unchanged"), replace(p999, stat="max", interval=None,
                                                                  confirmation="held"))))
    assert also.endswith(
        "held over 2 measurement round(s); also block-median p99.9 regressed: baseline 1.00 us -> current 1.50 us, "
        "ratio 1.50 [95% CI 1.25 .. 1.75]; also block-median max regressed: baseline 1.00 us -> current 1.50 us, "
        "ratio 1.50 [95% CI nan .. nan] (held)")


def test_worst_orders_unknown_statuses_first_and_says_when_empty() -> None:
    reg = _inconclusive(1.5, 1.2, 1.8, status="regressed", stat="p999")
    odd = _inconclusive(1.5, 1.2, 1.8, status="over-budget")
    assert verdict.worst([reg, odd]).status == "over-budget"
    with pytest.raises(ValueError, match="^worst\\(\\) needs at least one verdict$"):
        verdict.worst([])
    both = verdict.worst([reg, odd])
    assert verdict.gated_parts(both)[0].others == ()


def _tolerance_where(log_edge: float) -> float:
    """A tolerance (%) whose log margin, as the rules compute it, is exactly ``log_edge``."""
    tol = 100 * float(np.expm1(log_edge))
    for _ in range(200):
        got = float(np.log1p(tol / 100))
        if got == log_edge:
            return tol
        tol = float(np.nextafter(tol, np.inf if got < log_edge else -np.inf))
    raise AssertionError(f"no tolerance with log margin exactly {log_edge!r}")


def test_cannot_fail_exactly_on_the_tolerance() -> None:
    v = _could_fail_at(0.0)
    lo, hi = v.interval
    edge = float(np.log(v.ratio) + (np.log(hi) - np.log(lo)) / 2 / 1.96)
    tol = _tolerance_where(edge)
    assert verdict.cannot_fail(replace(v, tolerance_pct=tol))  # one SE up lands exactly on it: not above it
    assert not verdict.cannot_fail(replace(v, tolerance_pct=float(np.nextafter(tol, 0))))


def test_could_decide_exactly_on_its_edges() -> None:
    r, iv = _around(0.2, 0.3)
    half = (np.log(iv[1]) - np.log(iv[0])) / 2
    delta, shift = abs(float(np.log(r))), half / 1.96
    # fits: the estimate one SE nearer plus the kept half-width exactly on the tolerance
    tol = _tolerance_where(float(max(delta - shift, 0.0) + half * 0.8))
    assert verdict.could_decide(r, iv, 0.8, tol, clear_at_tolerance=True)
    assert not verdict.could_decide(r, iv, 0.8, float(np.nextafter(tol, 0)), clear_at_tolerance=True)
    # clears (paired): the estimate one SE further less the kept half-width exactly on it: not beyond it
    tol = _tolerance_where(float(delta + shift - half * 0.9))
    assert not verdict.could_decide(r, iv, 0.9, tol, clear_at_tolerance=True)
    assert verdict.could_decide(r, iv, 0.9, float(np.nextafter(tol, 0)), clear_at_tolerance=True)


def test_intervals_are_computed_in_double_precision_whatever_they_are_given() -> None:
    # seeds whose float32 medians (of the round, of some runs, of all runs' blocks) differ from float64 ones
    cur = np.random.default_rng(14).lognormal(np.log(1e5), 0.2, 10).astype(np.float32)
    rng = np.random.default_rng(3)
    rng.lognormal(np.log(1e5), 0.2, 10)
    runs = [rng.lognormal(np.log(1e5), 0.2, 10).astype(np.float32) for _ in range(4)]
    wide = [r.astype(np.float64) for r in runs]
    assert verdict.baseline_ratio_interval([cur], runs) == verdict.baseline_ratio_interval([cur], wide)
    assert verdict.baseline_ratio_interval([cur], wide) == verdict.baseline_ratio_interval([cur.astype(np.float64)],
                                                                                            wide)
    rng = np.random.default_rng(8)
    rng.lognormal(np.log(1e5), 0.2, 10)
    runs = [rng.lognormal(np.log(1e5), 0.2, 10).astype(np.float32) for _ in range(4)]
    wide = [r.astype(np.float64) for r in runs]
    assert verdict.ratio_interval(cur.astype(np.float64), runs) == verdict.ratio_interval(cur.astype(np.float64), wide)
