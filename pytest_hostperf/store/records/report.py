"""The report of one run (``--hostperf-json``) and its results (see ``records/__init__.py``)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pytest_hostperf.host.control import Applied
from pytest_hostperf.stats.result import Result
from pytest_hostperf.store.jsonfile import Json
from pytest_hostperf.store.records.parts import (
    REPORT_SCHEMA,
    REPORT_SCHEMA_VERSION,
    Block,
    BudgetRecord,
    Commit,
    HostState,
    SpeedupRecord,
    Timer,
    VerdictRecord,
    _ns,
    _opt,
    _times,
    applied_from_json,
)


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """One measurement of a run, as the report holds it."""

    id: str
    nodeid: str
    name: str
    group: str | None
    mode: str
    batch: int
    n: int
    calls: int
    smoke: bool
    truncated: bool
    seconds: float
    p50_ns: int
    p90_ns: int
    p99_ns: int
    p999_ns: int
    max_ns: int
    min_ns: int
    mean_ns: int
    intervals_ns: dict[str, tuple[int, int]]
    blocks: tuple[Block, ...]
    budgets: tuple[BudgetRecord, ...] = ()
    histogram: Json | None = None  # log2-32 (histogram.py)
    host: HostState | None = None
    verdict: VerdictRecord | None = None
    why: str | None = None  # counters that changed against the baseline
    not_gated: str | None = None  # why no verdict was reached (batched pytest-benchmark rounds)
    counters: Json | None = None  # per-call counters (counters.py)
    worker: str | None = None  # the xdist worker that measured it
    series: str | None = None  # the steps table it is a step of (the marker's ``series``; steps.py)
    wall_ns: Json | None = None  # timer="cuda": the calls' host wall time, {"p50": ns, "p99": ns}
    load: Json | None = None  # rate=: rate asked and achieved, saturated, arrivals, service time percentiles

    def get(self, stat: str) -> int:
        """``get("p99")`` -> ``p99_ns``."""
        return int(getattr(self, f"{stat}_ns"))

    @property
    def over_budget(self) -> bool:
        return any(b.status == "over-budget" for b in self.budgets)

    @property
    def status(self) -> str:
        """What a reader sees: over-budget wins over the baseline comparison."""
        if self.over_budget:
            return "over-budget"
        return self.verdict.status if self.verdict else "-"

    def to_json(self) -> Json:
        d: Json = {f.name: getattr(self, f.name) for f in fields(self)
                   if f.name not in ("intervals_ns", "blocks", "budgets", "host", "verdict", "why", "not_gated",
                                     "counters", "worker", "series", "wall_ns", "load")}
        d["intervals_ns"] = {s: list(v) for s, v in sorted(self.intervals_ns.items())}
        d["blocks"] = [b.to_json() for b in self.blocks]
        d["budgets"] = [b.to_json() for b in self.budgets]
        return _opt(d, host=None if self.host is None else self.host.to_json(),
                    verdict=None if self.verdict is None else self.verdict.to_json(), why=self.why,
                    not_gated=self.not_gated, counters=self.counters, worker=self.worker,
                    series=self.series, wall_ns=dict(self.wall_ns) if self.wall_ns else None,
                    load=dict(self.load) if self.load else None)

    @classmethod
    def of(cls, r: Result, *, budgets: Sequence[BudgetRecord] = (), histogram: Json | None = None,
           host: HostState | None = None, verdict: VerdictRecord | None = None, why: str | None = None,
           not_gated: str | None = None, counters: Json | None = None) -> ResultRecord:
        """From a ``result.Result`` (the fixture's return value) and what the gate decided."""
        return cls(id=r.id, nodeid=r.nodeid, name=r.name, group=r.group, mode=r.mode, batch=r.batch, n=r.n,
                   calls=r.calls, smoke=r.smoke, truncated=r.truncated, seconds=round(r.seconds, 6),
                   **_times(lambda s: _ns(getattr(r, s))),
                   intervals_ns={s: (_ns(lo), _ns(hi)) for s, (lo, hi) in r.intervals.items()},
                   blocks=tuple(Block.of(b) for b in r.blocks), budgets=tuple(budgets), histogram=histogram,
                   host=host, verdict=verdict, why=why, not_gated=not_gated, counters=counters,
                   series=r.series, wall_ns={s: _ns(v) for s, v in r.wall.items()} if r.wall else None,
                   load=_load_record(r.load))

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ResultRecord:
        intervals = {str(s): (int(v[0]), int(v[1])) for s, v in (d.get("intervals_ns") or {}).items()}
        return cls(
            id=str(d["id"]), nodeid=str(d.get("nodeid", _nodeid_of(str(d["id"])))),
            name=str(d.get("name", _name_of(str(d["id"])))), group=d.get("group"), mode=str(d["mode"]),
            batch=int(d["batch"]), n=int(d.get("n") or 0), calls=int(d.get("calls") or 0),
            smoke=bool(d.get("smoke", False)), truncated=bool(d.get("truncated", False)),
            seconds=float(d.get("seconds") or 0.0),
            **_times(lambda s: _ns(float(d.get(f"{s}_ns") or 0))),
            intervals_ns=intervals, blocks=tuple(Block.from_json(b) for b in d["blocks"]),
            budgets=tuple(BudgetRecord.from_json(b) for b in d.get("budgets") or ()),
            histogram=d.get("histogram"), host=HostState.from_json(d.get("host")),
            verdict=VerdictRecord.from_json(d.get("verdict")), why=d.get("why"), not_gated=d.get("not_gated"),
            counters=d.get("counters") if isinstance(d.get("counters"), dict) else None, worker=d.get("worker"),
            series=d.get("series") if isinstance(d.get("series"), str) else None,
            wall_ns=dict(d["wall_ns"]) if isinstance(d.get("wall_ns"), dict) else None,
            load=dict(d["load"]) if isinstance(d.get("load"), dict) else None)


def _load_record(load: Mapping[str, Any] | None) -> Json | None:
    """An open-loop result's load as the report keeps it (rates in calls/s, times in whole ns)."""
    if not load:
        return None
    out = {"rate_per_s": round(float(load["rate"]), 3), "achieved_per_s": round(float(load["achieved"]), 3),
           "saturated": bool(load["saturated"]), "arrivals": str(load["arrivals"])}
    if load.get("service"):
        out["service_ns"] = {s: _ns(v) for s, v in load["service"].items()}
    return out


def _nodeid_of(mid: str) -> str:
    """The test's node id: a measurement id without its trailing ``[name]``."""
    return mid[:mid.rindex("[")] if mid.endswith("]") and "[" in mid else mid


def _name_of(mid: str) -> str:
    node = _nodeid_of(mid)
    return mid[len(node) + 1:-1] if node != mid else mid


@dataclass(frozen=True, slots=True)
class Settings:
    samples: int
    max_time_s: float
    tolerance_pct: float
    strict: bool

    def to_json(self) -> Json:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Settings:
        d = d or {}
        return cls(int(d.get("samples") or 0), float(d.get("max_time_s") or 0.0),
                   float(d.get("tolerance_pct", 10.0)), bool(d.get("strict", False)))


@dataclass(frozen=True, slots=True)
class BaselineInfo:
    """Which baseline the run was compared with, and how the host differs from it."""

    host_id: str | None
    path: str | None
    exists: bool
    runs: int
    host_differences: tuple[str, ...] = ()

    def to_json(self) -> Json:
        return {"host_id": self.host_id, "path": self.path, "exists": self.exists, "runs": self.runs,
                "host_differences": list(self.host_differences)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> BaselineInfo | None:
        if d is None:
            return None
        return cls(d.get("host_id"), d.get("path"), bool(d.get("exists")), int(d.get("runs") or 0),
                   tuple(d.get("host_differences") or ()))


@dataclass(frozen=True, slots=True)
class HostInfo:
    """The run's host: fingerprint (host/), tuning audit, and controls that could not be applied."""

    fingerprint: Json
    audit: tuple[Json, ...]
    not_applied: tuple[Applied, ...] = ()

    def to_json(self) -> Json:
        return {"fingerprint": dict(self.fingerprint), "audit": [dict(a) for a in self.audit],
                "not_applied": [a.as_dict() for a in self.not_applied]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> HostInfo | None:
        if d is None:
            return None
        return cls(dict(d.get("fingerprint") or {}), tuple(a for a in d.get("audit") or () if isinstance(a, dict)),
                   tuple(applied_from_json(a) for a in d.get("not_applied") or ()))

    def readings(self) -> dict[str, Any]:
        """Audit readings by check name."""
        return {a["name"]: a["reading"] for a in self.audit}

    def warnings(self) -> tuple[str, ...]:
        """``swappiness 60``: the audit checks that warned, with their reading."""
        return audit_warnings(self.audit)


def audit_warnings(audit: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The audit entries that warned, as ``name reading`` (the reading's advice cut off)."""
    return tuple(f"{a['name']} {str(a['reading']).split(' (', 1)[0]}" for a in audit
                 if isinstance(a, Mapping) and a.get("verdict") == "warn")


@dataclass(frozen=True, slots=True)
class CountersInfo:
    enabled: bool
    read_cost_ns: int = 0
    unavailable: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> Json:
        if not self.enabled:
            return {"enabled": False}
        return {"enabled": True, "read_cost_ns": self.read_cost_ns, "unavailable": dict(self.unavailable)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> CountersInfo | None:
        if not d:
            return None
        return cls(bool(d.get("enabled")), int(d.get("read_cost_ns") or 0), dict(d.get("unavailable") or {}))


@dataclass(frozen=True, slots=True)
class NoiseInfo:
    """The host-noise probes (noise.py) of the run and the baseline's share for comparison."""

    probes: dict[str, Json]  # "before"/"after" -> Noise.as_dict() plus its "text"
    share: float
    baseline_share: float | None
    noisy: bool

    def to_json(self) -> Json:
        return {"probes": {k: dict(v) for k, v in self.probes.items()}, "share": self.share,
                "baseline_share": self.baseline_share, "noisy": self.noisy}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> NoiseInfo | None:
        if not d:
            return None
        return cls({str(k): dict(v) for k, v in (d.get("probes") or {}).items()}, float(d.get("share") or 0.0),
                   d.get("baseline_share"), bool(d.get("noisy")))

    def texts(self) -> list[str]:
        """``before 12 interruptions > 10 us ...`` per probe."""
        return [f"{k} {v['text']}" for k, v in self.probes.items()]

    def stored(self) -> Json:
        """What a baseline run keeps of it."""
        return {"share": self.share, "probes": {k: dict(v) for k, v in self.probes.items()}}


@dataclass(frozen=True, slots=True)
class Report:
    """One run as the JSON report holds it; built once per run, handed to every sink."""

    created_utc: str
    mode: str  # "full" | "smoke"
    commit: Commit
    settings: Settings
    baseline: BaselineInfo | None
    timer: Timer | None
    concurrency: int
    tools: dict[str, str]
    speedups: tuple[SpeedupRecord, ...]
    host: HostInfo | None
    counters: CountersInfo | None
    noise: NoiseInfo | None
    notes: tuple[str, ...]
    results: tuple[ResultRecord, ...]

    def to_json(self) -> Json:
        return {
            "schema": REPORT_SCHEMA, "schema_version": REPORT_SCHEMA_VERSION, "created_utc": self.created_utc,
            "mode": self.mode, "commit": self.commit.to_json(), "settings": self.settings.to_json(),
            "baseline": None if self.baseline is None else self.baseline.to_json(),
            "timer": None if self.timer is None else self.timer.to_json(), "concurrency": self.concurrency,
            "tools": dict(self.tools), "speedups": [s.to_json() for s in self.speedups],
            "host": None if self.host is None else self.host.to_json(),
            "counters": None if self.counters is None else self.counters.to_json(),
            "noise": None if self.noise is None else self.noise.to_json(), "notes": list(self.notes),
            "results": [r.to_json() for r in self.results],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Report:
        """From a report document (checked by ``schema.check_report`` when read from a file)."""
        return cls(
            created_utc=str(d.get("created_utc") or ""), mode=str(d.get("mode", "full")),
            commit=Commit.from_json(d.get("commit")), settings=Settings.from_json(d.get("settings")),
            baseline=BaselineInfo.from_json(d.get("baseline")), timer=Timer.from_json(d.get("timer")),
            concurrency=int(d.get("concurrency") or 1), tools=dict(d.get("tools") or {}),
            speedups=tuple(SpeedupRecord.from_json(s) for s in d.get("speedups") or ()),
            host=HostInfo.from_json(d.get("host")), counters=CountersInfo.from_json(d.get("counters")),
            noise=NoiseInfo.from_json(d.get("noise")), notes=tuple(d.get("notes") or ()),
            results=tuple(ResultRecord.from_json(r) for r in d.get("results") or ()))


