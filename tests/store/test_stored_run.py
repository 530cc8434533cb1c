"""The typed way to disk: a run's report -> StoredRun.of -> disk.save_run, encoded and validated once."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from baseline_data import AUDIT, FP, TIMER, TOOLS

from pytest_hostperf.errors import BaselineError
from pytest_hostperf.measure.sampling import Samples
from pytest_hostperf.stats.result import summarize
from pytest_hostperf.store import disk
from pytest_hostperf.store.histogram import encode_histogram
from pytest_hostperf.store.records import (
    Commit,
    HostInfo,
    NoiseInfo,
    Report,
    ResultRecord,
    Settings,
    StoredMeasurement,
    StoredRun,
    Timer,
)


def _result(seed: int = 0, n: int = 2000) -> tuple[ResultRecord, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = Samples(values=np.rint(rng.lognormal(np.log(2000), 0.4, n)), block_sizes=(n // 20,) * 20, batch=1,
                  warmup_calls=10, calls=n, seconds=0.01, truncated=False)
    res = summarize(raw, nodeid="t.py::test_a", name=f"x{seed}")
    return ResultRecord.of(res, histogram=encode_histogram(res.samples)), res.samples


def _report(results: tuple[ResultRecord, ...]) -> Report:
    return Report(created_utc="2024-05-01T12:00:00+00:00", mode="full", commit=Commit(), settings=Settings(
        2000, 3.0, 10.0, False), baseline=None, timer=Timer(**TIMER), concurrency=1, tools=dict(TOOLS),
        speedups=(), host=HostInfo(dict(FP), tuple(AUDIT)), counters=None,
        noise=NoiseInfo({"before": {"text": "quiet"}}, 0.01, None, False), notes=(), results=results)


def test_save_run_takes_the_typed_run_and_checks_it_once(tmp_path: Path) -> None:
    rec, _ = _result()
    run = StoredRun.of(_report((rec,)))
    path = disk.save_run(tmp_path, "h", run)
    assert disk.load(path).runs == (run,)
    short = replace(rec, histogram=encode_histogram(np.arange(1000, 1099)))
    where = re.escape(f'run.measurements["{rec.id}"].histogram.total: 99')
    with pytest.raises(BaselineError, match=f"save_run: not a valid run: {where}"):
        disk.save_run(tmp_path, "h", StoredRun.of(_report((short,))))
    with pytest.raises(BaselineError, match="no histogram of its samples"):
        StoredMeasurement.of(replace(rec, histogram=None))
    assert len(disk.load(path).runs) == 1
