"""An IPC or ring echo child SIGKILLed in the middle of a ``pytest --hostperf --hostperf-save`` run.

tests/workloads/test_ipc.py and tests/workloads/test_ring.py already show, in-process, that
a killed child is a MeasurementError naming its pid. Here it happens where it matters: inside
a full measurement, pinned and SCHED_FIFO, under the plugin. Each test fails naming its own
dead child; the other tests and the baseline save go on; no segment, semaphore or process is
left; the host state is back.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_hostperf.store import disk

from .conftest import (
    HOST,
    STATE_CONFTEST,
    Driver,
    child_env,
    inner_pytest,
    make_project,
    save_args,
    shm_of,
    write_golden,
)

KILLED_CHILDREN = """
import json, os, signal
from pathlib import Path

import pytest

from benchmarks.workloads.ipc import SemPingPong
from benchmarks.workloads.ring import ProcessPingPong
from benchmarks.workloads.synthetic import work

KINDS = {
    "ring": lambda: ProcessPingPong("ring"),
    "mpqueue": lambda: ProcessPingPong("mpqueue"),
    "posix": lambda: SemPingPong("posix"),
    "multiprocessing": lambda: SemPingPong("multiprocessing"),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_child_killed(hostperf, kind):
    with KINDS[kind]() as pp:
        Path(f"child-{kind}.json").write_text(json.dumps({"pid": pp.pid, "names": list(pp.names)}))
        calls = [0]

        def roundtrip():
            calls[0] += 1
            if calls[0] == 1100:  # past the warm-up (at most 1000 calls): mid-sampling, at FIFO
                os.kill(pp.pid, signal.SIGKILL)
            pp.roundtrip()

        hostperf(roundtrip, name=kind)


def test_work(hostperf):
    hostperf(work, 300, name="work")
"""

KINDS = ("mpqueue", "multiprocessing", "posix", "ring")


def test_killed_children_fail_their_tests_by_pid_and_leave_nothing(tmp_path: Path, driver: Driver) -> None:
    proj = make_project(tmp_path / "proj", KILLED_CHILDREN, conftest=STATE_CONFTEST, samples=3000, max_time=1.0)
    folder = tmp_path / "baselines"
    write_golden(folder)
    old_runs = disk.load(folder / f"{HOST}.json").runs
    env = {**child_env(), "COLUMNS": "1000"}  # short-summary lines whole, with the message
    res = driver.run(inner_pytest(*save_args(folder), "-p", "no:benchmark"), proj, env=env)
    out = res["stdout"]
    assert res["rc"] == pytest.ExitCode.TESTS_FAILED, out + res["stderr"]
    assert "4 failed, 1 passed" in out, out
    children = {k: json.loads((proj / f"child-{k}.json").read_text()) for k in KINDS}
    for kind, child in children.items():
        # The failure of each test names its own dead child.
        head = f"FAILED test_suite.py::test_child_killed[{kind}]"
        line = next((ln for ln in out.splitlines() if ln.startswith(head)), None)
        assert line is not None, out
        assert re.search(rf"pid {child['pid']} died of signal SIGKILL", line), line
        for name in child["names"]:
            assert not Path("/dev/shm", name).exists() and not Path("/dev/shm", f"sem.{name}").exists()
    assert shm_of(driver.pids()) == []
    assert res["stuck"] == [], res["stuck"]
    # The test that measured something is saved; the file is valid and holds the new run.
    now = disk.load(folder / f"{HOST}.json")
    assert now.runs[:-1] == old_runs and list(now.runs[-1].measurements) == ["test_suite.py::test_work[work]"]
    states = json.loads((proj / "states.json").read_text())
    assert states["after"] == states["before"]
