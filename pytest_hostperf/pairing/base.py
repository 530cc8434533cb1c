"""The base side of ``--hostperf-against``: a pytest session in the base tree, driven by the head.

Loaded with ``-p pytest_hostperf.pairing.base`` by ``pairing.head.Base``; inert unless the head
passed its sockets (``against.FD_ENV``). It replaces pytest's test loop: it runs the test the
head names, and each ``hostperf()`` call of that test waits for the head to ``go``, then
samples taking turns with the head. It gates nothing and writes nothing: the head reports.
"""
from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from pytest_hostperf.pairing.head import FD_ENV, Channel

if TYPE_CHECKING:
    from pytest_hostperf.measure.sampling import TimerInfo
    from pytest_hostperf.run.session import HostperfSession
    from pytest_hostperf.run.settings import Controls
    from pytest_hostperf.stats.result import Result

#: Longest the base waits for the head's next command (the head's own tests run meanwhile).
IDLE_S = 3600.0


class BaseSide:
    """Runs the tests the head asks for; measures in turns with it."""

    def __init__(self, run: HostperfSession) -> None:
        # popped: a pytest this session's tests start must not take the head's sockets for its own
        ctl_fd, baton_fd = (int(x) for x in os.environ.pop(FD_ENV).split(","))
        self.run = run
        self.ctl = Channel(socket.socket(fileno=ctl_fd), "head session")
        self.baton = socket.socket(fileno=baton_fd)
        self.outcome = "passed"

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        from pytest_hostperf.run import placement
        if session.testsfailed:
            self.ctl.send(error=f"collection failed in the base tree ({session.testsfailed} error(s))")
            return True
        items = {placement.ungrouped(i.nodeid): i for i in session.items}
        self.ctl.send(hello=True, tests=len(items))
        while True:
            msg = self.ctl.recv(timeout=IDLE_S)
            if msg.get("quit"):
                return True
            item = items.get(str(msg.get("run")))
            if item is None:
                self.ctl.send(done="missing")
                continue
            self.outcome = "passed"
            item.ihook.pytest_runtest_protocol(item=item, nextitem=None)
            self.ctl.send(done=self.outcome)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.outcome = "failed" if report.when == "call" else "error"
        elif report.skipped and self.outcome == "passed":
            self.outcome = "skipped"

    def measure(self, name: str, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], *, controls: Controls,
                timer: TimerInfo, self_timed: bool, summarize: Any, warm: tuple[Any, ...] = ()) -> Result | None:
        """One ``hostperf()`` call of the base: meet the head's call of the same name, sample in
        turns, send the block statistics. None when the head has no such measurement."""
        from pytest_hostperf.measure import sampling as measure
        from pytest_hostperf.run.fixture import controlled
        from pytest_hostperf.stats import paired

        self.ctl.send(ready=name)
        go = self.ctl.recv()
        if go.get("skip"):
            return None
        plan = measure.Plan(**go["plan"], warm=warm)  # the base's own buffers: the head's are not sent
        turns = paired.BatonTurns("base", self.baton, paired.schedule(plan.blocks))
        with controlled(self.run, controls):
            raw = measure.sample(fn, args, kwargs, plan=plan, timer=timer, self_timed=self_timed, turns=turns)
        res: Result = summarize(raw)
        self.ctl.send(result=name, p99_blocks=[b.p99 for b in res.blocks], p50_blocks=[b.p50 for b in res.blocks],
                      sizes=list(raw.block_sizes), p99=res.p99, p50=res.p50, p999=res.p999, max=res.max, n=res.n,
                      batch=res.batch)
        while True:  # sequential stopping: the head asks for more pairs while undecided
            nxt = self.ctl.recv()
            if not nxt.get("more"):
                return res
            plan = measure.Plan(**nxt["plan"], warm=warm)
            turns = paired.BatonTurns("base", self.baton, paired.schedule(plan.blocks))
            with controlled(self.run, controls):
                more = measure.sample(fn, args, kwargs, plan=plan, timer=timer, self_timed=self_timed, turns=turns)
            p50s, blocks = paired.block_p50_p99s(more.values, more.block_sizes)
            self.ctl.send(result=name, p99_blocks=blocks, p50_blocks=p50s, sizes=list(more.block_sizes),
                          p99=float(np.median(blocks)))


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get(FD_ENV):
        return
    from pytest_hostperf.plugin import session_key

    run = config.stash[session_key]
    run.pairing_base = side = BaseSide(run)
    config.pluginmanager.register(side, "hostperf-against-base")
