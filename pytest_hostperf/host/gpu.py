"""The GPU host audit: is this GPU host tuned for latency, and which CPUs are near the GPU.

Read through NVML (``nvidia-ml-py``, the optional ``gpu`` extra: ``import pynvml``) and sysfs,
each item with its fix, as the CPU audit's (``audit.py``):

- ``gpu<i> numa``: the GPU's NUMA node against the CPUs hostperf pins to. Copies between host
  memory and a GPU on the other socket cross the inter-socket link; CUDA measurements are pinned
  to a CPU local to the GPU by default (:func:`local_cpu`).
- ``gpu<i> persistence``: persistence mode off lets the driver tear the GPU's state down when no
  process holds it; the next process's first calls pay its set-up.
- ``gpu<i> clocks``: application clocks below the maximum (a power or admin cap) slow every kernel.
- ``gpu<i> pcie``: the link's current generation and width against the most it can run; a link
  trained down (a riser, a slot sharing lanes) caps every transfer.
- ``gpu memlock``: the memlock limit against what pinned buffers need (pinning beyond it fails).

NVML is reached through ``nvml`` (a module or a fake with the same functions) and sysfs and
/proc through ``root``, so tests hand in fakes. Without NVML where a GPU is visible: one item
says it is not available, and how to get it. No GPU visible: no items.
"""
from __future__ import annotations

import os
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_hostperf.host.audit import Check, Limits
from pytest_hostperf.host.procfs import ROOT, read
from pytest_hostperf.units import format_bytes

#: What pinned buffers of the transfer benchmarks need locked at once (two 256 MiB buffers).
PINNED_NEED = 512 * 1024 * 1024
#: The fix for a missing NVML.
NVML_FIX = "pip install 'pytest-hostperf[gpu]' (nvidia-ml-py) for the GPU audit"


@dataclass(frozen=True, slots=True)
class GpuFacts:
    """What the audit read of one GPU (None: not readable)."""

    index: int
    name: str
    bus_id: str  # sysfs form: 0000:3b:00.0
    numa_node: int | None
    local_cpus: tuple[int, ...]
    persistence: bool | None
    clock_mhz: int | None  # application graphics clock
    max_clock_mhz: int | None
    pcie_gen: int | None
    max_pcie_gen: int | None
    pcie_width: int | None
    max_pcie_width: int | None


def load_nvml() -> tuple[Any, str]:
    """``pynvml`` initialised, or None and why not."""
    try:
        import pynvml
    except ImportError:
        return None, "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVMLError and its many subclasses: the reason is the message
        return None, f"NVML did not start ({exc})"
    return pynvml, ""


def sysfs_bus_id(nvml_bus_id: str | bytes) -> str:
    """NVML's ``00000000:3B:00.0`` as sysfs names it: ``0000:3b:00.0``."""
    text = nvml_bus_id.decode() if isinstance(nvml_bus_id, bytes) else str(nvml_bus_id)
    domain, _, rest = text.partition(":")
    return f"{int(domain, 16):04x}:{rest.lower()}"


