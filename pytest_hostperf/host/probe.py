"""Read-only host fingerprint and latency-tuning audit.

Every /proc and /sys read goes through ``root`` (default ``/``) so tests hand in fake
trees. A file that is missing or unreadable gives ``None`` in the fingerprint and the
verdict ``unknown`` in the audit -- never an exception and never an invented value.
Process state that is not a file (rlimits, statvfs) is read through injectable
callables for the same reason.

Importing this module is cheap: psutil is imported only when reading the real host.
"""
from __future__ import annotations

import os
import platform
import re
import resource
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "Check",
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
    "effective_capabilities",
    "fingerprint",
    "render_audit",
    "status_field_kib",
]

Verdict = Literal["ok", "warn", "unknown"]
Limits = Callable[[int], "tuple[int, int]"]
ROOT = Path("/")

_CAP_IPC_LOCK = 14
_CAP_SYS_NICE = 23
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


# --------------------------------------------------------------------------- readers


def _read(root: Path, rel: str) -> str | None:
    """Text of ``root/rel`` stripped, or None when missing, unreadable or not text."""
    try:
        return (root / rel).read_text(encoding="utf-8", errors="strict").strip()
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _read_int(root: Path, rel: str) -> int | None:
    text = _read(root, rel)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _is_real(root: Path) -> bool:
    try:
        return Path(root).resolve() == ROOT
    except OSError:
        return False


def status_field_kib(status_path: Path, key: str) -> int | None:
    """A ``kB`` field (``VmLck``, ``VmRSS``...) of a /proc/<pid>/status file, in KiB."""
    try:
        text = Path(status_path).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    m = re.search(rf"^{re.escape(key)}:\s*(\d+)\s*kB", text, re.MULTILINE)
    return int(m.group(1)) if m else None


def effective_capabilities(status_path: Path) -> int | None:
    """The ``CapEff`` bit mask of a /proc/<pid>/status file, or None when unreadable."""
    try:
        text = Path(status_path).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    m = re.search(r"^CapEff:\s*([0-9a-fA-F]+)", text, re.MULTILINE)
    return int(m.group(1), 16) if m else None


def _cpuinfo_blocks(root: Path) -> list[dict[str, str]]:
    text = _read(root, "proc/cpuinfo")
    if not text:
        return []
    blocks = []
    for chunk in re.split(r"\n\s*\n", text):
        fields = {}
        for line in chunk.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def _logical_cpus(root: Path) -> int | None:
    if _is_real(root):
        return os.cpu_count()
    n = sum(1 for b in _cpuinfo_blocks(root) if "processor" in b)
    if n:
        return n
    online = _read(root, "sys/devices/system/cpu/online")
    return _count_cpu_list(online) if online else None


def _count_cpu_list(text: str) -> int | None:
    total = 0
    for item in text.split(","):
        lo, _, hi = item.strip().partition("-")
        try:
            total += (int(hi) if hi else int(lo)) - int(lo) + 1
        except ValueError:
            return None
    return total


def _physical_cores(root: Path) -> int | None:
    if _is_real(root):
        try:
            import psutil

            return psutil.cpu_count(logical=False)
        except Exception:  # psutil missing or failing: fall back to the files
            pass
    pairs = {(b.get("physical id"), b.get("core id")) for b in _cpuinfo_blocks(root)
             if "core id" in b}
    if pairs:
        return len(pairs)
    # ARM /proc/cpuinfo has no core ids; sysfs topology does.
    cpu_dir = root / "sys/devices/system/cpu"
    topo = set()
    try:
        for d in cpu_dir.glob("cpu[0-9]*/topology"):
            pkg = _read(d, "physical_package_id")
            core = _read(d, "core_id")
            if core is not None:
                topo.add((pkg, core))
    except OSError:
        return None
    return len(topo) or None


def _smt(root: Path, logical: int | None, physical: int | None) -> bool | None:
    active = _read(root, "sys/devices/system/cpu/smt/active")
    if active in ("0", "1"):
        return active == "1"
    if logical and physical:
        return logical > physical
    return None


def _numa_nodes(root: Path) -> int | None:
    node_dir = root / "sys/devices/system/node"
    try:
        n = sum(1 for p in node_dir.iterdir() if re.fullmatch(r"node\d+", p.name))
    except OSError:
        return None
    return n or None


def _governors(root: Path) -> dict[str, str]:
    """cpuN -> scaling_governor for every CPU that has cpufreq."""
    out: dict[str, str] = {}
    try:
        paths = sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor"),
                       key=lambda p: int(p.parent.parent.name[3:]))
    except (OSError, ValueError):
        return out
    for p in paths:
        text = _read(p.parent, p.name)
        if text:
            out[p.parent.parent.name] = text
    return out


