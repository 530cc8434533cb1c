"""Host controls: pin, SCHED_FIFO, mlockall -- each puts its state back afterwards.

Every control is a context manager that reads the prior state from the OS, changes it,
and restores it in ``finally`` (normal exit, exception, ``KeyboardInterrupt``, a test
timeout raised in the main thread). The change itself is made inside the ``try`` whose
``finally`` restores it: Python raises ``KeyboardInterrupt`` the moment a system call
returns, so a Ctrl-C that lands during ``mlockall`` (tens of ms in a big process) cannot
leave memory locked. A control the process is not *permitted* to apply
(EPERM, RLIMIT_RTPRIO 0 without CAP_SYS_NICE, seccomp, non-Linux) is never an error: it
yields an :class:`Applied` record with ``applied=False``, the reason and the exact fix,
and the measurement goes on without it. A *wrong* argument (priority 0, a CPU the process
may not use) is an :class:`~pytest_hostperf.errors.InvalidArgument`. :func:`state_of`
reads the resulting state back from the OS.

Neighbours: CPU lists are :mod:`.cpus`, SCHED_FIFO facts (default priority, policy names,
:func:`~.sched.rt_available`) are :mod:`.sched`, warm-up is :mod:`.warm`, libc is
:mod:`.libc`. Their public names are importable from here too, as before the split. The
bound above which the default ``auto`` mode does not lock memory is :mod:`.mlock_guard`.

Importing this module is cheap: no numpy, no ctypes until memory is locked.
"""
from __future__ import annotations

import contextlib
import errno
import os
import platform
import resource
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

from pytest_hostperf.errors import HostControlError, InvalidArgument
from pytest_hostperf.host import libc, mlock_guard, procfs
from pytest_hostperf.host.cpus import (
    allowed_cpus,
    check_cpus,
    default_cpus,
    format_cpu_list,
    parse_cpu_list,
)
from pytest_hostperf.host.sched import (
    DEFAULT_RT_PRIORITY,
    FIX_RT,
    FIX_RT_CGROUP,
    FIX_RT_THROTTLE,
    RT_RUNTIME_PATH,
    RtAvailability,
    policy_name,
    read_rt_runtime,
    rt_available,
    validate_priority,
)
from pytest_hostperf.host.warm import WarmRecord, warm

# With its own names, those of .cpus, .sched and .warm it uses (the package imports them from there).
__all__ = [
    "DEFAULT_RT_PRIORITY", "FIX_MLOCK", "FIX_PIN", "FIX_RT", "FIX_RT_CGROUP", "FIX_RT_THROTTLE",
    "MLOCK_GUARDED", "RT_RUNTIME_PATH", "Applied", "HostState", "MlockMode", "RtAvailability", "WarmRecord",
    "allowed_cpus", "check_cpus", "controlled", "current_state", "default_cpus", "format_cpu_list",
    "locked_memory", "note_key", "parse_cpu_list", "pinned", "realtime", "rt_available", "snapshot",
    "state_of", "warm",
]

FIX_MLOCK = mlock_guard.FIX_MLOCK
#: ``mlock=`` of :func:`controlled`: True locks, False does not, "auto" locks where the guard
#: (:mod:`.mlock_guard`) finds it cannot hurt.
MlockMode: TypeAlias = bool | Literal["auto"]
FIX_PIN = (
    "run where sched_setaffinity is allowed (Linux, no seccomp filter blocking it) and give "
    "the process the CPUs it should use: taskset -c LIST, a cgroup cpuset "
    "(cpuset.cpus), or docker run --cpuset-cpus=LIST"
)


