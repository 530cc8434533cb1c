from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, precondition, rule

from benchmarks.workloads.arena import (
    Arena,
    ArenaExhausted,
    BufferPool,
    PoolExhausted,
    alloc_per_request,
    arena_request,
    fresh_buffer_faults,
    fresh_mapping_shortfall,
    malloc_env,
    mallopt_supported,
    minor_faults,
    pool_request,
    startup_top_pad,
)
from pytest_hostperf.errors import HostperfError, InvalidArgument

REPO = Path(__file__).resolve().parents[2]


def _span(a: np.ndarray) -> tuple[int, int]:
    start = a.ctypes.data
    return start, start + a.nbytes


def _round_up(n: int, align: int) -> int:
    return -(-n // align) * align


# --- Arena -------------------------------------------------------------------------------------


def test_alloc_is_aligned_and_inside_the_buffer() -> None:
    arena = Arena(1 << 16)
    lo, hi = _span(arena.buffer)
    for n in (1, 3, 64, 65, 100, 4096):
        a = arena.alloc(n)
        assert a.ctypes.data % 64 == 0
        assert a.nbytes == n and a.dtype == np.uint8
        s, e = _span(a)
        assert lo <= s and e <= hi


def test_alloc_with_dtype_and_empty() -> None:
    arena = Arena(1 << 16)
    f = arena.alloc(80, np.float64)
    assert f.dtype == np.float64 and f.shape == (10,)
    m = arena.empty((4, 8), np.float32)
    assert m.shape == (4, 8) and m.ctypes.data % 64 == 0
    with pytest.raises(InvalidArgument, match="multiple of"):
        arena.alloc(12, np.float64)


def test_reset_frees_everything_and_reuses_the_same_memory() -> None:
    arena = Arena(4096)
    first = arena.alloc(1000)
    arena.alloc(1000)
    assert arena.used == _round_up(1000, 64) * 2
    arena.reset()
    assert arena.used == 0 and arena.remaining == 4096
    assert arena.alloc(10).ctypes.data == first.ctypes.data
    assert arena.high_water == 2 * _round_up(1000, 64)


def test_exhaustion_names_the_numbers_and_the_fix() -> None:
    arena = Arena(1000)
    arena.alloc(600)
    with pytest.raises(ArenaExhausted) as info:
        arena.alloc(500)
    msg = str(info.value)
    assert "requested 500 bytes" in msg and "640 of 1000" in msg
    assert "capacity_bytes" in msg and "reset()" in msg
    assert isinstance(info.value, MemoryError) and isinstance(info.value, HostperfError)
    assert arena.used == 640  # a failed alloc changes nothing


@pytest.mark.parametrize("bad", [0, -1, 1.5, "64"])
def test_bad_capacity(bad: object) -> None:
    with pytest.raises(InvalidArgument, match="capacity_bytes"):
        Arena(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, 3, 48, -64])
def test_bad_alignment(bad: int) -> None:
    with pytest.raises(InvalidArgument, match="power of two"):
        Arena(1024, alignment=bad)


def test_negative_alloc_is_invalid() -> None:
    with pytest.raises(InvalidArgument):
        Arena(1024).alloc(-1)


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.integers(1, 1 << 14),
    alignment=st.sampled_from([1, 8, 64, 256, 4096]),
    sizes=st.lists(st.integers(0, 5000), max_size=40),
)
def test_allocations_never_overlap_and_exhaust_exactly_when_full(capacity: int, alignment: int,
                                                                 sizes: list[int]) -> None:
    arena = Arena(capacity, alignment=alignment)
    lo, hi = _span(arena.buffer)
    live: list[tuple[int, int]] = []
    offset = 0  # the model: a bump pointer rounded up to the alignment
    for n in sizes:
        if offset + n > capacity:
            with pytest.raises(ArenaExhausted):
                arena.alloc(n)
            continue
        a = arena.alloc(n)
        assert a.nbytes == n
        if n:  # an empty view's address means nothing (numpy may point it anywhere)
            s, e = _span(a)
            assert s % alignment == 0 and lo <= s and e <= hi
            assert s - lo == offset
            assert all(e <= ls or s >= le for ls, le in live)
            live.append((s, e))
        offset = _round_up(offset + n, alignment)
        assert arena.used == offset


