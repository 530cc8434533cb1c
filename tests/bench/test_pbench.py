"""pytest-benchmark under --hostperf: host control, p99 gate on per-call rounds, JSON import."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is not installed (pip install 'pytest-hostperf[dev]')")

BENCH = """
import os
from benchmarks.workloads.synthetic import slowdown_from_env, work

def test_per_call(benchmark):
    def probe():
        work(int(200 * slowdown_from_env()))
        return os.sched_getscheduler(0), sorted(os.sched_getaffinity(0))
    policy, cpus = benchmark.pedantic(probe, rounds=400, iterations=1, warmup_rounds=20)
    with open("seen.txt", "w") as fh:
        fh.write(f"{policy} {cpus}")

def test_batched(benchmark):
    benchmark.pedantic(work, args=(50,), rounds=100, iterations=20)
"""


@pytest.fixture
def bench(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nhostperf_samples = 300\nhostperf_max_time = 0.2\n")
    pytester.makepyfile(test_bench=BENCH)
    return pytester


def test_per_call_benchmark_is_measured_under_control_and_gated(bench: pytest.Pytester,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    res = bench.runpytest_subprocess("--hostperf", "--hostperf-save", "--hostperf-json=r.json")
    res.assert_outcomes(passed=2)
    import os

    policy, _ = (bench.path / "seen.txt").read_text().split(" ", 1)
    assert int(policy) == os.SCHED_FIFO, "the benchmarked function ran under SCHED_FIFO"
    res.stdout.fnmatch_lines(["*test_bench.py::test_per_call[[]benchmark[]]", "*400 *single*new*"])
    doc = json.loads((bench.path / "r.json").read_text())
    by = {r["id"]: r for r in doc["results"]}
    per_call, batched = by["test_bench.py::test_per_call[benchmark]"], by["test_bench.py::test_batched[benchmark]"]
    assert per_call["host"]["timed_by"] == "pytest-benchmark" and per_call["host"]["policy"] == "SCHED_FIFO"
    # each test's pacing at SCHED_FIFO, in the JSON (the summary folds them into one line)
    assert per_call["host"]["paced"]["pauses"] >= 0 and per_call["host"]["paced"]["paused_s"] >= 0
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (it is in the dev extra)")
    from pathlib import Path
    schema = json.loads((Path(__file__).resolve().parents[2] / "docs" / "schemas" / "report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert per_call["mode"] == "single" and per_call["verdict"]["status"] == "new"
    # batched rounds are gated too, on the p99 of their times per iteration, labelled batched(k)
    assert batched["mode"] == "batched(20)" and batched["verdict"]["status"] == "new" and "not_gated" not in batched
    res.stdout.fnmatch_lines(["*1 pytest-benchmark test(s) ran k > 1 iterations per round (1 at k=20)*batched(k)*"])
    assert res.stdout.str().count("iterations per round") == 1  # one folded line, not one per test
    monkeypatch.setenv("HOSTPERF_SLOWDOWN", "20")
    slow = bench.runpytest_subprocess("--hostperf", "--hostperf-tolerance=300")
    slow.assert_outcomes(passed=1, failed=1)
    slow.stdout.fnmatch_lines(["*test_per_call[[]benchmark[]]: block-median p99 regressed: baseline * -> current *"])


def test_import_benchmark_json_is_a_report_compare_accepts(bench: pytest.Pytester) -> None:
    bench.runpytest_subprocess("--benchmark-json=b.json", "--benchmark-save-data", "-p", "no:xdist",
                               "--benchmark-disable-gc").assert_outcomes(passed=2)
    from pytest_hostperf import cli
    from pytest_hostperf.reports import compare
    from pytest_hostperf.store import disk
    out = bench.path / "imported.json"
    assert cli.main(["import-benchmark", str(bench.path / "b.json"), "-o", str(out)]) == 0
    doc = compare.read_report(out)
    by = {r.id: r for r in doc.results}
    assert by["test_bench.py::test_per_call[benchmark]"].n == 400
    assert by["test_bench.py::test_batched[benchmark]"].mode == "batched(20)"
    assert by["test_bench.py::test_batched[benchmark]"].not_gated is None  # gated, as batched(20)
    assert doc.mode == "imported" and doc.host is not None
    assert doc.host.fingerprint["source"] == "pytest-benchmark machine_info"
    assert out.read_text() == disk.to_json(doc.to_json())  # the file is what the record writes back
    assert cli.main(["compare", str(out), str(out), "--fail-on-regression"]) == 0
    assert cli.main(["import-benchmark", str(bench.path / "missing.json")]) == 2
