"""The git commit of a run (provenance.py)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_hostperf.store import provenance


def test_commit_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    none = {"sha": None, "branch": None, "dirty": None}
    assert provenance.commit_info(tmp_path) == none  # not a repository
    assert provenance.commit_info(tmp_path / "missing") == none
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", "-b", "work", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("1")
    subprocess.run([*git, "add", "f"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], cwd=tmp_path, check=True)
    info = provenance.commit_info(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{40}", info["sha"]) and info["branch"] == "work" and info["dirty"] is False
    (tmp_path / "f").write_text("2")
    assert provenance.commit_info(tmp_path)["dirty"] is True
    subprocess.run([*git, "checkout", "-q", "--detach"], cwd=tmp_path, check=True)
    assert provenance.commit_info(tmp_path)["branch"] is None
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git at all
    assert provenance.commit_info(tmp_path) == none
