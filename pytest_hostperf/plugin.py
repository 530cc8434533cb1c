"""pytest entry point: hooks and fixtures only, delegating to ``session.py``.

Kept thin and cheap to import (no numpy, no torch): pytest loads it for every run,
including ``pytest --help``.
"""
from __future__ import annotations

import pytest

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from pytest_hostperf import options
from pytest_hostperf.session import HostperfSession, Recorder, recorder_key

if TYPE_CHECKING:
    from pytest_hostperf.host.control import Applied

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


@pytest.fixture
def pinned_cpu(request: pytest.FixtureRequest) -> Iterator[Applied]:
    """Pin the test's thread to ``--hostperf-cpus`` (or the marker's ``cpus``; default the last
    allowed CPU) for the whole test; restored after. Yields what was applied."""
    from pytest_hostperf.host import control

    session = request.config.stash[session_key]
    cpus = Recorder.marker_of(request.node).cpus or session.cpus
    with control.pinned(cpus) as applied:
        yield applied


@pytest.fixture
def rt_priority(request: pytest.FixtureRequest) -> Iterator[Applied]:
    """Run the test at SCHED_FIFO (``--hostperf-rt``, default 49; the marker's ``rt`` wins);
    restored after. Not applied (with reason and fix) where not permitted."""
    from pytest_hostperf.host import control

    session = request.config.stash[session_key]
    rt = Recorder.marker_of(request.node).rt
    if rt == "off":
        yield control.Applied("rt", False, "off", reason="@pytest.mark.hostperf(rt='off') on this test")
        return
    prio = rt if isinstance(rt, int) else session.rt or control.DEFAULT_RT_PRIORITY
    with control.realtime(prio) as applied:
        if rt == "required" and not applied.applied:
            pytest.skip(f"rt='required' but SCHED_FIFO was not applied: {applied.reason}; fix: {applied.fix}")
        yield applied


@pytest.fixture
def locked_memory() -> Iterator[Applied]:
    """mlockall(MCL_CURRENT | MCL_FUTURE) for the test; munlockall after (if it was not locked before)."""
    from pytest_hostperf.host import control

    with control.locked_memory() as applied:
        yield applied


@pytest.fixture
def warm_cache() -> Callable[..., object]:
    """``warm_cache(fn, *args, calls=100, max_seconds=0.5, buffers=(...))``: bounded warm-up calls,
    then one read per 64-byte cache line of each buffer."""
    from pytest_hostperf.host import control

    return control.warm
