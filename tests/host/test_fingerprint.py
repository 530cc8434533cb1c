"""Host fingerprint against fake /proc and /sys trees (and once the real host)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from fake_host import garbage_tree, make_tree, tuned_files, vm_files

from pytest_hostperf.host.fingerprint import fingerprint

FINGERPRINT_KEYS = {"cpu_model", "logical_cpus", "physical_cores", "smt", "numa_nodes", "arch",
                    "kernel", "python", "python_implementation", "numpy", "torch", "cuda_device",
                    "governor", "rt_runtime_us"}


def test_vm_without_cpufreq(tmp_path: Path) -> None:
    fp = fingerprint(make_tree(tmp_path, vm_files()))
    assert fp["governor"] is None and fp["cpu_model"] == "AMD EPYC"
    assert (fp["logical_cpus"], fp["physical_cores"], fp["smt"], fp["numa_nodes"]) == (2, 2, False, 1)
    assert (fp["kernel"], fp["rt_runtime_us"]) == ("6.18.44-fc", 950000)


def test_tuned_box(tmp_path: Path) -> None:
    fp = fingerprint(make_tree(tmp_path, tuned_files()))
    assert fp["governor"] == "performance" and fp["logical_cpus"] == 4
    assert str(fp["cpu_model"]).startswith("Intel(R) Xeon(R) Gold 6354")


def test_missing_files_everywhere_give_none_never_an_exception(tmp_path: Path) -> None:
    fp = fingerprint(tmp_path)
    assert set(fp) == FINGERPRINT_KEYS
    for key in ("cpu_model", "logical_cpus", "physical_cores", "smt", "numa_nodes", "kernel",
                "governor", "rt_runtime_us"):
        assert fp[key] is None, key
    json.dumps(fp)


def test_garbage_and_directories_where_files_belong_are_none(tmp_path: Path) -> None:
    fp = fingerprint(garbage_tree(tmp_path))
    assert fp["rt_runtime_us"] is None and fp["smt"] is None and fp["cpu_model"] is None
    json.dumps(fp)


def test_rt_throttling_off_reads_minus_one(tmp_path: Path) -> None:
    make_tree(tmp_path, {"proc/sys/kernel/sched_rt_runtime_us": "-1\n"})
    assert fingerprint(tmp_path)["rt_runtime_us"] == -1


@pytest.mark.parametrize("files", [
    {"cpu0": "powersave", "cpu1": "performance"},
    {"cpu0": "schedutil"},
    {"cpu0": "performance", "cpu10": "performance"},
])
def test_governor_is_cpu0s(tmp_path: Path, files: dict[str, str]) -> None:
    make_tree(tmp_path, {f"sys/devices/system/cpu/{cpu}/cpufreq/scaling_governor": f"{g}\n"
                         for cpu, g in files.items()})
    assert fingerprint(tmp_path)["governor"] == files["cpu0"]


def test_smt_and_numa_from_sysfs(tmp_path: Path) -> None:
    make_tree(tmp_path, {
        "sys/devices/system/cpu/smt/active": "1\n",
        "sys/devices/system/node/node0/cpulist": "0-7\n",
        "sys/devices/system/node/node1/cpulist": "8-15\n",
        "sys/devices/system/node/has_cpu": "0-1\n",   # not a node
    })
    fp = fingerprint(tmp_path)
    assert (fp["smt"], fp["numa_nodes"]) == (True, 2)


def test_logical_cpus_from_sysfs_online_when_cpuinfo_has_none(tmp_path: Path) -> None:
    make_tree(tmp_path, {"sys/devices/system/cpu/online": "0-3,6\n"})
    assert fingerprint(tmp_path)["logical_cpus"] == 5
    make_tree(tmp_path, {"sys/devices/system/cpu/online": "garbage\n"})
    assert fingerprint(tmp_path)["logical_cpus"] is None


def test_physical_cores_from_sysfs_topology_when_cpuinfo_has_none(tmp_path: Path) -> None:
    # arm64 /proc/cpuinfo has no "core id"; SMT-2 topology: 4 logical CPUs, 2 cores.
    files = {"proc/cpuinfo": "\n".join(f"processor\t: {i}\nBogoMIPS\t: 50.00\n" for i in range(4))}
    for cpu in range(4):
        files[f"sys/devices/system/cpu/cpu{cpu}/topology/core_id"] = f"{cpu // 2}\n"
        files[f"sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id"] = "0\n"
    fp = fingerprint(make_tree(tmp_path, files))
    assert (fp["logical_cpus"], fp["physical_cores"], fp["smt"]) == (4, 2, True)
    assert fp["cpu_model"] is None


def test_real_host() -> None:
    torch_was_imported = "torch" in sys.modules
    fp = fingerprint()
    assert set(fp) == FINGERPRINT_KEYS
    json.dumps(fp)
    assert fp["logical_cpus"] == os.cpu_count()
    assert fp["python"] == ".".join(map(str, sys.version_info[:3]))
    assert isinstance(fp["numpy"], str)
    # Reading the torch version must never import torch (it takes seconds).
    assert ("torch" in sys.modules) is torch_was_imported
    if not torch_was_imported:
        assert fp["cuda_device"] is None
