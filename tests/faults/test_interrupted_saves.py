"""SIGINT and SIGKILL of ``pytest --hostperf --hostperf-save`` at several points of a run.

Whatever the point -- interpreter start-up, a measurement at SCHED_FIFO, later measurements,
the save holding its lock, the temp file being written -- the baseline afterwards is the old
file or the old file plus this run (valid, never truncated or mixed), no lock blocks the next
save, temp files and ``/dev/shm`` entries a SIGKILL leaves are swept by the next run, and no
process of the run outlives it.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_hostperf.store import disk

from .conftest import (
    HOST,
    SUITE_IDS,
    SUITE_TESTS,
    Driver,
    Run,
    Watch,
    child_env,
    inner_pytest,
    is_fifo,
    make_project,
    save_args,
    shm_of,
    temp_files,
    wait_until,
    write_golden,
)

#: Where the signal lands, in the order of a run.
POINTS = ("startup", "measuring", "late", "lock", "temp")
TEMP_RX = rf"\.{re.escape(HOST)}\.json\.\w{{8}}\.tmp"


def _signal_at(run: Run, point: str, watch: Watch, sig: int) -> bool:
    """Send ``sig`` when the run reaches ``point``; False if it ended before getting there."""
    if point == "startup":
        time.sleep(0.15)  # imports and collection: nothing of ours has changed the host yet
    elif point in ("measuring", "late"):
        # Seen from outside: the main thread runs SCHED_FIFO only inside a measurement.
        wait_until(lambda: is_fifo(run.pid) or not run.alive(), 60, step=0.001)
        if point == "late":
            time.sleep(0.4)  # a later measurement, between two, or the save
    elif point == "lock":  # the save opens the folder to lock it (the watched folder's own event, no
        # name; nothing else opens it before): it is about to read, merge, write
        if watch.wait("", 60, run.alive) is None:
            return False
    elif point == "temp":  # the temp file exists: the new text is being written and fsynced
        if watch.wait(TEMP_RX, 60, run.alive) is None:
            return False
    if not run.alive():
        return False
    run.signal(sig)
    return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_signal_at_any_point_leaves_old_or_new_baseline(tmp_path: Path, driver: Driver, sig: int) -> None:
    proj = make_project(tmp_path / "proj", SUITE_TESTS)
    folder = tmp_path / "baselines"
    write_golden(folder)
    path = folder / f"{HOST}.json"
    runs = disk.load(path).runs
    reached = {}
    for point in POINTS:
        old_bytes = path.read_bytes()
        watch = Watch(folder)
        try:
            run = driver.start(inner_pytest(*save_args(folder)), proj)
            reached[point] = _signal_at(run, point, watch, sig)
        finally:
            watch.close()
        res = run.finish()
        where = (f"{signal.Signals(sig).name} at {point}: rc {res['rc']}\n"
                 f"{res['stdout'][-3000:]}\n{res['stderr'][-3000:]}")
        assert not res["timed_out"], where
        assert res["stuck"] == [], f"processes outlived the run: {res['stuck']}; {where}"
        assert res["rc"] != 0, where
        # Old or new, and valid either way: load() validates every byte of it.
        now = disk.load(path)
        if now.runs == runs:
            assert path.read_bytes() == old_bytes, where
        else:
            assert now.runs[:-1] == runs, f"the file is neither the old one nor the old one plus a run; {where}"
            assert set(now.runs[-1].measurements) <= SUITE_IDS, where
            runs = now.runs
        others = set(os.listdir(folder)) - {path.name}  # the lock leaves no file
        if sig == signal.SIGINT:
            # Interrupted, the run still cleans up: no temp file, no shared memory, no semaphore.
            assert others == set(), where
            assert shm_of([run.pid]) == [], where
        else:
            assert all(re.fullmatch(TEMP_RX, n) for n in others), where  # at most a killed writer's temp
    assert all(reached.values()), f"the run ended before the signal could land at: {reached}"

    # The next save goes through (no stale lock), sweeps what the kills left, and lands.
    res = driver.run(inner_pytest(*save_args(folder)), proj)
    assert res["rc"] == 0 and res["stuck"] == [], res["stdout"] + res["stderr"]
    now = disk.load(path)
    assert now.runs[:-1] == runs and set(now.runs[-1].measurements) == SUITE_IDS
    assert os.listdir(folder) == [path.name]
    assert shm_of(driver.pids()) == [], "a later run must sweep what killed runs left in /dev/shm"


# A writer with a 20 MB run: writing and fsyncing it takes long enough that a SIGKILL sent when
# its temp file appears lands mid-write, without any hook in the code under test.
BIG_WRITER = textwrap.dedent("""
    import sys
    from dataclasses import replace
    from pathlib import Path
    from pytest_hostperf.store import disk
    folder = Path(sys.argv[1])
    old = disk.load(folder / (sys.argv[2] + ".json"))
    big = replace(old.latest, extra={**old.latest.extra, "pad": "x" * 20_000_000})
    disk.save_run(folder, sys.argv[2], big, keep=100)
""")


def test_writer_killed_mid_write_leaves_old_file_and_next_save_sweeps_its_temp(tmp_path: Path) -> None:
    folder = tmp_path / "baselines"
    old_bytes = write_golden(folder)
    path = folder / f"{HOST}.json"
    old = disk.load(path)
    watch = Watch(folder)
    proc = subprocess.Popen([sys.executable, "-c", BIG_WRITER, str(folder), HOST], env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        temp = watch.wait(TEMP_RX, 60, lambda: proc.poll() is None)
        proc.kill()  # holds the lock, halfway through its temp file
        proc.communicate(timeout=30)
    finally:
        watch.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert temp is not None, "the writer never created its temp file"
    assert path.read_bytes() == old_bytes  # readers never saw the half-written text
    assert temp_files(folder) == [temp], "a SIGKILL cannot clean up: its temp file stays until the next save"
    # The lock died with its holder: the next save neither waits nor fails, and removes the temp.
    disk.save_run(folder, HOST, old.latest, keep=100, lock_timeout=5)
    assert temp_files(folder) == []
    assert disk.load(path).runs == (*old.runs, old.latest)


def test_stale_temp_files_of_other_names_are_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "baselines"
    write_golden(folder)
    old = disk.load(folder / f"{HOST}.json")
    keep = [".other-host.json.abcdefgh.tmp", f".{HOST}.json.short.tmp", "notes.tmp", f"{HOST}.json.tmp"]
    stale = [f".{HOST}.json.a1b2c3d4.tmp", f".{HOST}.json.zz_99xyq.tmp"]
    for name in keep + stale:
        (folder / name).write_text("half a baseline")
    disk.save_run(folder, HOST, old.latest, keep=100)
    assert sorted(temp_files(folder)) == sorted(keep)
