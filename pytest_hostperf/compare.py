"""Comparisons people read: baselines and reports side by side, step by step.

Inputs are baseline files (``baselines/<host-id>.json``, read by :mod:`baseline`), host ids
in a baselines folder, or JSON reports (``--hostperf-json``). Each is normalized into a
:class:`Source` — its host, its runs, and per measurement the p50 / p99 / p99.9 and the
per-block p99 of every run — so that a baseline of K runs and a report of one run compare
alike. :func:`compare_sources` decides each step with :func:`verdict.compare` (the gate's
own rule); :func:`from_run` wraps a finished ``--hostperf`` run and the gate's verdicts.
Rendering (:func:`render_table`, :func:`render_markdown`, :func:`to_json_doc`) is pure, so
``hostperf compare --format markdown`` and the job summary of a run are the same text.

Only :func:`read_report` and :func:`load_input` touch files; baseline files are read by
``baseline.load`` alone.
"""
from __future__ import annotations

import json
import math
import os
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pytest_hostperf.errors import BaselineError, ReportError
from pytest_hostperf.units import format_ns

__all__ = [
    "COMPARE_SCHEMA",
    "Comparison",
    "Measurement",
    "Row",
    "RunInfo",
    "Source",
    "Step",
    "compare_sources",
    "from_run",
    "headline",
    "host_differences",
    "load_input",
    "read_report",
    "render_history",
    "render_markdown",
    "render_table",
    "source_from_baseline",
    "source_from_report",
    "to_json_doc",
]

#: ``hostperf compare --format json`` format history:
#: 1 - first version
COMPARE_SCHEMA = "pytest-hostperf-compare"
COMPARE_SCHEMA_VERSION = 1

#: Row order and headline order: what needs attention first.
SEVERITY = ("regressed", "over-budget", "inconclusive", "improved", "unchanged", "new", "removed", "-")
#: Verdicts that fail a run.
FAILING = ("regressed", "over-budget")
MAX_REPORT_BYTES = 64 * 1024 * 1024
#: Audit readings that change from minute to minute on one host: never a host difference.
MOMENTARY_AUDIT = frozenset({"load", "cpu_freq"})
#: Fingerprint fields in the order a reader scans them; others follow sorted.
_FINGERPRINT_ORDER = ("cpu_model", "logical_cpus", "physical_cores", "smt", "numa_nodes", "arch", "kernel",
                      "python", "python_implementation", "governor", "rt_runtime_us", "numpy", "torch",
                      "cuda_device")
_POLICY = {"SCHED_FIFO": "fifo", "SCHED_RR": "rr", "SCHED_OTHER": "other", "SCHED_BATCH": "batch",
           "SCHED_IDLE": "idle"}


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True, eq=False)
class Measurement:
    """One measurement of one input. Times in ns; for a baseline of K runs p50 / p99 / p99.9
    are medians over its runs (the gate's baseline centre) and ``runs_p99`` holds K arrays."""

    id: str
    group: str | None
    mode: str
    batch: int
    p50_ns: float
    p90_ns: float
    p99_ns: float
    p999_ns: float
    runs_p99: tuple[np.ndarray, ...]  # per run: the p99 of each block
    histogram: dict | None = None  # log2-32 (merged over a baseline's runs)
    host: dict | None = None  # host state read back during the (newest) measurement
    budgets: tuple[dict, ...] = ()  # budget checks (reports only)
    verdict: dict | None = None  # the gate's verdict (reports only)
    counters: tuple[dict, ...] = ()  # per run: {counter: {"per_call", "blocks"}} (counters.py)

    @property
    def over_budget(self) -> bool:
        return any(b.get("status") == "over-budget" for b in self.budgets)

    @property
    def nodeid(self) -> str:
        """The test's node id: the id without its trailing ``[name]``."""
        if self.id.endswith("]") and "[" in self.id:
            return self.id[:self.id.rindex("[")]
        return self.id

    @property
    def name(self) -> str:
        """The measurement's name within its test."""
        return self.id[len(self.nodeid) + 1:-1] if self.nodeid != self.id else self.id


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One stored run: when, at which commit, and the p99 of each measurement."""

    created_utc: str | None
    commit: dict
    p99_ns: dict[str, float]


@dataclass(frozen=True, slots=True, eq=False)
class Source:
    """One input, normalized: a baseline (K runs), a report (one run), or ``none`` (no baseline)."""

    name: str
    kind: str  # "baseline" | "report" | "none"
    host_id: str | None
    fingerprint: dict
    audit: dict[str, str]
    runs: tuple[RunInfo, ...]
    measurements: dict[str, Measurement]
    concurrency: int | None = None
    audit_warnings: tuple[str, ...] = ()  # audit checks that warned: ``swappiness 60``


@dataclass(frozen=True, slots=True)
class Step:
    """One measurement from one input to the next (or to the first): verdict and p99 ratio.

    ``verdict`` is the comparison's own (regressed, improved, unchanged, inconclusive, new,
    removed); ``status`` is what a reader sees: ``over-budget`` wins when the later input
    broke a latency budget, as in the run's own reports."""

    verdict: str
    ratio: float | None = None
    interval: tuple[float, float] | None = None
    reason: str = ""
    over_budget: bool = False

    @property
    def status(self) -> str:
        return "over-budget" if self.over_budget else self.verdict


