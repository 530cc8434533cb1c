"""Open loop: latency at a request rate, timed from each call's intended start (docs/open-loop.md).

What it shows:
- coordinated omission made visible: a function of ~20 us a call with a 5 ms stall every 200
  calls, closed-loop and open-loop at half its capacity, side by side. The closed loop's p99 stays
  near 20 us (0.5% of its calls stall, and the calls that would have arrived during a stall were
  never issued); the open loop counts the ~55 requests queued behind each stall, so its p99 is
  several times the closed loop's. Its service time (from each call's actual start) agrees with
  the closed loop.
- the same function at 120% of its capacity is saturated: the achieved rate is printed, and no
  budget passes.
"""
from __future__ import annotations

import pytest

from benchmarks.workloads.stall import Stalling


@pytest.mark.hostperf(group="open-loop")
def test_coordinated_omission_made_visible(hostperf):
    f = Stalling(work_us=20, stall_ms=5, every=200)
    half = f.capacity / 2
    closed = hostperf(f, name="closed_loop", samples=8000)
    opened = hostperf(f, name=f"open_loop@{half / 1000:.0f}k/s", rate=half, samples=8000)
    hostperf.note(f"stalling function: capacity {f.capacity / 1000:.1f}k/s; open loop at {half / 1000:.1f}k/s "
                  f"achieved {opened.load['achieved'] / 1000:.1f}k/s; p99 closed {closed.p99 / 1000:.0f} us, "
                  f"open {opened.p99 / 1000:.0f} us ({opened.p99 / closed.p99:.0f}x); service p99.9 "
                  f"{opened.load['service']['p999'] / 1000:.0f} us vs closed p99.9 {closed.p999 / 1000:.0f} us")
    # the open loop's tail is what clients saw: several times the closed loop's
    hostperf.expect_faster(closed, opened, factor=5, at="p99")


@pytest.mark.hostperf(group="open-loop")
def test_past_capacity_is_saturated(hostperf):
    f = Stalling(work_us=20, stall_ms=5, every=200)
    over = hostperf(f, name="at_120pct", rate=1.2 * f.capacity, samples=6000, p99="off")
    assert over.saturated, over.load
    hostperf.note(f"at 120% of capacity ({1.2 * f.capacity / 1000:.1f}k/s asked): saturated, achieved "
                  f"{over.load['achieved'] / 1000:.1f}k/s")
