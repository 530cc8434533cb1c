"""pytest entry point: hooks and fixtures only, delegating to ``session.py``.

Kept thin and cheap to import (no numpy, no torch): pytest loads it for every run,
including ``pytest --help``.
"""
from __future__ import annotations

import pytest

from pytest_hostperf import options
from pytest_hostperf.session import HostperfSession, Recorder, recorder_key

session_key = pytest.StashKey[HostperfSession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "hostperf(p99=, p999=, max=, samples=, group=, tolerance=, rt=, cpus=, mlock=): "
        "latency budgets and per-test settings of a pytest-hostperf measurement",
    )
    config.stash[session_key] = session = HostperfSession(config)
    config.pluginmanager.register(session, "hostperf-session")


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(session_key, None)
    if session is not None:
        config.pluginmanager.unregister(session)
        del config.stash[session_key]


@pytest.fixture
def hostperf(request: pytest.FixtureRequest) -> Recorder:
    """Measure per-call latency: ``r = hostperf(fn, *args, name=..., samples=..., **kwargs)``.

    ``r`` has ``p50, p90, p99, p999, max, mean, n, batched, mode`` (nanoseconds) and the
    per-block statistics. Without ``--hostperf`` it makes a few calls only (smoke mode).
    """
    rec = Recorder(request.config.stash[session_key], request.node)
    request.node.stash[recorder_key] = rec
    return rec
