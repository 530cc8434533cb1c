"""The base side of ``--hostperf-against``: inside the pytest session the head started in the
base tree, each ``hostperf()`` call meets the head's call of the same name, samples in turns
with it, and sends its block statistics back. It gates nothing and writes nothing: the head
reports. The pytest hooks that run the tests the head names live in ``run/against.py``.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from pytest_hostperf.measure import sampling
from pytest_hostperf.measure.turns import BatonTurns, schedule
from pytest_hostperf.pairing.channel import FD_ENV, Channel
from pytest_hostperf.stats import paired

if TYPE_CHECKING:
    from pytest_hostperf.pairing.sides import Sampler
    from pytest_hostperf.stats.result import Result

#: Longest the base waits for the head's next command (the head's own tests run meanwhile).
IDLE_S = 3600.0


class BaseSide:
    """The base session's end of the two sockets, and its measurements in turns."""

    def __init__(self) -> None:
        # popped: a pytest this session's tests start must not take the head's sockets for its own
        ctl_fd, baton_fd = (int(x) for x in os.environ.pop(FD_ENV).split(","))
        self.ctl = Channel(socket.socket(fileno=ctl_fd), "head session")
        self.baton = socket.socket(fileno=baton_fd)

    def measure(self, name: str, sampler: Sampler, summarize: Callable[[sampling.Samples], Result],
                warm: tuple[object, ...] = ()) -> Result | None:
        """One ``hostperf()`` call of the base: meet the head's call of the same name, sample in
        turns, send the block statistics. None when the head has no such measurement."""
        self.ctl.send(ready=name)
        go = self.ctl.recv()
        if go.get("skip"):
            return None
        plan = sampling.Plan(**go["plan"], warm=warm)  # the base's own buffers: the head's are not sent
        with sampler.controlled():
            raw = sampler.sample(plan, BatonTurns("base", self.baton, schedule(plan.blocks)))
        res = summarize(raw)
        self.ctl.send(result=name, p99_blocks=[b.p99 for b in res.blocks], p50_blocks=[b.p50 for b in res.blocks],
                      sizes=list(raw.block_sizes), p99=res.p99, p50=res.p50, p999=res.p999, max=res.max, n=res.n,
                      batch=res.batch)
        while True:  # sequential stopping: the head asks for more pairs while undecided
            nxt = self.ctl.recv()
            if not nxt.get("more"):
                return res
            plan = sampling.Plan(**nxt["plan"], warm=warm)
            with sampler.controlled():
                more = sampler.sample(plan, BatonTurns("base", self.baton, schedule(plan.blocks)))
            p50s, blocks = paired.block_p50_p99s(more.values, more.block_sizes)
            self.ctl.send(result=name, p99_blocks=blocks, p50_blocks=p50s, sizes=list(more.block_sizes),
                          p99=float(np.median(blocks)))
