from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmarks.workloads.ipc import (
    NamedSemaphore,
    SemPingPong,
    loops_per_second,
    owner_pid,
    pid_alive,
    resource_name,
    sweep_stale,
)
from pytest_hostperf.errors import HostperfError, InvalidArgument, MeasurementError

SHM = Path("/dev/shm")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True, timeout=30)
    pid = int(proc.stdout)
    assert not pid_alive(pid)
    return pid


# --- names and sweeping ------------------------------------------------------------------------


def test_resource_name_encodes_the_owner() -> None:
    name = resource_name("ping")
    assert name.startswith(f"hostperf-{os.getpid()}-") and name.endswith("-ping")
    assert owner_pid(name) == os.getpid()
    assert owner_pid("sem." + name) == os.getpid()
    assert resource_name() != resource_name()
    with pytest.raises(InvalidArgument):
        resource_name("a/b")


@pytest.mark.parametrize("name", ["other", "hostperf-", "hostperf-x-1", "hostperf-12", "sem.mp-abc",
                                  "hostperf-12-zz", "hostperf-12-ab/../x"])
def test_foreign_names_are_not_ours(name: str) -> None:
    assert owner_pid(name) is None


def test_sweep_removes_dead_owners_only(tmp_path: Path, dead_pid: int) -> None:
    alive = os.getppid()  # our parent runs as long as we do
    stale = [tmp_path / f"hostperf-{dead_pid}-0a1b2c3d-ring", tmp_path / f"sem.hostperf-{dead_pid}-0a1b2c3d-ping"]
    kept = [tmp_path / f"hostperf-{alive}-0a1b2c3d-ring", tmp_path / f"hostperf-{os.getpid()}-0a1b2c3d",
            tmp_path / "other", tmp_path / f"psm_{dead_pid}"]
    for p in stale + kept:
        p.write_bytes(b"x")
    removed = sweep_stale(shm_dir=tmp_path)
    assert sorted(removed) == sorted(stale)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale)
    assert sweep_stale(shm_dir=tmp_path / "missing") == []


def test_sweep_uses_the_injected_liveness(tmp_path: Path) -> None:
    (tmp_path / "hostperf-123-00ff00ff").write_bytes(b"")
    assert sweep_stale(shm_dir=tmp_path, alive=lambda pid: True) == []
    assert [p.name for p in sweep_stale(shm_dir=tmp_path, alive=lambda pid: pid != 123)] == ["hostperf-123-00ff00ff"]


def test_sweep_removes_a_real_stale_semaphore(dead_pid: int) -> None:
    name = f"hostperf-{dead_pid}-{os.urandom(4).hex()}-ping"
    sem = NamedSemaphore.create(name)
    sem.close(unlink=False)  # as if its owner had been killed
    path = SHM / f"sem.{name}"
    try:
        assert path.exists()
        assert path in sweep_stale()
        assert not path.exists()
        with pytest.raises(HostperfError, match="No such file"):
            NamedSemaphore.open(name)
    finally:
        path.unlink(missing_ok=True)


def test_a_new_process_sweeps_stale_resources_on_its_first_name(dead_pid: int) -> None:
    stale = SHM / f"hostperf-{dead_pid}-{os.urandom(4).hex()}-ring"
    stale.write_bytes(b"\0" * 64)  # a segment left by a killed run
    try:
        code = "from benchmarks.workloads.ipc import resource_name; print(resource_name('x'))"
        env = {**os.environ, "PYTHONPATH": str(REPO)}  # benchmarks/ is not installed
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                             env=env)
        assert out.stdout.startswith("hostperf-")
        assert not stale.exists()
    finally:
        stale.unlink(missing_ok=True)


# --- the semaphore itself ----------------------------------------------------------------------


def test_named_semaphore_post_wait_and_timeout(no_leftovers: None) -> None:
    with NamedSemaphore.create(resource_name("t")) as sem:
        assert (SHM / f"sem.{sem.name}").exists()
        other = NamedSemaphore.open(sem.name)
        sem.post()
        assert other.wait(1.0)
        t0 = time.monotonic()
        assert not other.wait(0.02)
        assert 0.015 < time.monotonic() - t0 < 5
        assert not other.try_wait()
        other.close()
        with pytest.raises(HostperfError, match="closed"):
            other.post()
    assert not (SHM / f"sem.{sem.name}").exists()


def test_create_refuses_an_existing_name(no_leftovers: None) -> None:
    with NamedSemaphore.create(resource_name("t")) as sem, pytest.raises(HostperfError, match="exists"):
        NamedSemaphore.create(sem.name)


# --- ping-pong ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["posix", "multiprocessing"])
def test_pingpong_runs_and_cleans_up(kind: str, no_leftovers: None) -> None:
    with SemPingPong(kind) as pp:
        if kind == "posix":
            assert all((SHM / f"sem.{n}").exists() for n in pp.names)
        for _ in range(200):
            pp.roundtrip()
        proc = pp._proc
    assert proc.exitcode == 0  # left on the stop flag, not killed
    assert not any((SHM / f"sem.{n}").exists() for n in pp.names)
    with pytest.raises(MeasurementError, match="after its with-block"):
        pp.roundtrip()


@pytest.mark.parametrize("kind", ["posix", "multiprocessing"])
def test_killed_child_is_a_measurement_error_naming_its_pid(kind: str, no_leftovers: None) -> None:
    with SemPingPong(kind, timeout_s=2.0) as pp:
        pid = pp.pid
        assert pid is not None
        killer = threading.Timer(0.1, os.kill, (pid, signal.SIGKILL))
        killer.start()
        t0 = time.monotonic()
        with pytest.raises(MeasurementError, match=rf"pid {pid} died of signal SIGKILL"):
            while time.monotonic() - t0 < 10:  # bounded: the kill lands after 0.1 s
                pp.roundtrip()
        killer.join()
        assert time.monotonic() - t0 < 5
    assert not any((SHM / f"sem.{n}").exists() for n in pp.names)


def test_silent_child_times_out_with_its_pid(no_leftovers: None) -> None:
    with SemPingPong("posix", timeout_s=0.3) as pp:
        os.kill(pp.pid, signal.SIGSTOP)  # alive but never answers
        try:
            t0 = time.monotonic()
            with pytest.raises(MeasurementError, match=rf"pid {pp.pid} did not answer within 0.3 s"):
                pp.roundtrip()
            assert time.monotonic() - t0 < 3
        finally:
            os.kill(pp.pid, signal.SIGCONT)


def test_child_is_pinned_and_the_caller_is_not(no_leftovers: None) -> None:
    mine = os.sched_getaffinity(0)
    cpu = max(mine)
    with SemPingPong("posix", cpus=(min(mine), cpu)) as pp:
        assert os.sched_getaffinity(pp.pid) == {cpu}
        pp.roundtrip()
    assert os.sched_getaffinity(0) == mine


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArgument, match="'posix' or 'multiprocessing'"):
        SemPingPong("sysv")
    with pytest.raises(InvalidArgument, match="not online"):
        SemPingPong("posix", cpus=(0, 4096))
    with pytest.raises(InvalidArgument, match="start_method"):
        SemPingPong("posix", start_method="teleport")


def test_loops_per_second() -> None:
    assert loops_per_second(40_000) == 25_000.0
    assert loops_per_second(SimpleNamespace(p50=1_000.0, mean=2_000.0)) == 1e6
    assert loops_per_second(SimpleNamespace(p50=1_000.0, mean=2_000.0), stat="mean") == 5e5
    with pytest.raises(InvalidArgument):
        loops_per_second(0)
