"""The gate's yardstick: a workload whose latency scales by a known factor.

What it shows: with a baseline saved (``pytest --hostperf --hostperf-save benchmarks/``), this
measurement stays ``unchanged``; run again with ``HOSTPERF_SLOWDOWN=2`` and it is
``regressed`` and the run exits non-zero. ``python benchmarks/verdict_quality.py`` measures
the false-alarm and detection rates of the same rule over hundreds of comparisons.
"""
from __future__ import annotations

from benchmarks.workloads.synthetic import BASE_ITERATIONS, slowdown_from_env, work


def test_scalable_work(hostperf):
    n = int(BASE_ITERATIONS * slowdown_from_env())
    r = hostperf(work, n, name="work")
    assert r.p99 >= r.p50
