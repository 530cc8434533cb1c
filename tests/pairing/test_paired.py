"""The paired comparison's turn-taking and verdict (pytest_hostperf/paired.py)."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import threading
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_hostperf.errors import MeasurementError
from pytest_hostperf.measure import sampling
from pytest_hostperf.measure.turns import BatonTurns, schedule, socketpair
from pytest_hostperf.stats import paired


def test_schedule_is_abba_and_fair() -> None:
    order = schedule(4)
    assert order == ["head", "base", "base", "head", "head", "base", "base", "head"]
    assert order.count("head") == order.count("base") == 4
    firsts = [order[2 * i] for i in range(4)]
    assert firsts.count("head") == firsts.count("base") == 2  # neither side always goes first


def _run_side(turns: BatonTurns, blocks: int, log: list[tuple[str, int]], lock: threading.Lock) -> None:
    for b in range(blocks):
        turns.before(b)
        with lock:
            log.append((turns.side, b))
        turns.after(b, 0)


def test_two_sides_take_turns_in_schedule_order() -> None:
    a, b = socketpair()
    order = schedule(5)
    log: list[tuple[str, int]] = []
    lock = threading.Lock()
    sides = [BatonTurns(s, sock, order, pause=lambda ns: 0.0) for s, sock in (("head", a), ("base", b))]
    threads = [threading.Thread(target=_run_side, args=(t, 5, log, lock)) for t in sides]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    a.close()
    b.close()
    assert [s for s, _ in log] == order
    assert [blk for s, blk in log if s == "base"] == list(range(5))


def test_a_side_whose_peer_hangs_or_leaves_fails_in_bounded_time() -> None:
    a, b = socketpair()
    base = BatonTurns("base", b, schedule(2), wait_s=0.2)  # head goes first and never hands over
    t0 = time.monotonic()
    with pytest.raises(MeasurementError, match="did not hand over its turn within 0.2 s"):
        base.before(0)
    assert time.monotonic() - t0 < 5
    a.close()
    with pytest.raises(MeasurementError, match="closed the connection"):
        base.before(0)
    b.close()
    with pytest.raises(ValueError, match="no block in the schedule"):
        BatonTurns("base", b, ["head"])


class _Logged:
    """Wraps a side's turns and records when each of its blocks starts and ends."""

    def __init__(self, inner: BatonTurns) -> None:
        self.inner = inner
        self.spans: list[tuple[int, int]] = []
        self.turn_began: list[int] = []  # each call of before(): the first one comes before the warm-up
        self.ended = 0

    def before(self, block: int) -> None:
        self.inner.before(block)
        self.turn_began.append(time.monotonic_ns())
        if len(self.spans) == block:
            self.spans.append((time.monotonic_ns(), 0))

    def after(self, block: int, elapsed_ns: int) -> None:
        self.spans[-1] = (self.spans[-1][0], time.monotonic_ns())
        self.inner.after(block, elapsed_ns)

    def end(self) -> None:
        self.inner.end()
        self.ended = time.monotonic_ns()


def _work(n: int) -> int:
    return sum(range(n))


PLAN = sampling.Plan(samples=600, blocks=6, max_seconds=0.6, warmup_calls=50, warmup_seconds=0.05, batch=1)


def _base_side(sock_fd: int, cpu: int, out: mp.connection.Connection) -> None:
    import socket

    os.sched_setaffinity(0, {cpu})
    sock = socket.socket(fileno=sock_fd)
    turns = _Logged(BatonTurns("base", sock, schedule(PLAN.blocks)))
    timer = sampling.TimerInfo("perf_counter_ns", 50, 1, 100)
    raw = sampling.sample(_work, (200,), plan=PLAN, timer=timer, turns=turns)
    out.send(json.dumps({"spans": turns.spans, "blocks": list(raw.block_sizes), "began": turns.turn_began[0],
                         "ended": turns.ended}))
    sock.close()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_two_processes_on_one_cpu_measure_block_by_block_never_at_once() -> None:
    cpu = sorted(os.sched_getaffinity(0))[-1]
    a, b = socketpair()
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_base_side, args=(b.fileno(), cpu, send))
    before = os.sched_getaffinity(0)
    child.start()
    try:
        b.close()
        os.sched_setaffinity(0, {cpu})
        turns = _Logged(BatonTurns("head", a, schedule(PLAN.blocks)))
        timer = sampling.TimerInfo("perf_counter_ns", 50, 1, 100)
        raw = sampling.sample(_work, (200,), plan=PLAN, timer=timer, turns=turns)
        assert recv.poll(30), "the base side sent nothing back"
        base = json.loads(recv.recv())
    finally:
        os.sched_setaffinity(0, before)
        a.close()
        child.join(30)
        if child.is_alive():
            child.kill()
            child.join(10)
    assert child.exitcode == 0
    assert len(raw.block_sizes) == len(base["blocks"]) == PLAN.blocks
    spans = sorted([("head", s, e) for s, e in turns.spans] + [("base", s, e) for s, e in base["spans"]],
                   key=lambda x: x[1])
    assert [side for side, _, _ in spans] == schedule(PLAN.blocks)
    assert all(prev[2] <= nxt[1] for prev, nxt in zip(spans, spans[1:])), "two blocks overlapped"
    # the base warmed up in its own first turn: after the head's first block, never beside it
    assert base["began"] >= turns.spans[0][1], "the base warmed up while the head measured"
    # the schedule ends with the head's block; the base waited for it before summarizing
    assert schedule(PLAN.blocks)[-1] == "head" and base["ended"] >= turns.spans[-1][1]


