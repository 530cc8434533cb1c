"""Per-host baseline files: the only module that reads or writes them.

A baseline is ``<baselines>/<host-id>.json``::

    {"schema": "pytest-hostperf-baseline", "schema_version": 1, "host_id": "...",
     "runs": [run, ...]}                       # oldest first, the last K saved runs

    run = {"created_utc": "2024-05-01T12:00:00Z",
           "commit": {"sha": str|null, "branch": str|null, "dirty": bool|null},
           "tools": {name: version|null}, "fingerprint": {key: scalar|null},
           "audit": [{"name", "reading", "verdict", "advice"}], "timer": {...}|null,
           "concurrency": int, "measurements": {id: record}, ...extra keys}

    record = {"mode", "batch", "n", "min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns",
              "max_ns", "mean_ns", "group", "blocks": [{"n", "p50_ns", ..., "max_ns"}],
              "histogram": {...}, "host": {...} (optional)}

Files are written with sorted keys and integer nanoseconds, under an exclusive lock (an
flock on the baselines folder itself, :class:`_Lock`: no lock file is left there), to a
temp file that is fsynced and ``os.replace``d over the old one (``_io.py``): readers see
the old file or the new one, and two concurrent writers both land. Loading reads through
the one bounded reader (``jsonfile.read_json``), validates everything (``schema.py``) and
turns every problem into a :class:`BaselineError` naming the file, the JSON path and what
is wrong. Only :mod:`json` parses the files: no pickle, no eval.

It is also the one reader of ``--hostperf-json`` reports (:func:`read_report`) and of compare
inputs of either kind (:func:`load_document`).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_hostperf.errors import BaselineError, InvalidArgument
from pytest_hostperf.store import jsonfile
from pytest_hostperf.store.atomic import atomic_write_text
from pytest_hostperf.store.baseline_schema import SCHEMA, SCHEMA_VERSION, _check_run, _validate
from pytest_hostperf.store.hostid import sanitize_host_id
from pytest_hostperf.store.jsoncheck import _check_json, _Invalid

if TYPE_CHECKING:
    from pytest_hostperf.store.records import Report

__all__ = ["DEFAULT_KEEP", "LOCK_TIMEOUT_S", "MAX_BYTES", "MAX_VALUES", "Baseline", "baseline_path",
           "list_host_ids", "load", "load_document", "load_if_exists", "read_report", "save_run", "to_json"]

MAX_BYTES = jsonfile.MAX_BYTES  # refused before reading (the one bounded reader: jsonfile.py)
MAX_VALUES = jsonfile.MAX_VALUES
DEFAULT_KEEP = 5
LOCK_TIMEOUT_S = 30.0


def _fix(path: Path) -> str:
    return f"restore it from version control (git checkout -- {path}) or delete it to start a new baseline"


# --------------------------------------------------------------------------- paths


def baseline_path(folder: Path, host: str) -> Path:
    """``folder/<sanitized host>.json``, checked to lie inside ``folder`` and not be a symlink.

    Symlinks in the baselines folder are never followed: a link could make a save
    overwrite any file the user can write.
    """
    try:
        root = Path(folder).resolve()
    except (OSError, RuntimeError) as exc:
        raise BaselineError(f"baselines folder {folder}: cannot resolve it: {exc}") from None
    path = root / f"{sanitize_host_id(host)}.json"
    if path.parent != root:  # cannot happen after sanitizing; kept as the last line of defence
        raise BaselineError(f"host id {host!r} names {path}, outside the baselines folder {root}")
    if path.is_symlink():
        raise BaselineError(f"{path} is a symlink; hostperf never follows symlinks in the baselines "
                            "folder: replace it with the file itself")
    return path


def list_host_ids(folder: Path) -> list[str]:
    """The host ids that have a baseline in ``folder``, sorted: the stems of its ``*.json``
    files. Entries that :func:`baseline_path` would never name -- symlinks, folders, names
    that are not a sanitized host id -- are left out; a missing or unreadable folder has none.

    >>> list_host_ids(Path("no-such-folder"))
    []
    """
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    ids: list[str] = []
    for entry in entries:
        stem = entry.name.removesuffix(".json")
        if stem == entry.name or not stem:
            continue
        try:
            if sanitize_host_id(stem) != stem or not entry.is_file(follow_symlinks=False):
                continue
        except (BaselineError, OSError):
            continue
        ids.append(stem)
    return sorted(ids)


# --------------------------------------------------------------------------- the file


@dataclass(frozen=True, slots=True)
class Baseline:
    """A loaded, validated baseline: its runs oldest first."""

    path: Path
    host_id: str
    runs: tuple[dict[str, Any], ...]

    def ids(self) -> list[str]:
        """Measurement ids present in any run, sorted."""
        return sorted({mid for run in self.runs for mid in run["measurements"]})

    def runs_of(self, mid: str) -> list[dict[str, Any]]:
        """The records of measurement ``mid`` in each run that has it, oldest first."""
        return [run["measurements"][mid] for run in self.runs if mid in run["measurements"]]

    @property
    def latest(self) -> dict[str, Any]:
        """The newest run."""
        return self.runs[-1]

    def to_dict(self) -> dict[str, Any]:
        """The file's document (what :func:`to_json` writes)."""
        return _document(self.host_id, list(self.runs))


