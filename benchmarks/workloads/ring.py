"""Single-producer single-consumer ring buffer in preallocated (optionally shared) memory.

Layout (every offset 64-byte aligned)::

    0    head   uint64  next index to read;  written by the consumer only
    64   tail   uint64  next index to write; written by the producer only
    128  meta   magic, capacity, slot_size, flags (flags: producer closed)
    192  slots  capacity x stride; a slot is an 8-byte tag then slot_size payload bytes

Head and tail sit on their own cache lines, so each line is written by one side only and a
store to one index never invalidates the line that holds the other (no false sharing).
Indices are free-running 64-bit counters (``slot = index & (capacity - 1)``, capacity a
power of two); full is ``tail - head == capacity``, empty is ``tail == head``.

Memory ordering -- what this relies on, and where it holds:

* The producer writes the slot (payload, then tag) *before* it stores the new ``tail``;
  the consumer loads ``tail`` *before* it reads the slot, and finishes reading the slot
  before it stores the new ``head``. On x86-64 (TSO) stores are not reordered with other
  stores and loads are not reordered with other loads (nor a load with a later store), so
  the consumer that sees the new ``tail`` sees the slot, and the producer never overwrites
  a slot the consumer is still reading.
* Each index is published with one aligned 8-byte store: a ``memoryview`` element store,
  which CPython compiles to a single ``mov``; aligned 8-byte accesses are single-copy
  atomic on x86-64, so the other side never reads a torn index. Across processes, that is
  the whole synchronisation -- the same assumption as an aligned 8-byte numpy store.
* Between threads of one process, CPython's GIL also orders everything: a thread switch
  passes through the GIL's lock, a full barrier. The interpreter never reorders the C
  calls that perform the stores.
* On ARM and other weakly ordered CPUs the first point fails: the consumer may see the new
  ``tail`` before the payload. A correct ring there needs a release store of ``tail`` and an
  acquire load of it, barriers that pure Python cannot issue. Use this ring across
  processes on x86-64 only; between threads it is safe on any CPU with a GIL build (on a
  free-threaded build the x86-64 caveat applies to threads too).

Waiting: ``push``/``pop`` poll ``try_push``/``try_pop`` -- a bounded number of pure spins,
then ``sched_yield`` calls, then short sleeps -- and raise :class:`RingTimeout` at the
deadline. Nothing here waits without a bound.

Why it matters (DESIGN §11; measured on the 2-vCPU development VM): across processes, on
two cores, a :class:`ProcessPingPong` round trip through two rings takes ~2.5 us (~400 kHz)
against ~65 us for a semaphore pair and ~170 us for ``multiprocessing.Queue``. Between
threads the GIL decides: a pure spin would hold it for the 5 ms switch interval, so the
thread ring polls with ``sched_yield`` (which releases the GIL) and then answers in
~8-50 us against ~25-130 us for ``queue.Queue`` -- but it keeps both threads on a CPU
while it waits, which ``queue.Queue`` does not. :class:`ThreadPingPong` measures both.
"""
from __future__ import annotations

import contextlib
import errno
import mmap
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.workloads.ipc import (
    DEFAULT_START_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    SHM_DIR,
    EchoChildOwner,
    child_setup,
    mp_context,
    no_answer,
    peer_gone,
    reap,
    resource_name,
    shm_error,
    validate_cpus,
)
from pytest_hostperf.errors import HostperfError, InvalidArgument, MeasurementError

__all__ = [
    "Ring",
    "RingTimeout",
    "WaitPolicy",
    "ThreadPingPong",
    "ProcessPingPong",
    "required_bytes",
]

LINE = 64
_HEAD_W, _TAIL_W = 0, LINE // 8  # word (8-byte) indices of head and tail
_META_W = 2 * LINE // 8
_SLOTS_OFF = 3 * LINE
_MAGIC = 0x31474E4952504848  # b"HHPRING1" little-endian: marks a formatted ring
_M64 = (1 << 64) - 1
_INT_TAG = _M64  # a slot tag of all ones: the payload is one int64; else the tag is a byte count
_CLOSED = 1


