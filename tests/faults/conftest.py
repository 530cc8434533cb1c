"""Shared machinery of the fault-injection suite: tiny projects, a reaping driver, tmpfs mounts.

Every case here does the real thing where it can (signals, kills, full and read-only
filesystems, a full ``/dev/shm`` in a private mount namespace) and cleans up after itself:
each process is started by this suite and reaped, each mount is unmounted in ``finally``,
and only ``/dev/shm`` entries owned by processes this suite started are ever removed.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from benchmarks.workloads.ipc import list_resources
from pytest_hostperf.store import disk

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "baseline_v1.json"
HOST = "fault-host"
#: Wall-clock bound for any one pytest subprocess (a hang fails the case, never the suite).
RUN_TIMEOUT_S = 120.0
#: Options of the pytest runs started here; the same as tests/conftest.py's (see why there).
CHILD_ADDOPTS = "-p no:hypothesispytest"

FAST_INI = """\
[pytest]
hostperf_samples = {samples}
hostperf_max_time = {max_time}
hostperf_keep_runs = 100
"""

#: A small benchmark project: a pure-Python loop, a shared-memory ring to a child process and
#: POSIX named semaphores to another, so a kill can leave every kind of resource behind.
SUITE_TESTS = """
from benchmarks.workloads.ipc import SemPingPong
from benchmarks.workloads.ring import ProcessPingPong
from benchmarks.workloads.synthetic import work


def test_work(hostperf):
    hostperf(work, 300, name="work")


def test_ring(hostperf):
    with ProcessPingPong("ring") as pp:
        hostperf(pp.roundtrip, name="ring")


def test_sem(hostperf):
    with SemPingPong("posix") as pp:
        hostperf(pp.roundtrip, name="sem")
"""
SUITE_IDS = frozenset({"test_suite.py::test_work[work]", "test_suite.py::test_ring[ring]",
                       "test_suite.py::test_sem[sem]"})

#: The state of the calling thread, as a conftest of a tiny project records it.
STATE_CONFTEST = """
import json, os

def state():
    vmlck = [l for l in open("/proc/self/status") if l.startswith("VmLck:")][0].split()[1]
    return {"affinity": sorted(os.sched_getaffinity(0)), "policy": os.sched_getscheduler(0),
            "priority": os.sched_getparam(0).sched_priority, "vmlck_kib": int(vmlck)}

BEFORE = state()

def pytest_sessionfinish(session):
    with open("states.json", "w") as fh:
        json.dump({"before": BEFORE, "after": state()}, fh)
"""


# --------------------------------------------------------------------------- skips


def _can_mount() -> str | None:
    """Why a tmpfs cannot be mounted here, or None."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (CAP_SYS_ADMIN); run the fault suite as root"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "mounting a tmpfs needs util-linux mount/umount, which are not installed"
    return None


needs_mount = pytest.mark.skipif(_can_mount() is not None, reason=str(_can_mount()))


# --------------------------------------------------------------------------- tiny projects


