"""The run's hooks: one plugin object that builds the run's context once, picks its gate, hands
each test a ``hostperf`` fixture, and at the end hands the log to the outputs.

Registered by ``plugin.py`` as ``hostperf-session`` and kept in ``config.stash``. The jobs live
elsewhere: what a measurement reads (``context.RunContext``, frozen) and what the run collects
(``context.RunLog``, read only by ``outputs``), the fixture object (``fixture``), the gate
(``gate/``), xdist's and the pairing's sides (``xdist``, ``against``), pytest-benchmark
(``bench/``). numpy, the statistics and the gate load on the first measurement, not when
pytest starts: those imports stand in the functions that use them.
"""
from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_hostperf.errors import BaselineError
from pytest_hostperf.host import audit, control
from pytest_hostperf.host.fingerprint import fingerprint
from pytest_hostperf.measure import noise
from pytest_hostperf.pairing import worktree
from pytest_hostperf.run import outputs
from pytest_hostperf.run.against import HeadRole, ReplicaGate, base_args, benchmark_args, test_paths
from pytest_hostperf.run.context import Entry, Instruments, RunContext, RunLog, noisy
from pytest_hostperf.run.fixture import MAX_ROUNDS, Recorder, rounds_plan, sampling_plan
from pytest_hostperf.run.placement import Placement
from pytest_hostperf.run.progress import Progress
from pytest_hostperf.run.settings import RunSettings

if TYPE_CHECKING:
    from pytest_hostperf.gate.confirm import Confirmation
    from pytest_hostperf.gate.seam import Gate
    from pytest_hostperf.pairing.head import AgainstHead
    from pytest_hostperf.pairing.replica import Replica
    from pytest_hostperf.store.records import Report

recorder_key = pytest.StashKey[Recorder]()


def build_context(config: pytest.Config, settings: RunSettings, placement: Placement | None) -> RunContext:
    """The run's context: settings, placement, and (measuring) this host's id and typed baseline."""
    if settings.save and not settings.full:
        raise pytest.UsageError("--hostperf-save needs --hostperf: smoke runs are not measurements; "
                                "run pytest --hostperf --hostperf-save")
    if placement is not None and placement.cpus is not None:
        settings = replace(settings, cpus=placement.cpus)  # an xdist worker's own share
    ctx = RunContext(settings=settings, placement=placement, rootdir=Path(config.rootpath),
                     invocation_dir=Path(config.invocation_params.dir),
                     args=tuple(str(a) for a in config.invocation_params.args), instruments=Instruments(settings))
    if not settings.full:
        return ctx
    from pytest_hostperf.store import disk, hostid  # numpy: only a measuring run reads baselines

    fp = fingerprint()
    try:
        host = hostid.host_id(fp, settings.host)
        # paired: the base is measured now, not read back
        baseline = None if settings.against else disk.load_if_exists(settings.baselines_dir, host)
    except BaselineError as exc:
        raise pytest.UsageError(f"hostperf baseline: {exc}") from None
    runs = tuple(baseline.runs) if baseline is not None else ()
    return replace(ctx, fingerprint=fp, host_id=host, baseline=baseline, stored_runs=runs)


class HostperfSession:
    """One pytest run, registered as a plugin under the name ``hostperf-session``."""

    def __init__(self, config: pytest.Config, placement: Placement | None = None) -> None:
        self.config = config
        self.ctx = build_context(config, RunSettings.from_config(config), placement)
        self.log = RunLog()
        # the status line of the measurement running now (a terminal only; workers have none)
        self.progress = Progress.of(config, enabled=self.ctx.full and not self.ctx.is_worker)
        self.pairing: AgainstHead | None = None  # --hostperf-against: the head's side
        self.replica: Replica | None = None  # in a replica session a paired head started
        self.confirming: dict[str, AgainstHead | None] = {}  # baseline commit -> its paired session
        self._gate: Gate | None = None
        self._rounds_gate: Gate | None = None
        self._confirm: Confirmation | None = None
        self.report: Report | None = None  # built once, at the end of the run (outputs.finish)
        if self.ctx.baseline is not None:
            want = self.ctx.baseline_path()
            if self.ctx.baseline.path.name != want.name:
                self.log.note(f"baseline {self.ctx.baseline.path} is named by an earlier version's id of this host "
                              f"({self.ctx.baseline.host_id}); used as {self.ctx.host_id}'s. --hostperf-save moves "
                              f"it to {want.name}, or: git mv {self.ctx.baseline.path} {want}")
        for flag, given in (("--hostperf-json", self.ctx.settings.json_path),
                            ("--hostperf-markdown", self.ctx.settings.markdown_path),
                            ("--hostperf-plot", self.ctx.settings.plot_dir)):
            if given and not self.ctx.full:
                self.log.note(f"{flag} is written only under --hostperf")

    # -- the gate ---------------------------------------------------------------------------
    def gate(self) -> Gate:
        """The run's way of comparing measurements, chosen once, on the first measurement."""
        if self._gate is None:
            self._gate = self._choose_gate()
        return self._gate

    def _choose_gate(self) -> Gate:
        from pytest_hostperf.gate import seam  # numpy: loaded by the first measurement

        ctx = self.ctx
        if not ctx.full:
            return seam.Ungated()
        if self.replica is not None:
            return ReplicaGate(self.replica)
        if self.pairing is not None:
            from pytest_hostperf.gate.paired import PairedGate  # numpy: loaded where first used

            return PairedGate(self.pairing, self.progress)
        from pytest_hostperf.gate.stored import StoredGate  # numpy: loaded where first used

        return StoredGate(baseline_of=ctx.baseline_of, gated=ctx.settings.gate, strict=ctx.settings.strict,
                          by_noise=not ctx.settings.save, noisy=lambda: noisy(self.ctx, self.log),
                          progress=self.progress, note_once=self.log.note_once,
                          confirmation=self._confirmation() if ctx.settings.confirm else None,
                          max_rounds=MAX_ROUNDS, runs_created=[run.created_utc for run in ctx.stored_runs])

    def rounds_gate(self) -> Gate:
        """pytest-benchmark's rounds' gate (a test's rounds timed by pytest-benchmark), made once."""
        if self._rounds_gate is None:
            self._rounds_gate = self._make_rounds_gate()
        return self._rounds_gate

    def _make_rounds_gate(self) -> Gate:
        from pytest_hostperf.gate.rounds import RoundsGate  # numpy: loaded where first used

        ctx = self.ctx
        return RoundsGate(baseline_of=ctx.baseline_of, gated=ctx.settings.gate, noisy=lambda: noisy(ctx, self.log),
                          max_rounds=MAX_ROUNDS, note=self.log.note, note_once=self.log.note_once,
                          confirmation=self._confirmation() if ctx.settings.confirm else None,
                          runs_created=[run.created_utc for run in ctx.stored_runs])

    def _confirmation(self) -> Confirmation:
        """The run's one ``Confirmation`` (both gates and the end-of-run settlement share it)."""
        if self._confirm is None:
            self._confirm = self._make_confirmation()
        return self._confirm

    def _make_confirmation(self) -> Confirmation:
        from pytest_hostperf.gate.confirm import Confirmation  # numpy: loaded where first used
        from pytest_hostperf.store import provenance  # numpy: loaded where first used

        sha = self.ctx.stored_runs[-1].commit.sha if self.ctx.stored_runs else None

        def at_sha() -> bool:
            now = provenance.commit_info(self.ctx.rootdir)
            return now.get("sha") == sha and now.get("dirty") is False

        return Confirmation(sha, at_sha=at_sha, head_for=self.confirmer, note=self.log.note_once)

    def confirmer(self, sha: str) -> AgainstHead | None:
        """The paired session that re-measures flagged measurements against the baseline's commit
        ``sha``, started on first use; None when ``sha`` is not a commit of this repository."""
        if sha not in self.confirming:
            from pytest_hostperf.pairing.head import AgainstHead  # numpy: loaded where first used

            if not worktree.is_commit(sha, self.ctx.rootdir):
                self.confirming[sha] = None
            else:
                self.confirming[sha] = head = AgainstHead(
                    sha, rootdir=self.ctx.rootdir, base_args=base_args(self.ctx.settings, benchmark_args(self.config)),
                    python=self.ctx.settings.against_python, tolerance=self.ctx.settings.tolerance,
                    progress=self.progress, note=self.log.note, lead=False, pairs=self.ctx.settings.pairs,
                    paths=test_paths(self.config))
                self.config.pluginmanager.register(HeadRole(head, lazy=True), f"hostperf-confirm-{sha[:12]}")
        return self.confirming[sha]

    def recorder(self, item: pytest.Item) -> Recorder:
        """The ``hostperf`` fixture of ``item`` (one per test, kept in its stash)."""
        rec = item.stash.get(recorder_key, None)
        if rec is None:
            rec = Recorder(self.ctx, self.log, self.gate(), item,
                           rounds_gate=self.rounds_gate() if self.ctx.full else None,
                           records_only=not self.ctx.full or self.replica is not None,
                           progress_end=self.progress.end)
            item.stash[recorder_key] = rec
        return rec

    # -- host noise -------------------------------------------------------------------------
    def probe_noise(self, when: str) -> None:
        """rtla-osnoise-style probe on the measuring CPU (see measure/noise.py), before/after the tests."""
        if not (self.ctx.full and self.ctx.settings.noise) or self.ctx.is_worker:
            return

        with control.pinned(self.ctx.settings.cpus):
            self.log.noise_probes[when] = noise.probe()

    # -- hooks ------------------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.probe_noise("before")

    def pytest_report_header(self, config: pytest.Config) -> list[str] | str:
        if self.ctx.full:
            self.log.audit = audit.audit()
            s = self.ctx.settings
            return [f"hostperf: full measurement ({s.samples} samples, {s.max_time:g} s budget per measurement)",
                    "hostperf " + audit.audit_summary(self.log.audit)]
        return "hostperf: smoke mode (hostperf tests make a few calls; --hostperf measures and gates)"

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, object]:
        """After a test: its measurements in the JUnit properties, and its failures and warnings."""
        try:
            outcome = yield
        finally:  # also when the test failed after measuring: JUnit shows what was measured
            rec = item.stash.get(recorder_key, None)
            if rec is not None and self.ctx.full:
                item.user_properties.extend(rec.junit_properties())
        if rec is not None and self.ctx.full:
            s = self.ctx.settings
            failures = rec.failures(strict=s.strict)
            if s.require_baseline and not (s.save or s.against):
                failures += rec.missing_baselines(fix=self.ctx.no_baseline_fix())
            if failures:
                pytest.fail("\n".join(failures), pytrace=False)
        return outcome

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.progress.end()  # before pytest writes the outcome: also when the test raised mid-measurement

    def settle_stored(self, session: pytest.Session) -> None:
        """Stored ``inconclusive`` and ``improved`` verdicts, re-measured paired against the
        baseline's commit now that every test has run: furthest from ``unchanged`` first, at most
        ``--hostperf-settle`` of them; a pairing that decides is the verdict. A regression found
        so fails the run (its test already passed on the stored verdict: the summary says so)."""
        import math

        from pytest_hostperf.gate.rounds import RoundsGate  # numpy: loaded by the first measurement
        from pytest_hostperf.gate.stored import StoredGate  # numpy: loaded by the first measurement
        from pytest_hostperf.store import records  # numpy: loaded by the first measurement

        if not isinstance(self._gate or self._rounds_gate, (StoredGate, RoundsGate)) or not self.ctx.settings.confirm:
            return  # no measurement was compared with a stored baseline, or --hostperf-no-confirm
        confirmation = self._confirmation()
        todo = [(i, e) for i, e in enumerate(self.log.entries)
                if e.verdict is not None and e.verdict.status in ("inconclusive", "improved")
                and e.verdict.stat == "p99" and e.verdict.ratio is not None and e.record.host is not None]
        if not todo:
            return
        budget = self.ctx.settings.settle
        why = confirmation.unpairable()
        if why:
            self.log.note(f"{len(todo)} stored inconclusive or improved verdict(s) not settled paired: {why}")
            return
        todo.sort(key=lambda ie: -abs(math.log(ie[1].verdict.ratio)))  # type: ignore[union-attr, arg-type]
        plan = sampling_plan(self.ctx.settings, None)
        # pytest-benchmark's rounds: as many as fill its own time budget on each side
        rounds = rounds_plan(float(self.config.getoption("benchmark_max_time", 1.0) or 1.0))
        regressed = []
        for n, (i, e) in enumerate(todo):
            assert e.verdict is not None
            if n < budget:
                self.progress.begin(e.result.id)
                timed_by = e.record.host.timed_by if e.record.host is not None else None
                v = confirmation.settle(e.verdict, nodeid=e.result.nodeid, mid=e.result.id, name=e.result.name,
                                             plan=rounds if timed_by == "pytest-benchmark" else plan)
                self.progress.end()
            else:
                v = replace(e.verdict, reason=f"{e.verdict.reason}; not settled paired: the run's settle budget "
                                              f"({budget}, --hostperf-settle) was spent on verdicts further from "
                                              "unchanged")
            if v.status == "regressed":
                regressed.append(e.result.id)
            record = replace(e.record, verdict=records.VerdictRecord.of(v, e.record.verdict.extra_rounds
                                                                        if e.record.verdict else 0))
            self.log.entries[i] = Entry(e.result, record, v)
        if regressed:
            self.log.warnings.append(f"settled paired at the end of the run, {len(regressed)} stored verdict(s) "
                                     f"turned out regressed: {', '.join(regressed)} (their tests had passed on the "
                                     "stored verdict; the run fails)")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.progress.end()
        if self.ctx.is_worker or self.replica is not None:
            return  # the worker role sends the measurements home; a replica's head reports
        if self.log.has_results and self.ctx.full and self.ctx.settings.settle and not self.ctx.settings.save:
            self.settle_stored(session)
        if self.log.has_results:
            self.probe_noise("after")
        self.ctx.instruments.close()
        self.report = outputs.finish(self.ctx, self.log, session)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        quiet = not self.log.has_results and not self.log.notes and not self.log.warnings
        if self.ctx.is_worker or self.replica is not None or quiet:
            return
        outputs.write_terminal(self.ctx, self.log, self.report, terminalreporter)