@dataclass(frozen=True, slots=True)
class Row:
    """One measurement across all inputs."""

    id: str
    group: str | None
    values: tuple[Measurement | None, ...]  # per input
    steps: tuple[Step, ...]  # input i against input i-1, for i >= 1
    cumulative: tuple[Step, ...]  # input i against the first, for i >= 1
    notes: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """The verdict of the last input against the one before."""
        return self.steps[-1].status if self.steps else "-"


@dataclass(frozen=True, slots=True)
class Comparison:
    """Inputs, one row per measurement (what needs attention first), host differences."""

    sources: tuple[Source, ...]
    rows: tuple[Row, ...]
    differences: tuple[tuple[str, tuple[str, ...]], ...]
    tolerance_pct: float
    notes: tuple[str, ...] = field(default=())

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(_label(i) for i in range(len(self.sources)))

    def counts(self) -> dict[str, int]:
        """Rows per verdict of the last step, in :data:`SEVERITY` order."""
        found = [r.status for r in self.rows]
        return {s: found.count(s) for s in SEVERITY if s in found}

    @property
    def regressed(self) -> bool:
        """Whether any measurement of the last input regressed against the one before (also
        one shown as over-budget)."""
        return any(r.steps and r.steps[-1].verdict == "regressed" for r in self.rows)


def _label(i: int) -> str:
    letters = string.ascii_uppercase
    return letters[i] if i < len(letters) else f"#{i + 1}"


def headline(counts: dict[str, int]) -> str:
    """``2 regressed, 1 over budget, 14 unchanged``."""
    parts = [f"{n} {status.replace('-', ' ')}" for status, n in counts.items() if status != "-" and n]
    return ", ".join(parts) if parts else "no measurements"


# --------------------------------------------------------------------------- normalizing


def _median(values: Iterable[float]) -> float:
    return float(np.median(np.asarray(list(values), dtype=np.float64)))


def merge_histograms(histograms: Sequence[dict]) -> dict | None:
    """One ``log2-32`` histogram of several (a baseline's runs): counts added per bucket."""
    hs = [h for h in histograms if h]
    if not hs:
        return None
    if len(hs) == 1:
        return hs[0]
    counts: dict[int, int] = {}
    for h in hs:
        for i, c in zip(h["index"], h["count"]):
            counts[i] = counts.get(i, 0) + c
    index = sorted(counts)
    return {"encoding": hs[0]["encoding"], "sub_buckets": hs[0]["sub_buckets"], "index": index,
            "count": [counts[i] for i in index], "min_ns": min(h["min_ns"] for h in hs),
            "max_ns": max(h["max_ns"] for h in hs), "total": sum(h["total"] for h in hs)}


def _block_p99(blocks: Sequence[dict]) -> np.ndarray:
    return np.array([float(b["p99_ns"]) for b in blocks], dtype=np.float64)


def source_from_baseline(b: Any, *, name: str | None = None) -> Source:
    """A loaded :class:`baseline.Baseline` as a source: per measurement the medians over its
    runs, one array of block p99s per run and the histogram merged over the runs."""
    measurements = {}
    for mid in b.ids():
        recs = b.runs_of(mid)
        last = recs[-1]
        measurements[mid] = Measurement(
            id=mid, group=last.get("group"), mode=last["mode"], batch=last["batch"],
            p50_ns=_median(r["p50_ns"] for r in recs), p90_ns=_median(r["p90_ns"] for r in recs),
            p99_ns=_median(r["p99_ns"] for r in recs), p999_ns=_median(r["p999_ns"] for r in recs),
            runs_p99=tuple(_block_p99(r["blocks"]) for r in recs),
            histogram=merge_histograms([r["histogram"] for r in recs]), host=last.get("host"),
            counters=tuple(r["counters"] for r in recs if r.get("counters")))
    latest = b.latest
    runs = tuple(RunInfo(r["created_utc"], dict(r["commit"]),
                         {mid: float(rec["p99_ns"]) for mid, rec in r["measurements"].items()}) for r in b.runs)
    return Source(name=str(b.path) if name is None else name, kind="baseline", host_id=b.host_id,
                  fingerprint=dict(latest["fingerprint"]),
                  audit={a["name"]: a["reading"] for a in latest["audit"]}, runs=runs,
                  measurements=measurements, concurrency=latest.get("concurrency"),
                  audit_warnings=_warnings(latest["audit"]))


