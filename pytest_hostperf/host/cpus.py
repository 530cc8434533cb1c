"""CPU lists: parse and format the ``taskset -c`` / cpuset syntax, and check CPUs against
the ones this process may use.

Pure functions over numbers, except :func:`allowed_cpus` (and :func:`default_cpus` and
:func:`check_cpus` without ``allowed``), which ask the OS for the thread's affinity.
Importing this module is cheap.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence

from pytest_hostperf.errors import InvalidArgument

__all__ = ["MAX_CPU", "allowed_cpus", "check_cpus", "default_cpus", "format_cpu_list",
           "parse_cpu_list"]

#: Linux has no CPU numbers this high (NR_CPUS tops out at 8192); the bound keeps a typo
#: such as "0-99999999" from building a hundred-million-element tuple.
MAX_CPU = 65535

_CPU_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$")


def _not_a_cpu_list(text: str, why: str = "") -> InvalidArgument:
    return InvalidArgument(f"{text!r} is not a CPU list (e.g. '3' or '2-3'){why}")


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """Parse a Linux CPU list (the ``taskset -c`` / cpuset syntax) into sorted CPU numbers.

    >>> parse_cpu_list("0-1,3")
    (0, 1, 3)

    Raises :class:`InvalidArgument` for bad syntax, empty input, negative numbers and
    reversed ranges such as ``3-2``.
    """
    if not isinstance(text, str):
        raise _not_a_cpu_list(str(text))
    if not text.strip():
        raise _not_a_cpu_list(text, ": it is empty")
    cpus: set[int] = set()
    for item in text.split(","):
        m = _CPU_ITEM.match(item.strip())
        if not m:
            raise _not_a_cpu_list(text)
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise _not_a_cpu_list(text, f": range {item.strip()!r} runs backwards")
        if hi > MAX_CPU:
            raise _not_a_cpu_list(text, f": CPU {hi} is above {MAX_CPU}")
        cpus.update(range(lo, hi + 1))
    return tuple(sorted(cpus))


def format_cpu_list(cpus: Sequence[int]) -> str:
    """Format CPU numbers as a compact CPU list, the inverse of :func:`parse_cpu_list`.

    >>> format_cpu_list([3, 0, 1, 5, 6, 7])
    '0-1,3,5-7'
    """
    items: list[str] = []
    ordered = sorted(set(cpus))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        items.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(items)


def allowed_cpus() -> tuple[int, ...]:
    """The CPUs the calling thread may run on, sorted (all CPUs where affinity is unknown)."""
    if hasattr(os, "sched_getaffinity"):
        return tuple(sorted(os.sched_getaffinity(0)))
    return tuple(range(os.cpu_count() or 1))


def default_cpus() -> tuple[int, ...]:
    """The CPUs to pin to by default: the last allowed one.

    Interrupts and housekeeping work land on CPU 0 by default, so the last CPU is the
    quietest one a user has not chosen deliberately.
    """
    return (allowed_cpus()[-1],)


def check_cpus(cpus: Sequence[int], allowed: Sequence[int] | None = None) -> tuple[int, ...]:
    """Check that every CPU in ``cpus`` is allowed; return them sorted.

    ``allowed`` defaults to :func:`allowed_cpus`. Raises :class:`InvalidArgument` naming
    the CPUs outside the allowed set and listing the allowed ones.

    >>> check_cpus([1, 0], allowed=[0, 1, 2])
    (0, 1)
    """
    bad = [c for c in cpus if isinstance(c, bool) or not isinstance(c, int) or c < 0]
    if bad:
        raise InvalidArgument(f"{bad[0]!r} is not a CPU number (e.g. 3)")
    wanted = tuple(sorted(set(cpus)))
    allowed_set = set(allowed_cpus() if allowed is None else allowed)
    if not wanted:
        raise InvalidArgument(
            f"no CPU given; this process may use CPUs {format_cpu_list(sorted(allowed_set))}"
        )
    outside = [c for c in wanted if c not in allowed_set]
    if outside:
        noun = "CPU" if len(outside) == 1 else "CPUs"
        raise InvalidArgument(
            f"{noun} {format_cpu_list(outside)} not allowed for this process; "
            f"allowed: {format_cpu_list(sorted(allowed_set))}"
        )
    return wanted
