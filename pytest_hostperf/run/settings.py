"""Typed settings: the run's (options resolved once), a test's (its marker), and the one place
that turns both into the host controls a measurement runs under.

Cheap to import (no numpy): the plugin builds the run's settings in ``pytest_configure``.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.host.sched import DEFAULT_RT_PRIORITY
from pytest_hostperf.run import options
from pytest_hostperf.units import parse_duration

#: Keys the ``hostperf`` marker accepts.
MARKER_KEYS = ("p99", "p999", "max", "samples", "group", "series", "tolerance", "rt", "cpus", "mlock")


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Every ``--hostperf*`` option of one run, read once (CLI > environment > ini > default)."""
    full: bool
    save: bool
    samples: int
    max_time: float
    tolerance: float
    strict: bool
    cpus: tuple[int, ...] | None
    rt: int | None  # None: --hostperf-rt=off
    mlock: bool | Literal["auto"]  # True: --hostperf-mlock (regardless of size); "auto": guarded
    counters: bool
    noise: bool
    keep_runs: int
    baselines_dir: Path
    host: str | None
    json_path: str | None
    markdown_path: str | None
    plot_dir: str | None
    against: str | None = None  # --hostperf-against=REF
    against_python: str | None = None
    pairs: int = options.DEFAULT_PAIRS  # --hostperf-pairs: process pairs of a paired comparison
    settle: int = options.DEFAULT_SETTLE  # --hostperf-settle: stored verdicts settled paired at the end, at most
    confirm: bool = True  # --hostperf-no-confirm: a stored-baseline regression fails unconfirmed
    require_baseline: bool = False  # --hostperf-require-baseline: a measurement without one fails
    gate: tuple[str, ...] = options.DEFAULT_GATE  # --hostperf-gate: statistics the stored-baseline gate compares

    @classmethod
    def from_config(cls, config: pytest.Config) -> RunSettings:
        def get(dest: str) -> Any:
            return options.get(config, dest)

        folder = Path(get("hostperf_baselines"))
        return cls(
            full=bool(get("hostperf")), save=bool(get("hostperf_save")), samples=int(get("hostperf_samples")),
            max_time=float(get("hostperf_max_time")), tolerance=float(get("hostperf_tolerance")),
            strict=bool(get("hostperf_strict")), cpus=get("hostperf_cpus"), rt=get("hostperf_rt"),
            mlock=get("hostperf_mlock"), counters=bool(get("hostperf_counters")),
            noise=bool(get("hostperf_noise")), keep_runs=options.keep_runs(config),
            baselines_dir=folder if folder.is_absolute() else Path(config.rootpath) / folder,
            host=get("hostperf_host"), json_path=get("hostperf_json"), markdown_path=get("hostperf_markdown"),
            plot_dir=get("hostperf_plot"), against=get("hostperf_against"),
            against_python=get("hostperf_against_python"), pairs=int(get("hostperf_pairs")),
            confirm=bool(get("hostperf_confirm")), settle=int(get("hostperf_settle")),
            require_baseline=bool(get("hostperf_require_baseline")), gate=tuple(get("hostperf_gate")))


@dataclass(frozen=True, slots=True)
class MarkerSettings:
    """Validated ``@pytest.mark.hostperf(...)`` arguments of one test."""
    budgets: dict[str, int] = field(default_factory=dict)
    samples: int | None = None
    group: str | None = None
    series: str | None = None  # the steps table this test's measurements join, in run order (steps.py)
    tolerance: float | None = None
    rt: int | str | None = None  # None: not given; "off"; "required"; or a priority
    cpus: tuple[int, ...] | None = None
    mlock: bool | Literal["auto"] | None = None  # None: not given


#: ``@pytest.mark.hostperf(cpus="all")``: measure on every CPU the process may use (unpinned).
CPUS_ALL = "all"
#: Statistics a latency budget may be set on (marker keys and ``hostperf(...)`` keywords alike).
BUDGET_KEYS = ("p99", "p999", "max")
#: What ``hostperf(fn, ..., p99="off")`` takes to lift the marker's budget for one measurement.
BUDGET_OFF = "off"


def parse_budgets(values: Mapping[str, Any], *, where: Callable[[str], str]) -> dict[str, int]:
    """The budgets among ``values`` (keys ``p99``, ``p999``, ``max``; None is "not given") in
    integer nanoseconds: strings need a unit (``"800ns"``, ``"50us"``, ``"2ms"``, ``"1.5s"``),
    plain numbers are nanoseconds. The one parser of budgets, for the marker and for
    ``hostperf(fn, ..., p99=...)`` alike: a bad value is an ``InvalidArgument`` naming
    ``where(stat)``, the value and a good example."""
    return {stat: parse_duration(values[stat], what=where(stat)) for stat in BUDGET_KEYS
            if values.get(stat) is not None}


