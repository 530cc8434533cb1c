"""Pageable vs pinned transfers: a host-only variant everywhere, and a CUDA variant with torch.

Host variant (runs on any machine)::

    copy_into_fresh(src)            # fresh pageable pages every call: first-touch faults
    copy_into_locked(src, dst)      # dst pre-faulted (and mlock'ed when permitted)

A fresh 1 MiB destination costs 256 page faults (~1.9 us each here, DESIGN §11); a locked,
pre-faulted one costs only the memcpy. ``copy_into_fresh`` maps its pages straight from the
kernel (anonymous ``mmap``) so it measures first touch whatever malloc would have reused;
``allocator="numpy"`` uses ``np.empty`` instead, which glibc usually serves from freed
memory with no fault at all (see :mod:`benchmarks.workloads.arena`).

CUDA variant (torch imported lazily; skip with the reason from :func:`cuda_available`)::

    ok, why = cuda_available()
    copy = CudaCopy(64 << 20, memory="registered", direction="h2d")
    hostperf(copy, timer="cuda")   # each copy's device time from CUDA events, wall time beside it

From pageable memory the driver stages the copy through its own pinned buffer, so it is
slower and ``non_blocking=True`` does not make it asynchronous; from ``pin_memory`` tensors,
or a buffer registered in place (``cudaHostRegister``, here a /dev/shm segment), the DMA
engine reads the host buffer directly. :class:`CudaOverlap` shows what that buys: a
non-blocking copy from pinned memory on a side stream overlapped with a matmul.
"""
from __future__ import annotations

import ctypes
import mmap
from typing import Any

import numpy as np

from benchmarks.workloads import _libc
from pytest_hostperf.errors import HostperfError, InvalidArgument

__all__ = [
    "copy_into_fresh",
    "copy_into_locked",
    "LockedBuffer",
    "CudaUnavailable",
    "cuda_available",
    "CudaCopy",
    "CudaOverlap",
    "MEMORY",
    "RegisteredSegment",
]

_PAGE = mmap.PAGESIZE


def _as_bytes(a: np.ndarray, what: str) -> np.ndarray:
    if not isinstance(a, np.ndarray) or not a.flags.c_contiguous:
        raise InvalidArgument(f"{what}: need a C-contiguous numpy array (np.ascontiguousarray(...) makes one)")
    return a.reshape(-1).view(np.uint8)


# --- host variant ------------------------------------------------------------------------------


def copy_into_fresh(src: np.ndarray, *, allocator: str = "mmap") -> None:
    """Copy ``src`` into a freshly allocated pageable buffer, then free it.

    ``allocator="mmap"`` (default) takes new anonymous pages from the kernel every call, so
    every page is faulted in on first touch -- the cost the locked variant avoids.
    ``allocator="numpy"`` uses ``np.empty``, which malloc may serve from recycled memory.
    """
    flat = _as_bytes(src, "src")
    n = flat.nbytes
    if allocator == "numpy":
        dst = np.empty(n, dtype=np.uint8)
        np.copyto(dst, flat)
        return
    if allocator != "mmap":
        raise InvalidArgument(f"allocator: {allocator!r} is not 'mmap' or 'numpy'")
    mm = mmap.mmap(-1, max(n, 1))
    try:
        dst = np.frombuffer(mm, dtype=np.uint8, count=n)
        try:
            np.copyto(dst, flat)
        finally:
            del dst  # the mapping cannot close while a numpy view exports it
    finally:
        mm.close()


def copy_into_locked(src: np.ndarray, dst: np.ndarray) -> None:
    """Copy ``src`` into ``dst``, a preallocated (ideally locked, pre-faulted) array.

    Make ``dst`` with ``LockedBuffer.like(src).array``; any array of src's shape works.
    """
    np.copyto(dst, src)


