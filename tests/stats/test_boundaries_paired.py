"""The paired rule's boundaries (``paired.verdict``, ``futile``, ``sequential``),
pinned by exact values on both sides of each. Pairs that are all equal make the bootstrap
interval degenerate and exact: every resample's median is that value (docs/mutation.md)."""
from __future__ import annotations

import numpy as np
import pytest

from pytest_hostperf.stats import paired, percentiles

EPS = 1e-9


def _margin(tol: float) -> float:
    return float(np.log1p(tol / 100))


def _flat(log_ratio: float, tol: float, n: int = 12) -> paired.PairedVerdict:
    return paired.verdict(np.full(n, log_ratio), tolerance_pct=tol)


@pytest.mark.parametrize("tol", [5.0, 10.0, 25.0])
def test_regressed_only_when_the_whole_interval_clears_the_tolerance(tol: float) -> None:
    m = _margin(tol)
    assert _flat(m + EPS, tol).status == "regressed"
    assert _flat(m - EPS, tol).status == "unchanged"
    assert _flat(m, tol).status == "unchanged"  # exactly on the tolerance: within it
    assert _flat(0.99 * m, tol).status == "unchanged"


@pytest.mark.parametrize("tol", [5.0, 10.0, 25.0])
def test_improved_only_when_the_whole_interval_clears_minus_the_tolerance(tol: float) -> None:
    m = _margin(tol)
    assert _flat(-m - EPS, tol).status == "improved"
    assert _flat(-m + EPS, tol).status == "unchanged"
    assert _flat(-m, tol).status == "unchanged"
    assert _flat(-0.99 * m, tol).status == "unchanged"


def test_unchanged_takes_both_ends_of_the_interval() -> None:
    # two values, each far from the other: the bootstrap reaches both (1/4 of resamples each)
    m = _margin(10)
    v = paired.verdict(np.array([-m, m]), tolerance_pct=10)
    assert v.interval == (pytest.approx(1 / 1.1, rel=1e-12), pytest.approx(1.1, rel=1e-12))
    assert v.status == "unchanged"  # both ends exactly on the tolerance
    assert paired.verdict(np.array([-m - EPS, m]), tolerance_pct=10).status == "inconclusive"
    assert paired.verdict(np.array([-m, m + EPS]), tolerance_pct=10).status == "inconclusive"
    assert paired.verdict(np.array([-m + EPS, m - EPS]), tolerance_pct=10).status == "unchanged"


def test_the_centre_is_the_median_of_the_log_ratios_not_their_mean() -> None:
    # nine pairs equal, one far slower: the mean would be +10% (over a 5% tolerance), the median is 0
    r = np.array([0.0] * 9 + [1.0])
    v = paired.verdict(r, tolerance_pct=5)
    assert v.ratio == 1.0 and v.interval == (1.0, 1.0) and v.status == "unchanged"
    # and a median off the middle of the range: three pairs at log 2, two at 0
    v = paired.verdict(np.log([2.0, 1.0, 2.0, 1.0, 2.0]), tolerance_pct=5)
    assert v.ratio == pytest.approx(2.0, rel=1e-12)


def test_the_interval_is_the_percentile_bootstrap_of_the_pairs_medians() -> None:
    r = np.random.default_rng(11).normal(0.05, 0.1, 60)  # many distinct bootstrap medians: no ties at the ends
    v = paired.verdict(r, tolerance_pct=5, confidence=0.9, resamples=700, rng=np.random.default_rng(2))
    idx = np.random.default_rng(2).integers(0, r.size, size=(700, r.size))
    lo, hi = np.quantile(np.median(r[idx], axis=1), [0.05, 0.95])
    assert v.interval == (pytest.approx(np.exp(lo), rel=1e-12), pytest.approx(np.exp(hi), rel=1e-12))
    assert v.ratio == pytest.approx(np.exp(np.median(r)), rel=1e-12)
    # the defaults: 95%, 2000 resamples from a generator seeded 0
    assert paired.verdict(r, tolerance_pct=5) == paired.verdict(r, tolerance_pct=5, confidence=0.95, resamples=2000,
                                                                 rng=np.random.default_rng(0))
    # computed in double precision whatever it is given
    assert paired.verdict(r.astype(np.float32), tolerance_pct=5) == paired.verdict(
        r.astype(np.float32).astype(np.float64), tolerance_pct=5)
    # every pair can be drawn, the first too
    v = paired.verdict(np.array([np.log(2.0), 0.0]), tolerance_pct=5)
    assert v.interval == (1.0, pytest.approx(2.0))


