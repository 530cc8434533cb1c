"""Provenance of a run: the git commit it measured (sha, branch, dirty), read with ``git``.

Never raises and never waits long: no git, no repository or a hung git all give unknown
(None) values. Reads no baseline files.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from pytest_hostperf.store.baseline_schema import _SHA_RE

__all__ = ["GIT_TIMEOUT_S", "commit_info"]

GIT_TIMEOUT_S = 5.0


def _git(args: list[str], cwd: Path) -> str | None:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def commit_info(cwd: Path) -> dict[str, Any]:
    """``{"sha", "branch", "dirty"}`` of the git checkout at ``cwd``; None for what is not
    known (no git, not a repository, detached HEAD for the branch). Never raises."""
    sha = _git(["rev-parse", "--verify", "-q", "HEAD"], cwd)
    if sha is None or not _SHA_RE.fullmatch(sha):
        return {"sha": None, "branch": None, "dirty": None}
    branch = _git(["symbolic-ref", "--short", "-q", "HEAD"], cwd) or None
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {"sha": sha, "branch": branch, "dirty": None if status is None else bool(status)}

