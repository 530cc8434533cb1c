"""The benchmark suite leaves no process behind: multiprocessing's resource tracker, started
by the IPC benchmarks' spawned children, is reaped at the end (benchmarks/conftest.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def test_ipc_benchmarks_leave_no_process_in_their_group() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                             "benchmarks/test_ipc.py", "-k", "multiprocessing"],
                            cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"})
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
    time.sleep(0.5)  # a process left behind would still be there (or a zombie) after this
    left = []
    for p in psutil.process_iter(["pid", "status", "cmdline"]):
        try:
            if os.getpgid(p.pid) == proc.pid:
                left.append((p.pid, p.info["status"], p.info["cmdline"]))
        except (ProcessLookupError, PermissionError):
            continue
    assert left == []
