"""pytest entry point: hooks and fixtures only, delegating to ``run/session.py``.

Kept thin and cheap to import (no numpy, no torch): pytest loads it for every run,
including ``pytest --help``. The run's plugin objects are registered here, each only when
it has work: the session always; xdist's controller or worker side when xdist distributes a
``--hostperf`` run; the pairing's head or base side under ``--hostperf-against``; the
pytest-benchmark bridge under ``--hostperf`` with pytest-benchmark.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_hostperf.bench.bridge import BenchBridge
from pytest_hostperf.host import control, warm
from pytest_hostperf.pairing import channel, worktree
from pytest_hostperf.pairing.channel import PairingError
from pytest_hostperf.run import options, placement
from pytest_hostperf.run.against import HeadRole, ReplicaRole, base_args, benchmark_args, test_paths
from pytest_hostperf.run.context import RunContext
from pytest_hostperf.run.fixture import Recorder
from pytest_hostperf.run.session import HostperfSession
from pytest_hostperf.run.settings import Controls, parse_marker, resolve_controls
from pytest_hostperf.run.xdist import ControllerRole, WorkerRole

if TYPE_CHECKING:
    from pytest_hostperf.host.control import Applied
    from pytest_hostperf.run.settings import Controls

session_key = pytest.StashKey[HostperfSession]()
_ROLES = ("hostperf-xdist-worker", "hostperf-xdist-controller", "hostperf-benchmark", "hostperf-against",
          "hostperf-against-replica")


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "hostperf(p99=, p999=, max=, samples=, group=, series=, tolerance=, rt=, cpus=, mlock=): "
        "latency budgets and per-test settings of a pytest-hostperf measurement",
    )
    full = bool(options.get(config, "hostperf"))
    replica = full and channel.started_by_head()  # a replica session a paired head started
    against = full and not replica and bool(options.get(config, "hostperf_against"))
    # the paired gate gathers its tests onto one xdist worker (docs/paired.md: measured both ways)
    where = placement.placement(config, options.get(config, "hostperf_cpus"), full, gather=against)
    config.stash[session_key] = session = HostperfSession(config, where)
    config.pluginmanager.register(session, "hostperf-session")
    ctx, log = session.ctx, session.log
    if where is not None:
        if where.worker is not None:
            config.pluginmanager.register(WorkerRole(config, ctx, log), "hostperf-xdist-worker")
        else:
            config.pluginmanager.register(ControllerRole(ctx, log), "hostperf-xdist-controller")
    ref = ctx.settings.against
    if against and ref:
        # pairing loads only when a run pairs (numpy), never with pytest --help
        from pytest_hostperf.pairing.head import AgainstHead  # numpy: loaded where first used

        if where is None or where.worker is not None:  # the process that runs the tests leads
            session.pairing = AgainstHead(ref, rootdir=ctx.rootdir,
                                          base_args=base_args(ctx.settings, benchmark_args(config)),
                                          python=ctx.settings.against_python, tolerance=ctx.settings.tolerance,
                                          progress=session.progress, note=log.note, pairs=ctx.settings.pairs,
                                          paths=test_paths(config))
            config.pluginmanager.register(HeadRole(session.pairing, lazy=where is not None), "hostperf-against")
        else:  # the xdist controller runs no test: it only checks REF, once, before workers start
            try:
                worktree.check_ref(ref, ctx.rootdir)
            except PairingError as exc:
                raise pytest.UsageError(str(exc)) from None
    if replica:
        from pytest_hostperf.pairing.replica import Replica  # numpy: loaded where first used

        session.replica = side = Replica()
        config.pluginmanager.register(ReplicaRole(side), "hostperf-against-replica")
    if full and config.pluginmanager.has_plugin("benchmark"):
        config.pluginmanager.register(BenchBridge(session), "hostperf-benchmark")


def pytest_unconfigure(config: pytest.Config) -> None:
    for name in _ROLES:
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)
    session = config.stash.get(session_key, None)
    if session is not None:
        config.pluginmanager.unregister(session)
        del config.stash[session_key]


def _controls(request: pytest.FixtureRequest) -> Controls:
    return resolve_controls(request.config.stash[session_key].ctx.settings, parse_marker(request.node))


@pytest.fixture
def hostperf(request: pytest.FixtureRequest) -> Recorder:
    """Measure per-call latency: ``r = hostperf(fn, *args, name=..., samples=..., **kwargs)``.

    ``r`` has ``p50, p90, p99, p999, max, mean, n, batched, mode`` (nanoseconds) and the
    per-block statistics. Without ``--hostperf`` it makes a few calls only (smoke mode).
    """
    return request.config.stash[session_key].recorder(request.node)


@pytest.fixture
def pinned_cpu(request: pytest.FixtureRequest) -> Iterator[Applied]:
    """Pin the test's thread to ``--hostperf-cpus`` (or the marker's ``cpus``; default the last
    allowed CPU) for the whole test; restored after. Yields what was applied."""
    with control.pinned(_controls(request).cpus) as applied:
        yield applied


@pytest.fixture
def rt_priority(request: pytest.FixtureRequest) -> Iterator[Applied]:
    """Run the test at SCHED_FIFO (``--hostperf-rt``, default 49; the marker's ``rt`` wins);
    restored after. Not applied (with reason and fix) where not permitted, or when off."""
    controls = _controls(request)
    if controls.rt is None:
        why = ("@pytest.mark.hostperf(rt='off') on this test" if _marker_rt_off(request)
               else "--hostperf-rt=off")
        yield control.Applied("rt", False, "off", reason=why)
        return
    with control.realtime(controls.rt) as applied:
        controls.skip_unless_rt(applied)
        yield applied


def _marker_rt_off(request: pytest.FixtureRequest) -> bool:
    """Whether the test's marker says ``rt='off'`` (else the run's option turned RT off)."""
    return parse_marker(request.node).rt == "off"


@pytest.fixture
def locked_memory() -> Iterator[Applied]:
    """mlockall(MCL_CURRENT | MCL_FUTURE) for the test; munlockall after (if it was not locked before)."""
    with control.locked_memory() as applied:
        yield applied


@pytest.fixture
def warm_cache() -> Callable[..., object]:
    """``warm_cache(fn, *args, calls=100, max_seconds=0.5, buffers=(...))``: bounded warm-up calls,
    then one read per 64-byte cache line of each buffer."""
    return warm.warm


@pytest.fixture
def hostperf_context(request: pytest.FixtureRequest) -> RunContext:
    """The run's context, read only: its settings (``.settings``), the CPUs it measures on
    (``.cpus``), whether this is an xdist worker (``.is_worker``) and whether the hostperf
    tests were gathered onto one worker (``.gathered``), the stored baseline."""
    return request.config.stash[session_key].ctx
