"""Open-loop measurement: calls issued at a request rate, each timed from its intended start.

A closed loop (the next call starts when the last one ends) hides stalls: while one call takes
5 ms the calls that would have arrived meanwhile are never issued, so their waiting is never
counted (coordinated omission). Here, as wrk2 does, the calls are scheduled up front at
``rate`` (a fixed interval, or Poisson arrivals), and each call's **latency is measured from its
intended start**: a call that had to wait behind a stall counts that wait. Its **service time**
(from its actual start) is kept beside it, so both questions are answered: what a client saw,
and what the function cost.

The loop sleeps to each intended start by an absolute deadline and spins only for the last
``SPIN_NS`` (bounded in iterations: never unbounded, even at SCHED_FIFO). Blocks are bounded in
calls and time and paused between as closed-loop blocks are (the RT duty cycle). Each block
starts a fresh schedule after its pause, so a backlog never carries across blocks.

``saturated``: the function could not keep up with the rate, read from what happened: the
achieved rate (calls started per second, from each block's first intended start to its last
call's actual start) fell short of the asked by more than ``SATURATION_MARGIN``, or most blocks
ended with a backlog of more than ``BACKLOG_SHARE`` of their span. Such a result never passes a
budget or a comparison silently.
"""
from __future__ import annotations

import math
import re
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_hostperf.errors import InvalidArgument

#: Spin (not sleep) for at most this long before an intended start: a sleep overshoots by the
#: timer slack (50 us by default under SCHED_OTHER), a spin does not.
SPIN_NS = 100_000
#: Spins before an intended start at most (each reads the clock, ~50 ns): a bound, never reached
#: unless the clock stalls.
MAX_SPINS = 200_000
#: Achieved rate below (1 - this) x the asked: saturated.
SATURATION_MARGIN = 0.05
#: A block whose last call started later than this share of the block's span behind its intended
#: start ended with a backlog; most blocks so: saturated.
BACKLOG_SHARE = 0.10
ARRIVALS = ("fixed", "poisson")

_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kKmM]?)\s*(?:/s|hz|Hz)?\s*$")


def parse_rate(value: object) -> float:
    """``"20k/s"`` -> 20000.0; also ``"500/s"``, ``"1.5M/s"``, ``"800hz"`` or a number of calls per second."""
    if isinstance(value, bool):
        raise InvalidArgument(f"rate={value!r}: not a request rate; give calls per second, e.g. rate='20k/s'")
    if isinstance(value, (int, float)):
        rate = float(value)
    else:
        m = _RATE.match(str(value))
        if not m:
            raise InvalidArgument(f"rate={value!r}: not a request rate; give calls per second, e.g. rate='20k/s', "
                                  "'500/s' or 1500")
        rate = float(m.group(1)) * {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}[m.group(2)]
    if not (rate > 0 and math.isfinite(rate)) or rate > 1e8:
        raise InvalidArgument(f"rate={value!r}: must be above 0 and at most 100M/s")
    return rate


def format_rate(rate: float) -> str:
    """20000.0 -> ``20k/s``."""
    for scale, unit in ((1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.3g}{unit}/s"
    return f"{rate:.3g}/s"


@dataclass(frozen=True, slots=True)
class OpenLoop:
    """How an open-loop measurement issues its calls."""

    rate: float  # calls per second asked
    arrivals: str = "fixed"
    seed: int = 0  # Poisson arrivals: the same schedule on both sides of a pair

    def __post_init__(self) -> None:
        if self.arrivals not in ARRIVALS:
            raise InvalidArgument(f"arrivals={self.arrivals!r}: not one of {', '.join(ARRIVALS)}")

    def offsets(self, n: int, rng: np.random.Generator | None = None) -> array[int]:
        """Intended starts of ``n`` calls, in ns from the block's first."""
        gap = 1e9 / self.rate
        if self.arrivals == "fixed":
            off = np.arange(n, dtype=np.float64) * gap
        else:
            rng = rng or np.random.default_rng(self.seed)
            off = np.concatenate([[0.0], np.cumsum(rng.exponential(gap, max(n - 1, 0)))])
        return array("q", off.astype(np.int64).tobytes())


def block_open(fn: Callable[..., Any], args: tuple[Any, ...], lat: array[int], svc: array[int], start: int,
               stop: int, offsets: array[int], first: int, deadline: int, clock: Callable[[], int],
               sleep: Callable[[float], None] = time.sleep) -> tuple[int, int]:
    """Issue calls ``start..stop`` at ``first + offsets[k]``: each call's latency from its intended
    start into ``lat``, its service time into ``svc``. Stops at ``deadline``. Returns the index
    reached and the last call's lateness (its start behind its intended start, ns)."""
    i = start
    k = 0
    late = 0
    while i < stop:
        intended = first + offsets[k]
        now = clock()
        if intended - now > SPIN_NS:
            sleep((intended - now - SPIN_NS) * 1e-9)
        spins = 0
        while clock() < intended and spins < MAX_SPINS:
            spins += 1
        t0 = clock()
        fn(*args)
        t1 = clock()
        lat[i] = t1 - intended
        svc[i] = t1 - t0
        late = t0 - intended
        i += 1
        k += 1
        if t1 >= deadline:
            break
    return i, late


def saturated(asked: float, achieved: float, backlogged: int, blocks: int) -> bool:
    """Whether the function could not keep up: the achieved rate short of the asked by more than
    ``SATURATION_MARGIN``, or more than half the blocks ending with a backlog."""
    return achieved < (1 - SATURATION_MARGIN) * asked or backlogged * 2 > blocks
