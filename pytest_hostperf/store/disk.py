"""The files: per-host baselines and JSON reports, the only module that reads or writes them.

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

Every file is written as :func:`to_json` makes its text (the one serializer: sorted keys,
integer nanoseconds, no NaN), atomically (``atomic``); baselines under an exclusive lock (an
flock on the baselines folder itself, ``atomic.FolderLock``: no lock file is left there), so
readers see the old file or the new one and two concurrent writers both land. A run on its
way to disk is validated once, here (:func:`save_run`). Loading reads through the one bounded
reader (``jsonfile.read_json``), validates everything (``baseline_schema``, ``report_schema``),
turns every problem into a :class:`BaselineError` or :class:`ReportError` naming the file,
the JSON path and what is wrong, and hands back typed records (:class:`Baseline` of
``records.StoredRun``, ``records.Report``). Only :mod:`json` parses the files: no pickle, no eval.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_hostperf.errors import BaselineError, InvalidArgument, ReportError
from pytest_hostperf.store import jsonfile
from pytest_hostperf.store.atomic import FolderLock, atomic_write_text, sweep_temp_files, writable_hint
from pytest_hostperf.store.baseline_schema import SCHEMA, SCHEMA_VERSION, _check_run, _validate
from pytest_hostperf.store.hostid import host_id, sanitize_host_id
from pytest_hostperf.store.jsoncheck import _check_json, _Invalid
from pytest_hostperf.store.jsonfile import Json
from pytest_hostperf.store.records import REPORT_SCHEMA, Report, StoredMeasurement, StoredRun
from pytest_hostperf.store.report_schema import MAX_REPORT_BYTES, check_report, schema_of

__all__ = ["DEFAULT_KEEP", "LOCK_TIMEOUT_S", "MAX_BYTES", "MAX_VALUES", "Baseline", "baseline_path",
           "list_host_ids", "load", "load_document", "load_if_exists", "read_report", "save_run", "to_json",
           "write_report"]

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
    """A loaded, validated baseline: its runs oldest first, typed once, by the loader."""

    path: Path
    host_id: str
    runs: tuple[StoredRun, ...]

    def ids(self) -> list[str]:
        """Measurement ids present in any run, sorted."""
        return sorted({mid for run in self.runs for mid in run.measurements})

    def runs_of(self, mid: str) -> list[StoredMeasurement]:
        """The records of measurement ``mid`` in each run that has it, oldest first."""
        return [run.measurements[mid] for run in self.runs if mid in run.measurements]

    @property
    def latest(self) -> StoredRun:
        """The newest run."""
        return self.runs[-1]

    def to_dict(self) -> Json:
        """The file's document (what :func:`to_json` writes)."""
        return _document(self.host_id, [run.to_json() for run in self.runs])


def _document(host: str, runs: list[Json]) -> Json:
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "host_id": host, "runs": runs}


def to_json(doc: Mapping[str, object]) -> str:
    """A file's text, baseline or report alike: sorted keys, one-space indent, no NaN, a final newline."""
    return json.dumps(doc, sort_keys=True, indent=1, allow_nan=False) + "\n"


def _read(path: Path) -> Json:
    """The validated document of the baseline file ``path``; BaselineError naming the file."""
    doc = jsonfile.read_json(path, what="baseline", error=BaselineError, fix=_fix(path),
                             max_bytes=MAX_BYTES, max_values=MAX_VALUES)
    return _checked(doc, path)


def _checked(doc: object, path: Path) -> Json:
    try:
        return _validate(doc)
    except _Invalid as exc:
        fix = "" if "upgrade" in exc.problem else f": {_fix(path)}"
        raise BaselineError(f"{path}: {exc}{fix}") from None


def _typed(doc: Json, path: Path) -> Baseline:
    return Baseline(path=path, host_id=doc["host_id"], runs=tuple(StoredRun.from_json(r) for r in doc["runs"]))


def load(path: Path) -> Baseline:
    """Read and validate one baseline file.

    Every problem — too large, not a regular file or a symlink, not UTF-8, invalid or
    too deeply nested JSON, NaN, duplicate keys, a foreign or future schema, a wrong type
    or value anywhere — raises BaselineError naming the file, the JSON path and the problem.
    """
    path = Path(path)
    return _typed(_read(path), path)


def _read_for(path: Path, host: str) -> Json:
    doc = _read(path)
    expected = sanitize_host_id(host)
    if doc["host_id"] != expected:
        raise BaselineError(f"{path}: holds host id {doc['host_id']!r}, expected {expected!r}; "
                            "rename the file after its host id or remove it")
    return doc


def _legacy(folder: Path, host: str) -> tuple[Path, Json] | None:
    """A baseline in ``folder`` named by an earlier version's host id of this same host (the
    id's hash once covered fields that pytest-benchmark's files lack): one whose newest run's
    fingerprint gives ``host`` under today's rule. None when there is none."""
    want = baseline_path(folder, host)
    try:
        entries = sorted(p for p in Path(folder).glob("*.json") if p != want and p.is_file())
    except OSError:
        return None
    for p in entries:
        try:
            doc = _read(p)
        except BaselineError:
            continue
        if doc["host_id"] != sanitize_host_id(host) and host_id(doc["runs"][-1]["fingerprint"]) == host:
            return p, doc
    return None