def _warnings(audit: Iterable[Any]) -> tuple[str, ...]:
    return tuple(f"{a['name']} {str(a['reading']).split(' (', 1)[0]}" for a in audit
                 if isinstance(a, dict) and a.get("verdict") == "warn")


def source_from_report(doc: dict, *, name: str = "report") -> Source:
    """A report document (``--hostperf-json``, checked by :func:`check_report`) as a one-run source."""
    from pytest_hostperf import baseline

    host = doc.get("host") or {}
    fingerprint = dict(host.get("fingerprint") or {})
    host_id = (doc.get("baseline") or {}).get("host_id")
    if host_id is None and fingerprint:
        host_id = baseline.host_id(fingerprint)
    measurements = {}
    for i, r in enumerate(doc["results"]):
        hist = r.get("histogram")
        if hist is not None:
            try:
                baseline.decode_histogram(hist)
            except BaselineError as exc:
                raise ReportError(f"{name}: results[{i}].{exc}") from None
        measurements[r["id"]] = Measurement(
            id=r["id"], group=r.get("group"), mode=r["mode"], batch=r["batch"], p50_ns=float(r["p50_ns"]),
            p90_ns=float(r["p90_ns"]), p99_ns=float(r["p99_ns"]), p999_ns=float(r["p999_ns"]),
            runs_p99=(_block_p99(r["blocks"]),), histogram=hist, host=r.get("host"),
            budgets=tuple(r.get("budgets") or ()), verdict=r.get("verdict"),
            counters=(r["counters"],) if isinstance(r.get("counters"), dict) else ())
    run = RunInfo(doc.get("created_utc"), dict(doc.get("commit") or {}),
                  {mid: m.p99_ns for mid, m in measurements.items()})
    return Source(name=name, kind="report", host_id=host_id, fingerprint=fingerprint,
                  audit={a["name"]: a["reading"] for a in host.get("audit") or () if isinstance(a, dict)},
                  runs=(run,), measurements=measurements, audit_warnings=_warnings(host.get("audit") or ()))


# --------------------------------------------------------------------------- reading inputs


def _parse_json(path: Path, what: str) -> Any:
    from pytest_hostperf import jsonfile

    return jsonfile.read_json(path, what=what, error=ReportError, max_bytes=MAX_REPORT_BYTES)


def _number(v: Any, where: str, path: Path) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ReportError(f"{path}: {where}: expected a number of nanoseconds, got {v!r:.60}")


