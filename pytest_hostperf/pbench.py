"""pytest-benchmark support: gate its per-call rounds on p99, import its JSON files.

pytest-benchmark times *rounds*; each round runs the function ``iterations`` times and it
stores the round's time divided by ``iterations``. With ``iterations=1``
(``benchmark.pedantic(fn, rounds=N, iterations=1)``) every stored value is one call's latency,
so its percentiles are real and hostperf gates p99 like any of its own measurements. With
more iterations each value is a mean of ``iterations`` calls: the tail is averaged away, and
the result says so instead of pretending (``mode`` ``batched(k)``, not gated).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pytest_hostperf.errors import HostperfError
from pytest_hostperf.measure import Samples
from pytest_hostperf.records import Commit, HostInfo, Report, ResultRecord, Settings

#: Blocks a pytest-benchmark run is split into, as hostperf splits its own samples.
BLOCKS = 20
#: At least this many values per block; fewer rounds give fewer blocks.
MIN_BLOCK = 10
#: Refuse larger files: a saved pytest-benchmark file with data is a few MB per 100k rounds.
MAX_FILE_BYTES = 256 * 1024 * 1024
#: ``--benchmark-save-data`` keeps every round: ~8 bytes a value, so more values than a baseline
#: may hold; 12 million is about 400 MiB of Python floats.
MAX_FILE_VALUES = 12_000_000


def samples_from_data(data_s: Any, iterations: int, seconds: float = 0.0) -> Samples:
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


def tail_note(iterations: int) -> str | None:
    """Why a batched pytest-benchmark result cannot speak for the tail (None when per call)."""
    if iterations == 1:
        return None
    return (f"pytest-benchmark ran {iterations} iterations per round and stores their mean: the "
            "tail is averaged away, so p99 is not gated; time it per call with "
            "benchmark.pedantic(fn, rounds=..., iterations=1)")


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


def load_benchmark_json(path: Path) -> BenchmarkFile:
    """Read a ``--benchmark-json`` file; a clear error when it is not one or lacks the data.

    The one place that knows pytest-benchmark's own keys."""
    from pytest_hostperf import jsonfile

    doc = jsonfile.read_json(Path(path), what="pytest-benchmark file", error=HostperfError,
                             max_bytes=MAX_FILE_BYTES, max_values=MAX_FILE_VALUES)
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
        "python": ".".join(str(machine.get("python_version", "")).split(".")[:2]) or None,
        "implementation": str(machine.get("python_implementation", "")).lower() or None,
        "hostname": machine.get("node"),
        "source": "pytest-benchmark machine_info",
    }.items() if v is not None}
    version = doc.get("version")
    return BenchmarkFile(Path(path), tuple(benchmarks), doc.get("datetime"),
                         None if version is None else str(version),
                         Commit(commit.get("id"), commit.get("branch"), commit.get("dirty")), fingerprint)


def import_benchmark(path: Path) -> Report:
    """A hostperf report (``--hostperf-json`` schema) from a pytest-benchmark JSON file saved
    with ``--benchmark-save-data``; ``hostperf compare`` and ``hostperf plot`` accept it."""
    from pytest_hostperf.histogram import encode_histogram
    from pytest_hostperf.result import summarize

    f = load_benchmark_json(Path(path))
    results = []
    for b in f.benchmarks:
        try:
            raw = samples_from_data(b.data, b.iterations)
        except HostperfError as exc:
            raise HostperfError(f"{path}: {b.fullname}: {exc}") from None
        res = summarize(raw, nodeid=b.fullname, name="benchmark", group=b.group)
        results.append(ResultRecord.of(res, histogram=encode_histogram(raw.values),
                                       not_gated=tail_note(b.iterations)))
    return Report(
        created_utc=f.created_utc or "", mode="imported", commit=f.commit,
        settings=Settings(samples=0, max_time_s=0.0, tolerance_pct=10.0, strict=False), baseline=None,
        timer=None, concurrency=1, tools={"pytest-benchmark": f.version or "unknown"}, speedups=(),
        host=HostInfo(f.fingerprint, ()), counters=None, noise=None,
        notes=(f"imported from {path} (pytest-benchmark {f.version or 'unknown version'})",),
        results=tuple(results))
