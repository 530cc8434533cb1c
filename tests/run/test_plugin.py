"""The plugin end to end, in pytest subprocesses (measurements change gc and, later, scheduling)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SLEEP_TEST = """
import time

def test_sleep(hostperf):
    r = hostperf(time.sleep, 0.0001)
    assert r.p99 >= r.p50 >= 100_000, (r.p50, r.p99)   # sleep(100 us) cannot take less
    assert r.n >= 100 and r.mode == "single" and not r.batched
"""


def test_smoke_mode_makes_a_few_calls_and_gates_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        calls = []

        @pytest.mark.hostperf(p99="1ns")
        def test_x(hostperf):
            r = hostperf(calls.append, 1)
            assert r.smoke and len(calls) < 1000
    """)
    result = pytester.runpytest_subprocess("--hostperf-json=out.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 measurement(s) in 1 test(s) ran as smoke tests*",
                                 "*--hostperf-json is written only under --hostperf*"])
    assert not (pytester.path / "out.json").exists()


def test_full_mode_summary_and_sleep_latency(fast_ini: pytest.Pytester) -> None:
    fast_ini.makepyfile(SLEEP_TEST)
    result = fast_ini.runpytest_subprocess("--hostperf")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*timer perf_counter_ns: overhead *, resolution *",
        "measurement*",
        "*n*p50*p99*p99.9*max*mode*host*",
        "test_full_mode_summary_and_sleep_latency.py::test_sleep[[]sleep[]]",  # its figures on the next line
        "*single*",
    ])


def test_short_calls_are_labelled_batched_everywhere(fast_ini: pytest.Pytester) -> None:
    fast_ini.makepyfile("""
        def test_noop(hostperf):
            r = hostperf(lambda: None, name="noop")
            assert r.batched and r.mode == f"batched({r.batch})" and r.batch > 1
    """)
    result = fast_ini.runpytest_subprocess("--hostperf", "--hostperf-json=r.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_noop[[]noop[]]", "*batched(*)*",
                                 "batched(k): each sample is the mean of k calls*"])
    doc = json.loads((fast_ini.path / "r.json").read_text())
    (row,) = doc["results"]
    assert row["mode"] == f"batched({row['batch']})" and row["batch"] > 1


def test_json_report_is_complete_and_valid(fast_ini: pytest.Pytester) -> None:
    fast_ini.makepyfile("""
        import time
        import pytest

        @pytest.mark.hostperf(group="sleepers", p99="10s")
        def test_two(hostperf):
            hostperf(time.sleep, 0.00005, name="short")
            hostperf(time.sleep, 0.0001, name="long")
    """)
    result = fast_ini.runpytest_subprocess("--hostperf", "--hostperf-json=sub/r.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*JSON report written to *r.json"])
    doc = json.loads((fast_ini.path / "sub" / "r.json").read_text())
    assert doc["schema"] == "pytest-hostperf-report" and doc["schema_version"] == 1 and doc["mode"] == "full"
    assert doc["timer"]["overhead_ns"] > 0 and doc["settings"]["samples"] == 400
    ids = [r["id"] for r in doc["results"]]
    assert ids == ["test_json_report_is_complete_and_valid.py::test_two[short]",
                   "test_json_report_is_complete_and_valid.py::test_two[long]"]
    for r in doc["results"]:
        assert r["group"] == "sleepers" and r["n"] == sum(b["n"] for b in r["blocks"])
        assert r["p50_ns"] <= r["p99_ns"] <= r["max_ns"] and isinstance(r["p99_ns"], int)
        lo, hi = r["intervals_ns"]["p99"]
        assert lo <= r["p99_ns"] <= hi
        assert r["budgets"][0]["status"] == "within" and r["budgets"][0]["budget_ns"] == 10**10


def test_budget_failure_names_value_interval_and_budget(fast_ini: pytest.Pytester) -> None:
    fast_ini.makepyfile("""
        import time
        import pytest

        @pytest.mark.hostperf(p99="1us")
        def test_slow(hostperf):
            hostperf(time.sleep, 0.0001)

        @pytest.mark.hostperf(p999="10s", max="10s")
        def test_fine(hostperf):
            hostperf(time.sleep, 0.0001)
    """)
    result = fast_ini.runpytest_subprocess("--hostperf")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*test_slow[[]sleep[]]: p99 * [[]95% CI * .. *[]] is over its budget of 1.00 us*",
    ])


