"""The JSON report's file format on the way in: what a report read from a file must hold.

:func:`check_report` checks a parsed ``--hostperf-json`` document (or one written by
``hostperf import-benchmark``) so that :meth:`records.Report.from_json` can trust it: every
field it converts has the right type, and every problem names the file, the JSON path and
what is wrong. Reports before any release lacked ``commit`` and each result's
``histogram``, and imported ones lack ``settings``, ``timer`` and the run's counters: all of
those are optional. The report's keys are known here and in :mod:`records`, nowhere else.
Written with the store's one validation framework (``jsoncheck``): each check raises
``_Invalid`` at a JSON path, turned into a ``ReportError`` naming the file at the top.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeGuard

from pytest_hostperf.errors import ReportError
from pytest_hostperf.store.histogram import _check_histogram
from pytest_hostperf.store.jsoncheck import _check_json, _Invalid
from pytest_hostperf.store.jsonfile import Json
from pytest_hostperf.store.records import REPORT_SCHEMA, REPORT_SCHEMA_VERSION
from pytest_hostperf.units import STATS

__all__ = ["MAX_REPORT_BYTES", "check_report", "schema_of"]

#: A report file is refused above this size, before it is read.
MAX_REPORT_BYTES = 64 * 1024 * 1024


def schema_of(doc: object) -> object:
    """The document's ``"schema"`` (None for anything but an object that names one)."""
    return doc.get("schema") if isinstance(doc, dict) else None


def _object(v: object, where: str) -> Json:
    if not isinstance(v, dict):
        raise _Invalid(where, "expected an object")
    return v


