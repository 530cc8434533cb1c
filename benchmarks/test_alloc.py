"""Allocation per request vs a bump-pointer arena vs a buffer pool.

What it shows: each request needs an N-byte buffer, fills it and drops it. With default glibc
a freed block is reused at once, so a fresh ``np.empty`` costs about what reuse costs and the
arena does NOT win at 4 KiB..1 MiB (measured here: see the README). The lesson appears when
allocations go to mmap: above glibc's mmap threshold (128 KiB by default until the dynamic
threshold grows; forced here with ``mallopt(M_MMAP_THRESHOLD)``), every fresh 1 MiB buffer is
a new mapping whose 256 pages fault on first touch and is unmapped on free: there the arena
is expected to win by 10x or more at p50 and p99.

The threshold alone does not make that hold: glibc serves a large request from any free heap
chunk big enough, and earlier tests in the process leave such chunks (issue 23: a 1.7 MB one
left by 200000-sample arrays gave ``fresh_mmap`` 0 faults per call and a 1.0x "speedup").
``mmap_threshold`` takes that memory for the test's duration; the test then checks the
condition before, during (the measurement's own fault counter, block by block) and after the
measurement, and fails naming what did not hold rather than comparing the wrong thing.
"""
from __future__ import annotations

import pytest

from benchmarks.workloads.arena import (
    Arena,
    BufferPool,
    alloc_per_request,
    arena_request,
    fresh_buffer_faults,
    fresh_mapping_shortfall,
    mallopt_supported,
    mmap_threshold,
    pool_request,
)

SIZES = {"4KiB": 4 << 10, "64KiB": 64 << 10, "1MiB": 1 << 20}


@pytest.mark.hostperf(group="alloc")
@pytest.mark.parametrize("size", SIZES)
def test_alloc_vs_arena_vs_pool(hostperf, size):
    n = SIZES[size]
    arena = Arena(4 * n)
    pool = BufferPool(n, 4)
    fresh = hostperf(alloc_per_request, n, name="fresh")
    bump = hostperf(arena_request, arena, n, name="arena")
    pooled = hostperf(pool_request, pool, name="pool")
    for r in (fresh, bump, pooled):
        assert r.p99 >= r.p50


def _require_fresh_mappings(faults_per_call: float, nbytes: int, when: str) -> None:
    why = fresh_mapping_shortfall(faults_per_call, nbytes)
    if why is not None:
        pytest.fail(f"the mmap condition did not hold {when}: {why} (see arena.mmap_threshold); the "
                    "comparison would not be of the mmap path", pytrace=False)


@pytest.mark.hostperf(group="alloc-mmap")
def test_arena_wins_above_mmap_threshold(hostperf):
    ok, why = mallopt_supported()
    if not ok:
        pytest.skip(f"cannot force glibc's mmap threshold: {why}")
    n = 1 << 20
    arena = Arena(2 * n)
    with mmap_threshold(128 << 10) as condition:
        if condition.plugs:
            hostperf.note(f"mmap_threshold held {condition.plugs} free heap blocks "
                          f"({condition.plugged_bytes / 2**20:.1f} MiB) that could have served the fresh buffers")
        _require_fresh_mappings(fresh_buffer_faults(n), n, "before measuring")
        fresh = hostperf(alloc_per_request, n, name="fresh_mmap")
        bump = hostperf(arena_request, arena, n, name="arena")
        _require_fresh_mappings(fresh_buffer_faults(n), n, "after measuring")
    # Block by block, from the measurement itself; no counters in smoke runs, under
    # --hostperf-no-counters or on the paired head: the checks above stand alone there.
    blocks = ((fresh.counters or {}).get("minor_faults") or {}).get("blocks") or []
    if blocks:
        worst = min(range(len(blocks)), key=blocks.__getitem__)
        _require_fresh_mappings(blocks[worst], n, f"while measuring fresh_mmap (block {worst + 1} of {len(blocks)})")
    hostperf.expect_faster(bump, fresh, factor=5, at="p50")
    hostperf.expect_faster(bump, fresh, factor=5, at="p99")