def make_project(path: Path, tests: str, *, conftest: str | None = None, samples: int = 400,
                 max_time: float = 0.3, name: str = "test_suite.py") -> Path:
    """Write a pytest project (ini with short measurements, one test file, a conftest)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "pytest.ini").write_text(FAST_INI.format(samples=samples, max_time=max_time))
    (path / name).write_text(textwrap.dedent(tests))
    if conftest is not None:
        (path / "conftest.py").write_text(textwrap.dedent(conftest))
    return path


def inner_pytest(*args: str) -> list[str]:
    """``python -m pytest`` with no cache (nothing written next to the project but what we ask)."""
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]


def save_args(folder: Path) -> list[str]:
    return ["--hostperf", "--hostperf-save", f"--hostperf-host={HOST}", f"--hostperf-baselines={folder}",
            "--hostperf-tolerance=300"]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HOSTPERF_"))}
    env.pop("GITHUB_STEP_SUMMARY", None)
    env["PYTEST_ADDOPTS"] = CHILD_ADDOPTS
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def write_golden(folder: Path, host: str = HOST) -> bytes:
    """Put a valid baseline for ``host`` (the golden file's runs) into ``folder``; its bytes."""
    golden = disk.load(GOLDEN)
    folder.mkdir(parents=True, exist_ok=True)
    text = disk.to_json(disk.Baseline(folder / f"{host}.json", host, golden.runs).to_dict())
    (folder / f"{host}.json").write_text(text, encoding="utf-8")
    return text.encode()


def temp_files(folder: Path) -> list[str]:
    """Leftover temp files of atomic writes in ``folder``."""
    return sorted(n for n in os.listdir(folder) if n.endswith(".tmp"))


# --------------------------------------------------------------------------- the driver

# Runs one command as a child subreaper: processes orphaned by a killed pytest (echo children,
# multiprocessing's resource tracker) are re-parented to the driver, which gives each a bounded
# time to leave by itself, then kills (by pid) and reaps whatever stayed. Nothing is left to
# pid 1, which may never reap zombies in a container.
DRIVER = textwrap.dedent("""
    import ctypes, json, os, signal, subprocess, sys, time
    import psutil
    # A background job (`nohup pytest &`) starts with SIGINT ignored, and children inherit
    # that: pytest would never see the SIGINT these tests send. Default it for the child.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    spec = json.loads(sys.argv[1])
    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    with open(spec["stdout"], "wb") as out, open(spec["stderr"], "wb") as err:
        proc = subprocess.Popen(spec["cmd"], cwd=spec["cwd"], env=spec["env"], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
    print(proc.pid, flush=True)
    timed_out = False
    try:
        rc = proc.wait(timeout=spec["timeout"])
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        rc = proc.wait()
    exited, stuck = [], []
    deadline = time.monotonic() + spec["orphan_wait"]
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            exited.append(pid)
            continue
        if time.monotonic() >= deadline:
            for child in psutil.Process().children():
                stuck.append({"pid": child.pid, "cmdline": " ".join(child.cmdline())[:200]})
                os.kill(child.pid, signal.SIGKILL)
                os.waitpid(child.pid, 0)
            break
        time.sleep(0.005)
    print(json.dumps({"rc": rc, "timed_out": timed_out, "orphans": exited, "stuck": stuck}), flush=True)
""")


@dataclass
class Run:
    """One pytest subprocess started under the driver."""

    driver: subprocess.Popen
    pid: int
    out: Path
    err: Path
    result: dict[str, Any] | None = None
    started: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        """Whether the pytest process still runs (not yet reaped by the driver)."""
        try:
            with open(f"/proc/{self.pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return False

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the pytest process (ours: the driver started it and has not reaped it)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def finish(self, timeout: float = RUN_TIMEOUT_S + 30) -> dict[str, Any]:
        """Wait for pytest and its orphans; the driver's report plus stdout and stderr."""
        if self.result is None:
            stdout, _ = self.driver.communicate(timeout=timeout)
            self.result = json.loads(stdout.strip().splitlines()[-1])
            self.result["stdout"] = self.out.read_text(errors="replace")
            self.result["stderr"] = self.err.read_text(errors="replace")
        return self.result

    def kill_all(self) -> None:
        """Teardown of last resort: kill the pytest process and the driver, by pid."""
        if self.driver.poll() is None:
            if self.alive():
                self.signal(signal.SIGKILL)
            try:
                self.driver.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait(timeout=10)
        if self.driver.stdout is not None:
            self.driver.stdout.close()


class Driver:
    """Starts pytest subprocesses under the reaping driver and cleans up after all of them."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.runs: list[Run] = []

    def start(self, cmd: list[str], cwd: Path, *, env: dict[str, str] | None = None,
              timeout: float = RUN_TIMEOUT_S, orphan_wait: float = 10.0) -> Run:
        n = len(self.runs)
        out, err = self.tmp / f"run{n}.out", self.tmp / f"run{n}.err"
        spec = {"cmd": cmd, "cwd": str(cwd), "env": env or child_env(), "stdout": str(out),
                "stderr": str(err), "timeout": timeout, "orphan_wait": orphan_wait}
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(spec)], stdout=subprocess.PIPE,
                                text=True, env=child_env())
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        if not ready:
            proc.kill()
            proc.wait(10)
            raise AssertionError("the driver did not start pytest within 60 s")
        run = Run(driver=proc, pid=int(proc.stdout.readline()), out=out, err=err)
        self.runs.append(run)
        return run

    def run(self, cmd: list[str], cwd: Path, **kw: Any) -> dict[str, Any]:
        """Start and finish one run."""
        return self.start(cmd, cwd, **kw).finish()

    def pids(self) -> list[int]:
        return [r.pid for r in self.runs]

    def close(self) -> None:
        for run in self.runs:
            run.kill_all()
        remove_shm_of(self.pids())


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Driver]:
    """Start pytest subprocesses; at teardown everything they left is killed, reaped and removed."""
    d = Driver(tmp_path)
    try:
        yield d
    finally:
        d.close()


def remove_shm_of(pids: list[int]) -> None:
    """Remove /dev/shm entries owned by these pids (processes this suite started), and only those."""
    for pid in pids:
        for path in list_resources(pid):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def shm_of(pids: list[int]) -> list[Path]:
    return [p for pid in pids for p in list_resources(pid)]


# --------------------------------------------------------------------------- waiting, watching


def wait_until(predicate: Callable[[], Any], timeout: float, step: float = 0.002) -> Any:
    """Poll ``predicate`` until it returns something truthy or ``timeout`` passes; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def is_fifo(pid: int) -> bool:
    try:
        return os.sched_getscheduler(pid) & ~0x40000000 == os.SCHED_FIFO
    except OSError:
        return False


IN_OPEN, IN_CREATE = 0x20, 0x100


class Watch:
    """inotify on one folder: wait for a file whose name matches to be created or opened.

    A baseline save opens its folder to lock it (an event of the watched folder itself, with
    no name), then creates its temp file: watching for those
    puts a signal inside the save itself, which a fixed delay would almost never hit.
    """

    def __init__(self, folder: Path, mask: int = IN_OPEN | IN_CREATE) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if libc.inotify_add_watch(self.fd, str(folder).encode(), mask) < 0:
            err = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(err, f"inotify_add_watch({folder})")

    def wait(self, pattern: str, timeout: float, alive: Callable[[], bool]) -> str | None:
        """The first name fully matching ``pattern`` (a regex) seen within ``timeout``."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive():
            ready, _, _ = select.select([self.fd], [], [], 0.02)
            if not ready:
                continue
            data = os.read(self.fd, 1 << 16)
            off = 0
            while off + 16 <= len(data):
                _wd, _mask, _cookie, size = struct.unpack_from("iIII", data, off)
                name = data[off + 16:off + 16 + size].rstrip(b"\0").decode(errors="replace")
                off += 16 + size
                if rx.fullmatch(name):
                    return name
        return None

    def close(self) -> None:
        os.close(self.fd)


# --------------------------------------------------------------------------- tmpfs


@contextlib.contextmanager
def tmpfs(where: Path, size: str = "64k") -> Iterator[Path]:
    """A fresh tmpfs of ``size`` mounted on ``where``; unmounted (also lazily, if busy) after."""
    why = _can_mount()
    if why:
        pytest.skip(why)
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (mount: {proc.stderr.strip()})")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def fill(folder: Path, name: str = "filler") -> Path:
    """Fill the filesystem of ``folder`` to the last byte; the filler file."""
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        for size in (1 << 16, 4096, 1):  # big writes, then smaller ones for the last bytes
            for _ in range(1 << 16):  # bounded: far beyond any tmpfs made here
                try:
                    if os.write(fd, b"\0" * size) < size:
                        break
                except OSError:
                    break
    finally:
        os.close(fd)
    return path


# --------------------------------------------------------------------------- outside view


def thread_states(pid: int) -> dict[int, dict[str, Any]]:
    """Policy, priority and affinity of every thread of ``pid``, read from outside."""
    states = {}
    for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")):
        with contextlib.suppress(OSError):
            states[tid] = {"policy": os.sched_getscheduler(tid) & ~0x40000000,
                           "priority": os.sched_getparam(tid).sched_priority,
                           "affinity": sorted(os.sched_getaffinity(tid))}
    return states


def vm_locked_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return int(next(line for line in fh if line.startswith("VmLck:")).split()[1])