def check_report(doc: Any, path: Path) -> dict:
    """The parts of a report that comparisons and plots read; every problem names the file,
    the JSON path and what is wrong."""
    from pytest_hostperf import report

    if not isinstance(doc, dict) or doc.get("schema") != report.REPORT_SCHEMA:
        schema = doc.get("schema") if isinstance(doc, dict) else None
        raise ReportError(f"{path}: not a pytest-hostperf report (no \"schema\": \"{report.REPORT_SCHEMA}\""
                          + (f"; it has {json.dumps(schema)[:60]}" if schema is not None else "") + ")")
    version = doc.get("schema_version")
    if version != report.REPORT_SCHEMA_VERSION:
        raise ReportError(f"{path}: report schema_version {version!r} is not supported (this version reads "
                          f"{report.REPORT_SCHEMA_VERSION}); upgrade pytest-hostperf")
    results = doc.get("results")
    if not isinstance(results, list):
        raise ReportError(f"{path}: results: expected an array")
    seen = set()
    for i, r in enumerate(results):
        w = f"results[{i}]"
        if not isinstance(r, dict):
            raise ReportError(f"{path}: {w}: expected an object")
        if not isinstance(r.get("id"), str) or not r["id"]:
            raise ReportError(f"{path}: {w}.id: expected a measurement id")
        if r["id"] in seen:
            raise ReportError(f"{path}: {w}.id: {r['id']!r} appears twice")
        seen.add(r["id"])
        if not isinstance(r.get("mode"), str):
            raise ReportError(f"{path}: {w}.mode: expected 'single' or 'batched(k)'")
        if isinstance(r.get("batch"), bool) or not isinstance(r.get("batch"), int) or r["batch"] < 1:
            raise ReportError(f"{path}: {w}.batch: expected a whole number >= 1")
        for k in ("p50_ns", "p90_ns", "p99_ns", "p999_ns"):
            _number(r.get(k), f"{w}.{k}", path)
        blocks = r.get("blocks")
        if not isinstance(blocks, list) or not blocks:
            raise ReportError(f"{path}: {w}.blocks: expected a non-empty array of per-block statistics")
        for j, b in enumerate(blocks):
            _number(b.get("p99_ns") if isinstance(b, dict) else None, f"{w}.blocks[{j}].p99_ns", path)
        for k in ("budgets",):
            if not isinstance(r.get(k, []), list):
                raise ReportError(f"{path}: {w}.{k}: expected an array")
        if r.get("verdict") is not None and not isinstance(r["verdict"], dict):
            raise ReportError(f"{path}: {w}.verdict: expected an object or null")
    host = doc.get("host")
    if host is not None and (not isinstance(host, dict) or not isinstance(host.get("fingerprint", {}), dict)
                             or not isinstance(host.get("audit", []), list)):
        raise ReportError(f"{path}: host: expected {{\"fingerprint\": {{...}}, \"audit\": [...]}}")
    return doc


def read_report(path: Path) -> dict:
    """Read and check a JSON report (``--hostperf-json``)."""
    path = Path(path)
    return check_report(_parse_json(path, "report"), path)


def load_input(arg: str, baselines_dir: Path = Path("baselines")) -> Source:
    """A compare input: a baseline file, a report file, or a host id in ``baselines_dir``."""
    from pytest_hostperf import baseline, report

    path = Path(arg)
    if os.path.lexists(path):  # the reader refuses links, folders and FIFOs with their own message
        doc = _parse_json(path, "report or baseline")
        if isinstance(doc, dict) and doc.get("schema") == baseline.SCHEMA:
            return source_from_baseline(baseline.load(path), name=arg)
        if isinstance(doc, dict) and doc.get("schema") == report.REPORT_SCHEMA:
            return source_from_report(check_report(doc, path), name=arg)
        schema = doc.get("schema") if isinstance(doc, dict) else None
        raise ReportError(f"{path}: not a pytest-hostperf report or baseline (expected \"schema\": "
                          f"\"{report.REPORT_SCHEMA}\" or \"{baseline.SCHEMA}\""
                          + (f", found {json.dumps(schema)[:60]}" if schema is not None else "") + ")")
    if os.sep in arg or arg.endswith(".json"):
        raise ReportError(f"{arg}: no such file")
    try:
        candidate = baseline.baseline_path(baselines_dir, arg)
    except BaselineError:
        candidate = None
    if candidate is not None and candidate.exists():
        return source_from_baseline(baseline.load(candidate), name=arg)
    try:
        known = sorted(p.stem for p in Path(baselines_dir).glob("*.json"))
    except OSError:
        known = []
    hint = (f"; host ids in {baselines_dir}/: {', '.join(known[:8])}" + (" ..." if len(known) > 8 else "")
            if known else f"; {baselines_dir}/ holds no baselines (record one with: pytest --hostperf "
                          "--hostperf-save, or pass --baselines DIR)")
    raise ReportError(f"{arg!r}: no such file, and no baseline for host id {arg!r} in {baselines_dir}/{hint}")


# --------------------------------------------------------------------------- comparing


def _step(base: Measurement | None, cur: Measurement | None, tolerance_pct: float) -> Step:
    from pytest_hostperf import verdict

    if cur is None:
        return Step("-") if base is None else Step("removed", reason="not measured in this input")
    if base is None:
        step = Step("new", reason="not measured in the input it is compared with")
    else:
        v = verdict.compare(list(cur.runs_p99), list(base.runs_p99), tolerance_pct=tolerance_pct)
        step = Step(v.status, v.ratio, v.interval, v.reason)
    return replace(step, over_budget=cur.over_budget)


def _ordered(rows: list[Row]) -> tuple[Row, ...]:
    """What needs attention first; within a verdict, the inputs' own order."""
    return tuple(sorted(rows, key=lambda r: SEVERITY.index(r.status) if r.status in SEVERITY else len(SEVERITY)))


