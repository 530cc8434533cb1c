"""Wake-up latency in the spirit of cyclictest: sleep until an absolute deadline, measure how late.

What it shows: the host's real-time readiness in one number. Each call sleeps until the next
200 us deadline and records how late it woke (self-timed: the lateness, not the period, is
recorded). Under SCHED_OTHER the timer slack (50 us by default) and the scheduler add to it;
SCHED_FIFO removes the slack and most of the scheduler's share. On a VM, expect tens of
microseconds at p50 and a p99 that shows the hypervisor.
"""
from __future__ import annotations

import pytest

from benchmarks.workloads.wakeup import Cyclic

INTERVAL_NS = 200_000


@pytest.mark.hostperf(group="wakeup", rt="off")
def test_wakeup_sched_other(hostperf):
    r = hostperf(Cyclic(INTERVAL_NS), name="sched_other", self_timed=True, samples=5000)
    assert r.p99 >= r.p50 >= 0


@pytest.mark.hostperf(group="wakeup")
def test_wakeup_sched_fifo(hostperf):
    r = hostperf(Cyclic(INTERVAL_NS), name="sched_fifo", self_timed=True, samples=5000)
    assert r.p99 >= r.p50 >= 0
