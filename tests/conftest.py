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
