from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.workloads.wakeup import Cyclic, timer_slack, timer_slack_ns, wakeup_latency
from pytest_hostperf.errors import InvalidArgument


class FakeTime:
    """A clock that only moves when slept on, each sleep overshooting by ``late_ns``."""

    def __init__(self, late_ns: int = 0, start: int = 1_000_000) -> None:
        self.now = start
        self.late_ns = late_ns
        self.sleeps: list[int] = []

    def clock(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        ns = round(seconds * 1e9)
        self.sleeps.append(ns)
        self.now += ns + self.late_ns


@settings(max_examples=50)
@given(interval=st.integers(1, 10**9), late=st.integers(0, 10**6))
def test_wakeup_latency_reports_the_overshoot(interval: int, late: int) -> None:
    t = FakeTime(late)
    assert wakeup_latency(interval, clock=t.clock, sleep=t.sleep) == late
    assert t.sleeps == [interval]


def test_wakeup_latency_for_real_is_never_early() -> None:
    lates = [wakeup_latency(200_000) for _ in range(20)]
    assert all(isinstance(x, int) and x >= 0 for x in lates)


@pytest.mark.parametrize("bad", [0, -5])
def test_bad_interval(bad: int) -> None:
    with pytest.raises(InvalidArgument, match="interval_ns"):
        wakeup_latency(bad)
    with pytest.raises(InvalidArgument):
        Cyclic(bad)


def test_cyclic_keeps_a_fixed_grid() -> None:
    t = FakeTime(late_ns=100)
    c = Cyclic(1000, clock=t.clock, sleep=t.sleep)
    assert [c() for _ in range(5)] == [100] * 5
    # The deadline grid does not drift by the lateness: sleeps shrink to absorb it.
    assert t.sleeps == [1000, 900, 900, 900, 900]
    assert c.overruns == 0


def test_cyclic_reanchors_after_a_pause() -> None:
    t = FakeTime()
    c = Cyclic(1000, clock=t.clock, sleep=t.sleep)
    c()
    t.now += 50_000  # the caller paused between blocks
    assert c() == 0 and c.overruns == 1
    c.reset()
    assert c() == 0


def test_timer_slack_is_set_and_restored() -> None:
    before = timer_slack_ns()
    with timer_slack(1) as previous:
        assert previous == before
        assert timer_slack_ns() == 1
    assert timer_slack_ns() == before
    with pytest.raises(InvalidArgument):
        with timer_slack(0):
            pass
