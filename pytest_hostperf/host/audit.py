"""The latency-tuning audit, read-only: one :class:`Check` per tuning item (swappiness,
memlock, /dev/shm, huge pages, THP, governor, isolation, SMT, NUMA, RT throttling, rtprio,
load, clock; and where a GPU is visible its NUMA node, persistence mode, clocks, PCIe link and
memlock: ``gpu.py``), each with its reading, its verdict and, when it warns, the exact fix;
:func:`audit` runs them all, and the header line, the table and the JSON render them.

Every /proc and /sys read goes through ``root`` (default ``/``) so tests hand in fake
trees; process state that is not a file (rlimits, statvfs, euid) comes through injectable
callables. A file that is missing or unreadable gives the verdict ``unknown`` -- never an
exception and never an invented value. Importing this module is cheap: psutil is imported
only when reading the real host.
"""
from __future__ import annotations

import os
import re
import resource
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from pytest_hostperf.host.procfs import (
    CAP_IPC_LOCK,
    CAP_SYS_NICE,
    ROOT,
    effective_capabilities,
    governors,
    is_real,
    logical_cpus,
    numa_nodes,
    read,
    read_cpu_freq,
    read_int,
    read_loadavg,
    selected,
)
from pytest_hostperf.units import format_bytes

__all__ = [
    "Check",
    "Verdict",
    "audit",
    "audit_summary",
    "audit_to_json",
    "check_cpu_freq",
    "check_dev_shm",
    "check_governor",
    "check_hugepages",
    "check_isolation",
    "check_load",
    "check_memlock",
    "check_numa",
    "check_rt_throttling",
    "check_rtprio",
    "check_smt",
    "check_swappiness",
    "check_thp",
    "render_audit",
]

Verdict = Literal["ok", "warn", "unknown"]
Limits = Callable[[int], "tuple[int, int]"]

_MiB = 1024 * 1024
_GiB = 1024 * _MiB
SWAPPINESS_MAX = 10
MEMLOCK_MIN = 64 * _MiB
SHM_MIN = 1 * _GiB


@dataclass(frozen=True, slots=True)
class Check:
    """One audit item: what was read, the verdict and, when it warns, the exact fix."""

    name: str
    reading: str
    verdict: Verdict
    advice: str | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


# --------------------------------------------------------------------------- checks


def _missing(name: str, what: str) -> Check:
    return Check(name, f"unreadable ({what} missing)", "unknown", None)


def check_swappiness(root: Path = ROOT) -> Check:
    """vm.swappiness above 10 lets the kernel page out anonymous memory of an idle
    benchmark between runs; the next touch is a major fault."""
    value = read_int(root, "proc/sys/vm/swappiness")
    if value is None:
        return _missing("swappiness", "/proc/sys/vm/swappiness")
    swaps = read(root, "proc/swaps")
    note = ""
    if swaps is not None:
        note = " (no swap active now)" if len(swaps.splitlines()) <= 1 else " (swap active)"
    if value > SWAPPINESS_MAX:
        return Check("swappiness", f"{value}{note}", "warn",
                     "sysctl -w vm.swappiness=1 (persist in /etc/sysctl.d/)")
    return Check("swappiness", f"{value}{note}", "ok")


def check_memlock(root: Path = ROOT, *, limits: Limits = resource.getrlimit) -> Check:
    """RLIMIT_MEMLOCK must cover the process for mlockall, unless it has CAP_IPC_LOCK."""
    try:
        soft, _hard = limits(resource.RLIMIT_MEMLOCK)
    except (OSError, ValueError):
        return Check("memlock", "unreadable (getrlimit failed)", "unknown")
    if soft == resource.RLIM_INFINITY:
        return Check("memlock", "unlimited", "ok")
    caps = effective_capabilities(root / "proc/self/status")
    if caps is not None and caps >> CAP_IPC_LOCK & 1:
        return Check("memlock", f"{format_bytes(soft)} (CAP_IPC_LOCK held: the limit does not apply)",
                     "ok")
    if soft < MEMLOCK_MIN:
        return Check("memlock", format_bytes(soft), "warn",
                     "ulimit -l unlimited (or 'USER - memlock unlimited' in "
                     "/etc/security/limits.conf; docker run --ulimit memlock=-1)")
    return Check("memlock", format_bytes(soft), "ok")


