"""The small records every other record is made of: commit, timer, block, host state,
budget, verdict, speedup (see ``records/__init__.py``)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pytest_hostperf.host.control import Applied
from pytest_hostperf.measure.sampling import TimerInfo
from pytest_hostperf.stats.checks import BudgetCheck, SpeedupCheck
from pytest_hostperf.stats.percentiles import BlockStats
from pytest_hostperf.stats.verdict import Verdict
from pytest_hostperf.store.jsonfile import Json
from pytest_hostperf.units import STATS, could_tell_pct

#: JSON report format history:
#: 1 - first version: timer, settings, results with per-block statistics and budgets; before any
#:     release, readers made to accept their absence: ``commit`` and each result's ``histogram``
REPORT_SCHEMA = "pytest-hostperf-report"
REPORT_SCHEMA_VERSION = 1


def _ns(x: float) -> int:
    return round(x)


def _times(value: Callable[[str], int]) -> dict[str, Any]:
    """``{"p50_ns": value("p50"), ..., "mean_ns": value("mean")}``: a record's summary times."""
    return {f"{s}_ns": value(s) for s in (*STATS, "min", "mean")}


def _opt(d: Json, **kv: object) -> Json:
    """``d`` plus the keys whose value is not None (optional keys are absent, not null)."""
    return {**d, **{k: v for k, v in kv.items() if v is not None}}


@dataclass(frozen=True, slots=True)
class Commit:
    """The checkout measured: ``sha``, ``branch``, ``dirty`` (None where unknown)."""
    sha: str | None = None
    branch: str | None = None
    dirty: bool | None = None

    def to_json(self) -> Json:
        return {"sha": self.sha, "branch": self.branch, "dirty": self.dirty}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Commit:
        d = d or {}
        return cls(d.get("sha"), d.get("branch"), d.get("dirty"))


@dataclass(frozen=True, slots=True)
class Timer:
    """The timer's calibration: overhead and resolution are included in every latency."""
    clock: str
    overhead_ns: int
    resolution_ns: int
    pairs: int

    def to_json(self) -> Json:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Timer | None:
        if not d:
            return None
        return cls(str(d["clock"]), int(d["overhead_ns"]), int(d["resolution_ns"]), int(d["pairs"]))

    @classmethod
    def of(cls, info: TimerInfo) -> Timer:
        """From a ``measure.TimerInfo`` (float ns rounded)."""
        return cls(info.clock, _ns(info.overhead_ns), _ns(info.resolution_ns), int(info.pairs))


@dataclass(frozen=True, slots=True)
class Block:
    """One block's size and statistics."""
    n: int
    p50_ns: int
    p90_ns: int
    p99_ns: int
    p999_ns: int
    max_ns: int

    def get(self, stat: str) -> int:
        """``get("p99")`` -> ``p99_ns``."""
        return int(getattr(self, f"{stat}_ns"))

    def to_json(self) -> Json:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Block:
        return cls(int(d["n"]), *(int(d[f"{s}_ns"]) for s in STATS))

    @classmethod
    def of(cls, b: BlockStats) -> Block:
        """From a ``stats.BlockStats``."""
        return cls(int(b.n), *(_ns(b.get(s)) for s in STATS))


def applied_from_json(d: Mapping[str, Any]) -> Applied:
    """A control record (``Applied.as_dict()``) back as an ``Applied``."""
    return Applied(str(d.get("control")), bool(d.get("applied")), str(d.get("detail", "")), d.get("reason"),
                   d.get("fix"))


@dataclass(frozen=True, slots=True)
class HostState:
    """The host state read back from the OS during a measurement, and the controls applied."""
    cpus: tuple[int, ...]
    policy: str
    priority: int | None
    memory_locked: bool | None
    controls: tuple[Json, ...] = ()  # Applied.as_dict() of each control (older files hold fewer keys)
    timed_by: str | None = None  # "pytest-benchmark" when another tool timed the calls
    # pytest-benchmark's rounds paced at SCHED_FIFO: {"pauses": n, "paused_s": seconds outside its rounds}
    paced: Json | None = None

    def to_json(self) -> Json:
        return _opt({"cpus": list(self.cpus), "policy": self.policy, "priority": self.priority,
                     "memory_locked": self.memory_locked, "controls": [dict(a) for a in self.controls]},
                    timed_by=self.timed_by, paced=dict(self.paced) if self.paced is not None else None)

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> HostState | None:
        if not d:
            return None
        return cls(tuple(int(c) for c in d.get("cpus") or ()), str(d.get("policy")), d.get("priority"),
                   d.get("memory_locked"), tuple(dict(a) for a in d.get("controls") or ()), d.get("timed_by"),
                   dict(d["paced"]) if isinstance(d.get("paced"), dict) else None)

    @property
    def rt(self) -> bool:
        return self.policy == "SCHED_FIFO"


