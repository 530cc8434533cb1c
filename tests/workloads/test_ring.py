from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from benchmarks.workloads.ipc import sweep_stale
from benchmarks.workloads.ring import ProcessPingPong, Ring, RingTimeout, ThreadPingPong, required_bytes
from pytest_hostperf.errors import HostperfError, InvalidArgument, MeasurementError

REPO = Path(__file__).resolve().parents[2]
M64 = (1 << 64) - 1


items = st.one_of(st.integers(-(1 << 63), (1 << 63) - 1), st.binary(max_size=16))


# --- single-threaded behaviour -----------------------------------------------------------------


def test_layout_puts_head_and_tail_on_their_own_lines() -> None:
    r = Ring(4, 56)
    assert required_bytes(4, 56) == 192 + 4 * 64
    r.try_push(7)
    # head at byte 0, tail at byte 64, first slot tag at 192
    assert r._u64[0] == 0 and r._u64[8] == 1
    assert r._mv.nbytes == required_bytes(4, 56)


def test_full_and_empty() -> None:
    r = Ring(2, 8)
    assert r.try_pop() is None and len(r) == 0
    assert r.try_push(1) and r.try_push(b"x")
    assert not r.try_push(3) and len(r) == 2
    assert r.try_pop() == 1 and r.try_pop() == b"x" and r.try_pop() is None


def test_zero_and_empty_bytes_are_items() -> None:
    r = Ring(4, 8)
    r.try_push(0)
    r.try_push(b"")
    assert r.try_pop() == 0 and r.try_pop() == b""


def test_rejected_items_change_nothing() -> None:
    r = Ring(2, 8)
    with pytest.raises(InvalidArgument, match="9 bytes do not fit a slot of 8"):
        r.try_push(b"123456789")
    with pytest.raises(InvalidArgument, match="int64"):
        r.try_push(1 << 63)
    assert len(r) == 0 and r.try_pop() is None


@pytest.mark.parametrize(("capacity", "slot"), [(3, 8), (0, 8), (4, 4), (4, "8")])
def test_bad_shapes(capacity: int, slot: object) -> None:
    with pytest.raises(InvalidArgument):
        Ring(capacity, slot)  # type: ignore[arg-type]


def test_timeouts_are_bounded() -> None:
    r = Ring(1, 8)
    t0 = time.monotonic()
    with pytest.raises(RingTimeout, match="ring empty"):
        r.pop(timeout=0.02)
    r.push(1, timeout=0.02)
    with pytest.raises(RingTimeout, match="ring full"):
        r.push(2, timeout=0.02)
    assert time.monotonic() - t0 < 5


def test_closed_ring_raises_instead_of_crashing() -> None:
    r = Ring(2, 8)
    r.close()
    with pytest.raises(HostperfError, match="closed"):
        r.try_push(1)


@settings(max_examples=200, deadline=None)
@given(capacity=st.sampled_from([1, 2, 4, 8]),
       start=st.one_of(st.just(0), st.integers(M64 - 20, M64)),
       ops=st.lists(st.one_of(st.just(None), items), max_size=60))
def test_behaves_like_a_bounded_fifo(capacity: int, start: int, ops: list[object]) -> None:
    """None pops, anything else pushes; compared with a deque (also across the 2**64 wrap)."""
    ring = Ring(capacity, 16, start_index=start)
    model: collections.deque[object] = collections.deque()
    for op in ops:
        if op is None:
            assert ring.try_pop() == (model.popleft() if model else None)
        else:
            ok = ring.try_push(op)  # type: ignore[arg-type]
            assert ok == (len(model) < capacity)
            if ok:
                model.append(op)
        assert len(ring) == len(model)


