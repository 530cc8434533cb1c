"""Per-run state: settings, the ``hostperf`` fixture object, collected results, the budget gate.

Registered as a plugin by ``plugin.py`` and kept in ``config.stash``. numpy and the
statistics load on the first measurement, not when pytest starts.
"""
from __future__ import annotations

import datetime as _dt
import platform
import sys
from dataclasses import replace
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

#: Spread added (in quadrature) to every verdict's run-to-run spread when the noise probe
#: found the host well noisier than during the baseline (noise.py).
NOISY_SPREAD = 0.08
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
        from pytest_hostperf import workers

        # the id measurements are stored under: without xdist's "@group" suffix, so a
        # baseline saved by a gathered xdist run matches a plain run's
        self._nodeid = workers.ungrouped(item.nodeid)
        self.settings = parse_marker(item)
        self.results: list[Result] = []
        self.checks: list[BudgetCheck] = []
        self.verdicts: dict[str, Any] = {}
        self.why: dict[str, str] = {}  # measurement id -> counters that changed against the baseline
        self.speedups: list[Any] = []
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
                 samples: int | None = None, self_timed: bool = False, **kwargs: Any) -> Result:
        """Measure ``fn(*args, **kwargs)`` call by call and return its ``Result``.

        ``name`` labels the measurement (default: the function's name); it must be unique
        within the test. ``samples`` overrides the marker and ``--hostperf-samples``.
        ``self_timed=True``: ``fn`` returns its own latency in ns (CUDA events, wake-up
        lateness), recorded instead of the wall time around the call.
        """
        import numpy as np

        from pytest_hostperf import measure, result, stats, verdict

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
        mid = f"{self._nodeid}[{name}]"
        base_runs = self._session.baseline_runs(mid)
        plan = self._session.plan(samples or self.settings.samples,
                                  batch=base_runs[-1]["batch"] if base_runs else None)
        timer = self._session.timer
        if not self._session.full:
            raw = measure.sample(fn, args, kwargs, plan=plan, timer=timer, self_timed=self_timed)
            res = result.summarize(raw, nodeid=self._nodeid, name=name, group=self.settings.group, smoke=True)
            self.results.append(res)
            self._session.results.append(res)
            return res

        raw, host = self._sample_controlled(fn, args, kwargs, plan, timer, self_timed)
        res = result.summarize(raw, nodeid=self._nodeid, name=name, group=self.settings.group)
        tolerance = self.settings.tolerance if self.settings.tolerance is not None else self._session.tolerance
        baseline_p99 = [np.array([b["p99_ns"] for b in run["blocks"]], dtype=float) for run in base_runs]
        rounds = [stats.block_values(res.blocks, "p99")]
        widen = NOISY_SPREAD if self._session.noisy else 0.0
        v = verdict.compare(rounds, baseline_p99, tolerance_pct=tolerance, extra_spread=widen)
        # Regressed or inconclusive: measure further rounds (same batch size, same bounds each), so
        # a regression must hold over several rounds and one disturbed round cannot fail the run.
        while v.status in ("regressed", "inconclusive") and len(rounds) <= self._session.max_rounds:
            more, _ = self._sample_controlled(fn, args, kwargs, replace(plan, batch=raw.batch, warmup_calls=10),
                                              timer, self_timed)
            rounds.append(stats.block_values(
                result.summarize(more, nodeid=self._nodeid, name=name, group=self.settings.group).blocks, "p99"))
            raw = measure.merge(raw, more)
            res = result.summarize(raw, nodeid=self._nodeid, name=name, group=self.settings.group)
            v = verdict.compare(rounds, baseline_p99, tolerance_pct=tolerance, extra_spread=widen)
        res.extra["host"] = host
        self._explain(res, base_runs)
        res.extra["verdict"] = verdict_dict(v, len(rounds) - 1)
        self.verdicts[res.id] = v
        return self._keep(res)

    def _keep(self, res: Result) -> Result:
        """Record a measured result in this test and the run, and check its budgets."""
        from pytest_hostperf import verdict

        self.results.append(res)
        self._session.results.append(res)
        checks = [verdict.check_budget(res, stat, budget) for stat, budget in self.settings.budgets.items()]
        self.checks.extend(checks)
        self._session.checks.extend(checks)
        return res

    def _explain(self, res: Result, base_runs: list[dict[str, Any]]) -> None:
        """The counters that changed clearly against the baseline's runs: ``res.extra["why"]``."""
        from pytest_hostperf import counters

        cur = res.extra.get("counters")
        before = [run["counters"] for run in base_runs if run.get("counters")]
        if cur and before:
            changes = counters.changed(cur, before)
            if changes:
                res.extra["why"] = counters.describe_changes(changes)
                self.why[res.id] = res.extra["why"]

    def record_external(self, raw: Any, *, name: str, host: dict[str, Any], gate: bool,
                        why_not: str | None = None) -> Result:
        """Record samples timed by another tool (pytest-benchmark) as one measurement: compared
        with the baseline when ``gate`` (one round: it cannot be re-measured), else reported with
        ``why_not`` in place of a verdict."""
        import numpy as np

        from pytest_hostperf import result, stats, verdict

        res = result.summarize(raw, nodeid=self._nodeid, name=name, group=self.settings.group)
        res.extra["host"] = host
        if gate and self._session.full:
            base_runs = self._session.baseline_runs(res.id)
            baseline_p99 = [np.array([b["p99_ns"] for b in run["blocks"]], dtype=float) for run in base_runs]
            tolerance = self.settings.tolerance if self.settings.tolerance is not None else self._session.tolerance
            v = verdict.compare([stats.block_values(res.blocks, "p99")], baseline_p99, tolerance_pct=tolerance)
            res.extra["verdict"] = verdict_dict(v, 0)
            self.verdicts[res.id] = v
        elif why_not:
            res.extra["not_gated"] = why_not
            self._session.notes.append(f"{res.id}: {why_not}")
        return self._keep(res)

    def note(self, text: str) -> None:
        """Add a line to the hostperf section of the terminal summary and the JSON report
        (e.g. a rate derived from a measurement: ``semaphore ping-pong: 15.2 kHz``)."""
        self._session.notes.append(f"{self._nodeid}: {text}")

    def expect_faster(self, fast: Result, slow: Result, *, factor: float = 1.0, at: str = "p99") -> Any:
        """Fail the test when ``fast`` is confidently *not* ``factor`` times faster than ``slow``.

        Both measurements come from this run, so this relative budget holds on any host and
        needs no baseline. Inconclusive (the interval straddles ``factor``) warns, or fails
        under ``--hostperf-strict``. In smoke mode nothing is decided.
        """
        from pytest_hostperf import verdict

        if not (isinstance(factor, (int, float)) and factor > 0):
            raise InvalidArgument(f"expect_faster(..., factor=...): {factor!r} is not a positive number (e.g. 2.0)")
        if at not in ("p50", "p90", "p99", "p999", "max"):
            raise InvalidArgument(f"expect_faster(..., at=...): {at!r} is not one of p50, p90, p99, p999, max")
        if fast.smoke or slow.smoke:
            return None
        check = verdict.check_speedup(fast, slow, factor=float(factor), stat=at)
        self.speedups.append(check)
        self._session.speedups.append(check)
        if check.failed:
            pytest.fail(check.message, pytrace=False)
        return check


    def _sample_controlled(self, fn: Callable[..., Any], args: tuple, kwargs: dict, plan: Plan,
                           timer: TimerInfo, self_timed: bool = False) -> tuple[Any, dict[str, Any]]:
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
            raw = measure.sample(fn, args, kwargs, plan=plan, timer=timer, self_timed=self_timed,
                                 counters=self._session.reader)
        host = {"cpus": list(during.affinity), "policy": during.policy, "priority": during.priority,
                "memory_locked": during.memory_locked,
                "controls": [a.as_dict() for a in applied]}
        self._session.note_controls(applied)
        return raw, host


