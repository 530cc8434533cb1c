"""Typed records own their JSON: what they read, they write back unchanged."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_hostperf.store import records

REPO = Path(__file__).resolve().parents[2]
BASELINES = sorted((REPO / "baselines").glob("*.json")) + [REPO / "tests" / "golden" / "baseline_v1.json"]


@pytest.mark.parametrize("path", BASELINES, ids=lambda p: p.name)
def test_stored_runs_round_trip_the_committed_baselines(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    for run in doc["runs"]:
        typed = records.StoredRun.from_json(run)
        assert typed.to_json() == run
        assert all(isinstance(m, records.StoredMeasurement) for m in typed.measurements.values())


def test_a_fresh_report_round_trips_and_is_typed(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nhostperf_samples = 300\nhostperf_max_time = 0.2\n")
    pytester.makepyfile(test_r="""
import pytest

@pytest.mark.hostperf(p99="1s")
def test_two(hostperf):
    slow = hostperf(sum, range(300), name="slow")
    fast = hostperf(len, "abc", name="fast")
    hostperf.expect_faster(fast, slow, factor=1.0)
""")
    pytester.runpytest_subprocess("--hostperf", "--hostperf-save").assert_outcomes(passed=1)
    pytester.runpytest_subprocess("--hostperf", "--hostperf-json=r.json", "--hostperf-tolerance=300")
    doc = json.loads((pytester.path / "r.json").read_text())
    report = records.Report.from_json(doc)
    assert report.to_json() == doc
    by = {r.name: r for r in report.results}
    assert set(by) == {"slow", "fast"}
    assert by["slow"].budgets and by["slow"].budgets[0].stat == "p99" and by["slow"].verdict is not None
    assert by["slow"].host is not None and by["slow"].histogram is not None
    assert by["fast"].mode.startswith("batched(") and by["fast"].batch > 1
    assert report.speedups and report.baseline is not None and report.baseline.exists
