"""The wire between the two sessions of ``--hostperf-against``: JSON lines over a socket pair,
every receive bounded by a deadline, and the environment that hands the base its sockets."""
from __future__ import annotations

import json
import os
import select
import socket
import time
from typing import Any

from pytest_hostperf.errors import HostperfError, MeasurementError

#: Longest wait for one message from the other side (a test's set-up before its first
#: measurement counts here too); ``HOSTPERF_PAIRING_WAIT_S`` overrides it (tests use it).
WAIT_S = 60.0
WAIT_ENV = "HOSTPERF_PAIRING_WAIT_S"
FD_ENV = "HOSTPERF_PAIRING_FDS"
TREE_ENV = "HOSTPERF_PAIRING_TREE"
ROLE_ENV = "HOSTPERF_PAIRING_ROLE"  # "head" or "base": which tree a replica session runs
#: Padding that makes both sides of a process pair start with environments and arguments of one
#: size (the stack's start moves with them: Mytkowicz et al., ASPLOS 2009).
PAD_ENV = "HOSTPERF_PAIRING_PAD"
#: One message: a JSON object.
Json = dict[str, Any]


class PairingError(HostperfError, RuntimeError):
    """The paired comparison could not run (no base tree, the base session died or hung)."""


def started_by_head() -> bool:
    """Whether this process is a replica session a head started (it passed its sockets)."""
    return bool(os.environ.get(FD_ENV))


def wait_s() -> float:
    try:
        return float(os.environ.get(WAIT_ENV, WAIT_S))
    except ValueError:
        return WAIT_S


class Channel:
    """JSON lines over a connected socket; every receive has a deadline."""

    def __init__(self, sock: socket.socket, who: str, timeout: float | None = None) -> None:
        self.sock = sock
        self.who = who
        self.timeout = wait_s() if timeout is None else timeout
        self._buf = b""

    def send(self, **msg: Any) -> None:
        self.sock.sendall(json.dumps(msg).encode() + b"\n")

    def recv(self, timeout: float | None = None) -> Json:
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.sock], [], [], max(left, 0))
            if not ready:
                raise MeasurementError(f"paired: no word from the {self.who} within {timeout:g} s (it hung)")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise MeasurementError(f"paired: the {self.who} closed the connection (it exited or was killed)")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        msg = json.loads(line)
        if not isinstance(msg, dict):
            raise MeasurementError(f"paired: unexpected message from the {self.who}: {line[:200]!r}")
        return msg


