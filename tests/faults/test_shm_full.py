"""``/dev/shm`` exhausted: the IPC and ring workloads fail with a reason naming ``/dev/shm``.

The host's ``/dev/shm`` is never filled: each case runs in a private mount namespace
(``unshare --mount``) with its own 64 KiB tmpfs on ``/dev/shm``, filled to the last byte.
Before the fix, a shared-memory ring there died of SIGBUS on its first store (``ftruncate``
reserves nothing on tmpfs); multiprocessing semaphores and queues raised a bare ``OSError``.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import REPO, Driver, child_env, inner_pytest

needs_unshare = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("mount") is None,
    reason="a private /dev/shm needs root and util-linux unshare and mount (unshare --mount)")

FILL = textwrap.dedent("""
    import os, sys
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for size in (1 << 16, 4096):
        for _ in range(1 << 16):
            try:
                if os.write(fd, b"\\0" * size) < size:
                    break
            except OSError:
                break
    os.close(fd)
""")

# Each workload, one by one, in the full /dev/shm: the exception type and message, and what
# /dev/shm holds afterwards (nothing but the filler: no half-created segment or semaphore).
PROBE = textwrap.dedent("""
    import json, os, sys
    from benchmarks.workloads.ipc import NamedSemaphore, SemPingPong, resource_name
    from benchmarks.workloads.ring import ProcessPingPong, Ring

    cases = {
        "Ring.create_shared": lambda: Ring.create_shared(8, 8),
        "NamedSemaphore.create": lambda: NamedSemaphore.create(resource_name("probe")),
        "SemPingPong(posix)": lambda: SemPingPong("posix").__enter__(),
        "SemPingPong(multiprocessing)": lambda: SemPingPong("multiprocessing").__enter__(),
        "ProcessPingPong(ring)": lambda: ProcessPingPong("ring").__enter__(),
        "ProcessPingPong(mpqueue)": lambda: ProcessPingPong("mpqueue").__enter__(),
    }
    out = {}
    for name, make in cases.items():
        try:
            make()
            out[name] = {"type": None}
        except BaseException as exc:
            out[name] = {"type": [c.__name__ for c in type(exc).__mro__], "message": str(exc),
                         "errno": getattr(exc, "errno", None)}
    out["left"] = sorted(os.listdir("/dev/shm"))
    with open(sys.argv[1], "w") as fh:
        json.dump(out, fh)
""")


def _in_private_shm(script: str) -> list[str]:
    """``sh -c`` in a private mount namespace with a fresh 64 KiB tmpfs on /dev/shm."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            "mount -t tmpfs -o size=64k,mode=1777 tmpfs /dev/shm && " + script]


@needs_unshare
def test_full_dev_shm_is_a_clear_error_naming_it(tmp_path: Path, driver: Driver) -> None:
    filler = f"filler-{secrets.token_hex(4)}"
    (tmp_path / "fill.py").write_text(FILL)
    (tmp_path / "probe.py").write_text(PROBE)
    result = tmp_path / "probe.json"
    py = sys.executable
    script = f"{py} {tmp_path}/fill.py /dev/shm/{filler} && exec {py} {tmp_path}/probe.py {result}"
    res = driver.run(_in_private_shm(script), tmp_path)
    assert res["rc"] == 0, res["stdout"] + res["stderr"]  # a SIGBUS would be rc -7 here
    assert not Path("/dev/shm", filler).exists(), "the host's /dev/shm must never be filled"
    out = json.loads(result.read_text())
    assert out.pop("left") == [filler], "a failed create must leave nothing half-made in /dev/shm"
    for name, got in out.items():
        assert got["type"] is not None, f"{name} succeeded in a full /dev/shm?"
        assert "IpcResourceError" in got["type"] and "HostperfError" in got["type"] and "OSError" in got["type"], \
            (name, got)
        assert "/dev/shm is full (No space left on device)" in got["message"], (name, got["message"])
        assert "--shm-size" in got["message"] and got["errno"] == 28, (name, got)
    assert "/dev/shm/hostperf-" in out["Ring.create_shared"]["message"]  # the segment it could not create
    assert "/dev/shm/sem.hostperf-" in out["NamedSemaphore.create"]["message"]


@needs_unshare
def test_benchmarks_in_a_full_dev_shm_fail_by_name_and_nothing_else_breaks(tmp_path: Path, driver: Driver) -> None:
    filler = f"filler-{secrets.token_hex(4)}"
    (tmp_path / "fill.py").write_text(FILL)
    # The sleep benchmark stands for "the rest": test_noop_is_batched can miss its batching on a
    # loaded host, which has nothing to do with /dev/shm.
    cmd = " ".join(inner_pytest("-p", "no:benchmark", "-rf", "benchmarks/test_ipc.py", "benchmarks/test_handoff.py",
                                "benchmarks/test_basics.py::test_sleep_100us"))
    env = {**child_env(), "COLUMNS": "1000"}
    script = f"{sys.executable} {tmp_path}/fill.py /dev/shm/{filler} && exec {cmd}"
    res = driver.run(_in_private_shm(script), REPO, env=env)
    out = res["stdout"]
    assert not Path("/dev/shm", filler).exists(), "the host's /dev/shm must never be filled"
    assert res["rc"] == pytest.ExitCode.TESTS_FAILED, out + res["stderr"]
    assert "3 failed, 2 passed" in out, out  # thread hand-off and a sleep do not need /dev/shm
    failed = sorted(line.split(" - ")[0] for line in out.splitlines() if line.startswith("FAILED"))
    assert failed == ["FAILED benchmarks/test_handoff.py::test_processes_mpqueue_vs_shm_ring",
                      "FAILED benchmarks/test_ipc.py::test_semaphore_ping_pong[multiprocessing]",
                      "FAILED benchmarks/test_ipc.py::test_semaphore_ping_pong[posix]"], out
    for line in out.splitlines():
        if line.startswith("FAILED"):
            assert "IpcResourceError" in line and "/dev/shm is full" in line, line
    assert res["stuck"] == []
