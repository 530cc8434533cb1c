"""Baseline files: format, round trip, golden file, validation of hostile input, locking, atomicity."""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_hostperf import baseline
from pytest_hostperf.errors import BaselineError, HostperfError, InvalidArgument
from pytest_hostperf.measure import Samples, TimerInfo
from pytest_hostperf.result import summarize

HERE = Path(__file__).parent
GOLDEN = HERE / "golden" / "baseline_v1.json"
MID = "t.py::test_a[x]"
M = f'runs[0].measurements["{MID}"]'
FUZZ = settings(max_examples=150, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])

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
    """A record made the way the plugin makes it: Result.summarize -> to_dict -> measurement_record."""
    rng = np.random.default_rng(seed)
    values = np.rint(rng.lognormal(np.log(2000), 0.4, n))
    if batch > 1:
        values = values / batch
    raw = Samples(values=values, block_sizes=(n // blocks,) * blocks, batch=batch, warmup_calls=10,
                  calls=n * batch, seconds=0.01, truncated=False)
    res = summarize(raw, nodeid="t.py::test_a", name="x")
    if host is not None:
        res.extra["host"] = host
    return baseline.measurement_record(res.to_dict(), res.samples)


def make_run(seq: int = 0, *, measurements: dict | None = None, **extra: Any) -> dict:
    return baseline.new_run(
        measurements={MID: real_record(seq)} if measurements is None else measurements,
        fingerprint=FP, audit=AUDIT, timer=TIMER, tools=TOOLS, commit=COMMIT,
        created_utc=f"2024-05-01T12:00:{seq % 60:02d}Z", extra={"seq": seq, **extra})


def valid_doc() -> dict:
    host = {"cpus": [1], "policy": "SCHED_FIFO", "priority": 49, "memory_locked": True, "controls": []}
    runs = [make_run(0, measurements={MID: real_record(0), "t.py::test_b[y]": real_record(1, batch=4, host=host)}),
            make_run(1)]
    return {"schema": baseline.SCHEMA, "schema_version": 1, "host_id": "box-1", "runs": runs}


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


# --------------------------------------------------------------------------- round trip and format


def test_round_trip(tmp_path: Path) -> None:
    run = make_run(0)
    path = baseline.save_run(tmp_path / "baselines", "box-1", run)
    assert path == (tmp_path / "baselines" / "box-1.json").resolve()
    b = baseline.load(path)
    assert b.host_id == "box-1" and b.path == path
    assert b.runs == (run,)
    assert b.latest == run
    assert b.ids() == [MID]
    assert b.runs_of(MID) == [run["measurements"][MID]]
    assert baseline.load_if_exists(tmp_path / "baselines", "box-1") == b


def test_ids_and_runs_of_span_runs(tmp_path: Path) -> None:
    r0 = make_run(0, measurements={"a": real_record(0)})
    r1 = make_run(1, measurements={"a": real_record(1), "b": real_record(2)})
    baseline.save_run(tmp_path, "h", r0)
    b = baseline.load(baseline.save_run(tmp_path, "h", r1))
    assert b.ids() == ["a", "b"]
    assert b.runs_of("a") == [r0["measurements"]["a"], r1["measurements"]["a"]]
    assert b.runs_of("b") == [r1["measurements"]["b"]]
    assert b.runs_of("missing") == []
    assert b.latest["seq"] == 1


def test_keep_last_k(tmp_path: Path) -> None:
    for seq in range(7):
        path = baseline.save_run(tmp_path, "h", make_run(seq, measurements={}), keep=3)
    assert [r["seq"] for r in baseline.load(path).runs] == [4, 5, 6]
    path = baseline.save_run(tmp_path, "h", make_run(7, measurements={}))  # default keep=5
    assert [r["seq"] for r in baseline.load(path).runs] == [4, 5, 6, 7]
    with pytest.raises(InvalidArgument, match="keep"):
        baseline.save_run(tmp_path, "h", make_run(8), keep=0)


def test_file_has_sorted_keys_integer_ns_and_no_temp_files(tmp_path: Path) -> None:
    path = baseline.save_run(tmp_path, "h", make_run(0))
    text = path.read_text(encoding="utf-8")

    def ordered(pairs: list[tuple[str, Any]]) -> dict:
        keys = [k for k, _ in pairs]
        assert keys == sorted(keys)
        return dict(pairs)

    doc = json.loads(text, object_pairs_hook=ordered)
    assert text == baseline.to_json(doc) and text.endswith("}\n")
    values = ns_values(doc)
    assert len(values) > 50 and all(type(v) is int for _, v in values)
    assert sorted(os.listdir(tmp_path)) == [".h.lock", "h.json"]
    assert (tmp_path / ".h.lock").stat().st_size == 0
    assert path.stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------- golden file

# The golden file pins the v1 format byte for byte. If a change to the format is meant
# (and SCHEMA_VERSION is bumped, with a line in its history), regenerate it with
#   HOSTPERF_REGEN_GOLDEN=1 python -m pytest tests/test_baseline.py -k golden
# and review the diff. Keep the old file as baseline_v<N>.json so old files stay tested.


def _golden_result(nodeid: str, name: str, samples: np.ndarray, blocks: int, batch: int) -> dict:
    """A Result.to_dict()-shaped dict computed here with numpy only, so that the golden file
    does not change when stats.py changes."""
    def ns(x: float) -> int:
        return int(round(float(x)))

    parts = np.split(samples, blocks)
    qs = [50, 90, 99, 99.9]
    block_rows = [{"n": len(p), **{f"{s}_ns": ns(v) for s, v in zip(("p50", "p90", "p99", "p999"),
                                                                    np.percentile(p, qs))},
                   "max_ns": ns(p.max())} for p in parts]
    med = {s: ns(np.median([b[f"{s}_ns"] for b in block_rows])) for s in ("p50", "p90", "p99", "p999")}
    return {"id": f"{nodeid}[{name}]", "nodeid": nodeid, "name": name, "group": "golden" if batch > 1 else None,
            "mode": "single" if batch == 1 else f"batched({batch})", "batch": batch, "n": len(samples),
            "calls": len(samples) * batch, "smoke": False, "truncated": False, "seconds": 0.001,
            **{f"{s}_ns": v for s, v in med.items()}, "max_ns": ns(samples.max()),
            "min_ns": ns(samples.min()), "mean_ns": ns(samples.mean()), "intervals_ns": {},
            "blocks": block_rows}


def golden_doc() -> dict:
    single = (1000 + (np.arange(60) * 7919) % 997).astype(np.float64)
    batched = (200 + (np.arange(40) * 104729) % 131) / 4.0
    r_single = _golden_result("bench.py::test_alloc", "arena", single, 3, 1)
    r_batched = _golden_result("bench.py::test_alloc", "malloc", batched, 2, 4)
    r_batched["host"] = {"cpus": [1], "policy": "SCHED_FIFO", "priority": 49, "memory_locked": True,
                         "controls": [{"control": "rt", "applied": True, "reason": None}]}
    measurements = {r["id"]: baseline.measurement_record(r, s)
                    for r, s in ((r_single, single), (r_batched, batched))}
    runs = [
        baseline.new_run(measurements=measurements, fingerprint=FP, audit=AUDIT,
                         timer=TIMER, tools=TOOLS, commit=COMMIT, created_utc="2024-05-01T12:00:00Z"),
        baseline.new_run(measurements={k: v for k, v in measurements.items() if "arena" in k},
                         fingerprint=FP, audit=[], timer=None, tools=TOOLS, concurrency=2,
                         commit={"sha": None, "branch": None, "dirty": None},
                         created_utc="2024-05-02T08:30:00.250Z", extra={"note": "xdist -n 2"}),
    ]
    return {"schema": baseline.SCHEMA, "schema_version": 1, "host_id": baseline.host_id(FP), "runs": runs}


def test_golden_file_matches_constructed_runs() -> None:
    text = baseline.to_json(golden_doc())
    if os.environ.get("HOSTPERF_REGEN_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.read_text(encoding="utf-8") == text


def test_golden_file_loads_and_reserializes_byte_identically() -> None:
    b = baseline.load(GOLDEN)
    assert baseline.to_json(b.to_dict()) == GOLDEN.read_bytes().decode("utf-8")
    assert b.host_id == baseline.host_id(FP)
    assert len(b.runs) == 2 and b.latest["note"] == "xdist -n 2"
    assert b.ids() == ["bench.py::test_alloc[arena]", "bench.py::test_alloc[malloc]"]


def test_host_id_of_a_fixed_fingerprint_never_changes() -> None:
    # Changing it orphans every committed baseline: bump SCHEMA_VERSION and migrate instead.
    assert baseline.host_id(FP) == "amd-epyc-7b13-64-core-2cpu-x86_64-e5c77717"


# --------------------------------------------------------------------------- malformed files

Mutation = Callable[[dict], Any]


def _set(path: str, value: Any) -> Mutation:
    """A mutation setting a dotted path ('runs.0.measurements.<MID>.p99_ns') to value."""
    def mutate(doc: dict) -> None:
        *parents, last = [MID if p == "MID" else (int(p) if p.isdigit() else p) for p in path.split(".")]
        obj = doc
        for p in parents:
            obj = obj[p]
        obj[last] = value(obj[last]) if callable(value) else value
    return mutate


def _delete(path: str) -> Mutation:
    def mutate(doc: dict) -> None:
        *parents, last = [MID if p == "MID" else (int(p) if p.isdigit() else p) for p in path.split(".")]
        obj = doc
        for p in parents:
            obj = obj[p]
        del obj[last]
    return mutate


def _token(path: str, token: str) -> Mutation:
    """Replace a value by raw JSON text that json.dumps cannot produce (NaN, 1e999...)."""
    def mutate(doc: dict) -> bytes:
        _set(path, "@@TOKEN@@")(doc)
        return json.dumps(doc).replace('"@@TOKEN@@"', token).encode()
    return mutate


def _text(fn: Callable[[str], str | bytes]) -> Mutation:
    def mutate(doc: dict) -> bytes:
        out = fn(json.dumps(doc, indent=1))
        return out if isinstance(out, bytes) else out.encode()
    return mutate


def _raw(data: bytes) -> Mutation:
    return lambda doc: data


def _replace_doc(new: Any) -> Mutation:
    return lambda doc: json.dumps(new).encode()


def _nested(depth: int) -> dict:
    obj: Any = 1
    for _ in range(depth):
        obj = {"a": obj}
    return obj


R = "runs.0.measurements.MID"
H = f"{R}.histogram"

MALFORMED: list[tuple[str, Mutation, str]] = [
    # bytes and syntax
    ("empty", _raw(b""), "empty"),
    ("whitespace-only", _raw(b" \n\t "), "empty"),
    ("not-utf8", _raw(b'{"schema": "\xff\xfe"}'), "not UTF-8"),
    ("utf16", _text(lambda t: t.encode("utf-16")), "not UTF-8"),
    ("truncated", _text(lambda t: t[: len(t) // 2]), "invalid JSON at line"),
    ("garbage", _raw(b"hello"), "invalid JSON at line 1 column 1"),
    ("trailing-garbage", _text(lambda t: t + "\n}"), "invalid JSON at line"),
    ("deep-nesting-parser", _raw(b"[" * 100_000), "nested too deep"),
    ("deep-nesting-valid-json", _set("runs.0.deep", _nested(40)), "nested too deep"),
    ("nan", _token(f"{R}.p99_ns", "NaN"), "NaN"),
    ("infinity", _token(f"{R}.p99_ns", "Infinity"), "Infinity"),
    ("minus-infinity", _token(f"{R}.mean_ns", "-Infinity"), "Infinity"),
    ("float-overflow", _token(f"{R}.p99_ns", "1e999"), "too large"),
    ("huge-int-literal", _token(f"{R}.p99_ns", "9" * 5000), "too large"),
    ("duplicate-key", _text(lambda t: t.replace('"schema": ', '"schema": "x", "schema": ', 1)), "duplicate key"),
    # not a baseline, or not this version
    ("top-level-array", _replace_doc([1, 2]), "not a pytest-hostperf baseline"),
    ("top-level-string", _replace_doc("baseline"), "not a pytest-hostperf baseline"),
    ("no-schema", _delete("schema"), "not a pytest-hostperf baseline"),
    ("other-schema", _set("schema", "pyperf"), "not a pytest-hostperf baseline"),
    ("pytest-benchmark-file", _replace_doc({"machine_info": {}, "benchmarks": []}), "not a pytest-hostperf baseline"),
    ("version-missing", _delete("schema_version"), "schema_version"),
    ("version-string", _set("schema_version", "1"), "schema_version: expected an integer"),
    ("version-float", _set("schema_version", 1.0), "schema_version: expected an integer"),
    ("version-bool", _set("schema_version", True), "schema_version: expected an integer"),
    ("version-zero", _set("schema_version", 0), "schema_version: 0 is not a valid version"),
    ("version-future", _set("schema_version", 2), "written by a newer pytest-hostperf"),
    ("unknown-top-key", _set("extra", 1), 'unknown key "extra"'),
    ("host-id-traversal", _set("host_id", "../x"), "host_id"),
    ("host-id-uppercase", _set("host_id", "Box"), "host_id"),
    ("host-id-number", _set("host_id", 5), "host_id: expected a string"),
    ("host-id-missing", _delete("host_id"), "missing key host_id"),
    # runs
    ("runs-empty", _set("runs", []), "runs: no runs"),
    ("runs-object", _set("runs", {}), "runs: expected an array"),
    ("run-not-object", _set("runs.1", "run"), "runs[1]: expected an object"),
    ("run-missing-measurements", _delete("runs.0.measurements"), "runs[0]: missing key measurements"),
    ("created-not-utc", _set("runs.0.created_utc", "yesterday"), "runs[0].created_utc"),
    ("created-bad-date", _set("runs.0.created_utc", "2024-13-01T00:00:00Z"), "runs[0].created_utc"),
    ("created-int", _set("runs.0.created_utc", 1714564800), "runs[0].created_utc: expected a string"),
    ("commit-sha-int", _set("runs.0.commit.sha", 123), "runs[0].commit.sha"),
    ("commit-sha-not-hex", _set("runs.0.commit.sha", "main; rm -rf /"), "runs[0].commit.sha"),
    ("commit-dirty-string", _set("runs.0.commit.dirty", "yes"), "runs[0].commit.dirty"),
    ("tools-value-int", _set("runs.0.tools.pytest", 9), 'runs[0].tools.pytest'),
    ("fingerprint-list", _set("runs.0.fingerprint.kernel", ["5"]), "runs[0].fingerprint.kernel"),
    ("fingerprint-not-object", _set("runs.0.fingerprint", None), "runs[0].fingerprint: expected an object"),
    ("audit-not-list", _set("runs.0.audit", {}), "runs[0].audit: expected an array"),
    ("audit-item-missing-key", _delete("runs.0.audit.0.verdict"), "runs[0].audit[0]: missing key verdict"),
    ("timer-negative", _set("runs.0.timer.overhead_ns", -5), "runs[0].timer.overhead_ns"),
    ("timer-list", _set("runs.0.timer", [50]), "runs[0].timer: expected an object"),
    ("concurrency-zero", _set("runs.0.concurrency", 0), "runs[0].concurrency: 0 is below the minimum 1"),
    ("measurements-list", _set("runs.0.measurements", []), "runs[0].measurements: expected an object"),
    ("measurement-id-empty", _set("runs.0.measurements.", "x"), "empty measurement id"),
    # records
    ("record-not-object", _set(R, 5), f"{M}: expected an object"),
    ("record-unknown-key", _set(f"{R}.p95_ns", 5), f'{M}: unknown key "p95_ns"'),
    ("record-missing-key", _delete(f"{R}.p999_ns"), f"{M}: missing key p999_ns"),
    ("huge-ns", _set(f"{R}.p99_ns", 10**16), f"{M}.p99_ns: 10000000000000000 is absurdly large"),
    ("float-ns", _set(f"{R}.p99_ns", 1.5), f"{M}.p99_ns: expected an integer number of nanoseconds"),
    ("string-ns", _set(f"{R}.p50_ns", "2us"), f"{M}.p50_ns: expected an integer number of nanoseconds"),
    ("integral-float-n", _set(f"{R}.n", 2000.0), f"{M}.n: expected an integer"),
    ("bool-n", _set(f"{R}.n", True), f"{M}.n: expected an integer"),
    ("negative-min", _set(f"{R}.min_ns", -1), f"{M}.min_ns: -1 is below the minimum 0"),
    ("batch-zero", _set(f"{R}.batch", 0), f"{M}.batch"),
    ("mode-mismatch", _set(f"{R}.mode", "batched(4)"), f"{M}.mode"),
    ("group-int", _set(f"{R}.group", 3), f"{M}.group"),
    ("host-not-object", _set(f"{R}.host", "cpu1"), f"{M}.host: expected an object"),
    ("p90-below-p50", _set(f"{R}.p90_ns", lambda v: 0), f"{M}: p50_ns"),
    ("p50-above-p90", _set(f"{R}.p50_ns", lambda v: v * 10), f"{M}: p50_ns"),
    ("p999-above-max", _set(f"{R}.p999_ns", lambda v: 10**14), f"{M}: p999_ns"),
    ("mean-above-max", _set(f"{R}.mean_ns", lambda v: 10**14), f"{M}.mean_ns"),
    ("blocks-empty", _set(f"{R}.blocks", []), f"{M}.blocks: no blocks"),
    ("blocks-object", _set(f"{R}.blocks", {}), f"{M}.blocks: expected an array"),
    ("block-n-zero", _set(f"{R}.blocks.0.n", 0), f"{M}.blocks[0].n: 0 is below the minimum 1"),
    ("block-float-p99", _set(f"{R}.blocks.0.p99_ns", 2.5), f"{M}.blocks[0].p99_ns: expected an integer"),
    ("block-not-monotone", _set(f"{R}.blocks.3.p99_ns", lambda v: 1), f"{M}.blocks[3]: p90_ns"),
    ("block-max-above-max", _set(f"{R}.blocks.0.max_ns", lambda v: 10**14), f"{M}.blocks[0].max_ns"),
    ("block-extra-key", _set(f"{R}.blocks.0.p95_ns", 1), f'{M}.blocks[0]: unknown key "p95_ns"'),
    ("block-n-sum", _set(f"{R}.blocks.0.n", lambda v: v + 1), f"{M}.n: 2000, but the blocks hold 2001"),
    # histograms
    ("hist-missing", _delete(f"{R}.histogram"), f"{M}: missing key histogram"),
    ("hist-encoding", _set(f"{H}.encoding", "hdr-v2"), f"{M}.histogram.encoding: unknown encoding"),
    ("hist-sub-buckets", _set(f"{H}.sub_buckets", 64), f"{M}.histogram.sub_buckets"),
    ("hist-not-ascending", _set(f"{H}.index", lambda ix: [ix[1], ix[0], *ix[2:]]),
     f"{M}.histogram.index[1]: bucket indexes must be strictly ascending"),
    ("hist-duplicate-index", _set(f"{H}.index", lambda ix: [ix[0], *ix[:-1]]), "strictly ascending"),
    ("hist-index-out-of-range", _set(f"{H}.index", lambda ix: [*ix[:-1], 5000]), f"{M}.histogram.index["),
    ("hist-count-negative", _set(f"{H}.count", lambda c: [-1, *c[1:]]), f"{M}.histogram.count[0]: -1"),
    ("hist-count-zero", _set(f"{H}.count", lambda c: [0, *c[1:]]), f"{M}.histogram.count[0]: 0"),
    ("hist-count-float", _set(f"{H}.count", lambda c: [1.0, *c[1:]]), f"{M}.histogram.count[0]"),
    ("hist-lengths-differ", _set(f"{H}.count", lambda c: c[:-1]), "but count has"),
    ("hist-empty", _set(f"{H}.index", []), f"{M}.histogram: index has 0 entries"),
    ("hist-total-mismatch", _set(f"{H}.total", lambda t: t + 1), "but the counts add up to"),
    ("hist-min-bucket", _set(f"{H}.min_ns", 1), "min_ns/max_ns fall in buckets"),
    ("hist-min-above-max", _set(f"{H}.min_ns", 10**12), "min_ns 1000000000000 > max_ns"),
    ("hist-total-vs-n", lambda d: [_set(f"{R}.n", lambda v: v + 1)(d), _set(f"{R}.blocks.19.n", lambda v: v + 1)(d),
                                   None][-1], "but the measurement has n=2001"),
]


@pytest.mark.parametrize(("mutate", "fragment"), [pytest.param(m, f, id=i) for i, m, f in MALFORMED])
def test_malformed_file_is_a_clear_error(tmp_path: Path, mutate: Mutation, fragment: str) -> None:
    doc = valid_doc()
    data = mutate(doc)
    path = write(tmp_path / "box-1.json", data if isinstance(data, bytes) else doc)
    with pytest.raises(BaselineError) as info:
        baseline.load(path)
    msg = str(info.value)
    assert str(path) in msg
    assert fragment in msg
    assert isinstance(info.value, HostperfError) and isinstance(info.value, ValueError)
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, BaselineError)


def test_huge_integer_literal_without_a_python_digit_limit(tmp_path: Path) -> None:
    # Python < 3.10.7 has no limit on int() of a literal, which is quadratic: the reader checks
    # lengths itself, with or without Python's limit (lifted here).
    path = write(tmp_path / "big.json", b'{"schema": "pytest-hostperf-baseline", "n": ' + b"9" * 1_000_000 + b"}")
    limit = getattr(sys, "get_int_max_str_digits", lambda: None)()
    if limit is not None:
        sys.set_int_max_str_digits(0)
    try:
        with pytest.raises(BaselineError, match=r"big.json: integer 9{40}\.\.\. is too large"):
            baseline.load(path)
    finally:
        if limit is not None:
            sys.set_int_max_str_digits(limit)


def test_valid_doc_itself_loads(tmp_path: Path) -> None:
    # The malformed cases above are single mutations of this document.
    b = baseline.load(write(tmp_path / "box-1.json", valid_doc()))
    assert len(b.runs) == 2 and b.ids() == [MID, "t.py::test_b[y]"]


def test_future_version_says_upgrade(tmp_path: Path) -> None:
    doc = valid_doc()
    doc["schema_version"] = baseline.SCHEMA_VERSION + 1
    doc["runs"] = "a format this version does not know"
    with pytest.raises(BaselineError, match="newer pytest-hostperf.*upgrade pytest-hostperf"):
        baseline.load(write(tmp_path / "f.json", doc))


def test_file_larger_than_limit_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "spaces.json"
    with path.open("wb") as fh:  # 100 MB of whitespace around a valid document
        fh.write(json.dumps(valid_doc()).encode())
        for _ in range(100):
            fh.write(b" " * 1_000_000)

    def no_open(*a: object, **k: object) -> None:
        raise AssertionError("the size check must come before opening the file")

    monkeypatch.setattr(baseline.os, "open", no_open)
    with pytest.raises(BaselineError, match=r"spaces.json: \d+ bytes is more than the 64 MiB"):
        baseline.load(path)
    monkeypatch.undo()
    sparse = tmp_path / "sparse.json"
    with sparse.open("wb") as fh:
        fh.truncate(baseline.MAX_BYTES + 1)
    with pytest.raises(BaselineError, match="64 MiB"):
        baseline.load(sparse)


def test_not_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(BaselineError, match=r"dir.json is not a regular file"):
        baseline.load(tmp_path / "dir.json")
    os.mkfifo(tmp_path / "fifo.json")  # must not block waiting for a writer
    with pytest.raises(BaselineError, match=r"fifo.json is not a regular file"):
        baseline.load(tmp_path / "fifo.json")
    with pytest.raises(BaselineError, match=r"missing.json: no such baseline file"):
        baseline.load(tmp_path / "missing.json")


# --------------------------------------------------------------------------- fuzzing the loader

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25,
)


def _load_or_error(path: Path) -> baseline.Baseline | None:
    try:
        return baseline.load(path)
    except BaselineError as exc:
        assert str(path) in str(exc)
        return None


@FUZZ
@given(data=st.binary(max_size=4096))
def test_fuzz_random_bytes(tmp_path: Path, data: bytes) -> None:
    _load_or_error(write(tmp_path / "fuzz.json", data))


@FUZZ
@given(value=json_values, head=st.booleans())
def test_fuzz_random_json(tmp_path: Path, value: Any, head: bool) -> None:
    if head and isinstance(value, dict):  # get past the schema checks more often
        value = {"schema": baseline.SCHEMA, "schema_version": 1, **value}
    _load_or_error(write(tmp_path / "fuzz.json", value))


def _leaf_paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            paths += _leaf_paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:4]):
            paths += _leaf_paths(v, (*prefix, i))
    return paths


_VALID = valid_doc()
_PATHS = _leaf_paths(_VALID)[1:]


@FUZZ
@given(which=st.integers(0, len(_PATHS) - 1), value=json_values, delete=st.booleans(),
       cut=st.integers(0, 200))
def test_fuzz_mutated_valid_document(tmp_path: Path, which: int, value: Any, delete: bool, cut: int) -> None:
    doc = copy.deepcopy(_VALID)
    *parents, last = _PATHS[which]
    obj = doc
    for p in parents:
        obj = obj[p]
    if delete:
        del obj[last]
    else:
        obj[last] = value
    text = json.dumps(doc)
    path = write(tmp_path / "box-1.json", text.encode())
    loaded = _load_or_error(path)
    if loaded is not None:  # still valid: it must survive a save and load back equal
        assert baseline.load(write(path, baseline.to_json(loaded.to_dict()).encode())) == \
            baseline.Baseline(path, loaded.host_id, loaded.runs)
    _load_or_error(write(path, text[: len(text) - cut].encode()))  # and truncated


# --------------------------------------------------------------------------- concurrency and atomicity

WRITER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from pytest_hostperf import baseline
    run = json.loads(sys.argv[3])
    for i in range(10):
        baseline.save_run(Path(sys.argv[1]), "race-host", dict(run, writer=sys.argv[2], seq=i), keep=100)
""")


def test_concurrent_saves_from_processes_all_land(tmp_path: Path) -> None:
    folder = tmp_path / "baselines"
    run = json.dumps(make_run(0))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(w), run],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for w in range(3)]
    reads = 0
    deadline = time.monotonic() + 60
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        b = baseline.load_if_exists(folder, "race-host")  # never half-written, never invalid
        reads += b is not None
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    b = baseline.load(folder / "race-host.json")
    assert sorted((r["writer"], r["seq"]) for r in b.runs) == [(str(w), i) for w in range(3) for i in range(10)]
    assert sorted(os.listdir(folder)) == [".race-host.lock", "race-host.json"]


def test_lock_wait_is_bounded(tmp_path: Path) -> None:
    import fcntl

    baseline.save_run(tmp_path, "h", make_run(0))
    fd = os.open(tmp_path / ".h.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(BaselineError, match=r"timed out after 0.2 s waiting for the lock .*\.h\.lock"):
            baseline.save_run(tmp_path, "h", make_run(1), lock_timeout=0.2)
    finally:
        os.close(fd)
    assert len(baseline.load(tmp_path / "h.json").runs) == 1
    baseline.save_run(tmp_path, "h", make_run(1), lock_timeout=0.2)  # released: goes through


@pytest.mark.parametrize(("target", "exc"), [("replace", OSError(28, "No space left on device")),
                                             ("fsync", OSError(5, "Input/output error")),
                                             ("replace", KeyboardInterrupt())])
def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       target: str, exc: BaseException) -> None:
    path = baseline.save_run(tmp_path, "h", make_run(0))
    before = path.read_bytes()

    def boom(*a: object, **k: object) -> None:
        raise exc

    monkeypatch.setattr(baseline.os, target, boom)
    with pytest.raises(BaselineError if isinstance(exc, OSError) else KeyboardInterrupt) as info:
        baseline.save_run(tmp_path, "h", make_run(1))
    monkeypatch.undo()
    if isinstance(exc, OSError):
        assert str(path) in str(info.value) and exc.strerror in str(info.value)
        assert "previous file is unchanged" in str(info.value)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [".h.lock", "h.json"]


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Any:
    """A 64 KiB tmpfs (root only): a real full disk and a real read-only folder."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (no CAP_SYS_ADMIN)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.parametrize("failure", ["disk-full", "read-only"])
def test_failed_save_on_real_filesystem(tiny_fs: Path, failure: str) -> None:
    path = baseline.save_run(tiny_fs, "h", make_run(0))
    before = path.read_bytes()
    if failure == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
        run = make_run(1)
    else:
        run = make_run(1, pad="x" * 200_000)
    with pytest.raises(BaselineError, match="No space left on device" if failure == "disk-full" else "Read-only"):
        baseline.save_run(tiny_fs, "h", run)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tiny_fs)) == [".h.lock", "h.json"]