def check_dev_shm(root: Path = ROOT, *, statvfs: Callable[[str], os.statvfs_result] = os.statvfs
                  ) -> Check:
    """/dev/shm holds POSIX semaphores and shared-memory rings; Docker's default 64 MiB
    is too small for large IPC buffers."""
    try:
        st = statvfs(str(root / "dev/shm"))
    except (OSError, ValueError):
        return _missing("dev_shm", "/dev/shm")
    size = st.f_blocks * st.f_frsize
    if size < SHM_MIN:
        return Check("dev_shm", format_bytes(size), "warn",
                     "mount -o remount,size=2G /dev/shm (docker run --shm-size=2g)")
    return Check("dev_shm", format_bytes(size), "ok")


def check_hugepages(root: Path = ROOT) -> Check:
    """Reserved (hugetlbfs) huge pages. Informational: none are needed unless the code
    under test maps hugetlbfs; numpy gets huge pages through THP."""
    meminfo = read(root, "proc/meminfo")
    if meminfo is None:
        return _missing("hugepages", "/proc/meminfo")
    total = re.search(r"^HugePages_Total:\s*(\d+)", meminfo, re.MULTILINE)
    size = re.search(r"^Hugepagesize:\s*(\d+)\s*kB", meminfo, re.MULTILINE)
    if total is None:
        return Check("hugepages", "not supported by this kernel", "ok")
    page = f" x {size.group(1)} kB" if size else ""
    return Check("hugepages", f"{total.group(1)}{page} reserved", "ok")


def check_thp(root: Path = ROOT) -> Check:
    """Transparent huge pages 'always' (or defrag 'always') lets page faults stall in
    direct compaction and khugepaged collapse pages under a running benchmark."""
    enabled = selected(read(root, "sys/kernel/mm/transparent_hugepage/enabled"))
    if enabled is None:
        return _missing("thp", "/sys/kernel/mm/transparent_hugepage/enabled")
    defrag = selected(read(root, "sys/kernel/mm/transparent_hugepage/defrag"))
    reading = enabled + (f" (defrag {defrag})" if defrag else "")
    if enabled == "always" or defrag == "always":
        return Check("thp", reading, "warn",
                     "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled; "
                     "echo madvise > /sys/kernel/mm/transparent_hugepage/defrag")
    return Check("thp", reading, "ok")


def check_governor(root: Path = ROOT) -> Check:
    """Any governor but 'performance' ramps the clock up only after load appears, so the
    first calls of each block run slow."""
    found = governors(root)
    if not found:
        return Check("governor", "no cpufreq (VM or driver absent)", "unknown")
    names = sorted(set(found.values()))
    reading = ", ".join(names)
    if names == ["performance"]:
        return Check("governor", reading, "ok")
    return Check("governor", reading, "warn", "cpupower frequency-set -g performance")


def check_isolation(root: Path = ROOT) -> Check:
    """An isolated CPU (isolcpus, nohz_full) keeps the scheduler, the tick and RCU
    callbacks away from the measured code."""
    isolated = read(root, "sys/devices/system/cpu/isolated")
    nohz = read(root, "sys/devices/system/cpu/nohz_full")
    cmdline = read(root, "proc/cmdline")
    if isolated is None and nohz is None and cmdline is None:
        return _missing("isolation", "/sys/devices/system/cpu/isolated and /proc/cmdline")
    args = dict(re.findall(r"(?:^|\s)(isolcpus|nohz_full|rcu_nocbs)=(\S+)", cmdline or ""))
    iso = isolated or args.get("isolcpus")
    # /sys/.../nohz_full reads "(null)" when the kernel supports it but none is set.
    nohz_val = nohz if nohz and nohz != "(null)" else args.get("nohz_full")
    if not iso and not nohz_val:
        return Check("isolation", "none", "warn",
                     "isolate a CPU on the kernel command line: isolcpus=N nohz_full=N "
                     "rcu_nocbs=N, then measure there with --hostperf-cpus=N")
    parts = [f"isolcpus {iso}" if iso else "isolcpus none",
             f"nohz_full {nohz_val}" if nohz_val else "nohz_full none"]
    return Check("isolation", ", ".join(parts), "ok")


