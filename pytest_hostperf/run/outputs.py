"""The end of a run: the report built once, then handed to each sink in turn: the baseline
save, the JSON report, the markdown report (and the GitHub job summary), the plots, and the
terminal summary. A sink that cannot write says so in a warning; the others still run.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_hostperf.run.session import HostperfSession
    from pytest_hostperf.store.records import BaselineInfo, HostState, Report, ResultRecord

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


def concurrency(run: HostperfSession) -> int:
    """Workers measuring at once (xdist); 1 in a plain run or when gathered onto one worker,
    as many as measured when gathering did not hold."""
    p = run.placement
    if p is None or not p.workers:
        return 1
    return max(1, len({r.worker for r in run.remote})) if p.gathered else p.workers


def _rt_applied(hosts: list[HostState | None]) -> bool | None:
    policies = {h.policy for h in hosts if h is not None}
    return None if not policies else "SCHED_FIFO" in policies


def host_differences(run: HostperfSession, results: tuple[ResultRecord, ...]) -> list[str]:
    """Fields that differ between this run and the baseline's newest run and that change latency."""
    if not run.stored_runs:
        return []
    old = run.stored_runs[-1]
    diffs = []
    for key in SETUP_FIELDS:
        a, b = old.fingerprint.get(key), run.fingerprint.get(key)
        if a != b:
            diffs.append(f"{key} {a} -> {b}")
    rt_now = _rt_applied([r.host for r in results])
    rt_then = _rt_applied([m.host for m in old.measurements.values()])
    if rt_now is not None and rt_then is not None and rt_now != rt_then:
        diffs.append(f"SCHED_FIFO applied {rt_then} -> {rt_now}")
    if old.concurrency != concurrency(run):
        diffs.append(f"concurrency {old.concurrency} -> {concurrency(run)}")
    return diffs


def baseline_path(run: HostperfSession) -> Path:
    return run.settings.baselines_dir / f"{run.host_id}.json"


def _baseline_info(run: HostperfSession, results: tuple[ResultRecord, ...]) -> BaselineInfo | None:
    from pytest_hostperf.store.records import BaselineInfo

    if not run.settings.full or run.settings.against:  # paired: the base is measured now, not stored
        return None
    return BaselineInfo(run.host_id, None if run.host_id is None else str(baseline_path(run)),
                        run.baseline is not None, len(run.stored_runs), tuple(host_differences(run, results)))


def build_report(run: HostperfSession) -> Report:
    """The run as one typed report; each result's histogram is encoded here, once."""
    from pytest_hostperf.errors import HostperfError
    from pytest_hostperf.store import histogram, records

    full = run.settings.full
    local = []
    for e in run.entries:
        try:
            hist = histogram.encode_histogram(e.result.samples) if e.result.samples.size else None
        except HostperfError:  # e.g. a self-timed function returned a negative latency
            hist = None
        local.append(replace(e.record, histogram=hist))
    results = tuple(local) + tuple(run.remote)
    host = None
    if full:
        from pytest_hostperf.host import audit

        if run.audit is None:
            run.audit = audit.audit()
        host = records.HostInfo(run.fingerprint, tuple(audit.audit_to_json(run.audit)),
                                tuple(run.not_applied.values()))
    timer = records.Timer.of(run.calibrated) if run.calibrated is not None else run.remote_timer
    counters = None
    if full:
        r = run.opened_reader
        counters = records.CountersInfo(run.settings.counters, int(round(run.counter_cost_ns or 0)),
                                        dict(r.unavailable) if r is not None else {})
    return records.Report(
        created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        mode="full" if full else "smoke", commit=_commit(run),
        settings=records.Settings(run.settings.samples, run.settings.max_time, run.settings.tolerance,
                                  run.settings.strict),
        baseline=_baseline_info(run, results), timer=timer, concurrency=concurrency(run), tools=_tool_versions(),
        speedups=tuple(records.SpeedupRecord.of(c) for c in run.speedups) + tuple(run.remote_speedups),
        host=host, counters=counters, noise=_noise(run), notes=tuple(run.notes), results=results)


def _commit(run: HostperfSession) -> Any:
    from pytest_hostperf.store import provenance, records

    return records.Commit.from_json(provenance.commit_info(Path(run.config.rootpath)))


