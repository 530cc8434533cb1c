"""Host controls: CPU lists in-process; everything that pins, goes FIFO or locks memory in
a child process, so the test runner itself is never changed."""
from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.host import control
from pytest_hostperf.host.control import (
    allowed_cpus,
    check_cpus,
    default_cpus,
    format_cpu_list,
    parse_cpu_list,
    rt_available,
    warm,
)

linux_only = pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="needs Linux")
needs_two_cpus = pytest.mark.skipif(len(allowed_cpus()) < 2,
                                    reason="pinning is a no-op with one allowed CPU")
needs_rt = pytest.mark.skipif(not rt_available().available,
                              reason=f"SCHED_FIFO not permitted: {rt_available().reason}")
needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="dropping privileges needs root")

# Every child starts with this: the state it reports is read back from the OS.
PRELUDE = """
import json, os, sys, time
from pytest_hostperf.host import control as c

def state():
    s = c.snapshot()
    return {"cpus": list(s.affinity), "policy": s.policy, "prio": s.priority,
            "nice": s.nice, "locked": s.memory_locked}

out = {}
"""


def run_child(code: str, timeout: float = 60) -> dict:
    """Run ``code`` after PRELUDE in a fresh interpreter; it must print ``out`` as JSON."""
    src = PRELUDE + textwrap.dedent(code) + "\nprint(json.dumps(out))\n"
    proc = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- CPU lists


@pytest.mark.parametrize(("text", "cpus"), [
    ("3", (3,)), ("2-3", (2, 3)), ("0,2", (0, 2)), ("0-1,3", (0, 1, 3)),
    (" 1 , 0 ", (0, 1)), ("3,1-2,2", (1, 2, 3)), ("5-5", (5,)),
])
def test_parse_cpu_list(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpu_list(text) == cpus


@pytest.mark.parametrize("bad", ["abc", "", " ", "3-2", "-1", "1,", ",1", "1-", "1--2",
                                 "0x1", "1.5", "1 2", "2-1,0", "0-99999999"])
def test_parse_cpu_list_rejects_with_example(bad: str) -> None:
    with pytest.raises(InvalidArgument, match=r"is not a CPU list \(e\.g\. '3' or '2-3'\)") as e:
        parse_cpu_list(bad)
    assert repr(bad) in str(e.value)


def test_parse_cpu_list_message_names_the_problem() -> None:
    assert str(_err(lambda: parse_cpu_list("abc"))) == "'abc' is not a CPU list (e.g. '3' or '2-3')"
    assert "runs backwards" in str(_err(lambda: parse_cpu_list("3-2")))


def _err(fn) -> Exception:
    with pytest.raises(InvalidArgument) as e:
        fn()
    return e.value


@given(st.sets(st.integers(0, 1023), min_size=1))
def test_format_then_parse_gives_the_set_back(cpus: set[int]) -> None:
    text = format_cpu_list(sorted(cpus))
    assert parse_cpu_list(text) == tuple(sorted(cpus))
    assert " " not in text and len(text.split(",")) <= len(cpus)


@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 20)), min_size=1), st.randoms())
def test_any_items_in_any_order_parse_to_their_union(items: list[tuple[int, int]], rnd) -> None:
    rnd.shuffle(items)
    text = ",".join(f"{lo}" if n == 0 else f"{lo}-{lo + n}" for lo, n in items)
    expected = sorted({c for lo, n in items for c in range(lo, lo + n + 1)})
    assert parse_cpu_list(text) == tuple(expected)


def test_check_cpus_names_the_outsiders_and_the_allowed() -> None:
    assert check_cpus([1, 0], allowed=[0, 1, 2]) == (0, 1)
    msg = str(_err(lambda: check_cpus([1, 5, 6], allowed=[0, 1, 2, 3])))
    assert msg == "CPUs 5-6 not allowed for this process; allowed: 0-3"
    assert "CPU 9 not allowed" in str(_err(lambda: check_cpus([9], allowed=[0])))
    assert "no CPU given" in str(_err(lambda: check_cpus([], allowed=[0])))
    assert "'1' is not a CPU number" in str(_err(lambda: check_cpus(["1"], allowed=[1])))
    assert "-1 is not a CPU number" in str(_err(lambda: check_cpus([-1], allowed=[1])))


def test_default_is_the_last_allowed_cpu() -> None:
    assert default_cpus() == (allowed_cpus()[-1],)
    assert list(allowed_cpus()) == sorted(allowed_cpus())


# --------------------------------------------------------------------------- refusals in-process
# These raise before anything changes, so they may run in the test runner.