def _document(host: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "host_id": host, "runs": runs}


def to_json(doc: dict[str, Any]) -> str:
    """The file text: sorted keys, one-space indent, no NaN, a final newline."""
    return json.dumps(doc, sort_keys=True, indent=1, allow_nan=False) + "\n"


def load(path: Path) -> Baseline:
    """Read and validate one baseline file.

    Every problem — too large, not a regular file or a symlink, not UTF-8, invalid or
    too deeply nested JSON, NaN, duplicate keys, a foreign or future schema, a wrong type
    or value anywhere — raises BaselineError naming the file, the JSON path and the problem.
    """
    path = Path(path)
    doc = jsonfile.read_json(path, what="baseline", error=BaselineError, fix=_fix(path),
                             max_bytes=MAX_BYTES, max_values=MAX_VALUES)
    return _checked_baseline(doc, path)


def _checked_baseline(doc: Any, path: Path) -> Baseline:
    """A parsed baseline document validated (``schema._validate``), each problem a BaselineError naming the file."""
    try:
        checked = _validate(doc)
    except _Invalid as exc:
        fix = "" if "upgrade" in exc.problem else f": {_fix(path)}"
        raise BaselineError(f"{path}: {exc}{fix}") from None
    return Baseline(path=path, host_id=checked["host_id"], runs=tuple(checked["runs"]))


def _load_for(path: Path, host: str) -> Baseline:
    baseline = load(path)
    expected = sanitize_host_id(host)
    if baseline.host_id != expected:
        raise BaselineError(f"{path}: holds host id {baseline.host_id!r}, expected {expected!r}; "
                            "rename the file after its host id or remove it")
    return baseline


def legacy_baseline(folder: Path, host: str) -> Baseline | None:
    """A baseline in ``folder`` named by an earlier version's host id of this same host (the
    id's hash once covered fields that pytest-benchmark's files lack, issue 16): one whose
    newest run's fingerprint gives ``host`` under today's rule. None when there is none."""
    from pytest_hostperf.store.hostid import host_id

    want = baseline_path(folder, host)
    try:
        entries = sorted(p for p in Path(folder).glob("*.json") if p != want and p.is_file())
    except OSError:
        return None
    for p in entries:
        try:
            b = load(p)
        except BaselineError:
            continue
        if b.host_id != sanitize_host_id(host) and b.runs and host_id(b.latest.get("fingerprint") or {}) == host:
            return b
    return None


def load_if_exists(folder: Path, host: str) -> Baseline | None:
    """The baseline of ``host`` in ``folder``, or None when there is none yet; where only a file
    named by an earlier version's id of this host exists (:func:`legacy_baseline`), that one
    (its ``path`` says which: ``--hostperf-save`` moves it to the new name)."""
    path = baseline_path(folder, host)
    if not os.path.lexists(path):
        return legacy_baseline(folder, host)
    return _load_for(path, host)


#: flock errors of a filesystem that cannot lock a directory: NFS emulates flock with
#: byte-range locks, and an exclusive one needs a file opened for writing (EBADF).
_NO_FOLDER_LOCK = frozenset({errno.EBADF, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL})


class _Lock:
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

    def __enter__(self) -> _Lock:
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
                what += f"; {_writable(self.folder)}; nothing was changed"
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


def _writable(folder: Path) -> str:
    return (f"saving needs a writable baselines folder ({folder}): remount it read-write or save elsewhere "
            "(--hostperf-baselines=DIR)")


