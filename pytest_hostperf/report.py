"""Rendering only: the terminal table and the JSON report text, from a :class:`records.Report`.
No decisions, no file I/O.

Comparisons and the markdown report are rendered by :mod:`compare`, plots by :mod:`plots`.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from pytest_hostperf.host.sched import short_policy
from pytest_hostperf.records import (
    REPORT_SCHEMA,
    REPORT_SCHEMA_VERSION,
    HostState,
    Report,
    ResultRecord,
    Timer,
    VerdictRecord,
)
from pytest_hostperf.units import format_ns

__all__ = ["REPORT_SCHEMA", "REPORT_SCHEMA_VERSION", "delta_cell", "host_cell", "result_rows", "status_of", "table",
           "terminal_summary", "timer_line", "to_json"]

_COLUMNS = ("measurement", "n", "p50", "p99", "p99.9", "max", "mode", "host")


def table(rows: Sequence[Sequence[str]], header: Sequence[str], align: str | None = None) -> list[str]:
    """Align ``rows`` under ``header``; by default the first column left-aligned, the others
    right-aligned; ``align`` gives one letter per column instead (``l`` or ``r``)."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    align = align or "l" + "r" * (len(header) - 1)

    def line(cells: Sequence[str]) -> str:
        parts = [str(c).ljust(w) if a == "l" else str(c).rjust(w) for c, w, a in zip(cells, widths, align)]
        return "  ".join(parts).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def host_cell(host: HostState | None) -> str:
    """Compact host state of one result, as read back during it: ``cpu1 fifo49 mlock``."""
    if host is None:
        return "-"
    from pytest_hostperf.host.control import format_cpu_list

    policy = short_policy(host.policy)
    if policy in ("fifo", "rr"):
        policy += str(host.priority)
    return f"cpu{format_cpu_list(host.cpus)} {policy}" + (" mlock" if host.memory_locked else "")


def status_of(r: ResultRecord) -> str:
    """The row's verdict: over-budget wins over the baseline comparison."""
    return r.status


def delta_cell(v: VerdictRecord | None) -> str:
    """``+38% [+30%, +46%]``: p99 change against the baseline with its 95% interval."""
    if v is None or v.ratio is None:
        return "-"
    if v.interval is None:
        return f"{v.ratio - 1:+.0%}"
    lo, hi = v.interval
    return f"{v.ratio - 1:+.0%} [{lo - 1:+.0%}, {hi - 1:+.0%}]"


def result_rows(results: Iterable[ResultRecord], *, compare: bool = False) -> list[list[str]]:
    """One row per result: name, n, p50, p99, p99.9, max, mode, host (and with ``compare``:
    the gate's baseline p99* (median of block p99s), Δp99* with interval, verdict, why)."""
    rows = []
    for r in results:
        row = [r.id, str(r.n), format_ns(r.p50_ns), format_ns(r.p99_ns), format_ns(r.p999_ns),
               format_ns(r.max_ns), r.mode, host_cell(r.host)]
        if compare:
            v = r.verdict
            # --hostperf-gate: the verdict shown is the worst gated statistic's; name it unless p99*
            stat = f" ({'p99.9' if v.stat == 'p999' else v.stat}*)" if v and v.stat != "p99" and v.ratio else ""
            row += [format_ns(v.baseline_ns if v else None) + stat, delta_cell(v) + stat, r.status,
                    (r.why or "") if r.status not in ("unchanged", "-", "new") else ""]
        rows.append(row)
    return rows


def timer_line(timer: Timer) -> str:
    """One line describing the timer, e.g. ``timer perf_counter_ns: overhead 50 ns, resolution 10 ns``."""
    return (f"timer {timer.clock}: overhead {format_ns(timer.overhead_ns)}, "
            f"resolution {format_ns(timer.resolution_ns)} (included in every latency, not subtracted)")


def _counters_line(report: Report) -> str | None:
    c = report.counters
    if c is None:
        return None
    if not c.enabled:
        return "counters: off (--hostperf-no-counters)"
    line = (f"counters: read around each block, outside the timed region ({format_ns(c.read_cost_ns)} "
            "per read, twice per block)")
    if c.unavailable:
        reasons: dict[str, list[str]] = {}
        for name, why in c.unavailable.items():
            reasons.setdefault(why, []).append(name)
        line += "; not available: " + "; ".join(f"{', '.join(n)}: {w}" for w, n in reasons.items())
    return line


def _noise_lines(report: Report) -> list[str]:
    noise = report.noise
    if noise is None or not noise.probes:
        return []
    text = "host noise: " + "; ".join(noise.texts())
    if noise.baseline_share is not None:
        text += f" (baseline runs: {noise.baseline_share:.2%} of the time)"
    if not noise.noisy:
        return [text]
    return [text, ("the host was noisier than during the baseline: verdict intervals were widened "
                   "(a regression must be larger to count); rerun on a quieter host to confirm")]


#: The legend of the gate's columns: what the table's percentiles are, and what the gate compares.
GATED_NOTE = ("p50, p99, p99.9, max: over all calls measured; p99*: the median of the block p99s, "
              "the robust statistic the gate compares (base p99*: the baseline's, or the base measured now)")


def terminal_summary(report: Report) -> list[str]:
    """The lines printed after a ``--hostperf`` run."""
    results = report.results
    lines = [timer_line(report.timer)] if report.timer else []
    if not results:
        return lines + ["no hostperf measurements in this run"]
    base = report.baseline
    compare = any(r.verdict for r in results)
    columns = _COLUMNS + (("base p99*", "Δp99* [95% CI]", "verdict", "why") if compare else ())
    rows = result_rows(results, compare=compare)
    if compare and not any(r[-1] for r in rows):  # no row needs explaining: no empty column
        rows, columns = [r[:-1] for r in rows], columns[:-1]
    align = "l" + "r" * (len(columns) - 2) + "l" if columns[-1] == "why" else None
    lines += table(rows, columns, align)
    if compare:
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        lines.append("verdicts: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
        lines.append(GATED_NOTE)
    if base is not None and not base.exists:
        lines.append(f"no baseline for host {base.host_id} ({base.path}): nothing was compared; "
                     "record one with: pytest --hostperf --hostperf-save")
    if base is not None and base.host_differences:
        lines.append("baseline was taken on a different setup: " + "; ".join(base.host_differences))
    lines += [f"expect_faster {c.status}: {c.message}" for c in report.speedups]
    if any(r.batch > 1 for r in results):
        lines.append("batched(k): each sample is the mean of k calls, too short to time alone; "
                     "its percentiles understate the tail")
    if any(r.truncated for r in results):
        lines.append("some measurements hit the time budget before taking every sample "
                     "(n shows what was taken; see --hostperf-max-time)")
    counters = _counters_line(report)
    if counters:
        lines.append(counters)
    lines += _noise_lines(report)
    for a in report.host.not_applied if report.host else ():
        lines.append(f"{a.control}: not applied ({a.reason}); fix: {a.fix}")
    lines += [f"{b.status}: {b.message}" for r in results for b in r.budgets if b.status != "within"]
    return lines


def to_json(report: Report) -> str:
    """The report file's text: sorted keys, stable indentation, trailing newline."""
    return json.dumps(report.to_json(), sort_keys=True, indent=1, allow_nan=False) + "\n"
