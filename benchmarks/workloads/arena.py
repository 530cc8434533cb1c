"""Allocation without malloc in the hot path: a bump-pointer arena and a buffer pool.

Both reserve and pre-fault their memory once, at creation, so a request never pays for a
page fault or a trip into the allocator. Three request functions, one per strategy, are
what the benchmark suite times (each handles one "request" of ``nbytes``)::

    alloc_per_request(65536)          # np.empty + fill, freed on return
    arena_request(arena, 65536)       # arena.alloc + fill + arena.reset()
    pool_request(pool)                # pool.borrow + fill + pool.give_back

When does an arena win? With glibc's default settings a freed block is handed straight to
the next ``np.empty`` of the same size, so a fresh buffer costs a few hundred ns and no page
fault (DESIGN §11): the arena then wins little. It wins by 10-40x when every large
allocation goes to ``mmap`` and every free to ``munmap`` -- the behaviour of glibc with a
fixed ``M_MMAP_THRESHOLD`` (``MALLOC_MMAP_THRESHOLD_=131072``), of many other allocators,
and of any long-lived process whose heap was trimmed. :func:`mmap_threshold` puts a process
in that condition, whatever ran in it before (the threshold alone does not: glibc serves a
large request from any free heap chunk that holds it); :func:`fresh_buffer_faults` and
:func:`fresh_mapping_shortfall` check that it held; :func:`malloc_env` gives the environment
that does it for a subprocess.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import resource
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from benchmarks.workloads import _libc
from pytest_hostperf.errors import HostperfError, InvalidArgument

__all__ = [
    "Arena",
    "ArenaExhausted",
    "BufferPool",
    "PoolExhausted",
    "alloc_per_request",
    "arena_request",
    "pool_request",
    "MallocConditionError",
    "MmapCondition",
    "fresh_buffer_faults",
    "fresh_mapping_shortfall",
    "mallopt_supported",
    "mmap_threshold",
    "malloc_env",
    "minor_faults",
    "startup_top_pad",
]

CACHE_LINE = 64
_FILL = 0x5A  # any non-zero byte: a zero write could be satisfied by a shared zero page on some kernels


class ArenaExhausted(HostperfError, MemoryError):
    """An :class:`Arena` has no room left for the requested allocation."""


class PoolExhausted(HostperfError, MemoryError):
    """A :class:`BufferPool` has no free buffer left to lend."""


def _check_alignment(alignment: int) -> int:
    if not isinstance(alignment, int) or alignment < 1 or alignment & (alignment - 1):
        raise InvalidArgument(f"alignment: {alignment!r} is not a power of two (e.g. 64)")
    return alignment


def _aligned_block(nbytes: int, alignment: int) -> tuple[np.ndarray, np.ndarray]:
    """One pre-faulted uint8 block of ``nbytes`` whose first byte is ``alignment``-aligned.

    Returns ``(backing, view)``: the view must not outlive the backing array, so both are kept.
    """
    backing = np.empty(nbytes + alignment, dtype=np.uint8)
    # Pre-fault: a write to every page now, so no request ever takes the first-touch fault
    # (~1.9 us per 4 KiB page here). fill() touches every byte, which also warms the TLB.
    backing.fill(0)
    start = (-backing.ctypes.data) % alignment
    return backing, backing[start:start + nbytes]


class Arena:
    """Bump-pointer arena over one preallocated, pre-faulted buffer.

    ``alloc`` hands out aligned views one after another; ``reset`` frees them all at once in
    O(1). Views handed out before a ``reset`` still point into the arena and will be
    overwritten by later allocations: drop them at the end of the request.

    >>> arena = Arena(1 << 20)
    >>> buf = arena.alloc(4096)
    >>> buf.ctypes.data % 64
    0
    >>> arena.reset()

    Not thread-safe: give each thread its own arena (the usual arena discipline).
    """

    __slots__ = ("_backing", "_buf", "_capacity", "_alignment", "_mask", "_offset", "_high_water")

    def __init__(self, capacity_bytes: int, alignment: int = CACHE_LINE) -> None:
        if not isinstance(capacity_bytes, int) or capacity_bytes <= 0:
            raise InvalidArgument(f"capacity_bytes: {capacity_bytes!r} is not a positive byte count (e.g. 1 << 20)")
        self._alignment = _check_alignment(alignment)
        self._mask = ~(alignment - 1)
        self._capacity = capacity_bytes
        self._backing, self._buf = _aligned_block(capacity_bytes, alignment)
        self._offset = 0
        self._high_water = 0

    @property
    def capacity(self) -> int:
        """Usable bytes."""
        return self._capacity

    @property
    def alignment(self) -> int:
        """Alignment in bytes of every allocation."""
        return self._alignment

    @property
    def used(self) -> int:
        """Bytes handed out since the last reset, alignment padding included."""
        return self._offset

    @property
    def remaining(self) -> int:
        """Bytes left before the arena is exhausted."""
        return self._capacity - self._offset

    @property
    def high_water(self) -> int:
        """Largest ``used`` seen since creation: size the arena from it."""
        return max(self._high_water, self._offset)

    @property
    def buffer(self) -> np.ndarray:
        """The whole aligned buffer (e.g. to warm or mlock it)."""
        return self._buf

    def alloc(self, nbytes: int, dtype: np.dtype | type = np.uint8) -> np.ndarray:
        """Return a 1-D view of ``nbytes`` bytes, as ``dtype``, aligned to :attr:`alignment`.

        A zero-byte request gives an empty array (whose address means nothing).
        Raises :class:`ArenaExhausted` when the arena has no room, and
        :class:`~pytest_hostperf.errors.InvalidArgument` when ``nbytes`` is negative or not a
        multiple of the dtype's item size.
        """
        offset = self._offset
        end = offset + nbytes
        if end > self._capacity or nbytes < 0:
            self._raise_for(nbytes)
        # The next allocation starts on the next aligned boundary; it may sit past capacity,
        # which the check above then reports as exhaustion.
        self._offset = (end + self._alignment - 1) & self._mask
        view = self._buf[offset:end]
        if dtype is np.uint8:
            return view  # the fast path: .view() costs more than the slice itself
        itemsize = np.dtype(dtype).itemsize
        if nbytes % itemsize:
            self._offset = offset
            raise InvalidArgument(f"nbytes: {nbytes} is not a multiple of {np.dtype(dtype)}'s item size {itemsize}")
        return view.view(dtype)

    def empty(self, shape: int | tuple[int, ...], dtype: np.dtype | type = np.float64) -> np.ndarray:
        """Like ``np.empty(shape, dtype)``, but carved from the arena (contents are stale)."""
        dt = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        return self.alloc(count * dt.itemsize, dt).reshape(shape)

    def reset(self) -> None:
        """Free every allocation at once, in O(1)."""
        if self._offset > self._high_water:
            self._high_water = self._offset
        self._offset = 0

    def _raise_for(self, nbytes: int) -> None:
        if not isinstance(nbytes, int) or nbytes < 0:
            raise InvalidArgument(f"nbytes: {nbytes!r} is not a non-negative byte count")
        raise ArenaExhausted(
            f"arena exhausted: requested {nbytes} bytes but {self._offset} of {self._capacity} bytes "
            f"are in use ({self._capacity - self._offset} free); create the Arena with a larger "
            f"capacity_bytes (at least {self._offset + nbytes}) or call reset() at the end of each request"
        )

    def __repr__(self) -> str:
        return f"Arena(capacity_bytes={self._capacity}, alignment={self._alignment}, used={self._offset})"


class BufferPool:
    """A fixed set of preallocated, pre-faulted, equal-size buffers to borrow and give back.

    ``borrow`` and ``give_back`` take no lock: the free list is a Python list used as a stack,
    and ``list.pop()`` / ``list.append()`` are each a single bytecode-level C call that is
    atomic under the GIL (and under the per-object lock of free-threaded CPython). LIFO order
    also means the buffer just given back -- the one warm in cache -- is lent next.

    >>> pool = BufferPool(4096, count=8)
    >>> buf = pool.borrow()
    >>> pool.give_back(buf)

    Give back the very object you borrowed: a slice or copy of it is rejected as foreign.
    """

    __slots__ = ("_nbytes", "_count", "_backing", "_buffers", "_index", "_out", "_free")

    def __init__(self, nbytes: int, count: int, alignment: int = CACHE_LINE) -> None:
        if not isinstance(nbytes, int) or nbytes <= 0:
            raise InvalidArgument(f"nbytes: {nbytes!r} is not a positive byte count (e.g. 65536)")
        if not isinstance(count, int) or count <= 0:
            raise InvalidArgument(f"count: {count!r} is not a positive number of buffers (e.g. 8)")
        _check_alignment(alignment)
        stride = -(-nbytes // alignment) * alignment
        self._nbytes = nbytes
        self._count = count
        self._backing, block = _aligned_block(stride * count, alignment)
        self._buffers = tuple(block[i * stride:i * stride + nbytes] for i in range(count))
        # id() is a safe key: self._buffers keeps every buffer alive, so no id is ever reused.
        self._index = {id(b): i for i, b in enumerate(self._buffers)}
        self._out = [False] * count
        self._free = list(reversed(self._buffers))

    @property
    def nbytes(self) -> int:
        """Size of each buffer in bytes."""
        return self._nbytes

    @property
    def count(self) -> int:
        """Number of buffers the pool owns."""
        return self._count

    @property
    def available(self) -> int:
        """Buffers free to borrow right now."""
        return len(self._free)

    def borrow(self) -> np.ndarray:
        """Lend one buffer (stale contents); raise :class:`PoolExhausted` when none is free."""
        try:
            buf = self._free.pop()
        except IndexError:
            raise PoolExhausted(
                f"buffer pool exhausted: all {self._count} buffers of {self._nbytes} bytes are borrowed; "
                f"give_back() each buffer at the end of its request, or create the BufferPool with a larger count"
            ) from None
        self._out[self._index[id(buf)]] = True
        return buf

    def give_back(self, buf: np.ndarray) -> None:
        """Return a borrowed buffer; a foreign or already returned buffer is an InvalidArgument."""
        i = self._index.get(id(buf))
        if i is None or self._buffers[i] is not buf:
            raise InvalidArgument(
                "give_back: this buffer does not belong to the pool (give back the object borrow() "
                "returned, not a slice, copy or view of it)"
            )
        if not self._out[i]:
            raise InvalidArgument(f"give_back: buffer {i} of the pool was already given back")
        self._out[i] = False
        self._free.append(buf)

    @contextlib.contextmanager
    def borrowed(self) -> Iterator[np.ndarray]:
        """``with pool.borrowed() as buf:`` -- borrow, and give back even on error."""
        buf = self.borrow()
        try:
            yield buf
        finally:
            self.give_back(buf)

    def __repr__(self) -> str:
        return f"BufferPool(nbytes={self._nbytes}, count={self._count}, available={len(self._free)})"


# --- the request functions the benchmark suite times ------------------------------------------


def alloc_per_request(nbytes: int) -> None:
    """One request the slow way: a fresh ``np.empty`` buffer, filled, then freed."""
    buf = np.empty(nbytes, dtype=np.uint8)
    buf.fill(_FILL)


def arena_request(arena: Arena, nbytes: int) -> None:
    """One request from an arena: ``alloc``, fill, ``reset``."""
    buf = arena.alloc(nbytes)
    buf.fill(_FILL)
    arena.reset()


def pool_request(pool: BufferPool) -> None:
    """One request from a pool: ``borrow``, fill, ``give_back``."""
    buf = pool.borrow()
    try:
        buf.fill(_FILL)
    finally:
        pool.give_back(buf)


# --- the malloc condition in which an arena wins ----------------------------------------------

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
# glibc's ceiling for the dynamic mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX).
_GLIBC_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
# glibc's defaults of M_TRIM_THRESHOLD and M_TOP_PAD (DEFAULT_TRIM_THRESHOLD in malloc.c,
# DEFAULT_TOP_PAD in malloc-machine.h; both documented in mallopt(3)).
_GLIBC_TRIM_THRESHOLD = 128 * 1024
_GLIBC_TOP_PAD = 128 * 1024
_INT_MAX = 2**31 - 1  # mallopt takes an int


class MallocConditionError(HostperfError, RuntimeError):
    """glibc could not be brought into the condition :func:`mmap_threshold` promises; the
    message says which part did not hold."""


@dataclass(frozen=True, slots=True)
class MmapCondition:
    """What :func:`mmap_threshold` holds for its block.

    ``plugs`` blocks of ``threshold`` bytes were taken from glibc's free heap memory (freed
    chunks and the top chunk) and are held until the block ends, so that no request of
    ``threshold`` bytes or more can be served from memory glibc kept: the last request of
    that size made on entry was served by ``mmap``.
    """

    threshold: int
    plugs: int

    @property
    def plugged_bytes(self) -> int:
        """Free heap memory held (never touched, so it costs no page)."""
        return self.plugs * self.threshold


# struct mallinfo2 (glibc >= 2.33); struct mallinfo before it has the same fields as ints.
_MALLINFO_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                    "keepcost")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO_FIELDS]


class _MallInfo(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in _MALLINFO_FIELDS]


@dataclass(frozen=True, slots=True)
class _Heap:
    """glibc's malloc, free and mallinfo2 (mallinfo before 2.33), as function pointers of their
    own: typed here, the shared libc object of ``_libc`` keeps its declarations untouched."""

    malloc: Callable[[int], int | None]
    free: Callable[[int], None]
    info: Callable[[], _MallInfo2 | _MallInfo]

    @classmethod
    def of(cls, libc: ctypes.CDLL) -> _Heap:
        malloc = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_size_t)(("malloc", libc))
        free = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(("free", libc))
        if hasattr(libc, "mallinfo2"):
            info = ctypes.CFUNCTYPE(_MallInfo2)(("mallinfo2", libc))
        else:
            info = ctypes.CFUNCTYPE(_MallInfo)(("mallinfo", libc))
        return cls(malloc, free, info)

    def mapped_blocks(self) -> int:
        """Allocations glibc currently serves with mmap (``hblks``; all threads)."""
        return int(self.info().hblks)

    def free_bytes(self) -> int:
        """Free bytes in all arenas, top chunks included (``fordblks``)."""
        n = int(self.info().fordblks)
        return n if n >= 0 else n + 2**32  # old mallinfo's int wraps past 2 GiB


def mallopt_supported() -> tuple[bool, str]:
    """Whether :func:`mmap_threshold` can work here: ``(True, "glibc X")`` or ``(False, why)``."""
    libc = _libc.load_or_none()
    if libc is None or not hasattr(libc, "gnu_get_libc_version"):
        return False, "not glibc: mallopt(M_MMAP_THRESHOLD) is glibc-specific"
    return True, "glibc " + libc.gnu_get_libc_version().decode()


def _mallopt(libc: ctypes.CDLL, param: int, value: int) -> None:
    if libc.mallopt(param, value) != 1:  # mallopt returns 1 on success, 0 on error
        raise InvalidArgument(f"mallopt({param}, {value}) was refused by glibc (value out of range?)")


def startup_top_pad(environ: Mapping[str, str] | None = None) -> int:
    """``M_TOP_PAD`` as glibc set it at startup, read from the environment (``os.environ`` by
    default): ``glibc.malloc.top_pad`` in ``GLIBC_TUNABLES``, else ``MALLOC_TOP_PAD_``, else
    glibc's default, 128 KiB. glibc cannot read the current value back; this is what
    :func:`mmap_threshold` restores.

    >>> startup_top_pad({"GLIBC_TUNABLES": "glibc.malloc.top_pad=0x100000"})
    1048576
    """
    env = os.environ if environ is None else environ
    given = [value for name, _, value in (item.partition("=") for item in env.get("GLIBC_TUNABLES", "").split(":"))
             if name == "glibc.malloc.top_pad"]
    given.append(env.get("MALLOC_TOP_PAD_", ""))
    for value in given:
        try:
            return min(int(value.strip(), 0), _INT_MAX)
        except ValueError:
            continue  # unset or not a number, which glibc would not have used either
    return _GLIBC_TOP_PAD


def _free_all(heap: _Heap, blocks: list[int]) -> None:
    while blocks:
        heap.free(blocks.pop())


def _plug_free_memory(heap: _Heap, nbytes: int) -> list[int]:
    """Take glibc's free heap memory in blocks of ``nbytes`` until a request of ``nbytes`` is
    served by mmap; return the blocks taken (the caller frees them).

    glibc consults ``M_MMAP_THRESHOLD`` only for a request that neither a free chunk nor the
    top chunk can hold (mallopt(3): "allocations ... that can't be satisfied from the free
    list"). A freed heap chunk of 1 MiB or more below a live block -- left by any earlier
    code, and never trimmed since it does not border the top -- therefore serves every fresh
    1 MiB buffer again and again, with no page fault, whatever the threshold. Holding each
    such piece for the block leaves glibc nothing but mmap. The blocks are never touched:
    holding them costs no page. The free bytes on entry bound the number of blocks.
    """
    limit = heap.free_bytes() // nbytes + 8
    blocks: list[int] = []
    try:
        for _ in range(limit):
            mapped = heap.mapped_blocks()
            ptr = heap.malloc(nbytes)
            if not ptr:
                raise MemoryError(f"mmap_threshold: malloc({nbytes}) failed after holding {len(blocks)} blocks")
            if heap.mapped_blocks() > mapped:
                heap.free(ptr)
                return blocks
            blocks.append(ptr)
    except BaseException:
        _free_all(heap, blocks)
        raise
    _free_all(heap, blocks)
    raise MallocConditionError(
        f"mmap_threshold: with M_MMAP_THRESHOLD at {nbytes} and the heap's free memory taken, {limit} requests "
        f"of {nbytes} bytes were still served from the heap (grown with sbrk), none by mmap; is mmap turned "
        "off (M_MMAP_MAX=0: MALLOC_MMAP_MAX_ or GLIBC_TUNABLES glibc.malloc.mmap_max)?"
    )


@contextlib.contextmanager
def mmap_threshold(nbytes: int = 128 * 1024) -> Iterator[MmapCondition]:
    """Make glibc serve large allocations (``nbytes`` or more) with a fresh ``mmap``.

    Inside the block, freed large buffers go back to the kernel at once and the next one is
    faulted in page by page -- the condition in which an arena beats ``np.empty`` by 10-40x.
    It is made to hold whatever ran before in the process:

    - ``M_MMAP_THRESHOLD`` = ``nbytes`` (which also switches glibc's dynamic threshold off);
    - ``M_TRIM_THRESHOLD`` and ``M_TOP_PAD`` at glibc's defaults (128 KiB), so the top chunk is
      trimmed back to a 128 KiB pad, even where the environment raised the pad;
    - glibc's free heap memory that could hold ``nbytes`` is taken and held for the block (see
      :class:`MmapCondition`): the threshold applies only to requests the free memory cannot
      serve, and a freed chunk below a live block is never trimmed.

    How far that goes: on entry no free heap memory can serve a request of ``nbytes`` (the last
    one made was mmapped); inside, the top chunk stays within about the pad of the small
    requests that grow it, and only memory freed inside the block can join into new free
    chunks. A request well above the threshold -- the benchmark's 1 MiB under 128 KiB -- gets a
    fresh mapping each time; :func:`fresh_buffer_faults` checks it. The calling thread's arena
    is the one plugged: make the allocations on that thread (``M_ARENA_MAX`` is left alone).
    Yields the :class:`MmapCondition`; raises :class:`MallocConditionError` where even then
    glibc does not mmap (mmap turned off).

    Restoring is approximate, and this is why: glibc cannot read its settings back, and any
    ``mallopt(M_MMAP_THRESHOLD)`` (or ``M_TRIM_THRESHOLD``, ``M_TOP_PAD``) switches its
    *dynamic* threshold off for the life of the process. Setting back the 128 KiB default would
    therefore leave the process slower than before (every 1 MiB buffer mmap'd forever). On exit
    the held memory is freed, the threshold set to glibc's dynamic ceiling (32 MiB) and the trim
    threshold to twice that -- the state the dynamic rule converges to -- so freed blocks are
    reused again, and ``M_TOP_PAD`` to its startup value (:func:`startup_top_pad`; a value set
    by an earlier ``mallopt`` is lost). For an exact "before", run the slow case in a
    subprocess with :func:`malloc_env` instead.
    """
    ok, why = mallopt_supported()
    if not ok:
        raise HostperfError(f"mmap_threshold: {why}; run the slow case with another allocator's knob")
    if not isinstance(nbytes, int) or not 0 < nbytes <= _GLIBC_MMAP_THRESHOLD_MAX:
        raise InvalidArgument(f"nbytes: {nbytes!r} must be between 1 and {_GLIBC_MMAP_THRESHOLD_MAX} (e.g. 131072)")
    libc = _libc.load_or_none()
    assert libc is not None
    heap = _Heap.of(libc)
    held: list[int] = []
    try:
        # Set inside the try: an interrupt between the calls must still restore.
        _mallopt(libc, M_MMAP_THRESHOLD, nbytes)
        _mallopt(libc, M_TRIM_THRESHOLD, _GLIBC_TRIM_THRESHOLD)
        _mallopt(libc, M_TOP_PAD, _GLIBC_TOP_PAD)
        held = _plug_free_memory(heap, nbytes)
        yield MmapCondition(threshold=nbytes, plugs=len(held))
    finally:
        _free_all(heap, held)  # first, under the block's trim threshold: the top shrinks back
        _mallopt(libc, M_MMAP_THRESHOLD, _GLIBC_MMAP_THRESHOLD_MAX)
        _mallopt(libc, M_TRIM_THRESHOLD, 2 * _GLIBC_MMAP_THRESHOLD_MAX)
        _mallopt(libc, M_TOP_PAD, startup_top_pad())


def fresh_buffer_faults(nbytes: int, calls: int = 8, *, faults: Callable[[], int] | None = None) -> float:
    """Minor page faults per :func:`alloc_per_request` of ``nbytes``, over ``calls`` calls: about
    one per page when each buffer is a fresh mapping, about 0 when glibc reuses memory it kept.

    ``faults`` reads a fault count (default :func:`minor_faults`).
    """
    read = minor_faults if faults is None else faults
    f0 = read()
    for _ in range(calls):
        alloc_per_request(nbytes)
    return (read() - f0) / calls


def fresh_mapping_shortfall(faults_per_call: float, nbytes: int, page_size: int = resource.getpagesize()
                            ) -> str | None:
    """None when ``faults_per_call`` shows that each fresh ``nbytes`` buffer was a new mapping (at
    least half its pages faulted in); else what did not hold, in words, for a failure message.

    >>> fresh_mapping_shortfall(257.0, 1 << 20) is None
    True
    """
    pages = -(-nbytes // page_size)
    if faults_per_call >= pages / 2:
        return None
    return (f"a fresh {nbytes}-byte buffer took {faults_per_call:.1f} minor page faults per call where a new "
            f"mapping takes about {pages} (one per {page_size}-byte page): glibc served it from heap memory "
            "it had kept, not by mmap")


def malloc_env(mmap_threshold_bytes: int = 128 * 1024, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a subprocess whose glibc mmaps every allocation >= the threshold.

    ``subprocess.run([...], env=malloc_env())`` measures the "fresh buffer" case exactly, with
    no effect on the calling process. glibc reads ``MALLOC_MMAP_THRESHOLD_`` at startup only.
    """
    env = dict(os.environ if base is None else base)
    env["MALLOC_MMAP_THRESHOLD_"] = str(int(mmap_threshold_bytes))
    return env


def minor_faults() -> int:
    """Minor page faults of this process so far (difference two readings around a request)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
