"""timer="cuda" on a fake CUDA surface: the event ring, the block loop, the sampling mode, the
fixture's error without a device. (No GPU here: the real surface runs in scripts/device-check.)"""
from __future__ import annotations

import sys
import types
from array import array
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.measure import device, sampling


class FakeCuda:
    """torch.cuda's four names over a fake device clock: each call of ``work`` advances it by
    ``step_ns``; an event's record() stamps the device clock; elapsed_time is in ms."""

    def __init__(self, step_ns: float = 5000.0) -> None:
        self.now = 0.0
        self.step_ns = step_ns
        self.made = 0
        self.log: list[str] = []
        fake = self

        class Event:
            def __init__(self, enable_timing: bool = False) -> None:
                assert enable_timing
                fake.made += 1
                self.t: float | None = None

            def record(self, stream: Any = None) -> None:
                self.t = fake.now

            def synchronize(self) -> None:
                fake.log.append("event.sync")

            def elapsed_time(self, end: Any) -> float:
                assert self.t is not None and end.t is not None
                return (end.t - self.t) / 1e6

        self.Event = Event

    def synchronize(self) -> None:
        self.log.append("sync")

    def work(self) -> None:
        self.now += self.step_ns


def test_the_ring_is_made_before_the_block_and_read_after_one_wait() -> None:
    cuda = FakeCuda(step_ns=7000)
    ring = device.EventRing(cuda, 8)  # type: ignore[arg-type]
    assert cuda.made == 16
    wall = array("q", bytes(8 * 8))
    end = device.block_cuda(cuda.work, (), ring, wall, 0, 5, deadline=10**18, clock=iter(range(0, 1000, 10)).__next__)
    assert end == 5 and cuda.made == 16  # no event made in the timed loop
    assert list(wall[:5]) == [10] * 5  # the host clock around each call
    assert np.allclose(ring.elapsed_ns(5), 7000)
    assert cuda.log == ["event.sync"]  # one wait per block, not per call
    with pytest.raises(InvalidArgument, match="size must be >= 1"):
        device.EventRing(cuda, 0)  # type: ignore[arg-type]


def test_a_block_never_overruns_its_ring() -> None:
    cuda = FakeCuda()
    ring = device.EventRing(cuda, 3)  # type: ignore[arg-type]
    wall = array("q", bytes(8 * 10))
    assert device.block_cuda(cuda.work, (), ring, wall, 2, 10, deadline=10**18, clock=lambda: 0) == 5


