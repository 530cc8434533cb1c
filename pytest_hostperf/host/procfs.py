"""The small /proc and /sys readers every host module shares.

Each reader takes the file (or a ``root`` standing for ``/``, so tests hand in fake trees)
and gives None for a file that is missing, unreadable, a directory or not text -- never an
exception and never an invented value. The fingerprint, the audit and the host controls
all read through here, so a file reads the same way wherever it is used.

Importing this module is cheap (re and pathlib).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.host.cpus import parse_cpu_list

__all__ = [
    "CAP_IPC_LOCK",
    "CAP_SYS_NICE",
    "ROOT",
    "cpuinfo_blocks",
    "effective_capabilities",
    "governors",
    "is_real",
    "logical_cpus",
    "numa_nodes",
    "read",
    "read_cpu_freq",
    "read_int",
    "read_loadavg",
    "read_text",
    "selected",
    "status_field_kib",
]

ROOT = Path("/")
#: Capability bits (linux/capability.h).
CAP_IPC_LOCK = 14
CAP_SYS_NICE = 23


def read_text(path: Path) -> str | None:
    """Text of ``path`` stripped, or None when missing, unreadable or not UTF-8 text."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="strict").strip()
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def read(root: Path, rel: str) -> str | None:
    """Text of ``root/rel`` stripped, or None (see :func:`read_text`)."""
    return read_text(Path(root) / rel)


def read_int(root: Path, rel: str) -> int | None:
    """The integer in ``root/rel``, or None when unreadable or not an integer."""
    text = read(root, rel)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def is_real(root: Path) -> bool:
    """Whether ``root`` is the real ``/`` (then live calls such as os.cpu_count apply)."""
    try:
        return Path(root).resolve() == ROOT
    except OSError:
        return False


def status_field_kib(status_path: Path, key: str) -> int | None:
    """A ``kB`` field (``VmLck``, ``VmRSS``...) of a /proc/<pid>/status file, in KiB."""
    text = read_text(status_path)
    if text is None:
        return None
    m = re.search(rf"^{re.escape(key)}:\s*(\d+)\s*kB", text, re.MULTILINE)
    return int(m.group(1)) if m else None


def effective_capabilities(status_path: Path) -> int | None:
    """The ``CapEff`` bit mask of a /proc/<pid>/status file, or None when unreadable."""
    text = read_text(status_path)
    if text is None:
        return None
    m = re.search(r"^CapEff:\s*([0-9a-fA-F]+)", text, re.MULTILINE)
    return int(m.group(1), 16) if m else None


def cpuinfo_blocks(root: Path) -> list[dict[str, str]]:
    """/proc/cpuinfo as one ``{field: value}`` dict per processor block."""
    text = read(root, "proc/cpuinfo")
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


def logical_cpus(root: Path) -> int | None:
    """Logical CPUs: os.cpu_count on the real host, else /proc/cpuinfo or sysfs ``online``."""
    if is_real(root):
        return os.cpu_count()
    n = sum(1 for b in cpuinfo_blocks(root) if "processor" in b)
    if n:
        return n
    online = read(root, "sys/devices/system/cpu/online")
    if not online:
        return None
    try:
        return len(parse_cpu_list(online))
    except InvalidArgument:
        return None


def numa_nodes(root: Path) -> int | None:
    """NUMA nodes under /sys/devices/system/node, or None where there are none to see."""
    node_dir = Path(root) / "sys/devices/system/node"
    try:
        n = sum(1 for p in node_dir.iterdir() if re.fullmatch(r"node\d+", p.name))
    except OSError:
        return None
    return n or None


def governors(root: Path) -> dict[str, str]:
    """cpuN -> scaling_governor for every CPU that has cpufreq, in CPU order."""
    out: dict[str, str] = {}
    try:
        paths = sorted((Path(root) / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor"),
                       key=lambda p: int(p.parent.parent.name[3:]))
    except (OSError, ValueError):
        return out
    for p in paths:
        text = read_text(p)
        if text:
            out[p.parent.parent.name] = text
    return out


def selected(text: str | None) -> str | None:
    """The chosen value of a sysfs choice file: ``always [madvise] never`` -> ``madvise``."""
    if text is None:
        return None
    m = re.search(r"\[([^\]]+)\]", text)
    return m.group(1) if m else (text.split()[0] if text.split() else None)


def read_loadavg(root: Path) -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages (/proc/loadavg, else os.getloadavg on the real
    host), or None."""
    text = read(root, "proc/loadavg")
    fields = text.split()[:3] if text else []
    try:
        if len(fields) == 3:
            return float(fields[0]), float(fields[1]), float(fields[2])
    except ValueError:
        pass
    if is_real(root) and hasattr(os, "getloadavg"):
        try:
            return os.getloadavg()
        except OSError:
            return None
    return None


def read_cpu_freq(root: Path) -> tuple[float, float, float] | None:
    """Mean (current, min, max) clock in MHz from cpufreq, else (current, 0, 0) from the
    ``cpu MHz`` lines of /proc/cpuinfo (0: unknown), else None."""
    return _sysfs_freq(root) or _cpuinfo_freq(root)


def _sysfs_freq(root: Path) -> tuple[float, float, float] | None:
    rows = []
    try:
        dirs = sorted((Path(root) / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq"))
    except OSError:
        return None
    for d in dirs:
        cur = read_int(d, "scaling_cur_freq")
        if cur:
            rows.append((cur, read_int(d, "cpuinfo_min_freq") or 0,
                         read_int(d, "cpuinfo_max_freq") or 0))
    if not rows:
        return None
    # cpufreq values are kHz
    cur_mhz, min_mhz, max_mhz = (sum(col) / len(rows) / 1000 for col in zip(*rows))
    return cur_mhz, min_mhz, max_mhz


def _cpuinfo_freq(root: Path) -> tuple[float, float, float] | None:
    mhz = []
    for block in cpuinfo_blocks(root):
        try:
            mhz.append(float(block["cpu MHz"]))
        except (KeyError, ValueError):
            continue
    return (sum(mhz) / len(mhz), 0.0, 0.0) if mhz else None
