"""Percentile-distribution plots: latency (log axis) against percentile on a "nines" axis.

One figure per measurement group (the marker's ``group``, else the test), each measurement a
colour, each input a line style: the baseline dashed, the current run solid. Written as PNG
and SVG with matplotlib's Agg canvas (no pyplot, no display, no global state), which comes
with the ``plot`` extra; without it :func:`require_matplotlib` raises
:class:`PlotUnavailable` with the install command.

The nines axis puts percentile q at x = -log10(1 - q/100): p50 at 0.3, p90 at 1, p99 at 2,
p99.9 at 3, p99.99 at 4, so every further nine gets the same room as the last one.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from pytest_hostperf.errors import PlotUnavailable
from pytest_hostperf.reports.model import Measurement, Source
from pytest_hostperf.stats.percentiles import QUANTILES
from pytest_hostperf.store import histogram
from pytest_hostperf.units import format_ns

__all__ = ["INSTALL_HINT", "NINES", "curve", "groups", "nines", "require_matplotlib", "write_plots"]

INSTALL_HINT = "install it with: pip install 'pytest-hostperf[plot]'"
#: Percentiles marked on the x axis.
NINES = (50.0, 90.0, 99.0, 99.9, 99.99)
#: Points per curve read from a histogram.
POINTS = 240
_STYLES: tuple[dict[str, Any], ...] = (
    {"linestyle": "--", "linewidth": 1.6, "alpha": 0.85, "marker": "o", "markerfacecolor": "none"},
    {"linestyle": "-", "linewidth": 2.2, "alpha": 1.0, "marker": "o"})


def require_matplotlib() -> ModuleType:
    """Import matplotlib (the ``plot`` extra) or raise :class:`PlotUnavailable` saying how to install it."""
    try:  # here, not at the top: matplotlib is an optional extra, slow to import, needed only to plot
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        raise PlotUnavailable(f"plots need matplotlib, which is not installed; {INSTALL_HINT}") from None
    return matplotlib


def nines(q_pct: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Percentile (0..100) to the nines axis: ``-log10(1 - q/100)``; 99 -> 2, 99.9 -> 3."""
    return -np.log10(1.0 - np.asarray(q_pct, dtype=np.float64) / 100.0)


def curve(m: Measurement) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(nines, latency ns) of one measurement, from p50 to as far as its samples reach (at most
    p99.99): the stored histogram read at many percentiles, or, without one, the four stored
    percentiles (p50, p90, p99, p99.9)."""
    if m.histogram:
        total = int(histogram.decode_histogram(m.histogram)[1].sum())
        # Beyond 1 - 1/n a percentile is the maximum: no further nine can be told apart.
        top = min(float(nines(NINES[-1])), float(np.log10(max(total, 2))))
        ticks = nines(NINES)
        x = np.union1d(np.linspace(float(ticks[0]), max(top, float(ticks[0])), POINTS), ticks[ticks <= top])
        q = 100.0 * (1.0 - 10.0 ** -x)
        return x, histogram.histogram_percentiles(m.histogram, np.minimum(q, 100.0).tolist())
    q = np.array([q for _, q in QUANTILES])
    return nines(q), np.array([getattr(m, f"{name}_ns") for name, _ in QUANTILES], dtype=np.float64)


def groups(sources: Sequence[Source]) -> dict[str, list[str]]:
    """Measurement ids per group, in the inputs' order: the marker's ``group``, else the test."""
    out: dict[str, list[str]] = {}
    for s in sources:
        for mid, m in s.measurements.items():
            ids = out.setdefault(m.group or m.nodeid, [])
            if mid not in ids:
                ids.append(mid)
    return out


def _labels(ids: Sequence[str]) -> dict[str, str]:
    """Legend names: the measurement's name, or where two in a group share it (a parametrized
    test), the test's name and parameters too: ``test_alloc[4096][fresh]``."""
    def name(mid: str) -> str:
        return mid[mid.rindex("[") + 1:-1] if mid.endswith("]") and "[" in mid else mid

    def short(mid: str) -> str:
        return mid.rsplit("::", 1)[-1]

    names = [name(mid) for mid in ids]
    return {mid: n if names.count(n) == 1 else short(mid) for mid, n in zip(ids, names)}


def _file_stem(group: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", group).strip("-.")[-120:].lstrip("-.") or "group"
    base, k = stem, 2
    while stem in taken:
        stem, k = f"{base}-{k}", k + 1
    taken.add(stem)
    return stem


def _tick(value: float, _pos: object = None) -> str:
    return format_ns(value)


def _save(matplotlib: ModuleType, fig: Any, stem: Path) -> list[Path]:
    """``fig`` as ``<stem>.png`` and ``<stem>.svg`` (the SVG reproducible: no date, fixed ids)."""
    paths = []
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "pytest-hostperf"}):
        for ext in ("png", "svg"):
            path = stem.with_name(f"{stem.name}.{ext}")
            fig.savefig(path, format=ext, dpi=110, metadata={"Date": None} if ext == "svg" else None)
            paths.append(path)
    return paths