def _row_notes(values: Sequence[Measurement | None], labels: Sequence[str]) -> tuple[str, ...]:
    from pytest_hostperf import counters

    notes: list[str] = []
    modes = {(labels[i], m.mode) for i, m in enumerate(values) if m is not None}
    if len({mode for _, mode in modes}) > 1:
        shown = ", ".join(f"{label} {mode}" for label, mode in sorted(modes))
        notes.append(f"batch sizes differ ({shown}): batched(k) percentiles are of k-call means, not like for like")
    # counter deltas: each input against the one before it, where both counted
    for i in range(1, len(values)):
        a, b = values[i - 1], values[i]
        if a is not None and b is not None and a.counters and b.counters:
            changes = counters.changed(b.counters[-1], list(a.counters))
            if changes:
                notes.append(f"counters {labels[i - 1]} -> {labels[i]}: {counters.describe_changes(changes)}")
    return tuple(notes)


def compare_sources(sources: Sequence[Source], *, tolerance_pct: float = 10.0) -> Comparison:
    """Compare each input with the one before (and with the first), measurement by measurement,
    with :func:`verdict.compare` on the per-block p99s of every run."""
    if len(sources) < 2:
        raise ValueError("compare_sources needs at least two inputs")
    labels = [_label(i) for i in range(len(sources))]
    ids: dict[str, None] = {}
    for s in sources:
        ids.update(dict.fromkeys(s.measurements))
    rows = []
    for mid in ids:
        values = tuple(s.measurements.get(mid) for s in sources)
        group = next(m.group for m in reversed(values) if m is not None)
        steps = tuple(_step(values[i - 1], values[i], tolerance_pct) for i in range(1, len(values)))
        cumulative = tuple(_step(values[0], values[i], tolerance_pct) for i in range(1, len(values)))
        rows.append(Row(mid, group, values, steps, cumulative, _row_notes(values, labels)))
    return Comparison(tuple(sources), _ordered(rows), host_differences(sources), tolerance_pct)


def from_run(doc: dict, base: Any, *, base_name: str, run_name: str = "this run") -> Comparison:
    """A finished ``--hostperf`` run (its report document) against its baseline
    (a :class:`baseline.Baseline` or None), with the verdicts the gate reached."""
    run = source_from_report(doc, name=run_name)
    if base is None:
        host = (doc.get("baseline") or {}).get("host_id")
        prior = Source(name=f"none for host {host} ({base_name})", kind="none", host_id=host, fingerprint={},
                       audit={}, runs=(), measurements={})
    else:
        prior = source_from_baseline(base, name=base_name)
    labels = [_label(0), _label(1)]
    rows = []
    for mid, m in run.measurements.items():
        v = m.verdict or {}
        interval = v.get("interval")
        step = Step(v.get("status", "new"), v.get("ratio"), None if interval is None else tuple(interval),
                    v.get("reason", ""))
        step = replace(step, over_budget=m.over_budget)
        values = (prior.measurements.get(mid), m)
        rows.append(Row(mid, m.group, values, (step,), (step,), _row_notes(values, labels)))
    tolerance = float((doc.get("settings") or {}).get("tolerance_pct", 10.0))
    notes = []
    if base is None:
        notes.append(f"no baseline for host {prior.host_id}: nothing was compared; record one with: "
                     "pytest --hostperf --hostperf-save")
    for c in doc.get("speedups") or ():
        notes.append(f"expect_faster {c['status']}: {c['message']}")
    sources = (prior, run)
    diffs = host_differences(sources) if base is not None else ()
    return Comparison(sources, _ordered(rows), diffs, tolerance, tuple(notes))


# --------------------------------------------------------------------------- host differences


def _policy_text(host: dict) -> str:
    policy = host.get("policy") or "?"
    short = _POLICY.get(policy, policy)
    return f"{policy} {host.get('priority')}" if short in ("fifo", "rr") else policy


def host_fields(src: Source) -> dict[str, str | None]:
    """What a reader needs to know about an input's host: id, fingerprint, the scheduling and
    memory locking its measurements ran under, concurrency, and the audit readings."""
    out: dict[str, Any] = {"host id": src.host_id}
    fp = src.fingerprint
    for key in [*(k for k in _FINGERPRINT_ORDER if k in fp), *sorted(k for k in fp if k not in _FINGERPRINT_ORDER)]:
        out[key] = fp[key]
    hosts = [m.host for m in src.measurements.values() if m.host]
    if hosts:
        out["scheduling"] = ", ".join(sorted({_policy_text(h) for h in hosts}))
        locked = {bool(h.get("memory_locked")) for h in hosts}
        out["memory locked"] = "mixed" if len(locked) > 1 else "yes" if locked.pop() else "no"
    if src.concurrency is not None:
        out["concurrency"] = src.concurrency
    for name, reading in src.audit.items():
        if name not in MOMENTARY_AUDIT:
            out[f"audit {name}"] = reading
    return {k: _cell(v) for k, v in out.items()}


