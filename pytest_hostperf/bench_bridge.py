"""pytest-benchmark under ``--hostperf``: its tests run under hostperf's host control, and their
rounds become a hostperf measurement ``<test>[benchmark]`` (gated on p99 when timed per call).

A plugin object of its own, registered by ``plugin.py`` only under ``--hostperf`` when
pytest-benchmark is installed. The rounds' conversion lives in ``pbench.py``.
"""
from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hostperf.recorder import Recorder, controlled

if TYPE_CHECKING:
    from pytest_hostperf.session import HostperfSession


class BenchBridge:
    """Wraps the call of each test that uses pytest-benchmark's ``benchmark`` fixture."""

    def __init__(self, run: HostperfSession) -> None:
        self.run = run

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, Any]:
        bench = None
        if "benchmark" in getattr(item, "fixturenames", ()):
            bench = item.funcargs.get("benchmark")  # type: ignore[attr-defined]
        if bench is None or not getattr(bench, "enabled", False):
            return (yield)
        from pytest_hostperf import pbench
        from pytest_hostperf.session import recorder_key

        rec = item.stash.get(recorder_key, None)
        if rec is None:
            rec = Recorder(self.run, item)
            item.stash[recorder_key] = rec
        with controlled(self.run, rec.controls) as host:
            outcome = yield
        meta = getattr(bench, "stats", None)
        data = getattr(getattr(meta, "stats", None), "data", None)
        if meta is None or not data:
            return outcome
        iterations = int(getattr(meta, "iterations", 1) or 1)
        raw = pbench.samples_from_data(data, iterations)
        rec.record_external(raw, name="benchmark", host=replace(host, timed_by="pytest-benchmark"),
                            gate=iterations == 1, why_not=pbench.tail_note(iterations))
        return outcome
