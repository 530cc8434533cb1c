"""Tuning audit against fake /proc and /sys trees (and once the real host)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from fake_host import CAPS_NONE, GiB, garbage_tree, make_tree, tuned_files, vm_files

from pytest_hostperf.host.audit import (
    Check,
    audit,
    audit_summary,
    audit_to_json,
    check_cpu_freq,
    check_dev_shm,
    check_governor,
    check_hugepages,
    check_isolation,
    check_load,
    check_memlock,
    check_numa,
    check_rt_throttling,
    check_rtprio,
    check_smt,
    check_swappiness,
    check_thp,
    render_audit,
)

CHECK_NAMES = ["swappiness", "memlock", "dev_shm", "hugepages", "thp", "governor", "isolation",
               "smt", "numa", "rt_throttling", "rtprio", "load", "cpu_freq"]


def fake_limits(memlock: int = 8 << 20, rtprio: int = 0):
    import resource

    values = {resource.RLIMIT_MEMLOCK: (memlock, memlock), resource.RLIMIT_RTPRIO: (rtprio, rtprio)}
    return lambda which: values[which]


def fake_statvfs(size: int):
    return lambda path: SimpleNamespace(f_blocks=size // 4096, f_frsize=4096)


def run_audit(root: Path, *, limits=None, shm: int | None = 2 * GiB) -> dict[str, Check]:
    """Audit ``root`` with faked process state (``shm=None``: the real statvfs of root/dev/shm)."""
    checks = audit(root, limits=limits or fake_limits(),
                   statvfs=os.statvfs if shm is None else fake_statvfs(shm), euid=lambda: 1000)
    assert [c.name for c in checks] == CHECK_NAMES
    return {c.name: c for c in checks}


# --------------------------------------------------------------------------- whole trees


def test_vm_without_cpufreq(tmp_path: Path) -> None:
    checks = run_audit(make_tree(tmp_path, vm_files()))
    verdicts = {name: c.verdict for name, c in checks.items()}
    assert verdicts == {
        "swappiness": "warn", "memlock": "ok", "dev_shm": "ok", "hugepages": "ok", "thp": "ok",
        "governor": "unknown", "isolation": "warn", "smt": "ok", "numa": "ok",
        "rt_throttling": "ok", "rtprio": "ok", "load": "ok", "cpu_freq": "unknown",
    }
    # Never invent a governor or a maximum clock that the host does not expose.
    assert checks["governor"].reading == "no cpufreq (VM or driver absent)"
    assert checks["governor"].advice is None
    assert checks["cpu_freq"].reading == "2596 MHz (max unknown)"
    assert checks["memlock"].reading == "8 MiB (CAP_IPC_LOCK held: the limit does not apply)"
    assert checks["rtprio"].reading == "0 (CAP_SYS_NICE held)"
    assert checks["rt_throttling"].reading == (
        "950000 of 1000000 us (FIFO tasks stopped for 50 ms/s when they saturate a core)")
    assert checks["thp"].reading == "madvise (defrag madvise)"
    assert "isolcpus=N nohz_full=N rcu_nocbs=N" in checks["isolation"].advice
    assert checks["load"].reading == "0.15 0.17 0.06 on 2 CPUs"
    assert audit_summary(list(checks.values())) == (
        "audit: 9 ok, 2 warn (swappiness 60, isolation none), 2 unknown (governor, cpu_freq)")


def test_tuned_box(tmp_path: Path) -> None:
    checks = run_audit(make_tree(tmp_path, tuned_files()), limits=fake_limits(1 << 62, 99))
    assert all(c.verdict == "ok" for c in checks.values()), render_audit(list(checks.values()))
    assert all(c.advice is None for c in checks.values())
    assert checks["governor"].reading == "performance"
    assert checks["swappiness"].reading == "1 (no swap active now)"
    assert checks["isolation"].reading == "isolcpus 2-3, nohz_full 2-3"
    assert checks["thp"].reading == "never (defrag madvise)"
    assert checks["cpu_freq"].reading == "2990 MHz of 3000 MHz max"
    assert checks["load"].reading.endswith("on 4 CPUs")
    assert audit_summary(list(checks.values())) == "audit: 13 ok"


def test_missing_files_everywhere_give_unknown_never_an_exception(tmp_path: Path) -> None:
    def no_limits(which: int):
        raise OSError("getrlimit unavailable")

    checks = run_audit(tmp_path, limits=no_limits, shm=None)
    assert {c.verdict for c in checks.values()} == {"unknown"}, render_audit(list(checks.values()))
    assert all(c.advice is None for c in checks.values())
    assert audit_summary(list(checks.values())).startswith("audit: 0 ok, 13 unknown (swappiness, ")


def test_garbage_and_directories_where_files_belong_are_unknown(tmp_path: Path) -> None:
    checks = run_audit(garbage_tree(tmp_path))
    for name in ("swappiness", "rt_throttling", "hugepages", "thp", "smt", "load", "cpu_freq"):
        assert checks[name].verdict == "unknown", name
    assert checks["memlock"].verdict == "warn"   # 8 MiB and no CAP_IPC_LOCK readable


def test_a_check_that_breaks_unexpectedly_reads_unknown(tmp_path: Path) -> None:
    def broken(which: int):
        raise RuntimeError("boom")

    checks = run_audit(make_tree(tmp_path, vm_files()), limits=broken)
    assert checks["memlock"] == Check("memlock", "unreadable (RuntimeError: boom)", "unknown")
    assert checks["swappiness"].verdict == "warn"


# --------------------------------------------------------------------------- single checks


def test_swappiness_60_warns_with_the_fix(tmp_path: Path) -> None:
    make_tree(tmp_path, {"proc/sys/vm/swappiness": "60\n"})
    check = check_swappiness(tmp_path)
    assert (check.reading, check.verdict) == ("60", "warn")
    assert check.advice == "sysctl -w vm.swappiness=1 (persist in /etc/sysctl.d/)"
    make_tree(tmp_path, {"proc/sys/vm/swappiness": "10\n", "proc/swaps": "Filename\n/swap file 1 0 -2\n"})
    assert check_swappiness(tmp_path) == Check("swappiness", "10 (swap active)", "ok")


def test_rt_throttling_off_warns_that_fifo_is_refused(tmp_path: Path) -> None:
    make_tree(tmp_path, {"proc/sys/kernel/sched_rt_runtime_us": "-1\n"})
    check = check_rt_throttling(tmp_path)
    assert (check.reading, check.verdict) == ("-1 (off)", "warn")
    assert "refuses SCHED_FIFO" in check.advice and "sched_rt_runtime_us=950000" in check.advice


@pytest.mark.parametrize(("files", "verdict", "reading"), [
    ({"cpu0": "powersave", "cpu1": "performance"}, "warn", "performance, powersave"),
    ({"cpu0": "schedutil"}, "warn", "schedutil"),
    ({"cpu0": "performance", "cpu10": "performance"}, "ok", "performance"),
])
def test_governor(tmp_path: Path, files: dict[str, str], verdict: str, reading: str) -> None:
    make_tree(tmp_path, {f"sys/devices/system/cpu/{cpu}/cpufreq/scaling_governor": f"{g}\n"
                         for cpu, g in files.items()})
    check = check_governor(tmp_path)
    assert (check.verdict, check.reading) == (verdict, reading)
    if verdict == "warn":
        assert check.advice == "cpupower frequency-set -g performance"


def test_thp_always_warns(tmp_path: Path) -> None:
    make_tree(tmp_path, {"sys/kernel/mm/transparent_hugepage/enabled": "[always] madvise never\n"})
    check = check_thp(tmp_path)
    assert (check.reading, check.verdict) == ("always", "warn")
    assert "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled" in check.advice
    make_tree(tmp_path, {"sys/kernel/mm/transparent_hugepage/enabled": "always [madvise] never\n",
                         "sys/kernel/mm/transparent_hugepage/defrag": "[always] defer never\n"})
    assert check_thp(tmp_path).verdict == "warn"   # direct compaction on fault


def test_smt_numa_isolation_and_hugepages(tmp_path: Path) -> None:
    make_tree(tmp_path, {
        "sys/devices/system/cpu/smt/active": "1\n",
        "sys/devices/system/cpu/smt/control": "on\n",
        "sys/devices/system/node/node0/cpulist": "0-7\n",
        "sys/devices/system/node/node1/cpulist": "8-15\n",
        "sys/devices/system/node/has_cpu": "0-1\n",   # not a node
        "proc/cmdline": "ro nohz_full=5\n",
        "sys/devices/system/cpu/nohz_full": "(null)\n",
        "proc/meminfo": "HugePages_Total:     512\nHugepagesize:    2048 kB\n",
    })
    smt = check_smt(tmp_path)
    assert (smt.reading, smt.verdict) == ("on (control on)", "warn") and "smt/control" in smt.advice
    numa = check_numa(tmp_path)
    assert (numa.reading, numa.verdict) == ("2 nodes", "warn") and "numactl" in numa.advice
    assert check_isolation(tmp_path) == Check("isolation", "isolcpus none, nohz_full 5", "ok")
    assert check_hugepages(tmp_path) == Check("hugepages", "512 x 2048 kB reserved", "ok")


def test_process_limits_are_injected(tmp_path: Path) -> None:
    make_tree(tmp_path, {"proc/self/status": f"CapEff:\t{CAPS_NONE}\n"})
    memlock = check_memlock(tmp_path, limits=fake_limits(memlock=64 << 10))
    assert (memlock.reading, memlock.verdict) == ("64 KiB", "warn")
    assert "ulimit -l unlimited" in memlock.advice and "--ulimit memlock=-1" in memlock.advice
    assert check_memlock(tmp_path, limits=fake_limits(memlock=1 << 30)).verdict == "ok"
    import resource

    unlimited = check_memlock(tmp_path, limits=fake_limits(memlock=resource.RLIM_INFINITY))
    assert (unlimited.reading, unlimited.verdict) == ("unlimited", "ok")

    rtprio = check_rtprio(tmp_path, limits=fake_limits(rtprio=0), euid=lambda: 0)
    assert (rtprio.reading, rtprio.verdict) == ("0", "warn")   # root in a container, no SYS_NICE
    assert "ulimit -r 99" in rtprio.advice and "--cap-add SYS_NICE" in rtprio.advice
    assert check_rtprio(tmp_path, limits=fake_limits(rtprio=99)).verdict == "ok"

    shm = check_dev_shm(tmp_path, statvfs=fake_statvfs(64 << 20))
    assert (shm.reading, shm.verdict) == ("64 MiB", "warn") and "--shm-size" in shm.advice


def test_load_and_cpu_freq_are_injected(tmp_path: Path) -> None:
    busy = check_load(tmp_path, loadavg=(3.5, 2.0, 1.0), cpu_count=2)
    assert (busy.reading, busy.verdict) == ("3.50 2.00 1.00 on 2 CPUs", "warn")
    assert check_load(tmp_path, loadavg=(1.0, 1.0, 1.0), cpu_count=2).verdict == "ok"
    assert check_load(tmp_path, loadavg=(1.0, 1.0, 1.0)).verdict == "unknown"
    slow = check_cpu_freq(tmp_path, freq=(1200.0, 800.0, 3000.0))
    assert (slow.reading, slow.verdict) == ("1200 MHz of 3000 MHz max", "warn")
    assert check_cpu_freq(tmp_path, freq=(2950.0, 800.0, 3000.0)).verdict == "ok"


# --------------------------------------------------------------------------- rendering


def test_summary_is_one_line_and_table_and_json_carry_everything(tmp_path: Path) -> None:
    checks = audit(make_tree(tmp_path, vm_files(**{"proc/sys/kernel/sched_rt_runtime_us": "-1"})),
                   limits=fake_limits(), statvfs=fake_statvfs(GiB), euid=lambda: 0)
    summary = audit_summary(checks)
    assert "\n" not in summary and summary.startswith("audit: ")
    assert "rt_throttling -1" in summary and "swappiness 60" in summary

    table = render_audit(checks).splitlines()
    assert table[0].split() == ["check", "reading", "verdict", "advice"]
    assert len(table) == 2 + len(checks)
    swap_row = next(line for line in table if line.startswith("swappiness"))
    assert "60" in swap_row and "warn" in swap_row and "sysctl -w vm.swappiness=1" in swap_row
    # columns line up: every verdict starts at the same offset
    offsets = {line.index(c.verdict, len(c.name) + len(c.reading)) for line, c in zip(table[2:], checks)}
    assert len(offsets) == 1

    data = audit_to_json(checks)
    assert json.loads(json.dumps(data)) == data
    assert data[0] == {"name": "swappiness", "reading": "60 (no swap active now)", "verdict": "warn",
                       "advice": "sysctl -w vm.swappiness=1 (persist in /etc/sysctl.d/)"}
    assert audit_summary([]) == "audit: 0 ok"


# --------------------------------------------------------------------------- the real host


def test_real_host_audit() -> None:
    checks = {c.name: c for c in audit()}
    assert list(checks) == CHECK_NAMES
    assert all(c.verdict in ("ok", "warn", "unknown") for c in checks.values())
    try:
        swappiness = int(Path("/proc/sys/vm/swappiness").read_text())
    except (OSError, ValueError):
        swappiness = None
    if swappiness is None:
        assert checks["swappiness"].verdict == "unknown"
    else:
        assert checks["swappiness"].verdict == ("warn" if swappiness > 10 else "ok")
        assert checks["swappiness"].reading.startswith(str(swappiness))
    if not list(Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor")):
        assert checks["governor"].verdict == "unknown"
