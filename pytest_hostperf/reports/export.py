"""HdrHistogram export: ``hostperf export FILE --format hdr`` (the ``hdr`` extra).

Each stored ``log2-32`` histogram (``histogram.py``) becomes an HdrHistogram of nanoseconds
(lowest 1 ns, highest the measurement's max, 3 significant digits) written in HdrHistogram's
standard compressed encoding (base64, ``HISTFAAA...``, ``HdrHistogram.encode()``), one line
of HdrHistogram's interval log format per measurement and run, tagged with the measurement id::

    #[Histogram log format version 1.3]
    #[StartTime: 1714564800.000 (seconds since epoch), 2024-05-01T12:00:00+00:00]
    #[BaseTime: 0.000 (seconds since epoch)]
    "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
    Tag=bench.py::test_alloc[arena],1714564800.000,0.000,0.003,HISTFAAA...

A report gives one interval per measurement; a baseline one per measurement and stored run,
oldest run first, so a tool that adds a tag's intervals gets the histogram the gate compares
with. Timestamps are the run's ``created_utc`` in seconds since the epoch (0 where unknown),
the interval length is the measurement's sampling time (0 in a baseline, which does not
store it) and ``Interval_Max`` is in milliseconds (HdrHistogram's convention for ns values).
Tags are the ids with ``%``, ``,`` and whitespace percent-encoded (``urllib.parse.unquote``
gives the id back): HdrHistogram's log readers split on commas and spaces.

The values are the stored histogram's, not the samples: exact to one bucket width (1/32 of
a power of two, 2.2%; see :func:`histogram.histogram_samples`). hdrhistogram is imported
only here, and only when an export runs (:func:`require_hdrhistogram`).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from pytest_hostperf.errors import HdrUnavailable, HostperfError
from pytest_hostperf.store.disk import Baseline
from pytest_hostperf.store.histogram import histogram_samples
from pytest_hostperf.store.jsonfile import Json
from pytest_hostperf.store.records import Report

__all__ = ["INSTALL_HINT", "LOG_FORMAT_VERSION", "SIGNIFICANT_DIGITS", "Export", "Interval", "encode", "interval_log",
           "intervals", "require_hdrhistogram", "tag_of", "to_hdr"]

INSTALL_HINT = "install it with: pip install 'pytest-hostperf[hdr]'"
#: The interval log format version that has ``Tag=`` (HdrHistogram 2.1.10 and later).
LOG_FORMAT_VERSION = "1.3"
SIGNIFICANT_DIGITS = 3
LOWEST_NS = 1
#: ``Interval_Max`` is the max divided by this: ns to ms, as HdrHistogram's log writers do.
MAX_VALUE_UNIT_RATIO = 1e6
LEGEND = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'

_UNSAFE = re.compile(r"[%,\s\x00-\x1f\x7f]")


class Hdr(Protocol):
    """What hostperf uses of an ``hdrh.histogram.HdrHistogram`` (the package has no type hints)."""

    def record_value(self, value: int, count: int) -> bool: ...
    def encode(self) -> bytes: ...
    def get_max_value(self) -> int: ...


#: ``HdrHistogram(lowest, highest, significant_digits)``
HdrClass = Callable[[int, int, int], Hdr]


def require_hdrhistogram() -> HdrClass:
    """The ``HdrHistogram`` class of the hdrhistogram package (the ``hdr`` extra), or
    :class:`HdrUnavailable` saying how to install it."""
    try:  # imported where used: hdrhistogram is an optional extra
        from hdrh.histogram import HdrHistogram
    except ImportError:
        raise HdrUnavailable("hostperf export --format hdr needs the hdrhistogram package, which is not "
                             f"installed; {INSTALL_HINT}") from None
    hdr_class: HdrClass = HdrHistogram
    return hdr_class


def tag_of(mid: str) -> str:
    """A measurement id as an interval log tag: ``%``, ``,`` and whitespace percent-encoded.

    >>> tag_of("t.py::test_a[1, 2%]")
    't.py::test_a[1%2C%202%25]'
    """
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), mid)


def to_hdr(h: Json, hdr_class: HdrClass) -> Hdr:
    """A ``log2-32`` histogram as an HdrHistogram (``hdr_class``, from :func:`require_hdrhistogram`):
    1 ns .. its max, 3 significant digits, each value of :func:`histogram.histogram_samples`
    recorded with its count."""
    values, counts = histogram_samples(h)
    hist = hdr_class(LOWEST_NS, max(2 * LOWEST_NS, int(values[-1])), SIGNIFICANT_DIGITS)
    for value, count in zip(values.tolist(), counts.tolist()):
        if not hist.record_value(value, count):
            raise HostperfError(f"HdrHistogram refused the value {value} ns (count {count})")
    return hist


def encode(h: Json, hdr_class: HdrClass) -> str:
    """A ``log2-32`` histogram in HdrHistogram's compressed encoding (``HISTFAAA...``)."""
    return to_hdr(h, hdr_class).encode().decode("ascii")


