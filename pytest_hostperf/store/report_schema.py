"""The JSON report's file format on the way in: what a report read from a file must hold.

:func:`check_report` checks a parsed ``--hostperf-json`` document (or one written by
``hostperf import-benchmark``) so that :meth:`records.Report.from_json` can trust it: every
field it converts has the right type, and every problem names the file, the JSON path and
what is wrong. Reports before any release lacked ``commit`` and each result's
``histogram``, and imported ones lack ``settings``, ``timer`` and the run's counters: all of
those are optional. The report's keys are known here and in :mod:`records`, nowhere else.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_hostperf.errors import BaselineError, ReportError
from pytest_hostperf.store.records import REPORT_SCHEMA, REPORT_SCHEMA_VERSION

Json = dict[str, Any]

#: A report file is refused above this size, before it is read.
MAX_REPORT_BYTES = 64 * 1024 * 1024
_STATS = ("p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns")


def schema_of(doc: Any) -> Any:
    """The document's ``"schema"`` (None for anything but an object that names one)."""
    return doc.get("schema") if isinstance(doc, dict) else None


class _Check:
    """Small typed checks that raise :class:`ReportError` naming the file and the JSON path."""

    def __init__(self, path: Path | str) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> ReportError:
        return ReportError(f"{self.path}: {where}: {problem}")

    def obj(self, v: Any, where: str) -> Json:
        if not isinstance(v, dict):
            raise self.fail(where, "expected an object")
        return v

    def maybe_obj(self, v: Any, where: str) -> Json:
        """An object or null (read as empty)."""
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise self.fail(where, "expected an object or null")
        return v

    def arr(self, v: Any, where: str) -> list[Any]:
        if not isinstance(v, list):
            raise self.fail(where, "expected an array")
        return v

    def ns(self, v: Any, where: str) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise self.fail(where, f"expected a number of nanoseconds, got {v!r:.60}")

    def number(self, v: Any, where: str, *, nullable: bool = False) -> None:
        if v is None and nullable:
            return
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(where, f"expected a number, got {v!r:.60}")

    def whole(self, v: Any, where: str, lo: int = 0) -> None:
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise self.fail(where, f"expected a whole number >= {lo}, got {v!r:.60}")

    def text(self, v: Any, where: str, *, nullable: bool = False) -> None:
        if not (isinstance(v, str) or (v is None and nullable)):
            raise self.fail(where, f"expected a string{' or null' if nullable else ''}, got {v!r:.60}")

    def flag(self, v: Any, where: str, *, nullable: bool = False) -> None:
        if not (isinstance(v, bool) or (v is None and nullable)):
            raise self.fail(where, f"expected true or false, got {v!r:.60}")

    def pair(self, v: Any, where: str, item: Callable[[Any, str], None]) -> None:
        if not isinstance(v, list) or len(v) != 2:
            raise self.fail(where, "expected [low, high]")
        item(v[0], f"{where}[0]")
        item(v[1], f"{where}[1]")

    def optional(self, d: Mapping[str, Any], key: str, where: str, check: Callable[[Any, str], None], *,
                 nullable: bool = True) -> None:
        """``check`` the value of ``key`` where present (and, with ``nullable``, not null)."""
        if key in d and not (nullable and d[key] is None):
            check(d[key], f"{where}.{key}" if where else key)


def _applied(c: _Check, a: Any, where: str) -> None:
    a = c.obj(a, where)
    for k in ("control", "detail"):
        c.text(a.get(k), f"{where}.{k}")
    c.flag(a.get("applied"), f"{where}.applied")
    for k in ("reason", "fix"):
        c.text(a.get(k), f"{where}.{k}", nullable=True)


def _result_host(c: _Check, h: Any, where: str) -> None:
    h = c.obj(h, where)
    for i, cpu in enumerate(c.arr(h.get("cpus", []), f"{where}.cpus")):
        c.whole(cpu, f"{where}.cpus[{i}]")
    c.text(h.get("policy"), f"{where}.policy")
    c.optional(h, "priority", where, c.whole)
    c.flag(h.get("memory_locked"), f"{where}.memory_locked", nullable=True)
    for i, a in enumerate(c.arr(h.get("controls", []), f"{where}.controls")):
        _applied(c, a, f"{where}.controls[{i}]")
    c.text(h.get("timed_by"), f"{where}.timed_by", nullable=True)


