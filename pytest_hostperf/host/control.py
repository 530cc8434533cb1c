"""Host controls: pin, SCHED_FIFO, mlockall, warm -- each puts its state back afterwards.

Every control is a context manager that reads the prior state from the OS, changes it,
and restores it in ``finally`` (normal exit, exception, ``KeyboardInterrupt``, a test
timeout raised in the main thread). The change itself is made inside the ``try`` whose
``finally`` restores it: Python raises ``KeyboardInterrupt`` the moment a system call
returns, so a Ctrl-C that lands during ``mlockall`` (tens of ms in a big process) cannot
leave memory locked. A control the process is not *permitted* to apply
(EPERM, RLIMIT_RTPRIO 0 without CAP_SYS_NICE, seccomp, non-Linux) is never an error: it
yields an :class:`Applied` record with ``applied=False``, the reason and the exact fix,
and the measurement goes on without it. A *wrong* argument (priority 0, a CPU the process
may not use) is an :class:`~pytest_hostperf.errors.InvalidArgument`.

Importing this module is cheap: no numpy (``warm`` imports it when it touches buffers).
"""
from __future__ import annotations

import contextlib
import errno
import functools
import os
import platform
import re
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from pytest_hostperf.errors import HostControlError, InvalidArgument
from pytest_hostperf.host import probe

__all__ = [
    "Applied",
    "HostState",
    "RtAvailability",
    "WarmRecord",
    "allowed_cpus",
    "check_cpus",
    "controlled",
    "current_state",
    "default_cpus",
    "format_cpu_list",
    "locked_memory",
    "parse_cpu_list",
    "pinned",
    "realtime",
    "rt_available",
    "snapshot",
    "state_of",
    "warm",
]

RT_RUNTIME_PATH = Path("/proc/sys/kernel/sched_rt_runtime_us")
DEFAULT_RT_PRIORITY = 49
# Linux has no CPU numbers this high (NR_CPUS tops out at 8192); the bound keeps a typo
# such as "0-99999999" from building a hundred-million-element tuple.
_MAX_CPU = 65535
_CAP_SYS_NICE = 23
_CAP_IPC_LOCK = 14
_SCHED_RESET_ON_FORK = 0x40000000

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
FIX_MLOCK = (
    "ulimit -l unlimited (or 'USER - memlock unlimited' in /etc/security/limits.conf); "
    "in a container: docker run --ulimit memlock=-1 (or --cap-add IPC_LOCK)"
)
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


class RtAvailability(NamedTuple):
    """Whether SCHED_FIFO can be applied here, and if not, why and the fix."""

    available: bool
    reason: str | None
    fix: str | None


@dataclass(frozen=True, slots=True)
class WarmRecord:
    """What :func:`warm` did."""

    calls: int
    bytes_touched: int
    seconds: float


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


# --------------------------------------------------------------------------- CPU lists

_CPU_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$")


def _not_a_cpu_list(text: str, why: str = "") -> InvalidArgument:
    return InvalidArgument(f"{text!r} is not a CPU list (e.g. '3' or '2-3'){why}")


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """Parse a Linux CPU list (the ``taskset -c`` / cpuset syntax) into sorted CPU numbers.

    >>> parse_cpu_list("0-1,3")
    (0, 1, 3)

    Raises :class:`InvalidArgument` for bad syntax, empty input, negative numbers and
    reversed ranges such as ``3-2``.
    """
    if not isinstance(text, str):
        raise _not_a_cpu_list(str(text))
    if not text.strip():
        raise _not_a_cpu_list(text, ": it is empty")
    cpus: set[int] = set()
    for item in text.split(","):
        m = _CPU_ITEM.match(item.strip())
        if not m:
            raise _not_a_cpu_list(text)
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise _not_a_cpu_list(text, f": range {item.strip()!r} runs backwards")
        if hi > _MAX_CPU:
            raise _not_a_cpu_list(text, f": CPU {hi} is above {_MAX_CPU}")
        cpus.update(range(lo, hi + 1))
    return tuple(sorted(cpus))


