"""Every ``--hostperf*`` option and ``hostperf_*`` ini key, declared once, with its validator.

Precedence is CLI > ini > default. Validators raise ``argparse.ArgumentTypeError`` with the
value and an example of a good one; argparse prefixes the option name, and pytest turns it
into a usage error (exit code 4), never a traceback. Ini values go through the same
validators and fail as ``pytest.UsageError`` naming the ini key.

This module is imported by ``pytest --help``: it must not import numpy or torch.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.host import cpus as host_cpus
from pytest_hostperf.host.sched import DEFAULT_RT_PRIORITY
from pytest_hostperf.units import STATS

#: Defaults, also used by the CLI and by tests.
DEFAULT_SAMPLES = 20_000
DEFAULT_PAIRS = 4
DEFAULT_SETTLE = 30
DEFAULT_MAX_TIME = 3.0
DEFAULT_TOLERANCE_PCT = 10.0
DEFAULT_BASELINES = "baselines"


def _bad(value: str, what: str, example: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"{value!r} is not {what} (e.g. {example})")


def parse_count(value: str) -> int:
    """A whole number >= 0 (0 turns the thing counted off)."""
    try:
        n = int(str(value).strip())
    except ValueError:
        raise _bad(value, "a whole number", "'30'") from None
    if n < 0:
        raise _bad(value, "a whole number of at least 0", "'30'")
    return n


def parse_positive_int(value: str) -> int:
    """A whole number >= 1 (samples, runs to keep)."""
    try:
        n = int(str(value).strip())
    except ValueError:
        raise _bad(value, "a whole number", "'20000'") from None
    if n < 1:
        raise _bad(value, "a whole number of at least 1", "'20000'")
    return n


def parse_seconds(value: str) -> float:
    """A positive number of seconds."""
    try:
        s = float(str(value).strip().removesuffix("s"))
    except ValueError:
        raise _bad(value, "a number of seconds", "'3' or '0.5'") from None
    if not (s > 0 and s < 86_400):
        raise _bad(value, "a positive number of seconds below a day", "'3' or '0.5'")
    return s


def parse_tolerance(value: str) -> float:
    """A practical-significance threshold in percent: ``10`` or ``10%``."""
    try:
        pct = float(str(value).strip().removesuffix("%"))
    except ValueError:
        raise _bad(value, "a percentage", "'10' or '10%'") from None
    if not (0 <= pct <= 1000):
        raise _bad(value, "a percentage between 0 and 1000", "'10' or '10%'")
    return pct


def parse_rt(value: str) -> int | None:
    """A SCHED_FIFO priority 1..98, or ``off``. 99 is left to the kernel's own threads."""
    text = str(value).strip().lower()
    if text in ("off", "none", "no", "0"):
        return None
    try:
        prio = int(text)
    except ValueError:
        raise _bad(value, "a SCHED_FIFO priority", "'49' or 'off'") from None
    if not 1 <= prio <= 98:
        raise _bad(value, "a SCHED_FIFO priority between 1 and 98", "'49' or 'off'")
    return prio


def parse_cpus(value: str) -> tuple[int, ...]:
    """A CPU list (``3``, ``2-3``, ``0,2``) whose CPUs this process may run on."""
    try:
        cpus = host_cpus.parse_cpu_list(str(value))
        host_cpus.check_cpus(cpus)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return cpus


#: Statistics the stored-baseline gate can compare (``--hostperf-gate``), each as the median of
#: the block values; ``p99.9`` is read as ``p999``.
DEFAULT_GATE = ("p99",)


def parse_gate(value: str) -> tuple[str, ...]:
    """A comma-separated list of the statistics the gate compares: ``p99``, ``p99,p999``
    (of p50, p90, p99, p999 or p99.9, max), in the order given, each once."""
    names = [n.strip().lower() for n in str(value).split(",")]
    names = ["p999" if n == "p99.9" else n for n in names]
    bad = [n for n in names if n not in STATS]
    if bad:
        unknown = f"{bad[0]!r} is none of" if bad[0] else "an empty name is none of"
        raise _bad(value, f"a list of statistics: {unknown} p50, p90, p99, p999 (or p99.9), max",
                   "'p99' or 'p99,p999'")
    return tuple(dict.fromkeys(names))


def parse_bool(value: str) -> bool:
    """``true``/``false`` (also yes/no, on/off, 1/0), for ini keys."""
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise _bad(value, "true or false", "'true'")