def verdict_dict(v: Any, rounds: int) -> dict[str, Any]:
    """A Verdict as stored in the JSON report."""
    return {"status": v.status, "stat": v.stat, "ratio": None if v.ratio is None else round(v.ratio, 4),
            "interval": None if v.interval is None else [round(x, 4) for x in v.interval],
            "baseline_ns": None if v.baseline_ns is None else int(round(v.baseline_ns)),
            "current_ns": int(round(v.current_ns)), "tolerance_pct": v.tolerance_pct,
            "baseline_runs": v.baseline_runs, "extra_rounds": rounds, "reason": v.reason}


def junit_properties(rec: Recorder) -> list[tuple[str, Any]]:
    """``record_property`` entries of a test's measurements, so ``--junitxml`` shows them:
    ``hostperf[<name>].p99_ns`` and ``hostperf[<name>].verdict`` (over-budget wins, as in reports)."""
    props: list[tuple[str, Any]] = []
    for r in rec.results:
        v = rec.verdicts.get(r.id)
        status = v.status if v is not None else "-"
        if any(c.failed for c in rec.checks if c.result_id == r.id):
            status = "over-budget"
        props += [(f"hostperf[{r.name}].p99_ns", int(round(r.p99))), (f"hostperf[{r.name}].verdict", status)]
    return props


