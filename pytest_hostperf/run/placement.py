"""pytest-xdist support: disjoint CPUs per worker, results sent home.

Under ``pytest -n N --hostperf`` every worker measures on CPUs no other worker uses: the
CPUs hostperf may use (``--hostperf-cpus``, else the allowed set) are dealt round-robin, so
with 4 CPUs and 2 workers ``gw0`` gets ``0,2`` and ``gw1`` ``1,3`` and each pins to the last
of its own. A worker never writes a baseline, JSON or markdown file: at its session end it
puts its results (with the baseline records already built from its samples) into
``workeroutput``; the controller prints the one summary, writes the reports and saves the
baseline once.

When N exceeds the CPUs, two workers would measure on one CPU and disturb each other: the
hostperf tests are then gathered onto one worker (``xdist_group("hostperf")`` under
``--dist loadgroup``, which hostperf selects when ``--dist`` was left at ``load``), the others
keep running every other test in parallel, and the report says so.

Written by hand: xdist gives workers an id and a count and nothing else about placement.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: ``workeroutput`` key under which a worker sends its measurements home.
OUTPUT_KEY = "hostperf"
#: xdist_group that gathers hostperf tests onto one worker when CPUs are too few.
GROUP = "hostperf"


def worker_index(workerid: str) -> int:
    """``"gw3"`` -> 3 (xdist names its workers ``gw0``, ``gw1``, ...)."""
    m = re.fullmatch(r"gw(\d+)", workerid)
    if not m:
        raise ValueError(f"not an xdist worker id: {workerid!r} (expected gw0, gw1, ...)")
    return int(m.group(1))


def must_gather(workers: int, cpus: Sequence[int]) -> bool:
    """Whether hostperf tests must run on one worker: fewer CPUs than measuring workers."""
    return workers > len(cpus)


def worker_cpus(cpus: Sequence[int], workers: int, index: int) -> tuple[int, ...]:
    """The CPUs of worker ``index`` of ``workers``: every ``workers``-th of ``cpus``, sorted.

    Disjoint for distinct indices and together exactly ``cpus`` when ``workers <= len(cpus)``.

    >>> [worker_cpus([0, 1, 2, 3], 2, i) for i in (0, 1)]
    [(0, 2), (1, 3)]
    """
    if workers < 1 or not 0 <= index < workers:
        raise ValueError(f"worker {index} of {workers}: index must be in 0..{workers - 1}")
    ordered = sorted(set(cpus))
    if workers > len(ordered):
        raise ValueError(f"{workers} workers cannot have disjoint CPUs among {len(ordered)}")
    return tuple(ordered[index::workers])


def usable_cpus(requested: Sequence[int] | None) -> tuple[int, ...]:
    """The CPUs hostperf may measure on: ``--hostperf-cpus`` or this process's allowed set."""
    if requested:
        return tuple(sorted(set(requested)))
    if hasattr(os, "sched_getaffinity"):
        return tuple(sorted(os.sched_getaffinity(0)))
    return tuple(range(os.cpu_count() or 1))


_GROUP_SUFFIX = re.compile(r"@[^\[\]:@/]+$")


def ungrouped(nodeid: str) -> str:
    """``nodeid`` without the ``@group`` suffix xdist's loadgroup gives grouped tests, so a
    measurement is stored under the same id with and without xdist.

    >>> ungrouped("t.py::test_a[1]@hostperf"), ungrouped("t.py::test_a[x@y]")
    ('t.py::test_a[1]', 't.py::test_a[x@y]')
    """
    return _GROUP_SUFFIX.sub("", nodeid)


def tag_group(item: Any, group: str) -> None:
    """Give ``item`` the ``@group`` node id suffix that xdist's loadgroup scheduler groups by.

    Written by hand because no public API renames a node: xdist 3.8 assigns the private
    ``item._nodeid``, and from pytest 9.2 the id is a structured ``item._id`` that this
    assignment no longer reaches (the grouped tests then run on any worker). An id that
    xdist did suffix (older pytest) is left as it is. Raises ``RuntimeError`` when the id
    cannot be set, rather than let two workers measure on one CPU unnoticed.
    """
    tail = _GROUP_SUFFIX.search(item.nodeid)
    if tail and group in tail.group(0)[1:].split("_"):
        return
    wanted = f"{item.nodeid}@{group}"
    ident = getattr(item, "_id", None)
    if ident is not None and callable(getattr(type(ident), "parse", None)):
        item._id = type(ident).parse(wanted)
    else:
        item._nodeid = wanted
    if item.nodeid != wanted:
        raise RuntimeError(f"hostperf could not group {item.nodeid!r} onto one xdist worker "
                           "(this pytest names nodes in a way hostperf does not know); "
                           "run the hostperf tests with -n0 or give each worker its own CPU")


