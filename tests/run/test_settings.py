"""The one place a test's marker and the run's options become host controls."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pytest_hostperf.host.control import Applied
from pytest_hostperf.host.sched import DEFAULT_RT_PRIORITY
from pytest_hostperf.run.settings import Controls, MarkerSettings, RunSettings, resolve_controls

RUN = RunSettings(full=True, save=False, samples=100, max_time=1.0, tolerance=10.0, strict=False, cpus=(1,), rt=49,
                  mlock=True, counters=True, noise=True, keep_runs=5, baselines_dir=Path("baselines"), host=None,
                  json_path=None, markdown_path=None, plot_dir=None)


@pytest.mark.parametrize("run_rt, marker_rt, expected", [
    (49, None, 49), (49, 10, 10), (49, "off", None), (None, None, None), (None, 10, 10),
    (49, "required", 49), (None, "required", DEFAULT_RT_PRIORITY), (20, "required", 20),
])
def test_rt_marker_over_option_and_off_means_off(run_rt: int | None, marker_rt: object, expected: int | None) -> None:
    c = resolve_controls(replace(RUN, rt=run_rt), MarkerSettings(rt=marker_rt))  # type: ignore[arg-type]
    assert c.rt == expected and c.rt_required is (marker_rt == "required")


def test_cpus_and_mlock_marker_over_option() -> None:
    assert resolve_controls(RUN, MarkerSettings()) == Controls(cpus=(1,), rt=49, mlock=True, rt_required=False)
    c = resolve_controls(RUN, MarkerSettings(cpus=(0,), mlock=False))
    assert (c.cpus, c.mlock) == ((0,), False)


def test_required_rt_skips_only_when_not_applied() -> None:
    required = resolve_controls(RUN, MarkerSettings(rt="required"))
    required.skip_unless_rt(None)  # applied: nothing missing
    required.skip_unless_rt(Applied("rt", True, "SCHED_FIFO 49"))
    with pytest.raises(pytest.skip.Exception, match="rt='required' but SCHED_FIFO was not applied: EPERM; fix: ulimit"):
        required.skip_unless_rt(Applied("rt", False, "SCHED_FIFO 49", reason="EPERM", fix="ulimit -r 99"))
    resolve_controls(RUN, MarkerSettings()).skip_unless_rt(Applied("rt", False, "x", reason="EPERM"))  # not required
