"""Validation of baseline documents (baseline_schema.py): every malformed, foreign, future-version or
fuzzed file is one clear BaselineError naming the file, the JSON path and the problem."""
from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from baseline_data import MID, M, valid_doc, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_hostperf.errors import BaselineError, HostperfError
from pytest_hostperf.store import baseline_schema, disk

FUZZ = settings(max_examples=150, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture])


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
        disk.load(path)
    msg = str(info.value)
    assert str(path) in msg
    assert fragment in msg
    assert isinstance(info.value, HostperfError) and isinstance(info.value, ValueError)
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, BaselineError)



def test_valid_doc_itself_loads(tmp_path: Path) -> None:
    # The malformed cases above are single mutations of this document.
    b = disk.load(write(tmp_path / "box-1.json", valid_doc()))
    assert len(b.runs) == 2 and b.ids() == [MID, "t.py::test_b[y]"]


def test_future_version_says_upgrade(tmp_path: Path) -> None:
    doc = valid_doc()
    doc["schema_version"] = baseline_schema.SCHEMA_VERSION + 1
    doc["runs"] = "a format this version does not know"
    with pytest.raises(BaselineError, match="newer pytest-hostperf.*upgrade pytest-hostperf"):
        disk.load(write(tmp_path / "f.json", doc))



# --------------------------------------------------------------------------- fuzzing the loader

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25,
)


def _load_or_error(path: Path) -> disk.Baseline | None:
    try:
        return disk.load(path)
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
        value = {"schema": baseline_schema.SCHEMA, "schema_version": 1, **value}
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
        assert disk.load(write(path, disk.to_json(loaded.to_dict()).encode())) == \
            disk.Baseline(path, loaded.host_id, loaded.runs)
    _load_or_error(write(path, text[: len(text) - cut].encode()))  # and truncated