def placement_note(workers: int, cpus: int, measured_on: Sequence[str], gathered: bool,
                   paired: bool = False) -> tuple[str, bool]:
    """The summary line saying where the hostperf tests ran, from the workers recorded in
    the results (what happened, not what was planned), and whether it is a warning.

    >>> placement_note(2, 1, ["gw1", "gw1"], True)[1], placement_note(2, 1, ["gw0", "gw1"], True)[1]
    (False, True)
    """
    used = sorted(set(measured_on))
    if not gathered:
        return f"xdist: {len(used)} of {workers} workers measured, on disjoint CPUs", False
    if len(used) <= 1 and paired:
        return (f"--hostperf-against under {workers} xdist workers: the paired tests ran on one worker "
                f"({used[0] if used else 'none measured'}; xdist_group '{GROUP}', --dist loadgroup), the other "
                "tests in parallel (one pairing at a time measured best: docs/paired.md)"), False
    if len(used) <= 1:
        return (f"{workers} xdist workers but {cpus} CPU(s) to measure on: the hostperf tests ran on one worker "
                f"({used[0] if used else 'none measured'}; xdist_group '{GROUP}', --dist loadgroup), "
                "the other tests in parallel"), False
    return (f"{workers} xdist workers but {cpus} CPU(s) to measure on, and the hostperf tests ran on "
            f"{len(used)} workers ({', '.join(used)}): they measured at the same time on shared CPUs and "
            "disturbed each other; run with -n0, --dist loadgroup, or give each worker its own CPU"), True


def xdist_workers(config: Any) -> int:
    """Number of xdist workers this run starts (0 without ``-n`` or xdist)."""
    n = getattr(config.option, "numprocesses", None)
    return n if isinstance(n, int) and n > 0 and not getattr(config.option, "collectonly", False) else 0


def worker_of(config: Any) -> tuple[int, int] | None:
    """``(index, count)`` inside an xdist worker, None in the controller or a plain run."""
    info = getattr(config, "workerinput", None)
    if info is None:
        return None
    return worker_index(info["workerid"]), int(info["workercount"])


@dataclass(frozen=True, slots=True)
class Placement:
    """Where this process measures under xdist (None for a plain run: see :func:`placement`)."""
    workers: int  # measuring workers of the run
    worker: tuple[int, int] | None  # (index, count) inside a worker; None in the controller
    gathered: bool  # more workers than CPUs: the hostperf tests go to one worker
    usable_cpus: int  # CPUs hostperf may measure on
    cpus: tuple[int, ...] | None  # a worker's own share of them (None: not confined)


def placement(config: Any, cpus: Sequence[int] | None, full: bool, gather: bool = False) -> Placement | None:
    """xdist: each worker measures on its own CPUs, or, with more workers
    than CPUs (or ``gather``: the paired gate), the hostperf tests are gathered onto one worker.
    Sets xdist's options for the gathering (``--dist loadgroup``) as a side effect. None
    without xdist or measurement."""
    if not full:
        return None
    usable = usable_cpus(cpus)
    me = worker_of(config)
    if me is not None:
        index, count = me
        gathered = gather or must_gather(count, usable)
        if gathered:  # workers re-parse the command line: tell xdist's worker side too
            config.option.loadgroup = True
        return Placement(count, me, gathered, len(usable), None if gathered else worker_cpus(usable, count, index))
    n = xdist_workers(config)
    if not n:
        return None
    gathered = gather or must_gather(n, usable)
    if gathered and config.getvalue("dist") == "load":  # xdist's default for -n: group instead
        config.option.dist = "loadgroup"
    return Placement(n, None, gathered, len(usable), None)