class ArenaMachine(RuleBasedStateMachine):
    """Live allocations hold distinct byte patterns; none may ever clobber another."""

    def __init__(self) -> None:
        super().__init__()
        self.arena = Arena(8192, alignment=64)
        self.live: list[tuple[np.ndarray, int]] = []
        self.tag = 0

    @rule(n=st.integers(1, 3000))
    def alloc(self, n: int) -> None:
        if self.arena.used + n > self.arena.capacity:
            with pytest.raises(ArenaExhausted):
                self.arena.alloc(n)
            return
        buf = self.arena.alloc(n)
        assert buf.ctypes.data % 64 == 0
        self.tag = self.tag % 255 + 1
        buf.fill(self.tag)
        self.live.append((buf, self.tag))

    @rule()
    def reset(self) -> None:
        self.arena.reset()
        self.live.clear()

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def rewrite_one(self, data: st.DataObject) -> None:
        i = data.draw(st.integers(0, len(self.live) - 1))
        buf, _ = self.live[i]
        self.tag = self.tag % 255 + 1
        buf.fill(self.tag)
        self.live[i] = (buf, self.tag)

    @invariant()
    def no_overlap(self) -> None:
        for buf, tag in self.live:
            assert (buf == tag).all()

    @invariant()
    def accounting(self) -> None:
        assert 0 <= self.arena.used <= _round_up(self.arena.capacity, 64)
        assert self.arena.remaining == self.arena.capacity - self.arena.used


ArenaMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)
TestArenaMachine = ArenaMachine.TestCase


# --- BufferPool --------------------------------------------------------------------------------


def test_pool_lends_aligned_disjoint_buffers_and_exhausts_clearly() -> None:
    pool = BufferPool(1000, count=3)
    bufs = [pool.borrow() for _ in range(3)]
    spans = sorted(_span(b) for b in bufs)
    assert all(b.nbytes == 1000 and b.ctypes.data % 64 == 0 for b in bufs)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(2))
    with pytest.raises(PoolExhausted, match="all 3 buffers of 1000 bytes are borrowed") as info:
        pool.borrow()
    assert isinstance(info.value, MemoryError)
    for b in bufs:
        pool.give_back(b)
    assert pool.available == 3


def test_pool_rejects_foreign_sliced_and_double_returns() -> None:
    pool = BufferPool(64, count=2)
    with pytest.raises(InvalidArgument, match="does not belong"):
        pool.give_back(np.empty(64, np.uint8))
    b = pool.borrow()
    with pytest.raises(InvalidArgument, match="does not belong"):
        pool.give_back(b[:10])
    pool.give_back(b)
    with pytest.raises(InvalidArgument, match="already given back"):
        pool.give_back(b)
    other = BufferPool(64, count=1)
    with pytest.raises(InvalidArgument, match="does not belong"):
        pool.give_back(other.borrow())


def test_pool_borrowed_context_gives_back_on_error() -> None:
    pool = BufferPool(64, count=1)
    with pytest.raises(RuntimeError), pool.borrowed():
        raise RuntimeError("boom")
    assert pool.available == 1


class PoolMachine(RuleBasedStateMachine):
    out = Bundle("out")

    def __init__(self) -> None:
        super().__init__()
        self.pool = BufferPool(128, count=4)
        self.n_out = 0

    @rule(target=out)
    def borrow(self) -> object:
        if self.n_out == 4:
            with pytest.raises(PoolExhausted):
                self.pool.borrow()
            return None
        b = self.pool.borrow()
        self.n_out += 1
        b.fill(self.n_out)
        return b

    @rule(b=consumes(out))
    def give_back(self, b: np.ndarray | None) -> None:
        if b is None:
            return
        self.pool.give_back(b)
        self.n_out -= 1

    @invariant()
    def count(self) -> None:
        assert self.pool.available == 4 - self.n_out


PoolMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
TestPoolMachine = PoolMachine.TestCase


# --- request functions and the malloc condition ------------------------------------------------


def test_request_functions_leave_arena_and_pool_as_found() -> None:
    arena, pool = Arena(1 << 16), BufferPool(4096, count=2)
    for _ in range(3):
        assert alloc_per_request(4096) is None
        arena_request(arena, 4096)
        pool_request(pool)
    assert arena.used == 0 and pool.available == 2
    assert (pool.borrow() == 0x5A).all()


def test_arena_request_is_fault_free_after_creation() -> None:
    arena = Arena(1 << 20)
    arena_request(arena, 1 << 20)
    before = minor_faults()
    for _ in range(20):
        arena_request(arena, 1 << 20)
    assert minor_faults() - before < 20  # pre-faulted: no page fault per request


def test_malloc_env_sets_the_glibc_knob() -> None:
    env = malloc_env(131072, base={"A": "1"})
    assert env == {"A": "1", "MALLOC_MMAP_THRESHOLD_": "131072"}


@pytest.mark.skipif(not mallopt_supported()[0], reason="needs glibc mallopt")
def test_mmap_threshold_makes_fresh_buffers_fault_and_restores_reuse() -> None:
    # In a subprocess: mallopt changes this process's allocator for good (see the docstring).
    code = textwrap.dedent(
        """
        from benchmarks.workloads.arena import alloc_per_request, minor_faults, mmap_threshold
        def faults(n=20):
            for _ in range(3):  # glibc moves its dynamic threshold after the first free
                alloc_per_request(1 << 20)
            f0 = minor_faults()
            for _ in range(n):
                alloc_per_request(1 << 20)
            return (minor_faults() - f0) / n
        print(faults())
        with mmap_threshold(131072):
            print(faults())
        print(faults())
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["PYTHONPATH"] = str(REPO)  # this checkout, whatever is installed
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=env, check=True).stdout.split()
    before, inside, after = map(float, out)
    assert before < 5 and after < 5  # freed blocks reused: no faults
    assert inside > 200  # 1 MiB = 256 fresh pages, each faulted in


def _run_fresh(code: str, **env_vars: str) -> list[str]:
    """Run ``code`` in a fresh interpreter with glibc's malloc at its defaults plus ``env_vars``
    (mallopt changes a process's allocator for good); its stdout, split."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env.update(env_vars, PYTHONPATH=str(REPO))  # this checkout, whatever is installed
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


# Leaves a free 8 MB chunk in the main heap below a live block, as earlier code in a process can
# (issue 23: a test's 200000-sample arrays left 1.7 MB): glibc never trims it, as it does not
# border the top, and serves any large request from it whatever M_MMAP_THRESHOLD says.
POISON = """
import numpy as np
from benchmarks.workloads import _libc
from benchmarks.workloads.arena import M_MMAP_THRESHOLD, _Heap, fresh_buffer_faults, mmap_threshold
big = np.empty(30 << 20, np.uint8); big[::4096] = 1; del big  # mmapped and freed: the dynamic threshold rises
hole = np.empty(8_000_000, np.uint8); hole.fill(1)             # so this one comes from the heap
live = np.empty(1_500_000, np.uint8)                          # no free chunk holds it: from the top, above the hole
del hole
"""


@pytest.mark.skipif(not mallopt_supported()[0], reason="needs glibc mallopt")
def test_mmap_threshold_holds_after_the_heap_was_grown_and_freed() -> None:
    code = """
    heap = _Heap.of(_libc.load())
    _libc.load().mallopt(M_MMAP_THRESHOLD, 131072)  # the threshold alone, as before issue 23
    print(fresh_buffer_faults(1 << 20))
    used = heap.info().uordblks
    with mmap_threshold(131072) as condition:
        print(fresh_buffer_faults(1 << 20), condition.plugs)
    print(fresh_buffer_faults(1 << 20), heap.info().uordblks - used)
    """
    out = _run_fresh(POISON + textwrap.dedent(code))
    threshold_alone, inside, plugs, after, still_used = map(float, out)
    assert threshold_alone < 5  # the poison works: the hole serves every fresh 1 MiB buffer
    assert inside > 200  # 1 MiB = 256 fresh pages, each faulted in: a new mapping every time
    assert plugs >= 8_000_000 // 131072 - 1  # the hole, taken in 128 KiB blocks
    assert after < 5  # freed blocks reused again after the block...
    assert abs(still_used) < 1 << 20  # ...and the memory held is given back


@pytest.mark.skipif(not mallopt_supported()[0], reason="needs glibc mallopt")
def test_mmap_threshold_holds_where_the_environment_raised_the_top_pad() -> None:
    # A 64 MiB M_TOP_PAD leaves 64 MiB in the top chunk after the next sbrk: fresh buffers would
    # come from there. The 120 KB blocks (under the threshold) make the heap grow with sbrk.
    code = """
    import numpy as np
    from benchmarks.workloads.arena import fresh_buffer_faults, mmap_threshold
    with mmap_threshold(131072):
        keep = [np.empty(120_000, np.uint8) for _ in range(200)]
        print(fresh_buffer_faults(1 << 20))
    """
    (inside,) = map(float, _run_fresh(code, MALLOC_TOP_PAD_=str(64 << 20)))
    assert inside > 200


@pytest.mark.skipif(not mallopt_supported()[0], reason="needs glibc mallopt")
def test_mmap_threshold_says_when_glibc_does_not_mmap_at_all() -> None:
    code = """
    from benchmarks.workloads.arena import MallocConditionError, mmap_threshold
    try:
        with mmap_threshold(131072):
            print("entered")
    except MallocConditionError as exc:
        print(str(exc).replace(" ", "_"))
    """
    (out,) = _run_fresh(code, MALLOC_MMAP_MAX_="0")
    assert "none_by_mmap" in out and "M_MMAP_MAX=0" in out


def test_fresh_mapping_shortfall_names_the_faults_and_the_pages() -> None:
    assert fresh_mapping_shortfall(257.0, 1 << 20, page_size=4096) is None
    assert fresh_mapping_shortfall(128.0, 1 << 20, page_size=4096) is None  # half the pages: still fresh
    why = fresh_mapping_shortfall(0.0, 1 << 20, page_size=4096)
    assert why is not None
    assert "took 0.0 minor page faults per call" in why and "about 256 (one per 4096-byte page)" in why


def test_fresh_buffer_faults_is_per_call() -> None:
    readings = iter([100, 116])
    assert fresh_buffer_faults(4096, calls=8, faults=lambda: next(readings)) == 2.0


@pytest.mark.parametrize(("env", "pad"), [
    ({}, 128 * 1024),
    ({"MALLOC_TOP_PAD_": "65536"}, 65536),
    ({"GLIBC_TUNABLES": "glibc.malloc.check=0:glibc.malloc.top_pad=0x100000", "MALLOC_TOP_PAD_": "1"}, 1 << 20),
    ({"GLIBC_TUNABLES": "glibc.malloc.top_pad=lots", "MALLOC_TOP_PAD_": "4096"}, 4096),
    ({"MALLOC_TOP_PAD_": str(1 << 40)}, 2**31 - 1),  # mallopt takes an int
])
def test_startup_top_pad(env: dict[str, str], pad: int) -> None:
    assert startup_top_pad(env) == pad


def test_mmap_threshold_validates() -> None:
    from benchmarks.workloads.arena import mmap_threshold

    with pytest.raises(InvalidArgument), mmap_threshold(0):
        pass