def parse_mlock(value: str) -> bool | Literal["auto"]:
    """``auto`` (lock where the guard finds it cannot hurt), or a boolean: true locks
    regardless of size, false does not lock (ini key ``hostperf_mlock``, marker ``mlock=``)."""
    if str(value).strip().lower() == "auto":
        return "auto"
    try:
        return parse_bool(value)
    except argparse.ArgumentTypeError:
        raise _bad(value, "auto, true or false", "'auto'") from None


def parse_text(value: str) -> str:
    """Any non-empty text (paths, host ids; those are checked where they are used)."""
    text = str(value)
    if not text.strip():
        raise _bad(value, "a non-empty value", "'baselines'")
    return text


@dataclass(frozen=True, slots=True)
class Option:
    """One option: its flag, its ini key (if any), validator, default and help."""
    flag: str
    help: str
    parse: Callable[[str], Any] | None = None  # None: a store_true flag
    default: Any = None
    ini: bool = True
    metavar: str | None = None
    env: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def paired(self) -> bool:
        """A ``--hostperf-X`` / ``--hostperf-no-X`` pair of flags (a boolean, or mlock's tri-state)."""
        return self.parse is parse_bool or self.parse is parse_mlock


OPTIONS: tuple[Option, ...] = (
    Option("--hostperf", "Measure hostperf tests fully, compare with the baseline and gate "
           "(without it they run as quick smoke tests)", ini=False),
    Option("--hostperf-save", "Record this run into the host's baseline (atomic; keeps the last "
           "hostperf_keep_runs runs)", ini=False),
    Option("--hostperf-baselines", "Folder of per-host baseline files (default: baselines/ under rootdir)",
           parse_text, DEFAULT_BASELINES, metavar="DIR"),
    Option("--hostperf-host", "Host id override (also HOSTPERF_HOST); default derived from the "
           "host fingerprint", parse_text, None, metavar="ID", env="HOSTPERF_HOST"),
    Option("--hostperf-tolerance", "Practical-significance threshold for p99 regressions, in "
           "percent (default 10)", parse_tolerance, DEFAULT_TOLERANCE_PCT, metavar="PCT"),
    Option("--hostperf-gate", "Statistics the stored-baseline gate compares, each as the median of the block "
           "values: a comma-separated list of p50, p90, p99, p999, max (default p99); a measurement fails when "
           "any of them regressed. The paired gate (--hostperf-against) compares p99 only",
           parse_gate, DEFAULT_GATE, metavar="STATS"),
    Option("--hostperf-cpus", "CPUs to pin measurements to: '3', '2-3', '0,2' (default: the "
           "last allowed CPU)", parse_cpus, None, metavar="LIST"),
    Option("--hostperf-rt", "SCHED_FIFO priority 1..98 during measurements, or 'off' "
           "(default 49)", parse_rt, DEFAULT_RT_PRIORITY, metavar="PRIO|off"),
    Option("--hostperf-mlock", "mlockall() around measurements regardless of the process's size "
           "(default: auto, which locks only while what would be locked stays within 1 GiB and half the "
           "available memory, and within RLIMIT_MEMLOCK; --hostperf-no-mlock never locks; ini: "
           "auto, true or false)", parse_mlock, "auto"),
    Option("--hostperf-samples", "Samples per measurement under --hostperf (default 20000)",
           parse_positive_int, DEFAULT_SAMPLES, metavar="N"),
    Option("--hostperf-max-time", "Time budget of one measurement's sampling, in seconds "
           "(default 3)", parse_seconds, DEFAULT_MAX_TIME, metavar="SECONDS"),
    Option("--hostperf-json", "Write the run's results as JSON to PATH", parse_text, None,
           ini=False, metavar="PATH"),
    Option("--hostperf-markdown", "Write a markdown report (verdict headline, regressions first) to "
           "PATH; under --hostperf it is also appended to $GITHUB_STEP_SUMMARY when that is set",
           parse_text, None, ini=False, metavar="PATH"),
    Option("--hostperf-plot", "Write percentile-distribution plots (PNG and SVG), baseline vs current, "
           "per measurement group into DIR (needs matplotlib: the 'plot' extra)",
           parse_text, None, ini=False, metavar="DIR"),
    Option("--hostperf-against", "Paired gate: measure the base REF (a git revision such as origin/main, or a "
           "directory holding the base checkout) now, block by block with this tree on one CPU, and compare "
           "each measurement with it (also HOSTPERF_AGAINST)", parse_text, None, metavar="REF", env="HOSTPERF_AGAINST"),
    Option("--hostperf-pairs", "Process pairs of --hostperf-against: fresh head and base sessions, each pair "
           "under one hash seed, seeds varied across pairs; the interval spans them (default 4; 1: one pair, "
           "an interval that cannot see what differs between two processes)",
           parse_positive_int, DEFAULT_PAIRS, metavar="N"),
    Option("--hostperf-against-python", "Interpreter for the base side of --hostperf-against (a venv where the "
           "base is installed; default: this one)", parse_text, None, metavar="PATH"),
    Option("--hostperf-confirm", "Confirm a regression against the stored baseline by re-measuring it paired "
           "against the baseline's commit before failing (default on; --hostperf-no-confirm fails on the "
           "stored comparison alone)", parse_bool, True),
    Option("--hostperf-settle", "Stored inconclusive and improved verdicts re-measured paired against the "
           "baseline's commit at the end of the run, furthest from unchanged first: at most N per run (default "
           "30, about 5 s each; 0: none)", parse_count, DEFAULT_SETTLE, metavar="N"),
    Option("--hostperf-strict", "Fail, not warn, when a verdict stays inconclusive", parse_bool, False),
    Option("--hostperf-require-baseline", "Fail each measurement that has no baseline on this host (verdict "
           "'new'), naming the command that records one; waived under --hostperf-save, which records them, and "
           "under --hostperf-against, which reads no baseline", parse_bool, False),
    Option("--hostperf-counters", "Read page faults, context switches, Python allocations, CPU "
           "migrations and (where perf_event_open allows) cycles/instructions/cache and branch misses "
           "around each block (default on; --hostperf-no-counters turns it off)", parse_bool, True),
    Option("--hostperf-noise", "Probe host noise (a short pinned spin recording interruptions) "
           "before and after the measurements (default on; --hostperf-no-noise turns it off)",
           parse_bool, True),
)
_BY_DEST = {opt.dest: opt for opt in OPTIONS}
#: CLI default of valued options: ``--hostperf-rt=off`` parses to None, which must not read as
#: "not given". Not a string, because argparse runs a string default through the option's type.
_NOT_GIVEN: Any = type("NotGiven", (), {"__repr__": lambda self: "<not given>"})()


