"""The baseline format: its name and version, and the validation of a parsed document.

:func:`_validate` checks a whole document (as ``json`` parsed it), :func:`_check_run` and
:func:`_check_record` one run and one measurement record: everything
``records.StoredRun.from_json`` converts, so a checked run always becomes a typed one. Every
problem raises :class:`_Invalid` with the JSON path of the first one
(``runs[0].measurements["id"].p99_ns``) and what is wrong; ``disk`` adds the file's name.
Pure: no I/O (reading is ``disk``, through ``jsonfile.read_json``).
"""
from __future__ import annotations

import re
from datetime import datetime

from pytest_hostperf.errors import BaselineError
from pytest_hostperf.store.histogram import _check_histogram
from pytest_hostperf.store.hostid import sanitize_host_id
from pytest_hostperf.store.jsoncheck import (
    MAX_DEPTH,
    MAX_NS,
    _at,
    _check_json,
    _int,
    _Invalid,
    _keys,
    _kind,
    _ns,
    _obj,
    _ordered,
    _show,
    _show_key,
    _str,
)
from pytest_hostperf.store.jsonfile import Json
from pytest_hostperf.units import STATS

# MAX_NS and MAX_DEPTH (defined with the checks in jsoncheck.py) are the format's limits.
__all__ = ["MAX_DEPTH", "MAX_NS", "SCHEMA", "SCHEMA_VERSION"]

SCHEMA = "pytest-hostperf-baseline"
# Baseline format history:
# 1 - first version
SCHEMA_VERSION = 1

_BLOCK_NAMES = tuple(f"{s}_ns" for s in STATS)
_BLOCK_KEYS = frozenset({"n", *_BLOCK_NAMES})
_RECORD_KEYS = frozenset({"mode", "batch", "n", "min_ns", *_BLOCK_NAMES, "mean_ns", "blocks", "group", "histogram"})
_RECORD_OPTIONAL = frozenset({"host", "counters"})  # counters: per-call values, see counters.py
_RUN_KEYS = frozenset({"created_utc", "commit", "tools", "fingerprint", "audit", "timer", "concurrency",
                       "measurements"})
_DOC_KEYS = frozenset({"schema", "schema_version", "host_id", "runs"})
_COMMIT_KEYS = frozenset({"sha", "branch", "dirty"})
_AUDIT_KEYS = frozenset({"name", "reading", "verdict", "advice"})
_TIMER_KEYS = frozenset({"clock", "overhead_ns", "resolution_ns", "pairs"})
_UTC_RE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,6})?Z")
_SHA_RE = re.compile(r"[0-9a-f]{4,64}")


def _check_host(h: object, where: str) -> None:
    """What ``records.HostState.from_json`` converts: the CPUs and the controls applied."""
    h = _obj(h, where)
    cpus = h.get("cpus")
    if cpus is not None:
        if type(cpus) is not list:
            raise _Invalid(_at(where, "cpus"), f"expected an array, got {_kind(cpus)}")
        for i, cpu in enumerate(cpus):
            _int(cpu, f"{_at(where, 'cpus')}[{i}]", 0, 1 << 20, "a CPU number")
    controls = h.get("controls")
    if controls is not None:
        if type(controls) is not list:
            raise _Invalid(_at(where, "controls"), f"expected an array, got {_kind(controls)}")
        for i, control in enumerate(controls):
            _obj(control, f"{_at(where, 'controls')}[{i}]")


def _check_record(r: object, where: str) -> None:
    r = _obj(r, where)
    _keys(r, where, _RECORD_KEYS, _RECORD_OPTIONAL)
    batch = _int(r["batch"], _at(where, "batch"), 1, MAX_NS)
    mode = _str(r["mode"], _at(where, "mode"))
    expected_mode = "single" if batch == 1 else f"batched({batch})"
    # a call timed alone may be labelled by how it was timed: its device time (timer="cuda"), or
    # its latency from its intended start (rate=): ``cuda-events``, ``open-loop(20k/s)``
    per_call = batch == 1 and (mode == "cuda-events" or re.fullmatch(r"open-loop\([^()]+\)", mode) is not None)
    if mode != expected_mode and not per_call:
        raise _Invalid(_at(where, "mode"), f"{_show(mode)} does not match batch {batch} (expected {expected_mode!r})")
    n = _int(r["n"], _at(where, "n"), 1, MAX_NS)
    names = ("min_ns", *_BLOCK_NAMES)
    for k in (*names, "mean_ns"):
        _ns(r[k], _at(where, k))
    _ordered(r, where, names)
    if not r["min_ns"] <= r["mean_ns"] <= r["max_ns"]:
        raise _Invalid(_at(where, "mean_ns"), f"{r['mean_ns']} lies outside min_ns..max_ns "
                                              f"({r['min_ns']}..{r['max_ns']})")
    _str(r["group"], _at(where, "group"), nullable=True)
    if "host" in r:
        _check_host(r["host"], _at(where, "host"))
    if "counters" in r:
        cw = _at(where, "counters")
        for name, c in _obj(r["counters"], cw).items():
            c = _obj(c, _at(cw, name))
            _keys(c, _at(cw, name), frozenset({"per_call", "blocks"}))
            for k, v in [("per_call", c["per_call"])] + [(f"blocks[{i}]", v) for i, v in enumerate(
                    c["blocks"] if type(c["blocks"]) is list else [c["blocks"]])]:
                if type(v) not in (int, float) or not -1e12 <= v <= 1e12:
                    raise _Invalid(_at(_at(cw, name), k), f"expected a per-call count, got {_show(v)}")
    blocks = r["blocks"]
    if type(blocks) is not list:
        raise _Invalid(_at(where, "blocks"), f"expected an array, got {_kind(blocks)}")
    if not blocks:
        raise _Invalid(_at(where, "blocks"), "no blocks")
    for i, b in enumerate(blocks):
        w = f"{where}.blocks[{i}]"
        b = _obj(b, w)
        _keys(b, w, _BLOCK_KEYS)
        _int(b["n"], _at(w, "n"), 1, MAX_NS, "a sample count")
        for k in _BLOCK_NAMES:
            _ns(b[k], _at(w, k))
        _ordered(b, w, _BLOCK_NAMES)
        if b["max_ns"] > r["max_ns"]:
            raise _Invalid(_at(w, "max_ns"), f"{b['max_ns']} > the measurement's max_ns {r['max_ns']}")
    in_blocks = sum(b["n"] for b in blocks)
    if in_blocks != n:
        raise _Invalid(_at(where, "n"), f"{n}, but the blocks hold {in_blocks} samples")
    hw = _at(where, "histogram")
    _check_histogram(r["histogram"], hw)
    h = r["histogram"]
    if h["total"] != n:
        raise _Invalid(_at(hw, "total"), f"{h['total']}, but the measurement has n={n} samples")
    if h["min_ns"] != r["min_ns"] or h["max_ns"] != r["max_ns"]:
        raise _Invalid(hw, f"min_ns/max_ns {h['min_ns']}/{h['max_ns']} differ from the measurement's "
                           f"{r['min_ns']}/{r['max_ns']}")


def _check_run(run: object, where: str) -> None:
    run = _obj(run, where)
    _keys(run, where, _RUN_KEYS, extra_ok=True)
    w = _at(where, "created_utc")
    created = _str(run["created_utc"], w)
    m = _UTC_RE.fullmatch(created)
    try:
        if m is None:
            raise ValueError
        datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise _Invalid(w, f"{_show(created)} is not a UTC time like '2024-05-01T12:00:00Z'") from None
    w = _at(where, "commit")
    commit = _obj(run["commit"], w)
    _keys(commit, w, _COMMIT_KEYS)
    sha = _str(commit["sha"], _at(w, "sha"), nullable=True)
    if sha is not None and not _SHA_RE.fullmatch(sha):
        raise _Invalid(_at(w, "sha"), f"{_show(sha)} is not a hex commit id")
    _str(commit["branch"], _at(w, "branch"), nullable=True)
    if commit["dirty"] is not None and type(commit["dirty"]) is not bool:
        raise _Invalid(_at(w, "dirty"), f"expected true, false or null, got {_kind(commit['dirty'])}")
    w = _at(where, "tools")
    for k, v in _obj(run["tools"], w).items():
        _str(v, _at(w, k), nullable=True)
    w = _at(where, "fingerprint")
    for k, v in _obj(run["fingerprint"], w).items():
        if type(v) in (dict, list):
            raise _Invalid(_at(w, k), f"expected a string, number, boolean or null, got {_kind(v)}")
    w = _at(where, "audit")
    if type(run["audit"]) is not list:
        raise _Invalid(w, f"expected an array, got {_kind(run['audit'])}")
    for i, item in enumerate(run["audit"]):
        wi = f"{w}[{i}]"
        _keys(_obj(item, wi), wi, _AUDIT_KEYS)
        for k in ("name", "reading", "verdict"):
            _str(item[k], _at(wi, k))
        _str(item["advice"], _at(wi, "advice"), nullable=True)
    w = _at(where, "timer")
    if run["timer"] is not None:
        timer = _obj(run["timer"], w)
        _keys(timer, w, _TIMER_KEYS)
        _str(timer["clock"], _at(w, "clock"))
        _ns(timer["overhead_ns"], _at(w, "overhead_ns"))
        _ns(timer["resolution_ns"], _at(w, "resolution_ns"))
        _int(timer["pairs"], _at(w, "pairs"), 1, MAX_NS)
    _int(run["concurrency"], _at(where, "concurrency"), 1, 1 << 20)
    w = _at(where, "measurements")
    for mid, record in _obj(run["measurements"], w).items():
        if not mid:
            raise _Invalid(w, "empty measurement id")
        _check_record(record, f"{w}[{_show_key(mid)}]")


def _validate(doc: object) -> Json:
    """Check a parsed document and return it; raises _Invalid with the JSON path of the first problem."""
    if not isinstance(doc, dict):
        raise _Invalid("", f"not a pytest-hostperf baseline (the top level is {_kind(doc)}, not an object)")
    if "schema" not in doc:
        raise _Invalid("", "not a pytest-hostperf baseline (no 'schema' key)")
    if doc["schema"] != SCHEMA:
        raise _Invalid("schema", f"not a pytest-hostperf baseline (schema {_show(doc['schema'])}, "
                                 f"expected {SCHEMA!r})")
    if "schema_version" not in doc:
        raise _Invalid("", "no 'schema_version' key")
    version = doc["schema_version"]
    if type(version) is not int:
        raise _Invalid("schema_version", f"expected an integer, got {_show(version)}")
    if version < 1:
        raise _Invalid("schema_version", f"{version} is not a valid version (versions start at 1)")
    if version > SCHEMA_VERSION:
        raise _Invalid("schema_version", f"version {version} was written by a newer pytest-hostperf "
                                         f"(this one reads up to {SCHEMA_VERSION}); upgrade pytest-hostperf")
    _check_json(doc, "")
    _keys(doc, "", _DOC_KEYS)
    host = _str(doc["host_id"], "host_id")
    try:
        clean = sanitize_host_id(host)
    except BaselineError:
        clean = None
    if clean != host:
        raise _Invalid("host_id", f"{_show(host)} is not a valid host id (letters a-z, digits, '.', '_', "
                                  "'-'; at most 80; no leading dot or dash)")
    runs = doc["runs"]
    if type(runs) is not list:
        raise _Invalid("runs", f"expected an array, got {_kind(runs)}")
    if not runs:
        raise _Invalid("runs", "no runs")
    for i, run in enumerate(runs):
        _check_run(run, f"runs[{i}]")
    return doc
