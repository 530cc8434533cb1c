"""What a baseline stores of a run and of each measurement (see ``records/__init__.py``).

Built from a run's typed report (:meth:`StoredRun.of`, :meth:`StoredMeasurement.of`), whose
histograms are already encoded: nothing is encoded twice, and nothing is validated here --
``disk.save_run`` checks the run once, on its way to disk.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from pytest_hostperf.errors import BaselineError
from pytest_hostperf.store.jsonfile import Json
from pytest_hostperf.store.records.parts import (
    Block,
    Commit,
    HostState,
    Timer,
    _opt,
    _times,
)
from pytest_hostperf.store.records.report import Report, ResultRecord, audit_warnings


def utc_now() -> str:
    """Now, as a baseline run's ``created_utc`` (``2024-05-01T12:00:00Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class StoredMeasurement:
    """What a baseline run keeps of one measurement."""

    mode: str
    batch: int
    n: int
    p50_ns: int
    p90_ns: int
    p99_ns: int
    p999_ns: int
    max_ns: int
    min_ns: int
    mean_ns: int
    blocks: tuple[Block, ...]
    group: str | None
    histogram: Json
    host: HostState | None = None
    counters: Json | None = None

    def get(self, stat: str) -> int:
        return int(getattr(self, f"{stat}_ns"))

    def to_json(self) -> Json:
        d: Json = {f.name: getattr(self, f.name) for f in fields(self)
                   if f.name not in ("blocks", "host", "counters", "histogram")}
        d["blocks"] = [b.to_json() for b in self.blocks]
        d["histogram"] = dict(self.histogram)
        return _opt(d, host=None if self.host is None else self.host.to_json(), counters=self.counters)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StoredMeasurement:
        return cls(mode=str(d["mode"]), batch=int(d["batch"]), n=int(d["n"]),
                   **_times(lambda s: int(d[f"{s}_ns"])),
                   blocks=tuple(Block.from_json(b) for b in d["blocks"]), group=d.get("group"),
                   histogram=dict(d["histogram"]), host=HostState.from_json(d.get("host")),
                   counters=d.get("counters"))

    @classmethod
    def of(cls, r: ResultRecord) -> StoredMeasurement:
        """The stored summary of a run's result, with the histogram the report encoded;
        BaselineError when it has none (its samples could not be encoded)."""
        if r.histogram is None:
            raise BaselineError(f"{r.id}: no histogram of its samples (they could not be encoded); "
                                "a baseline keeps one for every measurement")
        return cls(mode=r.mode, batch=r.batch, n=r.n, **_times(r.get), blocks=r.blocks, group=r.group,
                   histogram=r.histogram, host=r.host, counters=r.counters or None)


_RUN_KEYS = frozenset({"created_utc", "commit", "tools", "fingerprint", "audit", "timer", "concurrency",
                       "measurements"})


@dataclass(frozen=True, slots=True)
class StoredRun:
    """One saved run of a baseline."""

    created_utc: str
    commit: Commit
    tools: dict[str, str | None]
    fingerprint: Json
    audit: tuple[Json, ...]
    timer: Timer | None
    concurrency: int
    measurements: dict[str, StoredMeasurement]
    extra: Json = field(default_factory=dict)  # further keys of the run: "noise" ({"share", "probes"})...

    @property
    def noise_share(self) -> float | None:
        noise = self.extra.get("noise")
        share = noise.get("share") if isinstance(noise, dict) else None
        return float(share) if isinstance(share, (int, float)) and not isinstance(share, bool) else None

    def to_json(self) -> Json:
        return _opt({"created_utc": self.created_utc, "commit": self.commit.to_json(), "tools": dict(self.tools),
                     "fingerprint": dict(self.fingerprint), "audit": [dict(a) for a in self.audit],
                     "timer": None if self.timer is None else self.timer.to_json(),
                     "concurrency": self.concurrency,
                     "measurements": {k: m.to_json() for k, m in self.measurements.items()}, **self.extra})

    @classmethod
    def of(cls, report: Report, measurements: Mapping[str, StoredMeasurement] | None = None, *,
           created_utc: str | None = None) -> StoredRun:
        """What a baseline keeps of a run: the report's host, timer, tools, commit and noise, and
        ``measurements`` (default: :meth:`StoredMeasurement.of` each result); created now."""
        if measurements is None:
            measurements = {r.id: StoredMeasurement.of(r) for r in report.results}
        host = report.host
        return cls(created_utc=utc_now() if created_utc is None else created_utc, commit=report.commit,
                   tools=dict(report.tools), fingerprint={} if host is None else dict(host.fingerprint),
                   audit=() if host is None else host.audit, timer=report.timer, concurrency=report.concurrency,
                   measurements=dict(measurements),
                   extra={} if report.noise is None else {"noise": report.noise.stored()})

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StoredRun:
        return cls(created_utc=str(d["created_utc"]), commit=Commit.from_json(d.get("commit")),
                   tools=dict(d.get("tools") or {}), fingerprint=dict(d.get("fingerprint") or {}),
                   audit=tuple(d.get("audit") or ()), timer=Timer.from_json(d.get("timer")),
                   concurrency=int(d.get("concurrency", 1)),
                   measurements={k: StoredMeasurement.from_json(m) for k, m in d["measurements"].items()},
                   extra={k: v for k, v in d.items() if k not in _RUN_KEYS})

    def readings(self) -> dict[str, Any]:
        """Audit readings by check name."""
        return {a["name"]: a["reading"] for a in self.audit}

    def warnings(self) -> tuple[str, ...]:
        return audit_warnings(self.audit)
