from __future__ import annotations

import gc

import numpy as np
import pytest

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.measure import sampling as measure


class FakeClock:
    """A clock that advances `step` ns per read; `spend(ns)` is a function that takes ns."""

    def __init__(self, step: int = 50) -> None:
        self.t = 0
        self.step = step
        self.calls = 0

    def __call__(self) -> int:
        self.t += self.step
        return self.t

    def spend(self, ns: int) -> None:
        self.calls += 1
        self.t += ns


def test_calibrate_reads_overhead_and_resolution() -> None:
    info = measure.calibrate(FakeClock(step=40), pairs=100, name="fake")
    assert (info.clock, info.overhead_ns, info.resolution_ns, info.pairs) == ("fake", 40.0, 40.0, 100)


def test_calibrate_real_clock_is_sane() -> None:
    info = measure.calibrate(pairs=1000)
    assert info.overhead_ns >= 0 and info.resolution_ns >= 1


def test_single_calls_when_long_enough() -> None:
    clock = FakeClock(step=50)
    timer = measure.TimerInfo("fake", 50, 10, 100)
    plan = measure.Plan(samples=100, blocks=4, max_seconds=10, warmup_calls=5, pause_fraction=0, min_pause_seconds=0)
    raw = measure.sample(clock.spend, (5000,), plan=plan, timer=timer, clock=clock, sleep=lambda s: None)
    assert raw.batch == 1
    assert raw.block_sizes == (25, 25, 25, 25)
    assert np.all(raw.values == 5050)  # the call plus one timer read
    assert raw.calls == clock.calls == 105
    assert not raw.truncated


def test_samples_asked_for_are_taken_exactly_when_blocks_do_not_divide_them() -> None:
    clock = FakeClock(step=50)
    timer = measure.TimerInfo("fake", 50, 10, 100)
    plan = measure.Plan(samples=40, blocks=9, max_seconds=10, warmup_calls=1, pause_fraction=0, min_pause_seconds=0)
    raw = measure.sample(clock.spend, (5000,), plan=plan, timer=timer, clock=clock, sleep=lambda s: None)
    # 40 = 4 blocks of 5 + 5 blocks of 4 (a whole 5 per block would be 45: more than asked)
    assert raw.block_sizes == (5, 5, 5, 5, 4, 4, 4, 4, 4) and raw.values.size == 40
    assert not raw.truncated


def test_short_calls_are_batched_and_divided() -> None:
    clock = FakeClock(step=50)
    timer = measure.TimerInfo("fake", 50, 10, 100)
    plan = measure.Plan(samples=10, blocks=2, max_seconds=10, warmup_calls=3, pause_fraction=0, min_pause_seconds=0)
    raw = measure.sample(clock.spend, (100,), plan=plan, timer=timer, clock=clock, sleep=lambda s: None)
    # warm-up sees 150 ns per timed call (too short); 8 groups of 64 calls show ~100.8 ns per
    # call; 1000 ns are needed per sample -> 10 calls per sample
    assert raw.batch == 10
    assert np.all(raw.values == (10 * 100 + 50) / 10)
    assert raw.calls == clock.calls == 3 + 8 * 64 + 10 * 10
    assert raw.warmup_calls == 3 + 8 * 64


def test_time_budget_bounds_sampling() -> None:
    clock = FakeClock(step=0)
    timer = measure.TimerInfo("fake", 50, 10, 100)
    plan = measure.Plan(samples=1000, blocks=4, max_seconds=1e-3, warmup_calls=1, pause_fraction=0, min_pause_seconds=0)
    raw = measure.sample(clock.spend, (100_000,), plan=plan, timer=timer, clock=clock, sleep=lambda s: None)
    # 1 ms budget, 100 us calls: 1 ms / 4 blocks = 250 us per block -> 3 calls each (deadline checked after)
    assert raw.block_sizes == (3, 3, 3, 3)
    assert raw.truncated


def test_call_slower_than_budget_shrinks_blocks() -> None:
    clock = FakeClock(step=0)
    timer = measure.TimerInfo("fake", 50, 10, 100)
    plan = measure.Plan(samples=1000, blocks=20, max_seconds=0.1, warmup_calls=1, pause_fraction=0, min_pause_seconds=0)
    raw = measure.sample(clock.spend, (50_000_000,), plan=plan, timer=timer, clock=clock, sleep=lambda s: None)
    assert len(raw.block_sizes) == 2 and sum(raw.block_sizes) == 2


