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

Files are written with sorted keys and integer nanoseconds, under an exclusive lock, to a
temp file that is fsynced and ``os.replace``d over the old one: readers see the old file
or the new one, and two concurrent writers both land. Loading validates everything and
turns every problem into a :class:`BaselineError` naming the file, the JSON path and what
is wrong. Only :mod:`json` parses the files: no pickle, no eval.
"""
from __future__ import annotations

import copy
import errno
import fcntl
import hashlib
import json
import math
import os
import re
import stat
import subprocess
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from pytest_hostperf import jsonfile
from pytest_hostperf._io import atomic_write_text
from pytest_hostperf.errors import BaselineError, InvalidArgument

__all__ = [
    "DEFAULT_KEEP",
    "MAX_BYTES",
    "MAX_VALUES",
    "SCHEMA",
    "SCHEMA_VERSION",
    "Baseline",
    "baseline_path",
    "commit_info",
    "decode_histogram",
    "encode_histogram",
    "histogram_percentiles",
    "host_id",
    "load",
    "load_if_exists",
    "measurement_record",
    "new_run",
    "sanitize_host_id",
    "save_run",
    "to_json",
]

SCHEMA = "pytest-hostperf-baseline"
# Baseline format history:
# 1 - first version
SCHEMA_VERSION = 1
MAX_BYTES = jsonfile.MAX_BYTES  # refused before reading (the one bounded reader: jsonfile.py)
MAX_VALUES = jsonfile.MAX_VALUES
DEFAULT_KEEP = 5

#: Largest time accepted, in ns (about 11.6 days): anything above is corruption, not latency.
MAX_NS = 10**15
#: Deepest JSON nesting accepted; real baselines are about 8 levels deep.
MAX_DEPTH = 32
#: Histogram: sub-buckets per power of two.
SUB_BUCKETS = 32
ENCODING = "log2-32"
HOST_ID_MAX = 80
LOCK_TIMEOUT_S = 30.0
GIT_TIMEOUT_S = 5.0

_INT64_MAX = 2**63 - 1
_STATS = ("p50", "p90", "p99", "p999", "max")
_BLOCK_KEYS = frozenset({"n", *(f"{s}_ns" for s in _STATS)})
_RECORD_KEYS = frozenset({"mode", "batch", "n", "min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns",
                          "max_ns", "mean_ns", "blocks", "group", "histogram"})
_RECORD_OPTIONAL = frozenset({"host", "counters"})  # counters: per-call values, see counters.py
_HIST_KEYS = frozenset({"encoding", "sub_buckets", "index", "count", "min_ns", "max_ns", "total"})
_RUN_KEYS = frozenset({"created_utc", "commit", "tools", "fingerprint", "audit", "timer", "concurrency",
                       "measurements"})
_DOC_KEYS = frozenset({"schema", "schema_version", "host_id", "runs"})
_COMMIT_KEYS = frozenset({"sha", "branch", "dirty"})
_AUDIT_KEYS = frozenset({"name", "reading", "verdict", "advice"})
_TIMER_KEYS = frozenset({"clock", "overhead_ns", "resolution_ns", "pairs"})
_UTC_RE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,6})?Z")
_SHA_RE = re.compile(r"[0-9a-f]{4,64}")
_MAJOR_MINOR_RE = re.compile(r"\s*(\d+)\.(\d+)")


def _fix(path: Path) -> str:
    return f"restore it from version control (git checkout -- {path}) or delete it to start a new baseline"


# --------------------------------------------------------------------------- host ids


def sanitize_host_id(text: str) -> str:
    """A host id made safe as a file name: a lowercase slug of ``[a-z0-9._-]``.

    Runs of other characters become one ``-``, runs of dots one ``.``; leading dots and
    dashes go, and the result is at most 80 characters. ``/``, ``\\``, NUL and ``..`` can
    never survive, so the id can never name a path outside the baselines folder.

    >>> sanitize_host_id("CI Runner #3 (x86_64)")
    'ci-runner-3-x86_64'
    >>> sanitize_host_id("../../etc/passwd")
    'etc-passwd'
    """
    if not isinstance(text, str):
        raise BaselineError(f"host id {text!r} is not a string; give a name such as 'ci-runner-1'")
    s = unicodedata.normalize("NFKD", text.lower())
    s = "".join(c for c in s if not unicodedata.combining(c))  # 'Café' -> 'cafe', not 'caf-'
    s = re.sub(r"[^a-z0-9._-]+", "-", s)
    s = re.sub(r"\.{2,}", ".", s)
    s = re.sub(r"-{2,}", "-", s)
    s = s.lstrip(".-")[:HOST_ID_MAX].rstrip(".-")
    if not s:
        shown = repr(text) if len(text) <= 60 else repr(text[:60]) + "..."
        raise BaselineError(f"host id {shown} has no usable characters; use letters, digits, '.', '_' "
                            "or '-' (e.g. --hostperf-host=ci-runner-1 or HOSTPERF_HOST=ci-runner-1)")
    return s


def _major_minor(value: object) -> object:
    """'5.15.0-91-generic' -> '5.15', '3.11.7' -> '3.11'; anything else unchanged."""
    if isinstance(value, str):
        m = _MAJOR_MINOR_RE.match(value)
        return f"{int(m.group(1))}.{int(m.group(2))}" if m else value.strip()
    return value


def _short_model(model: str) -> str:
    """'Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz' -> 'Intel Xeon Platinum 8375C'."""
    s = re.sub(r"\([^)]*\)", " ", model)  # (R), (TM), and VM notes like '(with IBPB)'
    s = re.sub(r"@\s*[\d.]+\s*[GMK]Hz", " ", s, flags=re.IGNORECASE)
    s = re.sub(r"\b(CPU|Processor)\b", " ", s, flags=re.IGNORECASE)
    return " ".join(s.split())


def host_id(fingerprint: dict, override: str | None = None) -> str:
    """The id of this host class, naming its baseline file.

    ``override`` (``--hostperf-host`` / ``HOSTPERF_HOST``) wins, sanitized. Otherwise a
    readable slug (short CPU model, logical CPUs, arch) plus 8 hex digits of a SHA-256 over
    the fields that change latency: CPU model, logical CPUs, physical cores, SMT, NUMA
    nodes, arch, kernel major.minor, Python major.minor and implementation, governor. The
    kernel patch level is left out so that CI runners of one SKU share a baseline.

    >>> host_id({"cpu_model": "AMD EPYC", "logical_cpus": 2, "arch": "x86_64"})[:-8]
    'amd-epyc-2cpu-x86_64-'
    """
    if override is not None:
        return sanitize_host_id(override)
    fp = fingerprint if isinstance(fingerprint, dict) else {}
    model = fp.get("cpu_model")
    model = " ".join(model.split()) if isinstance(model, str) and model.strip() else None
    fields = {
        "cpu_model": model,
        "logical_cpus": fp.get("logical_cpus"),
        "physical_cores": fp.get("physical_cores"),
        "smt": fp.get("smt"),
        "numa_nodes": fp.get("numa_nodes"),
        "arch": fp.get("arch"),
        "kernel": _major_minor(fp.get("kernel")),
        "python": _major_minor(fp.get("python")),
        "python_implementation": fp.get("python_implementation"),
        "governor": fp.get("governor"),
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8]
    try:
        cpu = sanitize_host_id(_short_model(model))[:48] if model else "unknown-cpu"
    except BaselineError:  # a model name of symbols only
        cpu = "unknown-cpu"
    parts = [cpu]
    logical = fp.get("logical_cpus")
    if type(logical) is int:
        parts.append(f"{logical}cpu")
    if isinstance(fp.get("arch"), str) and fp["arch"].strip():
        parts.append(fp["arch"])
    slug = sanitize_host_id("-".join(parts))[:HOST_ID_MAX - 9].rstrip(".-")
    return f"{slug}-{digest}"


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


# --------------------------------------------------------------------------- histograms


def _bucket_of(values: np.ndarray) -> np.ndarray:
    """Bucket index of integer ns values: i such that 2**(i/32) <= v < 2**((i+1)/32); 0 below 1 ns."""
    v = np.maximum(np.asarray(values, dtype=np.float64), 1.0)
    idx = np.floor(np.log2(v) * SUB_BUCKETS).astype(np.int64)
    # log2 can round across a bucket edge; settle those few exactly against the edges.
    idx -= (np.exp2(idx / SUB_BUCKETS) > v)
    idx += (np.exp2((idx + 1) / SUB_BUCKETS) <= v)
    return np.maximum(idx, 0)


MAX_INDEX = int(_bucket_of(np.array([MAX_NS]))[0])


def encode_histogram(samples_ns: np.ndarray) -> dict:
    """The latency distribution in a compact log-bucket histogram (``log2-32``).

    Samples are rounded to integer ns. Bucket ``i`` covers ``[2**(i/32), 2**((i+1)/32))``
    ns; values below 1 ns count in bucket 0. Each bucket is about 2.2% wide, so any
    percentile recomputed from the histogram is within about 1.1% (one half bucket) of
    the exact one. Only non-empty buckets are stored, as two parallel lists::

        {"encoding": "log2-32", "sub_buckets": 32,
         "index": [328, 329, 352], "count": [5, 93, 2],   # ascending, counts >= 1
         "min_ns": 1230, "max_ns": 2050, "total": 100}     # exact min, max and sample count

    A bucket's representative value is its geometric middle, ``2**((i+0.5)/32)`` ns.

    >>> encode_histogram(np.array([1000, 1000, 1001, 2000]))["count"]
    [3, 1]
    """
    values = np.asarray(samples_ns, dtype=np.float64).ravel()
    if values.size == 0:
        raise InvalidArgument("encode_histogram: no samples")
    if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > MAX_NS:
        raise InvalidArgument(f"encode_histogram: samples must be finite ns in [0, {MAX_NS}], got min "
                              f"{values.min()!r}, max {values.max()!r}")
    ints = np.rint(values).astype(np.int64)
    index, count = np.unique(_bucket_of(ints), return_counts=True)
    return {
        "encoding": ENCODING,
        "sub_buckets": SUB_BUCKETS,
        "index": [int(i) for i in index],
        "count": [int(c) for c in count],
        "min_ns": int(ints.min()),
        "max_ns": int(ints.max()),
        "total": int(ints.size),
    }


def _checked_histogram(h: dict) -> dict:
    try:
        _check_json(h, "histogram")
        _check_histogram(h, "histogram")
    except _Invalid as exc:
        raise BaselineError(f"malformed histogram: {exc}") from None
    return h


def decode_histogram(h: dict) -> tuple[np.ndarray, np.ndarray]:
    """(representative value in ns of each stored bucket — its geometric middle —, count)."""
    _checked_histogram(h)
    index = np.asarray(h["index"], dtype=np.float64)
    return np.exp2((index + 0.5) / SUB_BUCKETS), np.asarray(h["count"], dtype=np.int64)


def histogram_percentiles(h: dict, qs: Sequence[float]) -> np.ndarray:
    """Percentiles (0..100) recomputed from a histogram, numpy's linear method.

    Each order statistic is taken as its bucket's representative value (the exact min
    and max at the ends), clamped to ``[min_ns, max_ns]``; so a result lies within one
    bucket width (2.2%, in practice half that) of ``np.percentile`` of the samples.
    """
    _checked_histogram(h)
    q = np.asarray(list(qs), dtype=np.float64)
    if q.size and (not np.all(np.isfinite(q)) or q.min() < 0 or q.max() > 100):
        raise InvalidArgument(f"histogram_percentiles: percentiles must be in [0, 100], got {list(qs)!r}")
    reps, counts = decode_histogram(h)
    lo_ns, hi_ns = float(h["min_ns"]), float(h["max_ns"])
    reps = np.clip(reps, lo_ns, hi_ns)
    total = int(h["total"])
    cum = np.cumsum(counts)

    def order_stat(k: np.ndarray) -> np.ndarray:
        out = reps[np.searchsorted(cum, k, side="right")]
        out = np.where(k == 0, lo_ns, out)
        return np.where(k == total - 1, hi_ns, out)

    rank = (total - 1) * q / 100.0
    below = np.floor(rank).astype(np.int64)
    above = np.minimum(below + 1, total - 1)
    frac = rank - below
    v_lo, v_hi = order_stat(below), order_stat(above)
    return np.clip(v_lo + frac * (v_hi - v_lo), lo_ns, hi_ns)


# --------------------------------------------------------------------------- records and runs


def _ns_int(value: Any) -> Any:
    """An integer from ints, numpy scalars and finite floats (rounded); anything else unchanged
    so that validation reports it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value):
        return int(round(float(value)))
    return value


