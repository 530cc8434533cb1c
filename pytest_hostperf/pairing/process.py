"""The base session's process: started by the head in the base tree with the head's harness,
its output kept for error messages, and always reaped (quit, then terminate, then kill, by pid)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from pytest_hostperf.errors import MeasurementError
from pytest_hostperf.pairing.channel import FD_ENV, TREE_ENV, Channel, PairingError
from pytest_hostperf.pairing.worktree import base_tree, remove_tree

#: The base process's entry: import the harness first (so it stays the head's installation),
#: then put the base tree first on sys.path and run pytest there.
BOOT = (
    "import os, sys\n"
    "sys.path[:] = [p for p in sys.path if p not in ('', '.')]\n"  # -c put the cwd first: not the base tree's harness
    "import pytest, pytest_hostperf.pairing.base\n"
    "tree = os.environ['" + TREE_ENV + "']\n"
    "sys.path.insert(0, tree)\n"
    "os.chdir(tree)\n"
    "sys.exit(pytest.main(sys.argv[1:]))\n"
)


class Base:
    """The base session: its process, its two channels, and its cleanup."""

    def __init__(self, ref: str, rootdir: Path, args: list[str], python: str | None = None) -> None:
        self.ref = ref
        self.rootdir = rootdir
        self.tree, self._tmp = base_tree(ref, rootdir)
        ctl_head, ctl_base = socket.socketpair()
        baton_head, baton_base = socket.socketpair()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTEST_XDIST", "HOSTPERF_AGAINST")) and k != "GITHUB_STEP_SUMMARY"}
        env[FD_ENV] = f"{ctl_base.fileno()},{baton_base.fileno()}"
        env[TREE_ENV] = str(self.tree)
        self.log = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                [python or sys.executable, "-c", BOOT, "-p", "pytest_hostperf.pairing.base", "-p", "no:cacheprovider",
                 "-q", "--hostperf", *args, str(self.tree)],
                cwd=tempfile.gettempdir(), env=env, pass_fds=(ctl_base.fileno(), baton_base.fileno()),
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        except OSError as exc:
            remove_tree(rootdir, self._tmp)
            raise PairingError(f"--hostperf-against={ref}: cannot start the base session: {exc}") from None
        finally:
            ctl_base.close()
            baton_base.close()
        self.ctl = Channel(ctl_head, "base session")
        self.baton = baton_head
        try:
            hello = self.ctl.recv()
        except MeasurementError:
            try:  # let it finish writing why it stopped
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            out = self.output()
            self.close(grace=5.0)
            raise PairingError(f"--hostperf-against={ref}: the base session did not start: {out}") from None
        if hello.get("error"):
            self.close(grace=5.0)
            raise PairingError(f"--hostperf-against={ref}: the base session failed: {hello['error']}")

    def output(self, limit: int = 2000) -> str:
        """The base session's last output, one line (for error messages)."""
        if self.log.closed:
            return "(closed)"
        self.log.seek(0)
        text = self.log.read().decode(errors="replace").strip()
        return (text[-limit:] or "no output").replace("\n", " | ")

    def close(self, grace: float = 30.0) -> None:
        """Ask the base to quit, then reap it (terminate, then kill, by pid), remove the tree.
        The baton socket closes first, so a base waiting for its turn stops waiting at once."""
        try:
            baton = getattr(self, "baton", None)
            if baton is not None and baton.fileno() != -1:
                baton.close()
            try:
                self.ctl.send(quit=True)
            except (OSError, AttributeError):
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            for s in (getattr(self, "baton", None), getattr(getattr(self, "ctl", None), "sock", None)):
                if s is not None:
                    s.close()
            self.log.close()
            remove_tree(self.rootdir, self._tmp)