class RingTimeout(HostperfError, TimeoutError):
    """``push``/``pop`` found the ring full/empty until its deadline."""


@dataclass(frozen=True, slots=True)
class WaitPolicy:
    """How a waiting side polls: ``spin`` pure polls, then ``yields`` ``sched_yield`` polls,
    then polls ``nap_s`` apart. Bounded by the caller's deadline.

    Pure spinning answers fastest when each side has its own core; yielding lets a peer on
    the same core (or a thread waiting for the GIL) run; naps keep an idle waiter off the CPU.
    """

    spin: int = 2000
    yields: int = 200
    nap_s: float = 50e-6


# Between threads a pure spin holds the GIL for the whole switch interval (5 ms), starving
# the very thread it waits for: poll, then give up the GIL at once.
THREAD_WAIT = WaitPolicy(spin=0, yields=200, nap_s=50e-6)
# Two processes polling on one CPU: the same reasoning, with the scheduler in the GIL's place.
# Under SCHED_FIFO a yield never lets a normal-priority peer run (see _poll),
# so a real-time waiter gives the CPU away only by sleeping.
SAME_CPU_WAIT = WaitPolicy(spin=0, yields=200, nap_s=50e-6)
_REALTIME = {getattr(os, "SCHED_FIFO", -1), getattr(os, "SCHED_RR", -1)}


def _realtime() -> bool:
    """Whether the calling thread runs under a real-time policy (its yields reach RT peers only)."""
    try:
        return os.sched_getscheduler(0) in _REALTIME
    except (AttributeError, OSError):
        return False


def _stride(slot_size: int) -> int:
    return 8 + (slot_size + 7) // 8 * 8


def required_bytes(capacity: int, slot_size: int) -> int:
    """Bytes of memory a ring of ``capacity`` slots of ``slot_size`` payload bytes needs."""
    return _SLOTS_OFF + capacity * _stride(slot_size)


def _check_shape(capacity: int, slot_size: int) -> None:
    if not isinstance(capacity, int) or capacity < 1 or capacity & (capacity - 1):
        raise InvalidArgument(f"capacity: {capacity!r} is not a power of two (e.g. 1024)")
    if not isinstance(slot_size, int) or slot_size < 8:
        raise InvalidArgument(f"slot_size: {slot_size!r} must be an int >= 8 (bytes of payload per slot, e.g. 56)")


