"""Steps tables: one path with a fix switched on at each step, each step against the one
before it (incremental) and against the first (cumulative).

A test (or each parametrized case of one) marked ``@pytest.mark.hostperf(series="latency
hunt")`` adds its measurements to that series, in the order the run measured them. After a
full run the summary, the markdown report and ``hostperf show`` print one table per series:
each step's p50 / p99 / p99.9 (over all its calls), then its p99* against the previous step
and against the first, as ``compare``'s multi-step table shows them (``0.48x [0.44, 0.52]``:
this step / the other, of the medians of the block p99s), and a line with the cumulative
speed-up. The steps are measurements of one run, so each ratio's interval comes from the
blocks of the two measurements (``verdict.ratio_interval``, as ``expect_faster``), not from
run-to-run spread. Pure functions of the run's result records; no decisions, no I/O.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pytest_hostperf.reports.model import block_p99s
from pytest_hostperf.reports.tables import md_escape, md_table, ratio_text
from pytest_hostperf.reports.tables import table as draw
from pytest_hostperf.stats import verdict
from pytest_hostperf.store.records import ResultRecord
from pytest_hostperf.units import format_factor as _num
from pytest_hostperf.units import format_ns


@dataclass(frozen=True, slots=True)
class Ratio:
    """p99* of one step / p99* of another, with its 95% interval; or why they do not compare."""

    ratio: float | None
    interval: tuple[float, float] | None
    unlike: str | None = None

    def text(self) -> str:
        if self.ratio is None or self.interval is None:
            return self.unlike or "-"
        return ratio_text(self.ratio, self.interval)


@dataclass(frozen=True, slots=True)
class Step:
    record: ResultRecord
    incremental: Ratio | None  # against the step before (None for the first)
    cumulative: Ratio | None  # against the first step (None for the first)


def gate_p99(r: ResultRecord) -> float:
    """The step's p99*: the median of its block p99s."""
    return float(np.median(block_p99s(r)))


def ratio(cur: ResultRecord, other: ResultRecord) -> Ratio:
    """p99* of ``cur`` / p99* of ``other``, measured in one run (blocks resampled on each side)."""
    if cur.batch != other.batch:
        return Ratio(None, None, f"not like for like ({other.mode} -> {cur.mode})")
    if not cur.blocks or not other.blocks:
        return Ratio(None, None, "no blocks")
    value, interval = verdict.ratio_interval(block_p99s(cur), [block_p99s(other)])
    return Ratio(value, interval)


def series(results: Sequence[ResultRecord]) -> dict[str, list[ResultRecord]]:
    """Each series' measurements, in report order (the order the run measured them); smoke
    results (a handful of calls) make no table."""
    out: dict[str, list[ResultRecord]] = {}
    for r in results:
        if r.series and not r.smoke:
            out.setdefault(r.series, []).append(r)
    return out


def steps(records: Sequence[ResultRecord]) -> list[Step]:
    """The steps of one series: each against the one before and against the first."""
    out: list[Step] = []
    for i, r in enumerate(records):
        if i == 0:
            out.append(Step(r, None, None))
        else:
            out.append(Step(r, ratio(r, records[i - 1]), ratio(r, records[0])))
    return out


HEADER = ("step", "n", "p50", "p99", "p99.9", "p99*", "p99* vs previous [95% CI]", "p99* vs first [95% CI]")
ALIGN = "lrrrrrrr"


def rows(table: Sequence[Step]) -> list[list[str]]:
    return [[s.record.name, str(s.record.n), format_ns(s.record.p50_ns), format_ns(s.record.p99_ns),
             format_ns(s.record.p999_ns), format_ns(gate_p99(s.record)),
             s.incremental.text() if s.incremental else "-", s.cumulative.text() if s.cumulative else "-"]
            for s in table]


def verdict_line(title: str, table: Sequence[Step]) -> str:
    """``latency hunt: p99* from baseline 412 us to +warm 38.1 us: 10.8x faster [9.2, 12.5] ...``."""
    first, last = table[0].record, table[-1].record
    total = table[-1].cumulative
    if total is None or total.ratio is None or total.interval is None:
        why = total.unlike if total is not None else "one step only"
        return f"{title}: {len(table)} step(s); first to last not compared ({why})"
    lo, hi = total.interval
    return (f"{title}: p99* from {first.name} {format_ns(gate_p99(first))} to {last.name} "
            f"{format_ns(gate_p99(last))}: {_num(1 / total.ratio)}x faster [95% CI {_num(1 / hi)} .. {_num(1 / lo)}] "
            f"over {len(table) - 1} step(s)")


NOTE = ("steps: each step's p99* (the median of its block p99s) / the previous step's and the first's, "
        "measured in this run; below 1.00x is faster")


def render(title: str, table: Sequence[Step]) -> list[str]:
    """One series as terminal lines: a heading, the table, the cumulative line."""
    return [f"{title} (steps in the order measured):", *draw(rows(table), list(HEADER), ALIGN),
            verdict_line(title, table)]


def render_markdown(title: str, table: Sequence[Step]) -> list[str]:
    """One series as a GitHub-flavoured markdown section."""
    body = [[md_escape(c) for c in r] for r in rows(table)]
    return [f"#### {md_escape(title)}", "", *md_table(list(HEADER), body, ALIGN), "",
            md_escape(verdict_line(title, table)) + ".", ""]


def summary_lines(results: Sequence[ResultRecord]) -> list[str]:
    """Every series of a run, for the terminal summary (nothing when there is none)."""
    found = series(results)
    lines: list[str] = []
    for title, records in found.items():
        lines += render(title, steps(records))
    return lines + [NOTE] if found else []


def markdown_lines(results: Sequence[ResultRecord]) -> list[str]:
    """Every series of a run, for the markdown report (nothing when there is none)."""
    found = series(results)
    lines: list[str] = []
    for title, records in found.items():
        lines += render_markdown(title, steps(records))
    return lines + [_note_md()] if found else []


def _note_md() -> str:
    return NOTE[0].upper() + NOTE[1:] + "."
