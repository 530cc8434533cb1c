"""Per-run state: settings, the ``hostperf`` fixture object, collected results, the budget gate.

Registered as a plugin by ``plugin.py`` and kept in ``config.stash``. numpy and the
statistics load on the first measurement, not when pytest starts.
"""
from __future__ import annotations

import datetime as _dt
import platform
import sys
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hostperf import options
from pytest_hostperf.errors import HostperfWarning, InvalidArgument

if TYPE_CHECKING:
    from pytest_hostperf.measure import Plan, TimerInfo
    from pytest_hostperf.result import Result
    from pytest_hostperf.verdict import BudgetCheck

#: Keys the ``hostperf`` marker accepts.
MARKER_KEYS = ("p99", "p999", "max", "samples", "group", "tolerance", "rt", "cpus", "mlock")


@dataclass(frozen=True, slots=True)
class MarkerSettings:
    """Validated ``@pytest.mark.hostperf(...)`` arguments of one test."""

    budgets: dict[str, int] = field(default_factory=dict)
    samples: int | None = None
    group: str | None = None
    tolerance: float | None = None
    rt: int | str | None = None  # None: not given; "off"; "required"; or a priority
    cpus: tuple[int, ...] | None = None
    mlock: bool | None = None


def parse_marker(item: pytest.Item) -> MarkerSettings:
    """Read and validate the test's ``hostperf`` marker; bad values name the key and the fix."""
    import argparse

    from pytest_hostperf.units import parse_duration

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
    budgets = {stat: parse_duration(kw[stat], what=f"@pytest.mark.hostperf({stat}=...)")
               for stat in ("p99", "p999", "max") if kw.get(stat) is not None}
    parsers: dict[str, Callable[[str], Any]] = {
        "samples": options.parse_positive_int, "tolerance": options.parse_tolerance,
        "cpus": options.parse_cpus, "mlock": options.parse_bool,
    }
    values: dict[str, Any] = {}
    for key, parse in parsers.items():
        if kw.get(key) is None:
            continue
        raw = kw[key]
        if key == "cpus" and isinstance(raw, (list, tuple)):
            raw = ",".join(str(c) for c in raw)
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
    return MarkerSettings(budgets=budgets, group=group, rt=rt, **values)


