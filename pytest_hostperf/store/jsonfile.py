"""The one bounded JSON reader: every file hostperf reads goes through ``read_json``.

Baselines, ``--hostperf-json`` reports and pytest-benchmark files arrive from pull
requests, CI artifacts and other hosts, so each read is bounded before it costs anything:

- the file is opened without following a symlink (``O_NOFOLLOW``) and without blocking on
  a FIFO (``O_NONBLOCK``), and must be a regular file;
- its size is checked before reading (``lstat``) and while reading (never more than
  ``max_bytes + 1`` bytes are read, so a file that grows is refused too);
- the JSON values are counted (``,``, ``[`` and ``{`` bytes) before parsing: parsing costs
  memory per value, not per byte (an empty list is 56 bytes of Python for 3 bytes of file);
  a 60 MiB file of ``[],`` took 8 s and 1.5 GiB before this count (measured);
- parsing refuses NaN and Infinity, non-finite floats (``1e400``), integers of more than
  20 digits (before ``int()``, whose cost grows with the square of the digits and which
  raises its own ``ValueError`` beyond 4300 digits), duplicate keys, and nesting deep
  enough to exhaust the recursion limit.

Every refusal is one line: ``<path>: <what is wrong>[: <fix>]``, raised as the caller's
error class (``BaselineError`` for baselines, ``ReportError`` for reports...), so each
command prints it as ``hostperf: error: ...`` and the plugin as a usage error.

Written by hand: ``json`` has the hooks; no library bounds the file before parsing it.
"""
from __future__ import annotations

import errno
import json
import math
import os
import stat
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

from pytest_hostperf.errors import HostperfError

#: A JSON object once checked: its values are known only to the schema that checked them.
Json: TypeAlias = dict[str, Any]

#: Default cap on a file's size (baselines and reports); refused before reading.
MAX_BYTES = 64 * 1024 * 1024
#: Default cap on the values a file may hold (see the module docstring). Real baselines hold
#: one per ~20 bytes (about 3 million at MAX_BYTES); a file of ``[],`` one per 3 bytes.
MAX_VALUES = 4_000_000
#: Longest integer literal accepted: 20 digits hold every 64-bit value, signed or not.
MAX_INT_DIGITS = 20
#: Longest piece of the file (a key, a number) quoted in a message.
SHOW = 80


class _Reject(Exception):
    """Raised from the JSON parser hooks; turned into the caller's error with the path."""


def show(text: str) -> str:
    """A key or id quoted for a message, cut to ``SHOW`` characters: a hostile key can be
    megabytes long."""
    return json.dumps(text if len(text) <= SHOW else text[:SHOW - 3] + "...")


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Reject(f"duplicate key {show(dup)} in one object (hand-edited or merged badly?)")
    return out


def _reject_constant(name: str) -> NoReturn:
    raise _Reject(f"{name} is not a number a JSON file may hold here (NaN/Infinity are not JSON)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Reject(f"number {text[:40]} is too large (not finite)")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Reject(f"integer {text[:40]}{'...' if len(text) > 40 else ''} is too large")
    return int(text)


def _mib(n: int) -> str:
    return f"{n // 2**20} MiB" if n % 2**20 == 0 else f"{n:,} bytes"


def read_bytes(path: Path, *, what: str, error: type[HostperfError] = HostperfError,
               max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes``; ``error`` otherwise.

    ``what`` names the kind of file in messages ("baseline", "report"...).
    """
    path = Path(path)

    def too_big(size: int) -> HostperfError:
        return error(f"{path}: {size} bytes is more than the {_mib(max_bytes)} a {what} may hold; "
                     f"it is not a {what} (or a corrupt one)")

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise error(f"{path}: no such {what}{'' if what.endswith('file') else ' file'}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        raise error(f"{path} is a symlink; hostperf never follows symlinks to the files it reads: "
                    f"replace it with the file itself, or give the target ({os.path.realpath(path)})")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path} is not a regular file; a {what} is a JSON file")
    if st.st_size > max_bytes:
        raise too_big(st.st_size)
    try:
        # O_NOFOLLOW: the file could be swapped for a link after lstat; O_NONBLOCK: or for a FIFO.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error(f"{path} is a symlink; hostperf never follows symlinks to the files it reads") from None
        raise error(f"{path}: cannot open it: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{path} is not a regular file; a {what} is a JSON file")
        if st.st_size > max_bytes:
            raise too_big(st.st_size)
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise error(f"{path}: cannot read it: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise too_big(len(data))
    return data


def parse(path: Path, data: bytes, *, what: str, error: type[HostperfError] = HostperfError,
          fix: str = "", max_values: int = MAX_VALUES) -> object:
    """``data`` (the bytes of ``path``) as JSON, refusing what the module docstring lists.

    ``fix`` (e.g. "restore it from version control") ends every message about the content.
    """
    tail = f": {fix}" if fix else ""
    if not data.strip():
        raise error(f"{path}: the file is empty (truncated?){tail}")
    # Separators inside strings count too, which only errs towards refusing an absurd file.
    values = data.count(b",") + data.count(b"[") + data.count(b"{")
    if values > max_values:
        raise error(f"{path}: about {values:,} JSON values is more than the {max_values:,} a {what} may "
                    f"hold; it is not a {what} (or a corrupt one){tail}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (bad byte at offset {exc.start}); not a {what}{tail}") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant,
                          parse_float=_finite_float, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg} "
                    f"(truncated or hand-edited?){tail}") from None
    except RecursionError:
        raise error(f"{path}: JSON nested too deep; not a {what}") from None
    except _Reject as exc:
        raise error(f"{path}: {exc}{tail}") from None
    except ValueError as exc:  # a hook's float()/int() refusing a literal
        raise error(f"{path}: invalid JSON: {str(exc)[:SHOW]}{tail}") from None


def read_json(path: Path, *, what: str, error: type[HostperfError] = HostperfError, fix: str = "",
              max_bytes: int = MAX_BYTES, max_values: int = MAX_VALUES) -> object:
    """Read and parse the JSON file ``path`` within the bounds above; ``error`` on any problem.
    What it holds is unchecked: the caller's schema narrows it.

    >>> read_json(Path("baselines/h.json"), what="baseline", error=BaselineError)  # doctest: +SKIP
    """
    data = read_bytes(path, what=what, error=error, max_bytes=max_bytes)
    return parse(path, data, what=what, error=error, fix=fix, max_values=max_values)