def measurement_record(result_dict: dict, samples_ns: np.ndarray) -> dict:
    """What a baseline stores for one measurement: the summary of ``Result.to_dict()`` (mode,
    batch, n, percentiles, min, max, mean, per-block percentiles, group, host) plus the
    histogram of ``samples_ns``. All times are integer ns. Raises BaselineError when the
    two do not describe a valid measurement (the record would not load back)."""
    if not isinstance(result_dict, dict):
        raise BaselineError(f"measurement_record: expected Result.to_dict(), got {type(result_dict).__name__}")
    missing = sorted((_RECORD_KEYS - {"histogram"}) - result_dict.keys())
    if missing:
        raise BaselineError(f"measurement_record: result dict lacks {', '.join(missing)}; "
                            "pass Result.to_dict()")
    record: dict[str, Any] = {k: _ns_int(result_dict[k]) for k in _RECORD_KEYS - {"histogram", "blocks"}}
    blocks = result_dict["blocks"]
    record["blocks"] = ([{k: _ns_int(b.get(k)) for k in _BLOCK_KEYS} if isinstance(b, dict) else b
                         for b in blocks] if isinstance(blocks, (list, tuple)) else blocks)
    if "host" in result_dict and result_dict["host"] is not None:
        record["host"] = copy.deepcopy(result_dict["host"])
    if result_dict.get("counters"):
        record["counters"] = copy.deepcopy(result_dict["counters"])
    try:
        record["histogram"] = encode_histogram(samples_ns)
    except InvalidArgument as exc:
        raise BaselineError(f"measurement_record: {exc}") from None
    try:
        _check_json(record, "record")
        _check_record(record, "record")
    except _Invalid as exc:
        raise BaselineError(f"measurement_record for {result_dict.get('id', '?')!r}: {exc}") from None
    return record


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run(*, measurements: dict[str, dict], fingerprint: dict, audit: list, timer: dict | None,
            tools: dict, concurrency: int = 1, commit: dict | None = None,
            created_utc: str | None = None, extra: dict | None = None) -> dict:
    """One run, ready for :func:`save_run`; validated here, so a bad input fails at once.

    ``measurements`` maps ids to :func:`measurement_record` results; ``audit`` is
    ``probe.audit_to_json(...)`` (``Check`` objects are converted); ``timer`` is the
    ``{"clock", "overhead_ns", "resolution_ns", "pairs"}`` dict (a ``TimerInfo`` is
    converted, float ns rounded); ``commit`` defaults to unknown (see :func:`commit_info`);
    ``created_utc`` to now. ``extra`` adds JSON keys to the run; it cannot replace one.
    """
    if timer is not None and not isinstance(timer, dict):
        timer = {k: getattr(timer, k, None) for k in _TIMER_KEYS}
    if isinstance(timer, dict):
        timer = {k: (_ns_int(v) if k.endswith("_ns") else v) for k, v in timer.items()}
    run: dict[str, Any] = {
        "created_utc": _utc_now() if created_utc is None else created_utc,
        "commit": {"sha": None, "branch": None, "dirty": None} if commit is None else dict(commit),
        "tools": dict(tools) if isinstance(tools, dict) else tools,
        "fingerprint": dict(fingerprint) if isinstance(fingerprint, dict) else fingerprint,
        "audit": ([a.as_dict() if hasattr(a, "as_dict") else a for a in audit]
                  if isinstance(audit, (list, tuple)) else audit),
        "timer": timer,
        "concurrency": concurrency,
        "measurements": measurements,
    }
    if extra:
        clash = sorted(set(extra) & _RUN_KEYS)
        if clash:
            raise BaselineError(f"new_run: extra keys {', '.join(clash)} would replace the run's own keys; "
                                "rename them")
        run.update(extra)
    run = copy.deepcopy(run)  # the run must not share mutable parts with the caller's objects
    try:
        _check_json(run, "run")
        _check_run(run, "run")
    except _Invalid as exc:
        raise BaselineError(f"new_run: {exc}") from None
    return run


