"""A third-party-style pytest-benchmark suite under --hostperf (issue 16): fixed rounds, strict
warnings, pacing at SCHED_FIFO, and the small things (host id, file modes, commit, size)."""
from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is not installed (pip install 'pytest-hostperf[dev]')")

from pytest_hostperf.bench import bridge as bench_bridge  # noqa: E402
from pytest_hostperf.store import pbench

# As a project of its own writes them: auto-calibrated `benchmark(...)` calls, no pedantic, one
# call fast enough that pytest-benchmark batches it, a strict warnings filter, warm-up on.
SUITE = """
from benchmarks.workloads.synthetic import slowdown_from_env, work

def test_work(benchmark):
    benchmark(work, int(400 * slowdown_from_env()))

def test_sorted(benchmark):
    data = list(range(2000, 0, -1))
    benchmark(sorted, data)

def test_tiny(benchmark):
    benchmark(len, "abc")
"""
INI = """[pytest]
filterwarnings =
    error
addopts = --benchmark-warmup=on --benchmark-warmup-iterations=2000 --benchmark-max-time=0.25 -p no:randomly
"""
# The test's threshold: the machinery is checked here with a change (3x) far beyond this host's
# run-to-run noise; how finely the gate separates noise from change is benchmarks/verdict_quality.py's.
# At 50% against a 2x change, CI once saw unchanged code 1.64x slower over three rounds (the host
# sped down between the saves and the check, with the other xdist worker busy): pytest-benchmark's
# rounds cannot be confirmed paired. 80% leaves 1.8x for such drift and 3x / 1.8 = 1.67x for the catch.
TOLERANCE = "--hostperf-tolerance=80"
SLOWDOWN = "3"  # its rounds take 0.75 s of the 0.25 s budget: within pbench.ROUNDS_TIME_CAP (4x)


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def _results(path: Path) -> dict[str, Any]:
    return {r["id"]: r for r in json.loads(path.read_text())["results"]}


def test_unchanged_suite_passes_five_times_after_three_saves_and_3x_is_caught(
        suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, measure_alone: str) -> None:
    for _ in range(3):
        suite.runpytest_subprocess("--hostperf", "--hostperf-save", TOLERANCE, measure_alone).assert_outcomes(passed=3)
    (base_file,) = (suite.path / "baselines").glob("*.json")
    runs = json.loads(base_file.read_text())["runs"]
    work_id = "test_suite.py::test_work[benchmark]"
    # the rounds of the first save are kept by the next ones: one count, one iteration size
    assert len({(r["measurements"][work_id]["n"], r["measurements"][work_id]["batch"]) for r in runs}) == 1
    for i in range(5):
        res = suite.runpytest_subprocess("--hostperf", TOLERANCE, f"--hostperf-json=r{i}.json", measure_alone)
        res.assert_outcomes(passed=3)  # no hostperf-caused failure, no warning turned error
        assert "Traceback" not in res.stdout.str()
        by = _results(suite.path / f"r{i}.json")
        assert by[work_id]["n"] == runs[-1]["measurements"][work_id]["n"]  # the baseline's rounds, again
        assert by[work_id]["verdict"]["status"] in ("unchanged", "improved", "inconclusive")
        tiny = by["test_suite.py::test_tiny[benchmark]"]  # batched: gated as batched(k), like for like
        assert tiny["mode"].startswith("batched(") and "not_gated" not in tiny
        assert tiny["verdict"]["status"] in ("unchanged", "improved", "inconclusive")
    res.stdout.fnmatch_lines(["*rounds and iterations fixed by hostperf*"])
    monkeypatch.setenv("HOSTPERF_SLOWDOWN", SLOWDOWN)
    slow = suite.runpytest_subprocess("--hostperf", TOLERANCE, measure_alone)
    slow.assert_outcomes(passed=2, failed=1)
    slow.stdout.fnmatch_lines(["*test_work[[]benchmark[]]: block-median p99 regressed: baseline * -> current *"])


def test_one_saved_run_passes_a_strict_suite_and_says_how_many_runs_to_save(suite: pytest.Pytester) -> None:
    suite.runpytest_subprocess("--hostperf", "--hostperf-save").assert_outcomes(passed=3)
    # TOLERANCE as above: batched rounds are gated now, and CI saw test_tiny's 34 ns len() read 71 ns
    # against one saved run under the other xdist worker's load (2.12x [1.16, 3.88]), unconfirmable here
    res = suite.runpytest_subprocess("--hostperf", TOLERANCE)
    res.assert_outcomes(passed=3)  # every verdict inconclusive (one run), none a warning raised in a hook
    out = res.stdout.str()
    assert "HostperfWarning" not in out and "warnings summary" not in out
    res.stdout.fnmatch_lines(["inconclusive: test_suite.py::test_work[[]benchmark[]]: *",
                              "*save 2 more run(s): pytest --hostperf --hostperf-save*"])
    assert out.count("save 2 more run(s)") == 1
    assert "not gated" not in out  # batched rounds are gated, as batched(k)