def test_never_overwrites_a_file_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    path.write_text('{"schema": "pytest-hostperf-baseline", "schema_version": 1, "host_id": "h", "ru')
    before = path.read_bytes()
    with pytest.raises(BaselineError, match=r"refusing to overwrite .*h.json: invalid JSON at line 1"):
        baseline.save_run(tmp_path, "h", make_run(0))
    assert path.read_bytes() == before


def test_file_of_another_host_is_not_mixed_in(tmp_path: Path) -> None:
    baseline.save_run(tmp_path, "a", make_run(0))
    os.rename(tmp_path / "a.json", tmp_path / "b.json")
    with pytest.raises(BaselineError, match="holds host id 'a', expected 'b'"):
        baseline.load_if_exists(tmp_path, "b")
    with pytest.raises(BaselineError, match="holds host id 'a', expected 'b'"):
        baseline.save_run(tmp_path, "b", make_run(1))
    assert baseline.load(tmp_path / "b.json").host_id == "a"  # an explicit path still loads
    assert baseline.load_if_exists(tmp_path, "c") is None


def test_save_validates_the_run_first(tmp_path: Path) -> None:
    run = make_run(0)
    run["measurements"][MID]["p99_ns"] = 1.5
    where = re.escape(f'run.measurements["{MID}"].p99_ns')
    with pytest.raises(BaselineError, match=f"save_run: not a valid run: {where}"):
        baseline.save_run(tmp_path, "h", run)
    run = make_run(0)
    run["concurrency"] = np.int64(2)
    with pytest.raises(BaselineError, match="not a JSON value"):
        baseline.save_run(tmp_path, "h", run)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- host ids and paths

