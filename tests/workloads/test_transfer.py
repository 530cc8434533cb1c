from __future__ import annotations

import contextlib
import os
import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from benchmarks.workloads.arena import minor_faults
from benchmarks.workloads.transfer import (
    CudaCopy,
    CudaOverlap,
    CudaUnavailable,
    LockedBuffer,
    copy_into_fresh,
    copy_into_locked,
    cuda_available,
)
from pytest_hostperf.errors import InvalidArgument

# --- host variant ------------------------------------------------------------------------------


def test_fresh_copy_faults_every_page_and_locked_copy_none() -> None:
    src = np.arange(256 * 1024, dtype=np.uint8)  # 64 pages; too small for a huge page
    copy_into_fresh(src)
    f0 = minor_faults()
    copy_into_fresh(src)
    assert minor_faults() - f0 >= 60
    with LockedBuffer.like(src) as buf:
        copy_into_locked(src, buf.array)
        f0 = minor_faults()
        copy_into_locked(src, buf.array)
        assert minor_faults() - f0 < 4
        assert np.array_equal(buf.array, src)


def test_fresh_copy_with_numpy_allocator_and_other_dtypes() -> None:
    src = np.linspace(0, 1, 1000).reshape(10, 100)
    copy_into_fresh(src, allocator="numpy")
    copy_into_fresh(src)
    copy_into_fresh(np.empty(0, np.uint8))
    with pytest.raises(InvalidArgument, match="'mmap' or 'numpy'"):
        copy_into_fresh(src, allocator="slab")
    with pytest.raises(InvalidArgument, match="C-contiguous"):
        copy_into_fresh(src[:, ::2])


def test_locked_buffer_is_prefaulted_and_says_whether_it_is_locked() -> None:
    buf = LockedBuffer(1 << 20)
    try:
        assert buf.array.nbytes == 1 << 20 and buf.array.ctypes.data % 4096 == 0
        f0 = minor_faults()
        buf.array.fill(3)
        assert minor_faults() - f0 < 4
        assert buf.locked or "memlock" in (buf.lock_error or "")
    finally:
        buf.close()
        buf.close()  # idempotent
    assert not buf.locked


def test_locked_buffer_like_keeps_shape_and_dtype() -> None:
    src = np.ones((3, 5), np.float32)
    with LockedBuffer.like(src, lock=False) as buf:
        assert buf.array.shape == (3, 5) and buf.array.dtype == np.float32
        assert not buf.locked and buf.lock_error is None
        view = buf.array[1]
    assert view.shape == (5,)  # closing with a live view defers the unmap instead of failing


def test_locked_buffer_rejects_bad_size() -> None:
    with pytest.raises(InvalidArgument):
        LockedBuffer(0)


# --- CUDA variant without a GPU ----------------------------------------------------------------


def test_cuda_unavailable_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    assert cuda_available() == (False, "torch not installed (pip install pytest-hostperf[cuda])")
    with pytest.raises(CudaUnavailable, match="torch not installed"):
        CudaCopy(1024, memory="pinned")
    monkeypatch.setitem(sys.modules, "torch", _fake_torch([], cuda=False))
    ok, why = cuda_available()
    assert not ok and why.startswith("torch has no CUDA device")


def _fake_torch(log: list[tuple[Any, ...]], cuda: bool = True) -> types.ModuleType:
    """Just enough of torch to check the order of CUDA calls the workloads make."""
    torch = types.ModuleType("torch")
    torch.__version__ = "0.0-fake"
    torch.version = types.SimpleNamespace(cuda="12.4" if cuda else None)
    torch.uint8 = "uint8"

    class Tensor:
        def __init__(self, where: str, pinned: bool = False) -> None:
            self.where, self.pinned = where, pinned

        def data_ptr(self) -> int:
            return 0x1000

        def fill_(self, v: int) -> Tensor:
            return self

        def copy_(self, src: Tensor, non_blocking: bool = False) -> Tensor:
            log.append(("copy", src.where, self.where, non_blocking, current[0]))
            return self

    class Stream:
        def __init__(self, name: str) -> None:
            self.name = name

        def synchronize(self) -> None:
            log.append(("stream.sync", self.name))

        def wait_event(self, ev: Any) -> None:
            log.append(("wait_event", self.name, ev.name))

        def wait_stream(self, other: Stream) -> None:
            log.append(("wait_stream", self.name, other.name))

    class Event:
        count = 0

        def __init__(self, enable_timing: bool = False) -> None:
            assert enable_timing
            Event.count += 1
            self.name = "start" if Event.count % 2 else "end"

        def record(self, stream: Stream | None = None) -> None:
            log.append(("record", self.name, stream.name if stream else None))

        def synchronize(self) -> None:
            log.append(("event.sync", self.name))

        def elapsed_time(self, end: Event) -> float:
            return 0.0125  # ms

    default = Stream("default")
    current = [default.name]

    @contextlib.contextmanager
    def stream(s: Stream) -> Iterator[None]:
        before, current[0] = current[0], s.name
        try:
            yield
        finally:
            current[0] = before

    def empty(*shape: int, dtype: Any = None, pin_memory: bool = False, device: Any = None) -> Tensor:
        return Tensor("device" if device is not None else ("pinned" if pin_memory else "pageable"), pin_memory)

    class Cudart:
        def cudaHostRegister(self, ptr: int, size: int, flags: int) -> int:  # noqa: N802 (CUDA's name)
            log.append(("register", ptr, size, flags))
            return 0

        def cudaHostUnregister(self, ptr: int) -> int:  # noqa: N802
            log.append(("unregister", ptr))
            return 0

    def frombuffer(buf: Any, dtype: Any = None, count: int = -1) -> Tensor:
        log.append(("frombuffer", len(buf), count))
        return Tensor("registered")

    torch.empty = empty
    torch.frombuffer = frombuffer
    torch.randn = lambda *shape, device=None: Tensor("device")
    torch.mm = lambda a, b, out=None: log.append(("mm", current[0]))
    torch.device = lambda d: f"dev:{d}"
    torch.cuda = types.SimpleNamespace(
        is_available=lambda: cuda,
        get_device_name=lambda *a: "FakeGPU",
        Event=Event,
        Stream=lambda device=None: Stream("side"),
        current_stream=lambda device=None: default,
        stream=stream,
        synchronize=lambda device=None: None,
        cudart=Cudart,
    )
    return torch


