"""The terminal summary of a ``--hostperf`` run (also ``hostperf show REPORT``), from a
:class:`records.Report`: the results table with the gate's verdicts, what each verdict means,
and the lines about the timer, counters, host noise, budgets and step series. No decisions,
no file I/O.

Comparisons and the markdown report are rendered by :mod:`compare_render`, plots by :mod:`plots`.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from pytest_hostperf.host.cpus import format_cpu_list
from pytest_hostperf.host.sched import short_policy
from pytest_hostperf.reports import steps
from pytest_hostperf.reports.tables import could_tell_text, stat_label, table
from pytest_hostperf.store.records import HostState, Report, ResultRecord, Timer, VerdictRecord
from pytest_hostperf.units import format_ns

__all__ = ["delta_cell", "host_cell", "result_rows", "terminal_summary", "timer_line", "verdict_label"]

#: The verdict label of a result that was not compared (pytest-benchmark's batched rounds).
NOT_GATED = "not gated"
_COLUMNS = ("measurement", "n", "p50", "p99", "p99.9", "max", "mode", "host")


def host_cell(host: HostState | None) -> str:
    """Compact host state of one result, as read back during it: ``cpu1 fifo49 mlock``."""
    if host is None:
        return "-"
    policy = short_policy(host.policy)
    if policy in ("fifo", "rr"):
        policy += str(host.priority)
    return f"cpu{format_cpu_list(host.cpus)} {policy}" + (" mlock" if host.memory_locked else "")


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
            stat = f" ({stat_label(v.stat)}*)" if v and v.stat != "p99" and v.ratio else ""
            row += [format_ns(v.baseline_ns if v else None) + stat, delta_cell(v) + stat,
                    could_tell_text(v.interval if v else None), verdict_label(r),
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


#: One line on each verdict label; the summary explains the labels it shows.
VERDICT_LABELS = {
    "regressed": "above the baseline by more than the tolerance, confidently (fails the test)",
    "over-budget": "over a latency budget (fails the test)",
    "inconclusive": "interval too wide or too close to the tolerance to decide (passes; fails under --hostperf-strict)",
    "improved": "below the baseline by more than the tolerance, confidently",
    "unchanged": "interval within the tolerance",
    "new": "no baseline to compare with",
    NOT_GATED: "not compared: samples are means of several calls, which cannot speak for the tail (the notes say why)",
}


def verdict_label(r: ResultRecord) -> str:
    """A row's verdict as the table shows it (``not gated`` where no verdict was taken)."""
    return NOT_GATED if r.status == "-" and r.not_gated else r.status


def _wide_rows(rows: list[list[str]], columns: Sequence[str], align: str | None, width: int) -> list[str]:
    """A table too wide for the terminal: each row's name on its own line (cut into lines of
    ``width`` where longer still: joined, they are the whole id), its figures under it."""
    figures = table([r[1:] for r in rows], columns[1:], align[1:] if align else "r" * (len(columns) - 1))
    out = [f"{columns[0]} (its figures on the line under it)", "  " + figures[0], "  " + figures[1]]
    for row, line in zip(rows, figures[2:]):
        out += [row[0][i:i + width] for i in range(0, len(row[0]), width)] + ["  " + line]
    return out


def _advice(r: ResultRecord) -> str:
    """What decides this inconclusive measurement, for the path it was measured on."""
    v = r.verdict
    if v is not None and v.reason.startswith("paired with "):
        return "more pairs: raise --hostperf-max-time, or measure on a quieter host"
    if r.host is not None and r.host.timed_by == "pytest-benchmark":
        return ("its rounds set its precision: raise --benchmark-max-time or --benchmark-min-rounds (or use "
                "benchmark.pedantic), then save three runs with them")
    return "measure longer (--hostperf-max-time) or on a quieter host"


def _inconclusive_lines(results: Sequence[ResultRecord]) -> list[str]:
    """Each inconclusive verdict with its reason and advice, and once, how many runs to save."""
    lines = []
    few = [r.verdict.baseline_runs for r in results if r.verdict and r.verdict.status != "new"
           and not r.verdict.reason.startswith("paired with ") and 0 < r.verdict.baseline_runs < 3]
    for r in results:
        v = r.verdict
        if v is None or r.status != "inconclusive":
            continue
        advice = "" if 0 < v.baseline_runs < 3 else f"; {_advice(r)}"
        lines.append(f"inconclusive: {r.id}: {v.reason}{advice}")
    if few:
        more = 3 - min(few)
        lines.append(f"the baseline holds fewer than 3 runs for {len(few)} measurement(s): until 3 are saved only "
                     f"changes of about 1.7x decide; save {more} more run(s): pytest --hostperf --hostperf-save")
    return lines


def terminal_summary(report: Report, width: int = 120) -> list[str]:
    """The lines printed after a ``--hostperf`` run; the table fits ``width`` columns (a wider
    one puts each measurement's name on a line of its own)."""
    results = report.results
    lines = [timer_line(report.timer)] if report.timer else []
    if not results:
        return lines + ["no hostperf measurements in this run"]
    base = report.baseline
    compare = any(r.verdict for r in results)
    columns = _COLUMNS + (("base p99*", "Δp99* [95% CI]", "could tell", "verdict", "why") if compare else ())
    rows = result_rows(results, compare=compare)
    if compare and not any(r[-1] for r in rows):  # no row needs explaining: no empty column
        rows, columns = [r[:-1] for r in rows], columns[:-1]
    hosts = {r[7] for r in rows}
    if len(hosts) == 1 and len(rows) > 1:  # one host state for all: said once, not on every row
        rows, columns = [r[:7] + r[8:] for r in rows], columns[:7] + columns[8:]
        host_line = [f"host state of every measurement: {hosts.pop()}"]
    else:
        host_line = []
    align = "l" + "r" * (len(columns) - 2) + "l" if columns[-1] == "why" else None
    drawn = table(rows, columns, align)
    lines += drawn if max(len(x) for x in drawn) <= width else _wide_rows(rows, columns, align, width)
    lines += host_line
    if compare:
        counts: dict[str, int] = {}
        for r in results:
            counts[verdict_label(r)] = counts.get(verdict_label(r), 0) + 1
        lines.append("verdicts: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
        lines.append("; ".join(f"{k}: {VERDICT_LABELS[k]}" for k in sorted(counts) if k in VERDICT_LABELS))
        lines.append(GATED_NOTE)
        lines += _inconclusive_lines(results)
    if base is not None and not base.exists:
        lines.append(f"no baseline for host {base.host_id} ({base.path}): nothing was compared; "
                     "record one with: pytest --hostperf --hostperf-save")
    if base is not None and base.host_differences:
        lines.append("baseline was taken on a different setup: " + "; ".join(base.host_differences))
    lines += [f"expect_faster {c.status}: {c.message}" for c in report.speedups]
    lines += steps.summary_lines(results)
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