def test_in_turns_a_slow_call_still_takes_every_block_the_other_side_expects() -> None:
    """Paired, the two sides take plan.blocks turns each: a call slower than a block's time share
    takes one call a block rather than fewer blocks (a pydantic benchmark's 1-block round broke a
    pairing that expected 6)."""
    clock = FakeClock(step=0)
    timer = measure.TimerInfo("fake", 50, 10, 100)
    turns: list[int] = []

    class Turns:
        def before(self, block: int) -> None:
            turns.append(block)

        def after(self, block: int, elapsed_ns: int) -> None:
            pass

    plan = measure.Plan(samples=1000, blocks=6, max_seconds=0.1, warmup_calls=1)
    raw = measure.sample(clock.spend, (50_000_000,), plan=plan, timer=timer, clock=clock, turns=Turns())
    assert raw.block_sizes == (1,) * 6 and turns == [0, 0, 1, 2, 3, 4, 5]


def test_pauses_between_blocks_keep_duty_cycle() -> None:
    clock = FakeClock(step=0)
    timer = measure.TimerInfo("fake", 50, 10, 100)
    pauses: list[float] = []
    plan = measure.Plan(samples=40, blocks=4, max_seconds=10, warmup_calls=1, pause_fraction=0.12,
                        min_pause_seconds=0.001)
    measure.sample(clock.spend, (1_000_000,), plan=plan, timer=timer, clock=clock, sleep=pauses.append)
    # each block: 10 calls of 1 ms = 10 ms -> 1.2 ms pause
    assert pauses == pytest.approx([0.0012] * 4)


def test_turns_decide_when_each_block_runs_outside_the_timed_region() -> None:
    clock = FakeClock(step=0)
    timer = measure.TimerInfo("fake", 50, 10, 100)
    events: list[tuple[str, int, int]] = []

    class Log:
        """Records each turn with the clock's reading; a paired comparison would block in before()."""

        def before(self, block: int) -> None:
            events.append(("before", block, clock.t))

        def after(self, block: int, elapsed_ns: int) -> None:
            events.append(("after", block, elapsed_ns))
            clock.t += 10**9  # time spent here (waiting for the other side) is not in any sample

    plan = measure.Plan(samples=30, blocks=3, max_seconds=10, warmup_calls=1)
    raw = measure.sample(clock.spend, (1_000_000,), plan=plan, timer=timer, clock=clock, turns=Log())
    # before(0) twice: once ahead of the warm-up (a paired side warms up in its own turn), once for the block
    assert [(e[0], e[1]) for e in events] == [("before", 0), ("before", 0), ("after", 0), ("before", 1),
                                               ("after", 1), ("before", 2), ("after", 2)]
    assert all(e[2] == 10 * 1_000_000 for e in events if e[0] == "after")  # each block's own time
    assert raw.block_sizes == (10, 10, 10) and np.all(raw.values == 1_000_000)


def test_gc_disabled_during_blocks_and_restored_even_on_error() -> None:
    seen: list[bool] = []
    timer = measure.TimerInfo("fake", 50, 10, 100)
    plan = measure.Plan(samples=4, blocks=2, max_seconds=1, warmup_calls=1, pause_fraction=0, min_pause_seconds=0)
    assert gc.isenabled()
    raw = measure.sample(lambda: seen.append(gc.isenabled()), plan=plan, timer=timer)
    assert len(seen) == raw.calls
    assert all(seen[:raw.warmup_calls]) and not any(seen[raw.warmup_calls:])  # warm-up with gc, sampling without
    assert gc.isenabled()

    def boom() -> None:
        if not gc.isenabled():
            raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        measure.sample(boom, plan=plan, timer=timer)
    assert gc.isenabled()


def test_kwargs_are_passed() -> None:
    got: list[tuple] = []
    timer = measure.TimerInfo("fake", 50, 10, 100)
    measure.sample(lambda a, *, b: got.append((a, b)), (1,), {"b": 2}, plan=measure.SMOKE_PLAN, timer=timer)
    assert set(got) == {(1, 2)}


@pytest.mark.parametrize("kwargs", [{"samples": 0}, {"blocks": 0}, {"max_seconds": 0}, {"batch": 0}])
def test_plan_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(InvalidArgument):
        measure.Plan(**kwargs)


def test_self_timed_calls_record_what_they_return() -> None:
    timer = measure.TimerInfo("fake", 50, 10, 100)
    values = iter(range(1, 10_000))
    plan = measure.Plan(samples=10, blocks=2, max_seconds=10, warmup_calls=3, pause_fraction=0, min_pause_seconds=0)
    raw = measure.sample(lambda: next(values), plan=plan, timer=timer, self_timed=True)
    assert raw.batch == 1
    assert raw.values.tolist() == [float(v) for v in range(4, 14)]  # after 3 warm-up calls
