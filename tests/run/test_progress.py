"""The status line of a running measurement (progress.py): what it writes, where it never
writes, and, in a real terminal (tmux), that it appears mid-measurement and leaves pytest's
own lines as they would be without it."""
from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_hostperf.run.progress import MIN_WIDTH, Progress, Terminal, fit

MID = "test_a.py::test_x[fn]"
REPO = Path(__file__).resolve().parents[2]


class Writer:
    """pytest's terminal writer as the status line sees it: a width and the current line."""

    def __init__(self, line: str, width: int = 100) -> None:
        self.line = line
        self.fullwidth = width

    @property
    def width_of_current_line(self) -> int:
        return len(self.line)


def screen(start: str, written: str) -> tuple[str, int]:
    """The line a terminal shows after ``start`` and then ``written`` (a backspace moves the
    cursor left, text overwrites), and the cursor's column."""
    cells, pos = list(start), len(start)
    for c in written:
        if c == "\b":
            pos = max(0, pos - 1)
            continue
        assert c != "\n" and c != "\r", "the status line never leaves or rewinds pytest's line"
        if pos < len(cells):
            cells[pos] = c
        else:
            cells.append(c)
        pos += 1
    return "".join(cells).rstrip(), pos


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(line: str, width: int = 100) -> tuple[Progress, Writer, io.StringIO, Clock, list[str]]:
    writer, stream, clock, entered = Writer(line, width), io.StringIO(), Clock(), []

    @contextlib.contextmanager
    def uncaptured() -> Iterator[None]:
        entered.append(stream.getvalue())
        yield

    return Progress(lambda: Terminal(writer, stream, uncaptured), clock=clock), writer, stream, clock, entered


def test_status_line_follows_pytest_s_text_counts_down_and_is_erased() -> None:
    progress, _, stream, clock, entered = make("test_a.py ..")
    progress.begin(MID, 9.0)
    progress.step("round 1/3")
    first = f"test_a.py .. hostperf: {MID} round 1/3, 9.0 s left"
    assert screen("test_a.py ..", stream.getvalue()) == (first, len(first))
    clock.now += 3.5
    progress.step("round 2/3")
    assert screen("test_a.py ..", stream.getvalue())[0] == f"test_a.py .. hostperf: {MID} round 2/3, 5.5 s left"
    clock.now += 60
    progress.step("round 3/3")
    assert screen("test_a.py ..", stream.getvalue())[0].endswith("round 3/3, 0.0 s left")
    progress.end()
    assert screen("test_a.py ..", stream.getvalue()) == ("test_a.py ..", len("test_a.py .."))
    assert len(entered) == 4, "every write steps out of pytest's capturing"
    written = stream.getvalue()
    progress.end()
    progress.step("round 1/3")  # no measurement: nothing
    assert stream.getvalue() == written


def test_a_restarted_countdown_and_a_shorter_text_leave_no_residue() -> None:
    progress, _, stream, clock, _ = make("")
    progress.begin(MID)
    progress.step("confirming, pairs 0/20", budget_s=12.0)
    clock.now += 2
    progress.step("pairs 20/30")
    assert screen("", stream.getvalue())[0] == f" hostperf: {MID} pairs 20/30, 10.0 s left"


def test_long_ids_are_cut_from_the_start_and_no_room_means_no_line() -> None:
    start = "test_a.py " + "." * 30
    progress, _, stream, _, _ = make(start, width=100)
    progress.begin("tests/very/deep/folder/test_module_with_a_long_name.py::test_something_long[the_name]", 3.0)
    progress.step("round 1/3")
    shown, cursor = screen(start, stream.getvalue())
    assert len(shown) == cursor <= 99, "one column spare: the line never wraps"
    assert shown.endswith("[the_name] round 1/3, 3.0 s left") and "hostperf: ..." in shown
    progress.end()
    assert screen(start, stream.getvalue())[0] == start
    assert fit("x" * 50, MIN_WIDTH - 1) == "" and fit("caf\u00e9 \x1b[31m", 40) == "caf? ?[31m"
    narrow, _, out, _, _ = make("x" * 60, width=80)
    narrow.begin(MID, 1.0)
    narrow.step("round 1/3")
    assert out.getvalue() == ""


def test_text_someone_else_wrote_since_is_never_erased() -> None:
    progress, writer, stream, _, _ = make("test_a.py ")
    progress.begin(MID, 3.0)
    progress.step("round 1/3")
    before = stream.getvalue()
    writer.line = "live log call: something"  # e.g. pytest's live logging wrote through the reporter
    progress.end()
    assert stream.getvalue() == before


def test_no_terminal_means_nothing_is_written() -> None:
    calls: list[int] = []

    def none() -> Terminal | None:
        calls.append(1)
        return None

    progress = Progress(none)
    for _ in range(3):
        progress.begin(MID, 3.0)
        progress.step("round 1/3")
        progress.end()
    assert calls == [1], "the terminal is looked up once"