class Ring:
    """SPSC ring of fixed-size slots holding ``int`` (int64) or ``bytes`` items.

    In-process (threads)::

        ring = Ring(1024, slot_size=56)         # preallocated, 64-byte aligned numpy buffer

    Across processes::

        ring = Ring.create_shared(1024, 56)     # /dev/shm/hostperf-<pid>-<rand>-ring
        other = Ring.attach(ring.name)          # in the other process
        ...
        ring.close(); ring.unlink()             # creator unlinks, in a finally

    One producer calls ``try_push``/``push``/``close_producer``; one consumer calls
    ``try_pop``/``pop``. A payload of ``slot_size + 8`` a multiple of 64 (56, 120, ...) keeps
    each slot on its own cache lines.
    """

    def __init__(self, capacity: int = 1024, slot_size: int = 56, *, buffer: Any = None,
                 wait: WaitPolicy = WaitPolicy(), start_index: int = 0) -> None:
        """Build a ring over ``buffer`` (a writable buffer of at least :func:`required_bytes`,
        8-byte aligned; default: a fresh, pre-faulted, 64-byte aligned numpy buffer) and
        format it. ``start_index`` sets where the free-running counters begin: tests use a
        value near 2**64 to exercise their wrap-around."""
        _check_shape(capacity, slot_size)
        self._keep: Any = None
        if buffer is None:
            import numpy as np  # only the in-process ring needs numpy

            raw = np.empty(required_bytes(capacity, slot_size) + LINE, dtype=np.uint8)
            start = (-raw.ctypes.data) % LINE
            self._keep = raw
            buffer = raw[start:start + required_bytes(capacity, slot_size)]
        self._seg: _Segment | None = None
        self._bind(buffer, capacity, slot_size)
        # Pre-fault every page now, so the first pushes do not pay for first touch.
        for off in range(0, len(self._mv), mmap.PAGESIZE):
            self._mv[off] = 0
        start_index &= _M64
        for i, word in enumerate((_MAGIC, capacity, slot_size, 0)):
            self._u64[_META_W + i] = word
        self._u64[_HEAD_W] = start_index
        self._u64[_TAIL_W] = start_index
        self._sync()
        self.wait = wait

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def create_shared(cls, capacity: int = 1024, slot_size: int = 56, *, name: str | None = None,
                      wait: WaitPolicy = WaitPolicy()) -> Ring:
        """A ring in a new POSIX shared-memory segment ``/dev/shm/<name>``, owned by this process.

        The name defaults to :func:`~benchmarks.workloads.ipc.resource_name`, so a
        segment left by a killed process is found by ``sweep_stale``.
        """
        _check_shape(capacity, slot_size)
        seg = _Segment(name or resource_name("ring"), required_bytes(capacity, slot_size))
        try:
            ring = cls(capacity, slot_size, buffer=seg.mm, wait=wait)
        except BaseException:
            seg.close()
            seg.unlink()
            raise
        ring._seg = seg
        return ring

    @classmethod
    def attach(cls, name: str, *, wait: WaitPolicy = WaitPolicy()) -> Ring:
        """Attach to a ring another process created with :meth:`create_shared`."""
        seg = _Segment(name)
        try:
            meta = memoryview(seg.mm)[_META_W * 8:_META_W * 8 + 32].cast("Q")
            magic, capacity, slot_size = meta[0], meta[1], meta[2]
            meta.release()
            if magic != _MAGIC:
                raise HostperfError(f"shared memory {name!r} does not hold a hostperf ring (bad magic)")
            ring = cls.__new__(cls)
            ring._keep, ring._seg = None, seg
            ring._bind(seg.mm, capacity, slot_size)
            ring._sync()
            ring.wait = wait
            return ring
        except BaseException:
            seg.close()
            raise

    def _bind(self, buffer: Any, capacity: int, slot_size: int) -> None:
        size = required_bytes(capacity, slot_size)
        mv = memoryview(buffer).cast("B")
        if mv.readonly or mv.nbytes < size:
            mv.release()
            raise InvalidArgument(f"buffer: need a writable buffer of at least {size} bytes")
        self._mv = mv[:size]
        mv.release()
        if _address(self._mv) % 8:
            self._mv.release()
            raise InvalidArgument("buffer: must be 8-byte aligned (index stores must be aligned to be atomic)")
        self._u64 = self._mv.cast("Q")  # element stores of these views are the atomic 8-byte stores
        self._i64 = self._mv.cast("q")
        self._capacity = capacity
        self._mask = capacity - 1
        self._slot_size = slot_size
        self._sw = _stride(slot_size) // 8  # slot stride in words
        self._w0 = _SLOTS_OFF // 8

    def _sync(self) -> None:
        # Each side keeps its own index locally (only it writes it) and a cached copy of the
        # other side's, refreshed only when the ring looks full/empty: fewer loads of the
        # line the other core is writing.
        self._tail = self._u64[_TAIL_W]
        self._head = self._u64[_HEAD_W]
        self._head_cache = self._head
        self._tail_cache = self._tail

    # -- properties --------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Number of slots (a power of two)."""
        return self._capacity

    @property
    def slot_size(self) -> int:
        """Payload bytes per slot."""
        return self._slot_size

    @property
    def name(self) -> str | None:
        """The shared-memory name, or None for an in-process ring."""
        return None if self._seg is None else self._seg.name

    @property
    def closed(self) -> bool:
        """Whether the producer has called :meth:`close_producer` (read by the consumer)."""
        return bool(self._u64[_META_W + 3] & _CLOSED)

    def __len__(self) -> int:
        """Items in the ring now (a snapshot: the other side may be moving)."""
        return (self._u64[_TAIL_W] - self._u64[_HEAD_W]) & _M64

    # -- the hot path ------------------------------------------------------------------------

    def try_push(self, item: int | bytes) -> bool:
        """Append ``item`` (an int64 or up to ``slot_size`` bytes); False if the ring is full."""
        tail = self._tail
        u64 = self._u64
        if ((tail - self._head_cache) & _M64) >= self._capacity:
            self._head_cache = u64[_HEAD_W]
            if ((tail - self._head_cache) & _M64) >= self._capacity:
                return False
        w = self._w0 + (tail & self._mask) * self._sw
        if type(item) is int:
            try:
                self._i64[w + 1] = item
            except (ValueError, OverflowError):  # nothing is published yet: the ring is unchanged
                raise InvalidArgument(f"item: {item} does not fit an int64 slot") from None
            u64[w] = _INT_TAG
        elif isinstance(item, int):
            return self.try_push(int(item))  # bool, IntEnum...: stored as a plain int
        else:
            n = len(item)
            if n > self._slot_size:
                raise InvalidArgument(f"item: {n} bytes do not fit a slot of {self._slot_size} bytes")
            off = (w + 1) * 8
            self._mv[off:off + n] = item
            u64[w] = n
        tail = (tail + 1) & _M64
        u64[_TAIL_W] = tail  # publish: the slot is written before the index moves
        self._tail = tail
        return True

    def try_pop(self) -> int | bytes | None:
        """Remove and return the oldest item; None if the ring is empty."""
        head = self._head
        u64 = self._u64
        if head == self._tail_cache:
            self._tail_cache = u64[_TAIL_W]
            if head == self._tail_cache:
                return None
        w = self._w0 + (head & self._mask) * self._sw
        tag = u64[w]
        if tag == _INT_TAG:
            item: int | bytes = self._i64[w + 1]
        else:
            off = (w + 1) * 8
            item = self._mv[off:off + tag].tobytes()
        head = (head + 1) & _M64
        u64[_HEAD_W] = head  # the slot is read before it is handed back to the producer
        self._head = head
        return item

    # -- waiting -----------------------------------------------------------------------------

    def push(self, item: int | bytes, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """Append ``item``, waiting (spin, yield, nap) up to ``timeout`` s; RingTimeout if still full."""
        if self.try_push(item):
            return
        if _poll(lambda: True if self.try_push(item) else None, self.wait, timeout) is None:
            raise RingTimeout(f"ring full ({self._capacity} slots) for {timeout:g} s: is the consumer running?")

    def pop(self, timeout: float = DEFAULT_TIMEOUT_S) -> int | bytes:
        """Remove the oldest item, waiting up to ``timeout`` s; RingTimeout if still empty."""
        item = self.try_pop()
        if item is not None:
            return item
        item = _poll(self.try_pop, self.wait, timeout)
        if item is None:
            raise RingTimeout(f"ring empty for {timeout:g} s: is the producer running?")
        return item

    def close_producer(self) -> None:
        """Producer: mark the stream finished; the consumer sees :attr:`closed` after draining."""
        self._u64[_META_W + 3] = self._u64[_META_W + 3] | _CLOSED

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Release this process's views and mapping (idempotent). The creator then calls unlink()."""
        for view in ("_u64", "_i64", "_mv"):
            v = getattr(self, view, None)
            if isinstance(v, memoryview):
                v.release()
            setattr(self, view, _CLOSED_VIEW)  # later use raises a clear error, not a crash
        if self._seg is not None:
            self._seg.close()

    def unlink(self) -> None:
        """Creator: remove the shared-memory name (idempotent; no-op for in-process rings)."""
        if self._seg is not None:
            self._seg.unlink()

    def __enter__(self) -> Ring:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        finally:
            self.unlink()

    def __repr__(self) -> str:
        where = f"shared {self.name!r}" if self._seg is not None else "in-process"
        return f"Ring(capacity={self._capacity}, slot_size={self._slot_size}, {where})"


class _Segment:
    """A POSIX shared-memory segment, mapped: ``/dev/shm/<name>`` is what ``shm_open`` opens.

    Not ``multiprocessing.shared_memory.SharedMemory``: before Python 3.13 it registers every
    *attach* with a resource tracker, and a process with its own tracker unlinks the segment
    when it exits -- under the creator's feet (gh-82300). The creator owns the name here.
    """

    def __init__(self, name: str, size: int | None = None) -> None:
        if not name or "/" in name or name in (".", ".."):
            raise InvalidArgument(f"name: {name!r} is not a shared-memory name (no '/', e.g. 'hostperf-1-ab12cd34')")
        self.name = name
        self.path = os.path.join(SHM_DIR, name)
        create = size is not None
        self._owner = False
        self.mm: mmap.mmap | None = None
        try:
            fd = os.open(self.path, os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0), 0o600)
        except OSError as exc:
            if create and exc.errno != errno.EEXIST:
                raise shm_error("ring segment", exc.errno, path=self.path) from None
            raise
        self._owner = create
        try:
            if create:
                # Allocate the pages now. ftruncate only sets the size: on a full tmpfs the
                # first store into a page that cannot be allocated is a SIGBUS that kills the
                # process (seen with a full /dev/shm). posix_fallocate says ENOSPC instead.
                try:
                    if hasattr(os, "posix_fallocate"):
                        os.posix_fallocate(fd, 0, size)
                    else:  # pragma: no cover - not Linux
                        os.ftruncate(fd, size)
                except OSError as exc:
                    raise shm_error("ring segment", exc.errno, path=self.path) from None
            else:
                size = os.fstat(fd).st_size
            self.mm = mmap.mmap(fd, size)  # MAP_SHARED
        except BaseException:
            self.mm = None
            self.unlink()
            raise
        finally:
            os.close(fd)  # the mapping keeps the segment; the descriptor is not needed

    def close(self) -> None:
        if self.mm is not None:
            mm, self.mm = self.mm, None
            mm.close()

    def unlink(self) -> None:
        if self._owner:
            self._owner = False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