@pytest.mark.parametrize("prio", [0, 99, -1, 100, True, "49", 49.0])
def test_priority_outside_1_98_is_invalid(prio: object) -> None:
    before = control.snapshot()
    with pytest.raises(InvalidArgument, match="between 1 and 98"):
        with control.realtime(prio):  # type: ignore[arg-type]
            pytest.fail("entered")
    with pytest.raises(InvalidArgument, match="between 1 and 98"):
        with control.controlled(rt=prio):  # type: ignore[arg-type]
            pytest.fail("entered")
    assert control.snapshot() == before


def test_pinning_to_a_cpu_not_allowed_is_invalid() -> None:
    before = control.snapshot()
    with pytest.raises(InvalidArgument, match="not allowed for this process"):
        with control.pinned([max(allowed_cpus()) + 1000]):
            pytest.fail("entered")
    assert control.snapshot() == before


@pytest.mark.parametrize(("rtprio", "capeff", "euid", "ok"), [
    ((0, 0), "0000000000000000", 0, False),        # root in a container without SYS_NICE
    ((0, 0), "0000000000800000", 1000, True),      # CAP_SYS_NICE via setcap
    ((99, 99), "0000000000000000", 1000, True),    # ulimit -r 99
    ((10, 10), "0000000000000000", 1000, False),   # limit below the priority asked for
    ((0, 0), None, 0, True),                       # capabilities unreadable: euid 0 decides
    ((0, 0), None, 1000, False),
])
@linux_only
def test_rt_available_from_injected_limits(tmp_path: Path, rtprio: tuple[int, int],
                                           capeff: str | None, euid: int, ok: bool) -> None:
    status = tmp_path / "status"
    if capeff is not None:
        status.write_text(f"Name:\tpython\nCapEff:\t{capeff}\n")
    runtime = tmp_path / "rt"
    runtime.write_text("950000\n")
    avail = rt_available(49, rt_runtime_path=runtime, status_path=status,
                         rtprio_limit=lambda: rtprio, euid=lambda: euid)
    assert avail.available is ok
    if not ok:
        assert "RLIMIT_RTPRIO" in avail.reason and "ulimit -r 99" in avail.fix
        assert "setcap cap_sys_nice+ep" in avail.fix and "--ulimit rtprio=99" in avail.fix


