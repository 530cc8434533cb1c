"""``HostperfWarning`` is a ``pytest.PytestWarning``, and ``expect_faster`` warns when its two
sides are timed differently (one ``batched(k)``, the other ``single``, or two batch sizes)."""
from __future__ import annotations

import warnings

import pytest

from pytest_hostperf.errors import HostperfWarning


def test_hostperf_warning_is_a_pytest_warning_and_a_user_warning() -> None:
    assert issubclass(HostperfWarning, pytest.PytestWarning) and issubclass(HostperfWarning, UserWarning)
    with pytest.warns(UserWarning, match="kept compatible"):  # filters written for UserWarning still apply
        warnings.warn(HostperfWarning("kept compatible"), stacklevel=1)


def test_expect_faster_warns_when_one_side_is_batched(fast_ini: pytest.Pytester) -> None:
    fast_ini.makepyfile("""
        import time
        import warnings

        import pytest

        from pytest_hostperf.errors import HostperfWarning


        def test_mixed(hostperf):
            fast = hostperf(lambda: None, name="noop")      # far too short to time alone: batched(k)
            slow = hostperf(time.sleep, 0.0001, name="nap")  # timed alone
            assert fast.batched and not slow.batched
            with pytest.warns(HostperfWarning, match=r"timed differently \\(batched\\(\\d+\\) vs single\\).*"
                                                     r"not like for like"):
                hostperf.expect_faster(fast, slow, factor=1.0, at="p99")


        def test_alike(hostperf):
            fast = hostperf(time.sleep, 0.0001, name="short")
            slow = hostperf(time.sleep, 0.0003, name="long")
            assert not fast.batched and not slow.batched
            with warnings.catch_warnings():
                warnings.simplefilter("error", HostperfWarning)
                hostperf.expect_faster(fast, slow, factor=1.0, at="p50")


        def test_smoke_decides_nothing_and_warns_nothing(hostperf):
            fast = hostperf(lambda: None, name="noop")
            with warnings.catch_warnings():
                warnings.simplefilter("error", HostperfWarning)
                assert fast.smoke and hostperf.expect_faster(fast, fast) is None
    """)
    result = fast_ini.runpytest_subprocess("--hostperf", "--hostperf-rt=off", "--hostperf-no-noise",
                                           "--hostperf-no-counters", "-k", "mixed or alike")
    result.assert_outcomes(passed=2, deselected=1)
    fast_ini.runpytest_subprocess("-k", "smoke").assert_outcomes(passed=1, deselected=2)
    # unhandled, it lands in pytest's warnings summary under its own name, pointing at the call
    fast_ini.makepyfile(test_summary="""
        import time

        def test_mixed(hostperf):
            fast = hostperf(lambda: None, name="noop")
            slow = hostperf(time.sleep, 0.0001, name="nap")
            hostperf.expect_faster(fast, slow)
    """)
    result = fast_ini.runpytest_subprocess("--hostperf", "--hostperf-rt=off", "--hostperf-no-noise",
                                           "--hostperf-no-counters", "test_summary.py")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*warnings summary*", "test_summary.py::test_mixed",
                                 "*test_summary.py:*: HostperfWarning: expect_faster(*timed differently*"])
