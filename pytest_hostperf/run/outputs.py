"""The end of a run: the run's log turned into one typed report, built once, then handed to
each sink in turn: the baseline save, the JSON report, the markdown report (and the GitHub job
summary), the plots, and the terminal summary. Files are written by the storage layer; a sink
that cannot write says so in a warning, and the others still run. This module alone reads the
run's log; the reports and the store load here, at the end (numpy), where they are used.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from dataclasses import replace
from importlib import metadata
from typing import TYPE_CHECKING

import pytest

from pytest_hostperf.errors import BaselineError, HostperfError, PlotUnavailable
from pytest_hostperf.host import audit
from pytest_hostperf.measure import noise
from pytest_hostperf.run.context import RunContext, RunLog, noisy
from pytest_hostperf.store.atomic import atomic_write_text

if TYPE_CHECKING:
    from pytest_hostperf.store.records import BaselineInfo, Commit, HostState, NoiseInfo, Report, ResultRecord

#: Fingerprint fields that change latency: a baseline taken with others differs "in setup".
SETUP_FIELDS = ("cpu_model", "logical_cpus", "smt", "numa_nodes", "kernel", "python", "governor", "rt_runtime_us")


def _tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "implementation": sys.implementation.name}
    for dist in ("pytest-hostperf", "pytest", "numpy", "psutil"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def concurrency(ctx: RunContext, log: RunLog) -> int:
    """Workers measuring at once (xdist); 1 in a plain run or when gathered onto one worker,
    as many as measured when gathering did not hold."""
    p = ctx.placement
    if p is None or not p.workers:
        return 1
    return max(1, len({r.worker for r in log.remote.results})) if p.gathered else p.workers


def _rt_applied(hosts: list[HostState | None]) -> bool | None:
    policies = {h.policy for h in hosts if h is not None}
    return None if not policies else "SCHED_FIFO" in policies


def host_differences(ctx: RunContext, log: RunLog, results: tuple[ResultRecord, ...]) -> list[str]:
    """Fields that differ between this run and the baseline's newest run and that change latency."""
    if not ctx.stored_runs:
        return []
    old = ctx.stored_runs[-1]
    now = ctx.fingerprint or {}
    diffs = []
    for key in SETUP_FIELDS:
        a, b = old.fingerprint.get(key), now.get(key)
        if a != b:
            diffs.append(f"{key} {a} -> {b}")
    rt_now = _rt_applied([r.host for r in results])
    rt_then = _rt_applied([m.host for m in old.measurements.values()])
    if rt_now is not None and rt_then is not None and rt_now != rt_then:
        diffs.append(f"SCHED_FIFO applied {rt_then} -> {rt_now}")
    if old.concurrency != concurrency(ctx, log):
        diffs.append(f"concurrency {old.concurrency} -> {concurrency(ctx, log)}")
    return diffs


def _baseline_info(ctx: RunContext, log: RunLog, results: tuple[ResultRecord, ...]) -> BaselineInfo | None:
    from pytest_hostperf.store.records import BaselineInfo  # numpy: loaded where first used

    if not ctx.settings.full or ctx.settings.against:  # paired: the base is measured now, not stored
        return None
    return BaselineInfo(ctx.host_id, None if ctx.host_id is None else str(ctx.baseline_path()),
                        ctx.baseline is not None, len(ctx.stored_runs), tuple(host_differences(ctx, log, results)))