class LockedBuffer:
    """A page-aligned buffer from anonymous ``mmap``, pre-faulted, and ``mlock``\\ ed if permitted.

    ``locked`` says whether ``mlock`` succeeded and ``lock_error`` why not (the buffer is
    still pre-faulted and usable). ``close()`` (or the with-block) unlocks and unmaps it.

    >>> with LockedBuffer(1 << 20) as buf:
    ...     copy_into_locked(np.ones(1 << 20, np.uint8), buf.array)
    """

    def __init__(self, nbytes: int, *, dtype: Any = np.uint8, shape: tuple[int, ...] | None = None,
                 lock: bool = True) -> None:
        if not isinstance(nbytes, int) or nbytes <= 0:
            raise InvalidArgument(f"nbytes: {nbytes!r} is not a positive byte count (e.g. 1 << 20)")
        self.nbytes = nbytes
        self._mm: mmap.mmap | None = mmap.mmap(-1, -(-nbytes // _PAGE) * _PAGE)
        flat = np.frombuffer(self._mm, dtype=np.uint8, count=nbytes)
        # Pre-fault with a non-zero write: every page becomes a private, present page now.
        flat.fill(1)
        self._addr = flat.ctypes.data
        self.locked = False
        self.lock_error: str | None = None
        if lock:
            self._lock()
        dt = np.dtype(dtype)
        self.array: np.ndarray = flat.view(dt) if shape is None else flat.view(dt).reshape(shape)

    @classmethod
    def like(cls, src: np.ndarray, *, lock: bool = True) -> LockedBuffer:
        """A locked buffer whose ``array`` has ``src``'s dtype and shape."""
        return cls(max(src.nbytes, 1), dtype=src.dtype, shape=src.shape, lock=lock)

    def _lock(self) -> None:
        if _libc.load().mlock(self._addr, self.nbytes) == 0:
            self.locked = True
            return
        err = ctypes.get_errno()
        self.lock_error = (
            f"mlock of {self.nbytes} bytes failed ({_errname(err)}); raise the memlock limit "
            f"(ulimit -l, or --ulimit memlock=-1 for a container) or grant CAP_IPC_LOCK"
        )

    def close(self) -> None:
        """Unlock and unmap (idempotent); while views of ``array`` live, unmapping waits for them."""
        if self._mm is None:
            return
        if self.locked:
            _libc.load().munlock(self._addr, self.nbytes)
            self.locked = False
        del self.array
        mm, self._mm = self._mm, None
        try:
            mm.close()
        except BufferError:
            pass  # views of .array are still alive: the mapping goes when the last one does

    def __enter__(self) -> LockedBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _errname(err: int) -> str:
    import errno
    import os

    return f"{errno.errorcode.get(err, err)}: {os.strerror(err)}"


# --- CUDA variant ------------------------------------------------------------------------------


class CudaUnavailable(HostperfError, RuntimeError):
    """torch or a CUDA device is missing; the message is the skip reason."""


def cuda_available() -> tuple[bool, str]:
    """``(True, "torch X, <device>")`` or ``(False, reason)`` -- a ready-made skip reason."""
    try:
        import torch
    except ImportError:
        return False, "torch not installed (pip install pytest-hostperf[cuda])"
    if not torch.cuda.is_available():
        build = "CPU-only build of torch" if getattr(torch.version, "cuda", None) is None else "no device visible"
        return False, f"torch has no CUDA device ({build} {torch.__version__})"
    return True, f"torch {torch.__version__}, {torch.cuda.get_device_name()}"


def _torch() -> Any:
    ok, why = cuda_available()
    if not ok:
        raise CudaUnavailable(why)
    import torch

    return torch


def _check_nbytes(nbytes: int) -> None:
    if not isinstance(nbytes, int) or nbytes <= 0:
        raise InvalidArgument(f"nbytes: {nbytes!r} is not a positive byte count (e.g. 64 << 20)")


#: Host memory a transfer reads or writes: ``pageable`` (malloc'd; the driver stages the copy
#: through its own pinned buffer), ``pinned`` (``pin_memory``: page-locked by the CUDA allocator),
#: ``registered`` (an existing buffer page-locked in place with ``cudaHostRegister``: here a
#: POSIX shared-memory segment in /dev/shm, as stream buffers shared between processes are).
MEMORY = ("pageable", "pinned", "registered")


class RegisteredSegment:
    """A POSIX shared-memory segment of ``nbytes`` in /dev/shm, registered with CUDA in place
    (``cudaHostRegister``), as a uint8 tensor over its pages (``tensor``). ``close()`` (or the
    with-block) unregisters it, closes and unlinks the segment: none is ever left behind."""

    def __init__(self, torch: Any, nbytes: int) -> None:
        from multiprocessing import shared_memory

        self._torch = torch
        self._shm: Any = shared_memory.SharedMemory(create=True, size=nbytes)
        self._registered = False
        try:
            self.tensor = torch.frombuffer(self._shm.buf, dtype=torch.uint8, count=nbytes)
            self.tensor.fill_(1)  # every page faulted in before it is registered
            err = torch.cuda.cudart().cudaHostRegister(self.tensor.data_ptr(), nbytes, 0)
            if int(err) != 0:
                raise HostperfError(f"cudaHostRegister of {nbytes} bytes in /dev/shm failed (cudaError {int(err)}); "
                                    "raise the memlock limit (ulimit -l unlimited) or use pinned memory")
            self._registered = True
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Unregister, close and unlink (idempotent)."""
        if self._shm is None:
            return
        if self._registered:
            self._torch.cuda.cudart().cudaHostUnregister(self.tensor.data_ptr())
            self._registered = False
        self.tensor = None
        shm, self._shm = self._shm, None
        try:
            shm.close()
        finally:
            shm.unlink()

    def __enter__(self) -> RegisteredSegment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _host_buffer(torch: Any, nbytes: int, memory: str) -> tuple[Any, RegisteredSegment | None]:
    if memory == "registered":
        seg = RegisteredSegment(torch, nbytes)
        return seg.tensor, seg
    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=memory == "pinned")
    host.fill_(1)  # first touch now, not in the first timed copy
    return host, None


class CudaCopy:
    """One host<->device copy of ``nbytes``, from/to pageable, pinned or registered host memory.

    ``copy()`` issues one copy on the current stream and returns: time it with
    ``hostperf(copy, timer="cuda")``, which brackets each call with CUDA events and waits for
    the device once per block (its device time), keeping the host's wall time of each call
    beside it. Buffers are allocated and touched once, at construction, so a call measures the
    copy only. ``non_blocking=True`` lets a copy from page-locked memory be asynchronous for
    the host; from pageable memory it changes nothing. ``close()`` frees a registered segment.
    """

    def __init__(self, nbytes: int, memory: str = "pinned", direction: str = "h2d", non_blocking: bool = False,
                 device: Any = None) -> None:
        _check_nbytes(nbytes)
        if direction not in ("h2d", "d2h"):
            raise InvalidArgument(f"direction: {direction!r} is not 'h2d' or 'd2h'")
        if memory not in MEMORY:
            raise InvalidArgument(f"memory: {memory!r} is not one of {', '.join(MEMORY)}")
        torch = _torch()
        self.nbytes, self.memory, self.direction, self.non_blocking = nbytes, memory, direction, non_blocking
        self.device = torch.device("cuda") if device is None else torch.device(device)
        host, self._segment = _host_buffer(torch, nbytes, memory)
        dev = torch.empty(nbytes, dtype=torch.uint8, device=self.device)
        dev.fill_(1)
        self._src, self._dst = (host, dev) if direction == "h2d" else (dev, host)
        torch.cuda.synchronize(self.device)

    def __call__(self) -> None:
        """Issue one copy on the current stream."""
        self._dst.copy_(self._src, non_blocking=self.non_blocking)

    def gbps(self, ns: float) -> float:
        """Bandwidth in GB/s of one copy that took ``ns``."""
        return self.nbytes / ns if ns > 0 else float("inf")

    def close(self) -> None:
        self._src = self._dst = None
        if self._segment is not None:
            self._segment.close()


class CudaOverlap:
    """A host->device copy and a matmul, overlapped on two streams or run one after the other.

    ``overlap=True``: the copy is issued ``non_blocking`` on a side stream while an ``n x n``
    float32 matmul runs on the current stream; the step ends (on the current stream) when both
    have. With ``pinned=True`` the two overlap and the step takes ~max(copy, compute); with
    pageable memory (or ``overlap=False``) it takes ~copy + compute. ``step()`` issues one step:
    time it with ``hostperf(step, timer="cuda")``, whose events on the current stream bracket
    both streams' work (the side stream waits for the current one first, and the current one
    for the side stream last).
    """

    def __init__(self, nbytes: int, *, pinned: bool = True, overlap: bool = True, matmul_n: int = 2048,
                 device: Any = None) -> None:
        _check_nbytes(nbytes)
        if not isinstance(matmul_n, int) or matmul_n <= 0:
            raise InvalidArgument(f"matmul_n: {matmul_n!r} is not a positive matrix size (e.g. 2048)")
        torch = _torch()
        self._torch = torch
        self.nbytes, self.pinned, self.overlap, self.matmul_n = nbytes, bool(pinned), bool(overlap), matmul_n
        self.device = torch.device("cuda") if device is None else torch.device(device)
        self._host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=self.pinned)
        self._host.fill_(1)
        self._dev = torch.empty(nbytes, dtype=torch.uint8, device=self.device)
        self._a = torch.randn(matmul_n, matmul_n, device=self.device)
        self._b = torch.randn(matmul_n, matmul_n, device=self.device)
        self._c = torch.empty(matmul_n, matmul_n, device=self.device)
        self._compute = torch.cuda.current_stream(self.device)
        self._side = torch.cuda.Stream(self.device)
        torch.cuda.synchronize(self.device)

    def step(self) -> None:
        """Issue one copy and one matmul."""
        torch = self._torch
        if self.overlap:
            # the copy may not start before what the current stream holds (the timer's start event)
            self._side.wait_stream(self._compute)
            with torch.cuda.stream(self._side):
                self._dev.copy_(self._host, non_blocking=True)
            with torch.cuda.stream(self._compute):
                torch.mm(self._a, self._b, out=self._c)
            self._compute.wait_stream(self._side)  # what follows (the timer's end event) waits for the copy too
        else:
            with torch.cuda.stream(self._compute):
                self._dev.copy_(self._host, non_blocking=True)
                torch.mm(self._a, self._b, out=self._c)

    __call__ = step