recorder_key = pytest.StashKey[Recorder]()


class HostperfSession:
    """State of one pytest run, registered as a plugin under the name ``hostperf-session``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.full: bool = options.get(config, "hostperf")
        self.samples: int = options.get(config, "hostperf_samples")
        self.max_time: float = options.get(config, "hostperf_max_time")
        self.json_path: str | None = options.get(config, "hostperf_json")
        self.markdown_path: str | None = options.get(config, "hostperf_markdown")
        self.plot_dir: str | None = options.get(config, "hostperf_plot")
        self.warnings: list[str] = []  # printed as warning lines; the run goes on
        self._histograms: dict[str, dict[str, Any] | None] = {}
        self._commit: dict[str, Any] | None = None
        self.cpus: tuple[int, ...] | None = options.get(config, "hostperf_cpus")
        self.rt: int | None = options.get(config, "hostperf_rt")
        self.mlock: bool = options.get(config, "hostperf_mlock")
        self.audit: list[Any] | None = None
        self.not_applied: dict[tuple[str, str | None], Any] = {}
        self.results: list[Result] = []
        self.checks: list[BudgetCheck] = []
        self.notes: list[str] = []
        self.save_failed = False
        self.speedups: list[Any] = []
        self._timer: TimerInfo | None = None
        self.tolerance: float = options.get(config, "hostperf_tolerance")
        self.strict: bool = options.get(config, "hostperf_strict")
        self.save: bool = options.get(config, "hostperf_save")
        self.keep_runs: int = options.keep_runs(config)
        self.max_rounds = 2  # extra sampling rounds for a regressed or inconclusive verdict
        self.counters_on: bool = options.get(config, "hostperf_counters")
        self.noise_on: bool = options.get(config, "hostperf_noise")
        self._reader: Any = None
        self.counter_cost_ns: float | None = None
        self.noise_probes: dict[str, Any] = {}
        self._init_workers(config)
        folder = Path(options.get(config, "hostperf_baselines"))
        self.baselines_dir = folder if folder.is_absolute() else Path(config.rootpath) / folder
        self.host_id: str | None = None
        self.baseline: Any = None
        self._fingerprint: dict[str, Any] | None = None
        if self.save and not self.full:
            raise pytest.UsageError("--hostperf-save needs --hostperf: smoke runs are not measurements; "
                                    "run pytest --hostperf --hostperf-save")
        if self.full:
            self._load_baseline(options.get(config, "hostperf_host"))
        pending = sorted(d for d in options.PENDING if options.explicitly_given(config, d))
        if pending:
            self.notes.append("declared but not yet active in this version: "
                              + ", ".join("--" + d.replace("_", "-") for d in pending))
        for flag, given in (("--hostperf-json", self.json_path), ("--hostperf-markdown", self.markdown_path),
                            ("--hostperf-plot", self.plot_dir)):
            if given and not self.full:
                self.notes.append(f"{flag} is written only under --hostperf")

    def _init_workers(self, config: pytest.Config) -> None:
        """xdist (DESIGN.md section 9): each worker measures on its own CPUs, or, with more
        workers than CPUs, the hostperf tests are gathered onto one worker."""
        from pytest_hostperf import workers

        self.worker = workers.worker_of(config)  # (index, count) inside an xdist worker
        self.remote: list[dict[str, Any]] = []  # what the workers sent home (controller)
        self.gathered = False
        self.workers = 0
        self.usable_cpus = 0
        if not self.full:
            return
        usable = workers.usable_cpus(self.cpus)
        if self.worker is not None:
            index, count = self.worker
            self.workers = count
            self.gathered = workers.must_gather(count, usable)
            if self.gathered:  # workers re-parse the command line: tell xdist's worker side too
                config.option.loadgroup = True
            else:
                self.cpus = workers.worker_cpus(usable, count, index)
                self._confine_worker()
            return
        self.workers = workers.xdist_workers(config)
        if self.workers and workers.must_gather(self.workers, usable):
            self.gathered = True
            if config.getvalue("dist") == "load":  # xdist's default for -n: group instead
                config.option.dist = "loadgroup"
        self.usable_cpus = len(usable)  # the placement note is written from the results, at the end

    def _confine_worker(self) -> None:
        """Keep the whole worker on its share of CPUs, so the threads and child processes its
        tests start (ping-pong peers, echo threads) never run on another worker's CPUs.
        Restored at the end of the worker's session."""
        import os

        self._worker_affinity: set[int] | None = None
        if not hasattr(os, "sched_setaffinity") or not self.cpus:
            return
        try:
            before = os.sched_getaffinity(0)
            os.sched_setaffinity(0, self.cpus)
        except OSError as exc:
            self.warnings.append(f"xdist worker not confined to cpus {','.join(map(str, self.cpus))}: "
                                 f"{exc.strerror or exc}")
            return
        self._worker_affinity = before

    def _release_worker(self) -> None:
        import os

        before = getattr(self, "_worker_affinity", None)
        if before:
            os.sched_setaffinity(0, before)
            self._worker_affinity = None

    @property
    def is_worker(self) -> bool:
        return self.worker is not None

    def _load_baseline(self, override: str | None) -> None:
        from pytest_hostperf import baseline
        from pytest_hostperf.errors import BaselineError

        try:
            self.host_id = baseline.host_id(self.fingerprint, override)
            self.baseline = baseline.load_if_exists(self.baselines_dir, self.host_id)
        except BaselineError as exc:
            raise pytest.UsageError(f"hostperf baseline: {exc}") from None

    @property
    def fingerprint(self) -> dict[str, Any]:
        if self._fingerprint is None:
            from pytest_hostperf.host import probe

            self._fingerprint = probe.fingerprint()
        return self._fingerprint

    def baseline_runs(self, mid: str) -> list[dict[str, Any]]:
        """This measurement's records in the stored baseline runs, oldest first (full mode only)."""
        if not self.full or self.baseline is None:
            return []
        return self.baseline.runs_of(mid)

    def host_differences(self) -> list[str]:
        """Fields that differ between this run and the baseline's newest run and that change latency."""
        if self.baseline is None or not self.baseline.runs:
            return []
        old = self.baseline.latest
        diffs = []
        for key in ("cpu_model", "logical_cpus", "smt", "numa_nodes", "kernel", "python", "governor", "rt_runtime_us"):
            a, b = (old.get("fingerprint") or {}).get(key), self.fingerprint.get(key)
            if a != b:
                diffs.append(f"{key} {a} -> {b}")
        rt_now = self._rt_applied([r.extra.get("host") for r in self.results]
                                  + [d.get("host") for out in self.remote for d in out["results"]])
        rt_then = self._rt_applied([m.get("host") for m in (old.get("measurements") or {}).values()])
        if rt_now is not None and rt_then is not None and rt_now != rt_then:
            diffs.append(f"SCHED_FIFO applied {rt_then} -> {rt_now}")
        if old.get("concurrency", 1) != self.concurrency:
            diffs.append(f"concurrency {old.get('concurrency', 1)} -> {self.concurrency}")
        return diffs

    @staticmethod
    def _rt_applied(hosts: list[Any]) -> bool | None:
        policies = {h.get("policy") for h in hosts if h}
        return None if not policies else "SCHED_FIFO" in policies

    @property
    def concurrency(self) -> int:
        """Workers measuring at once (xdist); 1 in a plain run or when gathered onto one worker,
        as many as measured when gathering did not hold."""
        if not self.workers:
            return 1
        return max(1, len(set(self.measured_on))) if self.gathered else self.workers

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

    def plan(self, samples: int | None, *, batch: int | None = None) -> Plan:
        """The sampling plan; ``batch`` pins the batch size to the baseline's, so both compare."""
        from pytest_hostperf import measure

        if not self.full:
            return measure.SMOKE_PLAN
        return measure.Plan(samples=samples or self.samples, max_seconds=self.max_time,
                            warmup_seconds=min(0.3, self.max_time / 10), batch=batch)

    @property
    def reader(self) -> Any:
        """The counter reader of the measuring thread, opened on first use (None when off)."""
        if not (self.full and self.counters_on):
            return None
        if self._reader is None:
            from pytest_hostperf import counters

            self._reader = counters.Reader()
            self.counter_cost_ns = counters.read_cost_ns(self._reader)
        return self._reader

    def counters_document(self) -> dict[str, Any] | None:
        if not self.full:
            return None
        if not self.counters_on:
            return {"enabled": False}
        r = self._reader
        return {"enabled": True, "read_cost_ns": int(round(self.counter_cost_ns or 0)),
                "unavailable": dict(r.unavailable) if r is not None else {}}

    def probe_noise(self, when: str) -> None:
        """rtla-osnoise-style probe on the measuring CPU (see noise.py), before/after the tests."""
        if not (self.full and self.noise_on) or self.is_worker:
            return
        from pytest_hostperf import noise
        from pytest_hostperf.host import control

        with control.pinned(self.cpus):
            self.noise_probes[when] = noise.probe()

    def _baseline_noise_shares(self) -> list[float]:
        if self.baseline is None:
            return []
        shares = []
        for run in self.baseline.runs:
            n = run.get("noise")
            if isinstance(n, dict) and isinstance(n.get("share"), (int, float)):
                shares.append(float(n["share"]))
        return shares

    @property
    def noisy(self) -> bool:
        """Whether the host was well noisier before the measurements than during the baseline's runs."""
        from pytest_hostperf import noise

        before = self.noise_probes.get("before")
        return before is not None and noise.is_noisy(before.share, self._baseline_noise_shares())

    def noise_document(self) -> dict[str, Any] | None:
        if not self.noise_probes:
            return None
        from pytest_hostperf import noise

        shares = self._baseline_noise_shares()
        run = noise.combine(list(self.noise_probes.values()))
        return {"probes": {k: {**p.as_dict(), "text": p.text()} for k, p in self.noise_probes.items()},
                "share": round(run.share, 6), "baseline_share": sorted(shares)[len(shares) // 2] if shares else None,
                "noisy": self.noisy}

    # -- hooks -----------------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.probe_noise("before")

    def pytest_report_header(self, config: pytest.Config) -> list[str] | str:
        if self.full:
            from pytest_hostperf.host import probe

            self.audit = probe.audit()
            return [f"hostperf: full measurement ({self.samples} samples, {self.max_time:g} s budget "
                    "per measurement)", "hostperf " + probe.audit_summary(self.audit)]
        return "hostperf: smoke mode (hostperf tests make a few calls; --hostperf measures and gates)"

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """With more workers than CPUs, give hostperf tests the ``@hostperf`` node id suffix that
        xdist's loadgroup scheduler sends to one worker. Runs after xdist's own hook: that one
        cannot set the suffix on pytest >= 9.2 (see ``workers.tag_group``)."""
        if not (self.gathered and self.is_worker):
            return
        from pytest_hostperf import workers

        for item in items:
            names = getattr(item, "fixturenames", ())
            if "hostperf" in names or "benchmark" in names or item.get_closest_marker("hostperf"):
                item.add_marker(pytest.mark.xdist_group(workers.GROUP))
                workers.tag_group(item, workers.GROUP)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Controller: keep what a worker measured (it arrives in ``workeroutput``)."""
        from pytest_hostperf import workers

        out = getattr(node, "workeroutput", {}).get(workers.OUTPUT_KEY)
        if out:
            self.remote.append(out)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        bench = None
        if self.full and "benchmark" in getattr(item, "fixturenames", ()):
            bench = item.funcargs.get("benchmark")  # type: ignore[attr-defined]
        try:
            if bench is not None and getattr(bench, "enabled", False):
                outcome = yield from self._under_control(item, bench)
            else:
                outcome = yield
        finally:  # also when the test failed after measuring: JUnit shows what was measured
            rec = item.stash.get(recorder_key, None)
            if rec is not None and self.full:
                item.user_properties.extend(junit_properties(rec))
        if rec is not None and self.full:
            from pytest_hostperf import verdict

            def why(mid: str) -> str:
                return f" — {rec.why[mid]}" if mid in rec.why else ""

            failures = [c.message + why(c.result_id) for c in rec.checks if c.failed]
            failures += [verdict.regression_message(mid, v) + why(mid) for mid, v in rec.verdicts.items() if v.failed]
            unsure = [c.message for c in rec.checks if c.status == "inconclusive"]
            unsure += [f"{mid}: p99 inconclusive: {v.reason}" for mid, v in rec.verdicts.items()
                       if v.status == "inconclusive"]
            unsure += [c.message for c in rec.speedups if c.status == "inconclusive"]
            if self.strict:
                failures += [f"{u} (failing: --hostperf-strict)" for u in unsure]
            else:
                for u in unsure:
                    item.warn(HostperfWarning(u + "; measure longer (--hostperf-max-time) or on a quieter host"))
            if failures:
                pytest.fail("\n".join(failures), pytrace=False)
        return outcome

    def _under_control(self, item: pytest.Item, bench: Any) -> Generator[None, None, Any]:
        """Run a pytest-benchmark test under hostperf's host control, then record its rounds:
        per call (iterations=1) they are gated on p99; batched rounds are reported, not gated."""
        from pytest_hostperf import pbench
        from pytest_hostperf.host import control

        rec = item.stash.get(recorder_key, None)
        if rec is None:
            rec = Recorder(self, item)
            item.stash[recorder_key] = rec
        s = rec.settings
        mlock = self.mlock if s.mlock is None else s.mlock
        with control.controlled(cpus=s.cpus or self.cpus, rt=rec._rt_priority(), mlock=mlock) as applied:
            during = control.snapshot()
            outcome = yield
        self.note_controls(applied)
        meta = getattr(bench, "stats", None)
        data = getattr(getattr(meta, "stats", None), "data", None)
        if meta is None or not data:
            return outcome
        iterations = int(getattr(meta, "iterations", 1) or 1)
        host = {"cpus": list(during.affinity), "policy": during.policy, "priority": during.priority,
                "memory_locked": during.memory_locked, "controls": [a.as_dict() for a in applied],
                "timed_by": "pytest-benchmark"}
        raw = pbench.samples_from_data(data, iterations)
        rec.record_external(raw, name="benchmark", host=host, gate=iterations == 1,
                            why_not=pbench.tail_note(iterations))
        return outcome

    def report_document(self) -> dict[str, Any]:
        """The run as a JSON-ready document (schema in the README)."""
        from pytest_hostperf import report

        by_id: dict[str, list[dict[str, Any]]] = {}
        for c in self.checks:
            by_id.setdefault(c.result_id, []).append({
                "stat": c.stat, "budget_ns": c.budget_ns, "estimate_ns": int(round(c.estimate_ns)),
                "interval_ns": [int(round(x)) for x in c.interval_ns], "status": c.status, "message": c.message})
        results = [{**r.to_dict(), "budgets": by_id.get(r.id, []), "histogram": self._histogram(r)}
                   for r in self.results]
        for out in self.remote:  # xdist: the workers' results, in the order the workers ended
            results.extend(out["results"])
        timer = self._timer
        return {
            "schema": report.REPORT_SCHEMA,
            "schema_version": report.REPORT_SCHEMA_VERSION,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "mode": "full" if self.full else "smoke",
            "commit": self.commit,
            "settings": {"samples": self.samples, "max_time_s": self.max_time, "tolerance_pct": self.tolerance,
                         "strict": self.strict},
            "baseline": self.baseline_document(),
            "timer": next((out["timer"] for out in self.remote if out.get("timer")), None) if timer is None else {
                "clock": timer.clock, "overhead_ns": int(round(timer.overhead_ns)),
                "resolution_ns": int(round(timer.resolution_ns)), "pairs": timer.pairs},
            "concurrency": self.concurrency,
            "tools": _tool_versions(),
            "speedups": [{"fast": c.fast_id, "slow": c.slow_id, "stat": c.stat, "factor": c.factor,
                          "speedup": round(c.speedup, 4), "interval": [round(x, 4) for x in c.interval],
                          "status": c.status, "message": c.message} for c in self.speedups]
                        + [sp for out in self.remote for sp in out.get("speedups", [])],
            "host": self.host_document(),
            "counters": self.counters_document(),
            "noise": self.noise_document(),
            "notes": list(self.notes),
            "results": results,
        }

    def _histogram(self, r: Result) -> dict[str, Any] | None:
        """The result's latency distribution (``log2-32``, as baselines store it), computed once."""
        if r.id not in self._histograms:
            from pytest_hostperf import baseline
            from pytest_hostperf.errors import HostperfError

            try:
                self._histograms[r.id] = None if r.samples is None else baseline.encode_histogram(r.samples)
            except HostperfError:  # e.g. a self-timed function returned a negative latency
                self._histograms[r.id] = None
        return self._histograms[r.id]

    @property
    def commit(self) -> dict[str, Any]:
        """``{"sha", "branch", "dirty"}`` of the checkout under test (None where unknown)."""
        if self._commit is None:
            from pytest_hostperf import baseline

            self._commit = baseline.commit_info(Path(self.config.rootpath))
        return self._commit

    def baseline_document(self) -> dict[str, Any] | None:
        """Which baseline the run was compared with, and how the host differs from it."""
        if not self.full:
            return None
        path = None if self.host_id is None else str(self.baselines_dir / f"{self.host_id}.json")
        return {"host_id": self.host_id, "path": path, "exists": self.baseline is not None,
                "runs": 0 if self.baseline is None else len(self.baseline.runs),
                "host_differences": self.host_differences()}

    def host_document(self) -> dict[str, Any] | None:
        """Fingerprint, tuning audit and unapplied controls, for the JSON report (full mode)."""
        if not self.full:
            return None
        from pytest_hostperf.host import probe

        if self.audit is None:
            self.audit = probe.audit()
        return {"fingerprint": probe.fingerprint(), "audit": probe.audit_to_json(self.audit),
                "not_applied": [a.as_dict() for a in self.not_applied.values()]}

    def _send_home(self) -> None:
        """xdist worker: put this worker's results (and their baseline records, built here where
        the samples are) into ``workeroutput``; the controller reports and saves."""
        from pytest_hostperf import baseline, workers
        from pytest_hostperf.errors import BaselineError

        doc = self.report_document()
        for d in doc["results"]:
            d["worker"] = self.config.workerinput["workerid"]  # type: ignore[attr-defined]
        records: dict[str, Any] = {}
        for r, d in zip(self.results, doc["results"]):
            try:
                records[r.id] = baseline.measurement_record(d, r.samples)
            except BaselineError as exc:
                self.notes.append(f"{r.id}: not saved: {exc}")
        self.config.workeroutput[workers.OUTPUT_KEY] = {  # type: ignore[attr-defined]
            "worker": self.config.workerinput["workerid"], "cpus": list(self.cpus or ()),  # type: ignore[attr-defined]
            "results": doc["results"], "records": records, "timer": doc["timer"], "speedups": doc["speedups"],
            "notes": list(self.notes), "warnings": list(self.warnings),
            "not_applied": [a.as_dict() for a in self.not_applied.values()]}

    def _merge_remote(self) -> None:
        """Controller: notes and warnings of the workers, each once, and where they measured."""
        from pytest_hostperf import workers

        for out in self.remote:
            for line in out.get("notes", []):
                if line not in self.notes:
                    self.notes.append(line)
            for line in out.get("warnings", []):
                if line not in self.warnings:
                    self.warnings.append(line)
        measured_on = self.measured_on
        if not measured_on:
            return
        line, bad = workers.placement_note(self.workers, self.usable_cpus, measured_on, self.gathered)
        if not self.gathered:
            line += " (" + ", ".join(f"{o['worker']} cpus {','.join(map(str, o['cpus'])) or '-'}"
                                     for o in sorted(self.remote, key=lambda o: o["worker"]) if o["results"]) + ")"
        (self.warnings if bad else self.notes).append(line)

    @property
    def measured_on(self) -> list[str]:
        """The xdist worker of every result the workers sent home (empty in a plain run)."""
        return [r["worker"] for out in self.remote for r in out["results"]]

    @property
    def has_results(self) -> bool:
        return bool(self.results) or any(out["results"] for out in self.remote)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker:
            try:
                if self.full:
                    self._send_home()
            finally:
                self._release_worker()
            return
        self._merge_remote()
        if self.has_results:
            self.probe_noise("after")
        if self._reader is not None:
            self._reader.close()
        if self.save and self.has_results and session.exitstatus == pytest.ExitCode.INTERRUPTED:
            # A partial run would push a complete one out of the kept runs.
            self.warnings.append("baseline NOT saved: the run was interrupted (a partial run would replace a "
                                 "complete one among the kept runs)")
        elif self.save and self.has_results:
            self._save_baseline()
            if self.save_failed and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.full and self.json_path:
            from pytest_hostperf import report
            from pytest_hostperf._io import atomic_write_text

            path = Path(self.json_path)
            if not path.is_absolute():
                path = Path(self.config.invocation_params.dir) / path
            atomic_write_text(path, report.to_json(self.report_document()))
            self.notes.append(f"JSON report written to {path}")
        if self.full:
            self._write_markdown()
            if self.plot_dir:
                self._write_plots()

    def _out_path(self, given: str) -> Path:
        path = Path(given)
        return path if path.is_absolute() else Path(self.config.invocation_params.dir) / path

    def _baseline_name(self) -> str:
        path = self.baselines_dir / f"{self.host_id}.json"
        try:
            return str(path.relative_to(Path(self.config.rootpath)))
        except ValueError:
            return str(path)

    def _write_markdown(self) -> None:
        """``--hostperf-markdown=PATH`` (replaced) and ``$GITHUB_STEP_SUMMARY`` (appended to)."""
        import os

        # A run without measurements (e.g. --hostperf over a unit suite) leaves the job summary alone.
        summary = os.environ.get("GITHUB_STEP_SUMMARY") if self.has_results else None
        if not self.markdown_path and not summary:
            return
        from pytest_hostperf import compare
        from pytest_hostperf._io import atomic_write_text

        doc = self.report_document()
        text = compare.render_markdown(compare.from_run(doc, self.baseline, base_name=self._baseline_name()))
        if self.markdown_path:
            path = self._out_path(self.markdown_path)
            try:
                atomic_write_text(path, text)
                self.notes.append(f"markdown report written to {path}")
            except OSError as exc:
                self.warnings.append(f"markdown report NOT written to {path}: {exc.strerror or exc}")
        if summary:
            try:
                with open(summary, "a", encoding="utf-8") as fh:
                    fh.write(text + "\n")
                self.notes.append("markdown report appended to $GITHUB_STEP_SUMMARY")
            except OSError as exc:
                self.warnings.append(f"markdown report NOT appended to $GITHUB_STEP_SUMMARY ({summary}): "
                                     f"{exc.strerror or exc}")

    def _write_plots(self) -> None:
        """``--hostperf-plot=DIR``: one PNG and one SVG per measurement group, baseline vs current."""
        from pytest_hostperf import compare
        from pytest_hostperf.errors import PlotUnavailable

        try:
            from pytest_hostperf import plots

            plots.require_matplotlib()
            run = compare.source_from_report(self.report_document(), name="this run")
            inputs = [("current", run)]
            if self.baseline is not None:
                inputs.insert(0, ("baseline", compare.source_from_baseline(self.baseline,
                                                                           name=self._baseline_name())))
            out = self._out_path(self.plot_dir or "")
            written = plots.write_plots(inputs, out)
        except PlotUnavailable as exc:
            self.warnings.append(f"plots NOT written: {exc}")
            return
        except OSError as exc:
            self.warnings.append(f"plots NOT written to {self.plot_dir}: {exc.strerror or exc}")
            return
        self.notes.append(f"plots written to {out} ({len(written)} files)")

    def _save_baseline(self) -> None:
        from pytest_hostperf import baseline
        from pytest_hostperf.errors import BaselineError

        doc = self.report_document()
        try:
            records = {r.id: baseline.measurement_record(d, r.samples) for r, d in zip(self.results, doc["results"])}
            for out in self.remote:
                records.update(out["records"])
            noise = doc.get("noise")
            run = baseline.new_run(measurements=records, fingerprint=self.fingerprint, audit=doc["host"]["audit"],
                                   timer=doc["timer"], tools=doc["tools"], concurrency=self.concurrency,
                                   commit=baseline.commit_info(Path(self.config.rootpath)),
                                   extra={"noise": {k: noise[k] for k in ("share", "probes")}} if noise else None)
            path = baseline.save_run(self.baselines_dir, self.host_id or "unknown-host", run, keep=self.keep_runs)
        except BaselineError as exc:
            self.warnings.append(f"baseline NOT saved: {exc} (the exit status is non-zero because of it)")
            self.save_failed = True
            return
        self.notes.append(f"baseline saved: {path} ({len(records)} measurements, keeps the last "
                          f"{self.keep_runs} runs)")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or (not self.has_results and not self.notes and not self.warnings):
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
        for warning in self.warnings:
            terminalreporter.write_line(f"warning: {warning}", yellow=True)


def _tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "implementation": sys.implementation.name}
    for dist in ("pytest-hostperf", "pytest", "numpy", "psutil"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions
