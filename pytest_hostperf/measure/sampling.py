"""Taking samples: timer calibration, warm-up, per-call timing into preallocated buffers.

This module returns raw samples; statistics live in ``stats``. The sampling loop is the
one place where every instruction counts: it reads the clock, calls the function, reads the
clock, stores the difference into a buffer allocated before the loop, and checks a deadline.
Nothing else (no allocation, logging or attribute lookup beyond the call itself) happens
between the two clock reads. Each latency includes one timer overhead (about 50 ns here);
it is reported, not subtracted, as cyclictest and pyperf do.

Every loop is bounded in calls and in time, and blocks are separated by short sleeps so a
SCHED_FIFO caller never keeps a core busy for long: the kernel's RT throttling would stop
it for 50 ms once a second, and the reported tail would be the throttle, not the code.
"""
from __future__ import annotations

import functools
import gc
import math
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.host.warm import flat_bytes
from pytest_hostperf.measure import device, openloop  # the warm_cache fixture's view of a buffer

Clock = Callable[[], int]
CudaSurface = device.CudaSurface


@dataclass(frozen=True, slots=True)
class TimerInfo:
    """What the clock costs and how fine it is, measured back to back."""
    clock: str
    overhead_ns: float  # median of back-to-back read pairs, as seen by the sampling loop
    resolution_ns: float  # finest step observed (gcd of the deltas)
    pairs: int


