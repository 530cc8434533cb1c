"""Per-measurement budgets: ``hostperf(fn, ..., p99=..., p999=..., max=...)`` over the marker's.

Budgets in these tests sit far from the latency measured (1 ns, or 10 s, against a sleep of
0.1 ms), so no outcome here can depend on the host's speed.
"""
from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.run.settings import measurement_budgets, parse_budgets
from pytest_hostperf.store.report_schema import check_report


def _validate(doc: Any) -> None:
    """The report validates against docs/schemas/report.schema.json (when jsonschema is here)
    and against the loader's own checks."""
    from pathlib import Path

    check_report(doc, "r.json")
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - jsonschema is in the dev extra
        return
    schema = json.loads((Path(__file__).resolve().parents[2] / "docs" / "schemas" / "report.schema.json")
                        .read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(doc)


def test_measurement_budgets_replace_the_markers_per_statistic() -> None:
    marker = {"p99": 50_000, "max": 2_000_000}
    assert measurement_budgets(marker, {"p99": None, "p999": None, "max": None}) == marker
    assert measurement_budgets(marker, {"p99": "1us", "p999": 800}) == {"p99": 1_000, "p999": 800, "max": 2_000_000}
    assert measurement_budgets(marker, {"p99": "off", "max": " OFF "}) == {}
    assert measurement_budgets({}, {"max": "1.5s"}) == {"max": 1_500_000_000}
    # parsed exactly as the marker's budgets: one parser, only the name in the message differs
    assert parse_budgets({"p99": "2ms"}, where=str) == measurement_budgets({}, {"p99": "2ms"})


@pytest.mark.parametrize(("given", "message"), [
    ({"p99": "fast"}, r"hostperf\(\.\.\., p99=\.\.\.\): 'fast' is not a duration; .*e\.g\. '50us'"),
    ({"p999": True}, r"hostperf\(\.\.\., p999=\.\.\.\): True is not a duration \(e\.g\. '50us'"),
    ({"max": -1}, r"hostperf\(\.\.\., max=\.\.\.\): -1 must be a positive, finite duration \(e\.g\. '50us'\)"),
    ({"max": "5 parsecs"}, r"hostperf\(\.\.\., max=\.\.\.\): '5 parsecs' is not a duration"),
])
def test_bad_measurement_budget_names_keyword_value_and_example(given: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        measurement_budgets({}, given)


def test_each_measurement_fails_only_on_its_own_budget(fast_ini: pytest.Pytester) -> None:
    fast_ini.makepyfile("""
        import time
        import pytest

        @pytest.mark.hostperf(p99="10s")
        def test_pair(hostperf):
            hostperf(time.sleep, 0.0001, name="tight", p99="1ns")
            hostperf(time.sleep, 0.0001, name="loose", p99="10s", max="10s")
            hostperf(time.sleep, 0.0001, name="marker")

        @pytest.mark.hostperf(p99="1ns")
        def test_slow_side_lifted(hostperf):
            hostperf(time.sleep, 0.0001, name="slow_side", p99="off", p999="10s")
    """)
    result = fast_ini.runpytest_subprocess("--hostperf", "--hostperf-json=r.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_pair[[]tight[]]: p99 * [[]95% CI * .. *[]] is over its budget of 1 ns*"])
    result.stdout.no_fnmatch_line("*test_pair[[]loose[]]: * over its budget*")
    result.stdout.no_fnmatch_line("*test_pair[[]marker[]]: * over its budget*")
    result.stdout.no_fnmatch_line("*slow_side*over its budget*")
    doc = json.loads((fast_ini.path / "r.json").read_text())
    _validate(doc)
    budgets = {r["name"]: {b["stat"]: (b["budget_ns"], b["status"]) for b in r["budgets"]} for r in doc["results"]}
    assert budgets == {
        "tight": {"p99": (1, "over-budget")},
        "loose": {"p99": (10**10, "within"), "max": (10**10, "within")},
        "marker": {"p99": (10**10, "within")},
        "slow_side": {"p999": (10**10, "within")},
    }


def test_bad_values_and_keyword_rules_in_smoke_mode(pytester: pytest.Pytester) -> None:
    """Budgets are validated on every call, smoke mode too (where none is enforced); a keyword
    that fn takes itself is never silently taken for a budget."""
    pytester.makepyfile("""
        import pytest

        seen = {}

        def clamp(x, max=None, name=None):
            seen.update(x=x, max=max, name=name)
            return x

        def test_bad_p99(hostperf):
            hostperf(len, "a", p99="fast")

        def test_bad_max(hostperf):
            hostperf(len, "a", max=0)

        def test_bad_kwargs(hostperf):
            hostperf(len, "a", kwargs=["max"])

        def test_fn_takes_max_itself(hostperf):
            hostperf(clamp, 3, max="1ms")

        def test_kwargs_pass_fn_keywords_of_hostperf_names(hostperf):
            hostperf(clamp, 3, max="10s", kwargs={"max": 2, "name": "fn's"}, name="clamped")
            assert seen == {"x": 3, "max": 2, "name": "fn's"}

        def test_other_keywords_still_go_to_fn(hostperf):
            hostperf(clamp, 4, p999="10s", name="direct")  # clamp takes no p999: no clash
            assert seen["x"] == 4
            hostperf(sorted, [2, 1], reverse=True, name="reversed")

        def test_smoke_mode_enforces_no_budget(hostperf):
            hostperf(len, "a", p99="1ns")
    """)
    result = pytester.runpytest_subprocess("--tb=short")
    result.assert_outcomes(passed=3, failed=4)
    result.stdout.fnmatch_lines_random([
        "E*InvalidArgument: hostperf(..., p99=...): 'fast' is not a duration; give a number and a unit*'50us'*",
        "E*InvalidArgument: hostperf(..., max=...): 0 must be a positive, finite duration (e.g. '50us')",
        "E*InvalidArgument: hostperf(..., kwargs=...): [[]'max'[]] is not a mapping of keyword names to values*",
        "E*InvalidArgument: hostperf(fn, ..., max=...): max= is this measurement's max budget, never an "
        "argument of fn, but 'clamp' takes a 'max' argument too; pass fn's own as kwargs={'max': ...}*",
    ])
