"""Per-call counters beside the latency, and the host noise probe (issue 9)."""
from __future__ import annotations

import json
import os
import time

import pytest

from pytest_hostperf.measure import counters, noise, sampling
from pytest_hostperf.stats import counter_changes
from pytest_hostperf.stats.result import summarize

PLAN = sampling.Plan(samples=200, blocks=10, max_seconds=0.5, warmup_calls=5, warmup_seconds=0.01, batch=1)
TIMER = sampling.TimerInfo(clock="perf_counter_ns", overhead_ns=50.0, resolution_ns=1.0, pairs=10)


def _counted(fn, *args) -> dict:
    with counters.Reader(perf=False) as reader:
        raw = sampling.sample(fn, args, plan=PLAN, timer=TIMER, counters=reader)
    assert raw.counter_deltas.shape == (len(raw.block_sizes), len(raw.counter_names))
    return summarize(raw, nodeid="t.py::test", name="x").counters


def test_fresh_pages_per_call_show_as_page_faults() -> None:
    import mmap

    def fresh() -> None:  # a fresh anonymous mapping per call: every page first-touched
        m = mmap.mmap(-1, 16 * 4096)
        for off in range(0, len(m), 4096):
            m[off] = 1
        m.close()

    reused = mmap.mmap(-1, 16 * 4096)

    def reuse() -> None:
        for off in range(0, len(reused), 4096):
            reused[off] = 1

    a, b = _counted(fresh), _counted(reuse)
    assert a["minor_faults"]["per_call"] >= 12 and b["minor_faults"]["per_call"] < 1
    assert len(a["minor_faults"]["blocks"]) == 10


def test_kept_objects_show_as_python_allocations() -> None:
    kept: list = []
    a = _counted(lambda: kept.append([object(), object(), object()]))
    b = _counted(lambda: [object(), object(), object()])
    assert a["py_allocations"]["per_call"] >= 3 and abs(b["py_allocations"]["per_call"]) < 0.5


def test_sleeping_shows_voluntary_switches_and_pinning_no_migrations() -> None:
    c = _counted(time.sleep, 0.0002)
    assert c["voluntary_switches"]["per_call"] >= 0.9
    assert 0 <= c["cpu_migrations"]["per_call"] <= 1


def test_perf_counters_read_through_the_syscall_or_say_why() -> None:
    reader = counters.Reader()
    try:
        for name in counters.PERF:
            assert (name in reader.fds) != (name in reader.unavailable)
            if name in reader.unavailable:
                assert reader.unavailable[name].startswith("perf_event_open: ")
    finally:
        reader.close()
    # the same open/read path with a software event, which any Linux kernel allows
    try:
        fd = counters.perf_open(1, 1)  # PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK (ns on CPU)
    except OSError as exc:
        pytest.skip(f"perf_event_open refused even a software event here: {exc}")
    try:
        before = counters.perf_read(fd)
        sum(range(100_000))  # ~ms of CPU time
        assert counters.perf_read(fd) > before
    finally:
        os.close(fd)


def test_changed_counters_are_named_and_jitter_is_not() -> None:
    base = [{"minor_faults": {"per_call": 0.0, "blocks": []}, "py_allocations": {"per_call": 0.1, "blocks": []}}] * 3
    now = {"minor_faults": {"per_call": 16.0, "blocks": []}, "py_allocations": {"per_call": 0.2, "blocks": []}}
    ch = counter_changes.changed(now, base)
    assert ch == [("minor_faults", 0.0, 16.0)]
    assert counter_changes.describe_changes(ch) == "minor faults/call 0.0 -> 16"
    assert counter_changes.changed(base[0], base) == []


def test_noise_probe_is_bounded_and_flags_a_noisier_run() -> None:
    n = noise.probe(seconds=0.01, max_reads=50_000)
    assert n.count >= 0 and n.longest_ns <= n.total_ns + 1 and 0 <= n.share <= 1
    assert noise.is_noisy(0.05, [0.001, 0.002, 0.001]) and not noise.is_noisy(0.003, [0.001, 0.002, 0.001])
    assert not noise.is_noisy(0.05, [])  # nothing to compare with


ARENA_TEST = """
import os
import numpy as np
from benchmarks.workloads.arena import Arena, mmap_threshold

FRESH = os.environ.get("FRESH") == "1"

def test_buffers(hostperf):
    arena = Arena(4 << 20)
    def request():
        if FRESH:
            buf = np.empty(1 << 20, dtype=np.uint8)
        else:
            arena.reset()
            buf = arena.alloc(1 << 20)
        buf.fill(7)
    with mmap_threshold(128 * 1024):
        hostperf(request, name="request")
"""


def test_verdict_names_the_counter_that_changed(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nhostperf_samples = 300\nhostperf_max_time = 0.3\n")
    pytester.makepyfile(test_arena=ARENA_TEST)
    monkeypatch.setenv("FRESH", "0")
    pytester.runpytest_subprocess("--hostperf", "--hostperf-save").assert_outcomes(passed=1)
    base = next((pytester.path / "baselines").glob("*.json"))
    rec = json.loads(base.read_text())["runs"][0]["measurements"]["test_arena.py::test_buffers[request]"]
    assert rec["counters"]["minor_faults"]["per_call"] < 1
    monkeypatch.setenv("FRESH", "1")  # back to a fresh buffer above the mmap threshold per request
    res = pytester.runpytest_subprocess("--hostperf", "--hostperf-json=r.json")
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(["*test_buffers[[]request[]]: block-median p99 regressed: * — minor faults/call * -> 2*"])
    (r,) = json.loads((pytester.path / "r.json").read_text())["results"]
    assert r["why"].startswith("minor faults/call") and r["counters"]["minor_faults"]["per_call"] > 200


def test_counters_off_and_unavailable_degrade_cleanly(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nhostperf_samples = 200\nhostperf_max_time = 0.2\n")
    pytester.makepyfile("def test_x(hostperf):\n    hostperf(sum, [1, 2], name='sum')\n")
    on = pytester.runpytest_subprocess("--hostperf", "--hostperf-json=on.json")
    on.assert_outcomes(passed=1)
    on.stdout.fnmatch_lines(["counters: read around each block, outside the timed region*", "host noise: before *"])
    doc = json.loads((pytester.path / "on.json").read_text())
    assert doc["counters"]["enabled"] and "minor_faults" in doc["results"][0]["counters"]
    for name in doc["counters"]["unavailable"]:  # said once, in the summary, not per row
        assert name not in doc["results"][0]["counters"]
    off = pytester.runpytest_subprocess("--hostperf", "--hostperf-no-counters", "--hostperf-no-noise",
                                        "--hostperf-json=off.json")
    off.assert_outcomes(passed=1)
    doc = json.loads((pytester.path / "off.json").read_text())
    assert doc["counters"] == {"enabled": False} and "counters" not in doc["results"][0] and doc["noise"] is None