HOSTILE = ["../x", "/etc/passwd", "a\x00b", "x" * 300, "..", ".", "", "ÄÖÜ-Straße", "東京", "東京-1",
           "..\\..\\windows\\system32", "-rf", " ", "\n", ".hidden", "a/../../b", "a..b", "a/./b",
           "CON", "host\u202eexe.json", "ﬁle", "İstanbul"]


@pytest.mark.parametrize("host", HOSTILE, ids=[ascii(h)[:30] for h in HOSTILE])
def test_hostile_host_ids_stay_inside_the_folder(tmp_path: Path, host: str) -> None:
    folder = tmp_path / "baselines"
    folder.mkdir()
    try:
        clean = baseline.sanitize_host_id(host)
    except BaselineError as exc:
        assert "no usable characters" in str(exc) and "--hostperf-host" in str(exc)
        with pytest.raises(BaselineError):
            baseline.baseline_path(folder, host)
        return
    assert re.fullmatch(r"[a-z0-9_][a-z0-9._-]{0,79}", clean) and ".." not in clean
    assert not clean.endswith((".", "-"))
    path = baseline.baseline_path(folder, host)
    assert path.parent == folder.resolve() and path.name == f"{clean}.json"
    saved = baseline.save_run(folder, host, make_run(0, measurements={}))
    assert saved == path and sorted(os.listdir(folder)) == sorted([f".{clean}.lock", f"{clean}.json"])
    assert os.listdir(tmp_path) == ["baselines"]


