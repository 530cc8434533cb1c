"""The mlock guard: its pure bound, the figures it reads, the auto / forced / off modes of the
options and the marker, and end to end a process holding 2 GiB (not locked by default, locked
with --hostperf-mlock and released after), in pytest subprocesses."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.host import control, mlock_guard
from pytest_hostperf.host.mlock_guard import AUTO_MAX, GROWTH_MIN, Decision, decide, growth
from pytest_hostperf.run import options
from pytest_hostperf.run.settings import Controls, MarkerSettings, RunSettings, resolve_controls

MiB = 1 << 20
GiB = 1 << 30
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux (/proc, mlockall)")


# --------------------------------------------------------------------------- the pure bound


def test_a_small_process_is_locked() -> None:
    d = decide(80 * MiB, 20 * GiB)
    assert d == Decision(True, None, None, 80 * MiB + GROWTH_MIN, AUTO_MAX)


def test_two_gib_resident_is_skipped_and_the_reason_names_the_figures() -> None:
    d = decide(2 * GiB + 100 * MiB, 11 * GiB)
    assert not d.lock and d.bound == AUTO_MAX
    assert d.reason == ("mlock skipped: resident 2.1 GiB + 537 MiB growth would exceed the bound of 1.0 GiB "
                        "(at most 1.0 GiB and half the memory available; 11.0 GiB available, "
                        "RLIMIT_MEMLOCK unlimited)")
    assert d.fix is not None and "--hostperf-mlock" in d.fix and "--hostperf-no-mlock" in d.fix


def test_half_the_available_memory_bounds_it() -> None:
    # 100 MiB + 256 MiB growth fits in 1 GiB but not in half of 600 MiB
    d = decide(100 * MiB, 600 * MiB)
    assert not d.lock and d.bound == 300 * MiB and "600 MiB available" in (d.reason or "")
    assert decide(100 * MiB, 800 * MiB).lock
    assert decide(100 * MiB, None).lock and decide(100 * MiB, None).bound == AUTO_MAX
    assert "available memory unknown" in (decide(2 * GiB, None).reason or "")


def test_mappings_mlockall_faults_in_count_not_only_the_resident_pages() -> None:
    d = decide(50 * MiB, 20 * GiB, mapped=900 * MiB)
    assert not d.lock and d.need == 900 * MiB + growth(900 * MiB)
    assert (d.reason or "").startswith(
        "mlock skipped: resident 50 MiB (900 MiB mapped readable or writable, all faulted in by mlockall) + 256 MiB "
        "growth would exceed the bound of 1.0 GiB")
    assert decide(50 * MiB, 20 * GiB, mapped=30 * MiB).need == 50 * MiB + GROWTH_MIN


def test_rlimit_memlock_counts_the_virtual_size_unless_cap_ipc_lock() -> None:
    small = {"mapped": 60 * MiB, "virtual": 400 * MiB}
    d = decide(40 * MiB, 20 * GiB, limit=64 * MiB, **small)
    assert not d.lock
    assert d.reason == ("mlock skipped: mapped 400 MiB + 256 MiB growth would exceed RLIMIT_MEMLOCK 64 MiB "
                        "(the kernel charges every mapping to it, and this process lacks CAP_IPC_LOCK)")
    assert d.fix is not None and "ulimit -l unlimited" in d.fix and "--hostperf-mlock" in d.fix
    assert decide(40 * MiB, 20 * GiB, limit=64 * MiB, cap_ipc_lock=True, **small).lock
    assert decide(40 * MiB, 20 * GiB, limit=1 * GiB, **small).lock
    over = decide(2 * GiB, 20 * GiB, limit=8 * MiB, cap_ipc_lock=True)
    assert "RLIMIT_MEMLOCK 8 MiB, not applying: CAP_IPC_LOCK held" in (over.reason or "")


def test_growth_is_a_quarter_at_least_256_mib() -> None:
    assert growth(0) == growth(1 * GiB) == GROWTH_MIN
    assert growth(4 * GiB) == 1 * GiB


sizes = st.integers(0, 1 << 40)


@given(sizes, st.one_of(st.none(), sizes), st.one_of(st.none(), sizes), st.one_of(st.none(), sizes),
       st.one_of(st.none(), sizes), st.booleans())
def test_decide_locks_exactly_within_the_bound_and_a_smaller_process_no_less(
        resident: int, available: int | None, limit: int | None, mapped: int | None, virtual: int | None,
        cap: bool) -> None:
    d = decide(resident, available, limit=limit, mapped=mapped, virtual=virtual, cap_ipc_lock=cap)
    locked = max(resident, mapped or 0)
    assert d.need == locked + growth(locked)
    assert d.bound == (AUTO_MAX if available is None else min(AUTO_MAX, available // 2))
    charged = max(virtual or 0, locked) + growth(locked)
    assert d.lock is (d.need <= d.bound and (limit is None or cap or charged <= limit))
    assert (d.reason is None) is d.lock and (d.fix is None) is d.lock
    if not d.lock:
        assert d.reason is not None and d.reason.startswith("mlock skipped: ")
    if d.lock:  # halving the process never turns a lock into a skip
        assert decide(resident // 2, available, limit=limit, mapped=None if mapped is None else mapped // 2,
                      virtual=None if virtual is None else virtual // 2, cap_ipc_lock=cap).lock


# --------------------------------------------------------------------------- the figures


def test_accessible_mapped_leaves_out_prot_none_and_device_memory(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    maps.write_text(textwrap.dedent("""\
        00400000-00500000 r-xp 00000000 08:01 1 /usr/bin/python3
        00500000-00600000 rw-p 00000000 00:00 0 [heap]
        10000000-50000000 ---p 00000000 00:00 0
        50000000-50100000 rw-s 00000000 00:05 3 /dev/nvidia0
        60000000-60100000 rw-s 00000000 00:01 4 /dev/zero (deleted)
        70000000-70100000 rw-s 00000000 00:19 5 /dev/shm/hostperf-1-ring
        7ffc0000-7ffd0000 rw-p 00000000 00:00 0 [stack]
        garbage
        """))
    assert mlock_guard.accessible_mapped(maps) == 0x100000 * 4 + 0x10000
    assert mlock_guard.accessible_mapped(tmp_path / "missing") is None


@linux_only
def test_read_figures_of_this_process() -> None:
    f = mlock_guard.read_figures()
    assert 0 < f.resident <= psutil.virtual_memory().total
    assert f.mapped is not None and f.mapped > 0
    assert f.virtual is not None and f.virtual + MiB >= f.mapped  # VmSize: every mapping ([vsyscall] aside)
    assert f.available is not None and f.available > 0
    assert mlock_guard.check(f) == decide(f.resident, f.available, limit=f.limit, mapped=f.mapped,
                                         virtual=f.virtual, cap_ipc_lock=f.cap_ipc_lock)


def test_size_text() -> None:
    assert [mlock_guard.size_text(n) for n in (64 << 10, 512 * MiB, 2 * GiB + 100 * MiB)] == [
        "64 KiB", "512 MiB", "2.1 GiB"]


# --------------------------------------------------------------------------- modes


def test_parse_mlock() -> None:
    assert options.parse_mlock("auto") == "auto" and options.parse_mlock(" AUTO ") == "auto"
    assert options.parse_mlock("true") is True and options.parse_mlock("off") is False
    with pytest.raises(argparse.ArgumentTypeError, match="'maybe' is not auto, true or false"):
        options.parse_mlock("maybe")


def test_marker_over_the_run_and_auto_by_default() -> None:
    run = RunSettings(full=True, save=False, samples=400, max_time=0.3, tolerance=10.0, strict=False, cpus=None,
                      rt=None, mlock="auto", counters=False, noise=False, keep_runs=5,
                      baselines_dir=Path("baselines"), host=None, json_path=None, markdown_path=None, plot_dir=None)
    assert resolve_controls(run, MarkerSettings()).mlock == "auto"
    for given_ in (True, False, "auto"):
        assert resolve_controls(run, MarkerSettings(mlock=given_)) == Controls(None, None, given_, False)


def test_options_cli_over_ini_over_auto(pytester: pytest.Pytester) -> None:
    def mode(*args: str) -> object:
        return options.get(pytester.parseconfig(*args), "hostperf_mlock")

    assert mode() == "auto"
    assert mode("--hostperf-mlock") is True and mode("--hostperf-no-mlock") is False
    pytester.makeini("[pytest]\nhostperf_mlock = false\n")
    assert mode() is False and mode("--hostperf-mlock") is True
    pytester.makeini("[pytest]\nhostperf_mlock = auto\n")
    assert mode() == "auto" and mode("--hostperf-no-mlock") is False
    pytester.makeini("[pytest]\nhostperf_mlock = maybe\n")
    with pytest.raises(pytest.UsageError, match="ini key hostperf_mlock .*'maybe' is not auto, true or false"):
        mode()


def test_marker_mlock_values(pytester: pytest.Pytester) -> None:
    from pytest_hostperf.run.settings import parse_marker

    items = pytester.getitems("""
        import pytest

        @pytest.mark.hostperf(mlock="auto")
        def test_auto(): pass

        @pytest.mark.hostperf(mlock=True)
        def test_forced(): pass

        @pytest.mark.hostperf(mlock="sometimes")
        def test_bad(): pass
    """)
    assert [parse_marker(i).mlock for i in items[:2]] == ["auto", True]
    with pytest.raises(InvalidArgument, match=r"hostperf\(mlock=...\): 'sometimes' is not auto, true or false"):
        parse_marker(items[2])


def test_guard_records_are_noted_once_a_run() -> None:
    a = control.Applied("mlock", False, control.MLOCK_GUARDED, reason="mlock skipped: resident 2.1 GiB ...")
    b = control.Applied("mlock", False, control.MLOCK_GUARDED, reason="mlock skipped: resident 2.2 GiB ...")
    assert control.note_key(a) == control.note_key(b)
    enomem = control.Applied("mlock", False, "mlockall", reason="mlockall failed (ENOMEM): ...")
    assert control.note_key(enomem) == ("mlock", enomem.reason) != control.note_key(a)


def test_controlled_refuses_an_unknown_mlock_mode() -> None:
    before = control.snapshot()
    with (pytest.raises(InvalidArgument, match="'yes' is not True, False or 'auto'"),
          control.controlled(pin=False, rt=None, mlock="yes")):  # type: ignore[arg-type]
        pytest.fail("entered")
    assert control.snapshot() == before


def _child(code: str) -> dict[str, object]:
    src = "import json\nfrom pytest_hostperf.host import control as c, mlock_guard as g\nout = {}\n"
    src += textwrap.dedent(code) + "\nprint(json.dumps(out))\n"
    proc = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@linux_only
def test_auto_locks_a_small_process_and_skips_where_the_guard_says_so() -> None:
    out = _child("""
    with c.controlled(pin=False, rt=None) as recs:           # auto by default
        out["small"] = [r.as_dict() for r in recs]
        out["small_locked"] = c.snapshot().memory_locked
    g.check = lambda figures=None: g.Decision(False, "mlock skipped: (test)", g.FORCE_HINT)
    with c.controlled(pin=False, rt=None, mlock="auto") as recs:
        out["skipped"] = [r.as_dict() for r in recs]
        out["skipped_locked"] = c.snapshot().memory_locked
    with c.controlled(pin=False, rt=None, mlock=True) as recs:   # forced: the guard is not asked
        out["forced"] = [r.as_dict() for r in recs]
    out["after"] = c.snapshot().memory_locked
    """)
    (small,) = out["small"]  # type: ignore[misc]
    if not small["applied"]:
        pytest.skip(f"mlockall not permitted here: {small['reason']}")
    assert small["detail"] == "mlockall" and out["small_locked"] is True
    assert out["skipped"] == [{"control": "mlock", "applied": False, "detail": "mlockall (auto)",
                               "reason": "mlock skipped: (test)", "fix": mlock_guard.FORCE_HINT}]
    assert out["skipped_locked"] is False
    assert out["forced"][0]["applied"] is True  # type: ignore[index]
    assert out["after"] is False


# --------------------------------------------------------------------------- 2 GiB, end to end

BIG_TESTS = """
import json
import numpy as np

