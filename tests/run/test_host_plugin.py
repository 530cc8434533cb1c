"""Host control applied by the plugin, end to end in pytest subprocesses (never in this process)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 allowed CPUs to choose one")

STATE_CONFTEST = """
import json, os

def state():
    vmlck = [l for l in open("/proc/self/status") if l.startswith("VmLck:")][0].split()[1]
    return {"affinity": sorted(os.sched_getaffinity(0)), "policy": os.sched_getscheduler(0),
            "priority": os.sched_getparam(0).sched_priority, "vmlck_kib": int(vmlck)}

BEFORE = state()

def pytest_sessionfinish(session):
    with open("states.json", "w") as fh:
        json.dump({"before": BEFORE, "after": state()}, fh)
"""

PROBE_TESTS = """
import os
import pytest

seen = set()

def probe():
    seen.add((tuple(sorted(os.sched_getaffinity(0))), os.sched_getscheduler(0), os.sched_getparam(0).sched_priority))

def test_pass(hostperf):
    hostperf(probe)
    assert seen == {((0,), os.SCHED_FIFO, 49)}

def test_fail(hostperf):
    hostperf(probe, name="again")
    assert False, "fails after measuring"

def test_after():
    from conftest import BEFORE, state
    assert state() == BEFORE
"""


def _states(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / "states.json").read_text())


@two_cpus
def test_measurement_runs_pinned_fifo_locked_and_restores(fast_ini: pytest.Pytester) -> None:
    fast_ini.makeconftest(STATE_CONFTEST)
    fast_ini.makepyfile(PROBE_TESTS)
    result = fast_ini.runpytest_subprocess("--hostperf", "--hostperf-cpus=0", "--hostperf-json=r.json")
    result.assert_outcomes(passed=2, failed=1)
    states = _states(fast_ini)
    assert states["after"] == states["before"]
    assert states["before"]["policy"] == os.SCHED_OTHER and states["before"]["vmlck_kib"] == 0
    doc = json.loads((fast_ini.path / "r.json").read_text())
    for r in doc["results"]:  # read back from the OS during the measurement
        host = r["host"]
        assert (host["cpus"], host["policy"], host["priority"], host["memory_locked"]) == ([0], "SCHED_FIFO", 49, True)
        assert all(c["applied"] for c in host["controls"])
    assert {c["name"] for c in doc["host"]["audit"]} >= {"swappiness", "governor", "rt_throttling", "rtprio"}
    assert doc["host"]["fingerprint"]["logical_cpus"] == os.cpu_count()
    result.stdout.fnmatch_lines(["hostperf audit: *ok*", "*test_pass[[]probe[]]",
                                  "host state of every measurement: cpu0 fifo49 mlock"])


def test_interrupted_measurement_restores_state(fast_ini: pytest.Pytester) -> None:
    fast_ini.makeconftest(STATE_CONFTEST)
    fast_ini.makepyfile("""
        calls = []

        def interrupt_later():
            calls.append(1)
            if len(calls) > 50:
                raise KeyboardInterrupt

        def test_interrupted(hostperf):
            hostperf(interrupt_later)
    """)
    result = fast_ini.runpytest_subprocess("--hostperf")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    states = _states(fast_ini)
    assert states["after"] == states["before"]


def test_marker_overrides_controls(fast_ini: pytest.Pytester) -> None:
    fast_ini.makepyfile("""
        import pytest

        @pytest.mark.hostperf(rt="off", mlock=False)
        def test_plain(hostperf):
            hostperf(len, "abc")

        @pytest.mark.hostperf(rt=10)
        def test_low(hostperf):
            hostperf(len, "abc")
    """)
    fast_ini.runpytest_subprocess("--hostperf", "--hostperf-json=r.json").assert_outcomes(passed=2)
    plain, low = json.loads((fast_ini.path / "r.json").read_text())["results"]
    assert (plain["host"]["policy"], plain["host"]["memory_locked"]) == ("SCHED_OTHER", False)
    assert plain["host"]["cpus"] == [max(os.sched_getaffinity(0))]  # default: the last allowed CPU
    assert (low["host"]["policy"], low["host"]["priority"]) == ("SCHED_FIFO", 10)


@pytest.mark.skipif(not (shutil.which("prlimit") and shutil.which("setpriv")),
                    reason="needs util-linux prlimit and setpriv to drop RLIMIT_RTPRIO and CAP_SYS_NICE")
def test_rt_not_permitted_goes_on_and_required_skips(fast_ini: pytest.Pytester) -> None:
    fast_ini.makepyfile("""
        import os
        import pytest

        def test_goes_on(hostperf):
            r = hostperf(len, "abc")
            assert os.sched_getscheduler(0) == os.SCHED_OTHER

        @pytest.mark.hostperf(rt="required")
        def test_needs_rt(hostperf):
            hostperf(len, "abc")
    """)
    cmd = ["prlimit", "--rtprio=0:0", "setpriv", "--bounding-set", "-sys_nice", sys.executable, "-m", "pytest",
           "-p", "no:cacheprovider", "-rs", "--hostperf", "--hostperf-json=r.json"]
    proc = subprocess.run(cmd, cwd=fast_ini.path, capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "1 passed, 1 skipped" in out
    assert "rt: not applied (" in out and "fix: ulimit -r 99" in out
    assert "SKIPPED" in out and "rt='required' but SCHED_FIFO is not available" in out
    (res,) = json.loads((fast_ini.path / "r.json").read_text())["results"]
    rt = next(c for c in res["host"]["controls"] if c["control"] == "rt")
    assert rt["applied"] is False and "ulimit -r" in rt["fix"]
    assert res["host"]["policy"] == "SCHED_OTHER"


@two_cpus
def test_fixtures_apply_for_the_test_and_restore(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(STATE_CONFTEST)
    pytester.makepyfile("""
        import os
        import numpy as np

        def test_controls(pinned_cpu, rt_priority, locked_memory, warm_cache):
            assert pinned_cpu.applied and os.sched_getaffinity(0) == {max(os.sched_getaffinity(0))}
            assert rt_priority.applied and os.sched_getscheduler(0) == os.SCHED_FIFO
            assert locked_memory.applied
            rec = warm_cache(len, "abc", calls=10, buffers=[np.zeros(4096, dtype=np.uint8)])
            assert rec.calls == 10 and rec.bytes_touched == 4096

        def test_after():
            from conftest import BEFORE, state
            assert state() == BEFORE
    """)
    pytester.runpytest_subprocess().assert_outcomes(passed=2)
    states = _states(pytester)
    assert states["after"] == states["before"]


def test_rt_priority_honours_hostperf_rt(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import os

        def test_rt(rt_priority, request):
            (want,) = [a.split("=", 1)[1] for a in request.config.invocation_params.args
                       if a.startswith("--hostperf-rt=")]
            if want == "off":
                assert not rt_priority.applied and "--hostperf-rt=off" in rt_priority.reason
                assert os.sched_getscheduler(0) == os.SCHED_OTHER
            elif rt_priority.applied:  # where SCHED_FIFO is permitted: at the priority asked for
                assert os.sched_getscheduler(0) == os.SCHED_FIFO
                assert os.sched_getparam(0).sched_priority == int(want)
    """)
    for value in ("off", "20"):
        pytester.runpytest_subprocess(f"--hostperf-rt={value}").assert_outcomes(passed=1)


