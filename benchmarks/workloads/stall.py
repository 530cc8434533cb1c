"""A function with rare stalls: ~20 us of work a call, and every ``every``-th call a 5 ms stall
(a GC pause, a page-cache miss, a lock held by a flusher). Closed-loop its p99 stays near 20 us
(0.5% of the calls stall); open-loop at half its capacity, the ~55 requests that arrive during a
stall queue behind it, and the tail shows it (coordinated omission made visible)."""
from __future__ import annotations

import time

__all__ = ["Stalling"]


class Stalling:
    """``Stalling(work_us=20, stall_ms=5, every=200)()``: one call. Each call spins ``work_us``
    on the clock (bounded by it); every ``every``-th sleeps ``stall_ms`` on top."""

    def __init__(self, work_us: float = 20.0, stall_ms: float = 5.0, every: int = 200) -> None:
        if work_us < 0 or stall_ms < 0 or every < 1:
            raise ValueError("Stalling: work_us and stall_ms must be >= 0 and every >= 1")
        self.work_ns = int(work_us * 1000)
        self.stall_s = stall_ms / 1000
        self.every = every
        self.calls = 0

    @property
    def capacity(self) -> float:
        """Calls per second it sustains: one over its mean service time."""
        return 1e9 / (self.work_ns + self.stall_s * 1e9 / self.every)

    def __call__(self) -> None:
        self.calls += 1
        end = time.perf_counter_ns() + self.work_ns
        while time.perf_counter_ns() < end:
            pass
        if self.calls % self.every == 0:
            time.sleep(self.stall_s)
