"""Safe writes: atomic replacement of a file, the baselines folder's lock, and the sweep of
temp files that killed writers left.

A file is written to a temp file in the target's folder, fsynced, then ``os.replace``d:
readers see either the old file or the new one, never a half-written one, also when the
writer is killed mid-write. Used for every file hostperf writes (baselines and reports by
``disk``; markdown and exports by their commands). :class:`FolderLock` serializes the
saves into one baselines folder; :func:`sweep_temp_files` removes what a SIGKILL left.

The temp file is named here (``.<name>.<8 hex>.tmp``) and created with ``O_EXCL`` inside
the ``try`` that removes it, not by ``tempfile.mkstemp``: a Ctrl-C that lands as mkstemp's
``open`` returns is raised before mkstemp hands back the name, and the file stayed behind
(found by tests/faults). A SIGKILL still leaves one; ``disk.save_run`` sweeps those.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import stat
import time
from pathlib import Path

from pytest_hostperf.errors import BaselineError

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


#: flock errors of a filesystem that cannot lock a directory: NFS emulates flock with
#: byte-range locks, and an exclusive one needs a file opened for writing (EBADF).
_NO_FOLDER_LOCK = frozenset({errno.EBADF, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL})


class FolderLock:
    """The exclusive right to save into ``folder``, waited for at most ``timeout`` seconds.

    An flock on the folder itself (its directory descriptor): nothing is created in it, so a
    baselines folder holds baselines only. Where the filesystem cannot flock a directory
    (NFS), a lock file ``folder/.<host>.lock`` stands in, for the save only: its holder removes
    it before letting go, and a waiter that then finds the path gone or holding another file
    locks again, on the file at the path. flock dies with its process, so a crash never
    leaves a stale lock (there, at most an unused lock file, removed by the next save).
    """

    def __init__(self, folder: Path, host: str, timeout: float) -> None:
        self.folder, self.file, self.timeout = folder, folder / f".{host}.lock", timeout
        self.fd = -1
        self.holds_file = False

    def __enter__(self) -> FolderLock:
        deadline = time.monotonic() + self.timeout
        try:
            fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise BaselineError(f"cannot open the baselines folder {self.folder} to lock it: "
                                f"{exc.strerror or exc}") from None
        if self._wait(fd, deadline, f"the baselines folder {self.folder}", folder=True):
            self.fd = fd
            self._drop_old_lock_file()
            return self
        os.close(fd)
        while True:
            fd = self._open_file()
            self._wait(fd, deadline, f"the lock file {self.file}")
            if self._at_path(fd):
                self.fd, self.holds_file = fd, True
                return self
            os.close(fd)  # its holder removed it as it let go: lock the file at the path now
            if time.monotonic() >= deadline:
                raise BaselineError(f"timed out after {self.timeout:g} s waiting for the lock file {self.file}: "
                                    "it keeps being replaced; retry when no other save runs")

    def _wait(self, fd: int, deadline: float, what: str, *, folder: bool = False) -> bool:
        """flock ``fd`` by the deadline; False: a folder that cannot be flocked (use the file)."""
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise BaselineError(f"timed out after {self.timeout:g} s waiting for the lock on {what}: "
                                        "another process is saving a baseline there; retry when it is done") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
            except OSError as exc:
                if folder and exc.errno in _NO_FOLDER_LOCK:
                    return False
                os.close(fd)
                raise BaselineError(f"cannot lock {what}: {exc.strerror or exc}") from None

    def _open_file(self) -> int:
        try:
            return os.open(self.file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            what = "is a symlink; remove it" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                what += f"; {writable_hint(self.folder)}; nothing was changed"
            raise BaselineError(f"cannot create the lock file {self.file}: {what}") from None

    def _at_path(self, fd: int) -> bool:
        """Whether ``fd`` is still the file at the lock file's path (not one removed meanwhile)."""
        try:
            there = os.stat(self.file, follow_symlinks=False)
        except OSError:
            return False
        mine = os.fstat(fd)
        return (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)

    def _drop_old_lock_file(self) -> None:
        """Remove the empty ``.<host>.lock`` that versions before the folder lock left, unless
        an older version holds it right now. Never follows or removes a symlink."""
        try:
            fd = os.open(self.file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_size == 0:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.unlink(self.file)
        except OSError:  # held by an older version, or not ours to remove: left alone
            pass
        finally:
            os.close(fd)

    def __exit__(self, *exc: object) -> None:
        if self.holds_file:  # removed while still held: a waiter then finds it gone and locks anew
            with contextlib.suppress(OSError):
                os.unlink(self.file)
        os.close(self.fd)  # closing the last descriptor releases the flock


def writable_hint(folder: Path) -> str:
    return (f"saving needs a writable baselines folder ({folder}): remount it read-write or save elsewhere "
            "(--hostperf-baselines=DIR)")


def sweep_temp_files(path: Path) -> list[Path]:
    """Remove the temp files of ``path`` that writers killed mid-save left behind.

    Call it holding the lock: every writer creates its temp file (:func:`temp_name`) only
    while it holds the lock, so any found then belongs to a writer that died (SIGKILL, power
    cut) before it could remove it.
    """
    pattern = re.compile(re.escape(f".{path.name}.") + r"[A-Za-z0-9_]{8}\.tmp")
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except OSError:  # a read-only folder: the write fails next, with the reason
                continue
            removed.append(Path(entry.path))
    return removed
