"""Atomic file writes: a temp file in the target's folder, fsync, then ``os.replace``.

Readers see either the old file or the new one, never a half-written one, also when the
writer is killed mid-write. Used for reports here and for baselines by ``store.py``.

The temp file is named here (``.<name>.<8 hex>.tmp``) and created with ``O_EXCL`` inside
the ``try`` that removes it, not by ``tempfile.mkstemp``: a Ctrl-C that lands as mkstemp's
``open`` returns is raised before mkstemp hands back the name, and the file stayed behind
(found by tests/faults). A SIGKILL still leaves one; ``store.save_run`` sweeps those.
"""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

_ATTEMPTS = 100  # names are 32 random bits: a clash is rare, a hundred in a row impossible


def temp_name(path: Path) -> Path:
    """A fresh temp file name next to ``path``: ``.<name>.<8 hex>.tmp``."""
    return path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"


def umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status`` on Linux 4.7+;
    elsewhere set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def atomic_write_text(path: Path, text: str, *, mode: int | None = None, mkdir: bool = True,
                      sync_dir: bool = False) -> None:
    """Write ``text`` to ``path`` atomically (same-folder temp file, fsync, ``os.replace``).

    ``mode`` sets the file's permission bits (default: a new file's, 0666 less the umask, so
    0644 under the usual 022; the temp file is 0600 until it has them);
    ``mkdir`` creates the folder first; ``sync_dir`` also fsyncs the folder so that the
    rename survives a power cut. Any exception -- ``KeyboardInterrupt`` included -- removes
    the temp file and leaves the old ``path`` untouched.
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    for _ in range(_ATTEMPTS):
        tmp = temp_name(path)
        ours = True  # until open() says the name was taken: never remove a file we did not create
        fd = -1
        try:
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                ours = False
                continue
            except OSError:
                ours = False
                raise
            os.fchmod(fd, (0o666 & ~umask()) if mode is None else mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                if written <= 0:  # a regular file never does this; refuse to spin if one does
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
                view = view[written:]
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.replace(tmp, path)
            ours = False  # it is the file now
        except BaseException:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if ours:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise
        break
    else:
        raise FileExistsError(errno.EEXIST, f"no free temp file name next to {path} after {_ATTEMPTS} tries")
    if sync_dir:
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:  # some filesystems cannot fsync a folder; the data itself is synced
        pass
    finally:
        os.close(dfd)