def _budget(c: _Check, b: Any, where: str) -> None:
    b = c.obj(b, where)
    for k in ("stat", "status"):
        c.text(b.get(k), f"{where}.{k}")
    for k in ("budget_ns", "estimate_ns"):
        c.optional(b, k, where, c.ns)
    c.optional(b, "interval_ns", where, lambda v, w: c.pair(v, w, c.ns))
    c.optional(b, "message", where, c.text)


def _verdict(c: _Check, v: Any, where: str) -> None:
    if v is None:
        return
    v = c.obj(v, where)
    c.text(v.get("status"), f"{where}.status")
    for k in ("stat", "reason"):
        c.optional(v, k, where, c.text)
    c.number(v.get("ratio"), f"{where}.ratio", nullable=True)
    c.optional(v, "interval", where, lambda x, w: c.pair(x, w, c.number))
    for k in ("baseline_ns", "current_ns"):
        c.optional(v, k, where, c.ns)
    c.optional(v, "tolerance_pct", where, c.number)
    for k in ("baseline_runs", "extra_rounds"):
        c.optional(v, k, where, c.whole)


def _result(c: _Check, r: Any, w: str, seen: set[str]) -> None:
    from pytest_hostperf.store import histogram

    if not isinstance(r, dict):
        raise c.fail(w, "expected an object")
    if not isinstance(r.get("id"), str) or not r["id"]:
        raise c.fail(f"{w}.id", "expected a measurement id")
    if r["id"] in seen:
        raise c.fail(f"{w}.id", f"{r['id']!r} appears twice")
    seen.add(r["id"])
    if not isinstance(r.get("mode"), str):
        raise c.fail(f"{w}.mode", "expected 'single' or 'batched(k)'")
    if isinstance(r.get("batch"), bool) or not isinstance(r.get("batch"), int) or r["batch"] < 1:
        raise c.fail(f"{w}.batch", "expected a whole number >= 1")
    for k in ("p50_ns", "p90_ns", "p99_ns", "p999_ns"):
        c.ns(r.get(k), f"{w}.{k}")
    for k in ("max_ns", "min_ns", "mean_ns"):
        c.optional(r, k, w, c.ns)
    for k in ("nodeid", "name"):
        c.optional(r, k, w, c.text)
    for k in ("group", "why", "not_gated", "worker", "series"):
        c.text(r.get(k), f"{w}.{k}", nullable=True)
    for k in ("n", "calls"):
        c.optional(r, k, w, c.whole)
    c.optional(r, "seconds", w, c.number)
    for k in ("smoke", "truncated"):
        c.optional(r, k, w, c.flag)
    intervals = c.maybe_obj(r.get("intervals_ns"), f"{w}.intervals_ns")
    for stat, iv in intervals.items():
        c.pair(iv, f"{w}.intervals_ns.{stat}", c.ns)
    blocks = r.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        raise c.fail(f"{w}.blocks", "expected a non-empty array of per-block statistics")
    for j, b in enumerate(blocks):
        c.ns(b.get("p99_ns") if isinstance(b, dict) else None, f"{w}.blocks[{j}].p99_ns")
        c.whole(b.get("n"), f"{w}.blocks[{j}].n")
        for k in _STATS:
            c.ns(b.get(k), f"{w}.blocks[{j}].{k}")
    for j, b in enumerate(c.arr(r.get("budgets", []), f"{w}.budgets")):
        _budget(c, b, f"{w}.budgets[{j}]")
    _verdict(c, r.get("verdict"), f"{w}.verdict")
    if r.get("host"):
        _result_host(c, r["host"], f"{w}.host")
    hist = r.get("histogram")
    if hist is not None:
        try:
            histogram.decode_histogram(hist)
        except BaselineError as exc:
            raise ReportError(f"{c.path}: {w}.{exc}") from None