def format_cpu_list(cpus: Sequence[int]) -> str:
    """Format CPU numbers as a compact CPU list, the inverse of :func:`parse_cpu_list`.

    >>> format_cpu_list([3, 0, 1, 5, 6, 7])
    '0-1,3,5-7'
    """
    items: list[str] = []
    ordered = sorted(set(cpus))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        items.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(items)


def allowed_cpus() -> tuple[int, ...]:
    """The CPUs the calling thread may run on, sorted (all CPUs where affinity is unknown)."""
    if hasattr(os, "sched_getaffinity"):
        return tuple(sorted(os.sched_getaffinity(0)))
    return tuple(range(os.cpu_count() or 1))


def default_cpus() -> tuple[int, ...]:
    """The CPUs to pin to by default: the last allowed one.

    Interrupts and housekeeping work land on CPU 0 by default, so the last CPU is the
    quietest one a user has not chosen deliberately.
    """
    return (allowed_cpus()[-1],)


def check_cpus(cpus: Sequence[int], allowed: Sequence[int] | None = None) -> tuple[int, ...]:
    """Check that every CPU in ``cpus`` is allowed; return them sorted.

    Raises :class:`InvalidArgument` naming the CPUs outside the allowed set and listing
    the allowed ones.
    """
    bad = [c for c in cpus if isinstance(c, bool) or not isinstance(c, int) or c < 0]
    if bad:
        raise InvalidArgument(f"{bad[0]!r} is not a CPU number (e.g. 3)")
    wanted = tuple(sorted(set(cpus)))
    allowed_set = set(allowed_cpus() if allowed is None else allowed)
    if not wanted:
        raise InvalidArgument(
            f"no CPU given; this process may use CPUs {format_cpu_list(sorted(allowed_set))}"
        )
    outside = [c for c in wanted if c not in allowed_set]
    if outside:
        noun = "CPU" if len(outside) == 1 else "CPUs"
        raise InvalidArgument(
            f"{noun} {format_cpu_list(outside)} not allowed for this process; "
            f"allowed: {format_cpu_list(sorted(allowed_set))}"
        )
    return wanted


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