def add_options(parser: pytest.Parser) -> None:
    """Declare every option and ini key on pytest's parser."""
    group = parser.getgroup("hostperf", "latency benchmarks as regression tests (pytest-hostperf)")
    for opt in OPTIONS:
        help_text = opt.help
        if opt.parse is None:
            group.addoption(opt.flag, action="store_true", default=False, dest=opt.dest, help=help_text)
        elif opt.paired:
            group.addoption(opt.flag, action="store_true", default=None, dest=opt.dest, help=help_text)
            group.addoption("--hostperf-no-" + opt.flag.removeprefix("--hostperf-"), action="store_false",
                            dest=opt.dest, help=f"Opposite of {opt.flag}")
        else:
            group.addoption(opt.flag, type=opt.parse, default=_NOT_GIVEN, dest=opt.dest, metavar=opt.metavar,
                            help=help_text)
        if opt.ini:
            parser.addini(opt.dest, help=opt.help, default=None)
    parser.addini("hostperf_keep_runs", help="Runs kept per host baseline (default 5)", default=None)


def get(config: pytest.Config, dest: str) -> Any:
    """The value of one option: CLI, then environment (where declared), then ini, then default."""
    opt = _BY_DEST[dest]
    value = config.getoption(dest, default=_NOT_GIVEN)
    if opt.parse is None:  # a plain flag: CLI only
        return bool(value) and value is not _NOT_GIVEN
    if value is not _NOT_GIVEN and (value is not None or not opt.paired):
        return value  # None here is an explicit "off" (--hostperf-rt=off)
    if opt.env and os.environ.get(opt.env):
        return _validated(opt, os.environ[opt.env], f"environment variable {opt.env}")
    if opt.ini:
        raw = config.getini(dest)
        if raw not in (None, ""):
            return _validated(opt, raw, f"ini key {dest}")
    return opt.default


def keep_runs(config: pytest.Config) -> int:
    """Runs kept per baseline file: ini ``hostperf_keep_runs`` (default 5)."""
    raw = config.getini("hostperf_keep_runs")
    if raw in (None, ""):
        return 5
    try:
        return parse_positive_int(str(raw))
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"ini key hostperf_keep_runs: {exc}") from None


def _validated(opt: Option, raw: Any, where: str) -> Any:
    parse = opt.parse or parse_bool
    try:
        return parse(str(raw))
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"{where} (for {opt.flag}): {exc}") from None
