"""pytest-benchmark support: gate its rounds on p99, import its JSON files.

pytest-benchmark times *rounds*; each round runs the function ``iterations`` times and it
stores the round's time divided by ``iterations``. With ``iterations=1``
(``benchmark.pedantic(fn, rounds=N, iterations=1)``) every stored value is one call's latency,
so its percentiles are the calls'. With k iterations each value is a mean of k calls: its p99
is the p99 of round times, a well-defined statistic that moves when the code does but
understates the calls' own tail, so the result is labelled ``batched(k)`` (as hostperf's own
batched measurements are) and compared only with rounds of the same k (:func:`like_for_like`).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pytest_hostperf.errors import HostperfError
from pytest_hostperf.measure.sampling import Samples
from pytest_hostperf.stats.result import summarize
from pytest_hostperf.store import jsonfile
from pytest_hostperf.store.histogram import encode_histogram
from pytest_hostperf.store.records import Commit, HostInfo, Report, ResultRecord, Settings
from pytest_hostperf.units import format_bytes

#: Blocks a pytest-benchmark run is split into, as hostperf splits its own samples.
BLOCKS = 20
#: At least this many values per block; fewer rounds give fewer blocks.
MIN_BLOCK = 10
#: Refuse larger files unless told (``hostperf import-benchmark --max-size``): with
#: ``--benchmark-save-data`` (and in pytest-benchmark 5.3 always) every round is kept, so a
#: 54-test suite's file is already 75 MB. It is read whole, as ``json`` needs it.
MAX_FILE_BYTES = 256 * 1024 * 1024
#: And more JSON values than this (scaled with ``--max-size``): a round is one float, ~8 bytes
#: parsed; 12 million is about 400 MiB of Python floats. A file of empty lists or tiny objects
#: would cost far more per byte than rounds do, so the bound is on values, not bytes alone.
MAX_FILE_VALUES = 12_000_000


#: A pytest-benchmark test's rounds may take up to this many times its ``--benchmark-max-time``
#: when a baseline fixes their count (code that became slower): beyond it they are cut, and
#: the comparison says the rounds differ.
ROUNDS_TIME_CAP = 4.0
#: Round counts within this share of each other compare like for like (their blocks, a
#: twentieth of the rounds each, differ in size by no more).
LIKE_ROUNDS = 0.25


@dataclass(frozen=True, slots=True)
class RoundsPlan:
    """The rounds and iterations per round a pytest-benchmark test runs under ``--hostperf``."""

    rounds: int
    iterations: int
    source: str  # "baseline" (the stored run's counts), "chosen" (from pytest-benchmark's time budget)
    capped: bool = False  # the baseline's rounds would have taken over ROUNDS_TIME_CAP x the budget


def fixed_plan(round_s: float, iterations: int, *, min_rounds: int, max_time_s: float,
               baseline: tuple[int, int] | None) -> RoundsPlan:
    """The rounds of one pytest-benchmark test, the same every run, so that its block
    percentiles compare with the stored ones like for like.

    ``round_s``: one round's time at ``iterations`` (pytest-benchmark's calibration);
    ``baseline``: the latest stored run's (rounds, iterations) of this test, or None. With a
    baseline its counts are kept, so its percentiles compare like for like (within a time
    cap); without, the rounds pytest-benchmark itself would run (``max_time / round``, at
    least ``min_rounds``), which the saved baseline then fixes for later runs."""
    round_s = max(round_s, 1e-9)
    if baseline is not None:
        rounds, iters = baseline
        one = round_s * iters / max(iterations, 1)
        cap = max(min_rounds, 1, math.ceil(ROUNDS_TIME_CAP * max_time_s / one))
        return RoundsPlan(min(rounds, cap), iters, "baseline", capped=rounds > cap)
    return RoundsPlan(max(min_rounds, 1, math.ceil(max_time_s / round_s)), iterations, "chosen")


def like_for_like(rounds: int, iterations: int, stored: tuple[int, int]) -> str | None:
    """Why a pytest-benchmark result of ``rounds`` x ``iterations`` does not compare with a
    stored one (None when it does): its values are means of ``iterations`` calls, and its
    blocks a twentieth of its rounds, so both counts must match (rounds within LIKE_ROUNDS)."""
    n, iters = stored
    if iters != iterations:
        return f"iterations per round differ ({iters} stored, {iterations} now): means of different call counts"
    if abs(rounds - n) > LIKE_ROUNDS * max(rounds, n):
        return f"rounds differ ({n} stored, {rounds} now): block percentiles of different block sizes"
    return None


def samples_from_data(data_s: object, iterations: int, seconds: float = 0.0) -> Samples:
    """hostperf ``Samples`` from pytest-benchmark's per-round values (seconds per iteration)."""
    values = np.asarray(data_s, dtype=np.float64) * 1e9
    if values.ndim != 1 or not len(values) or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise HostperfError("pytest-benchmark data: expected a non-empty list of non-negative finite times")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise HostperfError(f"pytest-benchmark iterations: {iterations!r} is not a whole number >= 1")
    n = len(values)
    blocks = max(1, min(BLOCKS, n // MIN_BLOCK))
    sizes = tuple(len(b) for b in np.array_split(np.arange(n), blocks))
    return Samples(values=values, block_sizes=sizes, batch=iterations, warmup_calls=0,
                   calls=n * iterations, seconds=float(seconds or values.sum() * iterations / 1e9),
                   truncated=False)


@dataclass(frozen=True, slots=True)
class Benchmark:
    """One benchmark of a pytest-benchmark file: its per-round values and rounds' size."""

    fullname: str
    group: str | None
    data: Any  # seconds per iteration, one value per round (checked by samples_from_data)
    iterations: Any


@dataclass(frozen=True, slots=True)
class BenchmarkFile:
    """What hostperf reads of a ``--benchmark-json`` file."""

    path: Path
    benchmarks: tuple[Benchmark, ...]
    created_utc: str | None
    version: str | None
    commit: Commit
    fingerprint: dict[str, Any]  # machine_info in hostperf's fingerprint keys (host/fingerprint.py)


def load_benchmark_json(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> BenchmarkFile:
    """Read a ``--benchmark-json`` file; a clear error when it is not one or lacks the data, or
    is larger than ``max_bytes`` (the message says how to read it anyway).

    The one place that knows pytest-benchmark's own keys."""
    try:
        size = os.stat(path).st_size
    except OSError:
        size = 0  # read_json names the problem
    if size > max_bytes:
        raise HostperfError(f"{path}: {format_bytes(size)} is more than the {format_bytes(max_bytes)} "
                            f"import-benchmark reads (--max-size); if it is a pytest-benchmark file, read it with "
                            f"--max-size {format_bytes(2 * size).replace(' ', '')} (it is read whole: "
                            "a few times its size in memory)")
    doc = jsonfile.read_json(Path(path), what="pytest-benchmark file", error=HostperfError,
                             max_bytes=max_bytes, max_values=MAX_FILE_VALUES * max(1, max_bytes // MAX_FILE_BYTES))
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list) or "machine_info" not in doc:
        raise HostperfError(f"{path}: not a pytest-benchmark JSON file (no \"benchmarks\" list and "
                            "\"machine_info\"); write one with pytest --benchmark-json=FILE --benchmark-save-data")
    benchmarks = []
    for i, b in enumerate(doc["benchmarks"]):
        stats = b.get("stats") if isinstance(b, dict) else None
        if not isinstance(b, dict) or not isinstance(stats, dict) or not isinstance(stats.get("data"), list):
            name = b.get("fullname", f"benchmarks[{i}]") if isinstance(b, dict) else f"benchmarks[{i}]"
            raise HostperfError(f"{path}: {name} has no per-round data; save it with --benchmark-save-data")
        group = b.get("group")
        benchmarks.append(Benchmark(str(b.get("fullname") or b.get("name") or "benchmark"),
                                    None if group is None else str(group), stats["data"], stats.get("iterations", 1)))
    commit: dict[str, Any] = doc["commit_info"] if isinstance(doc.get("commit_info"), dict) else {}
    machine: dict[str, Any] = doc["machine_info"] if isinstance(doc["machine_info"], dict) else {}
    cpu: dict[str, Any] = machine["cpu"] if isinstance(machine.get("cpu"), dict) else {}
    fingerprint = {k: v for k, v in {
        "cpu_model": cpu.get("brand_raw") or cpu.get("brand") or machine.get("processor") or None,
        "logical_cpus": cpu.get("count"),
        "arch": machine.get("machine"),
        "kernel": machine.get("release"),
        "python": str(machine.get("python_version", "")) or None,
        "python_implementation": str(machine.get("python_implementation", "")) or None,
        "hostname": machine.get("node"),
        "source": "pytest-benchmark machine_info",
    }.items() if v is not None}
    version = doc.get("version")
    return BenchmarkFile(Path(path), tuple(benchmarks), doc.get("datetime"),
                         None if version is None else str(version),
                         Commit(commit.get("id"), commit.get("branch"), commit.get("dirty")), fingerprint)


def import_benchmark(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> Report:
    """A hostperf report (``--hostperf-json`` schema) from a pytest-benchmark JSON file saved
    with ``--benchmark-save-data``; ``hostperf compare`` and ``hostperf plot`` accept it."""
    f = load_benchmark_json(Path(path), max_bytes=max_bytes)
    results = []
    for b in f.benchmarks:
        try:
            raw = samples_from_data(b.data, b.iterations)
        except HostperfError as exc:
            raise HostperfError(f"{path}: {b.fullname}: {exc}") from None
        res = summarize(raw, nodeid=b.fullname, name="benchmark", group=b.group)
        results.append(ResultRecord.of(res, histogram=encode_histogram(raw.values)))
    return Report(
        created_utc=f.created_utc or "", mode="imported", commit=f.commit,
        settings=Settings(samples=0, max_time_s=0.0, tolerance_pct=10.0, strict=False), baseline=None,
        timer=None, concurrency=1, tools={"pytest-benchmark": f.version or "unknown"}, speedups=(),
        host=HostInfo(f.fingerprint, ()), counters=None, noise=None,
        notes=(f"imported from {path} (pytest-benchmark {f.version or 'unknown version'})",),
        results=tuple(results))
