"""The log2-32 latency histogram (histogram.py): exact buckets, percentiles within one bucket,
validated input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_hostperf.errors import BaselineError, InvalidArgument
from pytest_hostperf.store import histogram


def test_histogram_exact_small_example() -> None:
    h = histogram.encode_histogram(np.array([0.4, 1, 2, 2, 3, 1000, 1000.6]))
    # 0.4 -> 0 ns and 1 ns share bucket 0; 2 ns starts bucket 32; 3 ns is in 50; 1000/1001 in 318.
    assert h == {"encoding": "log2-32", "sub_buckets": 32, "index": [0, 32, 50, 318], "count": [2, 2, 1, 2],
                 "min_ns": 0, "max_ns": 1001, "total": 7}
    reps, counts = histogram.decode_histogram(h)
    assert counts.tolist() == [2, 2, 1, 2]
    assert reps == pytest.approx(2 ** ((np.array([0, 32, 50, 318]) + 0.5) / 32))
    assert histogram.histogram_percentiles(h, [0, 100]).tolist() == [0, 1001]


def test_histogram_bucket_edges_are_exact() -> None:
    edges = [2 ** (i / 32) for i in range(32 * 40)]
    ints = sorted({int(np.ceil(e)) for e in edges} | {int(np.floor(e)) for e in edges})
    idx = histogram.bucket_of(np.array(ints))
    for v, i in zip(ints, idx.tolist()):
        assert 2 ** (i / 32) <= max(v, 1) < 2 ** ((i + 1) / 32)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), mu=st.floats(0, 16), sigma=st.floats(0.01, 2),
       n=st.integers(1, 5000), integral=st.booleans())
def test_histogram_percentiles_within_one_bucket(seed: int, mu: float, sigma: float, n: int,
                                                 integral: bool) -> None:
    samples = np.random.default_rng(seed).lognormal(mu, sigma, n)
    if integral:
        samples = np.rint(samples)
    h = histogram.encode_histogram(samples)
    assert sum(h["count"]) == h["total"] == n
    assert h["index"] == sorted(set(h["index"])) and min(h["count"]) >= 1
    qs = [0, 1, 10, 25, 50, 75, 90, 99, 99.9, 100]
    exact = np.percentile(np.rint(samples), qs)
    approx = histogram.histogram_percentiles(h, qs)
    width = 2 ** (1 / 32) - 1  # 2.2%
    # Bucket 0 spans [0, 2**(1/32)) ns, hence the absolute slack of one such width.
    assert np.all(np.abs(approx - exact) <= width * exact + 2 ** (1 / 32)), (approx, exact)
    assert np.all(np.diff(approx) >= 0)
    assert approx[0] == h["min_ns"] and approx[-1] == h["max_ns"]


@pytest.mark.parametrize("samples", [np.array([]), np.array([1.0, np.nan]), np.array([-1.0]),
                                     np.array([np.inf]), np.array([1e16])])
def test_encode_histogram_rejects_bad_samples(samples: np.ndarray) -> None:
    with pytest.raises(InvalidArgument, match="encode_histogram"):
        histogram.encode_histogram(samples)


def test_histogram_functions_validate_their_input() -> None:
    h = histogram.encode_histogram(np.arange(1, 100))
    with pytest.raises(BaselineError, match="malformed histogram: histogram.total"):
        histogram.histogram_percentiles({**h, "total": 5}, [50])
    with pytest.raises(BaselineError, match="malformed histogram"):
        histogram.decode_histogram({"index": [1]})
    with pytest.raises(InvalidArgument, match="percentiles must be in"):
        histogram.histogram_percentiles(h, [101])

