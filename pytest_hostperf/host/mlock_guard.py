"""The mlock guard: ``mlockall`` only where locking cannot hurt the host.

``mlockall(MCL_CURRENT | MCL_FUTURE)`` faults in and pins every readable or writable page the
process maps (not only the resident ones: untouched buffers, thread stacks and whole shared
libraries are read in), and every page it maps until ``munlockall``. In a process that holds
a large model, or a CUDA context with its gigabyte-sized libraries and pinned buffers, that
locks gigabytes on every measurement, or fails (RLIMIT_MEMLOCK), or makes a later allocation
fail. The default mode, ``auto``, therefore compares what would be locked with a bound first
and skips locking above it; ``--hostperf-mlock`` (marker ``mlock=True``) locks regardless.

The bound (see :func:`decide`, a pure function of the figures :func:`read_figures` takes):

- **what would be locked**: the resident size (RSS), raised to the size of the readable or
  writable mappings where those are larger (what ``MCL_CURRENT`` faults in), plus room for
  ``MCL_FUTURE``'s growth during the measurement: a quarter of it, at least 256 MiB (thread
  stacks and malloc arenas made while locked are populated whole, and the measured code's
  own allocations are locked as they come);
- **RAM**: that sum must stay within :data:`AUTO_MAX` (1 GiB) and within half of the memory
  available now (``MemAvailable``), so the rest of the host keeps at least as much as the
  measurement pins. Pages mapped but not resident are faulted in and stay resident after
  ``munlockall`` (measured: an untouched 1 GiB buffer, 2.9 s in the first ``mlockall``); a
  pytest process with numpy maps about 150 MiB, so 1 GiB is far above what a benchmark
  needs and below what a process holding a model has (docs/host-control.md);
- **RLIMIT_MEMLOCK**, unless the process holds CAP_IPC_LOCK: the kernel charges the whole
  mapped (virtual) size to it, and with ``MCL_FUTURE`` every later mapping, so the virtual
  size plus the growth must fit.

The guard never looks at the virtual size for RAM: ``PROT_NONE`` reservations (a CUDA
context reserves tens of GiB of address space) are never faulted in.

Importing this module is cheap: psutil is imported by :func:`read_figures`.
"""
from __future__ import annotations

import resource
from dataclasses import dataclass
from pathlib import Path

from pytest_hostperf.host import procfs
from pytest_hostperf.units import format_bytes

#: Bytes for people (``units.format_bytes``, shared with the audit).
size_text = format_bytes

__all__ = [
    "AUTO_MAX",
    "AVAILABLE_FRACTION",
    "FIX_MLOCK",
    "FORCE_HINT",
    "GROWTH_FRACTION",
    "GROWTH_MIN",
    "Decision",
    "Figures",
    "accessible_mapped",
    "check",
    "decide",
    "growth",
    "read_figures",
    "size_text",
]

_KiB = 1024
_MiB = 1024 * _KiB
_GiB = 1024 * _MiB

#: ``MCL_FUTURE`` growth allowed for during one measurement: this share of what is locked...
GROWTH_FRACTION = 0.25
#: ...and at least this much.
GROWTH_MIN = 256 * _MiB
#: The most the ``auto`` mode locks (what is locked plus its growth).
AUTO_MAX = 1 * _GiB
#: The share of the memory available now that the ``auto`` mode may lock.
AVAILABLE_FRACTION = 0.5

FORCE_HINT = ("--hostperf-mlock (or @pytest.mark.hostperf(mlock=True)) locks regardless; "
              "--hostperf-no-mlock turns mlock off")
FIX_MLOCK = ("ulimit -l unlimited (or 'USER - memlock unlimited' in /etc/security/limits.conf); "
              "in a container: docker run --ulimit memlock=-1 (or --cap-add IPC_LOCK)")


@dataclass(frozen=True, slots=True)
class Figures:
    """What the guard decides on, read from the OS (bytes)."""

    resident: int  # RSS
    mapped: int | None  # readable or writable mappings (what MCL_CURRENT faults in); None: unknown
    virtual: int | None  # VmSize: what RLIMIT_MEMLOCK is charged with; None: unknown
    limit: int | None  # RLIMIT_MEMLOCK soft limit; None: unlimited
    cap_ipc_lock: bool  # CAP_IPC_LOCK held: the limit does not apply
    available: int | None  # MemAvailable; None: unknown


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to lock, and if not, why (with the figures) and what to do about it."""

    lock: bool
    reason: str | None = None
    fix: str | None = None
    need: int = 0  # bytes: what would be locked plus its growth
    bound: int = 0  # bytes: the most the auto mode locks here (RAM)


def growth(locked: int) -> int:
    """Room for ``MCL_FUTURE``'s growth during one measurement of a process locking ``locked``."""
    return max(GROWTH_MIN, int(locked * GROWTH_FRACTION))


