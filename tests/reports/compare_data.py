"""Deterministic baselines and reports for the compare, markdown and plot tests: no random
numbers and no clock, so rendered output can be pinned by golden files."""
from __future__ import annotations

from typing import Any

import numpy as np

from pytest_hostperf.measure.sampling import Samples
from pytest_hostperf.stats.result import summarize
from pytest_hostperf.store import baseline_schema, hostid
from pytest_hostperf.store.histogram import encode_histogram
from pytest_hostperf.store.records import (
    REPORT_SCHEMA,
    REPORT_SCHEMA_VERSION,
    Commit,
    HostState,
    Report,
    ResultRecord,
    StoredMeasurement,
    StoredRun,
)

FP_AMD: dict[str, Any] = {
    "cpu_model": "AMD EPYC 7B13 64-Core Processor", "logical_cpus": 2, "physical_cores": 1, "smt": True,
    "numa_nodes": 1, "arch": "x86_64", "kernel": "5.15.0-91-generic", "python": "3.11.7",
    "python_implementation": "CPython", "numpy": "1.26.4", "torch": None, "cuda_device": None,
    "governor": None, "rt_runtime_us": 950000,
}
FP_INTEL = {**FP_AMD, "cpu_model": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "logical_cpus": 8,
            "physical_cores": 4, "kernel": "6.5.0-1017-aws", "governor": "performance"}
AUDIT_AMD = [{"name": "swappiness", "reading": "60", "verdict": "warn", "advice": "sysctl -w vm.swappiness=1"},
             {"name": "load", "reading": "0.57 0.74 0.38 on 2 CPUs", "verdict": "ok", "advice": None}]
AUDIT_INTEL = [{"name": "swappiness", "reading": "1", "verdict": "ok", "advice": None},
               {"name": "load", "reading": "0.02 0.10 0.11 on 8 CPUs", "verdict": "ok", "advice": None}]
FIFO = {"cpus": [1], "policy": "SCHED_FIFO", "priority": 49, "memory_locked": True, "controls": []}
OTHER = {"cpus": [7], "policy": "SCHED_OTHER", "priority": 0, "memory_locked": True, "controls": []}

ARENA, MALLOC, RING, NEW = ("bench.py::test_alloc[arena]", "bench.py::test_alloc[malloc]",
                            "bench.py::test_handoff[ring]", "bench.py::test_new[x]")


def samples(scale: float, seed: int = 0, n: int = 2000) -> np.ndarray:
    """Latencies around 1-2 us times ``scale``, with a tail every 97th call; no random numbers."""
    i = np.arange(n)
    v = (1000 + (i * 7919 + seed * 104729) % 997).astype(np.float64)
    v[i % 97 == seed % 97] *= 2.5
    return np.rint(v * scale)


def record(mid: str, scale: float, seed: int = 0, *, host: dict | None = None, batch: int = 1,
           group: str | None = None) -> dict:
    """A baseline record made the way the plugin makes one (summarize -> ResultRecord, its histogram encoded
    once -> StoredMeasurement), as JSON."""
    v = samples(scale, seed)
    if batch > 1:
        v = v / batch
    raw = Samples(values=v, block_sizes=(100,) * 20, batch=batch, warmup_calls=10, calls=v.size * batch,
                  seconds=0.01, truncated=False)
    nodeid, name = mid[:mid.rindex("[")], mid[mid.rindex("[") + 1:-1]
    res = summarize(raw, nodeid=nodeid, name=name, group=group)
    rec = ResultRecord.of(res, histogram=encode_histogram(res.samples), host=HostState.from_json(host))
    return StoredMeasurement.of(rec).to_json()


def baseline_doc(fp: dict, audit: list, scales: dict[str, float], host: dict, *, runs: int = 3,
                 batch: dict[str, int] | None = None) -> dict:
    """A baseline of ``runs`` runs; run k is 1% slower than run k-1 (a little run-to-run drift)."""
    out = []
    for k in range(runs):
        ms = {mid: StoredMeasurement.from_json(record(mid, s * (1 + 0.01 * k), seed=k, host=host,
                                                      batch=(batch or {}).get(mid, 1)))
              for mid, s in scales.items()}
        out.append(StoredRun(created_utc=f"2024-05-0{k + 1}T12:00:00Z",
                             commit=Commit(f"{k + 1:x}" * 40, "main", False), tools={"pytest-hostperf": "0.1.0"},
                             fingerprint=dict(fp), audit=tuple(dict(a) for a in audit), timer=None, concurrency=1,
                             measurements=ms).to_json())
    return {"schema": baseline_schema.SCHEMA, "schema_version": 1, "host_id": hostid.host_id(fp), "runs": out}


def report_doc(fp: dict, scales: dict[str, float], *, budgets: dict[str, str] | None = None,
               verdicts: dict[str, dict] | None = None) -> dict:
    """A JSON report (``--hostperf-json``) of one run, the fields comparisons read."""
    results = []
    for mid, s in scales.items():
        rec = record(mid, s, seed=5, host=OTHER)
        status = (budgets or {}).get(mid)
        results.append({
            "id": mid, "nodeid": mid[:mid.rindex("[")], "name": mid[mid.rindex("[") + 1:-1], "group": None,
            "calls": rec["n"] * rec["batch"], "smoke": False, "truncated": False, "seconds": 0.01,
            **{k: rec[k] for k in ("mode", "batch", "n", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns",
                                   "min_ns", "mean_ns", "blocks", "histogram", "host")},
            "budgets": [] if status is None else [{"stat": "p99", "budget_ns": 1000, "status": status,
                                                   "estimate_ns": rec["p99_ns"], "interval_ns": [0, 0],
                                                   "message": f"{mid}: p99 ... {status}"}],
            "verdict": (verdicts or {}).get(mid)})
    return {"schema": REPORT_SCHEMA, "schema_version": REPORT_SCHEMA_VERSION,
            "created_utc": "2024-06-01T09:30:00+00:00", "mode": "full",
            "commit": {"sha": "abcdef0123456789abcdef0123456789abcdef01", "branch": "fast-path", "dirty": True},
            "settings": {"samples": 2000, "max_time_s": 3.0, "tolerance_pct": 10.0, "strict": False},
            "baseline": {"host_id": hostid.host_id(fp), "path": "baselines/x.json", "exists": True, "runs": 3,
                         "host_differences": []},
            "host": {"fingerprint": fp, "audit": AUDIT_INTEL, "not_applied": []}, "results": results,
            "speedups": [], "notes": [], "timer": None}


def report_record(fp: dict, scales: dict[str, float], **kw: Any) -> Report:
    """:func:`report_doc` as the typed record a run hands to the renderers."""
    return Report.from_json(report_doc(fp, scales, **kw))


SCALES_AMD = {ARENA: 1.0, MALLOC: 3.0, RING: 1.0}
# On the Intel host: arena twice as fast, malloc 30% slower, the ring the same, one measurement new.
SCALES_INTEL = {ARENA: 0.5, MALLOC: 3.9, RING: 1.02, NEW: 1.0}
