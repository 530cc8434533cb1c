"""Comparisons people read: baselines and reports side by side, step by step.

Inputs are baseline files (``baselines/<host-id>.json``), host ids in a baselines folder, or
JSON reports (``--hostperf-json``). Each is normalized into a :class:`Source` — its host, its
runs, and per measurement the p50 / p99 / p99.9 and the per-block p99 of every run — so that
a baseline of K runs and a report of one run compare alike. :func:`compare_sources` decides
each step with :func:`verdict.compare` (the gate's own rule); :func:`from_run` wraps a
finished ``--hostperf`` run and the gate's verdicts. Sources are built from the typed
records (:class:`records.Report`, :class:`records.StoredRun`) into the types of
:mod:`model`. This module decides and renders nothing: :mod:`compare_render` draws the
comparison, so ``hostperf compare --format markdown`` and the job summary of a run are the
same text.

Only :func:`open_input` touches files, through ``store`` (one read per file).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from pytest_hostperf.errors import BaselineError, ReportError
from pytest_hostperf.reports.compare_hosts import host_differences
from pytest_hostperf.reports.model import (
    SEVERITY,
    Comparison,
    Measurement,
    Row,
    RunInfo,
    Source,
    Step,
    block_p99s,
    label,
)
from pytest_hostperf.stats import counter_changes, verdict
from pytest_hostperf.store import disk as store
from pytest_hostperf.store import pbench
from pytest_hostperf.store.disk import Baseline
from pytest_hostperf.store.histogram import histogram_percentiles, merge_histograms
from pytest_hostperf.store.hostid import host_id as host_id_of
from pytest_hostperf.store.records import Report

__all__ = ["compare_sources", "from_run", "load_input", "open_input", "read_report", "source_from_baseline",
           "source_from_report", "source_of"]

# --------------------------------------------------------------------------- building sources


def source_from_baseline(b: Baseline, *, name: str | None = None) -> Source:
    """A loaded :class:`store.Baseline` as a source: per measurement the percentiles of all its
    runs' calls (from the histogram merged over the runs, to its bucket width), one array of
    block p99s per run (what the gate compares) and the merged histogram."""
    runs = b.runs
    measurements = {}
    for mid in sorted({mid for run in runs for mid in run.measurements}):
        recs = [run.measurements[mid] for run in runs if mid in run.measurements]
        last = recs[-1]
        merged = merge_histograms([r.histogram for r in recs])
        if merged is not None:
            p50, p90, p99, p999 = (float(x) for x in histogram_percentiles(merged, [50, 90, 99, 99.9]))
        else:  # no histograms to merge (runs of differing encodings): the latest run's own figures
            p50, p90, p99, p999 = (float(last.p50_ns), float(last.p90_ns), float(last.p99_ns), float(last.p999_ns))
        measurements[mid] = Measurement(
            id=mid, group=last.group, mode=last.mode, batch=last.batch, p50_ns=p50, p90_ns=p90, p99_ns=p99,
            p999_ns=p999, runs_p99=tuple(block_p99s(r) for r in recs), histogram=merged,
            host=last.host, counters=tuple(r.counters for r in recs if r.counters), n=last.n,
            rounds=last.host is not None and last.host.timed_by == "pytest-benchmark")
    latest = runs[-1]
    # each run's p99 from its own stored distribution: over all its calls, whichever version saved it
    infos = tuple(RunInfo(run.created_utc, run.commit,
                          {mid: float(m.p99_ns) if m.histogram is None else float(histogram_percentiles(m.histogram,
                                                                                                        [99])[0])
                           for mid, m in run.measurements.items()})
                  for run in runs)
    return Source(name=str(b.path) if name is None else name, kind="baseline", host_id=b.host_id,
                  fingerprint=dict(latest.fingerprint), audit=latest.readings(), runs=infos,
                  measurements=measurements, concurrency=latest.concurrency, audit_warnings=latest.warnings())


def source_from_report(report: Report, *, name: str = "report") -> Source:
    """A :class:`records.Report` (a run, or a ``--hostperf-json`` file read by
    ``store.read_report``) as a one-run source."""
    fingerprint = dict(report.host.fingerprint) if report.host else {}
    host_id = report.baseline.host_id if report.baseline else None
    if host_id is None and fingerprint:
        host_id = host_id_of(fingerprint)
    measurements = {r.id: Measurement(
        id=r.id, group=r.group, mode=r.mode, batch=r.batch, p50_ns=float(r.p50_ns), p90_ns=float(r.p90_ns),
        p99_ns=float(r.p99_ns), p999_ns=float(r.p999_ns), runs_p99=(block_p99s(r),), histogram=r.histogram,
        host=r.host, budgets=r.budgets, verdict=r.verdict, counters=() if r.counters is None else (r.counters,),
        n=r.n, not_gated=r.not_gated,
        rounds=report.mode == "imported" or (r.host is not None and r.host.timed_by == "pytest-benchmark"))
        for r in report.results}
    run = RunInfo(report.created_utc or None, report.commit, {mid: m.p99_ns for mid, m in measurements.items()})
    return Source(name=name, kind="report", host_id=host_id, fingerprint=fingerprint,
                  audit=report.host.readings() if report.host else {}, runs=(run,), measurements=measurements,
                  audit_warnings=report.host.warnings() if report.host else ())


def source_of(doc: Baseline | Report, *, name: str) -> Source:
    """A baseline or a report, as :func:`open_input` returns them, as a source."""
    return source_from_report(doc, name=name) if isinstance(doc, Report) else source_from_baseline(doc, name=name)


# --------------------------------------------------------------------------- reading inputs


def read_report(path: Path) -> Report:
    """Read and check a JSON report (``--hostperf-json``): ``store.read_report``."""
    return store.read_report(Path(path))


def open_input(arg: str, baselines_dir: Path = Path("baselines")) -> Baseline | Report:
    """A compare input, read once: a baseline file, a report file, or a host id in ``baselines_dir``."""
    path = Path(arg)
    if os.path.lexists(path):  # the reader refuses links, folders and FIFOs with their own message
        return store.load_document(path)
    if os.sep in arg or arg.endswith(".json"):
        raise ReportError(f"{arg}: no such file")
    try:
        candidate: Path | None = store.baseline_path(baselines_dir, arg)
    except BaselineError:
        candidate = None
    if candidate is not None and candidate.exists():
        return store.load(candidate)
    known = store.list_host_ids(Path(baselines_dir))
    hint = (f"; host ids in {baselines_dir}/: {', '.join(known[:8])}" + (" ..." if len(known) > 8 else "")
            if known else f"; {baselines_dir}/ holds no baselines (record one with: pytest --hostperf "
                          "--hostperf-save, or pass --baselines DIR)")
    raise ReportError(f"{arg!r}: no such file, and no baseline for host id {arg!r} in {baselines_dir}/{hint}")


def load_input(arg: str, baselines_dir: Path = Path("baselines")) -> Source:
    """A compare input (see :func:`open_input`) as a source named ``arg``."""
    return source_of(open_input(arg, baselines_dir), name=arg)


# --------------------------------------------------------------------------- comparing


def _step(base: Measurement | None, cur: Measurement | None, tolerance_pct: float) -> Step:
    if cur is None:
        return Step("-") if base is None else Step("removed", reason="not measured in this input")
    if base is None:
        step = Step("new", reason="not measured in the input it is compared with")
    elif unlike := _unlike(base, cur):
        verdict_ = "not gated" if cur.not_gated or base.not_gated else "inconclusive"
        ratio = cur.p99_ns / base.p99_ns if base.p99_ns > 0 else None
        step = Step(verdict_, ratio, None, unlike)
    else:
        v = verdict.compare(list(cur.runs_p99), list(base.runs_p99), tolerance_pct=tolerance_pct)
        step = Step(v.status, v.ratio, v.interval, v.reason)
    return replace(step, over_budget=cur.over_budget)


def _unlike(base: Measurement, cur: Measurement) -> str | None:
    """Why two measurements' tails do not compare (None when they do), as the run's gate
    decides it: a side not gated (pytest-benchmark's batched rounds), differing batch sizes,
    or pytest-benchmark rounds of differing counts (``pbench.like_for_like``)."""
    why = cur.not_gated or base.not_gated
    if why:
        return f"not gated: {why}"
    if cur.batch != base.batch:
        return (f"not like for like: batch sizes differ ({base.mode} -> {cur.mode}); batched(k) percentiles are "
                "of k-call means")
    if cur.rounds and base.rounds:
        rounds = pbench.like_for_like(cur.n, cur.batch, (base.n, base.batch))
        if rounds:
            return f"not like for like: {rounds}"
    return None


def _ordered(rows: list[Row]) -> tuple[Row, ...]:
    """What needs attention first; within a verdict, the inputs' own order."""
    return tuple(sorted(rows, key=lambda r: SEVERITY.index(r.status) if r.status in SEVERITY else len(SEVERITY)))


def _row_notes(values: Sequence[Measurement | None], labels: Sequence[str]) -> tuple[str, ...]:
    notes: list[str] = []
    modes = {(labels[i], m.mode) for i, m in enumerate(values) if m is not None}
    if len({mode for _, mode in modes}) > 1:
        shown = ", ".join(f"{label} {mode}" for label, mode in sorted(modes))
        notes.append(f"batch sizes differ ({shown}): batched(k) percentiles are of k-call means, not like for like")
    # counter deltas: each input against the one before it, where both counted
    for i in range(1, len(values)):
        a, b = values[i - 1], values[i]
        if a is not None and b is not None and a.counters and b.counters:
            changes = counter_changes.changed(b.counters[-1], list(a.counters))
            if changes:
                notes.append(f"counters {labels[i - 1]} -> {labels[i]}: {counter_changes.describe_changes(changes)}")
    return tuple(notes)


def compare_sources(sources: Sequence[Source], *, tolerance_pct: float = 10.0) -> Comparison:
    """Compare each input with the one before (and with the first), measurement by measurement,
    with :func:`verdict.compare` on the per-block p99s of every run."""
    if len(sources) < 2:
        raise ValueError("compare_sources needs at least two inputs")
    labels = [label(i) for i in range(len(sources))]
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


def from_run(report: Report, base: Baseline | None, *, base_name: str,
             run_name: str = "this run") -> Comparison:
    """A finished ``--hostperf`` run (its :class:`records.Report`) against its baseline
    (a :class:`store.Baseline` or None), with the verdicts the gate reached."""
    run = source_from_report(report, name=run_name)
    if base is None:
        host = report.baseline.host_id if report.baseline else None
        prior = Source(name=f"none for host {host} ({base_name})", kind="none", host_id=host, fingerprint={},
                       audit={}, runs=(), measurements={})
    else:
        prior = source_from_baseline(base, name=base_name)
    labels = [label(0), label(1)]
    rows = []
    for mid, m in run.measurements.items():
        v = m.verdict
        step = Step("new") if v is None else Step(v.status, v.ratio, v.interval, v.reason, stat=v.stat)
        step = replace(step, over_budget=m.over_budget)
        values = (prior.measurements.get(mid), m)
        rows.append(Row(mid, m.group, values, (step,), (step,), _row_notes(values, labels)))
    notes = []
    if base is None:
        notes.append(f"no baseline for host {prior.host_id}: nothing was compared; record one with: "
                     "pytest --hostperf --hostperf-save")
    notes += [f"expect_faster {c.status}: {c.message}" for c in report.speedups]
    sources = (prior, run)
    diffs = host_differences(sources) if base is not None else ()
    return Comparison(sources, _ordered(rows), diffs, report.settings.tolerance_pct, tuple(notes))
