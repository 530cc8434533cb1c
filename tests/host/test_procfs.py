"""The shared /proc and /sys readers: None for anything unreadable, never an exception."""
from __future__ import annotations

from pathlib import Path

import pytest
from fake_host import CAPS_ALL, make_tree, tuned_files, vm_files

from pytest_hostperf.host import procfs


def test_unreadable_files_read_as_none(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "binary").write_bytes(b"\xff\xfe not utf-8")
    (tmp_path / "text").write_text("  42\n")
    assert procfs.read(tmp_path, "missing") is None
    assert procfs.read(tmp_path, "dir") is None
    assert procfs.read(tmp_path, "binary") is None
    assert procfs.read(tmp_path, "text") == "42" and procfs.read_int(tmp_path, "text") == 42
    (tmp_path / "text").write_text("forty-two\n")
    assert procfs.read_int(tmp_path, "text") is None


def test_status_fields_and_capabilities(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text(f"Name:\tpython\nVmLck:\t  128 kB\nCapEff:\t{CAPS_ALL}\n")
    assert procfs.status_field_kib(status, "VmLck") == 128
    assert procfs.status_field_kib(status, "VmRSS") is None
    caps = procfs.effective_capabilities(status)
    assert caps is not None and caps >> procfs.CAP_SYS_NICE & 1 and caps >> procfs.CAP_IPC_LOCK & 1
    assert procfs.effective_capabilities(tmp_path / "missing") is None
    assert procfs.status_field_kib(tmp_path / "missing", "VmLck") is None


@pytest.mark.parametrize(("text", "chosen"), [
    ("always [madvise] never", "madvise"), ("[always] madvise never", "always"),
    ("madvise", "madvise"), ("", None), (None, None),
])
def test_selected_value_of_a_sysfs_choice(text: str | None, chosen: str | None) -> None:
    assert procfs.selected(text) == chosen


def test_load_and_clock_from_fake_trees(tmp_path: Path) -> None:
    vm = make_tree(tmp_path / "vm", vm_files())
    assert procfs.read_loadavg(vm) == (0.15, 0.17, 0.06)
    assert procfs.read_cpu_freq(vm) == pytest.approx((2596.14, 0.0, 0.0))  # cpuinfo: no max
    tuned = make_tree(tmp_path / "tuned", tuned_files())
    assert procfs.read_cpu_freq(tuned) == pytest.approx((2990.0, 800.0, 3000.0))  # cpufreq kHz
    assert procfs.read_loadavg(make_tree(tmp_path / "bad", {"proc/loadavg": "high\n"})) is None
    assert procfs.read_cpu_freq(tmp_path / "empty") is None


def test_topology_readers(tmp_path: Path) -> None:
    root = make_tree(tmp_path, tuned_files())
    assert procfs.logical_cpus(root) == 4 and procfs.numa_nodes(root) == 1
    assert procfs.governors(root) == {f"cpu{i}": "performance" for i in range(4)}
    assert len(procfs.cpuinfo_blocks(root)) == 4
    assert procfs.numa_nodes(tmp_path / "empty") is None and procfs.governors(tmp_path / "empty") == {}
    assert procfs.is_real(Path("/")) and not procfs.is_real(root)
