"""The run: what every measurement of one pytest session shares, and the hooks that order it.

A thin coordinator, registered by ``plugin.py`` as ``hostperf-session`` and kept in
``config.stash``. The jobs live elsewhere: settings (``settings.py``), the fixture object
(``recorder.py``), the re-measure and failure rules (``gate.py``), the report built once and
handed to each sink (``outputs.py``), xdist's controller and worker (``xdist_roles.py``) and
pytest-benchmark (``bench_bridge.py``), each registered only when used. numpy and the
statistics load on the first measurement, not when pytest starts.
"""
from __future__ import annotations

import contextlib
from collections.abc import Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hostperf.run import options
from pytest_hostperf.run.fixture import Entry, Recorder
from pytest_hostperf.run.progress import Progress
from pytest_hostperf.run.settings import RunSettings

if TYPE_CHECKING:
    from pytest_hostperf.host.control import Applied
    from pytest_hostperf.measure.noise import Noise
    from pytest_hostperf.measure.sampling import TimerInfo
    from pytest_hostperf.run.placement import Placement
    from pytest_hostperf.stats.verdict import SpeedupCheck
    from pytest_hostperf.store.disk import Baseline
    from pytest_hostperf.store.records import Report, ResultRecord, SpeedupRecord, StoredMeasurement, StoredRun, Timer

recorder_key = pytest.StashKey[Recorder]()