def _cell(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def host_differences(sources: Sequence[Source]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Fields whose value is not the same in every input that records them, with each input's
    value (``-``: unknown or not recorded)."""
    fields = [host_fields(s) for s in sources if s.kind != "none"]
    if len(fields) < 2:
        return ()
    names: dict[str, None] = {}
    for f in fields:
        names.update(dict.fromkeys(f))
    out = []
    for name in names:
        known = [f[name] for f in fields if name in f]  # a field an input does not record is no difference
        if len(known) >= 2 and len(set(known)) > 1:
            out.append((name, tuple("-" if f.get(name) is None else f[name] for f in fields)))
    return tuple(out)


# --------------------------------------------------------------------------- rendering


def _num(x: float) -> str:
    return f"{x:.2f}" if x < 9.995 else f"{x:.1f}" if x < 99.95 else f"{x:.0f}"


def ratio_text(step: Step | None) -> str:
    """``1.38x [1.30, 1.46]``: the p99 ratio (this input / the other) and its 95% interval."""
    if step is None or step.ratio is None:
        return "-"
    if step.interval is None:
        return f"{_num(step.ratio)}x"
    lo, hi = step.interval
    return f"{_num(step.ratio)}x [{_num(lo)}, {_num(hi)}]"


def _when(text: str | None) -> str:
    """``2024-05-01T12:00:00Z`` / ``...+00:00`` -> ``2024-05-01 12:00 UTC``."""
    if not text:
        return "-"
    return text.replace("T", " ")[:16] + " UTC"


def _commit_text(commit: dict) -> str:
    sha = commit.get("sha")
    if not sha:
        return ""
    text = f"commit {sha[:8]}"
    if commit.get("branch"):
        text += f" on {commit['branch']}"
    if commit.get("dirty"):
        text += " (uncommitted changes)"
    return text


def describe(src: Source, *, code: bool = False) -> str:
    """One line about an input: what it is, its host and its runs."""
    q = (lambda s: f"`{s}`") if code else (lambda s: s)
    if src.kind == "none":
        return f"baseline: {src.name}"
    fp = src.fingerprint
    hw = ", ".join(str(x) for x in (fp.get("cpu_model"), fp.get("logical_cpus") and f"{fp['logical_cpus']} CPUs")
                   if x)
    if src.kind == "baseline" and src.name == src.host_id:
        text = f"baseline of host {q(src.host_id)}"
    else:
        text = f"{src.kind} {q(src.name)}: host {q(src.host_id or 'unknown')}"
    text += f" ({hw})" if hw else ""
    newest = src.runs[-1] if src.runs else None
    if src.kind == "baseline":
        plural = "s" if len(src.runs) != 1 else ""
        text += f", {len(src.runs)} run{plural}, newest {_when(newest and newest.created_utc)}"
    else:
        text += f", {_when(newest and newest.created_utc)}"
    commit = _commit_text(newest.commit) if newest else ""
    return text + (f", {commit}" if commit else "")


def _values(m: Measurement | None) -> list[str]:
    if m is None:
        return ["-", "-", "-"]
    return [format_ns(m.p50_ns), format_ns(m.p99_ns), format_ns(m.p999_ns)]


def _explanation(cmp: Comparison) -> str:
    a, b = cmp.labels[-2], cmp.labels[-1]
    return (f"p99 ratio {b}/{a} with its 95% interval; verdicts at a {cmp.tolerance_pct:g}% tolerance: "
            f"regressed / improved = confidently slower / faster by more than the tolerance, unchanged = "
            f"within it, inconclusive = the interval is too wide to tell")


def _footer(cmp: Comparison) -> list[str]:
    lines = []
    seen = set()
    for r in cmp.rows:
        for n in r.notes:
            if (r.id, n) not in seen:
                seen.add((r.id, n))
                lines.append(f"{r.id}: {n}")
    if any(m is not None and m.batch > 1 for r in cmp.rows for m in r.values):
        lines.append("batched(k): each sample is the mean of k calls, too short to time alone; "
                     "its percentiles understate the tail")
    return lines + list(cmp.notes)


def _pair_rows(cmp: Comparison, *, markdown: bool) -> tuple[list[str], list[list[str]]]:
    a, b = cmp.labels
    header = ["measurement", f"{a} p50", f"{a} p99", f"{a} p99.9", f"{b} p50", f"{b} p99", f"{b} p99.9",
              f"p99 {b}/{a} [95% CI]", "verdict"]
    rows = []
    for r in cmp.rows:
        status = f"**{r.status}**" if markdown and r.status in FAILING else r.status
        rows.append([_md_code(r.id) if markdown else r.id, *_values(r.values[0]), *_values(r.values[1]),
                     ratio_text(r.steps[0]), status])
    return header, rows


def _step_rows(cmp: Comparison, *, markdown: bool) -> tuple[list[str], list[list[str]]]:
    first = cmp.labels[0]
    header = ["measurement", "input", "p50", "p99", "p99.9", "p99 vs previous [95% CI]", "verdict",
              f"p99 vs {first} [95% CI]", f"verdict vs {first}"]
    rows = []
    for r in cmp.rows:
        for i, m in enumerate(r.values):
            name = (_md_code(r.id) if markdown else r.id) if i == 0 else ""
            if i == 0:
                rows.append([name, cmp.labels[i], *_values(m), "", "", "", ""])
                continue
            step, total = r.steps[i - 1], r.cumulative[i - 1]
            bold = (lambda s: f"**{s}**" if markdown and s in FAILING else s)
            rows.append([name, cmp.labels[i], *_values(m), ratio_text(step), bold(step.status),
                         ratio_text(total), bold(total.status)])
    return header, rows


def render_table(cmp: Comparison) -> list[str]:
    """The comparison as terminal text: inputs, the table, verdict counts, host differences, notes."""
    from pytest_hostperf import report

    lines = [f"{label}: {describe(s)}" for label, s in zip(cmp.labels, cmp.sources)]
    lines.append("")
    if not cmp.rows:
        lines.append("no measurements in any input")
    elif len(cmp.sources) == 2:
        header, rows = _pair_rows(cmp, markdown=False)
        lines += report.table(rows, header, "lrrrrrrrl")
    else:
        header, rows = _step_rows(cmp, markdown=False)
        lines += report.table(rows, header, "llrrrrlrl")
    a, b = cmp.labels[-2], cmp.labels[-1]
    lines.append(f"verdicts ({b} vs {a}): {headline(cmp.counts())}")
    lines.append(_explanation(cmp))
    if cmp.differences:
        present = [lab for lab, s in zip(cmp.labels, cmp.sources) if s.kind != "none"]
        lines += ["", "host differences:"]
        lines += report.table([[name, *vals] for name, vals in cmp.differences], ["field", *present],
                              "l" * (len(present) + 1))
    footer = _footer(cmp)
    if footer:
        lines += ["", *footer]
    return lines


def _md_escape(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_code(text: str) -> str:
    # A pipe must be escaped even inside a code span, or GitHub splits the table cell.
    return "`" + str(text).replace("`", "'").replace("|", "\\|") + "`"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    sep = ["---:" if a == "r" else ":---" for a in align]
    return [line(header), line(sep), *(line(r) for r in rows)]


def render_markdown(cmp: Comparison, *, title: str = "hostperf") -> str:
    """The comparison as GitHub-flavoured markdown: a verdict headline, the inputs, the table
    (regressions first), host differences and notes. Also the ``--hostperf-markdown`` report."""
    lines = [f"### {title}: {headline(cmp.counts())}", ""]
    lines += [f"- **{label}** {describe(s, code=True)}" for label, s in zip(cmp.labels, cmp.sources)]
    lines.append("")
    if cmp.rows:
        if len(cmp.sources) == 2:
            header, rows = _pair_rows(cmp, markdown=True)
            lines += _md_table(header, [[_md_escape(c) if i else c for i, c in enumerate(r)] for r in rows],
                               "lrrrrrrrl")
        else:
            header, rows = _step_rows(cmp, markdown=True)
            lines += _md_table(header, [[_md_escape(c) if i else c for i, c in enumerate(r)] for r in rows],
                               "llrrrrlrl")
        lines += ["", _explanation(cmp) + "."]
    else:
        lines.append("No measurements.")
    if cmp.differences:
        present = [lab for lab, s in zip(cmp.labels, cmp.sources) if s.kind != "none"]
        lines += ["", "#### Host differences", ""]
        lines += _md_table(["field", *present],
                           [[_md_escape(name), *(_md_escape(v) for v in vals)] for name, vals in cmp.differences],
                           "l" * (len(present) + 1))
    footer = _footer(cmp)
    if footer:
        lines += ["", *(f"- {_md_escape(n)}" for n in footer)]
    return "\n".join(lines) + "\n"


def _step_json(step: Step, a: str, b: str) -> dict:
    return {"from": a, "to": b, "status": step.status, "verdict": step.verdict, "over_budget": step.over_budget,
            "ratio": None if step.ratio is None else round(step.ratio, 4),
            "interval": None if step.interval is None else [round(x, 4) for x in step.interval],
            "reason": step.reason}


def to_json_doc(cmp: Comparison) -> dict:
    """The comparison as a JSON-ready document (``hostperf compare --format json``)."""
    labels = cmp.labels

    def value(m: Measurement | None, label: str) -> dict | None:
        if m is None:
            return None
        return {"input": label, "mode": m.mode, "batch": m.batch, "runs": len(m.runs_p99),
                **{k: int(round(getattr(m, k))) for k in ("p50_ns", "p90_ns", "p99_ns", "p999_ns")}}

    return {
        "schema": COMPARE_SCHEMA, "schema_version": COMPARE_SCHEMA_VERSION,
        "tolerance_pct": cmp.tolerance_pct, "stat": "p99",
        "inputs": [{"label": lab, "name": s.name, "kind": s.kind, "host_id": s.host_id, "runs": len(s.runs)}
                   for lab, s in zip(labels, cmp.sources)],
        "summary": cmp.counts(), "headline": headline(cmp.counts()), "regressed": cmp.regressed,
        "measurements": [{
            "id": r.id, "group": r.group, "status": r.status,
            "values": [value(m, lab) for m, lab in zip(r.values, labels)],
            "steps": [_step_json(s, labels[i], labels[i + 1]) for i, s in enumerate(r.steps)],
            "cumulative": [_step_json(s, labels[0], labels[i + 1]) for i, s in enumerate(r.cumulative)],
            "notes": list(r.notes)} for r in cmp.rows],
        "host_differences": [{"field": name, "values": list(vals)} for name, vals in cmp.differences],
        "notes": list(cmp.notes),
    }


# --------------------------------------------------------------------------- one baseline


def render_history(src: Source) -> list[str]:
    """A baseline as text: its host, its stored runs (date, commit) and the p99 of every
    measurement in every run, oldest first."""
    from pytest_hostperf import report

    fp = src.fingerprint
    lines = [f"baseline {src.name}", f"host {src.host_id}"]
    facts = [("cpu", fp.get("cpu_model")), ("logical cpus", fp.get("logical_cpus")),
             ("physical cores", fp.get("physical_cores")), ("smt", _cell(fp.get("smt"))), ("arch", fp.get("arch")),
             ("kernel", fp.get("kernel")), ("python", fp.get("python")), ("governor", fp.get("governor"))]
    lines.append("  " + ", ".join(f"{k} {v}" for k, v in facts if v is not None))
    if src.audit_warnings:
        lines.append("  audit warnings (newest run): " + ", ".join(src.audit_warnings))
    lines += ["", f"runs (oldest first; the gate compares with all {len(src.runs)}):"]
    run_rows = []
    for i, run in enumerate(src.runs, 1):
        c = run.commit
        dirty = "-" if c.get("dirty") is None else "yes" if c["dirty"] else "no"
        run_rows.append([f"#{i}", _when(run.created_utc), (c.get("sha") or "-")[:8], c.get("branch") or "-", dirty,
                         str(len(run.p99_ns))])
    lines += report.table(run_rows, ["run", "created", "commit", "branch", "dirty", "measurements"], "lllllr")
    header = ["measurement", "mode", "p50", "p99", "p99.9", *(f"p99 #{i}" for i in range(1, len(src.runs) + 1))]
    rows = []
    for mid, m in src.measurements.items():
        rows.append([mid, m.mode, *_values(m),
                     *(format_ns(run.p99_ns[mid]) if mid in run.p99_ns else "-" for run in src.runs)])
    lines += [""] + report.table(rows, header, "ll" + "r" * (len(header) - 2))
    lines.append("p50, p99, p99.9: median over the runs that hold the measurement; p99 #k: run k's own p99")
    if any(m.batch > 1 for m in src.measurements.values()):
        lines.append("batched(k): each sample is the mean of k calls, too short to time alone; "
                     "its percentiles understate the tail")
    return lines
