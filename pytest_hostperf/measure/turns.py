"""Taking turns: the paired comparison's schedule and baton, plugged into ``sampling.sample``'s
``turns`` seam.

Base and head measure the same function on one CPU, block by block, under one schedule
(:func:`schedule`: ABBA, so neither side always goes first). A side waits for the baton before
each of its blocks (a blocking read with a deadline: the waiting side never spins, which
matters at SCHED_FIFO), and after its block pauses (the RT duty cycle) and hands the baton on.

Written by hand: the turn-taking is a token over a socketpair; no library does ABBA turns
between two processes, and execnet (which pytest-xdist uses to drive sessions) carries
commands, not a low-latency baton.
"""
from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Callable, Sequence
from typing import Literal

from pytest_hostperf.errors import MeasurementError

Side = Literal["head", "base"]
#: Longest a side waits for the baton before it gives up (the other side hung or died).
WAIT_S = 30.0


def schedule(pairs: int) -> list[Side]:
    """The order of blocks for ``pairs`` block pairs: ABBA ABBA ... (head first in even pairs).

    >>> schedule(3)
    ['head', 'base', 'base', 'head', 'head', 'base']
    """
    out: list[Side] = []
    for i in range(pairs):
        out += ["head", "base"] if i % 2 == 0 else ["base", "head"]
    return out


class BatonTurns:
    """One side's :class:`measure.Turns` in a paired measurement: its blocks run only while it
    holds the baton, handed over a socketpair (or any connected socket) by the schedule.

    Both sides must be given the same ``order`` and each its own end of the pair. The side
    whose turn comes first starts with the baton. ``pause`` (seconds after a block, from its
    elapsed ns) keeps the shared CPU's duty cycle below RT throttling, as the default turns do.
    """

    def __init__(self, side: Side, sock: socket.socket, order: Sequence[Side], *,
                 pause: Callable[[int], float] = lambda ns: max(0.001, ns * 1e-9 * 0.12),
                 wait_s: float = WAIT_S, sleep: Callable[[float], None] = time.sleep) -> None:
        if side not in order:
            raise ValueError(f"side {side!r} has no block in the schedule")
        self.side: Side = side
        self.sock = sock
        self.order = list(order)
        self.pause = pause
        self.wait_s = wait_s
        self.sleep = sleep
        self.mine = [i for i, s in enumerate(self.order) if s == side]  # schedule slots of my blocks
        self.holding = self.order[0] == side
        self.waited_s = 0.0  # total time spent waiting for the other side

    def before(self, block: int) -> None:
        if block >= len(self.mine):
            raise MeasurementError(f"paired {self.side}: block {block} is beyond the schedule "
                                   f"({len(self.mine)} blocks per side)")
        if self.holding:
            return
        t0 = time.monotonic()
        ready, _, _ = select.select([self.sock], [], [], self.wait_s)
        if not ready:
            raise MeasurementError(f"paired {self.side}: the other side did not hand over its turn within "
                                   f"{self.wait_s:g} s (it hung or died)")
        data = self.sock.recv(1)
        if not data:
            raise MeasurementError(f"paired {self.side}: the other side closed the connection mid-measurement")
        self.waited_s += time.monotonic() - t0
        self.holding = True

    def end(self) -> None:
        """After this side's last block: the side whose block closes the schedule says so; the
        other waits for that word, so neither summarizes (numpy, the wire) beside a block."""
        last = len(self.order) - 1
        if self.order[last] == self.side:
            self.sock.sendall(b"e")
            return
        ready, _, _ = select.select([self.sock], [], [], self.wait_s)
        if not ready:
            raise MeasurementError(f"paired {self.side}: the other side did not finish its last block within "
                                   f"{self.wait_s:g} s (it hung or died)")
        if self.sock.recv(1) != b"e":
            raise MeasurementError(f"paired {self.side}: the other side closed the connection mid-measurement")

    def after(self, block: int, elapsed_ns: int) -> None:
        slot = self.mine[block]
        pause = self.pause(elapsed_ns)
        if pause > 0:
            self.sleep(pause)  # the CPU idles here: neither side runs
        nxt = slot + 1
        if nxt < len(self.order) and self.order[nxt] != self.side:
            self.holding = False
            self.sock.sendall(b"t")


def socketpair() -> tuple[socket.socket, socket.socket]:
    """A connected pair for the two sides (inherited by a forked child), both blocking."""
    a, b = socket.socketpair()
    for s in (a, b):
        s.setblocking(True)
        os.set_inheritable(s.fileno(), True)
    return a, b
