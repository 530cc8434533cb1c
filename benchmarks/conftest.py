"""Shared helpers of the benchmark suite."""
from __future__ import annotations

import os

import pytest

from pytest_hostperf.plugin import session_key


@pytest.fixture
def cpu_pair(request: pytest.FixtureRequest) -> tuple[int, int]:
    """(measuring CPU, peer CPU) for the cross-process round trips.

    hostperf pins the measuring thread to the last of its CPUs (``--hostperf-cpus``, else the
    allowed set); the peer process goes on another CPU so the round trip crosses cores. Under
    ``pytest -n N`` a worker owns only its share of the CPUs: the peer stays inside that share,
    on the same CPU when the share is one CPU (the round trip then measures a same-core hand-off,
    and the baseline's concurrency says so), never on a CPU another worker is measuring on.
    """
    session = request.config.stash[session_key]
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