def _git(args: list[str], cwd: Path) -> str | None:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def commit_info(cwd: Path) -> dict:
    """``{"sha", "branch", "dirty"}`` of the git checkout at ``cwd``; None for what is not
    known (no git, not a repository, detached HEAD for the branch). Never raises."""
    sha = _git(["rev-parse", "--verify", "-q", "HEAD"], cwd)
    if sha is None or not _SHA_RE.fullmatch(sha):
        return {"sha": None, "branch": None, "dirty": None}
    branch = _git(["symbolic-ref", "--short", "-q", "HEAD"], cwd) or None
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {"sha": sha, "branch": branch, "dirty": None if status is None else bool(status)}


# --------------------------------------------------------------------------- the file


@dataclass(frozen=True, slots=True)
class Baseline:
    """A loaded, validated baseline: its runs oldest first."""

    path: Path
    host_id: str
    runs: tuple[dict, ...]

    def ids(self) -> list[str]:
        """Measurement ids present in any run, sorted."""
        return sorted({mid for run in self.runs for mid in run["measurements"]})

    def runs_of(self, mid: str) -> list[dict]:
        """The records of measurement ``mid`` in each run that has it, oldest first."""
        return [run["measurements"][mid] for run in self.runs if mid in run["measurements"]]

    @property
    def latest(self) -> dict:
        """The newest run."""
        return self.runs[-1]

    def to_dict(self) -> dict:
        """The file's document (what :func:`to_json` writes)."""
        return _document(self.host_id, list(self.runs))