def test_the_verdict_record_exact() -> None:
    m = _margin(10)
    assert _flat(m + 0.1, 10, n=2) == paired.PairedVerdict(
        "regressed", "p99", pytest.approx(np.exp(m + 0.1)), (pytest.approx(np.exp(m + 0.1)),) * 2, 2, 10,
        "2 block pairs, the whole interval is above +10%")
    assert _flat(-m - 0.1, 10).reason == "12 block pairs, the whole interval is below -10%"
    assert _flat(0.0, 10).reason == "12 block pairs, the interval lies within ±10%"
    wide = paired.verdict(np.array([-1.0, 1.0, 0.0]), tolerance_pct=10, stat="p50")
    assert (wide.status, wide.stat, wide.pairs, wide.failed) == ("inconclusive", "p50", 3, False)
    assert wide.reason == "3 block pairs, the interval reaches past ±10%; more pairs would decide"
    with pytest.raises(ValueError, match="^verdict: needs at least 2 block pairs$"):
        paired.verdict(np.array([0.1]), tolerance_pct=10)
    with pytest.raises(ValueError, match="^verdict: needs at least 2 block pairs$"):
        paired.verdict(np.zeros((2, 2)), tolerance_pct=10)


# ----------------------------------------------------------------------------- bounds


def test_log_ratios_checks_its_input() -> None:
    assert paired.log_ratios([2.0, 3.0], [1.0, 3.0]).tolist() == [pytest.approx(np.log(2.0)), 0.0]
    h32, b32 = np.array([3.0, 7.0], dtype=np.float32), np.array([2.0, 5.0], dtype=np.float32)
    assert paired.log_ratios(h32, b32).tolist() == (np.log([3.0, 7.0]) - np.log([2.0, 5.0])).tolist()
    with pytest.raises(ValueError, match="same number"):
        paired.log_ratios([[1.0, 2.0]], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="same number"):
        paired.log_ratios([], [])
    with pytest.raises(ValueError, match="^log_ratios: block statistics must be positive nanoseconds$"):
        paired.log_ratios([1.0, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="positive"):
        paired.log_ratios([1.0, 0.0], [1.0, 1.0])


def test_block_p50_p99s_as_the_summary_computes_them() -> None:
    values = np.arange(1.0, 301.0)
    p50s, p99s = paired.block_p50_p99s(values, (100, 200))
    blocks = [percentiles.block_stats(values[:100]), percentiles.block_stats(values[100:])]
    assert (p50s, p99s) == ([b.p50 for b in blocks], [b.p99 for b in blocks])


# ----------------------------------------------------------------------------- futility and sequential stopping


def _inconclusive(ratio: float, lo: float, hi: float, pairs: int = 20, tol: float = 5.0) -> paired.PairedVerdict:
    return paired.PairedVerdict("inconclusive", "p99", ratio, (lo, hi), pairs, tol, "")


def test_futile_on_both_sides_of_the_reachable_pairs() -> None:
    # centred on 1 with half-width h at 20 pairs: fits within ±5% at n pairs iff h·sqrt(20/n) <= margin
    m = _margin(5)
    h = 2 * m  # fits from 80 pairs on
    v = _inconclusive(1.0, float(np.exp(-h)), float(np.exp(h)))
    assert paired.futile(v, 79) and not paired.futile(v, 81)
    assert paired.futile(v, 20) and paired.futile(v, 19)  # no pair left to take
    assert not paired.futile(_inconclusive(1.0, 0.0, 2.0), 1000)  # no log interval to shrink: keep going
    assert not paired.futile(_inconclusive(1.0, 1.2, 0.8), 1000)
    assert not paired.futile(paired.PairedVerdict("regressed", "p99", 1.0, (0.5, 2.0), 20, 5.0, ""), 21)


def _never(k: int) -> np.ndarray:
    raise AssertionError(f"asked for {k} more pairs")


def test_sequential_stops_at_the_pair_bound_and_the_deadline() -> None:
    wide = np.linspace(np.log(1.2) - 0.6, np.log(1.2) + 0.6, 20)  # inconclusive, yet more pairs could clear it
    assert paired.verdict(wide, tolerance_pct=5).status == "inconclusive"
    v = paired.sequential(_never, tolerance_pct=5, max_pairs=20, initial=wide, clock=lambda: 0.0)
    assert v == paired.verdict(wide, tolerance_pct=5)  # as the first pairs left it: no futility check either
    ticks = iter([0.0, 10.0])  # start, then exactly at the deadline: no more pairs
    v = paired.sequential(_never, tolerance_pct=5, initial=wide, clock=lambda: next(ticks))
    assert isinstance(v, paired.PairedVerdict) and v.pairs == 20
    asked: list[int] = []

    def more(k: int) -> np.ndarray:
        asked.append(k)
        return np.linspace(np.log(1.2) - 0.6, np.log(1.2) + 0.6, k)

    v = paired.sequential(more, tolerance_pct=5, max_pairs=25, initial=wide, clock=lambda: 0.0)
    assert asked == [5] and v.pairs == 25  # the last step only up to the bound


A = 0.1  # pairs alternating ±A: the interval is exactly (-A, +A); within ±5% from ~84 pairs on (futile)


def test_sequential_counts_the_pairs_reachable_at_the_pace_so_far() -> None:
    # 20 pairs at t=0, then 10 more taking 2 s: by the 10 s deadline, 40 more at that pace, 70 in all
    clock = iter([0.0, 1.0, 2.0])
    asked: list[int] = []

    def more(k: int) -> np.ndarray:
        asked.append(k)
        return np.resize([-A, A], k)

    v = paired.sequential(more, tolerance_pct=5, initial=np.resize([-A, A], 20), clock=lambda: next(clock))
    assert asked == [10] and v.status == "inconclusive"
    assert v.reason == ("30 block pairs, the interval reaches past ±5%; not taken further: the 70 pairs the bound "
                        "allows could not decide it")
    # the same pace against a 1 s bound: 10 pairs took 0.8 s, so 2 more fit in the 0.2 s left
    clock = iter([0.0, 0.1, 0.8])
    asked.clear()
    v = paired.sequential(more, tolerance_pct=5, deadline_s=1.0, initial=np.resize([-A, A], 20),
                          clock=lambda: next(clock))
    assert asked == [10] and v.reason.endswith("the 32 pairs the bound allows could not decide it")


def test_sequential_without_a_pace_yet_assumes_every_pair_of_the_bound() -> None:
    asked: list[int] = []

    def wide(k: int) -> np.ndarray:  # +20%, too wide to tell from +5% in 40 pairs, yet not futile
        return np.linspace(np.log(1.2) - 0.8, np.log(1.2) + 0.8, k)

    # no time passes: the pace is unknown, the bound's 40 pairs are all reachable
    v = paired.sequential(lambda k: (asked.append(k), wide(k))[1], tolerance_pct=5, max_pairs=40, initial=wide(20),
                          clock=lambda: 0.0)
    assert asked == [10, 10] and (v.pairs, v.status) == (40, "inconclusive")


# ----------------------------------------------------------------------------- over several process pairs


@pytest.fixture(autouse=True)
def _no_spread_floor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The t-interval's own edges, pinned without the floor on the pairs' spread (which
    ``test_the_spread_floor_widens_pairs_that_agree_by_chance`` pins on its own)."""
    if "floor" not in request.node.name:
        monkeypatch.setattr(paired, "PAIR_SPREAD_FLOOR", 0.0)


def test_the_spread_floor_widens_pairs_that_agree_by_chance() -> None:
    # three process pairs at exactly the same estimate: without the floor a zero-width interval
    est = [0.05] * 3
    v = paired.hierarchical(est, np.empty((3, 0)), tolerance_pct=10, stat="p99", pairs=3, what="W")
    half = 4.303 * paired.PAIR_SPREAD_FLOOR / np.sqrt(3)
    assert v.interval == (pytest.approx(np.exp(0.05 - half)), pytest.approx(np.exp(0.05 + half)))
    g = paired.grouped_verdict([[0.05] * 6] * 3, tolerance_pct=10)
    assert g.interval == (pytest.approx(np.exp(0.05 - half)), pytest.approx(np.exp(0.05 + half)))
    assert paired.PAIR_SPREAD_FLOOR == 0.02


def _h(estimates: list[float], tol: float = 10, within: np.ndarray | None = None) -> paired.PairedVerdict:
    w = np.empty((len(estimates), 0)) if within is None else within
    return paired.hierarchical(estimates, w, tolerance_pct=tol, stat="p50", pairs=7, what="W")


def test_hierarchical_rule_on_both_sides_of_each_edge() -> None:
    m = _margin(10)
    # process pairs that agree exactly: a zero-width interval at their estimate
    assert _h([m + EPS] * 3).status == "regressed" and _h([m] * 3).status == "unchanged"
    assert _h([-m - EPS] * 3).status == "improved" and _h([-m] * 3).status == "unchanged"
    v = _h([m + 0.1] * 2)
    assert v == paired.PairedVerdict("regressed", "p50", pytest.approx(np.exp(m + 0.1)),
                                     (pytest.approx(np.exp(m + 0.1)),) * 2, 7, 10,
                                     "W, the whole interval is above +10%")


@pytest.mark.parametrize(("n", "t"), [(2, 12.706), (3, 4.303), (4, 3.182), (31, 2.042), (40, 2.042)])
def test_hierarchical_interval_is_t_with_n_minus_1_degrees_of_freedom(n: int, t: float) -> None:
    est = list(np.random.default_rng(n).normal(0.02, 0.03, n))
    v = _h(est)
    centre, se = float(np.mean(est)), float(np.std(est, ddof=1)) / np.sqrt(n)
    assert v.ratio == pytest.approx(np.exp(centre), rel=1e-12)  # the mean of the process pairs' estimates
    assert v.interval == (pytest.approx(np.exp(centre - t * se), rel=1e-12),
                          pytest.approx(np.exp(centre + t * se), rel=1e-12))


def test_hierarchical_edge_of_the_t_interval() -> None:
    d = 0.01  # estimates c ± d (two each): s = 2d/sqrt(3), se = d/sqrt(3), half = 3.182·se
    half = 3.182 * d / np.sqrt(3)
    m = _margin(10)
    assert _h([m + half + EPS + x for x in (-d, -d, d, d)]).status == "regressed"
    assert _h([m + half - EPS + x for x in (-d, -d, d, d)]).status == "inconclusive"


def test_hierarchical_one_process_pair_uses_its_own_bootstrap() -> None:
    within = np.linspace(-0.1, 0.3, 4001)[np.newaxis, :]  # its 2.5% and 97.5% quantiles: -0.09, 0.29
    v = _h([0.1], within=within)
    assert v.ratio == pytest.approx(np.exp(0.1), rel=1e-12)
    assert v.interval == (pytest.approx(np.exp(-0.09), rel=1e-9), pytest.approx(np.exp(0.29), rel=1e-9))
    assert v.reason == ("W (one process pair: the interval cannot see what differs between processes), the interval "
                        "reaches past ±10%; more pairs would decide")


def test_grouped_verdict_takes_the_median_of_all_block_pairs_and_resamples_whole_process_pairs() -> None:
    # all six block pairs: -5, 0, 0, 0.1, 0.1, 1: median 0.05 (their mean would be -0.63)
    v = paired.grouped_verdict([[0.0, 0.0, 1.0], [], [0.1, 0.1, -5.0]], tolerance_pct=10, stat="p50")
    assert v == paired.PairedVerdict("inconclusive", "p50", pytest.approx(np.exp(0.05)), v.interval, 6, 10,
                                     "2 process pairs, 6 block pairs, the interval reaches past ±10%; more "
                                     "pairs would decide")
    # the cluster bootstrap draws whole pairs: {A, A} has median 0, {B, B} 0.1, {A, B} 0.05
    drawn = np.random.default_rng(0).integers(0, 2, size=(2000, 2))
    boot = np.array([{0: 0.0, 1: 0.05, 2: 0.1}[int(d.sum())] for d in drawn])
    half = 12.706 * float(np.std(boot, ddof=1)) * np.sqrt(2)
    assert v.interval == (pytest.approx(np.exp(0.05 - half)), pytest.approx(np.exp(0.05 + half)))
    # one process pair: the paired verdict over its blocks, with the generator and resamples given
    one = np.random.default_rng(11).normal(0.05, 0.1, 60)
    v = paired.grouped_verdict([one, []], tolerance_pct=5, stat="p50", resamples=300, rng=np.random.default_rng(4))
    assert v == paired.verdict(one, tolerance_pct=5, stat="p50", resamples=300, rng=np.random.default_rng(4))
    assert v != paired.verdict(one, tolerance_pct=5, stat="p50", resamples=300)
    assert v != paired.verdict(one, tolerance_pct=5, stat="p50", rng=np.random.default_rng(4))
    assert paired.grouped_verdict([one], tolerance_pct=5) == paired.verdict(one, tolerance_pct=5)
    with pytest.raises(ValueError, match="^grouped_verdict: needs block pairs$"):
        paired.grouped_verdict([[], []], tolerance_pct=5)


def _blocks(level: float, k: int = 3, spread: float = 0.0, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [level * np.exp(np.linspace(-1, 1, 100) * 0.1 + rng.normal(0, spread)) for _ in range(k)]


def test_pooled_verdict_compares_percentiles_over_all_calls() -> None:
    v = paired.pooled_verdict([(_blocks(2.0), _blocks(1.0))], tolerance_pct=10)
    assert v.status == "regressed" and v.interval == (pytest.approx(2.0), pytest.approx(2.0))
    assert v.reason == ("1 process pair(s), 3 block pairs, each side's p99 over all its calls (one process pair: the "
                        "interval cannot see what differs between processes), the whole interval is above +10%")
    head, base = [np.arange(1.0, 101.0), np.full(100, 50.0)], [np.full(100, 50.0), np.full(100, 50.0)]
    for q in (50.0, 99.0):
        est = np.log(np.percentile(np.concatenate(head), q)) - np.log(50.0)
        w = paired.pooled_verdict([(head, base), (head, base)], tolerance_pct=10, q=q, stat="p50")
        assert (w.ratio, w.pairs, w.stat) == (pytest.approx(np.exp(est), rel=1e-12), 4, "p50")
        assert w.interval == (pytest.approx(np.exp(est)), pytest.approx(np.exp(est)))  # two pairs agree exactly
        assert w.reason.startswith("2 process pair(s), 4 block pairs, each side's p50 over all its calls, ")


def test_pooled_verdict_one_pair_bootstraps_its_block_pairs() -> None:
    head, base = _blocks(1.1, k=12, spread=0.1, seed=1), _blocks(1.0, k=12, spread=0.1, seed=2)
    v = paired.pooled_verdict([(head, base)], tolerance_pct=5, q=90, resamples=200, rng=np.random.default_rng(6))
    picks = np.random.default_rng(6).integers(0, 12, size=(200, 12))
    boot = [np.log(np.percentile(np.concatenate([head[j] for j in p]), 90)) -
            np.log(np.percentile(np.concatenate([base[j] for j in p]), 90)) for p in picks]
    lo, hi = np.quantile(boot, [0.025, 0.975])
    assert v.interval == (pytest.approx(np.exp(lo), rel=1e-12), pytest.approx(np.exp(hi), rel=1e-12))
    # the defaults: p99, 1000 resamples from a generator seeded 0 (calls spread enough that no two bounds tie)
    rng = np.random.default_rng(11)
    head, base = [1.1 * rng.lognormal(0, 0.3, 100) for _ in range(12)], [rng.lognormal(0, 0.3, 100) for _ in range(12)]
    v = paired.pooled_verdict([(head, base)], tolerance_pct=5)
    assert v == paired.pooled_verdict([(head, base)], tolerance_pct=5, q=99.0, stat="p99", resamples=1000,
                                      rng=np.random.default_rng(0))
    assert v != paired.pooled_verdict([(head, base)], tolerance_pct=5, resamples=1001)
    # computed in double precision whatever it is given
    h32, b32 = [b.astype(np.float32) for b in head], [b.astype(np.float32) for b in base]
    assert paired.pooled_verdict([(h32, b32)], tolerance_pct=5, resamples=50) == paired.pooled_verdict(
        [([b.astype(np.float64) for b in h32], [b.astype(np.float64) for b in b32])], tolerance_pct=5, resamples=50)
    with pytest.raises(ValueError, match="^pooled_verdict: need as many head as base blocks, got 12 and 5$"):
        paired.pooled_verdict([(head, base[:5])], tolerance_pct=5)
    with pytest.raises(ValueError, match="got 0 and 0"):
        paired.pooled_verdict([([], [])], tolerance_pct=5)
