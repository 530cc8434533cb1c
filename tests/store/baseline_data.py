"""Shared by the tests of tests/store/: a host's fingerprint, audit, timer and tools, and
builders of records, runs and documents made the way the plugin makes them."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pytest_hostperf.measure.sampling import Samples
from pytest_hostperf.stats.result import summarize
from pytest_hostperf.store import baseline_schema
from pytest_hostperf.store.histogram import encode_histogram
from pytest_hostperf.store.records import Commit, ResultRecord, StoredMeasurement, StoredRun, Timer

MID = "t.py::test_a[x]"
M = f'runs[0].measurements["{MID}"]'

FP: dict[str, Any] = {
    "cpu_model": "AMD EPYC 7B13 64-Core Processor", "logical_cpus": 2, "physical_cores": 1, "smt": True,
    "numa_nodes": 1, "arch": "x86_64", "kernel": "5.15.0-91-generic", "python": "3.11.7",
    "python_implementation": "CPython", "numpy": "1.26.4", "torch": None, "cuda_device": None,
    "governor": None, "rt_runtime_us": 950000,
}
AUDIT = [{"name": "swappiness", "reading": "60", "verdict": "warn", "advice": "sysctl -w vm.swappiness=1"},
         {"name": "smt", "reading": "off", "verdict": "ok", "advice": None}]
TIMER = {"clock": "perf_counter_ns", "overhead_ns": 50, "resolution_ns": 10, "pairs": 20000}
TOOLS = {"pytest-hostperf": "0.1.0", "pytest": "9.0.0", "numpy": "1.26.4", "torch": None}
COMMIT = {"sha": "0123456789abcdef0123456789abcdef01234567", "branch": "main", "dirty": False}


# --------------------------------------------------------------------------- builders


def real_record(seed: int = 0, *, n: int = 2000, blocks: int = 20, batch: int = 1,
                host: dict | None = None) -> dict:
    """A record made the way the plugin makes it: Result.summarize -> ResultRecord (its histogram encoded
    once) -> StoredMeasurement, as JSON."""
    rng = np.random.default_rng(seed)
    values = np.rint(rng.lognormal(np.log(2000), 0.4, n))
    if batch > 1:
        values = values / batch
    raw = Samples(values=values, block_sizes=(n // blocks,) * blocks, batch=batch, warmup_calls=10,
                  calls=n * batch, seconds=0.01, truncated=False)
    res = summarize(raw, nodeid="t.py::test_a", name="x")
    doc = StoredMeasurement.of(ResultRecord.of(res, histogram=encode_histogram(res.samples))).to_json()
    if host is not None:
        doc["host"] = host
    return doc


def make_run(seq: int = 0, *, measurements: dict | None = None, **extra: Any) -> StoredRun:
    """A typed run of ``measurements`` (records as JSON), ``extra`` keys and ``seq`` among them."""
    ms = {MID: real_record(seq)} if measurements is None else measurements
    return StoredRun(created_utc=f"2024-05-01T12:00:{seq % 60:02d}Z", commit=Commit(**COMMIT), tools=dict(TOOLS),
                     fingerprint=dict(FP), audit=tuple(dict(a) for a in AUDIT), timer=Timer(**TIMER), concurrency=1,
                     measurements={k: StoredMeasurement.from_json(m) for k, m in ms.items()},
                     extra={"seq": seq, **extra})


def with_extra(run: StoredRun, **extra: Any) -> StoredRun:
    """``run`` with more extra keys (what a dict run once got from ``dict(run, key=value)``)."""
    return replace(run, extra={**run.extra, **extra})


def valid_doc() -> dict:
    host = {"cpus": [1], "policy": "SCHED_FIFO", "priority": 49, "memory_locked": True, "controls": []}
    runs = [make_run(0, measurements={MID: real_record(0), "t.py::test_b[y]": real_record(1, batch=4, host=host)}
                     ).to_json(), make_run(1).to_json()]
    return {"schema": baseline_schema.SCHEMA, "schema_version": 1, "host_id": "box-1", "runs": runs}


def write(path: Path, doc_or_bytes: Any) -> Path:
    data = doc_or_bytes if isinstance(doc_or_bytes, bytes) else json.dumps(doc_or_bytes).encode()
    path.write_bytes(data)
    return path


def ns_values(obj: Any, key: str = "") -> list[tuple[str, Any]]:
    """Every value under a key ending in _ns (lists included), with its key."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += ns_values(v, k)
    elif isinstance(obj, list):
        for v in obj:
            out += ns_values(v, key)
    elif key.endswith("_ns"):
        out.append((key, obj))
    return out