@linux_only
def test_rt_available_refuses_without_throttling(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    runtime.write_text("-1\n")
    avail = rt_available(rt_runtime_path=runtime, rtprio_limit=lambda: (99, 99))
    assert not avail.available and "-1" in avail.reason
    assert "sched_rt_runtime_us=950000" in avail.fix


# --------------------------------------------------------------------------- warm


def test_warm_is_bounded_by_calls_and_by_time() -> None:
    calls: list[int] = []
    rec = warm(calls.append, 1, calls=7, max_seconds=10)
    assert rec.calls == 7 == len(calls) and rec.bytes_touched == 0

    ticks = iter(range(1000))  # each clock read advances one "second"
    rec = warm(calls.append, 1, calls=1000, max_seconds=3, clock=lambda: float(next(ticks)))
    assert rec.calls == 3 and rec.seconds > 0

    assert warm(calls.append, 1, calls=5, max_seconds=0).calls == 1  # always at least one
    assert warm(calls.append, 1, calls=0).calls == 0
    assert warm().calls == 0
    with pytest.raises(InvalidArgument):
        warm(calls.append, 1, calls=-1)


class Pair(ctypes.Structure):
    _fields_ = [("a", ctypes.c_int), ("b", ctypes.c_double)]


def test_warm_touches_every_kind_of_buffer_read_only() -> None:
    base = np.arange(100 * 100, dtype=np.float64).reshape(100, 100)
    readonly = np.arange(1000, dtype=np.int32)
    readonly.flags.writeable = False
    buffers = {
        "bytes": (b"x" * 1000, 1000),
        "bytearray": (bytearray(4096), 4096),
        "numpy": (np.zeros(1000), 8000),
        "readonly numpy": (readonly, 4000),
        "fortran": (np.zeros((64, 32), order="F"), 64 * 32 * 8),
        "2-d memoryview": (memoryview(bytearray(600)).cast("B", (20, 30)), 600),
        "structured": (np.zeros(10, dtype=[("a", "i4"), ("b", "f8")]), 120),  # packed
        # strided: the whole span from first to last element, without a copy
        "strided rows": (base[::10], (90 * 100 + 100) * 8),
        "reversed": (base[0, ::-1], 100 * 8),
        "transposed slice": (base.T[:, :2], (1 * 100 + 100) * 8),
        "strided memoryview": (memoryview(bytearray(1000))[::3], 334 * 3 - 2),
        # numpy cannot map a strided ctypes structure exactly: it is read by copying
        "strided ctypes": (memoryview((Pair * 10)())[::2], 5 * ctypes.sizeof(Pair)),
        "empty": (bytearray(), 0),
        "one byte": (b"x", 1),
    }
    snapshot = base.copy()
    for name, (buf, nbytes) in buffers.items():
        assert warm(buffers=[buf]).bytes_touched == nbytes, name
    assert np.array_equal(base, snapshot)
    assert warm(buffers=[b"ab", bytearray(3)]).bytes_touched == 5
    with pytest.raises(TypeError):
        warm(buffers=["not a buffer"])


def test_snapshot_reads_this_process() -> None:
    s = control.snapshot()
    assert s.pid == os.getpid() and s.affinity == allowed_cpus()
    if hasattr(os, "sched_getscheduler"):
        assert s.policy == "SCHED_OTHER" and s.priority == 0
    assert control.current_state is control.snapshot
    assert json.loads(json.dumps(s.as_dict()))["affinity"] == list(s.affinity)


# --------------------------------------------------------------------------- real changes, in children

SCENARIO = """
ctx = lambda: {ctx}
out["before"] = state()
with ctx() as rec:
    out["inside"] = state()
    out["rec"] = [r.as_dict() for r in rec] if isinstance(rec, list) else [rec.as_dict()]
out["after_exit"] = state()
try:
    with ctx():
        raise ValueError("boom")
except ValueError:
    out["after_error"] = state()
try:
    with ctx():
        raise KeyboardInterrupt
except KeyboardInterrupt:
    out["after_interrupt"] = state()
"""


def _check_restored(out: dict) -> None:
    for when in ("after_exit", "after_error", "after_interrupt"):
        assert out[when] == out["before"], when


@linux_only
@needs_two_cpus
def test_pinned_pins_and_restores() -> None:
    cpu = default_cpus()[0]
    out = run_child(SCENARIO.format(ctx=f"c.pinned([{cpu}])"))
    assert out["inside"]["cpus"] == [cpu] != out["before"]["cpus"]
    assert out["rec"] == [{"control": "pin", "applied": True, "detail": f"cpus {cpu}",
                           "reason": None, "fix": None}]
    _check_restored(out)


@linux_only
@needs_rt
def test_realtime_goes_fifo_and_restores() -> None:
    out = run_child(SCENARIO.format(ctx="c.realtime(49)"))
    assert out["before"]["policy"] == "SCHED_OTHER"
    assert (out["inside"]["policy"], out["inside"]["prio"]) == ("SCHED_FIFO", 49)
    assert out["rec"][0]["applied"] and out["rec"][0]["detail"] == "SCHED_FIFO 49"
    _check_restored(out)


@linux_only
@needs_rt
@pytest.mark.parametrize("setup", [
    "os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0)); os.setpriority(os.PRIO_PROCESS, 0, 5)",
    "os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(20))",
    "os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(7))",
    "os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))",
])
def test_realtime_restores_any_prior_policy_priority_and_nice(setup: str) -> None:
    out = run_child(setup + "\n" + SCENARIO.format(ctx="c.realtime(30)"))
    assert (out["inside"]["policy"], out["inside"]["prio"]) == ("SCHED_FIFO", 30)
    _check_restored(out)


@linux_only
def test_locked_memory_locks_and_unlocks() -> None:
    out = run_child(SCENARIO.format(ctx="c.locked_memory()"))
    rec = out["rec"][0]
    if not rec["applied"]:
        pytest.skip(f"mlockall not permitted here: {rec['reason']}")
    assert out["before"]["locked"] is False and out["inside"]["locked"] is True
    _check_restored(out)


@linux_only
def test_locked_memory_leaves_prior_locks_alone() -> None:
    out = run_child("""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(1 << 16)
    if libc.mlock(buf, len(buf)) != 0:
        out["skip"] = os.strerror(ctypes.get_errno())
    else:
        out["before"] = state()
        with c.locked_memory() as rec:
            out["rec"] = rec.as_dict()
        out["after"] = state()
    """)
    if "skip" in out:
        pytest.skip(f"mlock not permitted: {out['skip']}")
    assert out["before"]["locked"] and out["after"]["locked"]
    if out["rec"]["applied"]:
        assert "already locked" in out["rec"]["detail"]


@linux_only
@needs_rt
@needs_two_cpus
def test_controlled_applies_pin_mlock_rt_in_order_and_restores() -> None:
    cpu = default_cpus()[0]
    out = run_child(SCENARIO.format(ctx=f"c.controlled(cpus=[{cpu}], rt=49, mlock=True)"))
    assert [r["control"] for r in out["rec"]] == ["pin", "mlock", "rt"]
    inside = out["inside"]
    assert inside["cpus"] == [cpu] and (inside["policy"], inside["prio"]) == ("SCHED_FIFO", 49)
    mlock = out["rec"][1]
    assert inside["locked"] is mlock["applied"]
    _check_restored(out)
    out = run_child(SCENARIO.format(ctx="c.controlled(pin=False, rt=None, mlock=False)"))
    assert out["rec"] == [] and out["inside"] == out["before"]


@linux_only
@needs_rt
@needs_two_cpus
def test_sigint_during_rt_is_seen_from_outside_and_restored() -> None:
    cpu = default_cpus()[0]
    src = PRELUDE + textwrap.dedent(f"""
    import signal
    # started from a background job, this child inherits SIGINT ignored: take Python's default
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with c.controlled(cpus=[{cpu}], rt=49, mlock=True) as recs:
            print(json.dumps([r.as_dict() for r in recs]), flush=True)
            time.sleep(30)   # asleep at FIFO: the parent interrupts it long before
    except KeyboardInterrupt:
        print(json.dumps(state()), flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", src], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "child never entered the controls"
        recs = json.loads(proc.stdout.readline())
        seen = control.state_of(proc.pid)
        assert (seen.policy, seen.priority, seen.affinity) == ("SCHED_FIFO", 49, (cpu,))
        assert seen.memory_locked is recs[1]["applied"]
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, stderr
    after = json.loads(stdout.strip().splitlines()[-1])
    assert after["policy"] == "SCHED_OTHER" and after["prio"] == 0
    assert after["cpus"] == list(allowed_cpus()) and after["locked"] is False


# --------------------------------------------------------------------------- not permitted


@linux_only
@needs_root
def test_unprivileged_child_gets_refusals_with_fixes() -> None:
    # Root -> nobody clears every capability; RLIMIT_RTPRIO 0 and a 64 KiB memlock limit
    # then leave neither SCHED_FIFO nor mlockall permitted.
    out = run_child("""
    import ctypes.util, resource
    c._libc()   # load libc while the stdlib is still readable
    resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (65536, 65536))
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)
    out["avail"] = list(c.rt_available())
    with c.realtime(49) as rec:
        out["rt"] = rec.as_dict()
        out["rt_inside"] = state()
    with c.locked_memory() as rec:
        out["mlock"] = rec.as_dict()
        out["mlock_inside"] = state()
    with c.controlled(rt=49, mlock=True) as recs:
        out["all"] = [r.as_dict() for r in recs]
        out["all_inside"] = state()
    out["after"] = state()
    """)
    assert out["avail"][0] is False and "CAP_SYS_NICE" in out["avail"][1]
    rt = out["rt"]
    assert rt["applied"] is False and rt["control"] == "rt"
    assert "RLIMIT_RTPRIO is 0" in rt["reason"] and "ulimit -r 99" in rt["fix"]
    assert "--cap-add SYS_NICE" in rt["fix"] and "setcap cap_sys_nice+ep" in rt["fix"]
    assert out["rt_inside"]["policy"] == "SCHED_OTHER"
    mlock = out["mlock"]
    assert mlock["applied"] is False and "RLIMIT_MEMLOCK is 64 KiB" in mlock["reason"]
    assert "ulimit -l unlimited" in mlock["fix"] and "--ulimit memlock=-1" in mlock["fix"]
    assert out["mlock_inside"]["locked"] is False
    # Pinning one's own thread needs no privilege; the other two go on without failing.
    assert [(r["control"], r["applied"]) for r in out["all"]] == [
        ("pin", True), ("mlock", False), ("rt", False)]
    assert out["all_inside"]["policy"] == "SCHED_OTHER"
    assert out["after"]["cpus"] == list(allowed_cpus())


@linux_only
def test_rt_refused_when_throttling_is_off(tmp_path: Path) -> None:
    fake = tmp_path / "sched_rt_runtime_us"
    fake.write_text("-1\n")
    out = run_child(f"""
    from pathlib import Path
    with c.realtime(49, rt_runtime_path=Path({str(fake)!r})) as rec:
        out["rec"] = rec.as_dict()
        out["inside"] = state()
    """)
    assert out["rec"]["applied"] is False and "is -1 (RT throttling off)" in out["rec"]["reason"]
    assert "kernel.sched_rt_runtime_us=950000" in out["rec"]["fix"]
    assert out["inside"]["policy"] == "SCHED_OTHER"


def test_without_the_syscalls_controls_are_refused_not_raised() -> None:
    # A child with the Linux calls deleted stands in for macOS / Windows.
    out = run_child("""
    for name in ("sched_setaffinity", "sched_setscheduler"):
        if hasattr(os, name):
            delattr(os, name)
    with c.pinned([0]) as pin, c.realtime(49) as rt:
        out["recs"] = [pin.as_dict(), rt.as_dict()]
    """)
    pin, rt = out["recs"]
    assert not pin["applied"] and "os.sched_setaffinity is missing" in pin["reason"] and pin["fix"]
    assert not rt["applied"] and "needs Linux" in rt["reason"]