def test_sanitize_examples() -> None:
    assert baseline.sanitize_host_id("CI Runner #3 (x86_64)") == "ci-runner-3-x86_64"
    assert baseline.sanitize_host_id("../../etc/passwd") == "etc-passwd"
    assert baseline.sanitize_host_id("Café") == "cafe"
    assert len(baseline.sanitize_host_id("x" * 300)) == 80


@given(st.text())
def test_sanitize_is_safe_and_idempotent(text: str) -> None:
    try:
        clean = baseline.sanitize_host_id(text)
    except BaselineError:
        return
    assert re.fullmatch(r"[a-z0-9_][a-z0-9._-]*", clean) and len(clean) <= 80 and ".." not in clean
    assert baseline.sanitize_host_id(clean) == clean


def test_symlink_in_the_folder_is_refused(tmp_path: Path) -> None:
    folder, outside = tmp_path / "baselines", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    target = baseline.save_run(outside, "victim", make_run(0))
    before = target.read_bytes()
    (folder / "victim.json").symlink_to(target)
    for call in (lambda: baseline.load(folder / "victim.json"),
                 lambda: baseline.load_if_exists(folder, "victim"),
                 lambda: baseline.baseline_path(folder, "victim"),
                 lambda: baseline.save_run(folder, "victim", make_run(1))):
        with pytest.raises(BaselineError, match="symlink"):
            call()
    assert target.read_bytes() == before
    (folder / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    with pytest.raises(BaselineError, match="symlink"):
        baseline.save_run(folder, "dangling", make_run(1))
    assert not (tmp_path / "nowhere.json").exists()


def test_symlinked_lock_file_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    folder = tmp_path / "baselines"
    folder.mkdir()
    (folder / ".h.lock").symlink_to(victim)
    with pytest.raises(BaselineError, match=r"lock file .*\.h\.lock: is a symlink"):
        baseline.save_run(folder, "h", make_run(0))
    assert victim.read_text() == "keep me"


def test_host_id_groups_hosts_of_one_class() -> None:
    hid = baseline.host_id(FP)
    assert baseline.host_id(dict(FP)) == hid
    assert baseline.host_id({**FP, "kernel": "5.15.0-92-generic"}) == hid  # patch level: same class
    assert baseline.host_id({**FP, "python": "3.11.9", "numpy": "2.0.0", "rt_runtime_us": -1}) == hid
    assert baseline.host_id({**FP, "kernel": "6.1.0-13-amd64"}) != hid
    assert baseline.host_id({**FP, "python": "3.12.1"}) != hid
    assert baseline.host_id({**FP, "governor": "performance"}) != hid
    assert baseline.host_id({**FP, "smt": False}) != hid
    other = baseline.host_id({**FP, "cpu_model": "AMD EPYC 7763 64-Core Processor"})
    assert other != hid and other.startswith("amd-epyc-7763-64-core-2cpu-x86_64-")
    intel = baseline.host_id({**FP, "cpu_model": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
                              "logical_cpus": 8})
    assert intel.startswith("intel-xeon-platinum-8375c-8cpu-x86_64-")


@pytest.mark.parametrize("fp", [{k: None for k in FP}, {}, {"cpu_model": "   "}, {"cpu_model": "@@@ (TM)"},
                                {"cpu_model": "x" * 500, "logical_cpus": 10**6, "arch": "../../" * 50},
                                {"cpu_model": 5, "logical_cpus": "two", "kernel": 5, "python": None}])
def test_host_id_tolerates_missing_and_odd_values(fp: dict) -> None:
    hid = baseline.host_id(fp)
    assert re.fullmatch(r"[a-z0-9_][a-z0-9._-]*-[0-9a-f]{8}", hid) and len(hid) <= 80
    assert baseline.sanitize_host_id(hid) == hid
    if not isinstance(fp.get("cpu_model"), str) or not fp["cpu_model"].strip():
        assert hid.startswith("unknown-cpu")


def test_host_id_override_wins() -> None:
    assert baseline.host_id(FP, override="My CI/Runner") == "my-ci-runner"
    with pytest.raises(BaselineError, match="no usable characters"):
        baseline.host_id(FP, override="../")


# --------------------------------------------------------------------------- histograms


def test_histogram_exact_small_example() -> None:
    h = baseline.encode_histogram(np.array([0.4, 1, 2, 2, 3, 1000, 1000.6]))
    # 0.4 -> 0 ns and 1 ns share bucket 0; 2 ns starts bucket 32; 3 ns is in 50; 1000/1001 in 318.
    assert h == {"encoding": "log2-32", "sub_buckets": 32, "index": [0, 32, 50, 318], "count": [2, 2, 1, 2],
                 "min_ns": 0, "max_ns": 1001, "total": 7}
    reps, counts = baseline.decode_histogram(h)
    assert counts.tolist() == [2, 2, 1, 2]
    assert reps == pytest.approx(2 ** ((np.array([0, 32, 50, 318]) + 0.5) / 32))
    assert baseline.histogram_percentiles(h, [0, 100]).tolist() == [0, 1001]


def test_histogram_bucket_edges_are_exact() -> None:
    edges = [2 ** (i / 32) for i in range(32 * 40)]
    ints = sorted({int(np.ceil(e)) for e in edges} | {int(np.floor(e)) for e in edges})
    idx = baseline._bucket_of(np.array(ints))
    for v, i in zip(ints, idx.tolist()):
        assert 2 ** (i / 32) <= max(v, 1) < 2 ** ((i + 1) / 32)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), mu=st.floats(0, 16), sigma=st.floats(0.01, 2),
       n=st.integers(1, 5000), integral=st.booleans())