class Recorder:
    """The ``hostperf`` fixture: call it to measure a function's per-call latency.

    >>> r = hostperf(model.predict, features, name="predict")   # doctest: +SKIP
    >>> r.p99, r.mode                                             # doctest: +SKIP
    """

    def __init__(self, session: HostperfSession, item: pytest.Item) -> None:
        self._session = session
        self._item = item
        self.settings = parse_marker(item)
        self.results: list[Result] = []
        self.checks: list[BudgetCheck] = []
        if session.full and self.settings.rt == "required":
            from pytest_hostperf.host import control

            ok, reason, fix = control.rt_available(self._rt_priority())
            if not ok:
                pytest.skip(f"rt='required' but SCHED_FIFO is not available: {reason}; fix: {fix}")

    @staticmethod
    def marker_of(item: pytest.Item) -> MarkerSettings:
        """The validated marker settings of ``item`` (for fixtures other than ``hostperf``)."""
        return parse_marker(item)

    def _rt_priority(self) -> int | None:
        """The SCHED_FIFO priority for this test: the marker's, else the session's."""
        from pytest_hostperf.host import control

        rt = self.settings.rt
        if rt == "required":
            return self._session.rt or control.DEFAULT_RT_PRIORITY
        if rt == "off":
            return None
        return self._session.rt if rt is None else rt

    def __call__(self, fn: Callable[..., Any], *args: Any, name: str | None = None,
                 samples: int | None = None, **kwargs: Any) -> Result:
        """Measure ``fn(*args, **kwargs)`` call by call and return its ``Result``.

        ``name`` labels the measurement (default: the function's name); it must be unique
        within the test. ``samples`` overrides the marker and ``--hostperf-samples``.
        """
        from pytest_hostperf import measure, result, verdict

        if not callable(fn):
            raise InvalidArgument(f"hostperf(fn, ...): {fn!r} is not callable; pass the function, not its result")
        name = name if name is not None else getattr(fn, "__qualname__", None) or type(fn).__name__
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"hostperf(..., name=...): {name!r} is not a non-empty string")
        if any(r.name == name for r in self.results):
            raise InvalidArgument(f"hostperf: measurement name {name!r} is already used in this test; "
                                  "give each measurement its own name=...")
        if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
            raise InvalidArgument(f"hostperf(..., samples=...): {samples!r} is not a whole number >= 1")
        plan = self._session.plan(samples or self.settings.samples)
        timer = self._session.timer
        if self._session.full:
            raw, host = self._sample_controlled(fn, args, kwargs, plan, timer)
        else:
            raw, host = measure.sample(fn, args, kwargs, plan=plan, timer=timer), None
        res = result.summarize(raw, nodeid=self._item.nodeid, name=name, group=self.settings.group,
                               smoke=not self._session.full)
        if host is not None:
            res.extra["host"] = host
        self.results.append(res)
        self._session.results.append(res)
        if self._session.full:
            checks = [verdict.check_budget(res, stat, budget) for stat, budget in self.settings.budgets.items()]
            self.checks.extend(checks)
            self._session.checks.extend(checks)
        return res


    def _sample_controlled(self, fn: Callable[..., Any], args: tuple, kwargs: dict, plan: Plan,
                           timer: TimerInfo) -> tuple[Any, dict[str, Any]]:
        """Sample under pinning, mlock and SCHED_FIFO, recording the state read back from the OS."""
        from pytest_hostperf import measure
        from pytest_hostperf.host import control

        s = self.settings
        rt = self._rt_priority()
        mlock = self._session.mlock if s.mlock is None else s.mlock
        with control.controlled(cpus=s.cpus or self._session.cpus, rt=rt, mlock=mlock) as applied:
            during = control.snapshot()  # read back from the OS, not copied from the options
            rt_missing = next((a for a in applied if a.control == "rt" and not a.applied), None)
            if s.rt == "required" and rt_missing is not None:
                pytest.skip(f"rt='required' but SCHED_FIFO was not applied: {rt_missing.reason}; "
                            f"fix: {rt_missing.fix}")
            raw = measure.sample(fn, args, kwargs, plan=plan, timer=timer)
        host = {"cpus": list(during.affinity), "policy": during.policy, "priority": during.priority,
                "memory_locked": during.memory_locked,
                "controls": [a.as_dict() for a in applied]}
        self._session.note_controls(applied)
        return raw, host


recorder_key = pytest.StashKey[Recorder]()


