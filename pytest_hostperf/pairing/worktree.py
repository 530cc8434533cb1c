"""The base tree of ``--hostperf-against=REF``: a directory as given, or a detached ``git
worktree`` of the revision in a temp dir, removed at the end. No network, every git command
bounded (``GIT_S``)."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from pytest_hostperf.pairing.channel import PairingError

#: Longest a ``git`` command may take.
GIT_S = 60.0


#: Longest REF taken as given (git's own refnames stay far below it).
MAX_REF = 1024
_SHA = re.compile(r"[0-9a-f]{4,64}")


def _as_dir(ref: str) -> Path | None:
    """``ref`` as an existing directory, or None (also for a name the OS refuses: too long,
    a NUL byte)."""
    try:
        given = Path(ref)
        return given.resolve() if given.is_dir() else None
    except (OSError, ValueError):
        return None


def resolve(ref: str, rootdir: Path) -> str:
    """The commit ``ref`` names in ``rootdir``'s repository, as a full sha; raise
    :class:`PairingError` (one line naming the option and the fix) for anything else. REF is
    checked before git sees it: no newline or NUL, at most MAX_REF characters, and it reaches
    git only after ``--end-of-options``, so a REF such as ``--output=x`` is a revision git does
    not know, never an option."""
    shown = ref if len(ref) <= 80 else ref[:60] + f"... ({len(ref)} characters)"
    shown = shown.replace("\n", "\\n").replace("\0", "\\0")
    fix = "give a commit sha, a branch or tag name, or the path of a directory holding the base checkout"
    if not ref.strip() or len(ref) > MAX_REF or any(c in ref for c in "\n\r\0"):
        raise PairingError(f"--hostperf-against={shown}: not a usable revision or directory ({fix})")
    try:
        proc = subprocess.run(["git", "-C", str(rootdir), "rev-parse", "--verify", "--quiet", "--end-of-options",
                               f"{ref}^{{commit}}"],
                              capture_output=True, text=True, timeout=GIT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PairingError(f"--hostperf-against={shown}: git rev-parse failed: {exc}") from None
    sha = proc.stdout.strip()
    if proc.returncode != 0 or not _SHA.fullmatch(sha):
        raise PairingError(f"--hostperf-against={shown}: not a directory, and not a revision of {rootdir} "
                           f"(fetch it, or {fix})")
    return sha


def check_ref(ref: str, rootdir: Path) -> None:
    """Raise :class:`PairingError` unless ``ref`` is a directory or a commit of ``rootdir``'s
    repository (what the xdist controller checks before its workers start base sessions)."""
    if _as_dir(ref) is None:
        resolve(ref, rootdir)


def base_tree(ref: str, rootdir: Path) -> tuple[Path, Path | None]:
    """The base checkout: ``ref`` itself when it is a directory, else a detached worktree of the
    commit ``ref`` resolves to (:func:`resolve`), in a temp dir (returned second, to be
    removed). No network."""
    given = _as_dir(ref)
    if given is not None:
        return given, None
    sha = resolve(ref, rootdir)
    tmp = Path(tempfile.mkdtemp(prefix="hostperf-base-"))
    tree = tmp / "base"
    try:
        proc = subprocess.run(["git", "-C", str(rootdir), "worktree", "add", "--detach", "-q", str(tree), sha],
                              capture_output=True, text=True, timeout=GIT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PairingError(f"--hostperf-against={ref}: git worktree failed: {exc}") from None
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        why = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise PairingError(f"--hostperf-against={ref}: git cannot check out {sha[:12]} as a worktree of "
                           f"{rootdir}: {why}")
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
    shallow clone). A baseline file is input too: only a hex sha reaches git."""
    if not _SHA.fullmatch(sha):
        return False
    known = subprocess.run(["git", "-C", str(rootdir), "cat-file", "-e", f"{sha}^{{commit}}"],
                           capture_output=True, timeout=GIT_S, stdin=subprocess.DEVNULL, check=False)
    return known.returncode == 0