class Recorded:
    """Turns that log when each block may start, beside the fake's synchronizes."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def before(self, block: int) -> None:
        self.log.append(f"before{block}")

    def after(self, block: int, elapsed_ns: int) -> None:
        self.log.append(f"after{block}")

    def end(self) -> None:
        self.log.append("end")


def test_sampling_with_cuda_records_device_time_and_wall_time_and_makes_the_context_first() -> None:
    cuda = FakeCuda(step_ns=12_000)
    timer = sampling.TimerInfo("fake", 40.0, 1.0, 2)
    plan = sampling.Plan(samples=60, blocks=3, max_seconds=5.0, warmup_calls=5, warmup_seconds=0.5)
    raw = sampling.sample(cuda.work, plan=plan, timer=timer, turns=Recorded(cuda.log), cuda=cuda)  # type: ignore[arg-type]
    assert raw.timer == "cuda" and raw.batch == 1 and raw.block_sizes == (20, 20, 20)
    assert np.allclose(raw.values, 12_000)  # the device's time, not the host's
    assert raw.wall is not None and raw.wall.size == 60 and np.all(raw.wall > 0)
    # the CUDA context is made before this side's first turn; one wait per block, inside its turn
    assert cuda.log[:2] == ["sync", "before0"]
    blocks = [e for e in cuda.log if e in ("before0", "before1", "before2", "event.sync", "after0", "after1", "after2")]
    assert blocks[-9:] == ["before0", "event.sync", "after0", "before1", "event.sync", "after1", "before2",
                           "event.sync", "after2"]
    merged = sampling.merge(raw, raw)
    assert merged.timer == "cuda" and merged.wall is not None and merged.wall.size == 120
    from pytest_hostperf.pairing.wire import samples_from_wire, samples_to_wire
    back = samples_from_wire(samples_to_wire(raw))  # paired: the wall times travel with the device times
    assert back.timer == "cuda" and back.wall is not None and np.array_equal(back.wall, raw.wall)
    from pytest_hostperf.stats.result import summarize
    res = summarize(raw, nodeid="t.py::t", name="copy")
    assert res.mode == "cuda-events" and res.wall is not None and res.wall["p50"] > 0


def test_cuda_surface_names_what_is_missing_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(InvalidArgument, match=r"timer='cuda'\): torch is not installed; run it on a machine with "
                                              r"an NVIDIA GPU.*pytest-hostperf\[cuda\].*drop timer='cuda'"):
        device.cuda_surface()
    fake = types.ModuleType("torch")
    fake.__version__ = "9.9-cpu"
    fake.cuda = types.SimpleNamespace(is_available=lambda: False)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake)
    with pytest.raises(InvalidArgument, match=r"torch 9.9-cpu sees no CUDA device"):
        device.cuda_surface()


FAKE_TORCH = '''
import sys, types

class _Cuda:
    def __init__(self):
        self.now = 0.0
        cuda = self

        class Event:
            def __init__(self, enable_timing=False):
                self.t = None
            def record(self, stream=None):
                self.t = cuda.now
            def synchronize(self):
                pass
            def elapsed_time(self, end):
                return (end.t - self.t) / 1e6
        self.Event = Event
    def is_available(self):
        return True
    def synchronize(self):
        pass

torch = types.ModuleType("torch")
torch.__version__ = "0.0-fake"
torch.cuda = _Cuda()
sys.modules["torch"] = torch
'''
TESTS = '''
import sys

def kernel():
    sys.modules["torch"].cuda.now += 20_000.0  # 20 us of device time a call

def test_device_time(hostperf):
    r = hostperf(kernel, name="kernel", timer="cuda")
    assert r.mode == "cuda-events" and 19_000 < r.p50 < 21_000 and r.wall["p50"] < 19_000

def test_bad_timer(hostperf):
    hostperf(kernel, timer="gpu")
'''


def test_the_fixture_times_calls_on_the_device_and_reports_both_times(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAKE_TORCH)
    pytester.makepyfile(test_cuda=TESTS)
    res = pytester.runpytest_subprocess("--hostperf", "--hostperf-samples=200", "--hostperf-max-time=0.2",
                                        "--hostperf-json=r.json", "--hostperf-no-confirm")
    res.assert_outcomes(passed=1, failed=1)
    res.stdout.fnmatch_lines(["*timer=...): 'gpu' is not 'wall' or 'cuda'*"])
    import json

    (r,) = json.loads((pytester.path / "r.json").read_text())["results"]
    assert r["mode"] == "cuda-events" and r["wall_ns"]["p50"] < r["p50_ns"]


def test_without_a_device_timer_cuda_is_one_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("import sys\nsys.modules['torch'] = None\n")
    pytester.makepyfile(test_cuda="def test_t(hostperf):\n    hostperf(len, 'x', timer='cuda')\n")
    res = pytester.runpytest_subprocess("--hostperf")
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(["*timer='cuda'): torch is not installed; run it on a machine with an NVIDIA GPU*"])


def test_cuda_measurements_pair_each_side_with_its_own_context(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """--hostperf-against with timer="cuda": each replica session makes its own (fake) CUDA
    context, the device times travel back with their wall times, and the verdict is paired."""
    tests = "import sys\n\ndef test_k(hostperf):\n    hostperf(lambda: setattr(sys.modules['torch'].cuda, " \
            "'now', sys.modules['torch'].cuda.now + 20_000.0), name='kernel', timer='cuda')\n"
    base = tmp_path / "base"
    for where in (pytester.path, base):
        where.mkdir(exist_ok=True)
        (where / "conftest.py").write_text(FAKE_TORCH)
        (where / "test_cuda.py").write_text(tests)
    res = pytester.runpytest_subprocess("--hostperf", f"--hostperf-against={base}", "--hostperf-samples=2000",
                                        "--hostperf-max-time=0.3", "--hostperf-json=r.json")
    res.assert_outcomes(passed=1)
    import json

    (r,) = json.loads((pytester.path / "r.json").read_text())["results"]
    assert r["mode"] == "cuda-events" and r["wall_ns"]["p50"] > 0
    assert r["verdict"]["reason"].startswith(f"paired with {base}: 4 process pair")
    assert r["verdict"]["status"] == "unchanged"  # the same device time on both sides
