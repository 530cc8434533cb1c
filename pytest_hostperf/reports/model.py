"""The comparison's data: each input normalized (:class:`Source`, its :class:`Measurement` s and
:class:`RunInfo` s) and the comparison built from them (:class:`Row`, :class:`Step`,
:class:`Comparison`), plus the block-p99 reader the gate's statistic is the median of. The
builder (:mod:`compare`) and the renderers import these; this module imports no renderer.
"""
from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pytest_hostperf.store.records import (
    BudgetRecord,
    Commit,
    HostState,
    ResultRecord,
    StoredMeasurement,
    VerdictRecord,
)

__all__ = ["SEVERITY", "Comparison", "Measurement", "Row", "RunInfo", "Source", "Step", "block_p99s", "label"]

Json = dict[str, Any]
Array = npt.NDArray[np.float64]

#: Row order: what needs attention first.
SEVERITY = ("regressed", "over-budget", "inconclusive", "improved", "unchanged", "not gated", "new", "removed", "-")


@dataclass(frozen=True, slots=True, eq=False)
class Measurement:
    """One measurement of one input. Times in ns; for a baseline of K runs p50 / p99 / p99.9
    are over all the calls of its runs (its merged histogram) and ``runs_p99`` holds K arrays
    of block p99s (what the gate compares)."""

    id: str
    group: str | None
    mode: str
    batch: int
    p50_ns: float
    p90_ns: float
    p99_ns: float
    p999_ns: float
    runs_p99: tuple[Array, ...]  # per run: the p99 of each block
    histogram: Json | None = None  # log2-32 (merged over a baseline's runs)
    host: HostState | None = None  # host state read back during the (newest) measurement
    budgets: tuple[BudgetRecord, ...] = ()  # budget checks (reports only)
    verdict: VerdictRecord | None = None  # the gate's verdict (reports only)
    counters: tuple[Json, ...] = ()  # per run: {counter: {"per_call", "blocks"}} (measure.counters)
    n: int = 0  # samples of the (newest) run: for pytest-benchmark, its rounds
    not_gated: str | None = None  # why its tail is not compared (pytest-benchmark's batched rounds)
    rounds: bool = False  # timed by pytest-benchmark: its values are rounds, split into blocks by count

    @property
    def over_budget(self) -> bool:
        return any(b.status == "over-budget" for b in self.budgets)

    @property
    def nodeid(self) -> str:
        """The test's node id: the id without its trailing ``[name]``."""
        if self.id.endswith("]") and "[" in self.id:
            return self.id[:self.id.rindex("[")]
        return self.id

    @property
    def name(self) -> str:
        """The measurement's name within its test."""
        return self.id[len(self.nodeid) + 1:-1] if self.nodeid != self.id else self.id


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One stored run: when, at which commit, and the p99 of each measurement."""

    created_utc: str | None
    commit: Commit
    p99_ns: dict[str, float]


@dataclass(frozen=True, slots=True, eq=False)
class Source:
    """One input, normalized: a baseline (K runs), a report (one run), or ``none`` (no baseline)."""

    name: str
    kind: str  # "baseline" | "report" | "none"
    host_id: str | None
    fingerprint: Json  # host/fingerprint.py's fingerprint
    audit: dict[str, Any]  # audit readings by check name
    runs: tuple[RunInfo, ...]
    measurements: dict[str, Measurement]
    concurrency: int | None = None
    audit_warnings: tuple[str, ...] = ()  # audit checks that warned: ``swappiness 60``


@dataclass(frozen=True, slots=True)
class Step:
    """One measurement from one input to the next (or to the first): verdict and p99 ratio.

    ``verdict`` is the comparison's own (regressed, improved, unchanged, inconclusive, new,
    removed); ``status`` is what a reader sees: ``over-budget`` wins when the later input
    broke a latency budget, as in the run's own reports."""

    verdict: str
    ratio: float | None = None
    interval: tuple[float, float] | None = None
    reason: str = ""
    over_budget: bool = False
    stat: str = "p99"  # the statistic of ``ratio``: a run's gate may compare others (--hostperf-gate)

    @property
    def status(self) -> str:
        return "over-budget" if self.over_budget else self.verdict


@dataclass(frozen=True, slots=True)
class Row:
    """One measurement across all inputs."""

    id: str
    group: str | None
    values: tuple[Measurement | None, ...]  # per input
    steps: tuple[Step, ...]  # input i against input i-1, for i >= 1
    cumulative: tuple[Step, ...]  # input i against the first, for i >= 1
    notes: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """The verdict of the last input against the one before."""
        return self.steps[-1].status if self.steps else "-"


@dataclass(frozen=True, slots=True)
class Comparison:
    """Inputs, one row per measurement (what needs attention first), host differences."""

    sources: tuple[Source, ...]
    rows: tuple[Row, ...]
    differences: tuple[tuple[str, tuple[str, ...]], ...]
    tolerance_pct: float
    notes: tuple[str, ...] = field(default=())

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label(i) for i in range(len(self.sources)))

    def counts(self) -> dict[str, int]:
        """Rows per verdict of the last step, in :data:`SEVERITY` order."""
        found = [r.status for r in self.rows]
        return {s: found.count(s) for s in SEVERITY if s in found}

    @property
    def regressed(self) -> bool:
        """Whether any measurement of the last input regressed against the one before (also
        one shown as over-budget)."""
        return any(r.steps and r.steps[-1].verdict == "regressed" for r in self.rows)


def label(i: int) -> str:
    """The ``i``-th input's name in tables: ``A``, ``B``, ... ``Z``, then ``#27``."""
    letters = string.ascii_uppercase
    return letters[i] if i < len(letters) else f"#{i + 1}"


def block_p99s(r: ResultRecord | StoredMeasurement) -> Array:
    """A run's block p99s (ns), what its p99* is the median of."""
    return np.array([float(b.p99_ns) for b in r.blocks], dtype=np.float64)
