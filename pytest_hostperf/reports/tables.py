"""The table and markdown helpers every renderer of this layer draws with: an aligned terminal
table, a GitHub-flavoured markdown table and its escaping, a host field as text, a ratio with
its interval, a statistic's column name. Text in, text out; nothing here knows a record.
"""
from __future__ import annotations

from collections.abc import Sequence

from pytest_hostperf.units import STAT_LABELS, could_tell_pct, format_factor

__all__ = ["cell", "md_code", "md_escape", "md_table", "percentile_label", "ratio_text", "stat_label", "table"]


def table(rows: Sequence[Sequence[str]], header: Sequence[str], align: str | None = None) -> list[str]:
    """Align ``rows`` under ``header``; by default the first column left-aligned, the others
    right-aligned; ``align`` gives one letter per column instead (``l`` or ``r``)."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    align = align or "l" + "r" * (len(header) - 1)

    def line(cells: Sequence[str]) -> str:
        parts = [str(c).ljust(w) if a == "l" else str(c).rjust(w) for c, w, a in zip(cells, widths, align)]
        return "  ".join(parts).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def md_escape(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def md_code(text: str) -> str:
    # A pipe must be escaped even inside a code span, or GitHub splits the table cell.
    return "`" + str(text).replace("`", "'").replace("|", "\\|") + "`"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    sep = ["---:" if a == "r" else ":---" for a in align]
    return [line(header), line(sep), *(line(r) for r in rows)]


def cell(v: object) -> str | None:
    """A host field as text: None stays None (unknown), booleans are yes / no."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def ratio_text(ratio: float, interval: tuple[float, float] | None) -> str:
    """``1.38x [1.30, 1.46]``: a ratio and its 95% interval (``1.38x`` without one)."""
    if interval is None:
        return f"{format_factor(ratio)}x"
    lo, hi = interval
    return f"{format_factor(ratio)}x [{format_factor(lo)}, {format_factor(hi)}]"


def percentile_label(q: float) -> str:
    """A percentile's column name: ``99.9`` -> ``p99.9``, ``50.0`` -> ``p50``."""
    return f"p{q:g}"


def stat_label(stat: str) -> str:
    """A statistic's name as a reader sees it: ``p999`` -> ``p99.9``; ``max`` stays ``max``."""
    return STAT_LABELS.get(stat, stat)


def could_tell_text(interval: tuple[float, float] | None) -> str:
    """``±4%``: the smallest change a comparison could tell (``units.could_tell_pct``); empty without one."""
    tell = could_tell_pct(interval)
    return "" if tell is None else f"±{tell:.0f}%"