def _run_parts(c: _Check, doc: Json) -> None:
    """The run-level parts records read: commit, settings, baseline, timer, speedups, counters, noise."""
    commit, settings, base, timer, counters, noise = (
        c.maybe_obj(doc.get(k), k) for k in ("commit", "settings", "baseline", "timer", "counters", "noise"))
    c.maybe_obj(doc.get("tools"), "tools")
    c.optional(doc, "created_utc", "", c.text)
    c.optional(doc, "mode", "", c.text)
    c.optional(doc, "concurrency", "", c.whole)
    c.text(commit.get("sha"), "commit.sha", nullable=True)
    c.text(commit.get("branch"), "commit.branch", nullable=True)
    c.flag(commit.get("dirty"), "commit.dirty", nullable=True)
    for k in ("samples", "max_time_s"):
        c.optional(settings, k, "settings", c.number)
    c.optional(settings, "tolerance_pct", "settings", c.number, nullable=False)  # read with a default, not `or`
    for k in ("host_id", "path"):
        c.text(base.get(k), f"baseline.{k}", nullable=True)
    c.optional(base, "runs", "baseline", c.whole)
    for i, d in enumerate(c.arr(base.get("host_differences", []), "baseline.host_differences")):
        c.text(d, f"baseline.host_differences[{i}]")
    if timer:
        c.text(timer.get("clock"), "timer.clock")
        for k in ("overhead_ns", "resolution_ns"):
            c.ns(timer.get(k), f"timer.{k}")
        c.whole(timer.get("pairs"), "timer.pairs")
    for i, s in enumerate(c.arr(doc.get("speedups") or [], "speedups")):
        s = c.obj(s, f"speedups[{i}]")
        for k in ("fast", "slow", "stat", "status", "message"):
            c.text(s.get(k), f"speedups[{i}].{k}")
        for k in ("factor", "speedup"):
            c.optional(s, k, f"speedups[{i}]", c.number)
        c.optional(s, "interval", f"speedups[{i}]", lambda x, w: c.pair(x, w, c.number))
    c.optional(counters, "read_cost_ns", "counters", c.ns)
    for k, why in c.maybe_obj(counters.get("unavailable"), "counters.unavailable").items():
        c.text(why, f"counters.unavailable.{k}")
    for k, probe in c.maybe_obj(noise.get("probes"), "noise.probes").items():
        c.text(c.obj(probe, f"noise.probes.{k}").get("text"), f"noise.probes.{k}.text")
    c.optional(noise, "share", "noise", c.number)
    c.number(noise.get("baseline_share"), "noise.baseline_share", nullable=True)
    c.arr(doc.get("notes") or [], "notes")


def _host(c: _Check, host: Any) -> None:
    if host is not None and (not isinstance(host, dict) or not isinstance(host.get("fingerprint", {}), dict)
                             or not isinstance(host.get("audit", []), list)):
        raise c.fail("host", "expected {\"fingerprint\": {...}, \"audit\": [...]}")
    for i, a in enumerate((host or {}).get("audit") or ()):
        if isinstance(a, dict):  # entries of another shape are not readings (records skip them)
            c.text(a.get("name"), f"host.audit[{i}].name")
            if "reading" not in a:
                raise c.fail(f"host.audit[{i}]", "no \"reading\"")
    for i, a in enumerate(c.arr((host or {}).get("not_applied", []), "host.not_applied")):
        _applied(c, a, f"host.not_applied[{i}]")


def check_report(doc: Any, path: Path | str) -> Json:
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
    c = _Check(path)
    results = doc.get("results")
    if not isinstance(results, list):
        raise c.fail("results", "expected an array")
    seen: set[str] = set()
    for i, r in enumerate(results):
        _result(c, r, f"results[{i}]", seen)
    _host(c, doc.get("host"))
    _run_parts(c, doc)
    return doc


def merge_histograms(histograms: Sequence[Mapping[str, Any] | None]) -> Json | None:
    """One ``log2-32`` histogram of several (a baseline's runs): counts added per bucket.

    Arithmetic on the histogram blob, kept beside the schema that knows its keys; it belongs
    with the codec (``histogram.py``) once that module takes additions.
    """
    hs = [h for h in histograms if h]
    if not hs:
        return None
    if len(hs) == 1:
        return dict(hs[0])
    counts: dict[int, int] = {}
    for h in hs:
        for i, n in zip(h["index"], h["count"]):
            counts[i] = counts.get(i, 0) + n
    index = sorted(counts)
    return {"encoding": hs[0]["encoding"], "sub_buckets": hs[0]["sub_buckets"], "index": index,
            "count": [counts[i] for i in index], "min_ns": min(h["min_ns"] for h in hs),
            "max_ns": max(h["max_ns"] for h in hs), "total": sum(h["total"] for h in hs)}