def _document(host: str, runs: list[dict]) -> dict:
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "host_id": host, "runs": runs}


def to_json(doc: dict) -> str:
    """The file text: sorted keys, one-space indent, no NaN, a final newline."""
    return json.dumps(doc, sort_keys=True, indent=1, allow_nan=False) + "\n"


def _validate(doc: Any, where_file: Path | str) -> Baseline:
    """Check a parsed document; raises _Invalid with the JSON path of the first problem."""
    if not isinstance(doc, dict):
        raise _Invalid("", f"not a pytest-hostperf baseline (the top level is {_kind(doc)}, not an object)")
    if "schema" not in doc:
        raise _Invalid("", "not a pytest-hostperf baseline (no 'schema' key)")
    if doc["schema"] != SCHEMA:
        raise _Invalid("schema", f"not a pytest-hostperf baseline (schema {_show(doc['schema'])}, "
                                 f"expected {SCHEMA!r})")
    if "schema_version" not in doc:
        raise _Invalid("", "no 'schema_version' key")
    version = doc["schema_version"]
    if type(version) is not int:
        raise _Invalid("schema_version", f"expected an integer, got {_show(version)}")
    if version < 1:
        raise _Invalid("schema_version", f"{version} is not a valid version (versions start at 1)")
    if version > SCHEMA_VERSION:
        raise _Invalid("schema_version", f"version {version} was written by a newer pytest-hostperf "
                                         f"(this one reads up to {SCHEMA_VERSION}); upgrade pytest-hostperf")
    _check_json(doc, "")
    _keys(doc, "", _DOC_KEYS)
    host = _str(doc["host_id"], "host_id")
    try:
        clean = sanitize_host_id(host)
    except BaselineError:
        clean = None
    if clean != host:
        raise _Invalid("host_id", f"{_show(host)} is not a valid host id (letters a-z, digits, '.', '_', "
                                  "'-'; at most 80; no leading dot or dash)")
    runs = doc["runs"]
    if type(runs) is not list:
        raise _Invalid("runs", f"expected an array, got {_kind(runs)}")
    if not runs:
        raise _Invalid("runs", "no runs")
    for i, run in enumerate(runs):
        _check_run(run, f"runs[{i}]")
    return Baseline(path=Path(where_file), host_id=host, runs=tuple(runs))