def legacy_baseline(folder: Path, host: str) -> Baseline | None:
    """The baseline of ``host`` named by an earlier version's id of this host, or None (:func:`_legacy`)."""
    found = _legacy(folder, host)
    return None if found is None else _typed(found[1], found[0])


def load_if_exists(folder: Path, host: str) -> Baseline | None:
    """The baseline of ``host`` in ``folder``, or None when there is none yet; where only a file
    named by an earlier version's id of this host exists (:func:`legacy_baseline`), that one
    (its ``path`` says which: ``--hostperf-save`` moves it to the new name)."""
    path = baseline_path(folder, host)
    if not os.path.lexists(path):
        return legacy_baseline(folder, host)
    return _typed(_read_for(path, host), path)


def _atomic_write(path: Path, text: str, mode: int) -> None:
    """Temp file named before it exists (so an interrupt can always remove it), fsync,
    ``os.replace``, fsync of the folder so the rename itself survives a power cut; the file
    gets ``mode`` (a temp file is created 0600)."""
    atomic_write_text(path, text, mode=mode, mkdir=False, sync_dir=True)


def save_run(folder: Path, host: str, run: StoredRun, *, keep: int = DEFAULT_KEEP,
             lock_timeout: float = LOCK_TIMEOUT_S) -> Path:
    """Append ``run`` to the baseline of ``host`` in ``folder``, keeping the last ``keep`` runs.

    The run is serialized and validated here, once, before anything is touched. Under an
    exclusive lock the current file is re-read (and must be valid: a file that cannot be read
    is never overwritten), the run appended -- the runs already there kept as they are on
    disk --, and the result written to a temp file that is fsynced and renamed over the old
    one. Temp files that an earlier, killed writer left are removed first. Returns the file's
    path.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise InvalidArgument(f"save_run: keep must be a whole number >= 1, got {keep!r}")
    doc = run.to_json()
    try:
        _check_json(doc, "run")
        _check_run(doc, "run")
    except _Invalid as exc:
        raise BaselineError(f"save_run: not a valid run: {exc}") from None
    clean = sanitize_host_id(host)
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BaselineError(f"cannot create the baselines folder {folder}: {exc.strerror or exc}") from None
    path = baseline_path(folder, clean)
    with FolderLock(path.parent, clean, lock_timeout):
        path = baseline_path(folder, clean)  # re-checked under the lock
        runs: list[Json] = []
        mode = 0o644
        legacy = None if os.path.lexists(path) else _legacy(folder, clean)
        if legacy is not None:  # moved to today's name: written there first, then the old one removed
            runs = list(legacy[1]["runs"])
        elif os.path.lexists(path):
            try:
                runs = list(_read_for(path, clean)["runs"])
            except BaselineError as exc:
                raise BaselineError(f"refusing to overwrite a baseline that cannot be read: {exc}") from None
            mode = stat.S_IMODE(os.stat(path).st_mode) | 0o400
        runs.append(doc)
        text = to_json(_document(clean, runs[-keep:]))
        sweep_temp_files(path)
        try:
            _atomic_write(path, text, mode)
        except OSError as exc:
            fix = f"; {writable_hint(path.parent)}" if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else ""
            raise BaselineError(f"cannot write {path}: {exc.strerror or exc}; the previous file is unchanged{fix}"
                                ) from None
        if legacy is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(legacy[0])
    return path


# --------------------------------------------------------------------------- reports, and inputs of either kind


def write_report(path: Path, report: Report) -> None:
    """Write ``report`` to ``path`` (its folder created), atomically: the one writer of JSON reports."""
    atomic_write_text(Path(path), to_json(report.to_json()))


def read_report(path: Path) -> Report:
    """Read and check a JSON report (``--hostperf-json``, or one ``hostperf import-benchmark`` wrote).

    Every problem raises :class:`ReportError` naming the file, the JSON path and what is wrong
    (the bounded reader, then ``report_schema.check_report``)."""
    path = Path(path)
    doc = jsonfile.read_json(path, what="report", error=ReportError, max_bytes=MAX_REPORT_BYTES)
    return Report.from_json(check_report(doc, path))


def load_document(path: Path) -> Baseline | Report:
    """A baseline or a report file, read once and validated as the kind its ``"schema"`` names
    (``hostperf show``, ``compare`` and ``plot`` take either)."""
    path = Path(path)
    doc = jsonfile.read_json(path, what="report or baseline", error=ReportError, max_bytes=MAX_REPORT_BYTES)
    schema = schema_of(doc)
    if schema == SCHEMA:
        return _typed(_checked(doc, path), path)
    if schema == REPORT_SCHEMA:
        return Report.from_json(check_report(doc, path))
    raise ReportError(f"{path}: not a pytest-hostperf report or baseline (expected \"schema\": "
                      f"\"{REPORT_SCHEMA}\" or \"{SCHEMA}\""
                      + (f", found {json.dumps(schema)[:60]}" if schema is not None else "") + ")")