def test_cli_audit_table_and_json(pytester: pytest.Pytester) -> None:
    table = pytester.run(sys.executable, "-m", "pytest_hostperf.cli", "audit")
    assert table.ret == 0
    table.stdout.fnmatch_lines(["check*reading*verdict*advice", "swappiness *", "audit: * ok*"])
    as_json = pytester.run(sys.executable, "-m", "pytest_hostperf.cli", "audit", "--json")
    doc = json.loads(as_json.stdout.str())
    governor = next(c for c in doc["audit"] if c["name"] == "governor")
    swappiness = int(open("/proc/sys/vm/swappiness").read())
    swap = next(c for c in doc["audit"] if c["name"] == "swappiness")
    assert swap["verdict"] == ("warn" if swappiness > 10 else "ok")
    if not os.path.exists("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"):
        assert governor["verdict"] == "unknown"


def test_pytest_timeout_mid_measurement_restores_state(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(STATE_CONFTEST)
    pytester.makepyfile("""
        import time
        import pytest

        @pytest.mark.timeout(0.5, method="signal")
        def test_times_out(hostperf):
            hostperf(time.sleep, 0.001)   # 3 s of sampling: the timeout fires inside it

        def test_after():
            from conftest import BEFORE, state
            assert state() == BEFORE
    """)
    result = pytester.runpytest_subprocess("--hostperf", "-p", "timeout")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Timeout*"])
    states = _states(pytester)
    assert states["after"] == states["before"]