def measurement_budgets(marker: Mapping[str, int], given: Mapping[str, Any]) -> dict[str, int]:
    """The budgets of one measurement: the marker's, each replaced by the one given to
    ``hostperf(fn, ..., p99=..., p999=..., max=...)`` for this measurement (None: the marker's
    stays; ``"off"``: none on that statistic for this measurement), in ``BUDGET_KEYS`` order."""
    off = {s for s in BUDGET_KEYS if isinstance(given.get(s), str) and given[s].strip().lower() == BUDGET_OFF}
    own = parse_budgets({s: v for s, v in given.items() if s not in off},
                        where=lambda stat: f"hostperf(..., {stat}=...)")
    merged = {**marker, **own}
    return {s: merged[s] for s in BUDGET_KEYS if s in merged and s not in off}


def parse_marker(item: pytest.Item) -> MarkerSettings:
    """Read and validate the test's ``hostperf`` marker; bad values name the key and the fix."""
    marker = item.get_closest_marker("hostperf")
    if marker is None:
        return MarkerSettings()
    if marker.args:
        raise InvalidArgument(f"@pytest.mark.hostperf takes keyword arguments only "
                              f"(e.g. p99='50us'), got positional {marker.args!r}")
    unknown = sorted(set(marker.kwargs) - set(MARKER_KEYS))
    if unknown:
        raise InvalidArgument(f"@pytest.mark.hostperf: unknown key(s) {', '.join(unknown)}; "
                              f"valid keys: {', '.join(MARKER_KEYS)}")
    kw = marker.kwargs
    budgets = parse_budgets(kw, where=lambda stat: f"@pytest.mark.hostperf({stat}=...)")
    parsers: dict[str, Callable[[str], Any]] = {
        "samples": options.parse_positive_int, "tolerance": options.parse_tolerance,
        "cpus": options.parse_cpus, "mlock": options.parse_mlock,
    }
    values: dict[str, Any] = {}
    for key, parse in parsers.items():
        if kw.get(key) is None:
            continue
        raw = kw[key]
        if key == "cpus" and isinstance(raw, (list, tuple)):
            raw = ",".join(str(c) for c in raw)
        if key == "cpus" and str(raw).strip().lower() == CPUS_ALL:
            # not pinned to one CPU: every CPU this process may run on now (an xdist worker's share)
            raw = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
        try:
            values[key] = parse(str(raw))
        except argparse.ArgumentTypeError as exc:
            raise InvalidArgument(f"@pytest.mark.hostperf({key}=...): {exc}") from None
    rt = kw.get("rt")
    if rt is not None and rt != "required":
        try:
            rt = options.parse_rt(str(rt))
        except argparse.ArgumentTypeError as exc:
            raise InvalidArgument(f"@pytest.mark.hostperf(rt=...): {exc}; or 'required'") from None
        rt = "off" if rt is None else rt
    group = kw.get("group")
    if group is not None and not isinstance(group, str):
        raise InvalidArgument(f"@pytest.mark.hostperf(group=...): {group!r} is not a string (e.g. 'alloc')")
    series = kw.get("series")
    if series is not None and (not isinstance(series, str) or not series.strip()):
        raise InvalidArgument(f"@pytest.mark.hostperf(series=...): {series!r} is not a non-empty string "
                              "(e.g. 'latency hunt')")
    return MarkerSettings(budgets=budgets, group=group, series=series, rt=rt, **values)


@dataclass(frozen=True, slots=True)
class Controls:
    """The host controls one test measures under: marker over options, resolved once."""
    cpus: tuple[int, ...] | None
    rt: int | None  # SCHED_FIFO priority, None: off
    mlock: bool | Literal["auto"]  # True: lock regardless of size; "auto": where the mlock guard allows
    rt_required: bool

    def skip_unless_rt(self, applied: Any) -> None:
        """``rt='required'``: skip the test (with the reason and fix) when SCHED_FIFO was not applied."""
        if self.rt_required and applied is not None and not applied.applied:
            pytest.skip(f"rt='required' but SCHED_FIFO was not applied: {applied.reason}; fix: {applied.fix}")


def resolve_controls(run: RunSettings, marker: MarkerSettings) -> Controls:
    """The one place a test's marker and the run's options become host controls.

    ``rt``: the marker's priority, else the run's (``--hostperf-rt``, None when off);
    ``rt='off'`` turns it off for the test; ``rt='required'`` uses the run's priority, or the
    default when the run's is off, and skips the test when SCHED_FIFO cannot be applied.
    """

    if marker.rt == "required":
        rt: int | None = run.rt or DEFAULT_RT_PRIORITY
    elif marker.rt == "off":
        rt = None
    elif isinstance(marker.rt, int):
        rt = marker.rt
    else:
        rt = run.rt
    return Controls(cpus=marker.cpus or run.cpus, rt=rt, mlock=run.mlock if marker.mlock is None else marker.mlock,
                    rt_required=marker.rt == "required")