def test_verdict_rules_on_known_pairs() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, 20)
    assert paired.verdict(noise, tolerance_pct=10).status == "unchanged"
    up = paired.verdict(np.log(1.5) + noise, tolerance_pct=10)
    assert up.status == "regressed" and up.failed and up.interval[0] > 1.1 and up.pairs == 20
    assert paired.verdict(np.log(1 / 1.5) + noise, tolerance_pct=10).status == "improved"
    assert paired.verdict(np.log(1.1) + noise, tolerance_pct=10).status == "inconclusive"
    with pytest.raises(ValueError, match="at least 2 block pairs"):
        paired.verdict(np.array([0.1]), tolerance_pct=10)


@given(st.lists(st.floats(-1, 1), min_size=3, max_size=40), st.floats(1, 50))
def test_verdict_mirrors_when_head_and_base_swap(values: list[float], tol: float) -> None:
    r = np.array(values)
    v, w = paired.verdict(r, tolerance_pct=tol), paired.verdict(-r, tolerance_pct=tol)
    mirror = {"regressed": "improved", "improved": "regressed", "unchanged": "unchanged",
              "inconclusive": "inconclusive"}
    assert w.status == mirror[v.status]
    assert v.interval[0] <= v.ratio <= v.interval[1] or np.isclose(v.interval[0], v.ratio) \
        or np.isclose(v.interval[1], v.ratio)


def test_log_ratios_pair_blocks_one_to_one() -> None:
    assert paired.log_ratios([200, 100], [100, 100]).tolist() == pytest.approx([np.log(2), 0.0])
    with pytest.raises(ValueError, match="same number"):
        paired.log_ratios([1, 2], [1])
    with pytest.raises(ValueError, match="positive"):
        paired.log_ratios([0, 2], [1, 1])


def test_sequential_adds_pairs_only_while_undecided() -> None:
    asked: list[int] = []

    def clear(k: int) -> np.ndarray:
        asked.append(k)
        return np.full(k, np.log(2.0))

    assert paired.sequential(clear, tolerance_pct=10).status == "regressed" and asked == [10]
    asked.clear()
    rng = np.random.default_rng(3)

    def borderline(k: int) -> np.ndarray:
        asked.append(k)
        return np.log(1.1) + rng.normal(0, 0.05, k)

    v = paired.sequential(borderline, tolerance_pct=10, max_pairs=40)
    assert sum(asked) == v.pairs <= 40 and len(asked) > 1


def test_sequential_stops_when_the_pairs_left_could_not_decide() -> None:
    asked: list[int] = []

    def hopeless(k: int) -> np.ndarray:  # centred on 1.00x, spread so wide that 200 pairs could not fit ±10%
        asked.append(k)
        return np.linspace(-0.8, 0.8, k)

    v = paired.sequential(hopeless, tolerance_pct=10, first=20)
    assert v.status == "inconclusive" and asked == [20], asked
    assert "not taken further: the 200 pairs the bound allows could not decide it" in v.reason


def test_futile_counts_the_pairs_the_bound_still_allows() -> None:
    # +10% with a 5% tolerance: 20 pairs reach below +5%, 200 would not
    v = paired.PairedVerdict("inconclusive", "p99", 1.10, (1.03, 1.17), 20, 5.0, "")
    assert not paired.futile(v, 200)
    assert paired.futile(v, 20)  # no pair left to take
    wide = paired.PairedVerdict("inconclusive", "p99", 1.0, (0.8, 1.25), 20, 5.0, "")
    assert paired.futile(wide, 25) and paired.futile(wide, 200) and not paired.futile(wide, 2000)
    decided = paired.PairedVerdict("regressed", "p99", 1.10, (1.07, 1.13), 20, 5.0, "")
    assert not paired.futile(decided, 20)


def test_sequential_paces_the_reachable_pairs_by_the_clock() -> None:
    now = [0.0]
    asked: list[int] = []

    def slow(k: int) -> np.ndarray:  # 1 s a pair: a 10 s bound reaches 10 extra pairs, not 180
        asked.append(k)
        now[0] += k
        return np.log(1.1) + np.random.default_rng(len(asked)).normal(0, 0.15, k)

    v = paired.sequential(slow, tolerance_pct=5, first=20, clock=lambda: now[0], initial=slow(20))
    assert v.pairs <= 30 and sum(asked) == v.pairs


