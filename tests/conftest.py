from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests that spawn pytest subprocesses must not inherit a user's GitHub summary file.
os.environ.pop("GITHUB_STEP_SUMMARY", None)

#: Options of every pytest this suite starts. hypothesis's pytest plugin costs 0.8 s of
#: imports per process (hypothesis 6.170, measured: 1.22 s vs 0.41 s for an empty run) and
#: no child project uses hypothesis; the suite starts about a hundred of them.
CHILD_ADDOPTS = "-p no:hypothesispytest"

#: The repository root: child pytest processes import ``benchmarks.workloads`` from it.
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytest's ``pytester`` (which clears ``PYTEST_ADDOPTS``), its runs given CHILD_ADDOPTS,
    the repository root first on ``PYTHONPATH`` (``benchmarks`` is not installed: a child
    project's ``from benchmarks.workloads... import`` finds it there) and none of the
    ``PYTEST_XDIST_*`` variables of a suite run under xdist: with them a child pytest takes
    itself for an xdist worker (pytest-benchmark then disables itself)."""
    monkeypatch.setenv("PYTEST_ADDOPTS", CHILD_ADDOPTS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    for name in [k for k in os.environ if k.startswith("PYTEST_XDIST_")]:
        monkeypatch.delenv(name)
    return pytester


@pytest.fixture
def fast_ini(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester project whose full-mode measurements stay short (small samples and budget)."""
    pytester.makeini("[pytest]\nhostperf_samples = 400\nhostperf_max_time = 0.3\n")
    return pytester


def _children() -> set[int]:
    """Live child processes of this test process (psutil), except multiprocessing's resource
    tracker, a long-lived helper that is not ours to reap."""
    import psutil

    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE:
                out.add(p.pid)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.fixture
def no_leftovers():
    """Fail the test if it leaves a shared-memory segment, a named semaphore or a child process of ours."""
    from benchmarks.workloads.ipc import list_resources

    children = _children()
    yield
    assert list_resources(os.getpid()) == []
    assert _children() - children == set()


@pytest.fixture
def measure_alone(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """For tests whose assertions rest on measuring (a 2x slowdown caught, no stalled round):
    the CPU to measure on, and turns with each other under xdist. Every other child run
    measures on the default CPU, the last one allowed; these take the first, so no other
    SCHED_FIFO test of another xdist worker shares their CPU (two FIFO processes on one CPU
    wait for each other's stretches: 88 ms rounds, measured), and an flock on a file every
    worker shares (the session's base temp folder), waited for at most 10 minutes, keeps them
    from sharing it with each other. Yields ``--hostperf-cpus=N`` for the child's command line."""
    import fcntl
    import time

    root = tmp_path_factory.getbasetemp()
    shared = root.parent if hasattr(request.config, "workerinput") else root  # an xdist worker's is popen-gwN/
    with open(shared / "hostperf-measure-alone.lock", "a+") as f:
        deadline = time.monotonic() + 600
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    break  # measure anyway rather than hang the suite
                time.sleep(0.1)
        try:
            yield f"--hostperf-cpus={min(os.sched_getaffinity(0))}"
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
