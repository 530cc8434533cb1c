"""Host controls (pin, SCHED_FIFO, mlockall): refusals of bad arguments in-process;
everything that pins, goes FIFO or locks memory in a child process, so the test runner
itself is never changed."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.host import control
from pytest_hostperf.host.cpus import allowed_cpus, default_cpus
from pytest_hostperf.host.sched import rt_available

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
                          timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- refusals in-process
# These raise before anything changes, so they may run in the test runner.


@pytest.mark.parametrize("prio", [0, 99, -1, 100, True, "49", 49.0])
def test_priority_outside_1_98_is_invalid(prio: object) -> None:
    before = control.snapshot()
    with (pytest.raises(InvalidArgument, match="between 1 and 98"),
          control.realtime(prio)):  # type: ignore[arg-type]
        pytest.fail("entered")
    with (pytest.raises(InvalidArgument, match="between 1 and 98"),
          control.controlled(rt=prio)):  # type: ignore[arg-type]
        pytest.fail("entered")
    assert control.snapshot() == before


def test_pinning_to_a_cpu_not_allowed_is_invalid() -> None:
    before = control.snapshot()
    with (pytest.raises(InvalidArgument, match="not allowed for this process"),
          control.pinned([max(allowed_cpus()) + 1000])):
        pytest.fail("entered")
    assert control.snapshot() == before


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
    import resource
    from pytest_hostperf.host import libc
    libc.handle()   # load libc (and ctypes) while the stdlib is still readable
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


def test_names_from_before_the_split_still_import_from_control() -> None:
    # plugin.py, session.py, options.py, report.py, benchmarks/ and tests/faults/ use these.
    from pytest_hostperf.host import cpus, sched, warm

    assert control.parse_cpu_list is cpus.parse_cpu_list
    assert control.format_cpu_list is cpus.format_cpu_list
    assert control.check_cpus is cpus.check_cpus
    assert control.rt_available is sched.rt_available
    assert control.DEFAULT_RT_PRIORITY == sched.DEFAULT_RT_PRIORITY == 49
    assert control.warm is warm.warm and control.WarmRecord is warm.WarmRecord
    for name in control.__all__:
        assert hasattr(control, name), name
