"""Interrupted while SCHED_FIFO, pinned and memory-locked: seen from outside, all of it is undone.

The run is signalled from outside at the moment a measuring process is seen at SCHED_FIFO
(so inside a measurement), then holds still in a barrier -- a ``pytest_keyboard_interrupt``
hook for Ctrl-C, the next test for a pytest-timeout SIGALRM -- while this process reads every
thread's policy, priority and affinity with ``os.sched_getscheduler(tid)`` and friends, and
``VmLck`` from ``/proc/<pid>/status``. Under ``-n 2`` the same holds for each xdist worker.
"""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psutil
import pytest

from pytest_hostperf.host.control import rt_available

from .conftest import Driver, inner_pytest, is_fifo, make_project, thread_states, vm_locked_kib, wait_until

needs_rt = pytest.mark.skipif(not rt_available().available,
                              reason=f"SCHED_FIFO is not permitted here: {rt_available().reason}")
needs_two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2,
                                    reason="pinning is only visible with 2 or more allowed CPUs")

BARRIER_CONFTEST = """
import json, os, time
from pathlib import Path


def barrier(tag):
    # Say where we are, then hold still (bounded) while the test looks at us from outside.
    name = f"{tag}-{os.getpid()}"
    Path(f"{name}.tmp").write_text(json.dumps({"policy": os.sched_getscheduler(0),
                                               "affinity": sorted(os.sched_getaffinity(0))}))
    os.rename(f"{name}.tmp", f"{name}.json")
    deadline = time.monotonic() + 60
    while not Path("go").exists() and time.monotonic() < deadline:
        time.sleep(0.005)


def pytest_keyboard_interrupt(excinfo):
    barrier("interrupted")
"""

LONG_MEASUREMENTS = """
import time
import pytest


@pytest.mark.timeout(300, method="signal")
@pytest.mark.parametrize("i", [0, 1])
def test_measure(hostperf, i):
    hostperf(time.sleep, 0.0002, name="sleep")  # 20 s of sampling: the signal comes long before


def test_barrier():
    from conftest import barrier
    barrier("after")
"""

def _children(pid: int, n: int) -> list[int] | None:
    """The pids of the ``n`` child processes of ``pid`` (xdist workers), once all have started."""
    try:
        kids = [c.pid for c in psutil.Process(pid).children()]
    except psutil.NoSuchProcess:
        return None
    return kids if len(kids) == n else None


CASES = [
    pytest.param(signal.SIGINT, "interrupted", 0, id="SIGINT"),
    pytest.param(signal.SIGALRM, "after", 0, id="pytest-timeout-SIGALRM"),
    pytest.param(signal.SIGINT, "interrupted", 2, id="SIGINT-xdist-workers"),
]


@needs_rt
@needs_two_cpus
@pytest.mark.parametrize(("sig", "barrier", "workers"), CASES)
def test_interrupt_at_fifo_restores_policy_priority_affinity_and_memory(
        tmp_path: Path, driver: Driver, sig: int, barrier: str, workers: int) -> None:
    proj = make_project(tmp_path / "proj", LONG_MEASUREMENTS, conftest=BARRIER_CONFTEST, samples=10**6,
                        max_time=20)
    cpu = min(os.sched_getaffinity(0))  # not the default (last) CPU: the pin is unmistakable
    args = ["--hostperf", f"--hostperf-cpus={cpu}", "--hostperf-rt=49", "-p", "timeout", "-p", "no:benchmark"]
    if workers:
        args += ["-n", str(workers), "test_suite.py::test_measure"]
    else:
        args += ["test_suite.py::test_measure[0]", "test_suite.py::test_barrier"]
    run = driver.start(inner_pytest(*args), proj)
    try:
        # The state the processes are born with, before anything of ours runs.
        original = thread_states(run.pid)[run.pid]
        assert (original["policy"], vm_locked_kib(run.pid)) == (os.SCHED_OTHER, 0)
        if workers:
            procs = wait_until(lambda: _children(run.pid, workers), 60, step=0.01)
            assert procs, f"the run did not start {workers} xdist workers"
        else:
            procs = [run.pid]
        # Seen from outside: a measuring thread at SCHED_FIFO 49, pinned to `cpu`.
        first = wait_until(lambda: [p for p in procs if is_fifo(p)] or not run.alive(), 60, step=0.001)
        assert first and run.alive(), "no process of the run reached SCHED_FIFO"
        during = thread_states(first[0])[first[0]]
        assert (during["policy"], during["priority"], during["affinity"]) == (os.SCHED_FIFO, 49, [cpu])
        # Give the other workers a moment to be measuring too; those that are get checked.
        measuring = set(first)
        wait_until(lambda: measuring.update(p for p in procs if is_fifo(p)) or len(measuring) == len(procs), 5)
        for pid in ([run.pid, *procs] if workers else procs):  # Ctrl-C reaches every process of a run
            os.kill(pid, sig)
        markers = [proj / f"{barrier}-{pid}.json" for pid in sorted(measuring)]
        assert wait_until(lambda: all(m.exists() for m in markers) or not run.alive(), 60, step=0.005) \
            and all(m.exists() for m in markers), f"the run never reached its barrier after {signal.Signals(sig).name}"
        # Still alive, interrupted: every thread is back where it started, memory unlocked.
        after = {pid: (thread_states(pid), vm_locked_kib(pid)) for pid in sorted(measuring)}
        inside = [json.loads(m.read_text()) for m in markers]
    finally:
        (proj / "go").touch()
    res = run.finish()
    for pid, (threads, locked) in after.items():
        assert locked == 0, f"pid {pid}: memory is still locked after the interrupt"
        for tid, state in threads.items():
            assert (state["policy"], state["priority"], state["affinity"]) == (
                original["policy"], original["priority"], original["affinity"]), (pid, tid, state)
    assert all((s["policy"], s["affinity"]) == (os.SCHED_OTHER, original["affinity"]) for s in inside)
    assert res["stuck"] == [], res["stuck"]
    if sig == signal.SIGINT:
        assert res["rc"] == pytest.ExitCode.INTERRUPTED, res["stdout"]
    else:
        assert res["rc"] == pytest.ExitCode.TESTS_FAILED, res["stdout"]
        assert "1 failed, 1 passed" in res["stdout"] and "Timeout" in res["stdout"]