def load(path: Path) -> Baseline:
    """Read and validate one baseline file.

    Every problem — too large, not a regular file or a symlink, not UTF-8, invalid or
    too deeply nested JSON, NaN, duplicate keys, a foreign or future schema, a wrong type
    or value anywhere — raises BaselineError naming the file, the JSON path and the problem.
    """
    path = Path(path)
    doc = jsonfile.read_json(path, what="baseline", error=BaselineError, fix=_fix(path),
                             max_bytes=MAX_BYTES, max_values=MAX_VALUES)
    try:
        return _validate(doc, path)
    except _Invalid as exc:
        fix = "" if "upgrade" in exc.problem else f": {_fix(path)}"
        raise BaselineError(f"{path}: {exc}{fix}") from None


def _load_for(path: Path, host: str) -> Baseline:
    baseline = load(path)
    expected = sanitize_host_id(host)
    if baseline.host_id != expected:
        raise BaselineError(f"{path}: holds host id {baseline.host_id!r}, expected {expected!r}; "
                            "rename the file after its host id or remove it")
    return baseline


def load_if_exists(folder: Path, host: str) -> Baseline | None:
    """The baseline of ``host`` in ``folder``, or None when there is none yet."""
    path = baseline_path(folder, host)
    if not os.path.lexists(path):
        return None
    return _load_for(path, host)


class _Lock:
    """An exclusive flock on ``folder/.<host>.lock`` (a zero-byte file left in place), waited
    for at most ``timeout`` seconds. flock dies with its process, so a crash leaves no stale lock."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path, self.timeout, self.fd = path, timeout, -1

    def __enter__(self) -> _Lock:
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            what = "is a symlink; remove it" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                what += (f"; saving needs a writable baselines folder ({self.path.parent}): remount it "
                         "read-write or save elsewhere (--hostperf-baselines=DIR); nothing was changed")
            raise BaselineError(f"cannot create the lock file {self.path}: {what}") from None
        deadline = time.monotonic() + self.timeout
        pause = 0.001
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self.fd)
                    raise BaselineError(f"timed out after {self.timeout:g} s waiting for the lock {self.path}: "
                                        "another process is saving this baseline; retry when it is done") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
            except OSError as exc:
                os.close(self.fd)
                raise BaselineError(f"cannot lock {self.path}: {exc.strerror or exc}") from None

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing the last descriptor releases the flock


def _sweep_temp_files(path: Path) -> list[Path]:
    """Remove the temp files of ``path`` that writers killed mid-save left behind.

    Call it holding the lock: every writer creates its temp file (``.<name>.XXXXXXXX.tmp``,
    see :func:`_atomic_write`) only while it holds the lock, so any found then belongs to a
    writer that died (SIGKILL, power cut) before it could remove it.
    """
    pattern = re.compile(re.escape(f".{path.name}.") + r"[A-Za-z0-9_]{8}\.tmp")
    removed = []
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


def save_run(folder: Path, host: str, run: dict, *, keep: int = DEFAULT_KEEP,
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
    with _Lock(path.parent / f".{clean}.lock", lock_timeout):
        path = baseline_path(folder, clean)  # re-checked under the lock
        runs: list[dict] = []
        mode = 0o644
        if os.path.lexists(path):
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
            raise BaselineError(f"cannot write {path}: {exc.strerror or exc}; the previous file is unchanged"
                                ) from None
    return path


# --------------------------------------------------------------------------- validation


class _Invalid(Exception):
    """A validation problem at a JSON path."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(where, problem)
        self.where, self.problem = where, problem

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}" if self.where else self.problem


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    return {dict: "an object", list: "an array", str: "a string", int: "an integer",
            float: "a float"}.get(type(v), type(v).__name__)


