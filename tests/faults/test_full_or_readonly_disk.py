"""``--hostperf-save`` into a full filesystem and into a read-only one, end to end.

tests/store/test_store.py checks ``save_run`` itself on a 64 KiB tmpfs; here the whole run does
it: a clear error naming the path, a non-zero exit status, the old baseline byte for byte, no
temp file -- and the next run, once there is room, saves normally.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pytest_hostperf.store import disk

from .conftest import HOST, Driver, fill, inner_pytest, make_project, needs_mount, save_args, tmpfs, write_golden

WORK = """
from benchmarks.workloads.synthetic import work


def test_work(hostperf):
    hostperf(work, 300, name="work")
"""


@needs_mount
def test_full_disk_keeps_the_old_baseline_and_says_so(tmp_path: Path, driver: Driver) -> None:
    proj = make_project(tmp_path / "proj", WORK)
    with tmpfs(tmp_path / "mnt", "64k") as folder:
        old = write_golden(folder)
        path = folder / f"{HOST}.json"
        old_runs = disk.load(path).runs
        filler = fill(folder)
        res = driver.run(inner_pytest(*save_args(folder), "-p", "no:benchmark"), proj)
        out = res["stdout"]
        assert res["rc"] == pytest.ExitCode.TESTS_FAILED, out + res["stderr"]
        assert "1 passed" in out and "Traceback" not in out + res["stderr"]
        assert f"baseline NOT saved: cannot write {path}: No space left on device; the previous file is unchanged" \
            in out, out
        assert path.read_bytes() == old
        assert sorted(os.listdir(folder)) == sorted([path.name, filler.name])
        # Room again: the next save lands on top of the untouched old runs.
        filler.unlink()
        res = driver.run(inner_pytest(*save_args(folder), "-p", "no:benchmark"), proj)
        assert res["rc"] == 0, res["stdout"] + res["stderr"]
        runs = disk.load(path).runs
        assert runs[:-1] == old_runs and list(runs[-1].measurements) == ["test_suite.py::test_work[work]"]


@needs_mount
def test_read_only_folder_keeps_the_old_baseline_and_comparing_still_works(tmp_path: Path, driver: Driver) -> None:
    proj = make_project(tmp_path / "proj", WORK)
    with tmpfs(tmp_path / "mnt", "64k") as folder:
        old = write_golden(folder)
        path = folder / f"{HOST}.json"
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, timeout=30)
        res = driver.run(inner_pytest(*save_args(folder), "-p", "no:benchmark"), proj)
        out = res["stdout"]
        assert res["rc"] == pytest.ExitCode.TESTS_FAILED, out + res["stderr"]
        assert "Traceback" not in out + res["stderr"]
        assert (f"baseline NOT saved: cannot write {path}: Read-only file system; the previous file is unchanged; "
                f"saving needs a writable baselines folder ({folder})") in out, out
        assert path.read_bytes() == old and sorted(os.listdir(folder)) == [path.name]
        # Reading is all a comparison needs: it runs and gates against the read-only baseline.
        res = driver.run(inner_pytest("--hostperf", f"--hostperf-host={HOST}", f"--hostperf-baselines={folder}",
                                      "--hostperf-tolerance=300", "-p", "no:benchmark"), proj)
        assert res["rc"] == 0, res["stdout"] + res["stderr"]
        assert "test_suite.py::test_work[work]" in res["stdout"]