def check_smt(root: Path = ROOT) -> Check:
    """A busy SMT sibling shares the core's caches and ports with the measured thread."""
    active = read(root, "sys/devices/system/cpu/smt/active")
    control = read(root, "sys/devices/system/cpu/smt/control")
    if active not in ("0", "1"):
        return _missing("smt", "/sys/devices/system/cpu/smt/active")
    note = f" (control {control})" if control else ""
    if active == "1":
        return Check("smt", f"on{note}", "warn",
                     "echo off > /sys/devices/system/cpu/smt/control (or keep the sibling of "
                     "the measured CPU idle: see thread_siblings_list)")
    return Check("smt", f"off{note}", "ok")


def check_numa(root: Path = ROOT) -> Check:
    """Memory on another NUMA node costs a remote access on every miss."""
    n = numa_nodes(root)
    if n is None:
        return _missing("numa", "/sys/devices/system/node")
    if n > 1:
        return Check("numa", f"{n} nodes", "warn",
                     "keep CPU and memory on one node: numactl --cpunodebind=N --membind=N "
                     "pytest ... with --hostperf-cpus on node N")
    return Check("numa", "1 node", "ok")


def check_rt_throttling(root: Path = ROOT) -> Check:
    """RT throttling bounds a runaway SCHED_FIFO task; with it off hostperf refuses FIFO."""
    runtime = read_int(root, "proc/sys/kernel/sched_rt_runtime_us")
    if runtime is None:
        return _missing("rt_throttling", "/proc/sys/kernel/sched_rt_runtime_us")
    period = read_int(root, "proc/sys/kernel/sched_rt_period_us") or 1_000_000
    if runtime < 0:
        return Check("rt_throttling", f"{runtime} (off)", "warn",
                     "hostperf refuses SCHED_FIFO without RT throttling: "
                     "sysctl -w kernel.sched_rt_runtime_us=950000")
    stopped_ms = max(period - runtime, 0) / 1000
    return Check("rt_throttling",
                 f"{runtime} of {period} us (FIFO tasks stopped for {stopped_ms:g} ms/s when "
                 "they saturate a core)", "ok")


def check_rtprio(root: Path = ROOT, *, limits: Limits = resource.getrlimit,
                 euid: Callable[[], int] = os.geteuid) -> Check:
    """SCHED_FIFO needs RLIMIT_RTPRIO above 0 or CAP_SYS_NICE."""
    try:
        soft, _hard = limits(resource.RLIMIT_RTPRIO)
    except (OSError, ValueError, AttributeError):
        return Check("rtprio", "unreadable (getrlimit failed)", "unknown")
    reading = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    if soft == resource.RLIM_INFINITY or soft > 0:
        return Check("rtprio", reading, "ok")
    caps = effective_capabilities(root / "proc/self/status")
    if caps is not None:
        if caps >> CAP_SYS_NICE & 1:
            return Check("rtprio", f"{reading} (CAP_SYS_NICE held)", "ok")
    elif euid() == 0:
        return Check("rtprio", f"{reading} (root)", "ok")
    return Check("rtprio", reading, "warn",
                 "ulimit -r 99 (or 'USER - rtprio 99' in /etc/security/limits.conf); "
                 "or setcap cap_sys_nice+ep $(readlink -f $(which python3)); "
                 "docker run --ulimit rtprio=99 --cap-add SYS_NICE")


def check_load(root: Path = ROOT, *, loadavg: tuple[float, float, float] | None = None,
               cpu_count: int | None = None) -> Check:
    """Other runnable work competes with the benchmark for CPUs and caches."""
    if loadavg is None:
        loadavg = read_loadavg(root)
    if loadavg is None:
        return _missing("load", "/proc/loadavg")
    ncpu = cpu_count or logical_cpus(root)
    reading = f"{loadavg[0]:.2f} {loadavg[1]:.2f} {loadavg[2]:.2f}"
    if not ncpu:
        return Check("load", f"{reading} (CPU count unknown)", "unknown")
    reading += f" on {ncpu} CPUs"
    # A pytest run is one runnable task itself; warn when others fill most of the CPUs.
    if loadavg[0] > 0.75 * ncpu:
        return Check("load", reading, "warn",
                     "measure on an idle host: stop other jobs, or pin them away from "
                     "--hostperf-cpus")
    return Check("load", reading, "ok")


