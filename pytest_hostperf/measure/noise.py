"""Host noise probe in the spirit of rtla osnoise: how often, and how long, the host takes the
CPU away from a thread that only wants to run.

A pinned thread spins reading the clock for ``seconds``; every gap between two consecutive
reads longer than ``threshold_ns`` is an interruption (an interrupt, a preempting task, the
hypervisor running another guest). The probe records their count, total and longest, and the
share of the spin they took. hostperf runs it before and after the measurements of a run,
stores it with the run in the baseline, and compares: a run whose noise is well above the
baseline's was taken on a noisy host, and the verdicts say so and widen their intervals
rather than blame the code. Bounded: ``seconds`` of spinning (default 50 ms), at most
1,000,000 clock reads; run at normal priority, so it never starves the host.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

#: A gap longer than this between two clock reads is an interruption (osnoise's default is 5 us;
#: a Python loop iteration costs ~0.1-0.3 us, so 10 us leaves a wide margin).
THRESHOLD_NS = 10_000
#: A run is "noisy" when its interrupted share exceeds the baseline's by this factor...
NOISY_FACTOR = 3.0
#: ...and is at least this share of the time.
NOISY_MIN_SHARE = 0.005


@dataclass(frozen=True)
class Noise:
    """One probe (or several combined): its length, threshold and the interruptions seen."""

    seconds: float
    threshold_ns: int
    count: int
    total_ns: int
    longest_ns: int

    @property
    def share(self) -> float:
        """Fraction of the probe's time lost to interruptions."""
        return self.total_ns / max(self.seconds * 1e9, 1.0)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the share."""
        return {**asdict(self), "share": round(self.share, 6)}

    def text(self) -> str:
        """One line for the report: ``3 interruptions > 10 us in 50 ms, 0.12% of the time, ...``."""
        return (f"{self.count} interruptions > {self.threshold_ns / 1e3:g} us in {self.seconds * 1e3:.0f} ms, "
                f"{self.share:.2%} of the time, longest {self.longest_ns / 1e3:.0f} us")


def probe(seconds: float = 0.05, threshold_ns: int = THRESHOLD_NS, max_reads: int = 1_000_000) -> Noise:
    """Spin for ``seconds`` (at most ``max_reads`` clock reads) and record the gaps."""
    clock = time.perf_counter_ns
    count = total = longest = 0
    start = prev = clock()
    end = start + int(seconds * 1e9)
    for _ in range(max_reads):
        now = clock()
        gap = now - prev
        if gap > threshold_ns:
            count += 1
            total += gap
            longest = max(longest, gap)
        prev = now
        if now >= end:
            break
    return Noise(seconds=(prev - start) / 1e9, threshold_ns=threshold_ns, count=count, total_ns=total,
                 longest_ns=longest)


def combine(probes: list[Noise]) -> Noise:
    """Several probes of one run as one."""
    return Noise(seconds=sum(p.seconds for p in probes), threshold_ns=probes[0].threshold_ns,
                 count=sum(p.count for p in probes), total_ns=sum(p.total_ns for p in probes),
                 longest_ns=max(p.longest_ns for p in probes))


def is_noisy(current_share: float, baseline_shares: list[float]) -> bool:
    """Whether this run's noise is well above what the baseline's runs saw."""
    if not baseline_shares:
        return False
    ref = sorted(baseline_shares)[len(baseline_shares) // 2]
    return current_share >= NOISY_MIN_SHARE and current_share > NOISY_FACTOR * ref
