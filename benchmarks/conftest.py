"""Shared helpers of the benchmark suite."""
from __future__ import annotations

import os

import pytest

from pytest_hostperf.run.context import RunContext


@pytest.fixture
def cpu_pair(hostperf_context: RunContext) -> tuple[int, int]:
    """(measuring CPU, peer CPU) for the cross-process round trips.

    hostperf pins the measuring thread to the last of its CPUs (``--hostperf-cpus``, else the
    allowed set); the peer process goes on another CPU so the round trip crosses cores. Under
    ``pytest -n N`` a worker owns only its share of the CPUs: the peer stays inside that share,
    on the same CPU when the share is one CPU (the round trip then measures a same-core hand-off,
    and the baseline's concurrency says so), never on a CPU another worker is measuring on.
    """
    session = hostperf_context
    allowed = sorted(os.sched_getaffinity(0))
    own = sorted(session.cpus) if session.cpus else allowed
    mine = own[-1]
    if session.is_worker and not session.gathered:
        peers = [c for c in own if c != mine]
        return mine, (peers[-1] if peers else mine)
    peers = [c for c in allowed if c != mine]
    if not peers:
        pytest.skip(f"needs 2 allowed CPUs for a cross-core round trip; this process may use only {allowed}")
    return mine, peers[-1]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Reap multiprocessing's resource tracker, if the IPC benchmarks' spawned children started
    it: it is this process's child and would exit only after pytest, as a zombie wherever the
    container's PID 1 does not reap (found with farm-bench, which saw it left in the process
    group). Closing its pipe ends it; the wait is bounded (5 s), never blocking."""
    import time
    from multiprocessing import resource_tracker

    tracker = getattr(resource_tracker, "_resource_tracker", None)
    fd, pid = getattr(tracker, "_fd", None), getattr(tracker, "_pid", None)
    if tracker is None or fd is None or pid is None:
        return
    os.close(fd)
    tracker._fd = None
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere
            done = pid
        if done:
            tracker._pid = None
            return
        time.sleep(0.01)