def build_report(ctx: RunContext, log: RunLog) -> Report:
    """The run as one typed report; each result's histogram is encoded here, once."""
    from pytest_hostperf.store import histogram, records  # numpy: loaded where first used

    full = ctx.settings.full
    local = []
    for e in log.entries:
        try:
            hist = histogram.encode_histogram(e.result.samples) if e.result.samples.size else None
        except HostperfError:  # e.g. a self-timed function returned a negative latency
            hist = None
        local.append(replace(e.record, histogram=hist))
    results = tuple(local) + tuple(log.remote.results)
    host = None
    if full:
        if log.audit is None:
            log.audit = audit.audit()
        host = records.HostInfo(ctx.fingerprint or {}, tuple(audit.audit_to_json(log.audit)),
                                tuple(log.not_applied.values()))
    timer = records.Timer.of(ctx.instruments.calibrated) if ctx.instruments.calibrated is not None else log.remote.timer
    counters = None
    if full:
        r = ctx.instruments.opened_reader
        counters = records.CountersInfo(ctx.settings.counters, int(round(ctx.instruments.counter_cost_ns or 0)),
                                        dict(r.unavailable) if r is not None else {})
    return records.Report(
        created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        mode="full" if full else "smoke", commit=_commit(ctx),
        settings=records.Settings(ctx.settings.samples, ctx.settings.max_time, ctx.settings.tolerance,
                                  ctx.settings.strict),
        baseline=_baseline_info(ctx, log, results), timer=timer, concurrency=concurrency(ctx, log),
        tools=_tool_versions(),
        speedups=tuple(records.SpeedupRecord.of(c) for c in log.speedups) + tuple(log.remote.speedups),
        host=host, counters=counters, noise=_noise(ctx, log), notes=tuple(log.notes), results=results)


def _commit(ctx: RunContext) -> Commit:
    from pytest_hostperf.store import provenance, records  # numpy: loaded where first used

    return records.Commit.from_json(provenance.commit_info(ctx.rootdir))


