"""The replica sessions' processes: each started by the head in a tree (the head's own or the
base's) with the head's harness, its output kept for error messages, and always reaped (quit,
then terminate, then kill, by pid). Both sides of a process pair start alike: the same hash
seed, and environments and arguments padded to one size."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pytest_hostperf.errors import MeasurementError
from pytest_hostperf.measure.turns import Side
from pytest_hostperf.pairing.channel import FD_ENV, PAD_ENV, ROLE_ENV, TREE_ENV, Channel, Json, PairingError

#: The replica's entry: import the harness first (so it stays the head's installation),
#: then put the tree first on sys.path and run pytest there.
BOOT = (
    "import os, sys\n"
    "sys.path[:] = [p for p in sys.path if p not in ('', '.')]\n"  # -c put the cwd first: not the tree's harness
    "import pytest, pytest_hostperf.pairing.replica\n"
    "tree = os.environ['" + TREE_ENV + "']\n"
    "sys.path.insert(0, tree)\n"
    "os.chdir(tree)\n"
    "sys.exit(pytest.main(sys.argv[1:]))\n"
)
#: Longest a replica may take to start and collect its tests.
START_S = 120.0


@dataclass(frozen=True, slots=True)
class Launch:
    """How one replica is started: its argv and environment (before padding)."""
    argv: list[str]
    env: dict[str, str]

    def size(self) -> int:
        """Bytes the kernel copies onto the new process's stack for argv and the environment."""
        return sum(len(a.encode()) + 1 for a in self.argv) + \
            sum(len(k.encode()) + len(v.encode()) + 2 for k, v in self.env.items())


def collected(tree: Path, paths: list[str]) -> list[str]:
    """What a replica in ``tree`` collects: the head's own test paths (relative to its rootdir,
    ``file::node`` kept) that exist in ``tree``, as absolute paths (never read as an option); the
    whole tree where none is given or none exists there."""
    out = [str(tree / p) for p in paths if (tree / p.split("::", 1)[0]).exists()]
    return out or [str(tree)]


def launch(role: Side, tree: Path, args: list[str], python: str | None, seed: int,
           paths: list[str] | None = None) -> Launch:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST", "HOSTPERF_AGAINST", "HOSTPERF_PAIRING")) and k != "GITHUB_STEP_SUMMARY"}
    env[TREE_ENV] = str(tree)
    env[ROLE_ENV] = role
    env["PYTHONHASHSEED"] = str(seed)
    env[FD_ENV] = "000,000"  # the real descriptors are filled in at start, padded to this width
    argv = [python or sys.executable, "-c", BOOT, "-p", "pytest_hostperf.pairing.replica", "-p", "no:cacheprovider",
            # plain asserts: a replica's outcome is only passed or not (the head reports the test), and
            # rewriting every module it imports cost each replica seconds of CPU at start and at exit
            "--assert=plain", "-q", "--hostperf", *args, *collected(tree, paths or [])]
    return Launch(argv, env)


def padded(a: Launch, b: Launch) -> tuple[Launch, Launch]:
    """Both launches with a padding variable that makes their argv + environment one size."""
    room = max(a.size(), b.size())

    def pad(x: Launch) -> Launch:
        return Launch(x.argv, dict(x.env, **{PAD_ENV: "x" * (room - x.size())}))

    return pad(a), pad(b)


class Replica:
    """One replica session: its process, its control channel, its end of the pair's baton."""

    def __init__(self, who: str, how: Launch, baton: socket.socket) -> None:
        self.who = who
        ctl_head, ctl_rep = socket.socketpair()
        env = dict(how.env)
        env[FD_ENV] = f"{ctl_rep.fileno():03d},{baton.fileno():03d}"
        self.log = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(how.argv, cwd=tempfile.gettempdir(), env=env,
                                         pass_fds=(ctl_rep.fileno(), baton.fileno()),
                                         stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        except OSError as exc:
            ctl_head.close()
            self.log.close()
            raise PairingError(f"cannot start the {who}: {exc}") from None
        finally:
            ctl_rep.close()
        self.ctl = Channel(ctl_head, who)

    def hello(self) -> Json:
        """Wait for the session to start and collect; raise :class:`PairingError` with its output."""
        try:
            hello = self.ctl.recv(timeout=START_S)
        except MeasurementError:
            try:  # let it finish writing why it stopped
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            raise PairingError(f"the {self.who} did not start: {self.output()}") from None
        if hello.get("error"):
            raise PairingError(f"the {self.who} failed: {hello['error']}")
        return hello

    def output(self, limit: int = 2000) -> str:
        """The session's last output, one line (for error messages)."""
        if self.log.closed:
            return "(closed)"
        self.log.seek(0)
        text = self.log.read().decode(errors="replace").strip()
        return (text[-limit:] or "no output").replace("\n", " | ")

    def quit(self) -> None:
        try:
            self.ctl.send(quit=True)
        except OSError:
            pass

    def reap(self, grace: float) -> None:
        """Wait ``grace`` s for it to exit, then terminate, then kill (by pid); close its sockets."""
        try:
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
            self.ctl.sock.close()
            self.log.close()
