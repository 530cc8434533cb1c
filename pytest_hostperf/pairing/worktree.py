"""The base tree of ``--hostperf-against=REF``: a directory as given, or a detached ``git
worktree`` of the revision in a temp dir, removed at the end. No network, every git command
bounded (``GIT_S``)."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from pytest_hostperf.pairing.channel import PairingError

#: Longest a ``git`` command may take.
GIT_S = 60.0


def check_ref(ref: str, rootdir: Path) -> None:
    """Raise :class:`PairingError` unless ``ref`` is a directory or a commit of ``rootdir``'s
    repository (what the xdist controller checks before its workers start base sessions)."""
    if Path(ref).is_dir():
        return
    try:
        proc = subprocess.run(["git", "-C", str(rootdir), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                              capture_output=True, text=True, timeout=GIT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PairingError(f"--hostperf-against={ref}: git rev-parse failed: {exc}") from None
    if proc.returncode != 0:
        raise PairingError(f"--hostperf-against={ref}: not a directory, and not a revision of {rootdir} "
                           "(fetch it, or give a sha, a branch or a path to the base checkout)")


def base_tree(ref: str, rootdir: Path) -> tuple[Path, Path | None]:
    """The base checkout: ``ref`` itself when it is a directory, else a detached worktree of the
    git revision ``ref`` in a temp dir (returned second, to be removed). No network."""
    given = Path(ref)
    if given.is_dir():
        return given.resolve(), None
    tmp = Path(tempfile.mkdtemp(prefix="hostperf-base-"))
    tree = tmp / "base"
    try:
        proc = subprocess.run(["git", "-C", str(rootdir), "worktree", "add", "--detach", "-q", str(tree), ref],
                              capture_output=True, text=True, timeout=GIT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PairingError(f"--hostperf-against={ref}: git worktree failed: {exc}") from None
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        why = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise PairingError(f"--hostperf-against={ref}: not a directory, and git cannot check it out as a "
                           f"revision of {rootdir}: {why}")
    return tree, tmp


def remove_tree(rootdir: Path, tmp: Path | None) -> None:
    if tmp is None:
        return
    subprocess.run(["git", "-C", str(rootdir), "worktree", "remove", "--force", str(tmp / "base")],
                   capture_output=True, timeout=GIT_S, stdin=subprocess.DEVNULL, check=False)
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["git", "-C", str(rootdir), "worktree", "prune"], capture_output=True, timeout=GIT_S,
                   stdin=subprocess.DEVNULL, check=False)




def is_commit(sha: str, rootdir: Path) -> bool:
    """Whether ``sha`` names a commit of ``rootdir``'s repository (a baseline's may not, after a
    shallow clone)."""
    known = subprocess.run(["git", "-C", str(rootdir), "cat-file", "-e", f"{sha}^{{commit}}"],
                           capture_output=True, timeout=GIT_S, stdin=subprocess.DEVNULL, check=False)
    return known.returncode == 0
