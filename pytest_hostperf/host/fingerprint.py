"""What this host is: the fingerprint stored with baselines and shown in the report header
(CPU model and counts, SMT, NUMA, kernel, Python, numpy, torch, CUDA device, governor, RT
throttling).

Every /proc and /sys read goes through ``root`` (default ``/``) so tests hand in fake
trees. A value that cannot be read is None -- never an exception, never an invented
value. Importing this module is cheap: psutil is imported only when reading the real host,
and torch never (its version comes from ``sys.modules`` or the installed metadata).
"""
from __future__ import annotations

import importlib.metadata
import platform
import sys
from pathlib import Path

from pytest_hostperf.host.procfs import (
    ROOT,
    cpuinfo_blocks,
    governors,
    is_real,
    logical_cpus,
    numa_nodes,
    read,
    read_int,
)

__all__ = ["fingerprint"]


def _physical_cores(root: Path) -> int | None:
    if is_real(root):
        try:
            import psutil  # type: ignore[import-untyped, unused-ignore]

            cores = psutil.cpu_count(logical=False)
            return None if cores is None else int(cores)
        except Exception:  # noqa: BLE001, S110 - psutil missing or failing: read the files
            pass
    pairs = {(b.get("physical id"), b.get("core id")) for b in cpuinfo_blocks(root)
             if "core id" in b}
    if pairs:
        return len(pairs)
    # ARM /proc/cpuinfo has no core ids; sysfs topology does.
    cpu_dir = Path(root) / "sys/devices/system/cpu"
    topo = set()
    try:
        for d in cpu_dir.glob("cpu[0-9]*/topology"):
            pkg = read(d, "physical_package_id")
            core = read(d, "core_id")
            if core is not None:
                topo.add((pkg, core))
    except OSError:
        return None
    return len(topo) or None


def _smt(root: Path, logical: int | None, physical: int | None) -> bool | None:
    active = read(root, "sys/devices/system/cpu/smt/active")
    if active in ("0", "1"):
        return active == "1"
    if logical and physical:
        return logical > physical
    return None


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    except Exception:  # noqa: BLE001 - a broken dist-info must not break the header
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
    except Exception:  # noqa: BLE001 - no driver, a CPU build, a broken install: no device
        device = None
    return version, device


def fingerprint(root: Path = ROOT) -> dict[str, object]:
    """What this host is, for baselines and the report header. Keys are always present;
    a value that cannot be read is None. Values are JSON-serialisable.

    Never imports torch: its version comes from ``sys.modules`` or the installed
    metadata, and the CUDA device is reported only if torch is already imported.
    """
    root = Path(root)
    real = is_real(root)
    blocks = cpuinfo_blocks(root)
    model = next((b["model name"] for b in blocks if b.get("model name")), None)
    if model is None and real:
        model = platform.processor() or None
    logical = logical_cpus(root)
    physical = _physical_cores(root)
    govs = governors(root)
    torch_version, cuda_device = _torch_info()
    return {
        "cpu_model": model,
        "logical_cpus": logical,
        "physical_cores": physical,
        "smt": _smt(root, logical, physical),
        "numa_nodes": numa_nodes(root),
        "arch": platform.machine() or None,
        "kernel": (platform.release() or None) if real else read(root, "proc/sys/kernel/osrelease"),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "numpy": _dist_version("numpy"),
        "torch": torch_version,
        "cuda_device": cuda_device,
        "governor": govs.get("cpu0"),
        "rt_runtime_us": read_int(root, "proc/sys/kernel/sched_rt_runtime_us"),
    }
