"""Two ``--hostperf-save`` runs of one host at once, and ``-n 2`` saves: every run lands.

tests/store/test_store.py races ``save_run`` from three processes; here two whole pytest runs
race, each measuring, fingerprinting and saving on its own.
"""
from __future__ import annotations

import os
from pathlib import Path

from pytest_hostperf.store import disk

from .conftest import HOST, Driver, inner_pytest, make_project, save_args, temp_files, write_golden

TWO_TESTS = """
from benchmarks.workloads.synthetic import work


def test_a(hostperf):
    hostperf(work, 200, name="a")


def test_b(hostperf):
    hostperf(work, 300, name="b")
"""
IDS = {"test_suite.py::test_a[a]", "test_suite.py::test_b[b]"}


def test_two_saves_at_once_both_land(tmp_path: Path, driver: Driver) -> None:
    folder = tmp_path / "baselines"
    write_golden(folder)
    old = disk.load(folder / f"{HOST}.json").runs
    projects = [make_project(tmp_path / f"proj{i}", TWO_TESTS) for i in range(2)]
    runs = [driver.start(inner_pytest(*save_args(folder), "-p", "no:benchmark"), p) for p in projects]
    results = [r.finish() for r in runs]
    for res in results:
        assert res["rc"] == 0, res["stdout"] + res["stderr"]
        assert "baseline saved: " in res["stdout"]
    now = disk.load(folder / f"{HOST}.json").runs
    assert now[:len(old)] == old and len(now) == len(old) + 2, "a concurrent save was lost"
    assert all(set(run.measurements) == IDS for run in now[len(old):])
    assert os.listdir(folder) == [f"{HOST}.json"]  # no temp file, and the lock leaves no file


def test_xdist_save_loses_no_measurement(tmp_path: Path, driver: Driver) -> None:
    # Holds today (each worker saves its own run) and after issue 7 (the controller saves one).
    folder = tmp_path / "baselines"
    write_golden(folder)
    old = disk.load(folder / f"{HOST}.json").runs
    proj = make_project(tmp_path / "proj", TWO_TESTS)
    res = driver.run(inner_pytest(*save_args(folder), "-n", "2", "-p", "no:benchmark"), proj)
    assert res["rc"] == 0 and res["stuck"] == [], res["stdout"] + res["stderr"]
    now = disk.load(folder / f"{HOST}.json").runs
    assert now[:len(old)] == old and len(now) > len(old)
    assert set().union(*(run.measurements for run in now[len(old):])) == IDS
    assert temp_files(folder) == []


def test_xdist_save_lands_as_one_run_with_every_measurement(tmp_path: Path, driver: Driver) -> None:
    folder = tmp_path / "baselines"
    write_golden(folder)
    old = disk.load(folder / f"{HOST}.json").runs
    proj = make_project(tmp_path / "proj", TWO_TESTS)
    res = driver.run(inner_pytest(*save_args(folder), "-n", "2", "-p", "no:benchmark"), proj)
    assert res["rc"] == 0, res["stdout"] + res["stderr"]
    now = disk.load(folder / f"{HOST}.json").runs
    # DESIGN section 9: the controller writes the baseline once, with both workers' results.
    assert now[:len(old)] == old and len(now) == len(old) + 1, [sorted(r.measurements) for r in now[len(old):]]
    measuring = 2 if len(os.sched_getaffinity(0)) >= 2 else 1  # fewer CPUs: gathered onto one worker
    assert set(now[-1].measurements) == IDS and now[-1].concurrency == measuring
    assert temp_files(folder) == []