def check_cpu_freq(root: Path = ROOT, *,
                   freq: tuple[float, float, float] | None = None) -> Check:
    """Current vs maximum clock: a CPU well below its maximum is throttled or idle-clocked.

    ``freq`` is (current, min, max) in MHz with 0 for unknown, as psutil gives it.
    """
    if freq is None:
        if is_real(root):
            try:
                import psutil  # type: ignore[import-untyped, unused-ignore]

                f = psutil.cpu_freq()
                freq = (f.current, f.min, f.max) if f else None
            except Exception:  # noqa: BLE001 - psutil missing or failing: read the files
                freq = None
        if freq is None:
            freq = read_cpu_freq(root)
    if freq is None or not freq[0]:
        return Check("cpu_freq", "unreadable (no cpufreq, no cpu MHz)", "unknown")
    current, _low, high = freq
    if not high:
        # /proc/cpuinfo in a VM shows the nominal rate, not a measured one: no verdict.
        return Check("cpu_freq", f"{current:.0f} MHz (max unknown)", "unknown")
    reading = f"{current:.0f} MHz of {high:.0f} MHz max"
    if current < 0.9 * high:
        return Check("cpu_freq", reading, "warn",
                     "cpupower frequency-set -g performance (and check thermal throttling)")
    return Check("cpu_freq", reading, "ok")


# --------------------------------------------------------------------------- audit

_CHECKS: tuple[Callable[..., Check], ...] = (
    check_swappiness, check_memlock, check_dev_shm, check_hugepages, check_thp,
    check_governor, check_isolation, check_smt, check_numa, check_rt_throttling,
    check_rtprio, check_load, check_cpu_freq,
)


def audit(
    root: Path = ROOT,
    *,
    limits: Limits = resource.getrlimit,
    statvfs: Callable[[str], os.statvfs_result] = os.statvfs,
    euid: Callable[[], int] = os.geteuid,
) -> list[Check]:
    """Run every tuning check against ``root``; always one Check per item, in a fixed order.

    ``limits``, ``statvfs`` and ``euid`` read process state that is not a file; tests
    inject fakes. A check that fails unexpectedly reads as ``unknown``: the audit must
    never break the run it reports on.
    """
    root = Path(root)
    injected: dict[Callable[..., Check], dict[str, object]] = {
        check_memlock: {"limits": limits},
        check_dev_shm: {"statvfs": statvfs},
        check_rtprio: {"limits": limits, "euid": euid},
    }
    checks = []
    for fn in _CHECKS:
        name = fn.__name__.removeprefix("check_")
        try:
            checks.append(fn(root, **injected.get(fn, {})))
        except Exception as exc:  # noqa: BLE001 - the audit must not break the run it reports on
            checks.append(Check(name, f"unreadable ({type(exc).__name__}: {exc})", "unknown"))
    from pytest_hostperf.host import gpu  # imports this module: loaded here, not at the top

    try:
        checks += gpu.check_gpus(root, limits=limits)  # none where no GPU is visible
    except Exception as exc:  # noqa: BLE001 - the audit must not break the run it reports on
        checks.append(Check("gpu", f"unreadable ({type(exc).__name__}: {exc})", "unknown"))
    return checks


def _short(reading: str) -> str:
    return reading.split(" (", 1)[0]


def audit_summary(checks: list[Check]) -> str:
    """One line for the pytest header.

    >>> audit_summary([Check("swappiness", "60", "warn", "sysctl ..."), Check("smt", "off", "ok")])
    'audit: 1 ok, 1 warn (swappiness 60)'
    """
    ok = [c for c in checks if c.verdict == "ok"]
    warn = [c for c in checks if c.verdict == "warn"]
    unknown = [c for c in checks if c.verdict == "unknown"]
    parts = [f"{len(ok)} ok"]
    if warn:
        parts.append(f"{len(warn)} warn (" + ", ".join(f"{c.name} {_short(c.reading)}"
                                                      for c in warn) + ")")
    if unknown:
        parts.append(f"{len(unknown)} unknown (" + ", ".join(c.name for c in unknown) + ")")
    return "audit: " + ", ".join(parts)


def render_audit(checks: list[Check]) -> str:
    """A plain-text table: name, reading, verdict, advice (advice only where given)."""
    header = ("check", "reading", "verdict", "advice")
    rows = [(c.name, c.reading, c.verdict, c.advice or "") for c in checks]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = []
    for row in [header, *rows]:
        cells = [row[i].ljust(widths[i]) for i in range(3)]
        lines.append("  ".join([*cells, row[3]]).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * len(header[3]))
    return "\n".join(lines)


def audit_to_json(checks: list[Check]) -> list[dict[str, object]]:
    """The checks as JSON-ready dicts, in audit order."""
    return [c.as_dict() for c in checks]