def _noise(run: HostperfSession) -> Any:
    if not run.noise_probes:
        return None
    from pytest_hostperf.measure import noise
    from pytest_hostperf.store import records

    shares = run.baseline_noise_shares()
    combined = noise.combine(list(run.noise_probes.values()))
    return records.NoiseInfo({k: {**p.as_dict(), "text": p.text()} for k, p in run.noise_probes.items()},
                             round(combined.share, 6), sorted(shares)[len(shares) // 2] if shares else None,
                             run.noisy)


def _out_path(run: HostperfSession, given: str) -> Path:
    path = Path(given)
    return path if path.is_absolute() else Path(run.config.invocation_params.dir) / path


def _baseline_name(run: HostperfSession) -> str:
    path = baseline_path(run)
    try:
        return str(path.relative_to(Path(run.config.rootpath)))
    except ValueError:
        return str(path)


def finish(run: HostperfSession, session: pytest.Session) -> None:
    """Build the report once and hand it to every sink (plain run or xdist controller)."""
    if run.has_results:
        run.probe_noise("after")
    run.close_reader()
    if not run.settings.full:
        return
    run.report = report = build_report(run)
    if run.settings.save and run.has_results:
        if session.exitstatus == pytest.ExitCode.INTERRUPTED:
            # A partial run would push a complete one out of the kept runs.
            run.warnings.append("baseline NOT saved: the run was interrupted (a partial run would replace a "
                                "complete one among the kept runs)")
        else:
            save_baseline(run, report)
            if run.save_failed and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if run.settings.json_path:
        from pytest_hostperf.reports import terminal as render
        from pytest_hostperf.store.atomic import atomic_write_text

        path = _out_path(run, run.settings.json_path)
        atomic_write_text(path, render.to_json(replace(report, notes=tuple(run.notes))))
        run.notes.append(f"JSON report written to {path}")
    write_markdown(run, report)
    if run.settings.plot_dir:
        write_plots(run, report)


def save_baseline(run: HostperfSession, report: Report) -> None:
    from pytest_hostperf.errors import BaselineError
    from pytest_hostperf.store import disk, run_record

    try:
        stored = {e.record.id: run_record.measurement_record(r.to_json(), e.result.samples)
                  for e, r in zip(run.entries, report.results)}
        stored.update(run.remote_records)
        new = run_record.new_run(measurements=stored, fingerprint=run.fingerprint,
                               audit=[] if report.host is None else list(report.host.audit),
                               timer=None if report.timer is None else report.timer.to_json(), tools=report.tools,
                               concurrency=report.concurrency, commit=report.commit.to_json(),
                               extra={"noise": report.noise.stored()} if report.noise else None)
        path = disk.save_run(run.settings.baselines_dir, run.host_id or "unknown-host", new,
                                 keep=run.settings.keep_runs)
    except BaselineError as exc:
        run.warnings.append(f"baseline NOT saved: {exc} (the exit status is non-zero because of it)")
        run.save_failed = True
        return
    run.notes.append(f"baseline saved: {path} ({len(stored)} measurements, keeps the last "
                     f"{run.settings.keep_runs} runs)")


def write_markdown(run: HostperfSession, report: Report) -> None:
    """``--hostperf-markdown=PATH`` (replaced) and ``$GITHUB_STEP_SUMMARY`` (appended to)."""
    # A run without measurements (e.g. --hostperf over a unit suite) leaves the job summary alone.
    summary = os.environ.get("GITHUB_STEP_SUMMARY") if run.has_results else None
    if not run.settings.markdown_path and not summary:
        return
    from pytest_hostperf.reports import compare, steps
    from pytest_hostperf.store.atomic import atomic_write_text

    text = compare.render_markdown(compare.from_run(report, run.baseline, base_name=_baseline_name(run)))
    series = steps.markdown_lines(report.results)
    if series:
        text += "\n" + "\n".join(series) + "\n"
    if run.settings.markdown_path:
        path = _out_path(run, run.settings.markdown_path)
        try:
            atomic_write_text(path, text)
            run.notes.append(f"markdown report written to {path}")
        except OSError as exc:
            run.warnings.append(f"markdown report NOT written to {path}: {exc.strerror or exc}")
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(text + "\n")
            run.notes.append("markdown report appended to $GITHUB_STEP_SUMMARY")
        except OSError as exc:
            run.warnings.append(f"markdown report NOT appended to $GITHUB_STEP_SUMMARY ({summary}): "
                                f"{exc.strerror or exc}")


def write_plots(run: HostperfSession, report: Report) -> None:
    """``--hostperf-plot=DIR``: one PNG and one SVG per measurement group, baseline vs current."""
    from pytest_hostperf.errors import PlotUnavailable
    from pytest_hostperf.reports import compare

    out = _out_path(run, run.settings.plot_dir or "")
    try:
        from pytest_hostperf.reports import plots

        plots.require_matplotlib()
        inputs = [("current", compare.source_from_report(report, name="this run"))]
        if run.baseline is not None:
            inputs.insert(0, ("baseline", compare.source_from_baseline(run.baseline, name=_baseline_name(run))))
        written = plots.write_plots(inputs, out)
    except PlotUnavailable as exc:
        run.warnings.append(f"plots NOT written: {exc}")
        return
    except OSError as exc:
        run.warnings.append(f"plots NOT written to {run.settings.plot_dir}: {exc.strerror or exc}")
        return
    run.notes.append(f"plots written to {out} ({len(written)} files)")


def terminal(run: HostperfSession, terminalreporter: Any) -> None:
    """The hostperf section of the terminal summary."""
    terminalreporter.section("hostperf")
    if run.settings.full:
        from pytest_hostperf.reports import terminal as render

        # the table fits the terminal, and at least 120 columns (logs have no terminal)
        width = max(120, int(getattr(getattr(terminalreporter, "_tw", None), "fullwidth", 0) or 0))
        for line in render.terminal_summary(run.report or build_report(run), width=width):
            terminalreporter.write_line(line)
    elif run.entries:
        tests = len({e.result.nodeid for e in run.entries})
        terminalreporter.write_line(
            f"{len(run.entries)} measurement(s) in {tests} test(s) ran as smoke tests "
            "(a few calls each, nothing gated or written); run with --hostperf to measure")
    for note in run.notes:
        terminalreporter.write_line(f"note: {note}")
    for warning in run.warnings:
        terminalreporter.write_line(f"warning: {warning}", yellow=True)
