"""Pure statistics over latency samples: percentiles, per-block statistics, bootstrap intervals.

Nothing here reads a clock or a file; every function takes arrays and returns numbers, so the
rules are tested with exact values. Latencies are nanoseconds throughout.

Why blocks: consecutive samples are correlated (a cache miss, a timer tick or a throttled core
lasts many calls), so a bootstrap over single samples understates the uncertainty. Samples are
taken in blocks. The percentiles a run reports are those of all its samples, pooled (the tail
that happened, bunched into a few blocks or not); their intervals come from resampling whole
blocks (:func:`pooled`). Each block also yields its own percentiles: the gate compares the
median of the block p99s (:func:`estimate`), a statistic one disturbed block cannot move,
and says so wherever it shows it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.units import STATS

#: Percentiles every measurement reports, and their names in records and reports.
QUANTILES: tuple[tuple[str, float], ...] = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9))
#: Statistics with a per-block value (the quantiles plus the block maximum).
#: Percentile method: numpy's default ('linear', Hyndman & Fan type 7), the one users compare with.
METHOD: Literal["linear"] = "linear"
#: The log2-32 bucket scheme (the stored histograms' too): sub-buckets per power of two.
SUB_BUCKETS = 32
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


def pooled(blocks: Sequence[np.ndarray], qs: Sequence[float], *, confidence: float = 0.95,
           resamples: int = BOOTSTRAP_RESAMPLES, rng: np.random.Generator | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    """Percentiles of all samples pooled (exact), their intervals from a bootstrap over whole
    blocks, and the interval of the maximum: ``(point, lo, hi, (max_lo, max_hi))``.

    Each resample draws as many blocks as there are, with replacement, and pools them. Its
    percentiles are read from the pooled samples' log2-32 histogram (1/32 of a power of two
    wide, each bucket standing for the mean of its samples): a resample is then one matrix
    product instead of a sort, at interval ends good to about 1%. An interval always contains
    its point. One block gives zero-width intervals (no spread to learn from).
    """
    if not 0 < confidence < 1:
        raise InvalidArgument(f"confidence must be in (0, 1), got {confidence!r}")
    parts = [np.asarray(b, dtype=np.float64) for b in blocks if np.size(b)]
    if not parts:
        raise InvalidArgument("pooled: no samples")
    values = np.concatenate(parts)
    point = percentiles(values, qs)
    top = float(values.max())
    if len(parts) < 2:
        return point, point.copy(), point.copy(), (top, top)
    buckets, inverse = np.unique(bucket_of(values), return_inverse=True)
    inverse = inverse.reshape(-1)
    edges = np.cumsum([p.size for p in parts])[:-1]
    counts = np.stack([np.bincount(i, minlength=buckets.size) for i in np.split(inverse, edges)]).astype(np.float64)
    level = np.bincount(inverse, weights=values, minlength=buckets.size) / np.maximum(counts.sum(axis=0), 1)
    rng = np.random.default_rng(0) if rng is None else rng
    draws = rng.integers(0, len(parts), size=(resamples, len(parts)))
    weights = np.zeros((resamples, len(parts)))
    np.add.at(weights, (np.repeat(np.arange(resamples), len(parts)), draws.ravel()), 1.0)
    # (resamples, buckets): pooled cumulative counts. einsum's own loops, never BLAS: OpenBLAS's
    # worker threads busy-wait, inherit SCHED_FIFO, and deadlock spinning in a forked child.
    cum = np.cumsum(np.einsum("rb,bk->rk", weights, counts, optimize=False), axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.empty(len(qs)), np.empty(len(qs))
    for j, q in enumerate(qs):
        rank = np.maximum(np.ceil(cum[:, -1] * q / 100.0), 1.0)
        at = np.minimum((cum < rank[:, None]).sum(axis=1), buckets.size - 1)
        lo[j], hi[j] = np.quantile(level[at], [alpha, 1 - alpha])
    block_max = np.array([p.max() for p in parts])
    tops = block_max[draws].max(axis=1)
    max_lo, max_hi = (float(x) for x in np.quantile(tops, [alpha, 1 - alpha]))
    return point, np.minimum(lo, point), np.maximum(hi, point), (min(max_lo, top), max(max_hi, top))


def bucket_of(values: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Bucket index of integer ns values: i such that 2**(i/32) <= v < 2**((i+1)/32); 0 below 1 ns."""
    v = np.maximum(np.asarray(values, dtype=np.float64), 1.0)
    idx = np.floor(np.log2(v) * SUB_BUCKETS).astype(np.int64)
    # log2 can round across a bucket edge; settle those few exactly against the edges.
    idx -= (np.exp2(idx / SUB_BUCKETS) > v)
    idx += (np.exp2((idx + 1) / SUB_BUCKETS) <= v)
    out: npt.NDArray[np.int64] = np.maximum(idx, 0)
    return out