def test_benchmark_disable_says_what_was_not_measured(suite: pytest.Pytester) -> None:
    res = suite.runpytest_subprocess("--hostperf", "--benchmark-disable")
    res.assert_outcomes(passed=3)
    res.stdout.fnmatch_lines(["*--benchmark-disable: pytest-benchmark tests ran their function once, unmeasured*"
                              "--benchmark-enable*"])


BUSY = """
from benchmarks.workloads.synthetic import work

def test_busy(benchmark):
    benchmark(work, 30000)
"""


def _rounds(path: Path) -> list[float]:
    (b,) = json.loads(path.read_text())["benchmarks"]
    return list(b["stats"]["data"])


def test_a_busy_benchmark_at_sched_fifo_is_never_stopped_by_rt_throttling(pytester: pytest.Pytester,
                                                                         measure_alone: str,
                                                                         request: pytest.FixtureRequest) -> None:
    """2 s of back-to-back ~1 ms rounds: unpaced at SCHED_FIFO, RT throttling (950 ms a second)
    would stop one round for ~50 ms, 50x its neighbours; paced, the slowest round stays within a
    small factor of the typical one and of the same test's slowest without hostperf."""
    if not Path("/proc/sys/kernel/sched_rt_runtime_us").exists():
        pytest.skip("no /proc/sys/kernel/sched_rt_runtime_us: not Linux, no RT throttling to avoid")
    pytester.makeini("[pytest]\naddopts = -p no:randomly --benchmark-max-time=2.0 --benchmark-save-data\n")
    pytester.makepyfile(test_busy=BUSY)
    pytester.runpytest_subprocess("--hostperf", "--benchmark-json=fifo.json", "--hostperf-json=h.json",
                                  measure_alone).assert_outcomes(passed=1)
    pytester.runpytest_subprocess("--benchmark-json=plain.json").assert_outcomes(passed=1)
    fifo, plain = _rounds(pytester.path / "fifo.json"), _rounds(pytester.path / "plain.json")
    assert sum(fifo) > 1.0  # longer at RT than the 0.95 s a second throttling allows
    # the pauses, as the run read them back: the rounds kept the CPU at most ~89% of the time
    (note,) = [n for n in json.loads((pytester.path / "h.json").read_text())["notes"] if "at SCHED_FIFO:" in n]
    assert note.startswith("paced 1 pytest-benchmark test(s) at SCHED_FIFO: "), note
    paused = float(note.split(" pause(s), ")[1].split(" s ")[0])
    assert sum(fifo) / (sum(fifo) + paused) < 0.9, note
    if not hasattr(request.config, "workerinput"):  # alone; beside other xdist workers' FIFO tests a round waits
        assert max(fifo) < 10 * statistics.median(fifo), "a round was stalled: RT throttling?"
    assert max(fifo) < 10 * max(plain)


def test_pacer_sleeps_its_share_after_a_stretch_of_rounds() -> None:
    now = [0]  # a clock in ms, so that sums are exact
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = bench_bridge.Pacer(fraction=0.12, min_pause_s=1, run_s=100, clock=lambda: now[0], sleep=sleep)
    for _ in range(30):  # 30 rounds of 10 ms: a pause after every 100 ms of rounds
        now[0] += 10
        pacer.after_round()
    assert slept == pytest.approx([12, 12, 12])
    busy = 30 * 10
    assert busy / (busy + sum(slept)) < 0.9  # at most ~89% of any second at RT


@pytest.mark.parametrize(("baseline", "expect"), [
    (None, pbench.RoundsPlan(4000, 1, "chosen")),  # 1 s / 250 us: pytest-benchmark's own count
    ((2000, 1), pbench.RoundsPlan(2000, 1, "baseline")),  # the baseline's, whatever calibration said
    ((100_000, 1), pbench.RoundsPlan(16_000, 1, "baseline", capped=True)),  # 4 x 1 s at most
    ((3000, 5), pbench.RoundsPlan(3000, 5, "baseline")),  # the baseline's iterations too
])
def test_fixed_plan(baseline: tuple[int, int] | None, expect: pbench.RoundsPlan) -> None:
    assert pbench.fixed_plan(250e-6, 1, min_rounds=5, max_time_s=1.0, baseline=baseline) == expect


