"""Open loop on a fake clock: each call timed from its intended start, service time beside it,
the schedule kept through a stall, saturation read from what happened, every loop bounded."""
from __future__ import annotations

from array import array

import numpy as np
import pytest

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.measure import openloop, sampling


class Clock:
    """A fake ns clock: reading it costs ``step``; sleeping and calling the function advance it."""

    def __init__(self, step: int = 10) -> None:
        self.t = 0
        self.step = step
        self.slept: list[float] = []

    def __call__(self) -> int:
        self.t += self.step
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += int(s * 1e9)


def stalling(clock: Clock, work_ns: int, stall_ns: int, every: int):  # type: ignore[no-untyped-def]
    calls = [0]

    def fn() -> None:
        calls[0] += 1
        clock.t += work_ns + (stall_ns if calls[0] % every == 0 else 0)
    return fn


def test_a_stall_delays_the_calls_scheduled_behind_it_and_they_are_counted() -> None:
    clock = Clock()
    fn = stalling(clock, work_ns=20_000, stall_ns=5_000_000, every=200)
    ol = openloop.OpenLoop(rate=10_000)  # every 100 us; capacity ~22k/s
    n = 400
    lat, svc = array("q", bytes(8 * n)), array("q", bytes(8 * n))
    end, late = openloop.block_open(fn, (), lat, svc, 0, n, ol.offsets(n), clock() + 1000, 10**15, clock, clock.sleep)
    assert end == n
    lat_a, svc_a = np.frombuffer(lat, np.int64), np.frombuffer(svc, np.int64)
    assert np.percentile(svc_a, 50) == pytest.approx(20_000, abs=200)  # the function's own cost
    # the 200th call stalls 5 ms: the 50 calls scheduled during it, and the ~12 that arrive while the
    # queue drains at 20 us a call (50 / (1 - 0.2) in all), start late, each counting its wait
    delayed = int(np.sum(lat_a > 100_000))
    assert 58 <= delayed <= 66, delayed
    assert np.percentile(lat_a, 99) > 20 * np.percentile(svc_a, 99.0 - 0.6)  # the closed loop would not see it
    assert late <= 1000  # the backlog drained before the block's end


def test_sleeps_to_each_intended_start_and_spins_only_the_last_stretch() -> None:
    clock = Clock(step=50)
    ol = openloop.OpenLoop(rate=1000)  # every 1 ms
    lat, svc = array("q", bytes(8 * 5)), array("q", bytes(8 * 5))
    openloop.block_open(lambda: None, (), lat, svc, 0, 5, ol.offsets(5), clock() + 2_000_000, 10**15, clock,
                        clock.sleep)
    # each wait sleeps to SPIN_NS before the start; the rest is a bounded spin
    assert len(clock.slept) == 5 and all(s <= 2e-3 for s in clock.slept)
    assert all(0 < v < 1000 for v in np.frombuffer(lat, np.int64))  # started on time: latency = service


def test_the_spin_is_bounded_even_when_the_clock_stalls() -> None:
    stuck = [0]

    def clock() -> int:
        return stuck[0]  # a clock that never moves: the spin must still end

    lat, svc = array("q", bytes(8)), array("q", bytes(8))
    end, _ = openloop.block_open(lambda: None, (), lat, svc, 0, 1, array("q", [0]), 50_000, 10**15, clock,
                                 lambda s: None)
    assert end == 1


def test_saturation_is_read_from_the_achieved_rate_or_a_growing_backlog() -> None:
    assert not openloop.saturated(10_000, 9_800, 0, 20)
    assert openloop.saturated(10_000, 9_000, 0, 20)  # short by 10%
    assert openloop.saturated(10_000, 10_000, 11, 20)  # most blocks ended with a backlog
    assert not openloop.saturated(10_000, 10_000, 10, 20)


def test_sampling_open_loop_past_capacity_is_saturated_and_reports_the_achieved_rate() -> None:
    clock = Clock()
    fn = stalling(clock, work_ns=50_000, stall_ns=0, every=1)  # 20k/s capacity
    timer = sampling.TimerInfo("fake", 40, 1, 2)
    plan = sampling.Plan(samples=2000, blocks=4, max_seconds=10, warmup_calls=10, warmup_seconds=1,
                         pause_fraction=0, min_pause_seconds=0)
    over = sampling.sample(fn, plan=plan, timer=timer, clock=clock, sleep=clock.sleep,
                           open_loop=openloop.OpenLoop(rate=30_000))
    load = sampling.load_of(over)
    assert load is not None and load["saturated"] and load["achieved"] == pytest.approx(20_000, rel=0.05)
    assert over.service is not None and over.batch == 1
    under = sampling.sample(fn, plan=plan, timer=timer, clock=clock, sleep=clock.sleep,
                            open_loop=openloop.OpenLoop(rate=10_000))
    load = sampling.load_of(under)
    assert load is not None and not load["saturated"] and load["achieved"] == pytest.approx(10_000, rel=0.05)
    from pytest_hostperf.stats.result import summarize

    res = summarize(over, nodeid="t.py::t", name="f")
    assert res.mode == "open-loop(30k/s)" and res.saturated and res.load is not None
    from pytest_hostperf.stats import checks

    check = checks.check_budget(res, "p99", 10**12)  # a budget far above any latency: still over
    assert check.failed and "counts as over its budget" in check.message
    assert "saturated: achieved 20k/s of the 30k/s asked" in check.message


