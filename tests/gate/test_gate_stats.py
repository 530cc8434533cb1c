"""``--hostperf-gate``: which statistics the stored-baseline gate compares, and one verdict from them."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from pytest_hostperf.run.options import parse_gate
from pytest_hostperf.stats import verdict

# As in test_gate.py: changes far beyond any host noise. The tail below puts about 1 call in 250
# at 200x the others' cost: every block of 300 calls holds one or two, so each block's p99.9 is
# a slow call while its p99 (the 3rd to 4th slowest of 300) stays a fast one.
LOOSE = "--hostperf-tolerance=300"
TAIL_TEST = """
import os
from benchmarks.workloads.synthetic import TailWork

def test_tail(hostperf):
    hostperf(TailWork(300, every=250, factor=200.0 if os.environ.get("HOSTPERF_TEST_TAIL") else 1.0), name="tail")
"""


@pytest.mark.parametrize(("text", "stats"), [
    ("p99", ("p99",)), ("p99,p999", ("p99", "p999")), (" P99.9 , max, p99 ", ("p999", "max", "p99")),
    ("p50,p50", ("p50",)), ("p90", ("p90",)),
])
def test_parse_gate(text: str, stats: tuple[str, ...]) -> None:
    assert parse_gate(text) == stats


@pytest.mark.parametrize("text", ["p95", "p99,mean", "", "p99,,p999"])
def test_parse_gate_refuses_unknown_statistics(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"is not a list of statistics: .* is none of p50, p90, "
                       r"p99, p999 \(or p99\.9\), max \(e\.g\. 'p99' or 'p99,p999'\)"):
        parse_gate(text)


def _v(stat: str, status: str, ratio: float = 1.0) -> verdict.Verdict:
    return verdict.Verdict(status=status, stat=stat, ratio=ratio, interval=(ratio * 0.9, ratio * 1.1),
                           baseline_ns=1000.0, current_ns=1000.0 * ratio, tolerance_pct=10.0, baseline_runs=3,
                           reason=f"{verdict.GATED[stat]} {status}")


def test_worst_gated_statistic_is_the_verdict_and_carries_the_others() -> None:
    one = _v("p99", "unchanged")
    assert verdict.worst([one]) is one and verdict.gated_parts(one) == (one,)
    w = verdict.worst([_v("p99", "improved", 0.8), _v("p999", "unchanged"), _v("max", "inconclusive", 1.2)])
    assert (w.status, w.stat) == ("inconclusive", "max")
    assert [o.stat for o in w.others] == ["p999", "p99"]  # unchanged before improved
    assert "other gated statistics: block-median p99.9 unchanged +0%" in w.detail
    assert [p.stat for p in verdict.gated_parts(w)] == ["max", "p999", "p99"] and not verdict.gated_parts(w)[0].others
    # ties go to p99, whatever the order given; every regressed statistic is named in the failure
    both = verdict.worst([_v("p999", "regressed", 3.0), _v("p99", "regressed", 2.0)])
    assert both.stat == "p99" and both.failed
    msg = verdict.regression_message("t.py::t[x]", both)
    assert msg.startswith("t.py::t[x]: block-median p99 regressed: baseline 1.00 us -> current 2.00 us")
    assert "; also block-median p99.9 regressed: baseline 1.00 us -> current 3.00 us, ratio 3.00" in msg
    assert verdict.worst([_v("p99", "unchanged"), _v("p999", "regressed", 3.0)]).stat == "p999"
    new = verdict.worst([_v("p999", "new"), _v("p99", "new")])  # no baseline: nothing compared
    assert (new.stat, new.others) == ("p99", ())


@pytest.mark.parametrize(("args", "ini", "message"), [
    (["--hostperf-gate=p95"], None, "*argument --hostperf-gate: 'p95' is not a list of statistics: 'p95' is none of "
                                    "p50, p90, p99, p999 (or p99.9), max (e.g. 'p99' or 'p99,p999')*"),
    ([], "hostperf_gate = p99,mean", "*ini key hostperf_gate (for --hostperf-gate): 'p99,mean' is not a list of "
                                     "statistics: 'mean' is none of*"),
])
def test_bad_gate_is_a_usage_error(pytester: pytest.Pytester, args: list[str], ini: str | None, message: str) -> None:
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess("--hostperf", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_gated_p999_regression_is_caught_and_named(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nhostperf_samples = 6000\nhostperf_max_time = 0.6\n")
    pytester.makepyfile(TAIL_TEST)
    monkeypatch.delenv("HOSTPERF_TEST_TAIL", raising=False)
    pytester.runpytest_subprocess("--hostperf", "--hostperf-save", LOOSE).assert_outcomes(passed=1)
    monkeypatch.setenv("HOSTPERF_TEST_TAIL", "1")
    # the default gate compares block p99s, which the tail does not reach
    p99_only = pytester.runpytest_subprocess("--hostperf", LOOSE, "--hostperf-json=p99.json")
    assert p99_only.ret == 0, p99_only.stdout.str()
    v = json.loads((pytester.path / "p99.json").read_text())["results"][0]["verdict"]
    assert v["stat"] == "p99" and v["status"] != "regressed"
    gated = pytester.runpytest_subprocess("--hostperf", LOOSE, "--hostperf-gate=p99,p999", "--hostperf-json=r.json")
    gated.assert_outcomes(failed=1)
    gated.stdout.fnmatch_lines(["*test_tail[[]tail[]]: block-median p99.9 regressed: baseline * -> current *, "
                                "ratio *[[]95% CI * .. *[]] (tolerance 300%, 1 baseline run(s))*"])
    doc = json.loads((pytester.path / "r.json").read_text())
    (res,) = doc["results"]
    assert res["verdict"]["stat"] == "p999" and res["verdict"]["status"] == "regressed"
    assert "other gated statistics: block-median p99 " in res["verdict"]["reason"]
    gated.stdout.fnmatch_lines(["*test_tail[[]tail[]]", "* (p99.9[*]) * regressed*"])  # the table names the statistic
    from pytest_hostperf.store.report_schema import check_report

    check_report(doc, Path("r.json"))
