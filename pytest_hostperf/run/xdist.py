"""pytest-xdist's two sides, each its own plugin object, registered only when xdist distributes
(as pytest-xdist registers its ``DSession`` / ``WorkerInteractor``).

A worker measures on its own CPUs, writes nothing, and sends its results home in
``workeroutput``; the controller merges them into the run before the outputs are written.
Placement rules (which CPUs, when to gather) are pure functions in ``workers.py``.
"""
from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest

from pytest_hostperf.run import outputs
from pytest_hostperf.run import placement as workers
from pytest_hostperf.run.context import RunContext, RunLog


class WorkerRole:
    """Inside an xdist worker: confine the worker to its CPUs, group the hostperf tests when
    gathering, and send the measurements home at the end."""

    def __init__(self, config: pytest.Config, ctx: RunContext, log: RunLog) -> None:
        self.config = config
        self.ctx = ctx
        self.log = log
        self._affinity: set[int] | None = None
        if ctx.cpus and not ctx.gathered:
            self._confine(ctx.cpus)

    def _confine(self, cpus: tuple[int, ...]) -> None:
        """Keep the whole worker on its share of CPUs, so the threads and child processes its
        tests start (ping-pong peers, echo threads) never run on another worker's CPUs.
        Restored at the end of the worker's session."""
        if not hasattr(os, "sched_setaffinity"):
            return
        try:
            before = os.sched_getaffinity(0)
            os.sched_setaffinity(0, cpus)
        except OSError as exc:
            self.log.warnings.append(f"xdist worker not confined to cpus {','.join(map(str, cpus))}: "
                                     f"{exc.strerror or exc}")
            return
        self._affinity = before

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """With more workers than CPUs, give hostperf tests the ``@hostperf`` node id suffix that
        xdist's loadgroup scheduler sends to one worker. Runs after xdist's own hook: that one
        cannot set the suffix on pytest >= 9.2 (see ``workers.tag_group``)."""
        if not self.ctx.gathered:
            return
        for item in items:
            names = getattr(item, "fixturenames", ())
            if "hostperf" in names or "benchmark" in names or item.get_closest_marker("hostperf"):
                item.add_marker(pytest.mark.xdist_group(workers.GROUP))
                workers.tag_group(item, workers.GROUP)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        try:
            self._send_home()
        finally:
            if self._affinity:
                os.sched_setaffinity(0, self._affinity)
                self._affinity = None

    def _send_home(self) -> None:
        """Put this worker's results (each with the histogram of its samples, encoded here where
        the samples are) into ``workeroutput``; the controller reports and saves."""
        me = str(self.config.workerinput["workerid"])  # type: ignore[attr-defined]
        report = outputs.build_report(self.ctx, self.log)
        results = [replace(r, worker=me) for r in report.results]
        self.config.workeroutput[workers.OUTPUT_KEY] = {  # type: ignore[attr-defined]
            "worker": me, "cpus": list(self.ctx.cpus or ()), "results": [r.to_json() for r in results],
            "timer": None if report.timer is None else report.timer.to_json(),
            "speedups": [s.to_json() for s in report.speedups], "notes": list(self.log.notes),
            "warnings": list(self.log.warnings), "not_applied": [a.as_dict() for a in self.log.not_applied.values()]}


class ControllerRole:
    """In the controller: collect what each worker sent and merge it into the run before the
    outputs are written (its ``pytest_sessionfinish`` runs first)."""

    def __init__(self, ctx: RunContext, log: RunLog) -> None:
        self.ctx = ctx
        self.log = log
        self.outs: list[dict[str, Any]] = []

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        out = getattr(node, "workeroutput", {}).get(workers.OUTPUT_KEY)
        if out:
            self.outs.append(out)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from pytest_hostperf.store import records  # numpy: loaded where first used

        ctx, log = self.ctx, self.log
        for out in self.outs:  # in the order the workers ended
            log.remote.results.extend(records.ResultRecord.from_json(r) for r in out.get("results", ()))
            log.remote.speedups.extend(records.SpeedupRecord.from_json(s) for s in out.get("speedups", ()))
            if log.remote.timer is None:
                log.remote.timer = records.Timer.from_json(out.get("timer"))
            for line in out.get("notes", ()):
                if line not in log.notes:
                    log.notes.append(line)
            for line in out.get("warnings", ()):
                if line not in log.warnings:
                    log.warnings.append(line)
            log.controls_not_applied([records.applied_from_json(a) for a in out.get("not_applied", ())])
        measured_on = [r.worker or "?" for r in log.remote.results]
        if not measured_on or ctx.placement is None:
            return
        line, bad = workers.placement_note(ctx.placement.workers, ctx.placement.usable_cpus, measured_on,
                                           ctx.placement.gathered, paired=bool(ctx.settings.against))
        if not ctx.placement.gathered:
            line += " (" + ", ".join(f"{o.get('worker')} cpus {','.join(map(str, o.get('cpus') or ())) or '-'}"
                                     for o in sorted(self.outs, key=lambda o: str(o.get("worker")))
                                     if o.get("results")) + ")"
        (log.warnings if bad else log.notes).append(line)
