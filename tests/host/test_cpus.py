"""CPU lists: parsing, formatting and checking against the allowed CPUs (all in-process)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.host.cpus import (
    allowed_cpus,
    check_cpus,
    default_cpus,
    format_cpu_list,
    parse_cpu_list,
)


@pytest.mark.parametrize(("text", "cpus"), [
    ("3", (3,)), ("2-3", (2, 3)), ("0,2", (0, 2)), ("0-1,3", (0, 1, 3)),
    (" 1 , 0 ", (0, 1)), ("3,1-2,2", (1, 2, 3)), ("5-5", (5,)),
])
def test_parse_cpu_list(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpu_list(text) == cpus


@pytest.mark.parametrize("bad", ["abc", "", " ", "3-2", "-1", "1,", ",1", "1-", "1--2",
                                 "0x1", "1.5", "1 2", "2-1,0", "0-99999999"])
def test_parse_cpu_list_rejects_with_example(bad: str) -> None:
    with pytest.raises(InvalidArgument, match=r"is not a CPU list \(e\.g\. '3' or '2-3'\)") as e:
        parse_cpu_list(bad)
    assert repr(bad) in str(e.value)


def test_parse_cpu_list_message_names_the_problem() -> None:
    assert str(_err(lambda: parse_cpu_list("abc"))) == "'abc' is not a CPU list (e.g. '3' or '2-3')"
    assert "runs backwards" in str(_err(lambda: parse_cpu_list("3-2")))


def _err(fn) -> Exception:
    with pytest.raises(InvalidArgument) as e:
        fn()
    return e.value


@given(st.sets(st.integers(0, 1023), min_size=1))
def test_format_then_parse_gives_the_set_back(cpus: set[int]) -> None:
    text = format_cpu_list(sorted(cpus))
    assert parse_cpu_list(text) == tuple(sorted(cpus))
    assert " " not in text and len(text.split(",")) <= len(cpus)


@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 20)), min_size=1), st.randoms())
def test_any_items_in_any_order_parse_to_their_union(items: list[tuple[int, int]], rnd) -> None:
    rnd.shuffle(items)
    text = ",".join(f"{lo}" if n == 0 else f"{lo}-{lo + n}" for lo, n in items)
    expected = sorted({c for lo, n in items for c in range(lo, lo + n + 1)})
    assert parse_cpu_list(text) == tuple(expected)


def test_check_cpus_names_the_outsiders_and_the_allowed() -> None:
    assert check_cpus([1, 0], allowed=[0, 1, 2]) == (0, 1)
    msg = str(_err(lambda: check_cpus([1, 5, 6], allowed=[0, 1, 2, 3])))
    assert msg == "CPUs 5-6 not allowed for this process; allowed: 0-3"
    assert "CPU 9 not allowed" in str(_err(lambda: check_cpus([9], allowed=[0])))
    assert "no CPU given" in str(_err(lambda: check_cpus([], allowed=[0])))
    assert "'1' is not a CPU number" in str(_err(lambda: check_cpus(["1"], allowed=[1])))
    assert "-1 is not a CPU number" in str(_err(lambda: check_cpus([-1], allowed=[1])))


def test_default_is_the_last_allowed_cpu() -> None:
    assert default_cpus() == (allowed_cpus()[-1],)
    assert list(allowed_cpus()) == sorted(allowed_cpus())