@pytest.mark.parametrize(("direction", "memory", "src", "dst"),
                         [("h2d", "pinned", "pinned", "device"), ("d2h", "pageable", "device", "pageable")])
def test_cuda_copy_issues_one_copy_for_the_cuda_timer_to_bracket(monkeypatch: pytest.MonkeyPatch, direction: str,
                                                                  memory: str, src: str, dst: str) -> None:
    log: list[tuple[Any, ...]] = []
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(log))
    assert cuda_available() == (True, "torch 0.0-fake, FakeGPU")
    copy = CudaCopy(1 << 20, memory=memory, direction=direction, non_blocking=True)
    log.clear()
    assert copy() is None
    assert log == [("copy", src, dst, True, "default")]  # no events of its own: timer="cuda" brackets it
    assert copy.gbps(1e6) == pytest.approx(1.048576)
    with pytest.raises(InvalidArgument, match="'h2d' or 'd2h'"):
        CudaCopy(1024, direction="d2d")
    with pytest.raises(InvalidArgument, match="pageable, pinned, registered"):
        CudaCopy(1024, memory="managed")


def test_registered_memory_is_a_dev_shm_segment_registered_in_place_and_always_unlinked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[tuple[Any, ...]] = []
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(log))
    before = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    copy = CudaCopy(1 << 16, memory="registered")
    assert ("frombuffer", 1 << 16, 1 << 16) in log and ("register", 0x1000, 1 << 16, 0) in log
    made = (set(os.listdir("/dev/shm")) - before) if os.path.isdir("/dev/shm") else set()
    assert len(made) == 1 or not os.path.isdir("/dev/shm")  # the segment lives in /dev/shm
    log.clear()
    copy()
    assert log == [("copy", "registered", "device", False, "default")]
    copy.close()
    copy.close()  # idempotent
    assert log[1:] == [("unregister", 0x1000)]
    if os.path.isdir("/dev/shm"):
        assert set(os.listdir("/dev/shm")) == before  # unlinked


def test_cuda_overlap_orders_the_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[tuple[Any, ...]] = []
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(log))
    step = CudaOverlap(1 << 20, matmul_n=64)
    log.clear()
    assert step() is None
    assert log == [
        ("wait_stream", "side", "default"),  # the copy may not start before the timer's start event
        ("copy", "pinned", "device", True, "side"),
        ("mm", "default"),
        ("wait_stream", "default", "side"),  # the timer's end event waits for the copy too
    ]
    serial = CudaOverlap(1 << 20, matmul_n=64, overlap=False, pinned=False)
    log.clear()
    serial.step()
    assert log == [("copy", "pageable", "device", True, "default"), ("mm", "default")]


# --- CUDA variant on a GPU ---------------------------------------------------------------------

_CUDA_OK, _CUDA_WHY = cuda_available()


@pytest.mark.skipif(not _CUDA_OK, reason=_CUDA_WHY)
@pytest.mark.parametrize("memory", ["pageable", "pinned", "registered"])
@pytest.mark.parametrize("direction", ["h2d", "d2h"])
def test_real_cuda_copy(memory: str, direction: str) -> None:
    import torch

    copy = CudaCopy(1 << 20, memory=memory, direction=direction)
    try:
        for _ in range(5):
            copy()
        torch.cuda.synchronize()
    finally:
        copy.close()
    CudaOverlap(1 << 20, matmul_n=256)()
    torch.cuda.synchronize()