class RingMachine(RuleBasedStateMachine):
    """FIFO order, no loss, no duplication, wrap-around of slots and of the 64-bit counters."""

    @initialize(capacity=st.sampled_from([1, 2, 4, 8, 16]),
                start=st.one_of(st.just(0), st.integers(M64 - 40, M64)),
                slot=st.sampled_from([8, 16, 56]))
    def setup(self, capacity: int, start: int, slot: int) -> None:
        self.ring = Ring(capacity, slot, start_index=start)
        self.capacity = capacity
        self.slot = slot
        self.model: collections.deque[object] = collections.deque()
        self.pushed = 0
        self.popped: list[object] = []

    @rule(data=st.data())
    def push(self, data: st.DataObject) -> None:
        # Unique ints interleaved with bytes: duplicates or losses show up as a gap or repeat.
        item: object = self.pushed if data.draw(st.booleans()) else self.pushed.to_bytes(8, "little")[: self.slot]
        ok = self.ring.try_push(item)  # type: ignore[arg-type]
        assert ok == (len(self.model) < self.capacity)
        if ok:
            self.model.append(item)
            self.pushed += 1

    @rule()
    def pop(self) -> None:
        got = self.ring.try_pop()
        assert got == (self.model.popleft() if self.model else None)
        if got is not None:
            self.popped.append(got)

    @rule()
    def fill_then_drain(self) -> None:
        while self.ring.try_push(self.pushed):
            self.model.append(self.pushed)
            self.pushed += 1
        assert len(self.model) == self.capacity
        while (got := self.ring.try_pop()) is not None:
            assert got == self.model.popleft()
            self.popped.append(got)
        assert not self.model

    @invariant()
    def consistent(self) -> None:
        assert len(self.ring) == len(self.model)
        seq = [int.from_bytes(x, "little") if isinstance(x, bytes) else x for x in self.popped]
        assert seq == list(range(len(seq)))  # in order, each exactly once


RingMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=50, deadline=None)
TestRingMachine = RingMachine.TestCase


# --- threads -----------------------------------------------------------------------------------


def test_two_threads_lose_nothing_and_keep_order() -> None:
    ring = Ring(4, 8)  # small: the producer hits "full" and wraps many times
    n = 3000
    got: list[object] = []

    def consume() -> None:
        for _ in range(n):
            got.append(ring.pop(timeout=5))

    t = threading.Thread(target=consume)
    t.start()
    for i in range(n):
        ring.push(i, timeout=5)
    t.join(10)
    assert not t.is_alive()
    assert got == list(range(n))


@pytest.mark.parametrize("kind", ["ring", "queue"])
def test_thread_pingpong(kind: str) -> None:
    with ThreadPingPong(kind) as pp:
        for _ in range(300):
            pp.roundtrip()
        thread = pp._thread
    assert thread is not None and not thread.is_alive()
    with pytest.raises(MeasurementError, match="after its with-block"):
        pp.roundtrip()


def test_thread_pingpong_rejects_unknown_kind() -> None:
    with pytest.raises(InvalidArgument, match="'ring' or 'queue'"):
        ThreadPingPong("deque")


# --- processes ---------------------------------------------------------------------------------

PRODUCER = textwrap.dedent(
    """
    import sys
    from benchmarks.workloads.ring import Ring
    ring = Ring.attach(sys.argv[1])
    for i in range(int(sys.argv[2])):
        ring.push(i if i % 3 else i.to_bytes(4, "little"), timeout=10)
    ring.close_producer()
    ring.close()
    """
)


def test_items_pushed_by_another_process_arrive_in_order(no_leftovers: None) -> None:
    n = 5000
    with Ring.create_shared(8, 8) as ring:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        child = subprocess.Popen([sys.executable, "-c", PRODUCER, ring.name, str(n)], env=env)
        try:
            got = [ring.pop(timeout=30) for _ in range(n)]
            assert child.wait(timeout=30) == 0
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(5)
        assert ring.closed and ring.try_pop() is None
    want = [i if i % 3 else i.to_bytes(4, "little") for i in range(n)]
    assert got == want


def test_attach_refuses_foreign_segment(no_leftovers: None, tmp_path: Path) -> None:
    from benchmarks.workloads.ipc import resource_name

    name = resource_name("junk")
    path = Path("/dev/shm", name)
    path.write_bytes(bytes(4096))
    try:
        with pytest.raises(HostperfError, match="bad magic"):
            Ring.attach(name)
    finally:
        path.unlink()


