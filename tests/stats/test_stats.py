from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.measure import sampling
from pytest_hostperf.stats import percentiles as stats

latencies = hnp.arrays(np.float64, st.integers(1, 300),
                       elements=st.floats(1, 1e9, allow_nan=False, allow_infinity=False))


def test_percentiles_exact() -> None:
    assert stats.percentiles(np.arange(1, 101), [50, 99, 99.9]).tolist() == pytest.approx([50.5, 99.01, 99.901])
    assert stats.percentiles(np.array([7.0]), [50, 99]).tolist() == [7.0, 7.0]


def test_block_stats_exact() -> None:
    b = stats.block_stats(np.arange(1, 1001, dtype=float))
    assert (b.n, b.p50, b.max) == (1000, 500.5, 1000.0)
    assert b.p99 == pytest.approx(990.01)
    assert b.p999 == pytest.approx(999.001)


def test_estimate_is_median_of_blocks_and_ignores_one_bad_block() -> None:
    blocks = [stats.block_stats(np.full(100, v)) for v in (10.0, 11.0, 12.0, 1e6)]
    assert stats.estimate(blocks, "p99") == 11.5
    assert stats.estimate(blocks, "max") == 11.5


def test_split_blocks_checks_sizes() -> None:
    parts = stats.split_blocks(np.arange(6), [2, 0, 4])
    assert [p.tolist() for p in parts] == [[0, 1], [2, 3, 4, 5]]
    with pytest.raises(InvalidArgument, match="add up to 5"):
        stats.split_blocks(np.arange(6), [2, 3])


def test_unknown_statistic_named() -> None:
    with pytest.raises(InvalidArgument, match="unknown statistic 'p42'"):
        stats.block_values([], "p42")


def test_interval_single_block_is_a_point_and_is_deterministic() -> None:
    assert stats.interval(np.array([5.0])) == (5.0, 5.0)
    values = np.array([10.0, 12, 11, 13, 9, 30, 10, 11])
    assert stats.interval(values) == stats.interval(values)
    lo, hi = stats.interval(values)
    assert lo <= np.median(values) <= hi


@pytest.mark.parametrize(("call", "overhead", "resolution", "k"), [
    (5000, 50, 10, 1),     # long enough alone
    (1000, 50, 10, 1),     # exactly 20 overheads
    (999, 50, 10, 2),
    (100, 50, 10, 10),
    (0, 50, 10, 1000),     # no measurable cost: 1 ns assumed
    (10, 50, 200, 400),    # a coarse clock dominates the overhead
])
def test_batch_size_exact(call: float, overhead: float, resolution: float, k: int) -> None:
    assert sampling.batch_size(call, overhead, resolution) == k


@given(st.floats(0, 1e7), st.floats(1, 1e4), st.floats(1, 1e3))
@example(call=409.7214944502855, overhead=409.7214944502855, resolution=1.0)  # float rounding in need/call
def test_batch_spans_enough_time(call: float, overhead: float, resolution: float) -> None:
    k = sampling.batch_size(call, overhead, resolution)
    need = 20 * max(overhead, resolution)
    assert 1 <= k <= 1 << 16
    if k < 1 << 16:
        assert k * max(call, 1) >= need or k == 1 and call >= need
    if k > 1:  # the smallest k that suffices: k-1 calls would not
        assert (k - 1) * max(call, 1) < need


@given(latencies)
@settings(max_examples=200)
def test_percentiles_agree_with_numpy_and_are_monotone(x: np.ndarray) -> None:
    qs = [0, 50, 90, 99, 99.9, 100]
    got = stats.percentiles(x, qs)
    assert got.tolist() == np.percentile(x, qs).tolist()
    assert all(a <= b for a, b in zip(got, got[1:]))
    b = stats.block_stats(x)
    assert x.min() <= b.p50 <= b.p90 <= b.p99 <= b.p999 <= b.max == x.max()


@given(latencies, st.floats(1.01, 10))
def test_scaling_samples_scales_every_statistic(x: np.ndarray, factor: float) -> None:
    a, b = stats.block_stats(x), stats.block_stats(x * factor)
    for s in stats.STATS:
        assert b.get(s) == pytest.approx(a.get(s) * factor, rel=1e-9)


@given(hnp.arrays(np.float64, st.integers(2, 40), elements=st.floats(1, 1e6)))
def test_interval_brackets_the_median_and_lies_within_the_data(values: np.ndarray) -> None:
    lo, hi = stats.interval(values, resamples=300)
    assert values.min() <= lo <= hi <= values.max()