def write_plots(inputs: Sequence[tuple[str, Source]], out_dir: Path) -> list[Path]:
    """Write ``<group>.png`` and ``<group>.svg`` into ``out_dir`` for every measurement group.

    ``inputs`` are (role, source) pairs, e.g. ``[("baseline", base), ("current", run)]``: the
    first is drawn dashed with hollow markers, the last solid. Returns the files written.
    """
    matplotlib = require_matplotlib()
    # the optional plot extra, checked just above
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    colors = matplotlib.rcParams.get("axes.prop_cycle").by_key().get("color") or ["C0"]
    written: list[Path] = []
    taken: set[str] = set()
    ticks = nines(NINES)
    for group, ids in groups([s for _, s in inputs]).items():
        names = _labels(ids)
        fig = Figure(figsize=(8.0, 5.0), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for ci, mid in enumerate(ids):
            color = colors[ci % len(colors)]
            for k, (role, src) in enumerate(inputs):
                m = src.measurements.get(mid)
                if m is None:
                    continue
                x, y = curve(m)
                dashed = k < len(inputs) - 1 or (len(inputs) == 1 and role == "baseline")
                marks = [int(i) for i in np.flatnonzero(np.isin(x, ticks))] or None
                style = {**(_STYLES[0] if dashed else _STYLES[1]), "markevery": marks}
                label = f"{names[mid]} — {role}" + (f" [{m.mode}]" if m.batch > 1 else "")
                ax.plot(x, np.maximum(y, 1.0), color=color, label=label, gid=f"hostperf-{role}-{ci}", **style)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(_tick))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(ticks, [f"p{q:g}" for q in NINES])
        ax.set_xlim(float(ticks[0]) - 0.1, float(ticks[-1]) + 0.1)
        ax.grid(True, which="major", alpha=0.35)
        ax.set_xlabel("percentile (nines scale: each step adds a nine)")
        ax.set_ylabel("latency per call (log scale)")
        fig.suptitle(group, fontsize=11)
        ax.set_title("   vs   ".join(f"{role}: {src.host_id or src.name}" for role, src in inputs),
                     fontsize=8, color="0.35")
        ax.legend(fontsize=8, loc="upper left")
        stem = _file_stem(group, taken)
        written += _save(matplotlib, fig, out_dir / stem)
    return written


def sweep_points(results: Sequence[Any]) -> dict[str, list[tuple[float, float, float, float, bool]]]:
    """The rate sweeps among a run's result records (open-loop measurements named
    ``<label>@<rate>``, ``hostperf.sweep``): ``"<test> <label>"`` -> [(rate, p50, p99, p99.9,
    saturated)] by rate, for sweeps of two rates or more."""
    out: dict[str, list[tuple[float, float, float, float, bool]]] = {}
    for r in results:
        load = getattr(r, "load", None)
        if not load or "@" not in r.name:
            continue
        label = f"{r.nodeid} {r.name.rsplit('@', 1)[0]}"
        out.setdefault(label, []).append((float(load["rate_per_s"]), float(r.p50_ns), float(r.p99_ns),
                                          float(r.p999_ns), bool(load["saturated"])))
    return {k: sorted(v) for k, v in out.items() if len(v) >= 2}


def write_sweep_plots(results: Sequence[Any], out_dir: Path) -> list[Path]:
    """``--hostperf-plot``: for each rate sweep, its p50, p99 and p99.9 against the offered rate
    (log latency), saturated rates marked; ``sweep-<label>.png`` and ``.svg``."""
    sweeps = sweep_points(results)
    if not sweeps:
        return []
    matplotlib = require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    taken: set[str] = set()
    for label, pts in sweeps.items():
        fig = Figure(figsize=(8.0, 5.0), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        rates = np.array([p[0] for p in pts])
        for i, stat in enumerate(("p50", "p99", "p99.9")):
            ax.plot(rates, np.maximum([p[1 + i] for p in pts], 1.0), marker="o", label=stat)
        sat = [p for p in pts if p[4]]
        if sat:
            ax.plot([p[0] for p in sat], [p[2] for p in sat], "x", color="red", markersize=10, label="saturated")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(_tick))
        ax.grid(True, which="major", alpha=0.35)
        ax.set_xlabel("offered rate (calls/s)")
        ax.set_ylabel("latency from the intended start (log scale)")
        fig.suptitle(f"{label}: latency against offered rate", fontsize=11)
        ax.legend(fontsize=8, loc="upper left")
        stem = _file_stem(f"sweep-{label}", taken)
        written += _save(matplotlib, fig, out_dir / stem)
    return written