@dataclass(frozen=True, slots=True)
class Applied:
    """What one control did: applied or not, and if not, why and how to fix it."""
    control: str  # "pin" | "rt" | "mlock"
    applied: bool
    detail: str  # e.g. "cpus 1", "SCHED_FIFO 49", "mlockall"
    reason: str | None = None
    fix: str | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form for reports and baselines."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class HostState:
    """Scheduling state read back from the OS (not copied from the options)."""
    pid: int
    affinity: tuple[int, ...]
    policy: str  # "SCHED_OTHER", "SCHED_FIFO", ... or "unknown"
    priority: int | None
    nice: int | None
    memory_locked: bool | None  # VmLck > 0; None where /proc cannot tell
    vm_locked_kib: int | None = field(default=None)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form for reports and baselines."""
        d = asdict(self)
        d["affinity"] = list(self.affinity)
        return d


# --------------------------------------------------------------------------- pinning


@contextlib.contextmanager
def pinned(cpus: Sequence[int] | None = None) -> Iterator[Applied]:
    """Pin the calling thread to ``cpus`` (default: :func:`default_cpus`), then restore.

    Yields an :class:`Applied` record; ``applied=False`` (with reason and fix) where the
    platform or a seccomp filter does not allow pinning. A CPU outside the allowed set is
    an :class:`InvalidArgument`.
    """
    if not (hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")):
        yield Applied("pin", False, "cpus -",
                      reason=f"CPU affinity is not available on {platform.system() or 'this OS'}"
                             " (os.sched_setaffinity is missing)",
                      fix=FIX_PIN)
        return
    previous = os.sched_getaffinity(0)
    target = check_cpus(default_cpus() if cpus is None else cpus, sorted(previous))
    detail = f"cpus {format_cpu_list(target)}"
    # On Linux pid 0 means the calling *thread*: only it is pinned, which is what a
    # measurement wants (threads it starts inside inherit the mask and keep it).
    failure: OSError | None = None
    try:
        # The change sits inside the try: a Ctrl-C that lands as the call returns raises
        # there, and the finally must still put the mask back.
        try:
            os.sched_setaffinity(0, target)
        except OSError as exc:  # EPERM from seccomp / a container, ENOSYS, EINVAL from a cpuset
            failure = exc
        if failure is None:
            yield Applied("pin", True, detail)
    finally:
        if failure is None:
            try:
                os.sched_setaffinity(0, previous)
            except OSError as exc:
                raise HostControlError(
                    exc.errno, f"could not restore CPU affinity {format_cpu_list(sorted(previous))}: "
                               f"{_strerror(exc)}"
                ) from exc
    if failure is not None:
        # Yielded outside the except block so an error in the with-body is not
        # reported as raised "during handling" of this one.
        yield Applied("pin", False, detail,
                      reason=f"sched_setaffinity({format_cpu_list(target)}) failed: "
                             f"{_strerror(failure)}",
                      fix=FIX_PIN)


# --------------------------------------------------------------------------- SCHED_FIFO


@contextlib.contextmanager
def realtime(
    priority: int = DEFAULT_RT_PRIORITY,
    *,
    rt_runtime_path: Path = RT_RUNTIME_PATH,
) -> Iterator[Applied]:
    """Run the calling thread SCHED_FIFO at ``priority``, then restore policy, priority, nice.

    Refused (``applied=False`` with the reason and fix, nothing changed) where RT
    throttling is off (``rt_runtime_path`` reads -1), where SCHED_FIFO is not permitted,
    or on non-Linux. ``priority`` outside 1..98 is an :class:`InvalidArgument`.

    Keep the code inside short or sleeping: on a saturated core a FIFO task is stopped
    only by RT throttling (50 ms each second with the default 950000 us runtime).
    """
    validate_priority(priority)
    detail = f"SCHED_FIFO {priority}"
    if not (hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_FIFO")):
        yield Applied("rt", False, detail,
                      reason="SCHED_FIFO needs Linux (os.sched_setscheduler is missing)", fix=None)
        return
    runtime = read_rt_runtime(rt_runtime_path)
    if runtime == -1:
        yield Applied("rt", False, detail,
                      reason=f"{rt_runtime_path} is -1 (RT throttling off): a spinning SCHED_FIFO "
                             "task could hang its core, so hostperf refuses SCHED_FIFO",
                      fix=FIX_RT_THROTTLE)
        return
    # Like sched_setaffinity, pid 0 here is the calling thread only.
    prev_policy = os.sched_getscheduler(0)  # may carry SCHED_RESET_ON_FORK; restored as is
    prev_priority = os.sched_getparam(0).sched_priority
    prev_nice = _get_nice()
    failure: OSError | None = None
    try:
        try:  # inside the outer try, so an interrupt as it returns still restores
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        except OSError as exc:
            failure = exc
        if failure is None:
            yield Applied("rt", True, detail if runtime is not None
                          else f"{detail} (RT throttling unknown: {rt_runtime_path} unreadable)")
    finally:
        if failure is None:
            try:
                # SCHED_OTHER/BATCH/IDLE take priority 0; the prior FIFO/RR priority otherwise.
                os.sched_setscheduler(0, prev_policy, os.sched_param(prev_priority))
            except OSError as exc:
                raise HostControlError(
                    exc.errno, f"could not restore scheduling policy {policy_name(prev_policy)} "
                               f"{prev_priority}: {_strerror(exc)}"
                ) from exc
            # Linux keeps the nice value across a trip through SCHED_FIFO; set it only if
            # something in the body changed it, because lowering nice needs privilege.
            if prev_nice is not None and _get_nice() != prev_nice:
                with contextlib.suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, 0, prev_nice)
    if failure is not None:
        yield _rt_refusal(detail, priority, failure)


def _rt_refusal(detail: str, priority: int, exc: OSError) -> Applied:
    if exc.errno == errno.EPERM:
        avail = rt_available(priority)
        if not avail.available and avail.reason:
            return Applied("rt", False, detail, reason=avail.reason, fix=avail.fix)
        # Permitted on paper, refused anyway: a cgroup with no RT budget (cgroup v1
        # cpu.rt_runtime_us 0, the Docker default) or a seccomp filter.
        return Applied("rt", False, detail,
                       reason="sched_setscheduler(SCHED_FIFO) failed with EPERM although "
                              "RLIMIT_RTPRIO/CAP_SYS_NICE allow it: the cgroup probably has no "
                              "RT budget, or a seccomp filter blocks it",
                       fix=FIX_RT_CGROUP)
    return Applied("rt", False, detail,
                   reason=f"sched_setscheduler(SCHED_FIFO, {priority}) failed: {_strerror(exc)}",
                   fix=FIX_RT)


def _get_nice() -> int | None:
    try:
        return os.getpriority(os.PRIO_PROCESS, 0)
    except (OSError, AttributeError):
        return None


# --------------------------------------------------------------------------- mlockall


def _vm_locked_kib(status_path: Path = Path("/proc/self/status")) -> int | None:
    return procfs.status_field_kib(status_path, "VmLck")


#: ``detail`` of the record of a lock the guard skipped (:func:`note_key` notes it once a run).
MLOCK_GUARDED = "mlockall (auto)"


@contextlib.contextmanager
def locked_memory(*, guard: bool = False) -> Iterator[Applied]:
    """Lock current and future pages in RAM (``mlockall``), then unlock.

    Unlocks afterwards only if nothing was locked before (``VmLck`` 0): memory a caller
    locked on its own stays locked. ``applied=False`` with the reason and fix where the
    limit is too low (ENOMEM), the call is not permitted (EPERM) or there is no mlockall.
    ``guard=True`` (the ``auto`` mode) first asks :func:`.mlock_guard.check` and does not
    lock where what would be locked exceeds its bound (``applied=False``, the figures in the
    reason, detail :data:`MLOCK_GUARDED`).
    """
    if not libc.has("mlockall"):
        yield Applied("mlock", False, "mlockall",
                      reason="mlockall is not available (no libc with mlockall)", fix=None)
        return
    if guard:
        decision = mlock_guard.check()
        if not decision.lock:
            yield Applied("mlock", False, MLOCK_GUARDED, reason=decision.reason, fix=decision.fix)
            return
    current, future = libc.mcl_flags()
    before = _vm_locked_kib()
    was_locked = bool(before)
    detail = "mlockall" if not was_locked else "mlockall (memory was already locked; left locked)"
    err = 0
    try:
        # mlockall faults in every mapped page, which takes tens of ms in a big process: a
        # Ctrl-C in that time raises KeyboardInterrupt the moment the call returns. Inside
        # the try, the finally still unlocks (measured: outside it, 1 GiB stayed locked).
        err = libc.mlockall(current | future)
        if not err:
            yield Applied("mlock", True, detail)
    finally:
        # Also after a failed mlockall: it can leave MCL_FUTURE behind on some kernels, and
        # later allocations would then be charged against the memlock limit.
        if not was_locked:
            unlock_err = libc.munlockall()
            if unlock_err and not err:
                raise HostControlError(unlock_err, f"munlockall failed: {os.strerror(unlock_err)}")
    if err:
        yield Applied("mlock", False, "mlockall", reason=_mlock_reason(err), fix=FIX_MLOCK)


def note_key(applied: Applied) -> tuple[str, str | None]:
    """The key a run notes a control that was not applied under, to print it once: its
    control and reason; for a lock the guard skipped, its control and detail (the figures in
    its reason change from one measurement to the next, and once a run is enough)."""
    if applied.control == "mlock" and applied.detail == MLOCK_GUARDED:
        return applied.control, applied.detail
    return applied.control, applied.reason


def _mlock_reason(err: int) -> str:
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    limit = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft // 1024} KiB"
    if err in (errno.ENOMEM, errno.EAGAIN):
        return (f"mlockall failed ({errno.errorcode.get(err, err)}): RLIMIT_MEMLOCK is {limit}, "
                "less than this process maps, and it lacks CAP_IPC_LOCK")
    if err == errno.EPERM:
        return f"mlockall not permitted (EPERM; RLIMIT_MEMLOCK {limit}, no CAP_IPC_LOCK)"
    return f"mlockall failed: {os.strerror(err)} (RLIMIT_MEMLOCK {limit})"


# --------------------------------------------------------------------------- read back


def state_of(pid: int, *, proc: Path = Path("/proc")) -> HostState:
    """Read the scheduling state of ``pid`` (0: the calling thread) from the OS.

    Affinity, policy and priority are those of the thread ``pid`` (for another process,
    its main thread); memory locking comes from ``VmLck`` in ``/proc/<pid>/status``.
    """
    affinity: tuple[int, ...] = ()
    policy, priority = "unknown", None
    with contextlib.suppress(OSError, AttributeError):
        affinity = tuple(sorted(os.sched_getaffinity(pid)))
    with contextlib.suppress(OSError, AttributeError):
        policy = policy_name(os.sched_getscheduler(pid))
        priority = os.sched_getparam(pid).sched_priority
    nice = None
    with contextlib.suppress(OSError, AttributeError):
        nice = os.getpriority(os.PRIO_PROCESS, pid)
    locked_kib = _vm_locked_kib(proc / ("self" if pid == 0 else str(pid)) / "status")
    return HostState(
        pid=pid or os.getpid(),
        affinity=affinity,
        policy=policy,
        priority=priority,
        nice=nice,
        memory_locked=None if locked_kib is None else locked_kib > 0,
        vm_locked_kib=locked_kib,
    )


def snapshot() -> HostState:
    """The calling thread's state, read back from the OS during a measurement."""
    return state_of(0)