def test_histogram_percentiles_within_one_bucket(seed: int, mu: float, sigma: float, n: int,
                                                 integral: bool) -> None:
    samples = np.random.default_rng(seed).lognormal(mu, sigma, n)
    if integral:
        samples = np.rint(samples)
    h = baseline.encode_histogram(samples)
    assert sum(h["count"]) == h["total"] == n
    assert h["index"] == sorted(set(h["index"])) and min(h["count"]) >= 1
    qs = [0, 1, 10, 25, 50, 75, 90, 99, 99.9, 100]
    exact = np.percentile(np.rint(samples), qs)
    approx = baseline.histogram_percentiles(h, qs)
    width = 2 ** (1 / 32) - 1  # 2.2%
    # Bucket 0 spans [0, 2**(1/32)) ns, hence the absolute slack of one such width.
    assert np.all(np.abs(approx - exact) <= width * exact + 2 ** (1 / 32)), (approx, exact)
    assert np.all(np.diff(approx) >= 0)
    assert approx[0] == h["min_ns"] and approx[-1] == h["max_ns"]


@pytest.mark.parametrize("samples", [np.array([]), np.array([1.0, np.nan]), np.array([-1.0]),
                                     np.array([np.inf]), np.array([1e16])])
def test_encode_histogram_rejects_bad_samples(samples: np.ndarray) -> None:
    with pytest.raises(InvalidArgument, match="encode_histogram"):
        baseline.encode_histogram(samples)


