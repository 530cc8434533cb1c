"""Durations: parse "50us" into integer nanoseconds, and format nanoseconds for people."""
from __future__ import annotations

import math
import re

from pytest_hostperf.errors import InvalidArgument

#: The statistics every measurement has, as records, budgets, gates and reports name them.
STATS = ("p50", "p90", "p99", "p999", "max")
#: How a reader sees them: ``p999`` is ``p99.9``.
STAT_LABELS = {"p50": "p50", "p90": "p90", "p99": "p99", "p999": "p99.9", "max": "max"}

_UNITS_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?\s*(ns|us|µs|μs|ms|s)\s*$")


def parse_duration(value: str | int | float, *, what: str = "duration") -> int:
    """Parse a duration into integer nanoseconds.

    Strings need a unit (``"800ns"``, ``"50us"``, ``"2ms"``, ``"1.5s"``); plain ints and floats
    are taken as nanoseconds.

    >>> parse_duration("50us")
    50000
    """
    if isinstance(value, bool):
        raise InvalidArgument(f"{what}: {value!r} is not a duration (e.g. '50us', '2ms', '800ns')")
    if isinstance(value, (int, float)):
        ns = float(value)
    elif isinstance(value, str):
        m = _DURATION_RE.match(value)
        if not m:
            raise InvalidArgument(
                f"{what}: {value!r} is not a duration; give a number and a unit "
                "(ns, us, ms, s), e.g. '50us', '2ms', '800ns'"
            )
        mantissa, exponent, unit = m.groups()
        ns = float(mantissa) * (10 ** int(exponent) if exponent else 1) * _UNITS_NS[unit]
    else:
        raise InvalidArgument(f"{what}: {value!r} is not a duration (e.g. '50us', '2ms', '800ns')")
    if not math.isfinite(ns) or ns <= 0:
        raise InvalidArgument(f"{what}: {value!r} must be a positive, finite duration (e.g. '50us')")
    return round(ns)


def format_factor(x: float) -> str:
    """A ratio or factor to three significant figures at most: ``0.48``, ``12.4``, ``157``."""
    return f"{x:.2f}" if x < 9.995 else f"{x:.1f}" if x < 99.95 else f"{x:.0f}"


def format_ns(ns: float | int | None) -> str:
    """Format nanoseconds with three significant digits and a readable unit.

    >>> format_ns(812), format_ns(12_345), format_ns(2_500_000)
    ('812 ns', '12.3 us', '2.50 ms')
    """
    if ns is None or (isinstance(ns, float) and math.isnan(ns)):
        return "-"
    value = float(ns)
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):  # noqa: B007 (used after the loop)
        if abs(value) >= scale:
            scaled = value / scale
            break
    else:
        return f"{value:.0f} ns"
    digits = 2 if abs(scaled) < 10 else 1 if abs(scaled) < 100 else 0
    return f"{scaled:.{digits}f} {unit}"


_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value: str, *, what: str = "size") -> int:
    """A size in bytes from ``"512MiB"``, ``"2GB"``, ``"1.5GiB"`` or a plain number of bytes.

    >>> parse_size("1GiB"), parse_size("300MB"), parse_size("4096")
    (1073741824, 300000000, 4096)
    """
    m = _SIZE_RE.match(value) if isinstance(value, str) else None
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _SIZE_UNITS or float(m.group(1)) <= 0:
        raise InvalidArgument(f"{what}: {value!r} is not a size; give a number and a unit (B, KB, MB, GB, KiB, "
                              "MiB, GiB), e.g. '1GiB' or '500MB'")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def format_bytes(n: int) -> str:
    """Bytes for people: ``2.1 GiB``, ``512 MiB``, ``64 KiB``.

    >>> format_bytes(3 << 29), format_bytes(512 << 20), format_bytes(65536)
    ('1.5 GiB', '512 MiB', '64 KiB')
    """
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.0f} MiB"
    return f"{n // 1024} KiB"


def could_tell_pct(interval: tuple[float, float] | None) -> float | None:
    """What a comparison could tell: the half-width of its ratio's 95% interval ``(lo, hi)``,
    in percent, taken in log space (sqrt(hi/lo) - 1) as the intervals are. A true change smaller
    than this is within the interval's reach either way, so it could not be called.

    >>> round(could_tell_pct((0.9, 1.1)), 1)
    10.6
    >>> could_tell_pct(None) is None
    True
    """
    if interval is None:
        return None
    lo, hi = interval
    if not (lo > 0 and hi >= lo) or hi == float("inf"):
        return None
    return float(((hi / lo) ** 0.5 - 1) * 100)
