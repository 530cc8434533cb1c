"""One replica session of ``--hostperf-against``: a pytest session the head started in the head
tree or the base tree, one side of one process pair. Each ``hostperf()`` call meets the head's
call of the same name, samples in turns with its partner on one CPU when told to, and sends
its samples back (the head computes their statistics, and reports the head-tree replicas'
samples as its result). It gates nothing and writes nothing: the head decides and reports. The
pytest hooks that run the tests the head names live in ``run/against.py``.
"""
from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from pytest_hostperf.measure import sampling
from pytest_hostperf.measure.turns import BatonTurns, Side, schedule
from pytest_hostperf.pairing.channel import FD_ENV, ROLE_ENV, Channel
from pytest_hostperf.pairing.wire import samples_to_wire

if TYPE_CHECKING:
    from pytest_hostperf.pairing.sides import Sampler
    from pytest_hostperf.stats.result import Result

#: Longest a replica waits for the head's next command (the head's own tests, and the other
#: process pairs' turns, run meanwhile). A head that dies closes the socket: no wait at all.
IDLE_S = 3600.0


class Replica:
    """The replica session's end of its two sockets, and its measurements in turns."""

    def __init__(self) -> None:
        # popped: a pytest this session's tests start must not take the head's sockets for its own
        ctl_fd, baton_fd = (int(x) for x in os.environ.pop(FD_ENV).split(","))
        role = os.environ.pop(ROLE_ENV, "base")
        self.role: Side = "head" if role == "head" else "base"
        self.ctl = Channel(socket.socket(fileno=ctl_fd), "head session")
        self.baton = socket.socket(fileno=baton_fd)

    def hello(self, tests: int) -> None:
        """Say this session is ready; with what the hash function gives, so the head can check
        that both sides of a process pair run under the same hash seed (read back, not assumed)."""
        self.ctl.send(hello=True, tests=tests, role=self.role, hash_check=hash("hostperf-hash-seed-check"))

    def measure(self, name: str, sampler: Sampler, summarize: Callable[[sampling.Samples], Result],
                warm: tuple[object, ...] = ()) -> Result | None:
        """One ``hostperf()`` call: meet the head's call of the same name, then do what the head
        says until it has enough: ``probe`` (time a few calls alone, say the batch size), ``go``
        (sample in turns with the partner, send the samples). None when the head has no
        such measurement or never asked for samples."""
        self.ctl.send(ready=name)
        taken: list[sampling.Samples] = []
        while True:
            msg = self.ctl.recv(timeout=IDLE_S)
            if msg.get("skip") or msg.get("enough"):
                break
            plan = sampling.Plan(**msg["plan"], warm=warm)  # this side's own buffers: the head's are not sent
            if msg.get("probe"):
                with sampler.controlled():
                    probe = sampler.sample(plan, None)
                # the time one sample takes, so the head can give a slow call fewer, longer turns
                sample_ns = float(probe.values[len(probe.values) // 2]) * probe.batch if len(probe.values) else 0.0
                self.ctl.send(probed=name, batch=probe.batch, sample_ns=sample_ns)
                continue
            with sampler.controlled() as host:
                raw = sampler.sample(plan, BatonTurns(self.role, self.baton, schedule(plan.blocks)))
            taken.append(raw)
            self.ctl.send(result=name, raw=samples_to_wire(raw), host=host.to_json())
        if not taken:
            return None
        return summarize(functools.reduce(sampling.merge, taken))