def test_histogram_functions_validate_their_input() -> None:
    h = baseline.encode_histogram(np.arange(1, 100))
    with pytest.raises(BaselineError, match="malformed histogram: histogram.total"):
        baseline.histogram_percentiles({**h, "total": 5}, [50])
    with pytest.raises(BaselineError, match="malformed histogram"):
        baseline.decode_histogram({"index": [1]})
    with pytest.raises(InvalidArgument, match="percentiles must be in"):
        baseline.histogram_percentiles(h, [101])


# --------------------------------------------------------------------------- records, runs, commit


def test_measurement_record_keeps_the_summary_and_adds_the_histogram() -> None:
    rec = real_record(3, batch=4, host={"cpus": [1]})
    assert set(rec) == {"mode", "batch", "n", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "min_ns",
                        "mean_ns", "blocks", "group", "host", "histogram"}
    assert rec["mode"] == "batched(4)" and rec["n"] == 2000 and len(rec["blocks"]) == 20
    assert set(rec["blocks"][0]) == {"n", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"}
    assert all(type(v) is int for _, v in ns_values(rec))
    p = baseline.histogram_percentiles(rec["histogram"], [50, 99])
    assert abs(p[0] - rec["p50_ns"]) < 0.05 * rec["p50_ns"]


def test_measurement_record_rejects_inconsistent_input() -> None:
    rng = np.random.default_rng(0)
    raw = Samples(values=rng.lognormal(7, 0.3, 100), block_sizes=(50, 50), batch=1, warmup_calls=1, calls=100,
                  seconds=0.01, truncated=False)
    d = summarize(raw, nodeid="t.py::t", name="x").to_dict()
    with pytest.raises(BaselineError, match=r"measurement_record for 't.py::t\[x\]'.*histogram.total: 99"):
        baseline.measurement_record(d, raw.values[:99])
    with pytest.raises(BaselineError, match="lacks blocks"):
        baseline.measurement_record({k: v for k, v in d.items() if k != "blocks"}, raw.values)
    with pytest.raises(BaselineError, match="encode_histogram: no samples"):
        baseline.measurement_record(d, np.array([]))


def test_new_run_defaults_and_conversions() -> None:
    from pytest_hostperf.host.probe import Check

    run = baseline.new_run(measurements={}, fingerprint=FP, audit=[Check("smt", "off", "ok")],
                           timer=TimerInfo("perf_counter_ns", 49.6, 10.0, 200), tools=TOOLS)
    assert run["commit"] == {"sha": None, "branch": None, "dirty": None}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", run["created_utc"])
    assert run["timer"] == {"clock": "perf_counter_ns", "overhead_ns": 50, "resolution_ns": 10, "pairs": 200}
    assert run["audit"] == [{"name": "smt", "reading": "off", "verdict": "ok", "advice": None}]
    assert run["concurrency"] == 1
    with pytest.raises(BaselineError, match="would replace the run's own keys"):
        baseline.new_run(measurements={}, fingerprint=FP, audit=[], timer=None, tools={}, extra={"timer": 1})
    with pytest.raises(BaselineError, match=r"new_run: run.concurrency"):
        baseline.new_run(measurements={}, fingerprint=FP, audit=[], timer=None, tools={}, concurrency=0)
    with pytest.raises(BaselineError, match=r"new_run: run.fingerprint.x: expected a string, number"):
        baseline.new_run(measurements={}, fingerprint={"x": [1]}, audit=[], timer=None, tools={})


def test_commit_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    none = {"sha": None, "branch": None, "dirty": None}
    assert baseline.commit_info(tmp_path) == none  # not a repository
    assert baseline.commit_info(tmp_path / "missing") == none
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", "-b", "work", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("1")
    subprocess.run([*git, "add", "f"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], cwd=tmp_path, check=True)
    info = baseline.commit_info(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{40}", info["sha"]) and info["branch"] == "work" and info["dirty"] is False
    (tmp_path / "f").write_text("2")
    assert baseline.commit_info(tmp_path)["dirty"] is True
    subprocess.run([*git, "checkout", "-q", "--detach"], cwd=tmp_path, check=True)
    assert baseline.commit_info(tmp_path)["branch"] is None
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git at all
    assert baseline.commit_info(tmp_path) == none