@dataclass(frozen=True, slots=True)
class BudgetRecord:
    """One budget checked against one measurement."""
    stat: str
    budget_ns: int
    estimate_ns: int
    interval_ns: tuple[int, int]
    status: str  # "within" | "over-budget" | "inconclusive"
    message: str

    def to_json(self) -> Json:
        return {"stat": self.stat, "budget_ns": self.budget_ns, "estimate_ns": self.estimate_ns,
                "interval_ns": list(self.interval_ns), "status": self.status, "message": self.message}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> BudgetRecord:
        lo, hi = d.get("interval_ns") or (0, 0)
        return cls(str(d.get("stat")), int(d.get("budget_ns") or 0), int(d.get("estimate_ns") or 0),
                   (int(lo), int(hi)), str(d.get("status")), str(d.get("message", "")))

    @classmethod
    def of(cls, c: BudgetCheck) -> BudgetRecord:
        """From a ``verdict.BudgetCheck``."""
        lo, hi = c.interval_ns
        return cls(c.stat, int(c.budget_ns), _ns(c.estimate_ns), (_ns(lo), _ns(hi)), c.status, c.message)


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    """The gate's verdict on one measurement against its baseline."""
    status: str
    stat: str
    ratio: float | None
    interval: tuple[float, float] | None
    baseline_ns: int | None
    current_ns: int
    tolerance_pct: float
    baseline_runs: int
    extra_rounds: int
    reason: str
    pairs: tuple[tuple[int, int], ...] = ()  # paired gate: (head, base) block statistic of each pair

    @property
    def failed(self) -> bool:
        return self.status in ("regressed", "over-budget")

    @property
    def could_tell_pct(self) -> float | None:
        """The smallest change this comparison could tell from none: its 95% interval's
        half-width, in percent of the ratio (``units.could_tell_pct``)."""
        return could_tell_pct(self.interval)

    def to_json(self) -> Json:
        return _opt({"status": self.status, "stat": self.stat, "ratio": self.ratio,
                     "interval": None if self.interval is None else list(self.interval),
                     "baseline_ns": self.baseline_ns, "current_ns": self.current_ns,
                     "tolerance_pct": self.tolerance_pct, "baseline_runs": self.baseline_runs,
                     "extra_rounds": self.extra_rounds, "reason": self.reason},
                    pairs=[list(p) for p in self.pairs] or None,
                    could_tell_pct=None if self.could_tell_pct is None else round(self.could_tell_pct, 2))

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> VerdictRecord | None:
        if d is None:
            return None
        iv = d.get("interval")
        return cls(str(d.get("status")), str(d.get("stat", "p99")), d.get("ratio"),
                   None if iv is None else (float(iv[0]), float(iv[1])), d.get("baseline_ns"),
                   int(d.get("current_ns") or 0), float(d.get("tolerance_pct") or 0.0),
                   int(d.get("baseline_runs") or 0), int(d.get("extra_rounds") or 0), str(d.get("reason", "")),
                   tuple((int(h), int(b)) for h, b in d.get("pairs") or ()))

    @classmethod
    def of(cls, v: Verdict, extra_rounds: int) -> VerdictRecord:
        """From a ``verdict.Verdict`` reached after ``extra_rounds`` re-measured rounds; with
        several gated statistics (``--hostperf-gate``), the worst one's, the others named in its
        reason (``Verdict.detail``). An ``inconclusive`` reason ends with what the comparison
        could tell against the tolerance (``could tell ±14% here; tolerance 10%``)."""
        reason = v.detail
        tell = could_tell_pct(v.interval)
        if v.status == "inconclusive" and tell is not None and "could tell ±" not in reason:
            reason += f"; could tell ±{tell:.0f}% here; tolerance {v.tolerance_pct:g}%"
        return cls(v.status, v.stat, None if v.ratio is None else round(v.ratio, 4),
                   None if v.interval is None else (round(v.interval[0], 4), round(v.interval[1], 4)),
                   None if v.baseline_ns is None else _ns(v.baseline_ns), _ns(v.current_ns), v.tolerance_pct,
                   v.baseline_runs, extra_rounds, reason, tuple((_ns(h), _ns(b)) for h, b in v.pairs))


@dataclass(frozen=True, slots=True)
class SpeedupRecord:
    """One ``expect_faster`` check."""
    fast: str
    slow: str
    stat: str
    factor: float
    speedup: float
    interval: tuple[float, float]
    status: str  # "holds" | "fails" | "inconclusive"
    message: str

    def to_json(self) -> Json:
        return {"fast": self.fast, "slow": self.slow, "stat": self.stat, "factor": self.factor,
                "speedup": self.speedup, "interval": list(self.interval), "status": self.status,
                "message": self.message}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SpeedupRecord:
        lo, hi = d.get("interval") or (0.0, 0.0)
        return cls(str(d.get("fast")), str(d.get("slow")), str(d.get("stat")), float(d.get("factor") or 0),
                   float(d.get("speedup") or 0), (float(lo), float(hi)), str(d.get("status")),
                   str(d.get("message", "")))

    @classmethod
    def of(cls, c: SpeedupCheck) -> SpeedupRecord:
        """From a ``verdict.SpeedupCheck``."""
        return cls(c.fast_id, c.slow_id, c.stat, c.factor, round(c.speedup, 4),
                   (round(c.interval[0], 4), round(c.interval[1], 4)), c.status, c.message)


