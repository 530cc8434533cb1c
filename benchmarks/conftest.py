"""Shared helpers of the benchmark suite."""
from __future__ import annotations

import os

import pytest


@pytest.fixture
def cpu_pair() -> tuple[int, int]:
    """(measuring CPU, peer CPU): hostperf pins the measuring thread to the last allowed CPU;
    the peer process goes on another one so the round trip crosses cores."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        pytest.skip(f"needs 2 allowed CPUs for a cross-core round trip; this process may use only {allowed}")
    return allowed[-1], allowed[-2]