def _dist_version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    except Exception:  # a broken dist-info must not break the header
        return None


def _torch_info() -> tuple[str | None, str | None]:
    """(torch version, CUDA device name) without importing torch (which takes seconds)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return _dist_version("torch"), None
    version = str(getattr(torch, "__version__", None) or _dist_version("torch"))
    device = None
    try:
        if torch.cuda.is_available():
            device = str(torch.cuda.get_device_name(0))
    except Exception:  # no driver, a CPU build, a broken install: no device
        device = None
    return version, device


def fingerprint(root: Path = ROOT) -> dict[str, object]:
    """What this host is, for baselines and the report header. Keys are always present;
    a value that cannot be read is None. Values are JSON-serialisable.

    Never imports torch: its version comes from ``sys.modules`` or the installed
    metadata, and the CUDA device is reported only if torch is already imported.
    """
    root = Path(root)
    real = _is_real(root)
    blocks = _cpuinfo_blocks(root)
    model = next((b["model name"] for b in blocks if b.get("model name")), None)
    if model is None and real:
        model = platform.processor() or None
    logical = _logical_cpus(root)
    physical = _physical_cores(root)
    governors = _governors(root)
    torch_version, cuda_device = _torch_info()
    return {
        "cpu_model": model,
        "logical_cpus": logical,
        "physical_cores": physical,
        "smt": _smt(root, logical, physical),
        "numa_nodes": _numa_nodes(root),
        "arch": platform.machine() or None,
        "kernel": (platform.release() or None) if real else _read(root, "proc/sys/kernel/osrelease"),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "numpy": _dist_version("numpy"),
        "torch": torch_version,
        "cuda_device": cuda_device,
        "governor": governors.get("cpu0"),
        "rt_runtime_us": _read_int(root, "proc/sys/kernel/sched_rt_runtime_us"),
    }


# --------------------------------------------------------------------------- checks


def _missing(name: str, what: str) -> Check:
    return Check(name, f"unreadable ({what} missing)", "unknown", None)


def _bytes(n: int) -> str:
    if n >= _GiB:
        return f"{n / _GiB:.1f} GiB"
    if n >= _MiB:
        return f"{n / _MiB:.0f} MiB"
    return f"{n // 1024} KiB"


def check_swappiness(root: Path = ROOT) -> Check:
    """vm.swappiness above 10 lets the kernel page out anonymous memory of an idle
    benchmark between runs; the next touch is a major fault."""
    value = _read_int(root, "proc/sys/vm/swappiness")
    if value is None:
        return _missing("swappiness", "/proc/sys/vm/swappiness")
    swaps = _read(root, "proc/swaps")
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
    if caps is not None and caps >> _CAP_IPC_LOCK & 1:
        return Check("memlock", f"{_bytes(soft)} (CAP_IPC_LOCK held: the limit does not apply)",
                     "ok")
    if soft < MEMLOCK_MIN:
        return Check("memlock", _bytes(soft), "warn",
                     "ulimit -l unlimited (or 'USER - memlock unlimited' in "
                     "/etc/security/limits.conf; docker run --ulimit memlock=-1)")
    return Check("memlock", _bytes(soft), "ok")


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
        return Check("dev_shm", _bytes(size), "warn",
                     "mount -o remount,size=2G /dev/shm (docker run --shm-size=2g)")
    return Check("dev_shm", _bytes(size), "ok")


def check_hugepages(root: Path = ROOT) -> Check:
    """Reserved (hugetlbfs) huge pages. Informational: none are needed unless the code
    under test maps hugetlbfs; numpy gets huge pages through THP."""
    meminfo = _read(root, "proc/meminfo")
    if meminfo is None:
        return _missing("hugepages", "/proc/meminfo")
    total = re.search(r"^HugePages_Total:\s*(\d+)", meminfo, re.MULTILINE)
    size = re.search(r"^Hugepagesize:\s*(\d+)\s*kB", meminfo, re.MULTILINE)
    if total is None:
        return Check("hugepages", "not supported by this kernel", "ok")
    page = f" x {size.group(1)} kB" if size else ""
    return Check("hugepages", f"{total.group(1)}{page} reserved", "ok")


def _bracketed(text: str | None) -> str | None:
    if text is None:
        return None
    m = re.search(r"\[([^\]]+)\]", text)
    return m.group(1) if m else (text.split()[0] if text.split() else None)


def check_thp(root: Path = ROOT) -> Check:
    """Transparent huge pages 'always' (or defrag 'always') lets page faults stall in
    direct compaction and khugepaged collapse pages under a running benchmark."""
    enabled = _bracketed(_read(root, "sys/kernel/mm/transparent_hugepage/enabled"))
    if enabled is None:
        return _missing("thp", "/sys/kernel/mm/transparent_hugepage/enabled")
    defrag = _bracketed(_read(root, "sys/kernel/mm/transparent_hugepage/defrag"))
    reading = enabled + (f" (defrag {defrag})" if defrag else "")
    if enabled == "always" or defrag == "always":
        return Check("thp", reading, "warn",
                     "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled; "
                     "echo madvise > /sys/kernel/mm/transparent_hugepage/defrag")
    return Check("thp", reading, "ok")


def check_governor(root: Path = ROOT) -> Check:
    """Any governor but 'performance' ramps the clock up only after load appears, so the
    first calls of each block run slow."""
    governors = _governors(root)
    if not governors:
        return Check("governor", "no cpufreq (VM or driver absent)", "unknown")
    names = sorted(set(governors.values()))
    reading = ", ".join(names)
    if names == ["performance"]:
        return Check("governor", reading, "ok")
    return Check("governor", reading, "warn", "cpupower frequency-set -g performance")


def check_isolation(root: Path = ROOT) -> Check:
    """An isolated CPU (isolcpus, nohz_full) keeps the scheduler, the tick and RCU
    callbacks away from the measured code."""
    isolated = _read(root, "sys/devices/system/cpu/isolated")
    nohz = _read(root, "sys/devices/system/cpu/nohz_full")
    cmdline = _read(root, "proc/cmdline")
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
    active = _read(root, "sys/devices/system/cpu/smt/active")
    control = _read(root, "sys/devices/system/cpu/smt/control")
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
    n = _numa_nodes(root)
    if n is None:
        return _missing("numa", "/sys/devices/system/node")
    if n > 1:
        return Check("numa", f"{n} nodes", "warn",
                     "keep CPU and memory on one node: numactl --cpunodebind=N --membind=N "
                     "pytest ... with --hostperf-cpus on node N")
    return Check("numa", "1 node", "ok")


def check_rt_throttling(root: Path = ROOT) -> Check:
    """RT throttling bounds a runaway SCHED_FIFO task; with it off hostperf refuses FIFO."""
    runtime = _read_int(root, "proc/sys/kernel/sched_rt_runtime_us")
    if runtime is None:
        return _missing("rt_throttling", "/proc/sys/kernel/sched_rt_runtime_us")
    period = _read_int(root, "proc/sys/kernel/sched_rt_period_us") or 1_000_000
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
        if caps >> _CAP_SYS_NICE & 1:
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
        text = _read(root, "proc/loadavg")
        try:
            loadavg = tuple(float(x) for x in text.split()[:3]) if text else None  # type: ignore[assignment]
        except ValueError:
            loadavg = None
        if loadavg is None and _is_real(root) and hasattr(os, "getloadavg"):
            try:
                loadavg = os.getloadavg()
            except OSError:
                loadavg = None
    if loadavg is None:
        return _missing("load", "/proc/loadavg")
    ncpu = cpu_count or _logical_cpus(root)
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
        if _is_real(root):
            try:
                import psutil

                f = psutil.cpu_freq()
                freq = (f.current, f.min, f.max) if f else None
            except Exception:
                freq = None
        if freq is None:
            freq = _sysfs_freq(root) or _cpuinfo_freq(root)
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


def _sysfs_freq(root: Path) -> tuple[float, float, float] | None:
    """Mean (current, min, max) MHz over the CPUs that have cpufreq (values there are kHz)."""
    rows = []
    try:
        dirs = sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq"))
    except OSError:
        return None
    for d in dirs:
        cur = _read_int(d, "scaling_cur_freq")
        if cur:
            rows.append((cur, _read_int(d, "cpuinfo_min_freq") or 0,
                         _read_int(d, "cpuinfo_max_freq") or 0))
    if not rows:
        return None
    return tuple(sum(col) / len(rows) / 1000 for col in zip(*rows))  # type: ignore[return-value]


def _cpuinfo_freq(root: Path) -> tuple[float, float, float] | None:
    mhz = [float(b["cpu MHz"]) for b in _cpuinfo_blocks(root) if _is_float(b.get("cpu MHz"))]
    return (sum(mhz) / len(mhz), 0.0, 0.0) if mhz else None


def _is_float(text: str | None) -> bool:
    try:
        float(text)  # type: ignore[arg-type]
        return True
    except (TypeError, ValueError):
        return False


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
        except Exception as exc:
            checks.append(Check(name, f"unreadable ({type(exc).__name__}: {exc})", "unknown"))
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
