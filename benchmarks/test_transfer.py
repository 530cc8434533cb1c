"""Pageable vs pinned transfers.

What it shows:
- everywhere (host variant): copying a buffer into freshly mapped pageable memory pays a page
  fault per 4 KiB page on first touch (~2-3 us each here) and the unmap after; copying into a
  locked, pre-faulted buffer pays only the memcpy. Expect the locked copy to win by 10x or
  more at 1 MiB and 16 MiB, and little at 64 KiB.
- with torch and a CUDA device: host-to-device and device-to-host copies from ``pin_memory``
  tensors, or from a /dev/shm segment registered in place (``cudaHostRegister``), skip the
  driver's staging copy and run at full PCIe/NVLink bandwidth; pageable ones are staged. Each
  copy's device time from CUDA events (``timer="cuda"``), 64 KiB to 256 MiB. Skipped, with the
  reason, without torch or CUDA.
"""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.workloads.transfer import (
    MEMORY,
    CudaCopy,
    CudaOverlap,
    LockedBuffer,
    copy_into_fresh,
    copy_into_locked,
    cuda_available,
)

SIZES = {"64KiB": 64 << 10, "1MiB": 1 << 20, "16MiB": 16 << 20}


@pytest.mark.hostperf(group="transfer-host")
@pytest.mark.parametrize("size", SIZES)
def test_host_fresh_vs_locked(hostperf, size):
    n = SIZES[size]
    src = np.ones(n, dtype=np.uint8)
    dst = LockedBuffer.like(src)
    fresh = hostperf(copy_into_fresh, src, name="fresh_pageable")
    locked = hostperf(copy_into_locked, src, dst.array, name="locked_prefaulted")
    if n >= 1 << 20:
        hostperf.expect_faster(locked, fresh, factor=3, at="p50")


def _cuda_or_skip() -> None:
    ok, why = cuda_available()
    if not ok:
        pytest.skip(f"GPU transfer variant needs torch with a CUDA device: {why}")


CUDA_SIZES = {**SIZES, "256MiB": 256 << 20}


@pytest.mark.hostperf(group="transfer-cuda")
@pytest.mark.parametrize("direction", ["h2d", "d2h"])
@pytest.mark.parametrize("size", CUDA_SIZES)
def test_cuda_pageable_vs_pinned_vs_registered(hostperf, size, direction):
    """Each copy's device time (CUDA events, timer="cuda"); pinned and registered memory skip
    the driver's staging copy, so from 1 MiB up they beat pageable memory at p50."""
    _cuda_or_skip()
    n = CUDA_SIZES[size]
    samples = 200 if n >= 256 << 20 else None  # 256 MiB copies take ~10-40 ms each
    got = {}
    for memory in MEMORY:
        copy = CudaCopy(n, memory=memory, direction=direction)
        try:
            got[memory] = hostperf(copy, name=memory, timer="cuda", samples=samples)
        finally:
            copy.close()  # a registered /dev/shm segment is unregistered and unlinked
    if n >= 1 << 20:
        hostperf.expect_faster(got["pinned"], got["pageable"], factor=1.2, at="p50")
        hostperf.expect_faster(got["registered"], got["pageable"], factor=1.2, at="p50")
    for memory, r in got.items():
        hostperf.note(f"{direction} {size} {memory}: {n / r.p50:.1f} GB/s at p50")


@pytest.mark.hostperf(group="transfer-cuda")
def test_cuda_non_blocking_overlap(hostperf):
    _cuda_or_skip()
    serial = hostperf(CudaOverlap(16 << 20, pinned=True, overlap=False), name="serial", timer="cuda")
    overlapped = hostperf(CudaOverlap(16 << 20, pinned=True, overlap=True), name="overlapped", timer="cuda")
    hostperf.expect_faster(overlapped, serial, factor=1.05, at="p50")