def _noise(ctx: RunContext, log: RunLog) -> NoiseInfo | None:
    if not log.noise_probes:
        return None
    from pytest_hostperf.store import records  # numpy: loaded where first used

    shares = ctx.baseline_noise_shares()
    combined = noise.combine(list(log.noise_probes.values()))
    return records.NoiseInfo({k: {**p.as_dict(), "text": p.text()} for k, p in log.noise_probes.items()},
                             round(combined.share, 6), sorted(shares)[len(shares) // 2] if shares else None,
                             noisy(ctx, log))


def finish(ctx: RunContext, log: RunLog, session: pytest.Session) -> Report | None:
    """Build the report once and hand it to every sink (plain run or xdist controller); the
    report, for the terminal summary (None: a smoke run has none)."""
    if not ctx.settings.full:
        return None
    report = build_report(ctx, log)
    if ctx.settings.save and log.has_results:
        if session.exitstatus == pytest.ExitCode.INTERRUPTED:
            # A partial run would push a complete one out of the kept runs.
            log.warnings.append("baseline NOT saved: the run was interrupted (a partial run would replace a "
                                "complete one among the kept runs)")
        else:
            save_baseline(ctx, log, report)
            if log.save_failed and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if ctx.settings.json_path:
        from pytest_hostperf.store import disk  # numpy: loaded where first used

        path = ctx.out_path(ctx.settings.json_path)
        disk.write_report(path, replace(report, notes=tuple(log.notes)))
        log.notes.append(f"JSON report written to {path}")
    write_markdown(ctx, log, report)
    if ctx.settings.plot_dir:
        write_plots(ctx, log, report)
    return report


def save_baseline(ctx: RunContext, log: RunLog, report: Report) -> None:
    """Append the run to this host's baseline: every result as the report encoded it (an xdist
    worker's too), validated and written once by the storage layer."""
    from pytest_hostperf.store import disk  # numpy: loaded where first used
    from pytest_hostperf.store.records import StoredMeasurement, StoredRun  # numpy: loaded where first used

    try:
        stored = {}
        for r in report.results:
            try:
                stored[r.id] = StoredMeasurement.of(r)
            except BaselineError as exc:
                if r.worker is None:
                    raise
                log.notes.append(f"{r.id}: not saved: {exc}")
        path = disk.save_run(ctx.settings.baselines_dir, ctx.host_id or "unknown-host", StoredRun.of(report, stored),
                             keep=ctx.settings.keep_runs)
    except BaselineError as exc:
        log.warnings.append(f"baseline NOT saved: {exc} (the exit status is non-zero because of it)")
        log.save_failed = True
        return
    log.notes.append(f"baseline saved: {path} ({len(stored)} measurements, keeps the last "
                     f"{ctx.settings.keep_runs} runs)")


def write_markdown(ctx: RunContext, log: RunLog, report: Report) -> None:
    """``--hostperf-markdown=PATH`` (replaced) and ``$GITHUB_STEP_SUMMARY`` (appended to)."""
    # A run without measurements (e.g. --hostperf over a unit suite) leaves the job summary alone.
    summary = os.environ.get("GITHUB_STEP_SUMMARY") if log.has_results else None
    if not ctx.settings.markdown_path and not summary:
        return
    from pytest_hostperf.reports import compare, compare_render, steps  # numpy: loaded where first used

    text = compare_render.render_markdown(compare.from_run(report, ctx.baseline, base_name=ctx.baseline_name()))
    series = steps.markdown_lines(report.results)
    if series:
        text += "\n" + "\n".join(series) + "\n"
    if ctx.settings.markdown_path:
        path = ctx.out_path(ctx.settings.markdown_path)
        try:
            atomic_write_text(path, text)
            log.notes.append(f"markdown report written to {path}")
        except OSError as exc:
            log.warnings.append(f"markdown report NOT written to {path}: {exc.strerror or exc}")
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(text + "\n")
            log.notes.append("markdown report appended to $GITHUB_STEP_SUMMARY")
        except OSError as exc:
            log.warnings.append(f"markdown report NOT appended to $GITHUB_STEP_SUMMARY ({summary}): "
                                f"{exc.strerror or exc}")


def write_plots(ctx: RunContext, log: RunLog, report: Report) -> None:
    """``--hostperf-plot=DIR``: one PNG and one SVG per measurement group, baseline vs current."""
    from pytest_hostperf.reports import compare  # numpy: loaded where first used

    out = ctx.out_path(ctx.settings.plot_dir or "")
    try:
        from pytest_hostperf.reports import plots  # numpy: loaded where first used

        plots.require_matplotlib()
        inputs = [("current", compare.source_from_report(report, name="this run"))]
        if ctx.baseline is not None:
            inputs.insert(0, ("baseline", compare.source_from_baseline(ctx.baseline, name=ctx.baseline_name())))
        written = plots.write_plots(inputs, out)
        written += plots.write_sweep_plots(report.results, out)  # latency against offered rate
    except PlotUnavailable as exc:
        log.warnings.append(f"plots NOT written: {exc}")
        return
    except OSError as exc:
        log.warnings.append(f"plots NOT written to {ctx.settings.plot_dir}: {exc.strerror or exc}")
        return
    log.notes.append(f"plots written to {out} ({len(written)} files)")


def write_terminal(ctx: RunContext, log: RunLog, report: Report | None,
                   terminalreporter: pytest.TerminalReporter) -> None:
    """The hostperf section of the terminal summary."""
    terminalreporter.section("hostperf")
    if ctx.settings.full:
        from pytest_hostperf.reports import terminal  # numpy: loaded where first used

        # the table fits the terminal, and at least 120 columns (logs have no terminal)
        width = max(120, int(getattr(getattr(terminalreporter, "_tw", None), "fullwidth", 0) or 0))
        for line in terminal.terminal_summary(report or build_report(ctx, log), width=width):
            terminalreporter.write_line(line)
    elif log.entries:
        tests = len({e.result.nodeid for e in log.entries})
        terminalreporter.write_line(
            f"{len(log.entries)} measurement(s) in {tests} test(s) ran as smoke tests "
            "(a few calls each, nothing gated or written); run with --hostperf to measure")
    for note in log.notes:
        terminalreporter.write_line(f"note: {note}")
    for warning in log.warnings:
        terminalreporter.write_line(f"warning: {warning}", yellow=True)