def calibrate(clock: Clock = time.perf_counter_ns, *, pairs: int = 20_000, name: str | None = None) -> TimerInfo:
    """Measure the timer's overhead and resolution with ``pairs`` back-to-back reads.

    The overhead is the median delta of ``t0 = clock(); t1 = clock()``, exactly the empty
    timed region of the sampling loop. The resolution is the greatest common divisor of the
    deltas: timestamps on a 10 ns grid give 10, a true 1 ns clock gives 1.
    """
    if pairs < 2:
        raise InvalidArgument(f"calibrate: pairs must be at least 2, got {pairs}")
    buf = array("q", bytes(8 * pairs))
    for i in range(pairs):
        t0 = clock()
        t1 = clock()
        buf[i] = t1 - t0
    deltas = np.frombuffer(buf, dtype=np.int64)
    positive = deltas[deltas > 0]
    resolution = float(np.gcd.reduce(positive)) if positive.size else 1.0
    return TimerInfo(
        clock=str(name or getattr(clock, "__name__", repr(clock))),
        overhead_ns=float(np.median(deltas)),
        resolution_ns=max(resolution, 1.0),
        pairs=pairs,
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """How to sample one measurement: counts and time bounds."""
    samples: int = 20_000
    blocks: int = 20
    max_seconds: float = 3.0
    warmup_calls: int = 1_000
    warmup_seconds: float = 0.3
    batch: int | None = None  # None: decide from the warm-up
    pause_fraction: float = 0.12  # sleep this share of each block's time after it (duty <= ~89%)
    min_pause_seconds: float = 0.001
    # buffers read through, one byte per cache line, before every block (outside its timing):
    # ``hostperf(fn, ..., warm=[table])``; each side of a paired run gives its own
    warm: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.samples < 1 or self.blocks < 1:
            raise InvalidArgument(f"samples and blocks must be >= 1, got samples={self.samples}, blocks={self.blocks}")
        if not (self.max_seconds > 0 and math.isfinite(self.max_seconds)):
            raise InvalidArgument(f"max_seconds must be positive, got {self.max_seconds!r}")
        if self.batch is not None and self.batch < 1:
            raise InvalidArgument(f"batch must be >= 1, got {self.batch!r}")


#: Smoke mode (``pytest`` without ``--hostperf``): run the code a few times, decide nothing.
SMOKE_PLAN = Plan(samples=6, blocks=2, max_seconds=1.0, warmup_calls=1, warmup_seconds=0.1,
                  pause_fraction=0.0, min_pause_seconds=0.0)


@dataclass(frozen=True, slots=True, eq=False)
class Samples:
    """Raw result of sampling: per-call latencies (ns) in blocks."""
    values: np.ndarray  # float64, per call; for batch > 1 each value is the mean of `batch` calls
    block_sizes: tuple[int, ...]
    batch: int
    warmup_calls: int
    calls: int
    seconds: float
    truncated: bool  # the time budget stopped sampling before `plan.samples` were taken
    counter_names: tuple[str, ...] = ()  # counters read around each block (counters.py)
    counter_deltas: np.ndarray | None = None  # (blocks, counters): each block's delta
    # timer="cuda": ``values`` are each call's device time (CUDA events), and this its host wall time
    wall: np.ndarray | None = None
    timer: str = "wall"
    # open loop (``rate=``): ``values`` are each call's latency from its intended start, ``service``
    # its time from its actual start; ``load`` what was asked and what happened (:func:`load_of`)
    service: np.ndarray | None = None
    load: dict[str, Any] | None = None


def _block_single(fn: Callable[..., Any], args: tuple[Any, ...], buf: array[int], start: int, stop: int,
                  deadline: int, clock: Clock) -> int:
    i = start
    while i < stop:
        t0 = clock()
        fn(*args)
        t1 = clock()
        buf[i] = t1 - t0
        i += 1
        if t1 >= deadline:
            break
    return i


def _block_batched(fn: Callable[..., Any], args: tuple[Any, ...], buf: array[int], start: int, stop: int,
                   deadline: int, clock: Clock, batch: int) -> int:
    # Kept apart from _block_single on purpose: an inner loop run once per sample would add
    # its own cost (tens of ns) inside every single-call timed region.
    inner = range(batch)
    i = start
    while i < stop:
        t0 = clock()
        for _ in inner:
            fn(*args)
        t1 = clock()
        buf[i] = t1 - t0
        i += 1
        if t1 >= deadline:
            break
    return i


def warm_up(fn: Callable[..., Any], args: tuple[Any, ...], plan: Plan, clock: Clock) -> np.ndarray:
    """Call ``fn`` up to ``plan.warmup_calls`` times or ``plan.warmup_seconds``; return the timings."""
    count = max(1, plan.warmup_calls)
    buf = array("q", bytes(8 * count))
    deadline = clock() + int(plan.warmup_seconds * 1e9)
    done = _block_single(fn, args, buf, 0, count, deadline, clock)
    return np.frombuffer(buf, dtype=np.int64)[:done].astype(np.float64)


def _block_returned(fn: Callable[..., Any], args: tuple[Any, ...], buf: array[int], start: int, stop: int,
                    deadline: int, clock: Clock) -> int:
    # Self-timed calls (CUDA events, wake-up lateness) return their own latency in ns.
    i = start
    while i < stop:
        buf[i] = int(fn(*args))
        i += 1
        if clock() >= deadline:
            break
    return i


def _per_call_ns(fn: Callable[..., Any], args: tuple[Any, ...], clock: Clock, *, deadline: int,
                 group: int = 64, groups: int = 8) -> tuple[float, int]:
    """Median cost of one call from ``groups`` timed groups of ``group`` calls (the timer
    amortized), and the number of calls made."""
    buf = array("q", bytes(8 * groups))
    done = _block_batched(fn, args, buf, 0, groups, deadline, clock, group)
    return float(np.median(np.frombuffer(buf, dtype=np.int64)[:done])) / group, done * group


class Turns(Protocol):
    """The seam that decides when each block runs.

    ``before(b)`` returns when block ``b`` may start (it may block: the paired comparison
    waits there for the other side's block); ``before(0)`` is called once more ahead of the
    warm-up, so a side warms up in its own first turn, never beside the other side's block.
    ``after(b, elapsed_ns)`` runs once block ``b`` is timed, outside the timed region;
    ``end()`` once after the last block (a side that finished first waits there until the
    other side's last block is over, so its own summary runs beside no measurement). None of
    them may spin: a SCHED_FIFO caller would starve its core.
    """

    def before(self, block: int) -> None: ...

    def after(self, block: int, elapsed_ns: int) -> None: ...

    def end(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PauseBetweenBlocks:
    """The default turns: blocks run back to back, each followed by a sleep of a share of its
    own time, so a SCHED_FIFO measurement keeps its core busy at most ~89% of the time (RT
    throttling would otherwise stop it for ~50 ms once a second, measured on a shared VM)."""
    pause_fraction: float
    min_pause_seconds: float
    sleep: Callable[[float], None] = time.sleep

    def before(self, block: int) -> None:
        return None

    def after(self, block: int, elapsed_ns: int) -> None:
        pause = max(self.min_pause_seconds, elapsed_ns * 1e-9 * self.pause_fraction)
        if pause > 0:
            self.sleep(pause)

    def end(self) -> None:
        return None


#: A cache line: ``touch`` reads one byte of each.
CACHE_LINE = 64


def warm_buffers(buffers: Any) -> tuple[Any, ...]:
    """``hostperf(..., warm=...)``'s buffers, each checked to be a contiguous buffer (a numpy
    array, bytes, bytearray, memoryview, mmap; a CPU torch tensor through ``.numpy()``)."""
    if buffers is None:
        return ()
    items = list(buffers) if isinstance(buffers, (list, tuple)) else [buffers]
    out = []
    for i, buf in enumerate(items):
        if hasattr(buf, "numpy") and not isinstance(buf, np.ndarray):  # a torch tensor
            buf = buf.detach().cpu().numpy() if hasattr(buf, "detach") else buf.numpy()
        try:
            view = memoryview(buf)
        except TypeError:
            raise InvalidArgument(f"hostperf(..., warm=...): item {i} ({type(buf).__name__}) is not a buffer; give "
                                  "numpy arrays, bytearrays or memoryviews (e.g. warm=[table])") from None
        if not view.contiguous:
            raise InvalidArgument(f"hostperf(..., warm=...): item {i} is not contiguous; give a contiguous array "
                                  "(np.ascontiguousarray(x))")
        out.append(buf)
    return tuple(out)


def touch(buf: Any) -> int:
    """Read one byte of every cache line of ``buf`` (brings it into the caches, faults its pages
    in); returns their sum, so the read cannot be skipped."""
    return int(flat_bytes(buf)[::CACHE_LINE].sum(dtype=np.uint64))


def sample(fn: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, *,
           plan: Plan, timer: TimerInfo, clock: Clock = time.perf_counter_ns,
           sleep: Callable[[float], None] = time.sleep, self_timed: bool = False,
           counters: Any = None, turns: Turns | None = None, cuda: CudaSurface | None = None,
           open_loop: openloop.OpenLoop | None = None) -> Samples:
    """Warm up, choose the batch size, and take ``plan.samples`` samples in ``plan.blocks`` blocks.

    Each block has an equal share of ``plan.max_seconds`` and of the samples; the garbage
    collector is collected once and disabled while blocks run (its young generation is
    collected between blocks), then restored. Exceptions from ``fn`` propagate unchanged.
    With ``self_timed`` each call returns its own latency in ns (e.g. from CUDA events),
    which is recorded instead of the wall time around it; such calls are never batched.
    ``counters`` (a :class:`pytest_hostperf.measure.counters.Reader`) is read just before each block's
    first timestamp and just after its last, never inside the timed region. ``turns``
    decides when each block runs (default :class:`PauseBetweenBlocks` of the plan). With
    ``cuda`` (``timer="cuda"``) each call is bracketed by CUDA events from a ring made before the
    blocks (``device.py``), its device time recorded as its latency and its host wall time
    beside it; the host waits for the device once per block, inside the block's turn. With
    ``open_loop`` (``rate=``) the calls are issued at its rate, each timed from its intended start
    (``openloop.py``), its service time beside it; each block starts a fresh schedule.
    """
    in_turns = turns is not None  # paired: the other side expects exactly plan.blocks blocks
    if turns is None:
        turns = PauseBetweenBlocks(plan.pause_fraction, plan.min_pause_seconds, sleep)
    if kwargs:
        fn = functools.partial(fn, **kwargs)
    if cuda is not None:
        cuda.synchronize()  # the CUDA context exists before the first turn: never made inside one
    started = time.monotonic()
    turns.before(0)  # the warm-up runs in this side's first turn: never beside the other side's block
    warm = warm_up(fn, args, plan, clock)
    call_ns = float(np.median(warm))
    warm_calls = int(warm.size)
    if cuda is not None:
        cuda.synchronize()  # the warm-up's device work ends inside this turn
    per_call = self_timed or cuda is not None or open_loop is not None  # each call its own sample
    batch = 1 if per_call else plan.batch or batch_size(call_ns, timer.overhead_ns, timer.resolution_ns)
    if batch > 1 and plan.batch is None:
        # A single timed call is mostly timer; time groups of calls to learn what one costs.
        call_ns, probe_calls = _per_call_ns(fn, args, clock, deadline=clock() + int(plan.warmup_seconds * 1e9))
        warm_calls += probe_calls
        batch = batch_size(call_ns, timer.overhead_ns, timer.resolution_ns)
    # A call slower than the whole budget would still run once per block: shrink the blocks.
    sample_ns = max(call_ns * batch, 1.0)
    if open_loop is not None:  # a call takes its slot in the schedule at least
        sample_ns = max(sample_ns, 1e9 / open_loop.rate)
    blocks = max(1, min(plan.blocks, plan.samples, int(plan.max_seconds * 1e9 // sample_ns)))
    if in_turns:  # each block takes its turn with one call at least, however slow the call
        blocks = max(1, min(plan.blocks, plan.samples))
    per_block = math.ceil(plan.samples / blocks)  # the buffer's stride; the first blocks take one more call
    want = [plan.samples // blocks + (b < plan.samples % blocks) for b in range(blocks)]  # sums to plan.samples
    block_ns = int(plan.max_seconds * 1e9 / blocks)

    buf = array("q", bytes(8 * per_block * blocks))
    ring = device.EventRing(cuda, per_block) if cuda is not None else None
    dev = np.zeros(per_block * blocks) if ring is not None else None
    svc = array("q", bytes(8 * per_block * blocks)) if open_loop is not None else None
    offsets = open_loop.offsets(per_block) if open_loop is not None and open_loop.arrivals == "fixed" else None
    span_ns = 0  # each block: its last call's actual start after its first intended one
    starts = 0  # each block: its calls after the first (the intervals the span holds)
    backlogged = 0
    sizes: list[int] = []
    deltas: list[np.ndarray] = []
    truncated = False
    gc_was_enabled = gc.isenabled()
    gc.collect()
    try:
        gc.disable()  # inside the try: an interrupt right after it still re-enables the gc
        for b in range(blocks):
            start = b * per_block
            turns.before(b)
            for warm_buf in plan.warm:  # not `buf`: that is the samples' buffer
                touch(warm_buf)
            before = counters.read() if counters is not None else None
            t_start = clock()
            if open_loop is not None and svc is not None:
                sched = offsets if offsets is not None else \
                    open_loop.offsets(per_block, np.random.default_rng((open_loop.seed, b)))  # made before the block
                first = clock()
                end, late = openloop.block_open(fn, args, buf, svc, start, start + want[b], sched, first,
                                                t_start + block_ns, clock, sleep)
                span = sched[max(end - start - 1, 0)]
                span_ns += span + late
                starts += max(end - start - 1, 0)
                backlogged += late > openloop.BACKLOG_SHARE * max(span, 1)
            elif ring is not None and dev is not None:
                end = device.block_cuda(fn, args, ring, buf, start, start + want[b], t_start + block_ns, clock)
                dev[start:end] = ring.elapsed_ns(end - start)  # one wait per block, in this turn
            elif self_timed:
                end = _block_returned(fn, args, buf, start, start + want[b], t_start + block_ns, clock)
            elif batch == 1:
                end = _block_single(fn, args, buf, start, start + want[b], t_start + block_ns, clock)
            else:
                end = _block_batched(fn, args, buf, start, start + want[b], t_start + block_ns, clock, batch)
            elapsed = clock() - t_start
            if before is not None:
                deltas.append(counters.delta(before, counters.read()))
            sizes.append(end - start)
            truncated |= end - start < want[b]
            gc.collect(0)
            turns.after(b, elapsed)
    finally:
        if gc_was_enabled:
            gc.enable()
    finish = getattr(turns, "end", None)  # a Turns written before end() existed has none
    if finish is not None:
        finish()
    raw = np.frombuffer(buf, dtype=np.int64)
    taken = np.concatenate([raw[i * per_block: i * per_block + n] for i, n in enumerate(sizes)])
    values = taken.astype(np.float64) / batch
    service = load = None
    if svc is not None and open_loop is not None:
        service = np.concatenate([np.frombuffer(svc, dtype=np.int64)[i * per_block: i * per_block + n]
                                  for i, n in enumerate(sizes)]).astype(np.float64)
        load = {"rate": open_loop.rate, "arrivals": open_loop.arrivals, "starts": starts,
                "span_s": span_ns / 1e9, "backlogged": backlogged, "blocks": len(sizes)}
    wall = None
    if dev is not None:  # the device times are the latencies; the host's wall times ride beside them
        wall, values = values, np.concatenate([dev[i * per_block: i * per_block + n] for i, n in enumerate(sizes)])
    return Samples(values=values, block_sizes=tuple(sizes), batch=batch, warmup_calls=warm_calls,
                   calls=int(taken.size) * batch + warm_calls, seconds=time.monotonic() - started,
                   truncated=truncated, counter_names=counters.names if counters is not None else (),
                   counter_deltas=np.array(deltas) if deltas else None, wall=wall,
                   timer="cuda" if dev is not None else "wall", service=service, load=load)


def merge(first: Samples, more: Samples) -> Samples:
    """Samples of two sampling rounds of the same function and batch size, as one (more blocks)."""
    if first.batch != more.batch:
        raise InvalidArgument(f"merge: batch sizes differ ({first.batch} vs {more.batch})")
    if first.timer != more.timer:
        raise InvalidArgument(f"merge: timers differ ({first.timer} vs {more.timer})")
    same = first.counter_names == more.counter_names and first.counter_deltas is not None \
        and more.counter_deltas is not None
    wall = np.concatenate([first.wall, more.wall]) if first.wall is not None and more.wall is not None else None
    service = np.concatenate([first.service, more.service]) \
        if first.service is not None and more.service is not None else None
    load = None
    if first.load is not None and more.load is not None:
        load = dict(first.load, **{k: first.load[k] + more.load[k] for k in ("starts", "span_s", "backlogged",
                                                                             "blocks")})
    return Samples(values=np.concatenate([first.values, more.values]),
                   block_sizes=first.block_sizes + more.block_sizes, batch=first.batch,
                   warmup_calls=first.warmup_calls + more.warmup_calls, calls=first.calls + more.calls,
                   seconds=first.seconds + more.seconds, truncated=first.truncated or more.truncated,
                   counter_names=first.counter_names if same else (),
                   counter_deltas=np.concatenate([first.counter_deltas, more.counter_deltas]) if same else None,
                   wall=wall, timer=first.timer, service=service, load=load)


def batch_size(call_ns: float, overhead_ns: float, resolution_ns: float, *,
               min_ratio: float = 20.0, max_batch: int = 1 << 16) -> int:
    """How many calls one sample must span so the timer's cost and grain do not dominate it.

    A sample must last at least ``min_ratio`` timer overheads (and as many resolution
    steps); a call that alone lasts that long is timed alone (1).

    >>> batch_size(call_ns=5000, overhead_ns=50, resolution_ns=10)
    1
    >>> batch_size(call_ns=100, overhead_ns=50, resolution_ns=10)   # needs >= 1000 ns per sample
    10
    """
    need = min_ratio * max(overhead_ns, resolution_ns, 1.0)
    if call_ns >= need:
        return 1
    per_call = max(float(call_ns), 1.0)
    k = int(np.ceil(need / per_call))
    if k > 1 and (k - 1) * per_call >= need:  # need/per_call rounded up past an exact multiple
        k -= 1
    return int(min(max_batch, k))


def load_of(raw: Samples) -> dict[str, Any] | None:
    """An open-loop measurement's load, as reported: the rate asked and achieved, whether it was
    saturated (``openloop.saturated``), the arrivals; None for a closed loop."""
    if raw.load is None:
        return None
    d = raw.load
    # calls started per second of schedule: the intervals between each block's first intended start
    # and its last call's actual start (a stall draining after the last start does not count)
    achieved = d["starts"] / d["span_s"] if d["span_s"] > 0 else d["rate"]
    return {"rate": d["rate"], "achieved": achieved, "arrivals": d["arrivals"],
            "saturated": openloop.saturated(d["rate"], achieved, d["backlogged"], d["blocks"]),
            "backlogged_blocks": d["backlogged"], "blocks": d["blocks"]}
