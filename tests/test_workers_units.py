"""xdist placement rules, as pure functions (the end-to-end runs are in test_xdist.py)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_hostperf import workers


def test_worker_index_parses_xdist_ids() -> None:
    assert workers.worker_index("gw0") == 0 and workers.worker_index("gw12") == 12
    with pytest.raises(ValueError, match="not an xdist worker id: 'master'"):
        workers.worker_index("master")


@given(st.sets(st.integers(0, 255), min_size=1, max_size=64), st.data())
def test_worker_cpus_are_disjoint_and_cover_the_cpus(cpus: set, data: st.DataObject) -> None:
    n = data.draw(st.integers(1, len(cpus)))
    parts = [workers.worker_cpus(sorted(cpus), n, i) for i in range(n)]
    assert all(parts), "every worker gets at least one CPU"
    flat = [c for p in parts for c in p]
    assert sorted(flat) == sorted(cpus) and len(flat) == len(set(flat))


def test_more_workers_than_cpus_gathers() -> None:
    assert workers.must_gather(3, (0, 1)) and not workers.must_gather(2, (0, 1))
    with pytest.raises(ValueError, match="3 workers cannot have disjoint CPUs among 2"):
        workers.worker_cpus([0, 1], 3, 0)
    with pytest.raises(ValueError, match="index must be in 0..1"):
        workers.worker_cpus([0, 1], 2, 2)


def test_usable_cpus_prefers_the_request() -> None:
    assert workers.usable_cpus([3, 1, 3]) == (1, 3)
    assert set(workers.usable_cpus(None)) <= set(range(4096)) and workers.usable_cpus(None)
