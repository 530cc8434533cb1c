"""xdist placement rules, as pure functions (the end-to-end runs are in test_xdist.py)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_hostperf.run import placement as workers


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


@given(st.from_regex(r"[a-z_/]{1,12}\.py::test_[a-z]{1,6}(\[[a-z0-9@-]{0,6}\])?", fullmatch=True),
       st.sampled_from(["hostperf", "hostperf_other", "other_hostperf"]))
def test_ungrouped_removes_exactly_the_xdist_group_suffix(nodeid: str, group: str) -> None:
    assert workers.ungrouped(nodeid) == nodeid  # a plain id, "@" inside parameters included
    assert workers.ungrouped(f"{nodeid}@{group}") == nodeid


class _OldItem:
    """A node as pytest < 9.2 has it: the id is the string ``_nodeid``."""

    def __init__(self, nodeid: str) -> None:
        self._nodeid = nodeid

    @property
    def nodeid(self) -> str:
        return self._nodeid


class _NewItem:
    """A node as pytest >= 9.2 has it: the id is a structured ``_id`` with a ``parse``."""

    class Id(str):
        @classmethod
        def parse(cls, text: str) -> _NewItem.Id:
            return cls(text)

    def __init__(self, nodeid: str) -> None:
        self._id = self.Id(nodeid)

    @property
    def nodeid(self) -> str:
        return str(self._id)


@pytest.mark.parametrize("kind", [_OldItem, _NewItem])
def test_tag_group_suffixes_once_on_either_node_id_model(kind: type) -> None:
    item = kind("t.py::test_a[1]")
    workers.tag_group(item, "hostperf")
    assert item.nodeid == "t.py::test_a[1]@hostperf"
    workers.tag_group(item, "hostperf")  # already grouped (xdist did it, or we did): unchanged
    assert item.nodeid == "t.py::test_a[1]@hostperf"


def test_tag_group_on_a_real_pytest_item_changes_its_node_id(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    (item,) = pytester.getitems(pytester.path / "test_tag_group_on_a_real_pytest_item_changes_its_node_id.py")
    workers.tag_group(item, "hostperf")
    assert item.nodeid.endswith("::test_a@hostperf")


def test_tag_group_refuses_a_node_it_cannot_rename() -> None:
    class Frozen:
        nodeid = "t.py::test_a"

        def __setattr__(self, name: str, value: object) -> None:
            pass

    with pytest.raises(RuntimeError, match="could not group 't.py::test_a' onto one xdist worker"):
        workers.tag_group(Frozen(), "hostperf")


def test_placement_note_says_where_the_tests_ran() -> None:
    line, bad = workers.placement_note(2, 1, ["gw1", "gw1"], gathered=True)
    assert not bad and "ran on one worker (gw1;" in line
    line, bad = workers.placement_note(2, 1, ["gw0", "gw1", "gw0"], gathered=True)
    assert bad and "ran on 2 workers (gw0, gw1)" in line and "disturbed each other" in line
    line, bad = workers.placement_note(3, 4, ["gw0", "gw2"], gathered=False)
    assert not bad and line.startswith("xdist: 2 of 3 workers measured, on disjoint CPUs")