def parse_cpulist(text: str) -> tuple[int, ...]:
    """``0-3,8,10-11`` -> (0, 1, 2, 3, 8, 10, 11)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return tuple(cpus)


def _pci(root: Path, bus: str) -> tuple[int | None, tuple[int, ...]]:
    node_text = read(root, f"sys/bus/pci/devices/{bus}/numa_node")
    cpus_text = read(root, f"sys/bus/pci/devices/{bus}/local_cpulist")
    node = int(node_text) if node_text is not None and node_text.strip().lstrip("-").isdigit() else None
    try:
        cpus = parse_cpulist(cpus_text) if cpus_text else ()
    except ValueError:
        cpus = ()
    return (node if node is None or node >= 0 else None), cpus


def _try(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 - an NVML query a GPU or driver does not support reads as unknown
        return None


def read_gpus(nvml: Any, root: Path = ROOT) -> list[GpuFacts]:
    """Every GPU NVML sees, with its sysfs locality."""
    out = []
    for i in range(int(nvml.nvmlDeviceGetCount())):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        name = _try(nvml.nvmlDeviceGetName, h)
        pci = nvml.nvmlDeviceGetPciInfo(h)
        bus = sysfs_bus_id(getattr(pci, "busId", None) or getattr(pci, "busIdLegacy", None) or "0:00:00.0")
        node, cpus = _pci(root, bus)
        mode = _try(nvml.nvmlDeviceGetPersistenceMode, h)
        out.append(GpuFacts(
            index=i, name=name.decode() if isinstance(name, bytes) else str(name or f"GPU {i}"), bus_id=bus,
            numa_node=node, local_cpus=cpus, persistence=None if mode is None else bool(mode),
            clock_mhz=_try(nvml.nvmlDeviceGetApplicationsClock, h, nvml.NVML_CLOCK_GRAPHICS),
            max_clock_mhz=_try(nvml.nvmlDeviceGetMaxClockInfo, h, nvml.NVML_CLOCK_GRAPHICS),
            pcie_gen=_try(nvml.nvmlDeviceGetCurrPcieLinkGeneration, h),
            max_pcie_gen=_try(nvml.nvmlDeviceGetMaxPcieLinkGeneration, h),
            pcie_width=_try(nvml.nvmlDeviceGetCurrPcieLinkWidth, h),
            max_pcie_width=_try(nvml.nvmlDeviceGetMaxPcieLinkWidth, h)))
    return out


def gpu_checks(gpus: Sequence[GpuFacts], *, pinned_cpus: Sequence[int], memlock_soft: int | None,
               need: int = PINNED_NEED) -> list[Check]:
    """The audit items of ``gpus``; ``pinned_cpus``: where hostperf measures; ``memlock_soft``:
    RLIMIT_MEMLOCK's soft limit (None: unreadable)."""
    checks = []
    for g in gpus:
        tag = f"gpu{g.index}"
        if g.numa_node is None or not g.local_cpus:
            checks.append(Check(f"{tag} numa", f"{g.name} at {g.bus_id}: NUMA node unknown (no sysfs numa_node)",
                                "unknown"))
        else:
            far = sorted(set(pinned_cpus) - set(g.local_cpus))
            reading = (f"{g.name} at {g.bus_id} on node {g.numa_node} (CPUs {_cpus(g.local_cpus)}); "
                       f"hostperf pins to {_cpus(pinned_cpus)}")
            if far:
                checks.append(Check(f"{tag} numa", reading, "warn",
                                    f"pin near the GPU: --hostperf-cpus={g.local_cpus[-1]} (a CPU of node "
                                    f"{g.numa_node}); CUDA measurements pick one by default"))
            else:
                checks.append(Check(f"{tag} numa", reading, "ok"))
        if g.persistence is None:
            checks.append(Check(f"{tag} persistence", "unreadable", "unknown"))
        elif not g.persistence:
            checks.append(Check(f"{tag} persistence", "off", "warn",
                                f"nvidia-smi -i {g.index} -pm 1 (or run nvidia-persistenced)"))
        else:
            checks.append(Check(f"{tag} persistence", "on", "ok"))
        if g.clock_mhz is None or g.max_clock_mhz is None:
            checks.append(Check(f"{tag} clocks", "unreadable", "unknown"))
        elif g.clock_mhz < g.max_clock_mhz:
            checks.append(Check(f"{tag} clocks", f"application clock {g.clock_mhz} MHz of {g.max_clock_mhz} MHz",
                                "warn", f"nvidia-smi -i {g.index} -ac <mem>,{g.max_clock_mhz} (nvidia-smi -q -d "
                                        "SUPPORTED_CLOCKS lists the pairs), or lock them: nvidia-smi -lgc"))
        else:
            checks.append(Check(f"{tag} clocks", f"application clock {g.clock_mhz} MHz (the maximum)", "ok"))
        if None in (g.pcie_gen, g.max_pcie_gen, g.pcie_width, g.max_pcie_width):
            checks.append(Check(f"{tag} pcie", "unreadable", "unknown"))
        else:
            reading = f"gen {g.pcie_gen} x{g.pcie_width} (max gen {g.max_pcie_gen} x{g.max_pcie_width})"
            assert g.pcie_width is not None and g.max_pcie_width is not None
            assert g.pcie_gen is not None and g.max_pcie_gen is not None
            if g.pcie_width < g.max_pcie_width or g.pcie_gen < g.max_pcie_gen:
                checks.append(Check(f"{tag} pcie", reading, "warn",
                                    "read it under load (an idle link trains down to save power: "
                                    "nvidia-smi -q -d PCI while a copy runs); still short: reseat the card, or "
                                    "move it to a slot whose lanes are not shared"))
            else:
                checks.append(Check(f"{tag} pcie", reading, "ok"))
    if gpus:
        if memlock_soft is None:
            checks.append(Check("gpu memlock", "unreadable", "unknown"))
        elif memlock_soft != resource.RLIM_INFINITY and memlock_soft < need:
            checks.append(Check("gpu memlock", f"{format_bytes(memlock_soft)} < {format_bytes(need)} the pinned "
                                               "transfer buffers need", "warn",
                                "ulimit -l unlimited (docker run --ulimit memlock=-1)"))
        else:
            limit = "unlimited" if memlock_soft == resource.RLIM_INFINITY else format_bytes(memlock_soft)
            checks.append(Check("gpu memlock", f"{limit} (pinned buffers need {format_bytes(need)})", "ok"))
    return checks