def _sweep_temp_files(path: Path) -> list[Path]:
    """Remove the temp files of ``path`` that writers killed mid-save left behind.

    Call it holding the lock: every writer creates its temp file (``.<name>.XXXXXXXX.tmp``,
    see :func:`_atomic_write`) only while it holds the lock, so any found then belongs to a
    writer that died (SIGKILL, power cut) before it could remove it.
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


def _atomic_write(path: Path, text: str, mode: int) -> None:
    """Temp file named before it exists (so an interrupt can always remove it), fsync,
    ``os.replace``, fsync of the folder so the rename itself survives a power cut; the file
    gets ``mode`` (a temp file is created 0600)."""
    atomic_write_text(path, text, mode=mode, mkdir=False, sync_dir=True)


def save_run(folder: Path, host: str, run: dict[str, Any], *, keep: int = DEFAULT_KEEP,
             lock_timeout: float = LOCK_TIMEOUT_S) -> Path:
    """Append ``run`` to the baseline of ``host`` in ``folder``, keeping the last ``keep`` runs.

    Under an exclusive lock the current file is re-read (and must be valid: a file that
    cannot be read is never overwritten), the run appended, and the result written to a
    temp file that is fsynced and renamed over the old one. Temp files that an earlier,
    killed writer left are removed first. Returns the file's path.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise InvalidArgument(f"save_run: keep must be a whole number >= 1, got {keep!r}")
    try:
        _check_json(run, "run")
        _check_run(run, "run")
    except _Invalid as exc:
        raise BaselineError(f"save_run: not a valid run: {exc}") from None
    clean = sanitize_host_id(host)
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BaselineError(f"cannot create the baselines folder {folder}: {exc.strerror or exc}") from None
    path = baseline_path(folder, clean)
    with _Lock(path.parent, clean, lock_timeout):
        path = baseline_path(folder, clean)  # re-checked under the lock
        runs: list[dict[str, Any]] = []
        mode = 0o644
        legacy = None if os.path.lexists(path) else legacy_baseline(folder, clean)
        if legacy is not None:  # moved to today's name: written there first, then the old one removed
            runs = list(legacy.runs)
        elif os.path.lexists(path):
            try:
                old = _load_for(path, clean)
            except BaselineError as exc:
                raise BaselineError(f"refusing to overwrite a baseline that cannot be read: {exc}") from None
            runs = list(old.runs)
            mode = stat.S_IMODE(os.stat(path).st_mode) | 0o400
        runs.append(run)
        text = to_json(_document(clean, runs[-keep:]))
        _sweep_temp_files(path)
        try:
            _atomic_write(path, text, mode)
        except OSError as exc:
            fix = f"; {_writable(path.parent)}" if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else ""
            raise BaselineError(f"cannot write {path}: {exc.strerror or exc}; the previous file is unchanged{fix}"
                                ) from None
        if legacy is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(legacy.path)
    return path


# --------------------------------------------------------------------------- reports, and inputs of either kind


def read_report(path: Path) -> Report:
    """Read and check a JSON report (``--hostperf-json``, or one ``hostperf import-benchmark`` wrote).

    Every problem raises :class:`ReportError` naming the file, the JSON path and what is wrong
    (the bounded reader, then ``report_schema.check_report``)."""
    from pytest_hostperf.errors import ReportError
    from pytest_hostperf.store.records import Report
    from pytest_hostperf.store.report_schema import MAX_REPORT_BYTES, check_report

    path = Path(path)
    doc = jsonfile.read_json(path, what="report", error=ReportError, max_bytes=MAX_REPORT_BYTES)
    return Report.from_json(check_report(doc, path))


def load_document(path: Path) -> Baseline | Report:
    """A baseline or a report file, read once and validated as the kind its ``"schema"`` names
    (``hostperf show``, ``compare`` and ``plot`` take either)."""
    from pytest_hostperf.errors import ReportError
    from pytest_hostperf.store.records import REPORT_SCHEMA, Report
    from pytest_hostperf.store.report_schema import MAX_REPORT_BYTES, check_report, schema_of

    path = Path(path)
    doc = jsonfile.read_json(path, what="report or baseline", error=ReportError, max_bytes=MAX_REPORT_BYTES)
    schema = schema_of(doc)
    if schema == SCHEMA:
        return _checked_baseline(doc, path)
    if schema == REPORT_SCHEMA:
        return Report.from_json(check_report(doc, path))
    raise ReportError(f"{path}: not a pytest-hostperf report or baseline (expected \"schema\": "
                      f"\"{REPORT_SCHEMA}\" or \"{SCHEMA}\""
                      + (f", found {json.dumps(schema)[:60]}" if schema is not None else "") + ")")