@dataclass(frozen=True, slots=True)
class Interval:
    """One line of the log: a measurement's histogram in one run."""

    id: str
    start_s: float  # the run's created_utc, seconds since the epoch; 0 where unknown
    length_s: float  # the measurement's sampling time; 0 where not stored
    histogram: Json


@dataclass(frozen=True, slots=True)
class Export:
    """The log's text, the intervals written, and the measurements left out (no histogram)."""

    text: str
    intervals: int
    skipped: tuple[str, ...]


def _epoch(created_utc: str | None) -> float:
    """``2024-05-01T12:00:00Z`` (or ``+00:00``) as seconds since the epoch; 0.0 if unknown."""
    if not created_utc:
        return 0.0
    text = created_utc[:-1] + "+00:00" if created_utc.endswith("Z") else created_utc
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp())


def intervals(doc: Baseline | Report) -> tuple[list[Interval], list[str]]:
    """The intervals of a report (one per measurement) or a baseline (one per measurement and
    run, oldest run first), and the ids of measurements that have no histogram."""
    found: list[Interval] = []
    skipped: list[str] = []
    if isinstance(doc, Report):
        start = _epoch(doc.created_utc)
        for r in doc.results:
            if r.histogram is None:
                skipped.append(r.id)
            else:
                found.append(Interval(r.id, start, max(0.0, float(r.seconds)), dict(r.histogram)))
        return found, skipped
    for run in doc.runs:
        start = _epoch(run.created_utc)
        for mid in sorted(run.measurements):
            found.append(Interval(mid, start, 0.0, dict(run.measurements[mid].histogram)))
    return found, skipped


def _clean(text: str) -> str:
    return re.sub(r"[\r\n]", "?", text)


def interval_log(doc: Baseline | Report, hdr_class: HdrClass, *, name: str, version: str = "") -> Export:
    """The HdrHistogram interval log (format version 1.3, tagged) of a report or a baseline."""
    found, skipped = intervals(doc)
    starts = [i.start_s for i in found if i.start_s > 0]
    tool = f"pytest-hostperf {version}" if version else "pytest-hostperf"
    lines = [f"#[{tool} export of {_clean(name)}: latency in ns from the stored log2-32 histograms, exact to "
             "1/32 of a power of two (2.2%); tags are measurement ids, percent-encoded]",
             f"#[Histogram log format version {LOG_FORMAT_VERSION}]"]
    if starts:
        first = min(starts)
        iso = datetime.fromtimestamp(first, timezone.utc).isoformat()
        lines.append(f"#[StartTime: {first:.3f} (seconds since epoch), {iso}]")
    lines += ["#[BaseTime: 0.000 (seconds since epoch)]", LEGEND]
    for i in found:
        hist = to_hdr(i.histogram, hdr_class)
        payload = hist.encode()
        max_value = float(hist.get_max_value()) / MAX_VALUE_UNIT_RATIO
        lines.append(f"Tag={tag_of(i.id)},{i.start_s:.3f},{i.length_s:.3f},{max_value:.3f},"
                     f"{payload.decode('ascii')}")
    return Export("\n".join(lines) + "\n", len(found), tuple(skipped))
