"""Pageable vs pinned transfers.

What it shows:
- everywhere (host variant): copying a buffer into freshly mapped pageable memory pays a page
  fault per 4 KiB page on first touch (~2-3 us each here) and the unmap after; copying into a
  locked, pre-faulted buffer pays only the memcpy. Expect the locked copy to win by 10x or
  more at 1 MiB and 16 MiB, and little at 64 KiB.
- with torch and a CUDA device: host-to-device and device-to-host copies from ``pin_memory``
  tensors skip the driver's staging copy and run at full PCIe/NVLink bandwidth; pageable ones
  are staged. Timed with CUDA events. Skipped, with the reason, without torch or CUDA.
"""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.workloads.transfer import (
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


@pytest.mark.hostperf(group="transfer-cuda")
@pytest.mark.parametrize("direction", ["h2d", "d2h"])
@pytest.mark.parametrize("size", SIZES)
def test_cuda_pageable_vs_pinned(hostperf, size, direction):
    _cuda_or_skip()
    n = SIZES[size]
    pageable = hostperf(CudaCopy(n, pinned=False, direction=direction), name="pageable", self_timed=True)
    pinned = hostperf(CudaCopy(n, pinned=True, direction=direction), name="pinned", self_timed=True)
    if n >= 1 << 20:
        hostperf.expect_faster(pinned, pageable, factor=1.2, at="p50")


@pytest.mark.hostperf(group="transfer-cuda")
def test_cuda_non_blocking_overlap(hostperf):
    _cuda_or_skip()
    serial = hostperf(CudaOverlap(16 << 20, pinned=True, overlap=False), name="serial", self_timed=True)
    overlapped = hostperf(CudaOverlap(16 << 20, pinned=True, overlap=True), name="overlapped", self_timed=True)
    hostperf.expect_faster(overlapped, serial, factor=1.05, at="p50")
