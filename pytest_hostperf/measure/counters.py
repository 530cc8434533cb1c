"""Per-block counters read around each block of calls, outside the timed region.

What the hot path did, next to how long it took: page faults, context switches, Python
allocations, CPU migrations and, where ``perf_event_open`` gives hardware counters, cycles,
instructions, cache misses and branch misses. Each is read just before a block starts and
just after it ends (never between two timestamps), and stored per block as a per-call value
so blocks can be compared with the same statistics as latency.

Meaning of each counter (per call; a block's delta divided by its calls):
- ``minor_faults``, ``major_faults``: ``getrusage(RUSAGE_THREAD)`` of the measuring thread;
- ``voluntary_switches`` (the thread blocked: sleep, futex, I/O), ``involuntary_switches``
  (it was preempted);
- ``py_allocations``: net Python memory blocks (``sys.getallocatedblocks``) still allocated at
  the block's end: what a call keeps (the garbage collector is off during blocks, so cyclic
  garbage counts too); a buffer allocated and freed within the call nets zero (its page
  faults show it);
- ``cpu_migrations``: blocks that ended on another CPU than they started on
  (``/proc/thread-self/stat`` field 39), per call; 0 when pinned;
- ``cycles``, ``instructions``, ``cache_misses``, ``branch_misses`` (user space only), and
  ``ipc`` = instructions / cycles, where the kernel and the CPU allow ``perf_event_open``.
Written by hand: psutil reads process-wide counters (not the thread's) and has no perf
events; the perf part builds one perf_event_attr and calls perf_event_open through host/libc.py.
"""
from __future__ import annotations

import fcntl
import os
import resource
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pytest_hostperf.host import libc

if TYPE_CHECKING:
    from typing_extensions import Self

BASIC = ("minor_faults", "major_faults", "voluntary_switches", "involuntary_switches", "py_allocations",
         "cpu_migrations")
PERF = ("cycles", "instructions", "cache_misses", "branch_misses")
#: perf_event_attr (type, config) of each hardware counter (PERF_TYPE_HARDWARE = 0).
_PERF_CONFIG = {"cycles": (0, 0), "instructions": (0, 1), "cache_misses": (0, 3), "branch_misses": (0, 5)}
_ATTR_SIZE = 112  # PERF_ATTR_SIZE_VER7
_IOC_ENABLE, _IOC_DISABLE, _IOC_RESET = 0x2400, 0x2401, 0x2403


def perf_open(type_: int, config: int) -> int:
    """One perf counter of the calling thread, user space only, enabled; returns its fd.

    Raises OSError when the kernel refuses (ENOENT: no PMU, e.g. in a VM; EACCES/EPERM:
    perf_event_paranoid), with errno 0 where perf_event_open is not known here.
    """
    attr = bytearray(_ATTR_SIZE)
    struct.pack_into("IIQ", attr, 0, type_, _ATTR_SIZE, config)
    # flags: disabled (bit 0), exclude_kernel (bit 5), exclude_hv (bit 6)
    struct.pack_into("Q", attr, 40, (1 << 0) | (1 << 5) | (1 << 6))
    fd = libc.perf_event_open(attr, pid=0, cpu=-1, group_fd=-1, flags=0)
    try:
        fcntl.ioctl(fd, _IOC_RESET, 0)
        fcntl.ioctl(fd, _IOC_ENABLE, 0)
    except OSError:
        os.close(fd)
        raise
    return fd


def perf_read(fd: int) -> int:
    """The counter's value (a u64)."""
    return int(struct.unpack("Q", os.read(fd, 8))[0])


def _current_cpu() -> int:
    try:
        with open("/proc/thread-self/stat", "rb") as fh:
            stat = fh.read()
        return int(stat[stat.rindex(b")") + 2:].split()[36])  # field 39, counting from 1
    except (OSError, ValueError, IndexError):
        return -1


@dataclass
class Reader:
    """Reads every available counter of the calling thread; ``unavailable`` says why not."""

    perf: bool = True
    fds: dict[str, int] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not hasattr(resource, "RUSAGE_THREAD"):
            self.unavailable.update({k: "getrusage(RUSAGE_THREAD) is Linux-only" for k in BASIC[:4]})
        if not os.path.exists("/proc/thread-self/stat"):
            self.unavailable["cpu_migrations"] = "/proc/thread-self/stat is missing"
        if not self.perf:
            return
        for name, (type_, config) in _PERF_CONFIG.items():
            try:
                self.fds[name] = perf_open(type_, config)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                if exc.errno == 2:
                    reason += " (no hardware counters here: a VM without a virtual PMU?)"
                elif exc.errno in (1, 13):
                    reason += " (kernel.perf_event_paranoid; fix: sysctl -w kernel.perf_event_paranoid=1)"
                self.unavailable[name] = f"perf_event_open: {reason}"
        if "cycles" in self.unavailable or "instructions" in self.unavailable:
            self.unavailable["ipc"] = "needs cycles and instructions"

    @property
    def names(self) -> tuple[str, ...]:
        """The counters :meth:`read` returns, in order."""
        return tuple(n for n in BASIC if n not in self.unavailable) + tuple(n for n in PERF if n in self.fds)

    def read(self) -> npt.NDArray[np.float64]:
        """Current values, in the order of :attr:`names` (cpu_migrations holds the CPU number)."""
        out: list[float] = []
        if "minor_faults" not in self.unavailable:
            ru = resource.getrusage(resource.RUSAGE_THREAD)
            out += [ru.ru_minflt, ru.ru_majflt, ru.ru_nvcsw, ru.ru_nivcsw]
        out.append(sys.getallocatedblocks())  # py_allocations
        if "cpu_migrations" not in self.unavailable:
            out.append(_current_cpu())
        out += [perf_read(self.fds[n]) for n in PERF if n in self.fds]
        return np.array(out, dtype=np.float64)

    def delta(self, before: npt.NDArray[np.float64], after: npt.NDArray[np.float64]
              ) -> npt.NDArray[np.float64]:
        """after - before, with the CPU number turned into a migration flag."""
        d = after - before
        names = self.names
        if "cpu_migrations" in names:
            i = names.index("cpu_migrations")
            d[i] = float(after[i] != before[i])
        return d

    def close(self) -> None:
        """Close the perf counters' file descriptors."""
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_cost_ns(reader: Reader, reads: int = 200) -> float:
    """Median cost of one :meth:`Reader.read` (paid twice per block, outside the timed region)."""
    costs = np.empty(reads)
    for i in range(reads):
        t0 = time.perf_counter_ns()
        reader.read()
        costs[i] = time.perf_counter_ns() - t0
    return float(np.median(costs))