def test_like_for_like_names_what_differs() -> None:
    assert pbench.like_for_like(4022, 1, (3747, 1)) is None
    assert "rounds differ (279 stored, 4022 now)" in (pbench.like_for_like(4022, 1, (279, 1)) or "")
    assert "iterations per round differ (20 stored, 1 now)" in (pbench.like_for_like(400, 1, (400, 20)) or "")


def _bench_file(path: Path, rows: list[tuple[str, list[float], int]], commit: str = "unversioned") -> Path:
    from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info

    doc = {"machine_info": pytest_benchmark_generate_machine_info(), "version": "5.3.1",
           "datetime": "2026-12-02T00:00:00", "commit_info": {"id": commit, "branch": "(unknown)", "dirty": False},
           "benchmarks": [{"fullname": name, "group": None, "stats": {"data": data, "iterations": it}}
                          for name, data, it in rows]}
    path.write_text(json.dumps(doc))
    return path


def test_one_host_id_for_a_run_and_an_import_on_the_same_machine(tmp_path: Path) -> None:
    from pytest_hostperf.host.fingerprint import fingerprint
    from pytest_hostperf.reports.compare import source_from_report
    from pytest_hostperf.store.hostid import host_id

    imported = pbench.import_benchmark(_bench_file(tmp_path / "b.json", [("t.py::a", [1e-5] * 50, 1)]))
    assert source_from_report(imported).host_id == host_id(fingerprint())


def test_compare_honours_like_for_like(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_hostperf import cli

    fast = [1e-5] * 400
    slower = [2e-5] * 400
    files = {"a": _bench_file(tmp_path / "a.json", [("t.py::batched", fast, 20), ("t.py::rounds", fast, 1)]),
             "b": _bench_file(tmp_path / "b.json", [("t.py::batched", slower, 1), ("t.py::rounds", slower[:40], 1)])}
    for name, f in files.items():
        assert cli.main(["import-benchmark", str(f), "-o", str(tmp_path / f"{name}r.json")]) == 0
    capsys.readouterr()
    # 2x slower on both, but neither compares like for like (20 iterations against 1; 400 rounds
    # against 40): no failure on them
    assert cli.main(["compare", str(tmp_path / "ar.json"), str(tmp_path / "br.json"), "--fail-on-regression"]) == 0
    out = capsys.readouterr().out
    assert "rounds differ (400 stored, 40 now)" in out and "batched(20)" in out
    assert "unversio " not in out and "unversioned" in out and "(unknown)" not in out


def test_import_benchmark_size_bound_names_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_hostperf import cli

    f = _bench_file(tmp_path / "b.json", [("t.py::a", [1e-5] * 2000, 1)])
    assert cli.main(["import-benchmark", str(f), "--max-size", "1KiB"]) == 2
    err = capsys.readouterr().err
    assert "more than the 1 KiB import-benchmark reads (--max-size)" in err and "read it with --max-size" in err
    assert cli.main(["import-benchmark", str(f), "--max-size", "1MiB", "-o", str(tmp_path / "r.json")]) == 0
    with pytest.raises(SystemExit) as bad:
        cli.main(["import-benchmark", str(f), "--max-size", "lots"])
    assert bad.value.code == 2 and "'lots' is not a size" in capsys.readouterr().err


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_report_files_get_a_new_files_mode(pytester: pytest.Pytester, mask: int, mode: int) -> None:
    pytester.makepyfile("def test_x(hostperf):\n    hostperf(len, 'abc', samples=40)\n")
    old = os.umask(mask)
    try:
        pytester.runpytest_subprocess("--hostperf", "--hostperf-json=r.json", "--hostperf-markdown=r.md",
                                      "--hostperf-max-time=0.2").assert_outcomes(passed=1)
    finally:
        os.umask(old)
    for name in ("r.json", "r.md"):
        assert (pytester.path / name).stat().st_mode & 0o777 == mode, name


def test_summary_table_fits_120_columns_and_explains_its_labels(pytester: pytest.Pytester) -> None:
    long = "test_" + "a_rather_long_descriptive_name_" * 3
    pytester.makepyfile(**{"test_long_module_name_for_a_benchmark_suite": f"""
import pytest

@pytest.mark.parametrize("size", ["4KiB", "64KiB"])
def {long}(hostperf, size):
    hostperf(len, "abc", name="a_measurement_name_as_long_as_some_are", samples=40)
"""})
    res = pytester.runpytest_subprocess("--hostperf", "--hostperf-max-time=0.2")
    res.assert_outcomes(passed=2)
    lines = res.stdout.str().splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("measurement"))
    end = next(i for i, x in enumerate(lines) if x.startswith("verdicts:"))
    assert all(len(x) <= 120 for x in lines[start:end]), max(lines[start:end], key=len)
    assert long in "".join(lines[start:end])  # the whole id, on lines of its own
    assert lines[end + 1].startswith("new: no baseline to compare with")