current_state = snapshot


# --------------------------------------------------------------------------- all together


@contextlib.contextmanager
def controlled(
    cpus: Sequence[int] | None = None,
    rt: int | None = DEFAULT_RT_PRIORITY,
    mlock: MlockMode = "auto",
    *,
    pin: bool = True,
    rt_runtime_path: Path = RT_RUNTIME_PATH,
) -> Iterator[list[Applied]]:
    """Apply pin, then mlock, then SCHED_FIFO; restore in reverse order.

    ``cpus=None`` pins to :func:`default_cpus`; ``pin=False`` skips pinning, ``rt=None``
    skips SCHED_FIFO, ``mlock=False`` skips mlockall, ``mlock=True`` locks regardless of
    size and ``mlock="auto"`` locks where :mod:`.mlock_guard` finds it cannot hurt. Yields
    the :class:`Applied` records of the controls attempted, in the order applied.
    """
    if mlock not in (True, False, "auto"):
        raise InvalidArgument(f"controlled(mlock=...): {mlock!r} is not True, False or 'auto'")
    if rt is not None:
        validate_priority(rt)  # before anything changes, so a bad value changes nothing
    records: list[Applied] = []
    with contextlib.ExitStack() as stack:
        # Pin first so the page faults of mlockall happen on the measured CPU (its NUMA
        # node gets the memory); FIFO last so the least time is spent at RT priority.
        if pin:
            records.append(stack.enter_context(pinned(cpus)))
        if mlock:
            records.append(stack.enter_context(locked_memory(guard=mlock == "auto")))
        if rt is not None:
            records.append(stack.enter_context(realtime(rt, rt_runtime_path=rt_runtime_path)))
        yield records


def _strerror(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0)
    text = exc.strerror or str(exc)
    return f"{name}: {text}" if name else text