_show_key = jsonfile.show


def _show(v: Any) -> str:
    text = json.dumps(v, default=repr) if isinstance(v, (str, int, float, bool, type(None))) else _kind(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _at(where: str, key: str) -> str:
    if key.isascii() and key.isidentifier():
        return f"{where}.{key}" if where else key
    return f"{where}[{_show_key(key)}]"


def _path_of(node: tuple | None, root: str) -> str:
    """Render a lazily built path: nested (parent, key) pairs, int keys for list items."""
    keys = []
    while node is not None:
        node, key = node
        keys.append(key)
    where = root
    for key in reversed(keys):
        where = f"{where}[{key}]" if type(key) is int else _at(where, key)
    return where


_SCALARS = frozenset({str, bool, type(None)})


def _check_json(value: Any, where: str) -> None:
    """JSON types only, string keys, finite floats, 64-bit ints, at most MAX_DEPTH deep.

    Iterative, so a deep document cannot exhaust the stack; paths are rendered only for
    the error, which keeps a multi-megabyte file fast to check."""
    stack: list[tuple[Any, tuple | None, int]] = [(value, None, 1)]
    while stack:
        v, node, depth = stack.pop()
        t = type(v)
        if t is dict or t is list:
            if depth >= MAX_DEPTH and v:
                raise _Invalid(_path_of(node, where), f"JSON nested too deep (more than {MAX_DEPTH} levels)")
            items = v.items() if t is dict else enumerate(v)
            for k, x in items:
                tx = type(x)
                if t is dict and type(k) is not str:
                    raise _Invalid(_path_of(node, where), f"key {k!r} is not a string")
                if tx in _SCALARS:
                    continue
                if tx is int and -_INT64_MAX <= x <= _INT64_MAX:
                    continue
                stack.append((x, (node, k), depth + 1))
        elif t is float:
            if not math.isfinite(v):
                raise _Invalid(_path_of(node, where), f"{v} is not a finite number")
        elif t is int:
            if abs(v) > _INT64_MAX:
                raise _Invalid(_path_of(node, where), "integer too large")
        elif t not in _SCALARS:
            raise _Invalid(_path_of(node, where), f"{t.__name__} is not a JSON value")


def _obj(v: Any, where: str) -> dict:
    if type(v) is not dict:
        raise _Invalid(where, f"expected an object, got {_kind(v)}")
    return v


def _keys(d: dict, where: str, required: frozenset[str], optional: frozenset[str] = frozenset(),
          *, extra_ok: bool = False) -> None:
    missing = sorted(required - d.keys())
    if missing:
        raise _Invalid(where, f"missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if not extra_ok:
        unknown = sorted(d.keys() - required - optional)
        if unknown:
            raise _Invalid(where, f"unknown key{'s' if len(unknown) > 1 else ''} "
                                  f"{', '.join(_show_key(k) for k in unknown[:5])}")


def _int(v: Any, where: str, lo: int = 0, hi: int = MAX_NS, what: str = "an integer") -> int:
    if type(v) is not int:
        raise _Invalid(where, f"expected {what}, got {_kind(v)} {_show(v)}")
    if v < lo:
        raise _Invalid(where, f"{v} is below the minimum {lo}")
    if v > hi:
        raise _Invalid(where, f"{v} is absurdly large (more than {hi})")
    return v


def _ns(v: Any, where: str) -> int:
    return _int(v, where, 0, MAX_NS, "an integer number of nanoseconds")


def _str(v: Any, where: str, *, nullable: bool = False) -> str:
    if (v is None and nullable) or type(v) is str:
        return v
    raise _Invalid(where, f"expected a string{' or null' if nullable else ''}, got {_kind(v)}")


def _ordered(d: dict, where: str, names: Sequence[str]) -> None:
    for a, b in zip(names, names[1:]):
        if d[a] > d[b]:
            raise _Invalid(where, f"{a} {d[a]} > {b} {d[b]}: must be "
                                  f"{' <= '.join(n.removesuffix('_ns') for n in names)}")


def _locate_bucket_problem(index: list, count: list, where: str) -> None:
    """The slow path of histogram checking: find and name the first bad entry."""
    prev = -1
    for i, b in enumerate(index):
        _int(b, f"{where}.index[{i}]", 0, MAX_INDEX, "a bucket index")
        if b <= prev:
            raise _Invalid(f"{where}.index[{i}]", f"bucket indexes must be strictly ascending ({prev} then {b})")
        prev = b
    for i, c in enumerate(count):
        _int(c, f"{where}.count[{i}]", 1, MAX_NS, "a count")


def _check_histogram(h: Any, where: str) -> None:
    h = _obj(h, where)
    _keys(h, where, _HIST_KEYS)
    if h["encoding"] != ENCODING:
        raise _Invalid(_at(where, "encoding"), f"unknown encoding {_show(h['encoding'])} (expected {ENCODING!r})")
    if h["sub_buckets"] != SUB_BUCKETS or type(h["sub_buckets"]) is not int:
        raise _Invalid(_at(where, "sub_buckets"), f"expected {SUB_BUCKETS}, got {_show(h['sub_buckets'])}")
    index, count = h["index"], h["count"]
    for name, v in (("index", index), ("count", count)):
        if type(v) is not list:
            raise _Invalid(_at(where, name), f"expected an array, got {_kind(v)}")
    if len(index) != len(count):
        raise _Invalid(where, f"index has {len(index)} entries but count has {len(count)}")
    if not index:
        raise _Invalid(_at(where, "index"), "no buckets")
    if not (all(type(b) is int for b in index) and all(type(c) is int for c in count)
            and 0 <= index[0] and index[-1] <= MAX_INDEX and all(a < b for a, b in zip(index, index[1:]))
            and min(count) >= 1 and max(count) <= MAX_NS):
        _locate_bucket_problem(index, count, where)
    total = _int(h["total"], _at(where, "total"), 1, MAX_NS)
    if sum(count) != total:
        raise _Invalid(_at(where, "total"), f"{total}, but the counts add up to {sum(count)}")
    lo, hi = _ns(h["min_ns"], _at(where, "min_ns")), _ns(h["max_ns"], _at(where, "max_ns"))
    if lo > hi:
        raise _Invalid(where, f"min_ns {lo} > max_ns {hi}")
    lo_b, hi_b = (int(x) for x in _bucket_of(np.array([lo, hi])))
    if lo_b != index[0] or hi_b != index[-1]:
        raise _Invalid(where, f"min_ns/max_ns fall in buckets {lo_b}/{hi_b}, but the stored buckets span "
                              f"{index[0]}..{index[-1]}")


def _check_record(r: Any, where: str) -> None:
    r = _obj(r, where)
    _keys(r, where, _RECORD_KEYS, _RECORD_OPTIONAL)
    batch = _int(r["batch"], _at(where, "batch"), 1, MAX_NS)
    mode = _str(r["mode"], _at(where, "mode"))
    expected_mode = "single" if batch == 1 else f"batched({batch})"
    if mode != expected_mode:
        raise _Invalid(_at(where, "mode"), f"{_show(mode)} does not match batch {batch} (expected {expected_mode!r})")
    n = _int(r["n"], _at(where, "n"), 1, MAX_NS)
    names = ("min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns")
    for k in (*names, "mean_ns"):
        _ns(r[k], _at(where, k))
    _ordered(r, where, names)
    if not r["min_ns"] <= r["mean_ns"] <= r["max_ns"]:
        raise _Invalid(_at(where, "mean_ns"), f"{r['mean_ns']} lies outside min_ns..max_ns "
                                              f"({r['min_ns']}..{r['max_ns']})")
    _str(r["group"], _at(where, "group"), nullable=True)
    if "host" in r:
        _obj(r["host"], _at(where, "host"))
    if "counters" in r:
        cw = _at(where, "counters")
        for name, c in _obj(r["counters"], cw).items():
            c = _obj(c, _at(cw, name))
            _keys(c, _at(cw, name), frozenset({"per_call", "blocks"}))
            for k, v in [("per_call", c["per_call"])] + [(f"blocks[{i}]", v) for i, v in enumerate(
                    c["blocks"] if type(c["blocks"]) is list else [c["blocks"]])]:
                if type(v) not in (int, float) or not -1e12 <= v <= 1e12:
                    raise _Invalid(_at(_at(cw, name), k), f"expected a per-call count, got {_show(v)}")
    blocks = r["blocks"]
    if type(blocks) is not list:
        raise _Invalid(_at(where, "blocks"), f"expected an array, got {_kind(blocks)}")
    if not blocks:
        raise _Invalid(_at(where, "blocks"), "no blocks")
    block_names = tuple(f"{s}_ns" for s in _STATS)
    for i, b in enumerate(blocks):
        w = f"{where}.blocks[{i}]"
        b = _obj(b, w)
        _keys(b, w, _BLOCK_KEYS)
        _int(b["n"], _at(w, "n"), 1, MAX_NS, "a sample count")
        for k in block_names:
            _ns(b[k], _at(w, k))
        _ordered(b, w, block_names)
        if b["max_ns"] > r["max_ns"]:
            raise _Invalid(_at(w, "max_ns"), f"{b['max_ns']} > the measurement's max_ns {r['max_ns']}")
    in_blocks = sum(b["n"] for b in blocks)
    if in_blocks != n:
        raise _Invalid(_at(where, "n"), f"{n}, but the blocks hold {in_blocks} samples")
    hw = _at(where, "histogram")
    _check_histogram(r["histogram"], hw)
    h = r["histogram"]
    if h["total"] != n:
        raise _Invalid(_at(hw, "total"), f"{h['total']}, but the measurement has n={n} samples")
    if h["min_ns"] != r["min_ns"] or h["max_ns"] != r["max_ns"]:
        raise _Invalid(hw, f"min_ns/max_ns {h['min_ns']}/{h['max_ns']} differ from the measurement's "
                           f"{r['min_ns']}/{r['max_ns']}")


def _check_run(run: Any, where: str) -> None:
    run = _obj(run, where)
    _keys(run, where, _RUN_KEYS, extra_ok=True)
    w = _at(where, "created_utc")
    created = _str(run["created_utc"], w)
    m = _UTC_RE.fullmatch(created)
    try:
        if m is None:
            raise ValueError
        datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise _Invalid(w, f"{_show(created)} is not a UTC time like '2024-05-01T12:00:00Z'") from None
    w = _at(where, "commit")
    commit = _obj(run["commit"], w)
    _keys(commit, w, _COMMIT_KEYS)
    sha = _str(commit["sha"], _at(w, "sha"), nullable=True)
    if sha is not None and not _SHA_RE.fullmatch(sha):
        raise _Invalid(_at(w, "sha"), f"{_show(sha)} is not a hex commit id")
    _str(commit["branch"], _at(w, "branch"), nullable=True)
    if commit["dirty"] is not None and type(commit["dirty"]) is not bool:
        raise _Invalid(_at(w, "dirty"), f"expected true, false or null, got {_kind(commit['dirty'])}")
    w = _at(where, "tools")
    for k, v in _obj(run["tools"], w).items():
        _str(v, _at(w, k), nullable=True)
    w = _at(where, "fingerprint")
    for k, v in _obj(run["fingerprint"], w).items():
        if type(v) in (dict, list):
            raise _Invalid(_at(w, k), f"expected a string, number, boolean or null, got {_kind(v)}")
    w = _at(where, "audit")
    if type(run["audit"]) is not list:
        raise _Invalid(w, f"expected an array, got {_kind(run['audit'])}")
    for i, item in enumerate(run["audit"]):
        wi = f"{w}[{i}]"
        _keys(_obj(item, wi), wi, _AUDIT_KEYS)
        for k in ("name", "reading", "verdict"):
            _str(item[k], _at(wi, k))
        _str(item["advice"], _at(wi, "advice"), nullable=True)
    w = _at(where, "timer")
    if run["timer"] is not None:
        timer = _obj(run["timer"], w)
        _keys(timer, w, _TIMER_KEYS)
        _str(timer["clock"], _at(w, "clock"))
        _ns(timer["overhead_ns"], _at(w, "overhead_ns"))
        _ns(timer["resolution_ns"], _at(w, "resolution_ns"))
        _int(timer["pairs"], _at(w, "pairs"), 1, MAX_NS)
    _int(run["concurrency"], _at(where, "concurrency"), 1, 1 << 20)
    w = _at(where, "measurements")
    for mid, record in _obj(run["measurements"], w).items():
        if not mid:
            raise _Invalid(w, "empty measurement id")
        _check_record(record, f"{w}[{_show_key(mid)}]")