def test_poisson_arrivals_are_one_schedule_per_seed() -> None:
    a = openloop.OpenLoop(rate=1000, arrivals="poisson", seed=7).offsets(1000)
    b = openloop.OpenLoop(rate=1000, arrivals="poisson", seed=7).offsets(1000)
    assert a == b and a[0] == 0
    gaps = np.diff(np.frombuffer(a, np.int64))
    assert np.mean(gaps) == pytest.approx(1e6, rel=0.1) and np.std(gaps) == pytest.approx(1e6, rel=0.15)
    with pytest.raises(InvalidArgument, match="arrivals='bursty'"):
        openloop.OpenLoop(rate=1000, arrivals="bursty")


@pytest.mark.parametrize(("text", "rate"), [("20k/s", 20_000.0), ("500/s", 500.0), ("1.5M/s", 1.5e6),
                                            ("800hz", 800.0), (1500, 1500.0), ("2e3/s", 2000.0)])
def test_rates_parse(text: object, rate: float) -> None:
    assert openloop.parse_rate(text) == rate


@pytest.mark.parametrize("bad", ["fast", "-5/s", "0/s", True, "1e9/s"])
def test_a_bad_rate_is_one_line_naming_it(bad: object) -> None:
    with pytest.raises(InvalidArgument, match=r"rate="):
        openloop.parse_rate(bad)


def test_the_knee_is_the_highest_unsaturated_rate_within_the_limit() -> None:
    from pytest_hostperf.stats.checks import knee

    rows = [(10e3, 50e3, False), (20e3, 90e3, False), (30e3, 400e3, False), (40e3, 150e3, True)]
    assert knee(rows, 200e3) == 20e3  # 40k/s is saturated: never the knee, whatever its p99
    assert knee([(10e3, 300e3, False), (20e3, 90e3, False)], 200e3) == 20e3  # an idle path's own tail at 10k/s
    assert knee([(10e3, 50e3, True)], 200e3) is None
    assert knee(rows, 10e3) is None


BUSY = '''
import os, time

def busy(us):
    end = time.perf_counter_ns() + int(us * 1000)
    while time.perf_counter_ns() < end:
        pass

US = float(os.environ.get("BUSY_US", "200"))

def test_saturated(hostperf):
    hostperf(busy, 200, name="over", rate="20k/s", p99="1s")   # capacity 5k/s: 4x over

def test_sweep(hostperf):
    sw = hostperf.sweep(busy, US, name="svc", rates=["500/s", "1k/s", "10k/s"], p99="2ms")
    print("KNEE", sw.knee)
'''


def test_a_saturated_rate_fails_its_budget_and_says_what_it_achieved(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_busy=BUSY)
    res = pytester.runpytest_subprocess("--hostperf", "--hostperf-samples=400", "--hostperf-max-time=0.3",
                                        "-k", "saturated", "--hostperf-json=r.json")
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(["*test_saturated[[]over[]]: p99 * counts as over its budget of 1.00 s; saturated: "
                              "achieved *k/s of the 20k/s asked*"])
    import json

    (r,) = json.loads((pytester.path / "r.json").read_text())["results"]
    assert r["mode"] == "open-loop(20k/s)" and r["load"]["saturated"] and r["load"]["achieved_per_s"] < 6000
    assert r["load"]["service_ns"]["p50"] > 150_000


def test_a_sweep_finds_its_knee_and_a_knee_that_falls_fails(pytester: pytest.Pytester,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_busy=BUSY)
    args = ("--hostperf", "--hostperf-samples=400", "--hostperf-max-time=0.3", "-k", "sweep", "-s")
    saved = pytester.runpytest_subprocess(*args, "--hostperf-save")
    saved.assert_outcomes(passed=1)
    # 200 us a call: 1k/s is 20% busy, 10k/s twice its capacity
    saved.stdout.fnmatch_lines(["*KNEE 1000.0", "*test_sweep: sweep svc: knee 1k/s (p99 <= 2.00 ms)*"])
    monkeypatch.setenv("BUSY_US", "1500")  # 7.5x slower: 1k/s is past its capacity
    slow = pytester.runpytest_subprocess(*args, "--hostperf-no-confirm")
    slow.assert_outcomes(failed=1)
    slow.stdout.fnmatch_lines(["*test_sweep: sweep svc: knee fell from 1k/s to * (p99 <= 2.00 ms*"])


def test_open_loop_blocks_pause_for_the_rt_duty_cycle_and_the_pauses_read_back() -> None:
    """At SCHED_FIFO an open loop spins before each intended start: its blocks must still leave the
    core idle ~12% of the time, as closed-loop blocks do, or RT throttling would stop it."""
    clock = Clock()
    fn = stalling(clock, work_ns=50_000, stall_ns=0, every=1)
    timer = sampling.TimerInfo("fake", 40, 1, 2)
    plan = sampling.Plan(samples=400, blocks=4, max_seconds=10, warmup_calls=1, warmup_seconds=0.01)
    raw = sampling.sample(fn, plan=plan, timer=timer, clock=clock, sleep=clock.sleep,
                          open_loop=openloop.OpenLoop(rate=10_000))  # 100 us apart: spins, never sleeps
    assert raw.block_sizes == (100,) * 4
    # every sleep is a pause after a block: 4 of them, each 12% of its block's ~10 ms
    assert len(clock.slept) == 4 and all(s == pytest.approx(0.12 * 0.01, rel=0.05) for s in clock.slept)
