"""pytest-benchmark suites paired (issue 24): a suite configured as third-party projects configure
theirs (warnings as errors, strict markers and config, --benchmark-disable in addopts with
--benchmark-enable on the command line, a plugin adding a fixture and a marker, pytest-benchmark
files written by addopts) runs every benchmark paired against a git revision; a slower commit
fails exactly the slower benchmark; pytest-benchmark's own JSON keeps the head's rounds."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is not installed (pip install 'pytest-hostperf[dev]')")

LIB = """SCALE = {scale}


def spin(n):
    acc = 0
    for i in range(n * SCALE):
        acc = (acc + i * i) & 0xFFFF
    return acc


def other(n):
    return sum(range(n))
"""
PLUGIN = """import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "dataset: a benchmark over the plugin's dataset")


@pytest.fixture
def dataset():
    return list(range(300, 0, -1))
"""
SUITE = """import pytest
from mylib import other, spin


def test_spin(benchmark):
    benchmark(spin, 30)


def test_other_batched(benchmark):
    assert benchmark(other, 10) == 45


@pytest.mark.dataset
def test_sorted_pedantic(benchmark, dataset):
    out = benchmark.pedantic(sorted, setup=lambda: ((list(dataset),), {}), rounds=50)
    assert out[0] == 1
"""
# strict = true is pytest 9's; older releases take the two flags (and would warn, as an error, on the key)
STRICT = "strict = true" if pytest.version_tuple >= (9,) else "xfail_strict = true"
INI = f"""[pytest]
filterwarnings =
    error
{STRICT}
addopts = --strict-markers --strict-config -p mybenchplugin --benchmark-disable --benchmark-warmup=on
    --benchmark-max-time=0.15 --benchmark-autosave
"""


def _suite(path: Path) -> list[str]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed: --hostperf-against=REF pairs against a git revision")
    (path / "mylib.py").write_text(LIB.format(scale=1))
    (path / "mybenchplugin.py").write_text(PLUGIN)
    (path / "test_suite.py").write_text(SUITE)
    (path / "pytest.ini").write_text(INI)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-C", str(path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], check=True)
    return git


def test_a_strict_suite_runs_every_benchmark_paired_and_pytest_benchmark_keeps_the_heads_rounds(
        pytester: pytest.Pytester, measure_alone: str) -> None:
    _suite(pytester.path)
    res = pytester.runpytest_subprocess("--hostperf", "--hostperf-against=HEAD", "--benchmark-enable",
                                        "--hostperf-json=r.json", "--benchmark-json=b.json", "--hostperf-tolerance=50",
                                        measure_alone)
    res.assert_outcomes(passed=3)
    out = res.stdout.str()
    assert "Traceback" not in out and "PytestAssertRewriteWarning" not in out
    if importlib.util.find_spec("pytest_codspeed") is not None:  # the dev extra installs it, as suites have it
        assert "codspeed" in out.split("collected")[0]  # loaded beside pytest-benchmark, disabled
    by = {r["id"]: r for r in json.loads((pytester.path / "r.json").read_text())["results"]}
    assert sorted(by) == [f"test_suite.py::{t}[benchmark]" for t in ("test_other_batched", "test_sorted_pedantic",
                                                                     "test_spin")]
    for r in by.values():  # every benchmark paired: none shown new, none measured alone
        assert r["verdict"]["reason"].startswith("paired with HEAD: 4 process pair"), r["verdict"]
        assert r["verdict"]["status"] != "regressed" and r["verdict"]["pairs"]
    assert by["test_suite.py::test_other_batched[benchmark]"]["mode"].startswith("batched(")
    # pytest-benchmark's own file holds the head's rounds: as many as hostperf reports, same iterations
    bench = {b["name"]: b for b in json.loads((pytester.path / "b.json").read_text())["benchmarks"]}
    for name, b in bench.items():
        r = by[f"test_suite.py::{name}[benchmark]"]
        assert b["stats"]["rounds"] == r["n"] and b["stats"]["iterations"] == r["batch"]
        assert b["stats"]["median"] * 1e9 == pytest.approx(r["p50_ns"], rel=0.05)
    # --benchmark-autosave in addopts: the head saved once; its replica sessions wrote nothing
    assert len(list((pytester.path / ".benchmarks").rglob("*.json"))) == 1
    res.stdout.fnmatch_lines(["*pytest-benchmark tests paired: after pytest-benchmark's calibration on the head*"])


def test_a_slower_commit_fails_exactly_that_benchmark_paired(pytester: pytest.Pytester, measure_alone: str) -> None:
    _suite(pytester.path)
    (pytester.path / "mylib.py").write_text(LIB.format(scale=3))  # spin does 3x the work; other is unchanged
    res = pytester.runpytest_subprocess("--hostperf", "--hostperf-against=HEAD", "--benchmark-enable",
                                        "--hostperf-tolerance=50", measure_alone)
    res.assert_outcomes(passed=2, failed=1)
    res.stdout.fnmatch_lines(["*test_suite.py::test_spin[[]benchmark[]]: block-median p99 regressed: base * -> head *"
                              "paired with HEAD: 4 process pair*"])
    assert "FAILED test_suite.py::test_spin" in res.stdout.str()


def test_a_stored_regression_of_a_benchmark_is_confirmed_paired_and_the_rest_settled(
        pytester: pytest.Pytester, measure_alone: str) -> None:
    git = _suite(pytester.path)
    # the commit the runs are saved at: the one they are confirmed paired against
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    for _ in range(3):
        pytester.runpytest_subprocess("--hostperf", "--hostperf-save", "--benchmark-enable",
                                      measure_alone).assert_outcomes(passed=3)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "baselines"], check=True)
    (pytester.path / "mylib.py").write_text(LIB.format(scale=3))  # spin does 3x the work
    res = pytester.runpytest_subprocess("--hostperf", "--benchmark-enable", "--hostperf-tolerance=50",
                                        "--hostperf-json=r.json", measure_alone)
    res.assert_outcomes(passed=2, failed=1)
    res.stdout.fnmatch_lines([f"*test_spin[[]benchmark[]]*confirmed paired against {sha[:12]} now*"])
    by = {r["id"]: r for r in json.loads((pytester.path / "r.json").read_text())["results"]}
    assert by["test_suite.py::test_spin[benchmark]"]["verdict"]["status"] == "regressed"
    for name in ("test_other_batched", "test_sorted_pedantic"):  # unchanged code: never regressed
        v = by[f"test_suite.py::{name}[benchmark]"]["verdict"]
        assert v["status"] in ("unchanged", "improved", "inconclusive"), v
        if v["status"] != "unchanged" or "stored" in v["reason"]:  # settled paired at the end of the run
            assert f"paired against {sha[:12]} now" in v["reason"] or "not settled" in v["reason"], v