class HostperfSession:
    """State of one pytest run, registered as a plugin under the name ``hostperf-session``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.full: bool = options.get(config, "hostperf")
        self.samples: int = options.get(config, "hostperf_samples")
        self.max_time: float = options.get(config, "hostperf_max_time")
        self.json_path: str | None = options.get(config, "hostperf_json")
        self.cpus: tuple[int, ...] | None = options.get(config, "hostperf_cpus")
        self.rt: int | None = options.get(config, "hostperf_rt")
        self.mlock: bool = options.get(config, "hostperf_mlock")
        self.audit: list[Any] | None = None
        self.not_applied: dict[tuple[str, str | None], Any] = {}
        self.results: list[Result] = []
        self.checks: list[BudgetCheck] = []
        self.notes: list[str] = []
        self._timer: TimerInfo | None = None
        if options.get(config, "hostperf_save"):
            raise pytest.UsageError("--hostperf-save: baselines are not available in this version of "
                                    "pytest-hostperf yet; run without --hostperf-save")
        pending = sorted(d for d in options.PENDING if d != "hostperf_save" and options.explicitly_given(config, d))
        if pending:
            self.notes.append("declared but not yet active in this version: "
                              + ", ".join("--" + d.replace("_", "-") for d in pending))
        if self.json_path and not self.full:
            self.notes.append("--hostperf-json is written only under --hostperf")

    # -- measurement -----------------------------------------------------------------------
    @property
    def timer(self) -> TimerInfo:
        """The timer calibration, measured once per session on first use."""
        if self._timer is None:
            from pytest_hostperf import measure

            self._timer = measure.calibrate(pairs=20_000 if self.full else 200, name="perf_counter_ns")
        return self._timer

    def note_controls(self, applied: list[Any]) -> None:
        """Remember each distinct control that could not be applied, to print its fix once."""
        for a in applied:
            if not a.applied:
                self.not_applied.setdefault((a.control, a.reason), a)

    def plan(self, samples: int | None) -> Plan:
        from pytest_hostperf import measure

        if not self.full:
            return measure.SMOKE_PLAN
        return measure.Plan(samples=samples or self.samples, max_seconds=self.max_time,
                            warmup_seconds=min(0.3, self.max_time / 10))

    # -- hooks -----------------------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str] | str:
        if self.full:
            from pytest_hostperf.host import probe

            self.audit = probe.audit()
            return [f"hostperf: full measurement ({self.samples} samples, {self.max_time:g} s budget "
                    "per measurement)", "hostperf " + probe.audit_summary(self.audit)]
        return "hostperf: smoke mode (hostperf tests make a few calls; --hostperf measures and gates)"

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        outcome = yield
        rec = item.stash.get(recorder_key, None)
        if rec is not None and self.full:
            failed = [c for c in rec.checks if c.failed]
            for c in rec.checks:
                if c.status == "inconclusive":
                    item.warn(HostperfWarning(c.message + "; measure longer (--hostperf-max-time) to decide"))
            if failed:
                pytest.fail("\n".join(c.message for c in failed), pytrace=False)
        return outcome

    def report_document(self) -> dict[str, Any]:
        """The run as a JSON-ready document (schema in the README)."""
        from pytest_hostperf import report

        by_id: dict[str, list[dict[str, Any]]] = {}
        for c in self.checks:
            by_id.setdefault(c.result_id, []).append({
                "stat": c.stat, "budget_ns": c.budget_ns, "estimate_ns": int(round(c.estimate_ns)),
                "interval_ns": [int(round(x)) for x in c.interval_ns], "status": c.status, "message": c.message})
        results = [{**r.to_dict(), "budgets": by_id.get(r.id, [])} for r in self.results]
        timer = self._timer
        return {
            "schema": report.REPORT_SCHEMA,
            "schema_version": report.REPORT_SCHEMA_VERSION,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "mode": "full" if self.full else "smoke",
            "settings": {"samples": self.samples, "max_time_s": self.max_time},
            "timer": None if timer is None else {
                "clock": timer.clock, "overhead_ns": int(round(timer.overhead_ns)),
                "resolution_ns": int(round(timer.resolution_ns)), "pairs": timer.pairs},
            "tools": _tool_versions(),
            "host": self.host_document(),
            "results": results,
        }

    def host_document(self) -> dict[str, Any] | None:
        """Fingerprint, tuning audit and unapplied controls, for the JSON report (full mode)."""
        if not self.full:
            return None
        from pytest_hostperf.host import probe

        if self.audit is None:
            self.audit = probe.audit()
        return {"fingerprint": probe.fingerprint(), "audit": probe.audit_to_json(self.audit),
                "not_applied": [a.as_dict() for a in self.not_applied.values()]}

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.full and self.json_path:
            from pytest_hostperf import report
            from pytest_hostperf._io import atomic_write_text

            path = Path(self.json_path)
            if not path.is_absolute():
                path = Path(self.config.invocation_params.dir) / path
            atomic_write_text(path, report.to_json(self.report_document()))
            self.notes.append(f"JSON report written to {path}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results and not self.notes:
            return
        terminalreporter.section("hostperf")
        if self.full:
            from pytest_hostperf import report

            for line in report.terminal_summary(self.report_document()):
                terminalreporter.write_line(line)
        elif self.results:
            tests = len({r.nodeid for r in self.results})
            terminalreporter.write_line(
                f"{len(self.results)} measurement(s) in {tests} test(s) ran as smoke tests "
                "(a few calls each, nothing gated or written); run with --hostperf to measure")
        for note in self.notes:
            terminalreporter.write_line(f"note: {note}")


def _tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "implementation": sys.implementation.name}
    for dist in ("pytest-hostperf", "pytest", "numpy", "psutil"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions
