"""What one run hands down, and what it collects: a frozen :class:`RunContext` that every
measurement reads (settings, CPU placement, the typed baseline, the timer and counter reader),
and a :class:`RunLog` that the measuring side appends to and the output side alone reads.

pytest itself works this way: a ``Config`` passed down, results collected in one place
(``TerminalReporter.stats``) that only reporting reads. No object here is both.
"""
from __future__ import annotations

import contextlib
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_hostperf.host import control
from pytest_hostperf.measure import noise
from pytest_hostperf.run.placement import Placement
from pytest_hostperf.run.settings import RunSettings

if TYPE_CHECKING:
    from pytest_hostperf.host.audit import Check
    from pytest_hostperf.measure import counters, sampling
    from pytest_hostperf.stats.checks import SpeedupCheck
    from pytest_hostperf.stats.result import Result
    from pytest_hostperf.stats.verdict import Verdict
    from pytest_hostperf.store.disk import Baseline
    from pytest_hostperf.store.records import (
        ResultRecord,
        SpeedupRecord,
        StoredMeasurement,
        StoredRun,
        Timer,
    )


class Instruments:
    """The run's timer calibration and counter reader, each made on first use (a smoke run that
    measures nothing calibrates nothing), closed at the end of the run."""

    def __init__(self, settings: RunSettings) -> None:
        self._settings = settings
        self._timer: sampling.TimerInfo | None = None
        self._reader: counters.Reader | None = None
        self.counter_cost_ns: float | None = None

    @property
    def timer(self) -> sampling.TimerInfo:
        if self._timer is None:
            from pytest_hostperf.measure import sampling  # numpy: loaded by the first measurement

            self._timer = sampling.calibrate(pairs=20_000 if self._settings.full else 200, name="perf_counter_ns")
        return self._timer

    @property
    def reader(self) -> counters.Reader | None:
        """The measuring thread's counter reader (None when counters are off)."""
        if not (self._settings.full and self._settings.counters):
            return None
        if self._reader is None:
            from pytest_hostperf.measure import counters  # numpy: loaded by the first measurement

            self._reader = counters.Reader()
            self.counter_cost_ns = counters.read_cost_ns(self._reader)
        return self._reader

    @property
    def calibrated(self) -> sampling.TimerInfo | None:
        """The calibration if a measurement asked for it (None: nothing was measured here)."""
        return self._timer

    @property
    def opened_reader(self) -> counters.Reader | None:
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


@dataclass(frozen=True, slots=True)
class RunContext:
    """Everything a measurement of this run reads, fixed when the run starts."""
    settings: RunSettings
    placement: Placement | None
    rootdir: Path
    invocation_dir: Path
    args: tuple[str, ...]  # the command line, for the fix of a missing baseline
    instruments: Instruments
    fingerprint: dict[str, object] | None = None  # full runs only
    host_id: str | None = None
    baseline: Baseline | None = None
    stored_runs: tuple[StoredRun, ...] = ()

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

    def baseline_path(self) -> Path:
        return self.settings.baselines_dir / f"{self.host_id}.json"

    def baseline_name(self) -> str:
        """The baseline file as the user knows it: relative to the rootdir where it is inside."""
        path = self.baseline_path()
        with contextlib.suppress(ValueError):
            return str(path.relative_to(self.rootdir))
        return str(path)

    def out_path(self, given: str) -> Path:
        """An output path as given on the command line: relative to where pytest was invoked."""
        path = Path(given)
        return path if path.is_absolute() else self.invocation_dir / path

    def baseline_of(self, mid: str) -> list[StoredMeasurement]:
        """This measurement's records in the stored baseline runs, oldest first (full mode only)."""
        if not self.settings.full:
            return []
        return [run.measurements[mid] for run in self.stored_runs if mid in run.measurements]

    def baseline_noise_shares(self) -> list[float]:
        return [run.noise_share for run in self.stored_runs if run.noise_share is not None]

    def no_baseline_fix(self) -> str:
        """Where this run found no baseline and the command that records one: this run's own
        arguments plus ``--hostperf-save`` (``--hostperf-require-baseline``'s failure message)."""
        path = Path(self.baseline_name())
        where = (f"{path} does not exist (host id {self.host_id})" if self.baseline is None
                 else f"none of the {len(self.stored_runs)} run(s) in {path} has it")
        args = [a for a in self.args if a != "--hostperf-require-baseline"]
        if "--hostperf-save" not in args:
            args.append("--hostperf-save")
        return f"{where}; record it with: pytest {shlex.join(args)} (then commit {path})"


@dataclass(slots=True)
class Entry:
    """One measurement of the run: the fixture's ``Result`` (with its samples) and its record."""
    result: Result
    record: ResultRecord
    verdict: Verdict | None = None  # the gate's verdict, where it compared (settled at the run's end)


@dataclass(slots=True)
class Remote:
    """What xdist workers measured, merged by the controller."""
    results: list[ResultRecord] = field(default_factory=list)
    speedups: list[SpeedupRecord] = field(default_factory=list)
    timer: Timer | None = None


@dataclass(slots=True)
class RunLog:
    """What the run measured and has to say, appended to while it measures; read at its end."""
    entries: list[Entry] = field(default_factory=list)  # this process's measurements
    remote: Remote = field(default_factory=Remote)
    speedups: list[SpeedupCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # printed as warning lines; the run goes on
    not_applied: dict[tuple[str, str | None], control.Applied] = field(default_factory=dict)
    noise_probes: dict[str, noise.Noise] = field(default_factory=dict)
    audit: list[Check] | None = None  # the host audit, read once (the header's, or the report's)
    save_failed: bool = False

    def note(self, text: str) -> None:
        self.notes.append(text)

    def note_once(self, text: str) -> None:
        """A note the run says once, however many measurements (or xdist workers) say it."""
        if text not in self.notes:
            self.notes.append(text)

    def keep(self, entry: Entry) -> None:
        self.entries.append(entry)

    def controls_not_applied(self, applied: list[control.Applied]) -> None:
        """Remember each distinct control that could not be applied, to print its fix once
        (a lock the mlock guard skipped: once a run, with the figures of the first)."""
        for a in applied:
            if not a.applied:
                self.not_applied.setdefault(control.note_key(a), a)

    @property
    def has_results(self) -> bool:
        return bool(self.entries) or bool(self.remote.results)


def noisy(ctx: RunContext, log: RunLog) -> bool:
    """Whether the host was well noisier before the measurements than during the baseline's runs."""
    before = log.noise_probes.get("before")
    return before is not None and noise.is_noisy(before.share, ctx.baseline_noise_shares())
