"""Building runs for saving (run_record.py): measurement_record and new_run."""
from __future__ import annotations

import re

import numpy as np
import pytest
from baseline_data import FP, TOOLS, ns_values, real_record

from pytest_hostperf.errors import BaselineError
from pytest_hostperf.measure.sampling import Samples, TimerInfo
from pytest_hostperf.stats.result import summarize
from pytest_hostperf.store import histogram, run_record
from pytest_hostperf.store.records import ResultRecord


def test_measurement_record_keeps_the_summary_and_adds_the_histogram() -> None:
    rec = real_record(3, batch=4, host={"cpus": [1]})
    assert set(rec) == {"mode", "batch", "n", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "min_ns",
                        "mean_ns", "blocks", "group", "host", "histogram"}
    assert rec["mode"] == "batched(4)" and rec["n"] == 2000 and len(rec["blocks"]) == 20
    assert set(rec["blocks"][0]) == {"n", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"}
    assert all(type(v) is int for _, v in ns_values(rec))
    p = histogram.histogram_percentiles(rec["histogram"], [50, 99])
    assert abs(p[0] - rec["p50_ns"]) < 0.05 * rec["p50_ns"]


def test_measurement_record_rejects_inconsistent_input() -> None:
    rng = np.random.default_rng(0)
    raw = Samples(values=rng.lognormal(7, 0.3, 100), block_sizes=(50, 50), batch=1, warmup_calls=1, calls=100,
                  seconds=0.01, truncated=False)
    d = ResultRecord.of(summarize(raw, nodeid="t.py::t", name="x")).to_json()
    with pytest.raises(BaselineError, match=r"measurement_record for 't.py::t\[x\]'.*histogram.total: 99"):
        run_record.measurement_record(d, raw.values[:99])
    with pytest.raises(BaselineError, match="lacks blocks"):
        run_record.measurement_record({k: v for k, v in d.items() if k != "blocks"}, raw.values)
    with pytest.raises(BaselineError, match="encode_histogram: no samples"):
        run_record.measurement_record(d, np.array([]))


def test_new_run_defaults_and_conversions() -> None:
    from pytest_hostperf.host.audit import Check

    run = run_record.new_run(measurements={}, fingerprint=FP, audit=[Check("smt", "off", "ok")],
                           timer=TimerInfo("perf_counter_ns", 49.6, 10.0, 200), tools=TOOLS)
    assert run["commit"] == {"sha": None, "branch": None, "dirty": None}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", run["created_utc"])
    assert run["timer"] == {"clock": "perf_counter_ns", "overhead_ns": 50, "resolution_ns": 10, "pairs": 200}
    assert run["audit"] == [{"name": "smt", "reading": "off", "verdict": "ok", "advice": None}]
    assert run["concurrency"] == 1
    with pytest.raises(BaselineError, match="would replace the run's own keys"):
        run_record.new_run(measurements={}, fingerprint=FP, audit=[], timer=None, tools={}, extra={"timer": 1})
    with pytest.raises(BaselineError, match=r"new_run: run.concurrency"):
        run_record.new_run(measurements={}, fingerprint=FP, audit=[], timer=None, tools={}, concurrency=0)
    with pytest.raises(BaselineError, match=r"new_run: run.fingerprint.x: expected a string, number"):
        run_record.new_run(measurements={}, fingerprint={"x": [1]}, audit=[], timer=None, tools={})

