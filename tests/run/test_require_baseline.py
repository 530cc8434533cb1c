"""``--hostperf-require-baseline``: a measurement without a stored baseline fails its test with
the command that records one; waived under ``--hostperf-save`` and ``--hostperf-against``."""
from __future__ import annotations

from pathlib import Path

import pytest

NAP = """
import time


def test_nap(hostperf):
    hostperf(time.sleep, 0.0001, name="nap")
"""
QUIET = ("--hostperf-rt=off", "--hostperf-no-noise", "--hostperf-no-counters", "--hostperf-no-confirm",
         "--hostperf-tolerance=500", "--hostperf-host=req-host")


def test_no_baseline_fails_the_test_with_the_command_that_records_one(fast_ini: pytest.Pytester) -> None:
    fast_ini.makepyfile(test_req=NAP)
    result = fast_ini.runpytest_subprocess("--hostperf", "--hostperf-require-baseline", *QUIET)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*test_req.py::test_nap[[]nap[]]: no baseline to compare with, and --hostperf-require-baseline is set: "
        "baselines/req-host.json does not exist (host id req-host); record it with: pytest *--hostperf "
        "--hostperf-rt=off * --hostperf-host=req-host --hostperf-save (then commit baselines/req-host.json)*"])
    assert "--hostperf-require-baseline --hostperf-save" not in result.stdout.str()
    assert not (fast_ini.path / "baselines").exists()
    # without the option the same run passes: a first run is not a failure
    fast_ini.runpytest_subprocess("--hostperf", *QUIET).assert_outcomes(passed=1)


def test_save_records_it_and_then_only_a_new_measurement_fails(fast_ini: pytest.Pytester) -> None:
    fast_ini.makeini("[pytest]\nhostperf_samples = 400\nhostperf_max_time = 0.3\nhostperf_require_baseline = true\n")
    fast_ini.makepyfile(test_req=NAP)
    saved = fast_ini.runpytest_subprocess("--hostperf", "--hostperf-save", *QUIET)  # waived: it records them
    saved.assert_outcomes(passed=1)
    assert (fast_ini.path / "baselines" / "req-host.json").exists()
    fast_ini.runpytest_subprocess("--hostperf", *QUIET).assert_outcomes(passed=1)
    fast_ini.makepyfile(test_req=NAP + """

def test_added(hostperf):
    hostperf(time.sleep, 0.0001, name="nap")
""")
    result = fast_ini.runpytest_subprocess("--hostperf", *QUIET)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_req.py::test_added[[]nap[]]: no baseline to compare with*: none of the 1 "
                                 "run(s) in baselines/req-host.json has it; record it with: pytest *--hostperf *"])
    # the ini key goes through the option's validator
    fast_ini.makeini("[pytest]\nhostperf_require_baseline = maybe\n")
    bad = fast_ini.runpytest_subprocess("--hostperf", *QUIET)
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*ini key hostperf_require_baseline*'maybe' is not true or false*"])


SUM = """
def test_sum(hostperf):
    hostperf(sum, range(200), name="sum")
"""


def test_paired_runs_are_not_held_to_it(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Paired, ``new`` means only the head has the measurement (a pull request adding one)."""
    ini = "[pytest]\nhostperf_samples = 2000\nhostperf_max_time = 0.2\n"
    base = tmp_path / "base"
    base.mkdir()
    (base / "test_req.py").write_text(SUM)
    (base / "pytest.ini").write_text(ini)
    pytester.makeini(ini)
    pytester.makepyfile(test_req=SUM + """

def test_added(hostperf):
    hostperf(sum, range(200), name="sum")
""")
    result = pytester.runpytest_subprocess("--hostperf", f"--hostperf-against={base}", "--hostperf-require-baseline",
                                           *QUIET)
    result.assert_outcomes(passed=2)
    assert "--hostperf-require-baseline is set" not in result.stdout.str()
