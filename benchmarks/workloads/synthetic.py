"""A workload whose latency scales by a known factor: the yardstick of the verdict's quality.

``work(n)`` does ``n`` iterations of integer arithmetic in the interpreter; its cost is
almost exactly proportional to ``n`` (the call itself is ~1% at the default size), so
``work(int(n * 1.25))`` is a 25% slower version of ``work(n)`` in every percentile, and
the host's own noise (interrupts, preemption, cache pollution by neighbours) is what the
gate has to see through.
"""
from __future__ import annotations

import os

#: Iterations of the unchanged workload: about 5-10 us per call on a 2020s x86 core.
BASE_ITERATIONS = 200
#: Environment variable that slows the benchmarked workload (``HOSTPERF_SLOWDOWN=2``).
SLOWDOWN_ENV = "HOSTPERF_SLOWDOWN"


def work(n: int) -> int:
    """``n`` iterations of cheap integer arithmetic; returns a checksum so nothing is skipped."""
    acc = 0
    for i in range(n):
        acc = (acc + i * i) & 0xFFFF
    return acc


def slowdown_from_env(environ: dict[str, str] | None = None) -> float:
    """The slowdown factor asked for by ``HOSTPERF_SLOWDOWN`` (default 1.0; must be >= 0.1)."""
    from pytest_hostperf.errors import InvalidArgument

    raw = (os.environ if environ is None else environ).get(SLOWDOWN_ENV, "1")
    try:
        factor = float(raw)
    except ValueError:
        raise InvalidArgument(f"{SLOWDOWN_ENV}={raw!r} is not a number (e.g. 2 or 1.25)") from None
    if not 0.1 <= factor <= 100:
        raise InvalidArgument(f"{SLOWDOWN_ENV}={raw!r} must be between 0.1 and 100 (e.g. 2)")
    return factor


class TailWork:
    """A regression confined to the tail: every ``every``-th call does ``factor`` times the
    work, the others exactly ``work(n)``. With every=50 and factor=2 the mean moves +2% while
    the p99 moves to the slow calls' latency: the change a mean-based gate never sees."""

    def __init__(self, n: int, every: int = 50, factor: float = 2.0) -> None:
        if every < 2 or factor < 1:
            raise ValueError(f"TailWork: every={every} must be >= 2 and factor={factor} >= 1")
        self.n, self.every, self.slow_n = n, every, int(n * factor)
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return work(self.slow_n if self.calls % self.every == 0 else self.n)

    @property
    def mean_factor(self) -> float:
        """The slowdown of the mean this tail costs (1 + (factor - 1) / every)."""
        return 1 + (self.slow_n / self.n - 1) / self.every
