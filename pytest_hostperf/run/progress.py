"""The status line of a running measurement: ``hostperf: <id> round 2/3, 6.1 s left``.

A full measurement takes seconds (3 s a round by default, up to three rounds; paired, 20
pairs and more while undecided), during which pytest shows nothing. This module shows which
measurement runs and how far it is, the way pytest's own terminal output lives: on the
current line, after what pytest has written there (the file's dots, or the test's id under
``-v``), and erased before pytest writes the test's outcome, so ``-q``, ``-v`` and the
progress percentage read as without it.

It writes only to a terminal (``TerminalReporter.isatty``): never into a pipe, a file or a
CI log, never in an xdist worker (workers have no terminal), never under ``-s`` (the test's
own output would share the line). Captured output stays the test's: the line is written with
pytest's capturing suspended for the write (``CaptureManager.global_and_fixture_disabled``,
as pytest's live logging does). It is updated only between rounds of a measurement, never
inside one (``recorder.py`` between ``gate.settle``'s rounds, ``against.py`` between rounds
of pairs): whether someone watches must not change what is measured.

The text is erased with backspaces over exactly what was written, after checking that pytest
wrote nothing since (its terminal writer's column is unchanged); when something did (live
logging), the text is left alone rather than erasing someone else's. pytest has no public
call that writes without moving its idea of the current column, so this module reads the
terminal writer's file (``_tw._file``); a pytest built differently gets no status line, never a
broken one.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

#: Fewest columns worth a status line: with less room after pytest's text, none is shown.
MIN_WIDTH = 24
PREFIX = "hostperf: "


@dataclass(frozen=True, slots=True)
class Terminal:
    """Where the status line goes: pytest's terminal writer (``fullwidth``,
    ``width_of_current_line``), the stream it writes to, and how to step out of capturing."""

    writer: Any
    stream: Any
    uncaptured: Callable[[], contextlib.AbstractContextManager[None]]


def terminal_of(config: pytest.Config) -> Terminal | None:
    """pytest's terminal, or None where no status line may be written: output that is not a
    terminal, an xdist worker, ``-s`` or ``-p no:capture``, no terminal reporter (``-p no:terminal``)."""
    if hasattr(config, "workerinput") or config.getoption("capture", "fd") == "no":
        return None
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not bool(getattr(reporter, "isatty", False)):
        return None
    writer = getattr(reporter, "_tw", None)
    stream = getattr(writer, "_file", None)
    if stream is None or not hasattr(writer, "width_of_current_line") or not hasattr(writer, "fullwidth"):
        return None
    capman = config.pluginmanager.get_plugin("capturemanager")
    if capman is None:  # -p no:capture: as -s, the test's own output would share the line
        return None
    return Terminal(writer, stream, capman.global_and_fixture_disabled)


def fit(text: str, room: int) -> str:
    """``text`` as printable ASCII in at most ``room`` columns: a long id loses its start
    (its end, the measurement's name, stays); "" when not even ``MIN_WIDTH`` columns fit.

    >>> fit("hostperf: tests/test_a.py::test_x[fn] round 1/3, 2.0 s left", 40)
    'hostperf: ...x[fn] round 1/3, 2.0 s left'
    """
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    if room < MIN_WIDTH:
        return ""
    if len(text) <= room:
        return text
    cut = "..."
    body = text.removeprefix(PREFIX)
    keep = room - len(PREFIX) - len(cut)
    return PREFIX + cut + body[len(body) - keep:] if keep > 0 else text[:room]


class Progress:
    """The status line of the measurement running now; owned by the run (``session.py``).

    ``begin(mid, budget_s)`` when a measurement starts, ``step("round 2/3")`` between its
    rounds (``budget_s`` there restarts the countdown), ``end()`` when it is kept or the test's
    phase ends. Each does nothing where :func:`terminal_of` found no terminal.
    """

    def __init__(self, terminal: Callable[[], Terminal | None], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._find = terminal
        self._term: Terminal | None = None
        self._found = False
        self.clock = clock
        self.mid: str | None = None
        self.deadline = 0.0
        self.shown = 0  # columns of our text on the line now (the cursor stands after them)
        self.column = 0  # the writer's column when we wrote them

    @classmethod
    def of(cls, config: pytest.Config, *, enabled: bool) -> Progress:
        """The run's status line: on pytest's terminal when ``enabled`` and there is one."""
        return cls(lambda: terminal_of(config) if enabled else None)

    @property
    def terminal(self) -> Terminal | None:
        if not self._found:  # looked up at the first measurement: the reporter exists by then
            self._term, self._found = self._find(), True
        return self._term

    def begin(self, mid: str, budget_s: float = 0.0) -> None:
        """A measurement starts; ``budget_s``: the longest it may take (the countdown)."""
        self.end()
        if self.terminal is not None:
            self.mid, self.deadline = mid, self.clock() + budget_s

    def step(self, what: str, budget_s: float | None = None) -> None:
        """Show ``hostperf: <id> <what>, <seconds> s left``; ``budget_s`` restarts the countdown."""
        if self.mid is None or self.terminal is None:
            return
        if budget_s is not None:
            self.deadline = self.clock() + budget_s
        left = max(0.0, self.deadline - self.clock())
        self._show(self.terminal, f"{PREFIX}{self.mid} {what}, {left:.1f} s left")

    def end(self) -> None:
        """Erase the line (if it is still ours to erase) and forget the measurement."""
        self.mid = None
        if self.shown and self._term is not None:
            self._show(self._term, "")

    def _show(self, term: Terminal, text: str) -> None:
        with term.uncaptured():
            column = int(term.writer.width_of_current_line)
            if column != self.column:
                self.shown = 0  # pytest (live logging...) wrote since: that text is not ours to erase
            # one space after pytest's text, one column spare so the line never wraps
            new = fit(text, int(term.writer.fullwidth) - column - 2)
            new = " " + new if new else ""
            if not new and not self.shown:
                return
            pad = max(0, self.shown - len(new))
            term.stream.write("\b" * self.shown + new + " " * pad + "\b" * pad)
            term.stream.flush()
            self.shown, self.column = len(new), column
