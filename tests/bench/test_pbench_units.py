"""pytest-benchmark data -> hostperf samples; the end-to-end runs are in test_pbench.py."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_hostperf.errors import HostperfError
from pytest_hostperf.store import disk, pbench


def test_per_call_rounds_become_blocks_of_samples() -> None:
    s = pbench.samples_from_data([1e-6] * 95 + [5e-6] * 5, iterations=1)
    assert s.batch == 1 and s.calls == 100 and sum(s.block_sizes) == 100 and len(s.block_sizes) == 10
    assert s.values.max() == pytest.approx(5000) and s.values.min() == pytest.approx(1000)


def test_batched_rounds_are_samples_of_k_calls_each() -> None:
    s = pbench.samples_from_data(np.full(1000, 2e-7), iterations=50)
    assert s.batch == 50 and s.calls == 50_000 and len(s.block_sizes) == pbench.BLOCKS
    assert pbench.like_for_like(1000, 50, (1000, 50)) is None
    assert "iterations per round differ" in (pbench.like_for_like(1000, 50, (1000, 20)) or "")


@pytest.mark.parametrize("data, iterations, match", [
    ([], 1, "non-empty"), ([float("nan")], 1, "finite"), ([-1.0], 1, "non-negative"),
    ([1e-6], 0, "iterations: 0"), ([1e-6], True, "iterations: True"),
])
def test_bad_data_is_a_clear_error(data: list, iterations: int, match: str) -> None:
    with pytest.raises(HostperfError, match=match):
        pbench.samples_from_data(data, iterations)


def test_load_refuses_what_is_not_a_saved_benchmark_file(tmp_path: Path) -> None:
    p = tmp_path / "b.json"
    p.write_text("{")
    with pytest.raises(HostperfError, match="b.json: invalid JSON at line 1"):
        pbench.load_benchmark_json(p)
    p.write_text(json.dumps({"schema": "pytest-hostperf-report"}))
    with pytest.raises(HostperfError, match="not a pytest-benchmark JSON file"):
        pbench.load_benchmark_json(p)
    p.write_text(json.dumps({"machine_info": {}, "benchmarks": [{"fullname": "t.py::test_x", "stats": {"mean": 1}}]}))
    with pytest.raises(HostperfError, match="t.py::test_x has no per-round data; save it with --benchmark-save-data"):
        pbench.load_benchmark_json(p)
    with pytest.raises(HostperfError, match="missing.json: no such pytest-benchmark file"):
        pbench.load_benchmark_json(tmp_path / "missing.json")


def test_import_gives_a_report_record_that_reads_back(tmp_path: Path) -> None:
    from pytest_hostperf.store.records import Report
    from pytest_hostperf.store.report_schema import check_report

    p = tmp_path / "b.json"
    p.write_text(json.dumps({
        "machine_info": {"cpu": {"brand_raw": "Some CPU", "count": 4}, "machine": "x86_64", "release": "6.1",
                         "python_version": "3.11.7", "python_implementation": "CPython", "node": "box"},
        "commit_info": {"id": "ab" * 20, "branch": "main", "dirty": False}, "datetime": "2024-06-01T09:30:00+00:00",
        "version": "5.1.0",
        "benchmarks": [{"fullname": "t.py::test_a", "group": None, "stats": {"iterations": 1, "data": [1e-6] * 200}},
                       {"fullname": "t.py::test_b", "group": "g", "stats": {"iterations": 5, "data": [2e-7] * 50}}]}))
    rec = pbench.import_benchmark(p)
    assert isinstance(rec, Report) and rec.mode == "imported" and rec.commit.branch == "main"
    a, b = rec.results
    assert (a.id, a.n, a.mode, a.not_gated) == ("t.py::test_a[benchmark]", 200, "single", None)
    assert (b.group, b.mode, b.batch, b.not_gated) == ("g", "batched(5)", 5, None)  # gated, labelled batched(5)
    assert a.histogram is not None and a.histogram["total"] == 200
    assert rec.host is not None and rec.host.fingerprint["cpu_model"] == "Some CPU"
    doc = json.loads(disk.to_json(rec.to_json()))
    assert doc["schema"] == "pytest-hostperf-report" and doc["created_utc"] == "2024-06-01T09:30:00+00:00"
    assert Report.from_json(check_report(doc, p)) == rec
