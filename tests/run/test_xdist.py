"""pytest-xdist end to end: disjoint pinning, one summary, one baseline, gathering (DESIGN.md §9)."""
from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("xdist", reason="pytest-xdist is not installed (pip install 'pytest-hostperf[dev]')")

SUITE = """
import os
import pytest
from benchmarks.workloads.synthetic import work

@pytest.mark.parametrize("i", range(4))
def test_measured(hostperf, i):
    hostperf(work, 100, name="work")

@pytest.mark.parametrize("i", range(4))
def test_plain(i):
    print(f"plain ran on {os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
"""

ALLOWED = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
needs_two = pytest.mark.skipif(len(ALLOWED) < 2, reason=f"needs 2 allowed CPUs for disjoint pinning, have {ALLOWED}")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nhostperf_samples = 300\nhostperf_max_time = 0.15\n")
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def _baseline(p: pytest.Pytester) -> dict:
    (path,) = (p.path / "baselines").glob("*.json")
    return json.loads(path.read_text())


@needs_two
def test_two_workers_pin_disjoint_cpus_and_save_one_baseline(suite: pytest.Pytester) -> None:
    cpus = ",".join(map(str, ALLOWED[-2:]))
    res = suite.runpytest_subprocess("-n", "2", "--hostperf", "--hostperf-save", f"--hostperf-cpus={cpus}",
                                     "--hostperf-json=r.json")
    res.assert_outcomes(passed=8)
    out = res.stdout.str()
    assert out.count("= hostperf =") == 1, "one summary, from the controller"
    doc = json.loads((suite.path / "r.json").read_text())
    by_worker: dict[str, set] = {}
    for r in doc["results"]:
        by_worker.setdefault(r["worker"], set()).update(r["host"]["cpus"])
    assert len(doc["results"]) == 4 and set(by_worker) <= {"gw0", "gw1"}
    assert all(len(c) == 1 for c in by_worker.values()), by_worker  # each pinned to one CPU
    if len(by_worker) == 2:  # both workers measured: on different CPUs
        a, b = by_worker.values()
        assert not a & b
    assert doc["concurrency"] == 2
    base = _baseline(suite)
    (run,) = base["runs"]
    assert sorted(run["measurements"]) == sorted(r["id"] for r in doc["results"])  # each exactly once
    assert run["concurrency"] == 2
    assert not list((suite.path / "baselines").glob("*.tmp*")), "no worker wrote a baseline"
    res.stdout.fnmatch_lines(["*xdist: * of 2 workers measured, on disjoint CPUs*"])
    # ...and the next -n 2 run compares against it
    again = suite.runpytest_subprocess("-n", "2", "--hostperf", f"--hostperf-cpus={cpus}", "--hostperf-json=r2.json",
                                       "--hostperf-tolerance=300")
    assert again.ret == 0, again.stdout.str()
    doc2 = json.loads((suite.path / "r2.json").read_text())
    assert {r["verdict"]["status"] for r in doc2["results"]} <= {"unchanged", "improved", "inconclusive"}
    assert all(r["verdict"]["baseline_runs"] == 1 for r in doc2["results"])


def test_more_workers_than_cpus_gathers_hostperf_tests_on_one_worker(suite: pytest.Pytester) -> None:
    cpu = str(ALLOWED[-1]) if ALLOWED else "0"
    res = suite.runpytest_subprocess("-n", "2", "--hostperf", "--hostperf-save", f"--hostperf-cpus={cpu}",
                                     "--hostperf-json=r.json")
    res.assert_outcomes(passed=8)
    doc = json.loads((suite.path / "r.json").read_text())
    (worker,) = {r["worker"] for r in doc["results"]}
    res.stdout.fnmatch_lines([f"*2 xdist workers but 1 CPU(s) to measure on: the hostperf tests ran on one worker "
                              f"({worker};*"])
    assert len(doc["results"]) == 4
    # stored under the ids a plain run uses, without xdist's "@hostperf" group suffix
    assert all("@" not in r["id"] for r in doc["results"]), [r["id"] for r in doc["results"]]
    assert doc["concurrency"] == 1 and _baseline(suite)["runs"][0]["concurrency"] == 1


def test_comparing_across_concurrency_names_it(suite: pytest.Pytester) -> None:
    cpu = str(ALLOWED[-1]) if ALLOWED else "0"
    suite.runpytest_subprocess("--hostperf", "--hostperf-save", f"--hostperf-cpus={cpu}",
                               "-p", "no:xdist").assert_outcomes(passed=8)
    base = _baseline(suite)
    base["runs"][0]["concurrency"] = 2  # as if saved by two measuring workers
    (next((suite.path / "baselines").glob("*.json"))).write_text(json.dumps(base, sort_keys=True))
    res = suite.runpytest_subprocess("--hostperf", f"--hostperf-cpus={cpu}", "--hostperf-tolerance=300")
    res.stdout.fnmatch_lines(["baseline was taken on a different setup: *concurrency 2 -> 1*"])