@pytest.mark.parametrize("kind", ["ring", "mpqueue"])
def test_process_pingpong_cleans_up(kind: str, no_leftovers: None) -> None:
    with ProcessPingPong(kind) as pp:
        for _ in range(300):
            pp.roundtrip()
        if kind == "ring":
            assert len(pp.names) == 2 and all(Path("/dev/shm", n).exists() for n in pp.names)
        proc = pp._proc
    assert proc.exitcode == 0  # left by itself on the stop signal, not killed


@pytest.mark.parametrize("kind", ["ring", "mpqueue"])
def test_killed_child_is_a_measurement_error_naming_its_pid(kind: str, no_leftovers: None) -> None:
    with ProcessPingPong(kind, timeout_s=2.0) as pp:
        pid = pp.pid
        assert pid is not None
        killer = threading.Timer(0.1, os.kill, (pid, signal.SIGKILL))
        killer.start()
        t0 = time.monotonic()
        with pytest.raises(MeasurementError, match=rf"pid {pid} died of signal SIGKILL"):
            while time.monotonic() - t0 < 10:  # bounded: the kill lands after 0.1 s
                pp.roundtrip()
        killer.join()
        assert time.monotonic() - t0 < 5
        with pytest.raises(MeasurementError):  # broken from then on
            pp.roundtrip()


def test_child_is_pinned_and_the_caller_is_not(no_leftovers: None) -> None:
    mine = os.sched_getaffinity(0)
    cpu = max(mine)
    with ProcessPingPong("ring", cpus=(min(mine), cpu)) as pp:
        assert os.sched_getaffinity(pp.pid) == {cpu}
        pp.roundtrip()
    assert os.sched_getaffinity(0) == mine


def test_same_cpu_pair_works(no_leftovers: None) -> None:
    cpu = max(os.sched_getaffinity(0))
    with ProcessPingPong("ring", cpus=(cpu, cpu)) as pp:
        for _ in range(50):
            pp.roundtrip()


def test_bad_cpus_are_invalid() -> None:
    with pytest.raises(InvalidArgument, match="not online"):
        ProcessPingPong("ring", cpus=(0, 4096))
    with pytest.raises(InvalidArgument, match="pair"):
        ProcessPingPong("ring", cpus=(0,))  # type: ignore[arg-type]


ORPHAN_PARENT = textwrap.dedent(
    """
    import os
    from benchmarks.workloads.ring import ProcessPingPong
    pp = ProcessPingPong("ring", start_method="fork").__enter__()
    pp.roundtrip()
    print(pp.pid, *pp.names, flush=True)
    os._exit(0)  # die without cleaning up: the child is orphaned, the segments stale
    """
)

# The driver adopts the orphan (a child subreaper), so it can reap it and say whether it left
# by itself; nothing is left to pid 1, which may never reap zombies in a container.
ORPHAN_DRIVER = textwrap.dedent(
    """
    import ctypes, os, subprocess, sys, time
    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    out = subprocess.run([sys.executable, "-c", sys.argv[1]], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    child = int(out[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if os.waitpid(child, os.WNOHANG)[0]:
            print("exited", *out[1:])
            break
        time.sleep(0.01)
    else:
        os.kill(child, 9)
        os.waitpid(child, 0)
        print("stuck", *out[1:])
    """
)


def test_orphaned_child_exits_and_sweep_removes_the_stale_segments() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", ORPHAN_DRIVER, ORPHAN_PARENT], env=env, capture_output=True,
                         text=True, timeout=90, check=True).stdout.split()
    verdict, names = out[0], out[1:]
    try:
        assert verdict == "exited", "the orphaned echo child kept running after its parent died"
        assert len(names) == 2 and all(Path("/dev/shm", n).exists() for n in names)
        removed = {p.name for p in sweep_stale()}
        assert set(names) <= removed
        assert not any(Path("/dev/shm", n).exists() for n in names)
    finally:
        for n in names:
            Path("/dev/shm", n).unlink(missing_ok=True)