class _ClosedView:
    def __getitem__(self, i: Any) -> Any:
        raise HostperfError("ring is closed")

    def __setitem__(self, i: Any, value: Any) -> None:
        raise HostperfError("ring is closed")

    def __len__(self) -> int:
        return 0


_CLOSED_VIEW = _ClosedView()


def _address(mv: memoryview) -> int:
    import ctypes

    return ctypes.addressof(ctypes.c_char.from_buffer(mv))


def _poll(attempt: Callable[[], Any], policy: WaitPolicy, timeout: float) -> Any:
    """Call ``attempt`` until it returns something other than None, or ``timeout`` passes."""
    for _ in range(policy.spin):
        r = attempt()
        if r is not None:
            return r
    deadline = time.monotonic() + timeout
    # sched_yield from SCHED_FIFO only lets other real-time tasks run: a peer at normal priority
    # on this CPU would wait for the whole yield phase, so a real-time waiter goes on to naps.
    for _ in range(0 if policy.yields and _realtime() else policy.yields):
        os.sched_yield()  # releases the GIL and lets a peer on this core run
        r = attempt()
        if r is not None:
            return r
    while time.monotonic() < deadline:
        time.sleep(policy.nap_s)
        r = attempt()
        if r is not None:
            return r
    return None


# --- ping-pong between threads --------------------------------------------------------------

