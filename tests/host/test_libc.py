"""The one libc loader: loaded once, prototypes declared, errors as errno values.

Nothing here locks memory in the test runner: mlockall runs in the children of
test_control.py.
"""
from __future__ import annotations

import errno
import platform
import sys

import pytest

from pytest_hostperf.host import libc

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux")


@linux_only
def test_loaded_once_with_the_calls_the_harness_makes() -> None:
    lib = libc.handle()
    assert lib is not None and libc.handle() is lib
    assert libc.has("mlockall") and libc.has("munlockall") and libc.has("syscall")
    assert not libc.has("no_such_function_in_any_libc")
    assert lib.mlockall.restype is not None and lib.syscall.restype is not None


def test_mcl_flags_are_two_distinct_bits() -> None:
    current, future = libc.mcl_flags()
    assert current & future == 0 and current.bit_count() == future.bit_count() == 1
    if platform.machine() in ("x86_64", "aarch64", "arm64"):
        assert (current, future) == (1, 2)


@linux_only
def test_perf_event_open_raises_the_kernels_errno() -> None:
    if platform.machine() not in libc.NR_PERF_EVENT_OPEN:
        pytest.skip(f"no perf_event_open number for {platform.machine()}")
    attr = bytearray(112)
    attr[0:4] = (0xFFFF).to_bytes(4, sys.byteorder)  # an event type no kernel has
    attr[4:8] = (112).to_bytes(4, sys.byteorder)
    with pytest.raises(OSError) as e:
        libc.perf_event_open(attr)
    assert e.value.errno in (errno.ENOENT, errno.EINVAL, errno.EACCES, errno.EPERM, errno.ENODEV)


def test_perf_event_open_where_its_number_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(libc.NR_PERF_EVENT_OPEN, platform.machine(), raising=False)
    with pytest.raises(OSError, match="perf_event_open is not known on") as e:
        libc.perf_event_open(bytearray(112))
    assert e.value.errno == 0
