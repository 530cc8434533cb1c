"""Warm-up: bounded by calls and time; every kind of buffer touched, read-only."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.host.warm import warm


def test_warm_is_bounded_by_calls_and_by_time() -> None:
    calls: list[int] = []
    rec = warm(calls.append, 1, calls=7, max_seconds=10)
    assert rec.calls == 7 == len(calls) and rec.bytes_touched == 0

    ticks = iter(range(1000))  # each clock read advances one "second"
    rec = warm(calls.append, 1, calls=1000, max_seconds=3, clock=lambda: float(next(ticks)))
    assert rec.calls == 3 and rec.seconds > 0

    assert warm(calls.append, 1, calls=5, max_seconds=0).calls == 1  # always at least one
    assert warm(calls.append, 1, calls=0).calls == 0
    assert warm().calls == 0
    with pytest.raises(InvalidArgument):
        warm(calls.append, 1, calls=-1)


class Pair(ctypes.Structure):
    _fields_ = [("a", ctypes.c_int), ("b", ctypes.c_double)]


def test_warm_touches_every_kind_of_buffer_read_only() -> None:
    base = np.arange(100 * 100, dtype=np.float64).reshape(100, 100)
    readonly = np.arange(1000, dtype=np.int32)
    readonly.flags.writeable = False
    buffers = {
        "bytes": (b"x" * 1000, 1000),
        "bytearray": (bytearray(4096), 4096),
        "numpy": (np.zeros(1000), 8000),
        "readonly numpy": (readonly, 4000),
        "fortran": (np.zeros((64, 32), order="F"), 64 * 32 * 8),
        "2-d memoryview": (memoryview(bytearray(600)).cast("B", (20, 30)), 600),
        "structured": (np.zeros(10, dtype=[("a", "i4"), ("b", "f8")]), 120),  # packed
        # strided: the whole span from first to last element, without a copy
        "strided rows": (base[::10], (90 * 100 + 100) * 8),
        "reversed": (base[0, ::-1], 100 * 8),
        "transposed slice": (base.T[:, :2], (1 * 100 + 100) * 8),
        "strided memoryview": (memoryview(bytearray(1000))[::3], 334 * 3 - 2),
        # numpy cannot map a strided ctypes structure exactly: it is read by copying
        "strided ctypes": (memoryview((Pair * 10)())[::2], 5 * ctypes.sizeof(Pair)),
        "empty": (bytearray(), 0),
        "one byte": (b"x", 1),
    }
    snapshot = base.copy()
    for name, (buf, nbytes) in buffers.items():
        assert warm(buffers=[buf]).bytes_touched == nbytes, name
    assert np.array_equal(base, snapshot)
    assert warm(buffers=[b"ab", bytearray(3)]).bytes_touched == 5
    with pytest.raises(TypeError):
        warm(buffers=["not a buffer"])