def test_no_status_line_when_output_is_not_a_terminal(fast_ini: pytest.Pytester) -> None:
    fast_ini.makepyfile("""
        import time

        def test_sleep(hostperf):
            hostperf(time.sleep, 0.0001, name="nap")
    """)
    for args in ((), ("-v",), ("-q",)):
        result = fast_ini.runpytest_subprocess("--hostperf", "--hostperf-rt=off", "--hostperf-no-noise", *args)
        result.assert_outcomes(passed=1)
        out = result.stdout.str() + result.stderr.str()
        assert "s left" not in out and "round 1/" not in out and "\b" not in out, out


# --------------------------------------------------------------------------- a real terminal

SLOW = """
import time


def test_slow(hostperf):
    hostperf(time.sleep, 0.0002, name="nap")
"""
STATUS = re.compile(r"hostperf: \S*test_slow\[nap\] (round 1/3|pair \d/4: \d+/\d+), \d+\.\d s left")


def _in_tmux(project: Path, args: list[str], timeout: float = 60.0) -> tuple[list[str], str]:
    """Run ``pytest --hostperf ARGS`` in a detached 120x30 tmux pane of a tmux server of its own;
    capture the pane every 50 ms. Returns the pane lines that showed a status line, and the
    final pane."""
    cmd = " ".join([shlex.quote(sys.executable), "-m", "pytest", "-p", "no:cacheprovider", "--hostperf",
                    "--hostperf-rt=off", "--hostperf-no-mlock", "--hostperf-no-noise", "--hostperf-no-counters",
                    *map(shlex.quote, args), "test_slow.py"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST_", "TMUX"))}
    env.update(PYTEST_ADDOPTS="-p no:hypothesispytest", TERM=env.get("TERM") or "xterm",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    sockdir = tempfile.mkdtemp(prefix="hp-tmux-")  # short: a unix socket path has ~100 characters
    tmux = ["tmux", "-S", os.path.join(sockdir, "s"), "-f", os.devnull]
    seen: list[str] = []
    pane = ""
    try:
        subprocess.run([*tmux, "new-session", "-d", "-x", "120", "-y", "30", "-s", "hp",
                        f"cd {shlex.quote(str(project))} && {cmd}; echo HOSTPERF-DONE $?; sleep 60"],
                       env=env, check=True, timeout=30, capture_output=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pane = subprocess.run([*tmux, "capture-pane", "-p", "-t", "hp"], env=env, capture_output=True,
                                  text=True, timeout=10).stdout
            seen += [line for line in pane.splitlines() if STATUS.search(line)]
            if "HOSTPERF-DONE" in pane:
                break
            time.sleep(0.05)
    finally:
        subprocess.run([*tmux, "kill-server"], env=env, capture_output=True, timeout=30)
        shutil.rmtree(sockdir, ignore_errors=True)
    return seen, pane


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed: the status line is seen "
                                                         "only in a real terminal, which the test runs in tmux")
@pytest.mark.parametrize("verbosity", ["-v", "-q", "paired"])
def test_status_line_in_a_real_terminal(tmp_path: Path, verbosity: str) -> None:
    ini = "[pytest]\nhostperf_samples = 100000\nhostperf_max_time = 1.0\nhostperf_baselines = b\n"
    for tree in (tmp_path / "head", tmp_path / "base"):
        tree.mkdir()
        (tree / "test_slow.py").write_text(SLOW)
        (tree / "pytest.ini").write_text(ini)
    # paired: the base side, a session of its own with no terminal, takes turns with the head
    args = ["-v", f"--hostperf-against={tmp_path / 'base'}", "--hostperf-tolerance=500"] \
        if verbosity == "paired" else [verbosity]
    seen, pane = _in_tmux(tmp_path / "head", args)
    assert "HOSTPERF-DONE 0" in pane, pane
    assert seen, f"no status line seen mid-measurement; final pane:\n{pane}"
    assert all((re.search(r"pair \d/4: \d+/\d+", line) is not None) == (verbosity == "paired")
               for line in seen), seen
    lines = pane.splitlines()
    assert not any("s left" in line for line in lines), pane  # erased, not left behind
    if verbosity != "-q":  # shares the test's own line, which then reads as without it
        assert all(re.match(r"test_slow\.py::test_slow +hostperf: ", line) for line in seen), seen
        assert any(re.fullmatch(r"test_slow\.py::test_slow PASSED +\[100%\]", line) for line in lines), pane
    else:
        assert any(re.fullmatch(r"\. +\[100%\]", line) for line in lines), pane
    assert any("1 passed" in line for line in lines), pane