def decide(resident: int, available: int | None, *, limit: int | None = None, mapped: int | None = None,
           virtual: int | None = None, cap_ipc_lock: bool = False) -> Decision:
    """Whether the ``auto`` mode locks a process of these figures (bytes; pure).

    ``resident``: RSS; ``mapped``: its readable or writable mappings (None: unknown);
    ``virtual``: VmSize (None: unknown, taken as the larger of the two); ``limit``:
    RLIMIT_MEMLOCK (None: unlimited), which does not apply under ``cap_ipc_lock``;
    ``available``: MemAvailable (None: unknown; then only :data:`AUTO_MAX` bounds it).
    """
    locked = max(resident, mapped or 0)
    grow = growth(locked)
    need = locked + grow
    bound = AUTO_MAX if available is None else min(AUTO_MAX, int(max(available, 0) * AVAILABLE_FRACTION))
    if limit is None:
        limit_text = "RLIMIT_MEMLOCK unlimited"
    elif cap_ipc_lock:
        limit_text = f"RLIMIT_MEMLOCK {size_text(limit)}, not applying: CAP_IPC_LOCK held"
    else:
        limit_text = f"RLIMIT_MEMLOCK {size_text(limit)}"
    what = f"resident {size_text(resident)}"
    if mapped is not None and mapped > resident:
        what += f" ({size_text(mapped)} mapped readable or writable, all faulted in by mlockall)"
    if need > bound:
        avail_text = "available memory unknown" if available is None else f"{size_text(available)} available"
        return Decision(False, f"mlock skipped: {what} + {size_text(grow)} growth would exceed the bound of "
                               f"{size_text(bound)} (at most {size_text(AUTO_MAX)} and half the memory available; "
                               f"{avail_text}, {limit_text})", FORCE_HINT, need, bound)
    if limit is not None and not cap_ipc_lock:
        charged = max(virtual if virtual is not None else 0, locked) + grow
        if charged > limit:
            vm = size_text(virtual) if virtual is not None else size_text(locked)
            return Decision(False, f"mlock skipped: mapped {vm} + {size_text(grow)} growth would exceed "
                                   f"{limit_text} (the kernel charges every mapping to it, and this process "
                                   "lacks CAP_IPC_LOCK)", f"{FIX_MLOCK}; or {FORCE_HINT}", need, bound)
    return Decision(True, None, None, need, bound)


def accessible_mapped(maps_path: Path = Path("/proc/self/maps")) -> int | None:
    """Bytes of the readable, writable or executable mappings in ``maps_path``: what
    ``mlockall(MCL_CURRENT)`` faults in. ``PROT_NONE`` reservations are left out (never
    faulted in), and so are device mappings (``/dev/...`` other than ``/dev/zero`` and
    ``/dev/shm``: I/O memory, which mlock neither faults in nor takes from RAM).
    None where the file cannot be read (not Linux)."""
    text = procfs.read_text(maps_path)
    if text is None:
        return None
    total = 0
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5 or parts[1][:3] == "---":
            continue
        path = parts[5].strip() if len(parts) > 5 else ""
        if path.startswith("/dev/") and not path.startswith(("/dev/zero", "/dev/shm/")):
            continue
        start, _, end = parts[0].partition("-")
        try:
            total += int(end, 16) - int(start, 16)
        except ValueError:
            continue
    return total


def read_figures() -> Figures:
    """This process's figures, read now."""
    import psutil  # type: ignore[import-untyped, unused-ignore]

    rss: int = 0
    vms: int | None = None
    try:
        info = psutil.Process().memory_info()
        rss, vms = int(info.rss), int(info.vms)
    except (psutil.Error, OSError):
        rss = (procfs.status_field_kib(Path("/proc/self/status"), "VmRSS") or 0) * _KiB
    available: int | None
    try:
        available = int(psutil.virtual_memory().available)
    except (psutil.Error, OSError, RuntimeError):
        available = None
    limit: int | None
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        limit = None if soft == resource.RLIM_INFINITY else int(soft)
    except (OSError, ValueError):
        limit = None
    caps = procfs.effective_capabilities(Path("/proc/self/status"))
    return Figures(resident=rss, mapped=accessible_mapped(), virtual=vms, limit=limit,
                   cap_ipc_lock=caps is not None and bool(caps >> procfs.CAP_IPC_LOCK & 1),
                   available=available)


def check(figures: Figures | None = None) -> Decision:
    """The guard's decision for this process now (or for ``figures``)."""
    f = figures if figures is not None else read_figures()
    return decide(f.resident, f.available, limit=f.limit, mapped=f.mapped, virtual=f.virtual,
                  cap_ipc_lock=f.cap_ipc_lock)
