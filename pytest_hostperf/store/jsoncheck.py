"""The one validation framework: checks of parsed JSON that name the JSON path of the first problem.

Every schema of the store is written with it: baseline documents (``baseline_schema``),
reports (``report_schema``) and the histogram's shape (``histogram``). A failed check raises
:class:`_Invalid` (where, problem); the reader that called it turns that into its own error
(``BaselineError``, ``ReportError``) with the file's name. Values arrive as ``object`` (what
the bounded reader parsed) and leave narrowed. Pure: no I/O.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeAlias, overload

from pytest_hostperf.store import jsonfile
from pytest_hostperf.store.jsonfile import Json

#: Largest time accepted, in ns (about 11.6 days): anything above is corruption, not latency.
MAX_NS = 10**15
#: Deepest JSON nesting accepted; real baselines are about 8 levels deep.
MAX_DEPTH = 32

_INT64_MAX = 2**63 - 1

#: A JSON path built lazily, as nested (parent, key) pairs; int keys are list items.
_Node: TypeAlias = "tuple[_Node, str | int] | None"


class _Invalid(Exception):
    """A validation problem at a JSON path."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(where, problem)
        self.where, self.problem = where, problem

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}" if self.where else self.problem


def _kind(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    return {dict: "an object", list: "an array", str: "a string", int: "an integer",
            float: "a float"}.get(type(v), type(v).__name__)


_show_key = jsonfile.show


def _show(v: object) -> str:
    text = json.dumps(v, default=repr) if isinstance(v, (str, int, float, bool, type(None))) else _kind(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _at(where: str, key: str) -> str:
    if key.isascii() and key.isidentifier():
        return f"{where}.{key}" if where else key
    return f"{where}[{_show_key(key)}]"


def _path_of(node: _Node, root: str) -> str:
    """Render a lazily built path: nested (parent, key) pairs, int keys for list items."""
    keys: list[str | int] = []
    while node is not None:
        node, key = node
        keys.append(key)
    where = root
    for key in reversed(keys):
        where = f"{where}[{key}]" if type(key) is int else _at(where, str(key))
    return where


_SCALARS = frozenset({str, bool, type(None)})


def _check_json(value: object, where: str) -> None:
    """JSON types only, string keys, finite floats, 64-bit ints, at most MAX_DEPTH deep.

    Iterative, so a deep document cannot exhaust the stack; paths are rendered only for
    the error, which keeps a multi-megabyte file fast to check."""
    # Any, not object: the loop narrows with exact type() tests, which a checker does not follow.
    stack: list[tuple[Any, _Node, int]] = [(value, None, 1)]
    while stack:
        v, node, depth = stack.pop()
        t = type(v)
        if t is dict or t is list:
            if depth >= MAX_DEPTH and v:
                raise _Invalid(_path_of(node, where), f"JSON nested too deep (more than {MAX_DEPTH} levels)")
            items = v.items() if t is dict else enumerate(v)
            for k, x in items:
                tx = type(x)
                if t is dict and type(k) is not str:
                    raise _Invalid(_path_of(node, where), f"key {k!r} is not a string")
                if tx in _SCALARS:
                    continue
                if tx is int and -_INT64_MAX <= x <= _INT64_MAX:
                    continue
                stack.append((x, (node, k), depth + 1))
        elif t is float:
            if not math.isfinite(v):
                raise _Invalid(_path_of(node, where), f"{v} is not a finite number")
        elif t is int:
            if abs(v) > _INT64_MAX:
                raise _Invalid(_path_of(node, where), "integer too large")
        elif t not in _SCALARS:
            raise _Invalid(_path_of(node, where), f"{t.__name__} is not a JSON value")


def _obj(v: object, where: str) -> Json:
    if type(v) is not dict:
        raise _Invalid(where, f"expected an object, got {_kind(v)}")
    return v


def _keys(d: Mapping[str, object], where: str, required: frozenset[str], optional: frozenset[str] = frozenset(),
          *, extra_ok: bool = False) -> None:
    missing = sorted(required - d.keys())
    if missing:
        raise _Invalid(where, f"missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if not extra_ok:
        unknown = sorted(d.keys() - required - optional)
        if unknown:
            raise _Invalid(where, f"unknown key{'s' if len(unknown) > 1 else ''} "
                                  f"{', '.join(_show_key(k) for k in unknown[:5])}")


def _int(v: object, where: str, lo: int = 0, hi: int = MAX_NS, what: str = "an integer") -> int:
    if type(v) is not int:
        raise _Invalid(where, f"expected {what}, got {_kind(v)} {_show(v)}")
    if v < lo:
        raise _Invalid(where, f"{v} is below the minimum {lo}")
    if v > hi:
        raise _Invalid(where, f"{v} is absurdly large (more than {hi})")
    return v


def _ns(v: object, where: str) -> int:
    return _int(v, where, 0, MAX_NS, "an integer number of nanoseconds")


@overload
def _str(v: object, where: str, *, nullable: Literal[False] = False) -> str: ...
@overload
def _str(v: object, where: str, *, nullable: bool) -> str | None: ...


def _str(v: object, where: str, *, nullable: bool = False) -> str | None:
    if (v is None and nullable) or type(v) is str:
        return v
    raise _Invalid(where, f"expected a string{' or null' if nullable else ''}, got {_kind(v)}")


def _ordered(d: Mapping[str, int], where: str, names: Sequence[str]) -> None:
    for a, b in zip(names, names[1:]):
        if d[a] > d[b]:
            raise _Invalid(where, f"{a} {d[a]} > {b} {d[b]}: must be "
                                  f"{' <= '.join(n.removesuffix('_ns') for n in names)}")
