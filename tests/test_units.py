from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.units import format_ns, parse_duration


@pytest.mark.parametrize(("text", "ns"), [
    ("800ns", 800), ("50us", 50_000), ("50µs", 50_000), ("2ms", 2_000_000), ("1.5s", 1_500_000_000),
    (" 0.5 us ", 500), ("1e3ns", 1000), (250, 250), (2.6, 3),
])
def test_parse_duration(text: object, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("bad", ["50", "abc", "-5us", "0us", "5 min", "", "inf ms", True, None, "nanus"])
def test_parse_duration_rejects_with_example(bad: object) -> None:
    with pytest.raises(InvalidArgument, match=r"budget: .*'50us'"):
        parse_duration(bad, what="budget")


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0 ns"), (812, "812 ns"), (12_345, "12.3 us"), (2_500_000, "2.50 ms"), (3e9, "3.00 s"),
    (123_456_789, "123 ms"), (None, "-"),
])
def test_format_ns(ns: float, text: str) -> None:
    assert format_ns(ns) == text


@given(st.integers(min_value=1, max_value=10**12))
def test_format_then_parse_stays_within_rounding(ns: int) -> None:
    value, unit = format_ns(ns).split()
    back = parse_duration(value + unit)
    assert abs(back - ns) <= 0.006 * ns + 1
