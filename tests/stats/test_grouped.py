"""The paired verdict over process pairs (``paired.grouped_verdict``, ``pooled_verdict``) and
what a verdict could tell (``units.could_tell_pct``): exact values on both sides of each rule."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_hostperf.stats import paired, verdict
from pytest_hostperf.store.records import VerdictRecord
from pytest_hostperf.units import could_tell_pct


def _groups(centres: list[float], k: int = 6) -> list[list[float]]:
    """Process pairs whose block pairs all sit at one log ratio each: each pair's median is exact."""
    return [[c] * k for c in centres]


def test_the_interval_is_the_median_plus_minus_t_times_the_cluster_bootstraps_error() -> None:
    centres = [0.01, -0.02, 0.03, 0.0]
    v = paired.grouped_verdict(_groups(centres), tolerance_pct=10)
    m = float(np.median(np.concatenate(_groups(centres))))
    drawn = np.random.default_rng(0).integers(0, 4, size=(2000, 4))
    boot = [np.median(np.concatenate([_groups(centres)[i] for i in d])) for d in drawn]
    se = max(float(np.std(boot, ddof=1)) * math.sqrt(4 / 3), paired.PAIR_SPREAD_FLOOR / 2)
    assert v.ratio == pytest.approx(math.exp(m))
    assert v.interval == pytest.approx((math.exp(m - 3.182 * se), math.exp(m + 3.182 * se)))
    assert v.pairs == 24 and v.reason.startswith("4 process pairs, 24 block pairs")


def test_the_spread_between_process_pairs_widens_the_interval_that_blocks_alone_would_not() -> None:
    # each process pair is perfectly steady inside, but the pairs disagree by a few percent: the
    # offset two processes of the same code can have. Blocks alone would call it decided.
    offsets = [0.06, -0.05, 0.07, -0.06]
    flat = paired.verdict(np.concatenate(_groups(offsets)), tolerance_pct=5)
    grouped = paired.grouped_verdict(_groups(offsets), tolerance_pct=5)
    assert grouped.interval[1] / grouped.interval[0] > flat.interval[1] / flat.interval[0]
    assert grouped.status == "inconclusive"


@pytest.mark.parametrize("shift, status", [
    (math.log(1.10) + 0.0001, "regressed"),   # lo just above +10% (the floor's half-width, pairs agreeing)
    (math.log(1.10) - 0.0001, "inconclusive"),  # lo just below it
    (-math.log(1.10) - 0.0001, "improved"),
    (0.0, "unchanged"),
])
def test_the_grouped_rule_on_both_sides_of_the_tolerance(shift: float, status: str) -> None:
    # four pairs that agree exactly: the half-width is the floor's, t3 * 0.02 / 2
    half = 3.182 * paired.PAIR_SPREAD_FLOOR / 2
    sign = 1 if shift >= 0 else -1
    v = paired.grouped_verdict(_groups([shift + sign * half] * 4), tolerance_pct=10)
    assert math.log(v.interval[1]) - math.log(v.ratio) == pytest.approx(half)
    assert v.status == status, v


def test_one_process_pair_falls_back_to_its_blocks_and_says_so_for_pooled_calls() -> None:
    rng = np.random.default_rng(3)
    blocks = [rng.exponential(1000, 150) + 1000 for _ in range(6)]
    v = paired.pooled_verdict([(blocks, [b / 2 for b in blocks])], tolerance_pct=10)
    assert v.ratio == pytest.approx(2.0) and v.status == "regressed"
    assert "one process pair: the interval cannot see what differs between processes" in v.reason


def test_pooled_compares_each_sides_p99_over_all_its_calls() -> None:
    rng = np.random.default_rng(4)
    groups = []
    for _ in range(4):
        base = [rng.exponential(1000, 150) + 1000 for _ in range(6)]
        groups.append(([b * 1.25 for b in base], base))  # the head: every call 25% slower
    v = paired.pooled_verdict(groups, tolerance_pct=5)
    assert v.ratio == pytest.approx(1.25) and v.status == "regressed"
    assert "each side's p99 over all its calls" in v.reason
    with pytest.raises(ValueError, match="as many head as base blocks"):
        paired.pooled_verdict([(groups[0][0], groups[0][1][:-1])], tolerance_pct=5)


def test_could_tell_is_the_intervals_half_width_in_log_space() -> None:
    assert could_tell_pct((0.9, 1.1)) == pytest.approx((math.sqrt(1.1 / 0.9) - 1) * 100)
    assert could_tell_pct((1.0, 1.0)) == 0.0
    assert could_tell_pct(None) is None and could_tell_pct((0.0, 1.0)) is None


def test_an_inconclusive_reason_says_what_it_could_tell_against_the_tolerance() -> None:
    v = verdict.from_pairs(status="inconclusive", ratio=1.0, interval=(0.8, 1.25), head=[1.0, 2.0], base=[1.0, 2.0],
                           tolerance_pct=10, reason="paired with HEAD: 4 process pairs")
    rec = VerdictRecord.of(v, 0)
    assert rec.reason.endswith("; could tell ±25% here; tolerance 10%"), rec.reason
    assert rec.to_json()["could_tell_pct"] == pytest.approx(25.0, abs=0.01)
    decided = VerdictRecord.of(verdict.from_pairs(status="unchanged", ratio=1.0, interval=(0.97, 1.03), head=[1.0],
                                                  base=[1.0], tolerance_pct=10, reason="r"), 0)
    assert "could tell" not in decided.reason and decided.to_json()["could_tell_pct"] == pytest.approx(3.05, abs=0.01)
