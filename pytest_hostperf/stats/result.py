"""The record of one measurement, as the fixture returns it and reports render it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_hostperf.measure.openloop import format_rate
from pytest_hostperf.measure.sampling import Samples, load_of
from pytest_hostperf.stats import counter_changes
from pytest_hostperf.stats import percentiles as stats


@dataclass(frozen=True, slots=True, eq=False)
class Result:
    """Per-call latency of one named measurement. All times are nanoseconds.

    ``p50``/``p90``/``p99``/``p999``, ``max``, ``min`` and ``mean`` are over all samples, pooled:
    the tail that happened. ``interval(stat)`` gives the 95% interval of each from a bootstrap
    over whole blocks. ``blocks`` keeps each block's own statistics; the gate compares the
    median of the block p99s (``gate_p99``), which one disturbed block cannot move.
    When ``batch > 1`` every sample is the mean of ``batch`` consecutive calls: such
    percentiles understate the tail, and every output labels them ``batched(k)``.
    """

    id: str
    nodeid: str
    name: str
    group: str | None
    batch: int
    n: int
    calls: int
    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    min: float
    mean: float
    blocks: tuple[stats.BlockStats, ...]
    intervals: dict[str, tuple[float, float]]
    seconds: float
    truncated: bool
    smoke: bool = False
    samples: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    counters: dict[str, Any] | None = field(default=None, repr=False)  # per call (counter_changes.py)
    series: str | None = None  # the marker's ``series``: a steps table (steps.py)
    timer: str = "wall"  # "cuda": each latency is the call's device time from CUDA events
    wall: dict[str, float] | None = None  # timer="cuda": the host wall time of the calls, p50 and p99
    # rate=: the load (rate asked and achieved, saturated, arrivals) and the calls' service time percentiles
    load: dict[str, Any] | None = None

    @property
    def mode(self) -> str:
        """``single`` when each call was timed alone, else ``batched(k)``; ``cuda-events`` when
        each call's device time was taken with CUDA events (``timer="cuda"``)."""
        if self.timer == "cuda":
            return "cuda-events"
        if self.load is not None:
            return f"open-loop({format_rate(self.load['rate'])})"
        return "single" if self.batch == 1 else f"batched({self.batch})"

    @property
    def saturated(self) -> bool:
        """An open-loop measurement whose function could not keep up with the rate asked."""
        return bool(self.load and self.load.get("saturated"))

    @property
    def batched(self) -> bool:
        """Whether samples are means of several calls (so the tail is understated)."""
        return self.batch > 1

    def interval(self, stat: str) -> tuple[float, float]:
        """The 95% bootstrap interval (over blocks) of an estimate: ``"p50"`` ... ``"max"``."""
        return self.intervals[stat]

    @property
    def gate_p99(self) -> float:
        """The median of the block p99s: the statistic the p99 gate compares (robust to one
        disturbed block); the reported ``p99`` is over all calls."""
        return stats.estimate(self.blocks, "p99")


def summarize(raw: Samples, *, nodeid: str, name: str, group: str | None = None, smoke: bool = False,
              rng: np.random.Generator | None = None, series: str | None = None) -> Result:
    """Turn raw samples into a ``Result``: block statistics, estimates and their intervals."""
    parts = stats.split_blocks(raw.values, raw.block_sizes)
    blocks = tuple(stats.block_stats(b) for b in parts)
    rng = np.random.default_rng(0) if rng is None else rng
    point, lo, hi, max_ci = stats.pooled(parts, [q for _, q in stats.QUANTILES], rng=rng)
    est = {name: float(v) for (name, _), v in zip(stats.QUANTILES, point)}
    intervals = {name: (float(a), float(b)) for (name, _), a, b in zip(stats.QUANTILES, lo, hi)}
    intervals["max"] = max_ci
    counters = None
    deltas = raw.counter_deltas
    if deltas is not None and len(deltas) == len(raw.block_sizes):
        calls = np.asarray(raw.block_sizes, dtype=np.float64) * raw.batch
        counters = counter_changes.per_call(raw.counter_names, deltas, calls)
    return Result(
        id=f"{nodeid}[{name}]", nodeid=nodeid, name=name, group=group, batch=raw.batch, n=int(raw.values.size),
        calls=raw.calls, p50=est["p50"], p90=est["p90"], p99=est["p99"], p999=est["p999"],
        max=float(raw.values.max()), min=float(raw.values.min()), mean=float(raw.values.mean()), blocks=blocks,
        intervals=intervals, seconds=raw.seconds, truncated=raw.truncated, smoke=smoke, samples=raw.values,
        counters=counters, series=series, timer=raw.timer,
        wall=None if raw.wall is None or not raw.wall.size else
        {"p50": float(np.percentile(raw.wall, 50)), "p99": float(np.percentile(raw.wall, 99))},
        load=_load(raw),
    )


def _load(raw: Samples) -> dict[str, Any] | None:
    """An open-loop result's load: what ``sampling.load_of`` says, and the service time's p50, p99, p99.9."""
    load = load_of(raw)
    if load is None or raw.service is None or not raw.service.size:
        return load
    return dict(load, service={s: float(np.percentile(raw.service, q)) for s, q in
                               (("p50", 50), ("p99", 99), ("p999", 99.9))})
