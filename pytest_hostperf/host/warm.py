"""Warm-up before measuring: call the function a bounded number of times, then read one
byte of every cache line of the buffers it will use, so the first measured calls do not pay
for cold caches, TLB misses and first-touch page faults.

Importing this module is cheap: numpy is imported only when buffers are touched.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_hostperf.errors import InvalidArgument

__all__ = ["WarmRecord", "warm"]


@dataclass(frozen=True, slots=True)
class WarmRecord:
    """What :func:`warm` did."""

    calls: int
    bytes_touched: int
    seconds: float


def warm(
    fn: Callable[..., object] | None = None,
    *args: object,
    calls: int = 100,
    max_seconds: float = 0.5,
    buffers: Sequence[object] = (),
    clock: Callable[[], float] = time.perf_counter,
) -> WarmRecord:
    """Call ``fn(*args)`` up to ``calls`` times and for at most about ``max_seconds``, then
    read one byte of every 64-byte cache line of each buffer.

    Buffers are anything with the buffer protocol (numpy arrays, bytes, bytearray,
    memoryview, mmap), contiguous or strided, read-only or not; they are only read.
    At least one call is made when ``fn`` is given and ``calls >= 1``.

    >>> warm(len, b"abc", calls=3).calls
    3
    """
    if calls < 0 or max_seconds < 0:
        raise InvalidArgument(f"warm: calls ({calls}) and max_seconds ({max_seconds}) "
                              "must not be negative")
    t0 = clock()
    made = 0
    if fn is not None:
        deadline = t0 + max_seconds
        while made < calls:
            fn(*args)
            made += 1
            if clock() >= deadline:
                break
    touched = 0
    for buf in buffers:
        touched += _touch(buf)
    return WarmRecord(calls=made, bytes_touched=touched, seconds=clock() - t0)


_LINE = 64


def flat_bytes(buf: object) -> Any:
    """A C-contiguous buffer's bytes as a flat uint8 numpy array (a view: nothing is copied)."""
    import numpy as np  # numpy: loaded where used, so importing the host layer stays cheap

    mv = buf if isinstance(buf, memoryview) else memoryview(buf)  # type: ignore[arg-type]
    return np.frombuffer(mv.cast("B") if mv.ndim != 1 or mv.format != "B" else mv, dtype=np.uint8)


def _touch(buf: object) -> int:
    """Read one byte per cache line of ``buf``'s memory; return the bytes covered."""
    import ctypes  # loaded on first use: importing the host layer stays cheap

    import numpy as np  # numpy: loaded where used, so importing the host layer stays cheap

    mv = buf if isinstance(buf, memoryview) else memoryview(buf)  # type: ignore[arg-type]
    if mv.nbytes == 0:
        return 0
    if mv.c_contiguous:
        return _touch_flat(np, flat_bytes(mv))
    # Strided: touch the whole span between the lowest and highest byte, which lies
    # inside the exporter's allocation. Copying instead would evict what we warm.
    arr: Any = buf if isinstance(buf, np.ndarray) else None
    if arr is None:
        if len(mv.format.lstrip("@=<>!")) == 1:  # a plain scalar format numpy maps exactly
            with contextlib.suppress(TypeError, ValueError):
                arr = np.asarray(mv)
        if arr is None or arr.itemsize != mv.itemsize:
            # numpy cannot describe this exporter's layout, so its byte bounds cannot be
            # trusted: read it by copying instead (rare: strided ctypes structures).
            mv.tobytes()
            return mv.nbytes
    try:
        from numpy.lib.array_utils import byte_bounds  # numpy >= 2.0
    except ImportError:  # pragma: no cover - numpy 1.x
        byte_bounds = np.byte_bounds  # type: ignore[attr-defined]
    lo, hi = byte_bounds(arr)
    span = (ctypes.c_uint8 * (hi - lo)).from_address(lo)
    _touch_flat(np, np.frombuffer(memoryview(span), dtype=np.uint8))
    return hi - lo


def _touch_flat(np: Any, flat: Any) -> int:
    # One byte per 64-byte step plus the last byte: a start that is not line-aligned
    # would otherwise skip the final line.
    int(flat[::_LINE].sum()) + int(flat[-1])
    return int(flat.size)
