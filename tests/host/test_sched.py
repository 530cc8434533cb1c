"""SCHED_FIFO facts: policy names, the priority range and whether FIFO is permitted,
read from injected limits and files (nothing here changes the scheduling of the runner)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.host.sched import (
    DEFAULT_RT_PRIORITY,
    policy_name,
    read_rt_runtime,
    rt_available,
    short_policy,
    validate_priority,
)

linux_only = pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="needs Linux")


@pytest.mark.parametrize(("name", "short"), [
    ("SCHED_FIFO", "fifo"), ("SCHED_RR", "rr"), ("SCHED_OTHER", "other"),
    ("SCHED_BATCH", "batch"), ("SCHED_IDLE", "idle"),
    ("SCHED_DEADLINE", "SCHED_DEADLINE"), ("unknown", "unknown"), ("policy 9", "policy 9"),
])
def test_short_policy_names_and_unknown_names_unchanged(name: str, short: str) -> None:
    assert short_policy(name) == short


@linux_only
def test_policy_name_of_kernel_numbers() -> None:
    assert policy_name(os.SCHED_OTHER) == "SCHED_OTHER"
    assert policy_name(os.SCHED_FIFO) == "SCHED_FIFO"
    assert policy_name(os.SCHED_RR | 0x40000000) == "SCHED_RR"  # SCHED_RESET_ON_FORK dropped
    assert policy_name(6) == "SCHED_DEADLINE"
    assert policy_name(42) == "policy 42"
    assert short_policy(policy_name(os.SCHED_FIFO)) == "fifo"


@pytest.mark.parametrize("prio", [0, 99, -1, 100, True, "49", 49.0])
def test_priority_outside_1_98_is_invalid(prio: object) -> None:
    with pytest.raises(InvalidArgument, match=r"between 1 and 98 \(e\.g\. 49\)"):
        validate_priority(prio)  # type: ignore[arg-type]


def test_default_priority_is_valid() -> None:
    assert validate_priority(DEFAULT_RT_PRIORITY) == DEFAULT_RT_PRIORITY == 49
    assert validate_priority(1) == 1 and validate_priority(98) == 98


def test_rt_runtime_reads_the_number_or_none(tmp_path: Path) -> None:
    path = tmp_path / "sched_rt_runtime_us"
    assert read_rt_runtime(path) is None
    path.write_text("-1\n")
    assert read_rt_runtime(path) == -1
    path.write_text("garbage\n")
    assert read_rt_runtime(path) is None


@pytest.mark.parametrize(("rtprio", "capeff", "euid", "ok"), [
    ((0, 0), "0000000000000000", 0, False),        # root in a container without SYS_NICE
    ((0, 0), "0000000000800000", 1000, True),      # CAP_SYS_NICE via setcap
    ((99, 99), "0000000000000000", 1000, True),    # ulimit -r 99
    ((10, 10), "0000000000000000", 1000, False),   # limit below the priority asked for
    ((0, 0), None, 0, True),                       # capabilities unreadable: euid 0 decides
    ((0, 0), None, 1000, False),
])
@linux_only
def test_rt_available_from_injected_limits(tmp_path: Path, rtprio: tuple[int, int],
                                           capeff: str | None, euid: int, ok: bool) -> None:
    status = tmp_path / "status"
    if capeff is not None:
        status.write_text(f"Name:\tpython\nCapEff:\t{capeff}\n")
    runtime = tmp_path / "rt"
    runtime.write_text("950000\n")
    avail = rt_available(49, rt_runtime_path=runtime, status_path=status,
                         rtprio_limit=lambda: rtprio, euid=lambda: euid)
    assert avail.available is ok
    if not ok:
        assert "RLIMIT_RTPRIO" in avail.reason and "ulimit -r 99" in avail.fix
        assert "setcap cap_sys_nice+ep" in avail.fix and "--ulimit rtprio=99" in avail.fix


@linux_only
def test_rt_available_refuses_without_throttling(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    runtime.write_text("-1\n")
    avail = rt_available(rt_runtime_path=runtime, rtprio_limit=lambda: (99, 99))
    assert not avail.available and "-1" in avail.reason
    assert "sched_rt_runtime_us=950000" in avail.fix