class HostperfSession:
    """State of one pytest run, registered as a plugin under the name ``hostperf-session``."""

    def __init__(self, config: pytest.Config, placement: Placement | None = None) -> None:
        self.config = config
        self.settings = RunSettings.from_config(config)
        if self.settings.save and not self.settings.full:
            raise pytest.UsageError("--hostperf-save needs --hostperf: smoke runs are not measurements; "
                                    "run pytest --hostperf --hostperf-save")
        self.placement = placement
        if placement is not None and placement.cpus is not None:
            self.settings = replace(self.settings, cpus=placement.cpus)  # an xdist worker's own share
        self.max_rounds = 2  # extra sampling rounds for a regressed or inconclusive verdict
        # the status line of the measurement running now (a terminal only; workers have none)
        self.progress = Progress.of(config, enabled=self.settings.full and not self.is_worker)
        self.entries: list[Entry] = []  # this process's measurements
        self.remote: list[ResultRecord] = []  # xdist: what the workers measured (controller)
        self.remote_records: dict[str, dict[str, Any]] = {}  # xdist: their baseline records
        self.remote_speedups: list[SpeedupRecord] = []
        self.remote_timer: Timer | None = None
        self.speedups: list[SpeedupCheck] = []
        self.notes: list[str] = []
        self.warnings: list[str] = []  # printed as warning lines; the run goes on
        self.not_applied: dict[tuple[str, str | None], Applied] = {}
        self.noise_probes: dict[str, Noise] = {}
        self.report: Report | None = None  # built once, at the end of the run (outputs.py)
        self.pairing: Any = None  # against.AgainstHead under --hostperf-against
        self.pairing_base: Any = None  # against_base.BaseSide in the base session it drives
        self.confirming: dict[str, Any] = {}  # baseline commit -> against.AgainstHead that confirms against it
        self.save_failed = False
        self.audit: list[Any] | None = None
        self._timer: TimerInfo | None = None
        self._reader: Any = None
        self.counter_cost_ns: float | None = None
        self._fingerprint: dict[str, Any] | None = None
        self.host_id: str | None = None
        self.baseline: Baseline | None = None
        self.stored_runs: tuple[StoredRun, ...] = ()
        if self.settings.full:
            self._load_baseline()
        for flag, given in (("--hostperf-json", self.settings.json_path),
                            ("--hostperf-markdown", self.settings.markdown_path),
                            ("--hostperf-plot", self.settings.plot_dir)):
            if given and not self.settings.full:
                self.notes.append(f"{flag} is written only under --hostperf")
        pending = sorted(d for d in options.PENDING if options.explicitly_given(config, d))
        if pending:
            self.notes.append("declared but not yet active in this version: "
                              + ", ".join("--" + d.replace("_", "-") for d in pending))

    # -- what the suite's fixtures may read -----------------------------------------------
    @property
    def full(self) -> bool:
        return self.settings.full

    @property
    def cpus(self) -> tuple[int, ...] | None:
        """The CPUs this process measures on (``--hostperf-cpus``, or an xdist worker's share)."""
        return self.settings.cpus

    @property
    def is_worker(self) -> bool:
        return self.placement is not None and self.placement.worker is not None

    @property
    def gathered(self) -> bool:
        return self.placement is not None and self.placement.gathered

    # -- baseline ---------------------------------------------------------------------------
    def _load_baseline(self) -> None:
        from pytest_hostperf.errors import BaselineError
        from pytest_hostperf.store import disk as store
        from pytest_hostperf.store import hostid, records

        try:
            self.host_id = hostid.host_id(self.fingerprint, self.settings.host)
            if not self.settings.against:  # paired: the base is measured now, not read back
                self.baseline = store.load_if_exists(self.settings.baselines_dir, self.host_id)
        except BaselineError as exc:
            raise pytest.UsageError(f"hostperf baseline: {exc}") from None
        if self.baseline is not None:
            self.stored_runs = tuple(records.StoredRun.from_json(r) for r in self.baseline.runs)
            want = store.baseline_path(self.settings.baselines_dir, self.host_id)
            if self.baseline.path.name != want.name:
                self.notes.append(f"baseline {self.baseline.path} is named by an earlier version's id of this host "
                                  f"({self.baseline.host_id}); used as {self.host_id}'s. --hostperf-save moves it to "
                                  f"{want.name}, or: git mv {self.baseline.path} {want}")

    @property
    def fingerprint(self) -> dict[str, Any]:
        if self._fingerprint is None:
            from pytest_hostperf.host.fingerprint import fingerprint

            self._fingerprint = fingerprint()
        return self._fingerprint

    def no_baseline_fix(self) -> str:
        """Where this run found no baseline and the command that records one: this run's own
        arguments plus ``--hostperf-save`` (``--hostperf-require-baseline``'s failure message)."""
        import shlex
        from pathlib import Path

        from pytest_hostperf.run import outputs

        path = outputs.baseline_path(self)
        with contextlib.suppress(ValueError):
            path = path.relative_to(Path(self.config.rootpath))
        where = (f"{path} does not exist (host id {self.host_id})" if self.baseline is None
                 else f"none of the {len(self.stored_runs)} run(s) in {path} has it")
        args = [str(a) for a in self.config.invocation_params.args if str(a) != "--hostperf-require-baseline"]
        if "--hostperf-save" not in args:
            args.append("--hostperf-save")
        return f"{where}; record it with: pytest {shlex.join(args)} (then commit {path})"

    def baseline_of(self, mid: str) -> list[StoredMeasurement]:
        """This measurement's records in the stored baseline runs, oldest first (full mode only)."""
        if not self.settings.full:
            return []
        return [run.measurements[mid] for run in self.stored_runs if mid in run.measurements]

    # -- measurement ------------------------------------------------------------------------
    @property
    def timer(self) -> TimerInfo:
        """The timer calibration, measured once per session on first use."""
        if self._timer is None:
            from pytest_hostperf.measure import sampling as measure

            self._timer = measure.calibrate(pairs=20_000 if self.settings.full else 200, name="perf_counter_ns")
        return self._timer

    @property
    def reader(self) -> Any:
        """The counter reader of the measuring thread, opened on first use (None when off)."""
        if not (self.settings.full and self.settings.counters):
            return None
        if self._reader is None:
            from pytest_hostperf.measure import counters

            self._reader = counters.Reader()
            self.counter_cost_ns = counters.read_cost_ns(self._reader)
        return self._reader

    @property
    def calibrated(self) -> TimerInfo | None:
        """The timer calibration if a measurement asked for it (None: nothing was measured here)."""
        return self._timer

    @property
    def opened_reader(self) -> Any:
        """The counter reader if a measurement opened it, else None (``reader`` opens it)."""
        return self._reader

    def close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()

    def confirmer(self, sha: str) -> Any:
        """The paired session that re-measures flagged measurements against the baseline's commit
        ``sha``, started on first use; None when ``sha`` is not a commit of this repository."""
        if sha not in self.confirming:
            import subprocess

            from pytest_hostperf.pairing.head import GIT_S, AgainstHead

            known = subprocess.run(["git", "-C", str(self.config.rootpath), "cat-file", "-e", f"{sha}^{{commit}}"],
                                   capture_output=True, timeout=GIT_S, stdin=subprocess.DEVNULL, check=False)
            if known.returncode != 0:
                self.confirming[sha] = None
            else:
                self.confirming[sha] = head = AgainstHead(self, sha, self.settings.against_python, lead=False)
                self.config.pluginmanager.register(head, f"hostperf-confirm-{sha[:12]}")
        return self.confirming[sha]

    def keep(self, entry: Entry) -> None:
        self.entries.append(entry)

    def note_controls(self, applied: list[Applied]) -> None:
        """Remember each distinct control that could not be applied, to print its fix once
        (a lock the mlock guard skipped: once a run, with the figures of the first)."""
        from pytest_hostperf.host.control import note_key

        for a in applied:
            if not a.applied:
                self.not_applied.setdefault(note_key(a), a)

    # -- host noise -------------------------------------------------------------------------
    def probe_noise(self, when: str) -> None:
        """rtla-osnoise-style probe on the measuring CPU (see noise.py), before/after the tests."""
        if not (self.settings.full and self.settings.noise) or self.is_worker:
            return
        from pytest_hostperf.host import control
        from pytest_hostperf.measure import noise

        with control.pinned(self.settings.cpus):
            self.noise_probes[when] = noise.probe()

    def baseline_noise_shares(self) -> list[float]:
        return [run.noise_share for run in self.stored_runs if run.noise_share is not None]

    @property
    def noisy(self) -> bool:
        """Whether the host was well noisier before the measurements than during the baseline's runs."""
        from pytest_hostperf.measure import noise

        before = self.noise_probes.get("before")
        return before is not None and noise.is_noisy(before.share, self.baseline_noise_shares())

    @property
    def has_results(self) -> bool:
        return bool(self.entries) or bool(self.remote)

    # -- hooks ------------------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.probe_noise("before")

    def pytest_report_header(self, config: pytest.Config) -> list[str] | str:
        if self.settings.full:
            from pytest_hostperf.host import audit

            self.audit = audit.audit()
            return [f"hostperf: full measurement ({self.settings.samples} samples, {self.settings.max_time:g} s "
                    "budget per measurement)", "hostperf " + audit.audit_summary(self.audit)]
        return "hostperf: smoke mode (hostperf tests make a few calls; --hostperf measures and gates)"

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        """After a test: its measurements in the JUnit properties, and its failures and warnings."""
        from pytest_hostperf.gate import stored as gate

        try:
            outcome = yield
        finally:  # also when the test failed after measuring: JUnit shows what was measured
            rec = item.stash.get(recorder_key, None)
            if rec is not None and self.settings.full:
                item.user_properties.extend(gate.junit_properties(rec))
        if rec is not None and self.settings.full:
            failures = gate.outcome(rec, strict=self.settings.strict)
            if self.settings.require_baseline and not (self.settings.save or self.settings.against):
                failures += gate.missing_baselines(rec, fix=self.no_baseline_fix())
            if failures:
                pytest.fail("\n".join(failures), pytrace=False)
        return outcome

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.progress.end()  # before pytest writes the outcome: also when the test raised mid-measurement

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.progress.end()
        if self.is_worker:
            return  # the worker role sends the measurements home; the controller reports
        from pytest_hostperf.run import outputs

        outputs.finish(self, session)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or (not self.has_results and not self.notes and not self.warnings):
            return
        from pytest_hostperf.run import outputs

        outputs.terminal(self, terminalreporter)