def _maybe_object(v: object, where: str) -> Json:
    """An object or null (read as empty)."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise _Invalid(where, "expected an object or null")
    return v


def _array(v: object, where: str) -> list[object]:
    if not isinstance(v, list):
        raise _Invalid(where, "expected an array")
    return v


def _is_number(v: object) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _ns(v: object, where: str) -> None:
    if not (_is_number(v) and v >= 0):
        raise _Invalid(where, f"expected a number of nanoseconds, got {v!r:.60}")


def _number(v: object, where: str, *, nullable: bool = False) -> None:
    if not (_is_number(v) or (v is None and nullable)):
        raise _Invalid(where, f"expected a number, got {v!r:.60}")


def _whole(v: object, where: str, lo: int = 0) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise _Invalid(where, f"expected a whole number >= {lo}, got {v!r:.60}")


def _text(v: object, where: str, *, nullable: bool = False) -> None:
    if not (isinstance(v, str) or (v is None and nullable)):
        raise _Invalid(where, f"expected a string{' or null' if nullable else ''}, got {v!r:.60}")


def _flag(v: object, where: str, *, nullable: bool = False) -> None:
    if not (isinstance(v, bool) or (v is None and nullable)):
        raise _Invalid(where, f"expected true or false, got {v!r:.60}")


def _pair(v: object, where: str, item: Callable[[object, str], None]) -> None:
    if not isinstance(v, list) or len(v) != 2:
        raise _Invalid(where, "expected [low, high]")
    item(v[0], f"{where}[0]")
    item(v[1], f"{where}[1]")


def _optional(d: Mapping[str, object], key: str, where: str, check: Callable[[object, str], None], *,
              nullable: bool = True) -> None:
    """``check`` the value of ``key`` where present (and, with ``nullable``, not null)."""
    if key in d and not (nullable and d[key] is None):
        check(d[key], f"{where}.{key}" if where else key)


def _applied(a: object, where: str) -> None:
    a = _object(a, where)
    for k in ("control", "detail"):
        _text(a.get(k), f"{where}.{k}")
    _flag(a.get("applied"), f"{where}.applied")
    for k in ("reason", "fix"):
        _text(a.get(k), f"{where}.{k}", nullable=True)


def _result_host(h: object, where: str) -> None:
    h = _object(h, where)
    for i, cpu in enumerate(_array(h.get("cpus", []), f"{where}.cpus")):
        _whole(cpu, f"{where}.cpus[{i}]")
    _text(h.get("policy"), f"{where}.policy")
    _optional(h, "priority", where, _whole)
    _flag(h.get("memory_locked"), f"{where}.memory_locked", nullable=True)
    for i, a in enumerate(_array(h.get("controls", []), f"{where}.controls")):
        _applied(a, f"{where}.controls[{i}]")
    _text(h.get("timed_by"), f"{where}.timed_by", nullable=True)
    if h.get("paced") is not None:  # pytest-benchmark's rounds paced at SCHED_FIFO
        paced = _object(h["paced"], f"{where}.paced")
        _whole(paced.get("pauses"), f"{where}.paced.pauses")
        _number(paced.get("paused_s"), f"{where}.paced.paused_s")


def _budget(b: object, where: str) -> None:
    b = _object(b, where)
    for k in ("stat", "status"):
        _text(b.get(k), f"{where}.{k}")
    for k in ("budget_ns", "estimate_ns"):
        _optional(b, k, where, _ns)
    _optional(b, "interval_ns", where, lambda v, w: _pair(v, w, _ns))
    _optional(b, "message", where, _text)


def _verdict(v: object, where: str) -> None:
    if v is None:
        return
    v = _object(v, where)
    _text(v.get("status"), f"{where}.status")
    for k in ("stat", "reason"):
        _optional(v, k, where, _text)
    _number(v.get("ratio"), f"{where}.ratio", nullable=True)
    _optional(v, "interval", where, lambda x, w: _pair(x, w, _number))
    for k in ("baseline_ns", "current_ns"):
        _optional(v, k, where, _ns)
    _optional(v, "tolerance_pct", where, _number)
    _optional(v, "could_tell_pct", where, _number)
    for k in ("baseline_runs", "extra_rounds"):
        _optional(v, k, where, _whole)


def _result(r: object, w: str, seen: set[str]) -> None:
    if not isinstance(r, dict):
        raise _Invalid(w, "expected an object")
    if not isinstance(r.get("id"), str) or not r["id"]:
        raise _Invalid(f"{w}.id", "expected a measurement id")
    if r["id"] in seen:
        raise _Invalid(f"{w}.id", f"{r['id']!r} appears twice")
    seen.add(r["id"])
    if not isinstance(r.get("mode"), str):
        raise _Invalid(f"{w}.mode", "expected 'single', 'batched(k)' or 'cuda-events'")
    if r.get("load") is not None:  # rate=: an open-loop measurement's load
        load = _object(r["load"], f"{w}.load")
        for k in ("rate_per_s", "achieved_per_s"):
            _number(load.get(k), f"{w}.load.{k}")
        _flag(load.get("saturated"), f"{w}.load.saturated")
        _text(load.get("arrivals"), f"{w}.load.arrivals")
    if r.get("wall_ns") is not None:  # timer="cuda": the calls' host wall time beside their device time
        wall = _object(r["wall_ns"], f"{w}.wall_ns")
        for k in ("p50", "p99"):
            _number(wall.get(k), f"{w}.wall_ns.{k}")
    if isinstance(r.get("batch"), bool) or not isinstance(r.get("batch"), int) or r["batch"] < 1:
        raise _Invalid(f"{w}.batch", "expected a whole number >= 1")
    for s in STATS:
        if s != "max":  # max_ns, like min_ns and mean_ns, may be absent: the record reads it as 0
            _ns(r.get(f"{s}_ns"), f"{w}.{s}_ns")
    for k in ("max_ns", "min_ns", "mean_ns"):
        _optional(r, k, w, _ns)
    for k in ("nodeid", "name"):
        _optional(r, k, w, _text)
    for k in ("group", "why", "not_gated", "worker", "series"):
        _text(r.get(k), f"{w}.{k}", nullable=True)
    for k in ("n", "calls"):
        _optional(r, k, w, _whole)
    _optional(r, "seconds", w, _number)
    for k in ("smoke", "truncated"):
        _optional(r, k, w, _flag)
    intervals = _maybe_object(r.get("intervals_ns"), f"{w}.intervals_ns")
    for stat, iv in intervals.items():
        _pair(iv, f"{w}.intervals_ns.{stat}", _ns)
    blocks = r.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        raise _Invalid(f"{w}.blocks", "expected a non-empty array of per-block statistics")
    for j, b in enumerate(blocks):
        _ns(b.get("p99_ns") if isinstance(b, dict) else None, f"{w}.blocks[{j}].p99_ns")
        _whole(b.get("n"), f"{w}.blocks[{j}].n")
        for s in STATS:
            _ns(b.get(f"{s}_ns"), f"{w}.blocks[{j}].{s}_ns")
    for j, b in enumerate(_array(r.get("budgets", []), f"{w}.budgets")):
        _budget(b, f"{w}.budgets[{j}]")
    _verdict(r.get("verdict"), f"{w}.verdict")
    if r.get("host"):
        _result_host(r["host"], f"{w}.host")
    hist = r.get("histogram")
    if hist is not None:
        _check_json(hist, f"{w}.histogram")
        _check_histogram(hist, f"{w}.histogram")


def _run_parts(doc: Json) -> None:
    """The run-level parts records read: commit, settings, baseline, timer, speedups, counters, noise."""
    commit, settings, base, timer, counters, noise = (
        _maybe_object(doc.get(k), k) for k in ("commit", "settings", "baseline", "timer", "counters", "noise"))
    _maybe_object(doc.get("tools"), "tools")
    _optional(doc, "created_utc", "", _text)
    _optional(doc, "mode", "", _text)
    _optional(doc, "concurrency", "", _whole)
    _text(commit.get("sha"), "commit.sha", nullable=True)
    _text(commit.get("branch"), "commit.branch", nullable=True)
    _flag(commit.get("dirty"), "commit.dirty", nullable=True)
    for k in ("samples", "max_time_s"):
        _optional(settings, k, "settings", _number)
    _optional(settings, "tolerance_pct", "settings", _number, nullable=False)  # read with a default, not `or`
    for k in ("host_id", "path"):
        _text(base.get(k), f"baseline.{k}", nullable=True)
    _optional(base, "runs", "baseline", _whole)
    for i, d in enumerate(_array(base.get("host_differences", []), "baseline.host_differences")):
        _text(d, f"baseline.host_differences[{i}]")
    if timer:
        _text(timer.get("clock"), "timer.clock")
        for k in ("overhead_ns", "resolution_ns"):
            _ns(timer.get(k), f"timer.{k}")
        _whole(timer.get("pairs"), "timer.pairs")
    for i, s in enumerate(_array(doc.get("speedups") or [], "speedups")):
        s = _object(s, f"speedups[{i}]")
        for k in ("fast", "slow", "stat", "status", "message"):
            _text(s.get(k), f"speedups[{i}].{k}")
        for k in ("factor", "speedup"):
            _optional(s, k, f"speedups[{i}]", _number)
        _optional(s, "interval", f"speedups[{i}]", lambda x, w: _pair(x, w, _number))
    _optional(counters, "read_cost_ns", "counters", _ns)
    for k, why in _maybe_object(counters.get("unavailable"), "counters.unavailable").items():
        _text(why, f"counters.unavailable.{k}")
    for k, probe in _maybe_object(noise.get("probes"), "noise.probes").items():
        _text(_object(probe, f"noise.probes.{k}").get("text"), f"noise.probes.{k}.text")
    _optional(noise, "share", "noise", _number)
    _number(noise.get("baseline_share"), "noise.baseline_share", nullable=True)
    _array(doc.get("notes") or [], "notes")


def _host(host: object) -> None:
    if host is not None and (not isinstance(host, dict) or not isinstance(host.get("fingerprint", {}), dict)
                             or not isinstance(host.get("audit", []), list)):
        raise _Invalid("host", "expected {\"fingerprint\": {...}, \"audit\": [...]}")
    for i, a in enumerate((host or {}).get("audit") or ()):
        if isinstance(a, dict):  # entries of another shape are not readings (records skip them)
            _text(a.get("name"), f"host.audit[{i}].name")
            if "reading" not in a:
                raise _Invalid(f"host.audit[{i}]", "no \"reading\"")
    for i, a in enumerate(_array((host or {}).get("not_applied", []), "host.not_applied")):
        _applied(a, f"host.not_applied[{i}]")


def check_report(doc: object, path: Path | str) -> Json:
    """``doc`` when it is a report :meth:`records.Report.from_json` can read; else
    :class:`ReportError` naming ``path``, the JSON path and what is wrong.

    >>> check_report({"schema": "x"}, "r.json")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ReportError: r.json: not a pytest-hostperf report (no "schema": "pytest-hostperf-report"; it has "x")
    """
    schema = schema_of(doc)
    if not isinstance(doc, dict) or schema != REPORT_SCHEMA:
        raise ReportError(f"{path}: not a pytest-hostperf report (no \"schema\": \"{REPORT_SCHEMA}\""
                          + (f"; it has {json.dumps(schema)[:60]}" if schema is not None else "") + ")")
    version = doc.get("schema_version")
    if version != REPORT_SCHEMA_VERSION:
        raise ReportError(f"{path}: report schema_version {version!r} is not supported (this version reads "
                          f"{REPORT_SCHEMA_VERSION}); upgrade pytest-hostperf")
    try:
        results = _array(doc.get("results"), "results")
        seen: set[str] = set()
        for i, r in enumerate(results):
            _result(r, f"results[{i}]", seen)
        _host(doc.get("host"))
        _run_parts(doc)
    except _Invalid as exc:
        raise ReportError(f"{path}: {exc}") from None
    return doc