def _read_rt_runtime(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def rt_available(
    priority: int = DEFAULT_RT_PRIORITY,
    *,
    rt_runtime_path: Path = RT_RUNTIME_PATH,
    status_path: Path = Path("/proc/self/status"),
    rtprio_limit: Callable[[], tuple[int, int]] | None = None,
    euid: Callable[[], int] | None = None,
) -> RtAvailability:
    """Tell, without changing anything, whether :func:`realtime` could apply ``priority``.

    Checks the platform, RT throttling (``sched_rt_runtime_us`` -1 is refused), the soft
    RLIMIT_RTPRIO, CAP_SYS_NICE in the effective capabilities (``CapEff`` of
    ``status_path``) and, where capabilities cannot be read, euid 0. It cannot see a
    cgroup without RT budget: only an attempt shows that. The process-state readers are
    injectable for tests.
    """
    if not (hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_FIFO")):
        return RtAvailability(False, "SCHED_FIFO needs Linux (os.sched_setscheduler is missing)",
                              None)
    if _read_rt_runtime(rt_runtime_path) == -1:
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
    caps = probe.effective_capabilities(status_path)
    if caps is not None:
        if caps >> _CAP_SYS_NICE & 1:
            return RtAvailability(True, None, None)
        has_nice = "the process lacks CAP_SYS_NICE"
    else:
        if (euid or os.geteuid)() == 0:
            return RtAvailability(True, None, None)
        has_nice = "the process is not root (capabilities unreadable)"
    return RtAvailability(
        False, f"RLIMIT_RTPRIO is {soft} (below priority {priority}) and {has_nice}", FIX_RT
    )


def _validate_priority(priority: int) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 98:
        # 99 is left to the kernel's own threads (migration, watchdog): a benchmark at 99
        # could starve them.
        raise InvalidArgument(
            f"{priority!r} is not a SCHED_FIFO priority between 1 and 98 (e.g. 49)"
        )
    return priority


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
    _validate_priority(priority)
    detail = f"SCHED_FIFO {priority}"
    if not (hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_FIFO")):
        yield Applied("rt", False, detail,
                      reason="SCHED_FIFO needs Linux (os.sched_setscheduler is missing)", fix=None)
        return
    runtime = _read_rt_runtime(rt_runtime_path)
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
                    exc.errno, f"could not restore scheduling policy {_policy_name(prev_policy)} "
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


def _mcl_flags() -> tuple[int, int]:
    # MCL_* differ by architecture (asm-generic vs powerpc/sparc/alpha headers).
    machine = platform.machine().lower()
    if machine.startswith(("ppc", "powerpc", "sparc")):
        return 0x2000, 0x4000
    if machine.startswith("alpha"):
        return 8192, 16384
    return 1, 2


@functools.lru_cache(maxsize=1)
def _libc() -> Any | None:
    # ctypes.util pulls in subprocess; load it only when memory is actually locked.
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def _vm_locked_kib(status_path: Path = Path("/proc/self/status")) -> int | None:
    return probe.status_field_kib(status_path, "VmLck")


@contextlib.contextmanager
def locked_memory() -> Iterator[Applied]:
    """Lock current and future pages in RAM (``mlockall``), then unlock.

    Unlocks afterwards only if nothing was locked before (``VmLck`` 0): memory a caller
    locked on its own stays locked. ``applied=False`` with the reason and fix where the
    limit is too low (ENOMEM), the call is not permitted (EPERM) or there is no mlockall.
    """
    import ctypes

    libc = _libc()
    if libc is None or not hasattr(libc, "mlockall"):
        yield Applied("mlock", False, "mlockall",
                      reason="mlockall is not available (no libc with mlockall)", fix=None)
        return
    current, future = _mcl_flags()
    before = _vm_locked_kib()
    was_locked = bool(before)
    detail = "mlockall" if not was_locked else "mlockall (memory was already locked; left locked)"
    err = 0
    try:
        # mlockall faults in every mapped page, which takes tens of ms in a big process: a
        # Ctrl-C in that time raises KeyboardInterrupt the moment the call returns. Inside
        # the try, the finally still unlocks (measured: outside it, 1 GiB stayed locked).
        if libc.mlockall(ctypes.c_int(current | future)) != 0:
            err = ctypes.get_errno()
        else:
            yield Applied("mlock", True, detail)
    finally:
        # Also after a failed mlockall: it can leave MCL_FUTURE behind on some kernels, and
        # later allocations would then be charged against the memlock limit.
        if not was_locked and libc.munlockall() != 0 and not err:
            unlock_err = ctypes.get_errno()
            raise HostControlError(unlock_err, f"munlockall failed: {os.strerror(unlock_err)}")
    if err:
        yield Applied("mlock", False, "mlockall", reason=_mlock_reason(err), fix=FIX_MLOCK)


def _mlock_reason(err: int) -> str:
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    limit = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft // 1024} KiB"
    if err in (errno.ENOMEM, errno.EAGAIN):
        return (f"mlockall failed ({errno.errorcode.get(err, err)}): RLIMIT_MEMLOCK is {limit}, "
                "less than this process maps, and it lacks CAP_IPC_LOCK")
    if err == errno.EPERM:
        return f"mlockall not permitted (EPERM; RLIMIT_MEMLOCK {limit}, no CAP_IPC_LOCK)"
    return f"mlockall failed: {os.strerror(err)} (RLIMIT_MEMLOCK {limit})"


# --------------------------------------------------------------------------- warm


def warm(
    fn: Callable[..., object] | None = None,
    *args: object,
    calls: int = 100,
    max_seconds: float = 0.5,
    buffers: Sequence[object] = (),
    clock: Callable[[], float] = time.perf_counter,
) -> WarmRecord:
    """Call ``fn(*args)`` up to ``calls`` times and for at most about ``max_seconds``, then
    read one byte of every 64-byte cache line of each buffer.

    Buffers are anything with the buffer protocol (numpy arrays, bytes, bytearray,
    memoryview, mmap), contiguous or strided, read-only or not; they are only read.
    At least one call is made when ``fn`` is given and ``calls >= 1``.

    >>> warm(len, b"abc", calls=3).calls
    3
    """
    if calls < 0 or max_seconds < 0:
        raise InvalidArgument(f"warm: calls ({calls}) and max_seconds ({max_seconds}) "
                              "must not be negative")
    t0 = clock()
    made = 0
    if fn is not None:
        deadline = t0 + max_seconds
        while made < calls:
            fn(*args)
            made += 1
            if clock() >= deadline:
                break
    touched = 0
    for buf in buffers:
        touched += _touch(buf)
    return WarmRecord(calls=made, bytes_touched=touched, seconds=clock() - t0)


_LINE = 64


def _touch(buf: object) -> int:
    """Read one byte per cache line of ``buf``'s memory; return the bytes covered."""
    import ctypes

    import numpy as np

    mv = buf if isinstance(buf, memoryview) else memoryview(buf)  # type: ignore[arg-type]
    if mv.nbytes == 0:
        return 0
    if mv.c_contiguous:
        flat = np.frombuffer(mv.cast("B") if mv.ndim != 1 or mv.format != "B" else mv,
                             dtype=np.uint8)
        return _touch_flat(np, flat)
    # Strided: touch the whole span between the lowest and highest byte, which lies
    # inside the exporter's allocation. Copying instead would evict what we warm.
    if isinstance(buf, np.ndarray):
        arr = buf
    else:
        arr = None
        if len(mv.format.lstrip("@=<>!")) == 1:  # a plain scalar format numpy maps exactly
            with contextlib.suppress(TypeError, ValueError):
                arr = np.asarray(mv)
        if arr is None or arr.itemsize != mv.itemsize:
            # numpy cannot describe this exporter's layout, so its byte bounds cannot be
            # trusted: read it by copying instead (rare: strided ctypes structures).
            mv.tobytes()
            return mv.nbytes
    try:
        from numpy.lib.array_utils import byte_bounds  # numpy >= 2.0
    except ImportError:  # pragma: no cover - numpy 1.x
        byte_bounds = np.byte_bounds  # type: ignore[attr-defined]
    lo, hi = byte_bounds(arr)
    span = (ctypes.c_uint8 * (hi - lo)).from_address(lo)
    _touch_flat(np, np.frombuffer(span, dtype=np.uint8))
    return hi - lo


def _touch_flat(np: Any, flat: Any) -> int:
    # One byte per 64-byte step plus the last byte: a start that is not line-aligned
    # would otherwise skip the final line.
    int(flat[::_LINE].sum()) + int(flat[-1])
    return int(flat.size)


# --------------------------------------------------------------------------- read back

_POLICY_NAMES = {
    getattr(os, name): name
    for name in ("SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_IDLE")
    if hasattr(os, name)
}
_POLICY_NAMES.setdefault(6, "SCHED_DEADLINE")


def _policy_name(policy: int) -> str:
    base = policy & ~_SCHED_RESET_ON_FORK
    return _POLICY_NAMES.get(base, f"policy {base}")


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
        policy = _policy_name(os.sched_getscheduler(pid))
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
    mlock: bool = True,
    *,
    pin: bool = True,
    rt_runtime_path: Path = RT_RUNTIME_PATH,
) -> Iterator[list[Applied]]:
    """Apply pin, then mlock, then SCHED_FIFO; restore in reverse order.

    ``cpus=None`` pins to :func:`default_cpus`; ``pin=False`` skips pinning, ``rt=None``
    skips SCHED_FIFO, ``mlock=False`` skips mlockall. Yields the :class:`Applied`
    records of the controls attempted, in the order applied.
    """
    if rt is not None:
        _validate_priority(rt)  # before anything changes, so a bad value changes nothing
    records: list[Applied] = []
    with contextlib.ExitStack() as stack:
        # Pin first so the page faults of mlockall happen on the measured CPU (its NUMA
        # node gets the memory); FIFO last so the least time is spent at RT priority.
        if pin:
            records.append(stack.enter_context(pinned(cpus)))
        if mlock:
            records.append(stack.enter_context(locked_memory()))
        if rt is not None:
            records.append(stack.enter_context(realtime(rt, rt_runtime_path=rt_runtime_path)))
        yield records


def _strerror(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0)
    text = exc.strerror or str(exc)
    return f"{name}: {text}" if name else text
