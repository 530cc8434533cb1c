"""Fake /proc and /sys trees for the host tests: a 2-vCPU VM like the development host and
a tuned 4-core box, written under a tmp_path that then stands for ``/``."""
from __future__ import annotations

from pathlib import Path

GiB = 1 << 30
CAPS_ALL = "000001fffeffffff"   # root on the dev VM: CAP_SYS_NICE and CAP_IPC_LOCK held
CAPS_NONE = "0000000000000000"


def cpuinfo(n: int, model: str, mhz: float = 2596.14) -> str:
    return "\n".join(f"processor\t: {i}\nmodel name\t: {model}\ncpu MHz\t\t: {mhz}\n"
                     f"physical id\t: 0\ncore id\t\t: {i}\n" for i in range(n))


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def vm_files(**overrides: str) -> dict[str, str]:
    """Like the 2-vCPU EPYC dev VM: no cpufreq, swappiness 60, THP madvise, no isolation."""
    files = {
        "proc/cpuinfo": cpuinfo(2, "AMD EPYC"),
        "proc/sys/vm/swappiness": "60\n",
        "proc/swaps": "Filename\tType\tSize\tUsed\tPriority\n",
        "proc/sys/kernel/sched_rt_runtime_us": "950000\n",
        "proc/sys/kernel/sched_rt_period_us": "1000000\n",
        "proc/sys/kernel/osrelease": "6.18.44-fc\n",
        "proc/cmdline": "console=ttyS0 quiet panic=1\n",
        "proc/meminfo": "MemTotal: 1000 kB\nHugePages_Total:       0\nHugepagesize:    2048 kB\n",
        "proc/loadavg": "0.15 0.17 0.06 1/81 4342\n",
        "proc/self/status": f"Name:\tpython\nVmLck:\t0 kB\nCapEff:\t{CAPS_ALL}\n",
        "sys/kernel/mm/transparent_hugepage/enabled": "always [madvise] never\n",
        "sys/kernel/mm/transparent_hugepage/defrag": "always defer defer+madvise [madvise] never\n",
        "sys/devices/system/cpu/online": "0-1\n",
        "sys/devices/system/cpu/isolated": "\n",
        "sys/devices/system/cpu/smt/active": "0\n",
        "sys/devices/system/cpu/smt/control": "notsupported\n",
        "sys/devices/system/node/node0/cpulist": "0-1\n",
    }
    files.update(overrides)
    return files


def tuned_files() -> dict[str, str]:
    files = vm_files(**{
        "proc/cpuinfo": cpuinfo(4, "Intel(R) Xeon(R) Gold 6354 CPU @ 3.00GHz", 2999.0),
        "proc/sys/vm/swappiness": "1\n",
        "proc/cmdline": "ro quiet isolcpus=2-3 nohz_full=2-3 rcu_nocbs=2-3\n",
        "sys/devices/system/cpu/isolated": "2-3\n",
        "sys/devices/system/cpu/nohz_full": "2-3\n",
        "sys/kernel/mm/transparent_hugepage/enabled": "always madvise [never]\n",
        "sys/devices/system/cpu/online": "0-3\n",
    })
    for cpu in range(4):
        base = f"sys/devices/system/cpu/cpu{cpu}/cpufreq/"
        files[base + "scaling_governor"] = "performance\n"
        files[base + "scaling_cur_freq"] = "2990000\n"
        files[base + "cpuinfo_min_freq"] = "800000\n"
        files[base + "cpuinfo_max_freq"] = "3000000\n"
    return files


def garbage_tree(root: Path) -> Path:
    """Garbage, empty files, non-UTF-8 bytes and directories where files belong."""
    make_tree(root, {
        "proc/sys/vm/swappiness": "sixty\n",
        "proc/sys/kernel/sched_rt_runtime_us": "\n",
        "proc/cpuinfo": "\x00\x01garbage without colons\n",
        "proc/loadavg": "high\n",
        "sys/kernel/mm/transparent_hugepage/enabled": "",
        "sys/devices/system/cpu/smt/active": "maybe\n",
    })
    (root / "proc/meminfo").mkdir(parents=True)
    (root / "proc/self/status").mkdir(parents=True)
    (root / "proc/swaps").write_bytes(b"\xff\xfe not utf-8")
    return root