BIG = np.ones(2**28)  # 2 GiB of float64; np.ones writes every page, so all of it is resident

def vmlck_kib():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmLck:"))

seen = []

def probe():
    seen.append(vmlck_kib())

def test_big(hostperf):
    hostperf(probe, name="first")
    hostperf(probe, name="second")
    with open("vmlck.json", "w") as fh:
        json.dump({"during_kib": max(seen), "after_kib": vmlck_kib(), "resident": float(BIG[::512].sum())}, fh)
"""
BIG_ARGS = ("--hostperf", "--hostperf-json=r.json", "--hostperf-rt=off", "--hostperf-no-noise",
            "--hostperf-no-counters")


def _need_available(need: int, what: str) -> None:
    available = psutil.virtual_memory().available
    if available < need:
        pytest.skip(f"{what} needs {need / GiB:.1f} GiB available, this machine has {available / GiB:.1f} GiB: "
                    f"short by {(need - available) / GiB:.1f} GiB")


def _run_big(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict, list[dict]]:
    pytester.makeini("[pytest]\nhostperf_samples = 200\nhostperf_max_time = 0.2\n")
    pytester.makepyfile(BIG_TESTS)
    result = pytester.runpytest_subprocess(*BIG_ARGS, *args, timeout=240)
    result.assert_outcomes(passed=1)
    seen = json.loads((pytester.path / "vmlck.json").read_text())
    mlock = [next(c for c in r["host"]["controls"] if c["control"] == "mlock")
             for r in json.loads((pytester.path / "r.json").read_text())["results"]]
    assert len(mlock) == 2
    return result, seen, mlock


@linux_only
def test_two_gib_process_is_not_locked_by_default_and_says_why_once(pytester: pytest.Pytester) -> None:
    _need_available(3 * GiB, "a child process holding 2 GiB")
    result, seen, mlock = _run_big(pytester)
    assert seen["during_kib"] == 0
    for rec in mlock:
        assert (rec["applied"], rec["detail"]) == (False, "mlockall (auto)")
        assert rec["reason"].startswith("mlock skipped: resident 2.")
        assert "growth would exceed the bound of 1.0 GiB" in rec["reason"] and "available" in rec["reason"]
        assert "RLIMIT_MEMLOCK" in rec["reason"]
    notes = [line for line in result.outlines if "mlock: not applied (mlock skipped: resident 2." in line]
    assert len(notes) == 1, result.outlines
    assert "fix: --hostperf-mlock" in notes[0]


@linux_only
def test_two_gib_process_is_locked_with_the_force_flag_and_released(pytester: pytest.Pytester) -> None:
    # the 2 GiB array, and as much again left to the rest of the machine while it is locked
    _need_available(4 * GiB + 512 * MiB, "locking a 2 GiB process")
    _result, seen, mlock = _run_big(pytester, "--hostperf-mlock")
    if not mlock[0]["applied"]:
        pytest.skip(f"mlockall not permitted here: {mlock[0]['reason']}")
    assert all(rec["applied"] and rec["detail"] == "mlockall" for rec in mlock)
    assert seen["during_kib"] > 2 * (1 << 20)  # VmLck above 2 GiB while measuring
    assert seen["after_kib"] == 0  # munlockall afterwards
