from __future__ import annotations

import os

import pytest

# Tests that spawn pytest subprocesses must not inherit a user's GitHub summary file.
os.environ.pop("GITHUB_STEP_SUMMARY", None)


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
    from pytest_hostperf.workloads.ipc import list_resources

    children = _children()
    yield
    assert list_resources(os.getpid()) == []
    assert _children() - children == set()
