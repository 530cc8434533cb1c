"""Timer wake-up latency, the way cyclictest measures it: sleep to a deadline, see how late.

``wakeup_latency(interval_ns)`` sleeps ``interval_ns`` and returns how many ns after the
deadline the thread was running again: the timer's slack, the wake-up IPI, the scheduler
and anything else on the CPU. ``Cyclic(interval_ns)`` is the periodic form (deadlines on a
fixed grid, as cyclictest's loop), one period per call.

How we sleep, and why: ``time.sleep``. Since Python 3.11 it *is* an absolute-deadline
``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``, retried to the same deadline after a
signal, and ``perf_counter_ns`` reads that same CLOCK_MONOTONIC on Linux. The only cost of
passing a relative duration is the ~0.1 us between reading the clock and entering the
call, which shows up as lateness and is far below the kernel's effects (a ctypes call to
``clock_nanosleep`` would cost more than that in call overhead). On 3.10 ``time.sleep``
uses ``select()`` with 1 us resolution: results are comparable, slightly coarser.

What dominates on a stock kernel is timer slack: a SCHED_OTHER thread's timers may fire up
to ``timerslack_ns`` (default 50 us) late so the kernel can batch wake-ups. SCHED_FIFO
threads get no slack. :func:`timer_slack` sets it for the calling thread and restores it.

The returned lateness is the measurement; a fixture that times the call itself sees
``interval + lateness``.
"""
from __future__ import annotations

import contextlib
import ctypes
import time
from collections.abc import Callable, Iterator

from benchmarks.workloads import _libc
from pytest_hostperf.errors import HostControlError, InvalidArgument

__all__ = ["wakeup_latency", "Cyclic", "timer_slack_ns", "timer_slack"]

Clock = Callable[[], int]
Sleep = Callable[[float], None]

_PR_SET_TIMERSLACK = 29
_PR_GET_TIMERSLACK = 30


def _check_interval(interval_ns: int) -> int:
    if not isinstance(interval_ns, int) or isinstance(interval_ns, bool) or interval_ns <= 0:
        raise InvalidArgument(f"interval_ns: {interval_ns!r} is not a positive number of ns (e.g. 100_000)")
    return interval_ns


def wakeup_latency(interval_ns: int, *, clock: Clock = time.perf_counter_ns, sleep: Sleep = time.sleep) -> int:
    """Sleep until ``now + interval_ns``; return how late (ns) the wake-up was.

    >>> late = wakeup_latency(100_000)      # a 100 us sleep
    >>> late >= 0
    True
    """
    if interval_ns <= 0:
        _check_interval(interval_ns)
    deadline = clock() + interval_ns
    remaining = deadline - clock()
    if remaining > 0:
        sleep(remaining / 1e9)
    return clock() - deadline


class Cyclic:
    """cyclictest's loop, one period per call: sleep to the next deadline on a fixed grid.

    Deadlines are ``t0 + k * interval_ns``. A call that finds the next deadline already
    past (the caller paused, e.g. between measurement blocks) re-anchors the grid at now
    instead of reporting the pause as lateness; ``overruns`` counts those re-anchors.
    Returns the lateness of this wake-up in ns.
    """

    __slots__ = ("interval_ns", "overruns", "_next", "_clock", "_sleep")

    def __init__(self, interval_ns: int, *, clock: Clock = time.perf_counter_ns, sleep: Sleep = time.sleep) -> None:
        self.interval_ns = _check_interval(interval_ns)
        self.overruns = 0
        self._next: int | None = None
        self._clock = clock
        self._sleep = sleep

    def __call__(self) -> int:
        """Sleep to the next deadline; return how late the wake-up was (ns)."""
        now = self._clock()
        nxt = self._next
        if nxt is None:
            nxt = now + self.interval_ns
        else:
            nxt += self.interval_ns
            if nxt <= now:
                self.overruns += 1
                nxt = now + self.interval_ns
        self._next = nxt
        remaining = nxt - self._clock()
        if remaining > 0:
            self._sleep(remaining / 1e9)
        return self._clock() - nxt

    def reset(self) -> None:
        """Forget the grid: the next call anchors a new one."""
        self._next = None


def _prctl() -> Callable[..., int]:
    return _libc.load().prctl  # (int, unsigned long x4) -> int, declared in _libc


def timer_slack_ns() -> int:
    """The calling thread's timer slack in ns (``prctl(PR_GET_TIMERSLACK)``; Linux only)."""
    rc = _prctl()(_PR_GET_TIMERSLACK, 0, 0, 0, 0)
    if rc < 0:
        raise HostControlError(ctypes.get_errno(), "prctl(PR_GET_TIMERSLACK) failed")
    return rc


@contextlib.contextmanager
def timer_slack(ns: int = 1) -> Iterator[int]:
    """Set the calling thread's timer slack to ``ns`` for the block; restore it after.

    ``ns=1`` is the smallest (0 would mean "back to the default"). Yields the previous value.
    Unprivileged; affects only the calling thread.
    """
    if not isinstance(ns, int) or ns < 1:
        raise InvalidArgument(f"ns: {ns!r} must be an int >= 1 (0 would reset to the default slack)")
    prctl = _prctl()
    before = timer_slack_ns()
    if prctl(_PR_SET_TIMERSLACK, ns, 0, 0, 0) != 0:
        raise HostControlError(ctypes.get_errno(), f"prctl(PR_SET_TIMERSLACK, {ns}) failed")
    try:
        yield before
    finally:
        prctl(_PR_SET_TIMERSLACK, before, 0, 0, 0)