def test_several_measurements_need_distinct_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_dup(hostperf):
            hostperf(len, "a")
            hostperf(len, "b")
    """)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*measurement name 'len' is already used in this test*name=*"])


@pytest.mark.parametrize(("marker", "message"), [
    ("p99='fast'", "*hostperf(p99=...): 'fast' is not a duration*'50us'*"),
    ("samples=-3", "*hostperf(samples=...): '-3' is not a whole number of at least 1*"),
    ("p95='1ms'", "*unknown key(s) p95; valid keys: p99, p999, max*"),
    ("rt='max'", "*hostperf(rt=...): 'max' is not a SCHED_FIFO priority*"),
])
def test_bad_marker_values_name_the_key(pytester: pytest.Pytester, marker: str, message: str) -> None:
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.hostperf({marker})
        def test_x(hostperf):
            hostperf(len, "a")
    """)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1) if "unknown" in message else result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])


@pytest.mark.parametrize(("args", "message"), [
    (["--hostperf-cpus=abc"], "*argument --hostperf-cpus: *'abc'*CPU list*"),
    (["--hostperf-cpus=999"], "*argument --hostperf-cpus: *999*"),
    (["--hostperf-tolerance=-5"], "*argument --hostperf-tolerance: '-5' is not a percentage between 0 and 1000*"),
    (["--hostperf-rt=100"], "*argument --hostperf-rt: '100' is not a SCHED_FIFO priority between 1 and 98*"),
    (["--hostperf-samples=lots"], "*argument --hostperf-samples: 'lots' is not a whole number*"),
    (["--hostperf-max-time=0"], "*argument --hostperf-max-time: '0' is not a positive number of seconds*"),
])
def test_bad_option_values_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_bad_ini_value_names_the_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nhostperf_samples = many\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini key hostperf_samples (for --hostperf-samples): 'many' is not a whole number*"])


def test_cli_beats_ini(pytester: pytest.Pytester) -> None:
    # a budget no block can reach (2 calls of ~0.15 ms in 250 ms), so n is the samples asked for
    pytester.makeini("[pytest]\nhostperf_samples = 50\nhostperf_max_time = 5\n")
    pytester.makepyfile("""
        def test_x(hostperf):
            r = hostperf(__import__("time").sleep, 0.0001)
            assert r.n == 40 and not r.truncated
    """)
    pytester.runpytest_subprocess("--hostperf", "--hostperf-samples=40").assert_outcomes(passed=1)


def test_help_lists_options_without_importing_numpy_or_torch(tmp_path) -> None:
    code = textwrap.dedent("""
        import sys, pytest
        code = pytest.main(["--help", "-p", "pytest_hostperf.plugin"])
        heavy = sorted(m for m in ("numpy", "torch") if m in sys.modules)
        print("HEAVY:", heavy, "EXIT:", int(code))
    """)
    env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120).stdout
    assert "HEAVY: [] EXIT: 0" in out
    for flag in ("--hostperf ", "--hostperf-save", "--hostperf-cpus=LIST", "--hostperf-rt=PRIO|off",
                 "--hostperf-no-mlock", "--hostperf-json=PATH", "--hostperf-strict"):
        assert flag in out, flag


def test_cli_show_renders_a_report(fast_ini: pytest.Pytester) -> None:
    fast_ini.makepyfile(SLEEP_TEST)
    fast_ini.runpytest_subprocess("--hostperf", "--hostperf-json=r.json").assert_outcomes(passed=1)
    shown = fast_ini.run(sys.executable, "-m", "pytest_hostperf.cli", "show", "r.json")
    assert shown.ret == 0
    shown.stdout.fnmatch_lines(["measurement*", "*p99*", "*test_sleep[[]sleep[]]", "*single*"])
    (fast_ini.path / "bad.json").write_text('{"schema": "other"}')
    bad = fast_ini.run(sys.executable, "-m", "pytest_hostperf.cli", "show", "bad.json")
    assert bad.ret == 2
    bad.stderr.fnmatch_lines(["hostperf: error: *bad.json: not a pytest-hostperf report*"])
