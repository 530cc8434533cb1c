"""Per-call device time from CUDA events: ``hostperf(fn, ..., timer="cuda")``.

Each call is bracketed by a pair of CUDA events recorded on the current stream, taken from a
ring made before the block starts (no event, list or other Python object is made in the timed
loop: ``record()`` on a preallocated event only enqueues a marker). The host's wall time of
each call (what it cost the caller to issue the work) is read with the host clock around the
same call. Once a block's calls are issued the host waits for the block's last event, once
per block, not per call, then reads each pair's elapsed time: ``elapsed_time`` is the time
between the two markers on the device, the call's device time.

torch is imported only here and only when asked (``cuda_surface``); tests drive this module
through a fake surface with the same four names (``Event(enable_timing=True)``, ``record``,
``synchronize``, ``elapsed_time``).
"""
from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from pytest_hostperf.errors import InvalidArgument

#: The timers ``hostperf(fn, ..., timer=...)`` takes.
TIMERS = ("wall", "cuda")
#: The fix named when a CUDA timer is asked for where there is none.
CUDA_FIX = ("run it on a machine with an NVIDIA GPU and a CUDA build of torch (pip install "
            "'pytest-hostperf[cuda]'), or time it on the host: drop timer='cuda'")


class Event(Protocol):
    def record(self, stream: Any = None) -> None: ...

    def synchronize(self) -> None: ...

    def elapsed_time(self, end: Any) -> float: ...


class CudaSurface(Protocol):
    """What hostperf uses of ``torch.cuda``."""

    def Event(self, enable_timing: bool = False) -> Event: ...  # noqa: N802 (torch's name)

    def synchronize(self) -> None: ...


def cuda_surface() -> CudaSurface:
    """``torch.cuda`` when a CUDA device is usable; else an ``InvalidArgument`` naming what is
    missing and the fix."""
    try:
        import torch
    except ImportError:
        raise InvalidArgument(f"hostperf(..., timer='cuda'): torch is not installed; {CUDA_FIX}") from None
    if not torch.cuda.is_available():
        raise InvalidArgument(f"hostperf(..., timer='cuda'): torch {torch.__version__} sees no CUDA device "
                              f"(torch.cuda.is_available() is False); {CUDA_FIX}")
    return torch.cuda  # type: ignore[no-any-return]


class EventRing:
    """``size`` pairs of timing events, made once: a block of up to ``size`` calls records into
    them in order, and :meth:`elapsed_ns` reads the first ``n`` pairs after one wait."""

    def __init__(self, cuda: CudaSurface, size: int) -> None:
        if size < 1:
            raise InvalidArgument(f"EventRing: size must be >= 1, got {size}")
        self.cuda = cuda
        self.starts = [cuda.Event(enable_timing=True) for _ in range(size)]
        self.ends = [cuda.Event(enable_timing=True) for _ in range(size)]

    @property
    def size(self) -> int:
        return len(self.starts)

    def elapsed_ns(self, n: int) -> np.ndarray:
        """The device time of the first ``n`` pairs, in ns: one wait for the last one, then reads."""
        if n <= 0:
            return np.empty(0)
        self.ends[n - 1].synchronize()
        ms = [s.elapsed_time(e) for s, e in zip(self.starts[:n], self.ends[:n])]
        return np.asarray(ms, dtype=np.float64) * 1e6


def block_cuda(fn: Callable[..., Any], args: tuple[Any, ...], ring: EventRing, wall: array[int], start: int,
               stop: int, deadline: int, clock: Callable[[], int]) -> int:
    """Issue calls ``start..stop`` (at most ``ring.size``), each between its pair of events, its
    host wall time into ``wall``; stop at ``deadline`` (host clock). Returns the index reached.
    Kept apart from the host-timed loops: the event records are its only extra work per call."""
    starts, ends = ring.starts, ring.ends
    i = start
    j = 0
    stop = min(stop, start + ring.size)
    while i < stop:
        s = starts[j]
        e = ends[j]
        t0 = clock()
        s.record()
        fn(*args)
        e.record()
        t1 = clock()
        wall[i] = t1 - t0
        i += 1
        j += 1
        if t1 >= deadline:
            break
    return i
