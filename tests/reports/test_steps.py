"""Steps tables (``@pytest.mark.hostperf(series=...)``): each step against the one before and
the first, in the summary, the markdown report and ``hostperf show``; and ``cpus="all"``.

Nothing here depends on how fast the host is: the tests check that every figure printed is
the one recomputed from the JSON report, and the table's shape and order.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.reports import steps
from pytest_hostperf.store.records import Report, ResultRecord
from pytest_hostperf.units import format_ns

HUNT = """
import pytest

def work(n):
    acc = 0
    for i in range(n):
        acc = (acc + i * i) & 0xFFFF
    return acc

UNPINNED = pytest.mark.hostperf(group="hunt", series="hunt", rt="off", cpus="all")
PINNED = pytest.mark.hostperf(group="hunt", series="hunt")

@pytest.mark.parametrize("n", [pytest.param(3000, id="a", marks=UNPINNED),
                               pytest.param(1000, id="b", marks=PINNED),
                               pytest.param(300, id="c", marks=PINNED)])
def test_step(hostperf, n):
    hostperf(work, n, name=f"work{n}")

def test_outside(hostperf):
    hostperf(work, 10, name="other")
"""


@pytest.fixture
def hunt(fast_ini: pytest.Pytester) -> tuple[pytest.Pytester, pytest.RunResult, Report]:
    fast_ini.makepyfile(test_hunt=HUNT)
    res = fast_ini.runpytest_subprocess("--hostperf", "--hostperf-json=r.json", "--hostperf-markdown=r.md",
                                        "-p", "no:xdist")
    assert res.ret == 0, res.stdout.str()
    doc = json.loads((fast_ini.path / "r.json").read_text())
    return fast_ini, res, Report.from_json(doc)


def _series(report: Report) -> list[ResultRecord]:
    return steps.series(report.results)["hunt"]


def test_the_steps_table_prints_what_the_report_holds(hunt: tuple[pytest.Pytester, pytest.RunResult, Report]) -> None:
    _, res, report = hunt
    recs = _series(report)
    assert [r.name for r in recs] == ["work3000", "work1000", "work300"]  # run order; test_outside is not a step
    out = res.stdout.str()
    assert "hunt (steps in the order measured):" in out
    table = steps.steps(recs)
    for s in table:
        line = next(x for x in out.splitlines() if x.startswith(s.record.name + " "))
        cells = line.split()
        assert format_ns(s.record.p99_ns).replace(" ", "") in "".join(cells)
        if s.incremental is not None:
            assert s.incremental.text() in line and s.cumulative is not None and s.cumulative.text() in line
    # the incremental ratio is p99* of this step / p99* of the one before, recomputed here
    b, a = table[1].record, table[0].record
    assert table[1].incremental is not None and table[1].incremental.ratio == pytest.approx(
        steps.gate_p99(b) / steps.gate_p99(a))
    assert steps.verdict_line("hunt", table) in out
    assert steps.NOTE in out


def test_the_markdown_report_has_the_steps_table(hunt: tuple[pytest.Pytester, pytest.RunResult, Report]) -> None:
    path, _, report = hunt
    md = (path.path / "r.md").read_text()
    table = steps.steps(_series(report))
    assert "#### hunt" in md
    assert "| step | n | p50 | p99 | p99.9 | p99* | p99* vs previous [95% CI] | p99* vs first [95% CI] |" in md
    for s in table[1:]:
        assert s.cumulative is not None and s.cumulative.text() in md


def test_hostperf_show_prints_the_steps_table_of_a_report(hunt: tuple[pytest.Pytester, pytest.RunResult, Report],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_hostperf import cli

    path, _, report = hunt
    capsys.readouterr()
    assert cli.main(["show", str(path.path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "hunt (steps in the order measured):" in out
    assert steps.verdict_line("hunt", steps.steps(_series(report))) in out


def test_series_is_in_the_report_and_cpus_all_leaves_the_process_unpinned(
        hunt: tuple[pytest.Pytester, pytest.RunResult, Report]) -> None:
    _, _, report = hunt
    by = {r.name: r for r in report.results}
    assert by["other"].series is None and by["work300"].series == "hunt"
    a = by["work3000"].host
    assert a is not None and list(a.cpus) == sorted(os.sched_getaffinity(0))  # cpus="all"
    assert a.policy == "SCHED_OTHER"
    pinned = by["work1000"].host
    assert pinned is not None and len(pinned.cpus) == 1


def test_a_smoke_run_makes_no_steps_table(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hunt=HUNT)
    res = pytester.runpytest_subprocess("-p", "no:xdist")
    assert res.ret == 0
    res.stdout.no_fnmatch_line("*steps in the order measured*")


@pytest.mark.parametrize("bad", ["", "  ", 3])
def test_a_bad_series_names_the_marker_key(pytester: pytest.Pytester, bad: object) -> None:
    from pytest_hostperf.run.settings import parse_marker

    pytester.makepyfile(f"""
        import pytest
        @pytest.mark.hostperf(series={bad!r})
        def test_x():
            pass
    """)
    (item,) = pytester.getitems(pytester.path)
    with pytest.raises(InvalidArgument, match=r"hostperf\(series=...\).*e\.g\. 'latency hunt'"):
        parse_marker(item)


def test_steps_of_unlike_batches_are_not_compared() -> None:
    blocks = [{"p50_ns": 10, "p90_ns": 20, "p99_ns": 30, "p999_ns": 40, "max_ns": 50, "n": 100}] * 3

    def rec(name: str, batch: int) -> ResultRecord:
        return ResultRecord.from_json({"id": f"t[{name}]", "mode": "single" if batch == 1 else f"batched({batch})",
                                       "batch": batch, "n": 300, "p50_ns": 10, "p90_ns": 20, "p99_ns": 30,
                                       "p999_ns": 40, "blocks": blocks, "series": "s"})

    table = steps.steps([rec("a", 1), rec("b", 8)])
    assert table[1].incremental is not None and table[1].incremental.ratio is None
    assert table[1].incremental.text() == "not like for like (single -> batched(8))"
    assert "first to last not compared (not like for like" in steps.verdict_line("s", table)


def test_the_steps_plot_draws_one_curve_per_step(hunt: tuple[pytest.Pytester, pytest.RunResult, Report],
                                                 tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    from pytest_hostperf.reports import compare, plots

    _, _, report = hunt
    src = compare.source_from_report(report)
    assert plots.groups([src])["hunt"] == [r.id for r in _series(report)]  # one group, in step order
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the plot extra: pip install -e '.[plot]')")
    written = plots.write_plots([("current", src)], tmp_path / "plots")
    svg = next(p for p in written if p.name == "hunt.svg")
    texts = {t.text for t in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}text")}
    assert {"work3000 — current", "work1000 — current", "work300 — current"} <= texts