def _cpus(cpus: Sequence[int]) -> str:
    return ",".join(map(str, cpus)) or "-"


def visible(root: Path = ROOT) -> bool:
    """Whether an NVIDIA GPU is visible here (its driver's /proc entries or device files)."""
    gpus = root / "proc/driver/nvidia/gpus"
    return (gpus.is_dir() and any(gpus.iterdir())) or (root / "dev/nvidia0").exists()


def check_gpus(root: Path = ROOT, *, nvml: Any = None, limits: Limits = resource.getrlimit,
               pinned_cpus: Sequence[int] | None = None) -> list[Check]:
    """The GPU audit items (none where no GPU is visible and no ``nvml`` is given)."""
    why = ""
    if nvml is None:
        if not visible(root):
            return []
        nvml, why = load_nvml()
        if nvml is None:
            return [Check("gpu", f"not available: {why}", "unknown", NVML_FIX)]
    try:
        gpus = read_gpus(nvml, root)
    except Exception as exc:  # noqa: BLE001 - the audit must not break the run it reports on
        return [Check("gpu", f"not available: NVML failed ({type(exc).__name__}: {exc})", "unknown", NVML_FIX)]
    try:
        soft: int | None = limits(resource.RLIMIT_MEMLOCK)[0]
    except (OSError, ValueError):
        soft = None
    pinned = list(pinned_cpus) if pinned_cpus is not None else sorted(os.sched_getaffinity(0))[-1:]
    return gpu_checks(gpus, pinned_cpus=pinned, memlock_soft=soft)


def local_cpu(root: Path = ROOT, bus_id: str | None = None,
              allowed: Callable[[], set[int]] = lambda: os.sched_getaffinity(0)) -> int | None:
    """A CPU local to the GPU (``bus_id`` in sysfs form; default: the current CUDA device's, else
    the first GPU the driver lists) that this process may run on: the highest-numbered, as
    hostperf's default CPU is. None where the GPU's locality is not known."""
    if bus_id is None:
        bus_id = _current_bus_id() or _first_bus_id(root)
    if bus_id is None:
        return None
    _, cpus = _pci(root, bus_id)
    usable = sorted(set(cpus) & allowed())
    return usable[-1] if usable else None


def _current_bus_id() -> str | None:
    try:
        import torch

        p = torch.cuda.get_device_properties(torch.cuda.current_device())
        return f"{p.pci_domain_id:04x}:{p.pci_bus_id:02x}:{p.pci_device_id:02x}.0"
    except Exception:  # noqa: BLE001 - an older torch without the pci fields, or no device
        return None


def _first_bus_id(root: Path) -> str | None:
    gpus = root / "proc/driver/nvidia/gpus"
    try:
        names = sorted(p.name for p in gpus.iterdir())
    except OSError:
        return None
    return names[0].lower() if names else None
