"""Pure statistics over latency samples: percentiles, per-block statistics, bootstrap intervals.

Nothing here reads a clock or a file; every function takes arrays and returns numbers, so the
rules are tested with exact values. Latencies are nanoseconds throughout.

Why blocks: consecutive samples are correlated (a cache miss, a timer tick or a throttled core
lasts many calls), so a bootstrap over single samples understates the uncertainty. Samples are
taken in blocks; each block yields its own percentiles; the run's estimate of a percentile is
the median of the block values, and its interval comes from resampling whole blocks.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pytest_hostperf.errors import InvalidArgument

#: Percentiles every measurement reports, and their names in records and reports.
QUANTILES: tuple[tuple[str, float], ...] = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9))
#: Statistics with a per-block value (the quantiles plus the block maximum).
STATS: tuple[str, ...] = tuple(name for name, _ in QUANTILES) + ("max",)
#: Percentile method: numpy's default ('linear', Hyndman & Fan type 7), the one users compare with.
METHOD: Literal["linear"] = "linear"
#: Bootstrap resamples. 2000 gives interval ends stable to about 1% for 20 blocks.
BOOTSTRAP_RESAMPLES = 2000


def percentiles(samples: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Percentiles (0..100) of ``samples``, numpy's linear method.

    >>> percentiles(np.arange(1, 101), [50, 99]).tolist()
    [50.5, 99.01]
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.size == 0:
        raise InvalidArgument("percentiles: no samples")
    return np.asarray(np.percentile(samples, list(qs), method=METHOD), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class BlockStats:
    """Statistics of one block of samples: its size, its quantiles and its maximum, in ns."""

    n: int
    p50: float
    p90: float
    p99: float
    p999: float
    max: float

    def get(self, stat: str) -> float:
        """Value of one statistic by name (``"p99"``, ``"max"``...)."""
        return float(getattr(self, stat))


def block_stats(samples: np.ndarray) -> BlockStats:
    """Statistics of one block of samples."""
    samples = np.asarray(samples, dtype=np.float64)
    values = percentiles(samples, [q for _, q in QUANTILES])
    p50, p90, p99, p999 = (float(v) for v in values)
    return BlockStats(int(samples.size), p50, p90, p99, p999, float(samples.max()))


def split_blocks(samples: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Split a flat sample array into consecutive blocks of the given sizes (empty ones dropped)."""
    if sum(sizes) != len(samples):
        raise InvalidArgument(f"split_blocks: sizes add up to {sum(sizes)}, samples hold {len(samples)}")
    edges = np.cumsum(sizes)[:-1]
    return [b for b in np.split(np.asarray(samples), edges) if b.size]


def block_values(blocks: Sequence[BlockStats], stat: str) -> np.ndarray:
    """One statistic of every block, as an array."""
    if stat not in STATS:
        raise InvalidArgument(f"unknown statistic {stat!r}; choose one of {', '.join(STATS)}")
    return np.array([b.get(stat) for b in blocks], dtype=np.float64)


def estimate(blocks: Sequence[BlockStats], stat: str) -> float:
    """The run's estimate of a statistic: the median of its block values."""
    values = block_values(blocks, stat)
    if values.size == 0:
        raise InvalidArgument("estimate: no blocks")
    return float(np.median(values))


def bootstrap_medians(values: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES,
                      rng: np.random.Generator | None = None) -> np.ndarray:
    """Medians of ``resamples`` bootstrap resamples (with replacement) of ``values``."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise InvalidArgument("bootstrap: no values")
    rng = np.random.default_rng(0) if rng is None else rng
    idx = rng.integers(0, values.size, size=(resamples, values.size))
    return np.asarray(np.median(values[idx], axis=1), dtype=np.float64)


def interval(values: np.ndarray, *, confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
             rng: np.random.Generator | None = None) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median of ``values`` (block values).

    A single block gives a zero-width interval at its value: with one block there is no
    spread to learn from, and callers treat such a run as unable to decide anything.
    """
    if not 0 < confidence < 1:
        raise InvalidArgument(f"confidence must be in (0, 1), got {confidence!r}")
    meds = bootstrap_medians(values, resamples=resamples, rng=rng)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(meds, [alpha, 1 - alpha])
    return float(lo), float(hi)


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
