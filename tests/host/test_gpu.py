"""The GPU host audit on a fake NVML and a fake sysfs tree (no GPU here): each item read, judged
and given its fix; 'not available' without NVML where a GPU is visible; nothing without a GPU."""
from __future__ import annotations

import resource
import types
from pathlib import Path
from typing import Any

import pytest

from pytest_hostperf.host import audit, gpu


def _nvml(*, persistence: int = 1, clock: int = 1980, max_clock: int = 1980, gen: int = 5, width: int = 16,
          fail: tuple[str, ...] = ()) -> Any:
    def q(name: str, value: Any) -> Any:
        def call(*_: Any) -> Any:
            if name in fail:
                raise RuntimeError(f"NVML: {name} not supported")
            return value
        return call

    return types.SimpleNamespace(
        NVML_CLOCK_GRAPHICS=0,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: f"h{i}",
        nvmlDeviceGetName=lambda h: b"NVIDIA H200",
        nvmlDeviceGetPciInfo=lambda h: types.SimpleNamespace(busId=b"00000000:3B:00.0"),
        nvmlDeviceGetPersistenceMode=q("persistence", persistence),
        nvmlDeviceGetApplicationsClock=q("clock", clock),
        nvmlDeviceGetMaxClockInfo=q("max_clock", max_clock),
        nvmlDeviceGetCurrPcieLinkGeneration=q("gen", gen),
        nvmlDeviceGetMaxPcieLinkGeneration=q("max_gen", 5),
        nvmlDeviceGetCurrPcieLinkWidth=q("width", width),
        nvmlDeviceGetMaxPcieLinkWidth=q("max_width", 16),
    )


def _root(tmp_path: Path, node: str = "1", cpus: str = "8-15") -> Path:
    dev = tmp_path / "sys/bus/pci/devices/0000:3b:00.0"
    dev.mkdir(parents=True)
    (dev / "numa_node").write_text(f"{node}\n")
    (dev / "local_cpulist").write_text(f"{cpus}\n")
    return tmp_path


def _by(checks: list[audit.Check]) -> dict[str, audit.Check]:
    return {c.name: c for c in checks}


def test_a_tuned_gpu_host_reads_ok_and_names_the_gpus_node_and_link(tmp_path: Path) -> None:
    checks = _by(gpu.check_gpus(_root(tmp_path), nvml=_nvml(), pinned_cpus=[9],
                                limits=lambda _: (resource.RLIM_INFINITY, resource.RLIM_INFINITY)))
    assert [c.verdict for c in checks.values()] == ["ok"] * 5
    assert checks["gpu0 numa"].reading == "NVIDIA H200 at 0000:3b:00.0 on node 1 (CPUs 8,9,10,11,12,13,14,15); " \
                                          "hostperf pins to 9"
    assert checks["gpu0 pcie"].reading == "gen 5 x16 (max gen 5 x16)"


def test_each_untuned_item_warns_with_its_fix(tmp_path: Path) -> None:
    checks = _by(gpu.check_gpus(_root(tmp_path), nvml=_nvml(persistence=0, clock=1200, gen=3, width=8),
                                pinned_cpus=[1], limits=lambda _: (64 << 20, 64 << 20)))
    assert {n: c.verdict for n, c in checks.items()} == {n: "warn" for n in checks}
    assert "--hostperf-cpus=15" in (checks["gpu0 numa"].advice or "")  # a CPU of the GPU's node
    assert "nvidia-smi -i 0 -pm 1" in (checks["gpu0 persistence"].advice or "")
    assert checks["gpu0 clocks"].reading == "application clock 1200 MHz of 1980 MHz"
    assert checks["gpu0 pcie"].reading == "gen 3 x8 (max gen 5 x16)"
    assert "ulimit -l unlimited" in (checks["gpu memlock"].advice or "")


def test_unsupported_queries_read_unknown_never_invented(tmp_path: Path) -> None:
    checks = _by(gpu.check_gpus(_root(tmp_path, node="-1", cpus=""), nvml=_nvml(fail=("persistence", "clock", "gen")),
                                pinned_cpus=[1], limits=lambda _: (1 << 30, 1 << 30)))
    assert {n: c.verdict for n, c in checks.items()} == {"gpu0 numa": "unknown", "gpu0 persistence": "unknown",
                                                         "gpu0 clocks": "unknown", "gpu0 pcie": "unknown",
                                                         "gpu memlock": "ok"}


def test_without_nvml_a_visible_gpu_is_not_available_and_no_gpu_adds_nothing(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert gpu.check_gpus(tmp_path) == []  # no GPU visible: no items
    (tmp_path / "proc/driver/nvidia/gpus/0000:3b:00.0").mkdir(parents=True)
    monkeypatch.setattr(gpu, "load_nvml", lambda: (None, "nvidia-ml-py is not installed"))
    (c,) = gpu.check_gpus(tmp_path)
    assert (c.name, c.verdict, c.reading) == ("gpu", "unknown", "not available: nvidia-ml-py is not installed")
    assert "pytest-hostperf[gpu]" in (c.advice or "")
    assert "gpu" not in [x.name for x in audit.audit(Path("/nonexistent-root"))]  # the CPU audit alone


def test_cuda_measurements_are_pinned_to_a_cpu_local_to_the_gpu(tmp_path: Path) -> None:
    root = _root(tmp_path, cpus="8-11")
    assert gpu.local_cpu(root, "0000:3b:00.0", allowed=lambda: {0, 1, 9, 10}) == 10
    assert gpu.local_cpu(root, "0000:3b:00.0", allowed=lambda: {0, 1}) is None  # none of its CPUs allowed
    (root / "proc/driver/nvidia/gpus/0000:3b:00.0").mkdir(parents=True)
    assert gpu.local_cpu(root, allowed=lambda: {8}) == 8  # the first GPU the driver lists
    assert gpu.sysfs_bus_id("00000000:3B:00.0") == "0000:3b:00.0"
    assert gpu.parse_cpulist("0-2,8,10-11") == (0, 1, 2, 8, 10, 11)
