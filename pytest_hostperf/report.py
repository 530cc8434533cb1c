"""Rendering only: the terminal table and the JSON report document. No decisions, no file I/O.

Comparisons and the markdown report are rendered by :mod:`compare`, plots by :mod:`plots`.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from pytest_hostperf.units import format_ns

#: JSON report format history:
#: 1 - first version: timer, settings, results with per-block statistics and budgets; before any
#:     release, readers made to accept their absence: ``commit`` and each result's ``histogram``
REPORT_SCHEMA = "pytest-hostperf-report"
REPORT_SCHEMA_VERSION = 1

_COLUMNS = ("measurement", "n", "p50", "p99", "p99.9", "max", "mode", "host")
_POLICY = {"SCHED_FIFO": "fifo", "SCHED_RR": "rr", "SCHED_OTHER": "other", "SCHED_BATCH": "batch",
           "SCHED_IDLE": "idle"}


def table(rows: Sequence[Sequence[str]], header: Sequence[str], align: str | None = None) -> list[str]:
    """Align ``rows`` under ``header``; by default the first column left-aligned, the others
    right-aligned; ``align`` gives one letter per column instead (``l`` or ``r``)."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    align = align or "l" + "r" * (len(header) - 1)

    def line(cells: Sequence[str]) -> str:
        parts = [str(c).ljust(w) if a == "l" else str(c).rjust(w) for c, w, a in zip(cells, widths, align)]
        return "  ".join(parts).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def host_cell(host: dict[str, Any] | None) -> str:
    """Compact host state of one result, as read back during it: ``cpu1 fifo49 mlock``."""
    if not host:
        return "-"
    from pytest_hostperf.host.control import format_cpu_list

    policy = _POLICY.get(host["policy"], host["policy"])
    if policy in ("fifo", "rr"):
        policy += str(host["priority"])
    return f"cpu{format_cpu_list(host['cpus'])} {policy}" + (" mlock" if host.get("memory_locked") else "")


def status_of(r: dict[str, Any]) -> str:
    """The row's verdict: over-budget wins over the baseline comparison."""
    if any(b["status"] == "over-budget" for b in r.get("budgets", ())):
        return "over-budget"
    v = r.get("verdict")
    return v["status"] if v else "-"


def delta_cell(v: dict[str, Any] | None) -> str:
    """``+38% [+30%, +46%]``: p99 change against the baseline with its 95% interval."""
    if not v or v.get("ratio") is None:
        return "-"
    lo, hi = v["interval"]
    return f"{v['ratio'] - 1:+.0%} [{lo - 1:+.0%}, {hi - 1:+.0%}]"


def result_rows(results: Iterable[dict[str, Any]], *, compare: bool = False) -> list[list[str]]:
    """One row per result dict: name, n, p50, p99, p99.9, max, mode, host (and with ``compare``:
    baseline p99, Δp99 with interval, verdict)."""
    rows = []
    for r in results:
        row = [r["id"], str(r["n"]), format_ns(r["p50_ns"]), format_ns(r["p99_ns"]), format_ns(r["p999_ns"]),
               format_ns(r["max_ns"]), r["mode"], host_cell(r.get("host"))]
        if compare:
            v = r.get("verdict") or {}
            status = status_of(r)
            row += [format_ns(v.get("baseline_ns")), delta_cell(v), status,
                    (r.get("why") or "") if status not in ("unchanged", "-", "new") else ""]
        rows.append(row)
    return rows


def timer_line(timer: dict[str, Any]) -> str:
    """One line describing the timer, e.g. ``timer perf_counter_ns: overhead 50 ns, resolution 10 ns``."""
    return (f"timer {timer['clock']}: overhead {format_ns(timer['overhead_ns'])}, "
            f"resolution {format_ns(timer['resolution_ns'])} (included in every latency, not subtracted)")


def terminal_summary(doc: dict[str, Any]) -> list[str]:
    """The lines printed after a ``--hostperf`` run."""
    results = doc["results"]
    lines = [timer_line(doc["timer"])] if doc.get("timer") else []
    if not results:
        return lines + ["no hostperf measurements in this run"]
    base = doc.get("baseline") or {}
    compare = any(r.get("verdict") for r in results)
    columns = _COLUMNS + (("base p99", "Δp99 [95% CI]", "verdict", "why") if compare else ())
    rows = result_rows(results, compare=compare)
    if compare and not any(r[-1] for r in rows):  # no row needs explaining: no empty column
        rows, columns = [r[:-1] for r in rows], columns[:-1]
    align = "l" + "r" * (len(columns) - 2) + "l" if columns[-1] == "why" else None
    lines += table(rows, columns, align)
    if compare:
        counts: dict[str, int] = {}
        for r in results:
            counts[status_of(r)] = counts.get(status_of(r), 0) + 1
        lines.append("verdicts: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    if base and not base.get("exists"):
        lines.append(f"no baseline for host {base['host_id']} ({base['path']}): nothing was compared; "
                     "record one with: pytest --hostperf --hostperf-save")
    if base.get("host_differences"):
        lines.append("baseline was taken on a different setup: " + "; ".join(base["host_differences"]))
    for c in doc.get("speedups", ()):
        lines.append(f"expect_faster {c['status']}: {c['message']}")
    if any(r["batch"] > 1 for r in results):
        lines.append("batched(k): each sample is the mean of k calls, too short to time alone; "
                     "its percentiles understate the tail")
    if any(r.get("truncated") for r in results):
        lines.append("some measurements hit the time budget before taking every sample "
                     "(n shows what was taken; see --hostperf-max-time)")
    c = doc.get("counters") or {}
    if c:
        line = (f"counters: read around each block, outside the timed region ({format_ns(c['read_cost_ns'])} "
                "per read, twice per block)") if c.get("enabled") else "counters: off (--hostperf-no-counters)"
        if c.get("enabled") and c.get("unavailable"):
            reasons: dict[str, list[str]] = {}
            for name, why in c["unavailable"].items():
                reasons.setdefault(why, []).append(name)
            line += "; not available: " + "; ".join(f"{', '.join(n)}: {w}" for w, n in reasons.items())
        lines.append(line)
    noise = doc.get("noise") or {}
    if noise.get("probes"):
        text = "host noise: " + "; ".join(f"{k} {v['text']}" for k, v in noise["probes"].items())
        if noise.get("baseline_share") is not None:
            text += f" (baseline runs: {noise['baseline_share']:.2%} of the time)"
        lines.append(text)
        if noise.get("noisy"):
            lines.append("the host was noisier than during the baseline: verdict intervals were widened "
                         "(a regression must be larger to count); rerun on a quieter host to confirm")
    for a in (doc.get("host") or {}).get("not_applied", ()):
        lines.append(f"{a['control']}: not applied ({a['reason']}); fix: {a['fix']}")
    for r in results:
        for b in r.get("budgets", ()):
            if b["status"] != "within":
                lines.append(f"{b['status']}: {b['message']}")
    return lines


def to_json(doc: dict[str, Any]) -> str:
    """Serialize a report document: sorted keys, stable indentation, trailing newline."""
    return json.dumps(doc, sort_keys=True, indent=1, allow_nan=False) + "\n"
