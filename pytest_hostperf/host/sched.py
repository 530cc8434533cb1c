"""Scheduling facts, read-only: the default SCHED_FIFO priority, the names of the policies
(kernel number -> ``SCHED_FIFO`` -> ``fifo``), the priority range hostperf accepts, and
whether this process may go SCHED_FIFO here (:func:`rt_available`), with the fix if not.

Changing the policy is :func:`pytest_hostperf.host.control.realtime`'s job; this module
only knows and reads. Importing it is cheap (os, resource, pathlib; no numpy, no ctypes):
the option parser uses :data:`DEFAULT_RT_PRIORITY`.
"""
from __future__ import annotations

import os
import resource
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.host import procfs

__all__ = [
    "DEFAULT_RT_PRIORITY",
    "FIX_RT",
    "FIX_RT_CGROUP",
    "FIX_RT_THROTTLE",
    "RT_RUNTIME_PATH",
    "RtAvailability",
    "policy_name",
    "read_rt_runtime",
    "rt_available",
    "short_policy",
    "validate_priority",
]

#: The SCHED_FIFO priority used when none is given: mid-range, below the kernel's own
#: threaded interrupt handlers (50) so a spinning benchmark does not delay them.
DEFAULT_RT_PRIORITY = 49
RT_RUNTIME_PATH = Path("/proc/sys/kernel/sched_rt_runtime_us")
_SCHED_RESET_ON_FORK = 0x40000000

#: Every policy hostperf names: kernel name -> short name in report cells (``cpu1 fifo49``).
_SHORT_POLICY = {"SCHED_OTHER": "other", "SCHED_FIFO": "fifo", "SCHED_RR": "rr",
                 "SCHED_BATCH": "batch", "SCHED_IDLE": "idle"}
#: Kernel policy number -> kernel name, from the numbers this platform's os module knows.
_POLICY_NAMES = {getattr(os, name): name for name in _SHORT_POLICY if hasattr(os, name)}
_POLICY_NAMES.setdefault(6, "SCHED_DEADLINE")  # os has no SCHED_DEADLINE constant

FIX_RT = (
    "ulimit -r 99 (or 'USER - rtprio 99' in /etc/security/limits.conf); "
    "or setcap cap_sys_nice+ep $(readlink -f $(which python3)); "
    "in a container: docker run --ulimit rtprio=99 --cap-add SYS_NICE"
)
FIX_RT_CGROUP = (
    "give the cgroup an RT budget (cgroup v1: write 950000 to cpu.rt_runtime_us of the "
    "process's cgroup; docker run --cpu-rt-runtime=950000 --ulimit rtprio=99 --cap-add SYS_NICE)"
)
FIX_RT_THROTTLE = "sysctl -w kernel.sched_rt_runtime_us=950000 (the kernel default)"


def policy_name(policy: int) -> str:
    """The kernel name of a policy number as ``sched_getscheduler`` returns it.

    >>> policy_name(0)
    'SCHED_OTHER'
    >>> policy_name(0x40000000 | 1)  # SCHED_RESET_ON_FORK is not part of the name
    'SCHED_FIFO'
    """
    base = policy & ~_SCHED_RESET_ON_FORK
    return _POLICY_NAMES.get(base, f"policy {base}")


def short_policy(name: str) -> str:
    """The short name of a policy in report cells; an unknown name comes back unchanged.

    >>> short_policy("SCHED_FIFO"), short_policy("SCHED_DEADLINE")
    ('fifo', 'SCHED_DEADLINE')
    """
    return _SHORT_POLICY.get(name, name)


class RtAvailability(NamedTuple):
    """Whether SCHED_FIFO can be applied here, and if not, why and the fix."""

    available: bool
    reason: str | None
    fix: str | None


def validate_priority(priority: int) -> int:
    """``priority`` if it is a SCHED_FIFO priority hostperf uses (1..98), else
    :class:`InvalidArgument` with an example."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 98:
        # 99 is left to the kernel's own threads (migration, watchdog): a benchmark at 99
        # could starve them.
        raise InvalidArgument(
            f"{priority!r} is not a SCHED_FIFO priority between 1 and 98 (e.g. 49)"
        )
    return priority


def read_rt_runtime(path: Path = RT_RUNTIME_PATH) -> int | None:
    """``kernel.sched_rt_runtime_us`` (-1: RT throttling off), or None when unreadable."""
    text = procfs.read_text(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def rt_available(
    priority: int = DEFAULT_RT_PRIORITY,
    *,
    rt_runtime_path: Path = RT_RUNTIME_PATH,
    status_path: Path = Path("/proc/self/status"),
    rtprio_limit: Callable[[], tuple[int, int]] | None = None,
    euid: Callable[[], int] | None = None,
) -> RtAvailability:
    """Tell, without changing anything, whether SCHED_FIFO at ``priority`` could be applied.

    Checks the platform, RT throttling (``sched_rt_runtime_us`` -1 is refused), the soft
    RLIMIT_RTPRIO, CAP_SYS_NICE in the effective capabilities (``CapEff`` of
    ``status_path``) and, where capabilities cannot be read, euid 0. It cannot see a
    cgroup without RT budget: only an attempt shows that. The process-state readers are
    injectable for tests.
    """
    if not (hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_FIFO")):
        return RtAvailability(False, "SCHED_FIFO needs Linux (os.sched_setscheduler is missing)",
                              None)
    if read_rt_runtime(rt_runtime_path) == -1:
        return RtAvailability(
            False,
            f"{rt_runtime_path} is -1 (RT throttling off): a spinning SCHED_FIFO task could "
            "hang its core, so hostperf does not use SCHED_FIFO",
            FIX_RT_THROTTLE,
        )
    get_limit = rtprio_limit or (lambda: resource.getrlimit(resource.RLIMIT_RTPRIO))
    soft, _hard = get_limit()
    if soft == resource.RLIM_INFINITY or soft >= priority:
        return RtAvailability(True, None, None)
    caps = procfs.effective_capabilities(status_path)
    if caps is not None:
        if caps >> procfs.CAP_SYS_NICE & 1:
            return RtAvailability(True, None, None)
        has_nice = "the process lacks CAP_SYS_NICE"
    else:
        if (euid or os.geteuid)() == 0:
            return RtAvailability(True, None, None)
        has_nice = "the process is not root (capabilities unreadable)"
    return RtAvailability(
        False, f"RLIMIT_RTPRIO is {soft} (below priority {priority}) and {has_nice}", FIX_RT
    )