_STOP = object()


class ThreadPingPong:
    """Round trips between this thread and an echo thread.

    ``kind="ring"``: two in-process :class:`Ring` s polled with :data:`THREAD_WAIT`;
    ``kind="queue"``: two ``queue.Queue`` (a mutex and condition variables).

    >>> with ThreadPingPong("queue") as pp:
    ...     pp.roundtrip()

    Under the GIL only one thread runs Python at a time, so the ring's lock-free design buys
    little: what decides is how each side waits. ``queue`` sleeps on a condition variable
    (a futex wake-up per hand-off); ``ring`` polls and yields, so it answers sooner but keeps
    both threads busy while idle. The ring's clear win is across processes
    (:class:`ProcessPingPong`).
    """

    def __init__(self, kind: str = "ring", *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 wait: WaitPolicy = THREAD_WAIT) -> None:
        if kind not in ("ring", "queue"):
            raise InvalidArgument(f"kind: {kind!r} is not 'ring' or 'queue'")
        self.kind = kind
        self.timeout_s = float(timeout_s)
        self.wait = wait
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._seq = 0
        self._broken: str | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> ThreadPingPong:
        if self._thread is not None:
            raise InvalidArgument("ThreadPingPong is single-use: create a new one for another with-block")
        if self.kind == "ring":
            self._req: Any = Ring(8, 8, wait=self.wait)
            self._resp: Any = Ring(8, 8, wait=self.wait)
            target = self._ring_echo
        else:
            self._req, self._resp = queue.Queue(), queue.Queue()
            target = self._queue_echo
        self._thread = threading.Thread(target=target, name=f"hostperf-echo-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.kind == "queue":
            self._req.put(_STOP)
        if self._thread is not None:
            # The echo loop sees the stop flag within one nap or one queue timeout.
            self._thread.join(self.timeout_s)
        self._broken = self._broken or "thread ping-pong: used after its with-block ended"

    def _ring_echo(self) -> None:
        req, resp, stop = self._req, self._resp, self._stop
        try:
            while not stop.is_set():
                try:
                    item = req.pop(timeout=0.05)
                except RingTimeout:
                    continue
                resp.push(item, timeout=self.timeout_s)
        except BaseException as e:  # surfaced by roundtrip() as a MeasurementError
            self._error = e

    def _queue_echo(self) -> None:
        req, resp, stop = self._req, self._resp, self._stop
        while not stop.is_set():
            try:
                item = req.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is _STOP:
                break
            resp.put(item)

    def roundtrip(self) -> None:
        """One item to the echo thread and back; MeasurementError if no answer in time."""
        if self._broken is not None:
            raise MeasurementError(self._broken)
        self._seq = seq = (self._seq + 1) & 0x7FFFFFFFFFFFFFFF
        if self.kind == "queue":
            self._req.put(seq)
            try:
                got = self._resp.get(timeout=self.timeout_s)
            except queue.Empty:
                got = None
        else:
            self._req.push(seq, timeout=self.timeout_s)
            try:
                got = self._resp.pop(timeout=self.timeout_s)
            except RingTimeout:
                got = None
        if got != seq:
            self._fail(got, seq)

    def _fail(self, got: Any, seq: int) -> None:
        t = self._thread
        alive = t is not None and t.is_alive()
        ident = f"echo thread {t.name!r} (native id {t.native_id})" if t is not None else "echo thread"
        if got is None:
            why = "did not answer" if alive else "has died"
            extra = f": {self._error!r}" if self._error else ""
            self._broken = f"thread ping-pong ({self.kind}): {ident} {why} within {self.timeout_s:g} s{extra}"
        else:
            self._broken = f"thread ping-pong ({self.kind}): {ident} answered {got!r} to {seq}"
        raise MeasurementError(self._broken)


# --- ping-pong between processes ------------------------------------------------------------

# The child's idle loop: after this many empty polls it starts yielding, then napping, and
# looks at the stop flag and its parent pid between naps.
_CHILD_SPIN = 20_000
_CHILD_YIELDS = 200
_CHILD_NAP_S = 100e-6
_CHILD_CHECK_EVERY = 64  # naps between parent-pid checks (~10 ms)


def _ring_echo_child(req_name: str, resp_name: str, cpu: int | None, parent_pid: int, spin: int) -> None:
    """Child: pop from ``req``, push to ``resp``; exit on close or when the parent is gone."""
    child_setup(cpu)
    req = Ring.attach(req_name)
    resp = Ring.attach(resp_name)
    try_pop, try_push = req.try_pop, resp.try_push
    try:
        idle = 0
        while True:
            item = try_pop()
            if item is not None:
                idle = 0
                while not try_push(item):  # cannot stay full: the parent pops every answer
                    if os.getppid() != parent_pid:
                        return
                    time.sleep(_CHILD_NAP_S)
                continue
            idle += 1
            if idle < spin:
                continue
            if req.closed:
                return
            if idle < spin + _CHILD_YIELDS:
                os.sched_yield()
                continue
            # Idle beyond the spin budget: nap, and leave if the parent has gone (we were
            # re-parented), so an orphan never spins or sleeps forever.
            if (idle - spin) % _CHILD_CHECK_EVERY == 0 and os.getppid() != parent_pid:
                return
            time.sleep(_CHILD_NAP_S)
    finally:
        req.close()
        resp.close()


def _mpqueue_echo_child(req: Any, resp: Any, cpu: int | None, parent_pid: int) -> None:
    """Child: the same echo over ``multiprocessing.Queue``; ``None`` means stop."""
    child_setup(cpu)
    while True:
        try:
            item = req.get(timeout=0.05)
        except queue.Empty:
            if os.getppid() != parent_pid:
                break
            continue
        if item is None:
            break
        resp.put(item)
    # Our puts must not block exit if the parent stopped reading.
    resp.cancel_join_thread()


class ProcessPingPong(EchoChildOwner):
    """Round trips between this process and an echo child process.

    ``kind="ring"``: two shared-memory :class:`Ring` s, both sides busy-polling (bounded);
    ``kind="mpqueue"``: two ``multiprocessing.Queue`` (pipe + lock + feeder thread).
    ``cpus=(a, b)`` pins the *child* to CPU ``b``; pinning this process to ``a`` is left to
    the caller (the host-control fixture), so a test runner is never pinned behind its back.
    With ``a == b`` both sides yield instead of spinning (:data:`SAME_CPU_WAIT`); with
    ``cpus=None`` the scheduler places the child, and busy-polling assumes it gets a core.

    >>> with ProcessPingPong("ring", cpus=(0, 1)) as pp:  # doctest: +SKIP
    ...     for _ in range(10_000):
    ...         pp.roundtrip()

    ``roundtrip()`` raises MeasurementError naming the child pid when the child died or did
    not answer within ``timeout_s``; the object is broken from then on. Exiting the block
    stops the child (close flag / sentinel), reaps it with a timeout (then terminate, kill)
    and unlinks both shared-memory segments.
    """

    def __init__(self, kind: str = "ring", cpus: tuple[int, int] | None = None, *,
                 timeout_s: float = DEFAULT_TIMEOUT_S, start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
                 start_method: str = "auto", wait: WaitPolicy | None = None) -> None:
        if kind not in ("ring", "mpqueue"):
            raise InvalidArgument(f"kind: {kind!r} is not 'ring' or 'mpqueue'")
        self.kind = kind
        self.cpus = validate_cpus(cpus)
        self.timeout_s = float(timeout_s)
        self.start_timeout_s = float(start_timeout_s)
        self._same_cpu = self.cpus is not None and self.cpus[0] == self.cpus[1]
        if wait is None:
            # Two pollers on one CPU: a spinning side only delays the side it waits for until
            # the scheduler preempts it (a whole time slice, ~4 ms measured): yield at once.
            wait = SAME_CPU_WAIT if self._same_cpu else WaitPolicy()
        self.wait = wait
        self._ctx = mp_context(start_method)
        self._proc: Any = None
        self._req: Any = None
        self._resp: Any = None
        self._seq = 0
        self._broken: str | None = None
        self._used = False

    @property
    def names(self) -> tuple[str, ...]:
        """Shared-memory names in use (ring kind)."""
        if self.kind != "ring" or self._req is None:
            return ()
        return tuple(r.name for r in (self._req, self._resp) if r is not None)

    def _start(self) -> None:
        ctx = self._ctx
        child_cpu = None if self.cpus is None else self.cpus[1]
        if self.kind == "ring":
            self._req = Ring.create_shared(8, 8, name=resource_name("req"), wait=self.wait)
            self._resp = Ring.create_shared(8, 8, name=resource_name("resp"), wait=self.wait)
            spin = 0 if self._same_cpu else _CHILD_SPIN
            target, args = _ring_echo_child, (self._req.name, self._resp.name, child_cpu, os.getpid(), spin)
        else:
            try:  # a Queue's lock is a glibc named semaphore in /dev/shm while it is created
                self._req, self._resp = ctx.Queue(), ctx.Queue()
            except OSError as exc:
                raise shm_error("multiprocessing.Queue", exc.errno) from None
            target, args = _mpqueue_echo_child, (self._req, self._resp, child_cpu, os.getpid())
        self._proc = ctx.Process(target=target, args=args, name=f"hostperf-echo-{self.kind}", daemon=True)
        self._proc.start()
        self._exchange(self.start_timeout_s)  # handshake: the child is up, pinned and attached

    def roundtrip(self) -> None:
        """One item to the echo child and back; MeasurementError naming its pid on failure."""
        self._exchange(self.timeout_s)

    def _exchange(self, timeout_s: float) -> None:
        if self._broken is not None:
            raise MeasurementError(self._broken)
        self._seq = seq = (self._seq + 1) & 0x7FFFFFFFFFFFFFFF
        if self.kind == "ring":
            if not self._req.try_push(seq):
                self._fail("request ring full", timeout_s)
            # The fast path: spin on the answer, which arrives in ~1 us when the child has its
            # own core. Only after the spin budget do we look at the clock and the child.
            try_pop = self._resp.try_pop
            for _ in range(self.wait.spin):
                got = try_pop()
                if got is not None:
                    break
            else:
                got = self._wait_slow(try_pop, timeout_s)
        else:
            self._req.put(seq)
            got = self._wait_slow(self._queue_get, timeout_s)
        if got != seq:
            self._fail(f"answered {got!r} to {seq}", timeout_s)

    def _queue_get(self) -> Any:
        try:
            return self._resp.get(timeout=0.05)
        except queue.Empty:
            return None

    def _wait_slow(self, attempt: Callable[[], Any], timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        # Ring: yield first (a child on this same core needs the CPU), then nap; queue: each
        # attempt already blocks up to 50 ms. Between attempts, look whether the child is alive.
        yields = self.wait.yields if self.kind == "ring" else 0
        n = 0
        while True:
            got = attempt()
            if got is not None:
                return got
            n += 1
            if n <= yields:
                os.sched_yield()
                continue
            if peer_gone(self._proc) is not None or time.monotonic() >= deadline:
                self._fail(None, timeout_s)
            if self.kind == "ring":
                time.sleep(self.wait.nap_s)

    def _fail(self, what: str | None, timeout_s: float) -> None:
        if what is None:
            err = no_answer(f"process ping-pong ({self.kind})", self._proc, timeout_s)
        else:
            err = MeasurementError(f"process ping-pong ({self.kind}): peer process pid {self._proc.pid} {what}")
        self._broken = str(err)
        raise err

    def _shutdown(self) -> None:
        try:
            if self._proc is not None and self._proc.pid is not None:
                with contextlib.suppress(Exception):  # tell the child to leave
                    if self.kind == "ring":
                        self._req.close_producer()
                    else:
                        self._req.put(None)
                reap(self._proc)
        finally:
            if self.kind == "ring":
                for ring in (self._req, self._resp):
                    if ring is not None:
                        try:
                            ring.close()
                        finally:
                            ring.unlink()
            else:
                for q in (self._req, self._resp):
                    if q is not None:
                        q.cancel_join_thread()  # the child may be dead: never block on a flush
                        q.close()
            self._broken = self._broken or "process ping-pong: used after its with-block ended"
