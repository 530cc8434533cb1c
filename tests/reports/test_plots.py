"""Percentile-distribution plots: the nines axis, curves from histograms, PNG and SVG files, and
the install hint when matplotlib is missing (simulated by hiding it from the import system)."""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from compare_data import ARENA, AUDIT_AMD, AUDIT_INTEL, FIFO, FP_AMD, FP_INTEL, MALLOC, OTHER, baseline_doc, report_doc

from pytest_hostperf import cli
from pytest_hostperf.errors import PlotUnavailable
from pytest_hostperf.reports import compare, plots
from pytest_hostperf.store import disk, histogram
from pytest_hostperf.store.records import Report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"


def needs_matplotlib() -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the plot extra: pip install -e '.[plot]')")


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    a.write_text(disk.to_json(baseline_doc(FP_AMD, AUDIT_AMD, {ARENA: 1.0, MALLOC: 3.0}, FIFO)))
    b.write_text(disk.to_json(baseline_doc(FP_INTEL, AUDIT_INTEL, {ARENA: 0.5, MALLOC: 3.9}, OTHER)))
    return a, b


def test_nines_axis() -> None:
    assert np.allclose(plots.nines([50, 90, 99, 99.9, 99.99]), [np.log10(2), 1, 2, 3, 4])


def test_curve_from_histogram_is_monotone_and_matches_its_percentiles(pair: tuple[Path, Path]) -> None:
    src = compare.load_input(str(pair[0]))
    m = src.measurements[ARENA]
    assert m.histogram is not None and m.histogram["total"] == 3 * 2000  # merged over the 3 runs
    x, y = plots.curve(m)
    assert x[0] == pytest.approx(np.log10(2)) and x[-1] == pytest.approx(np.log10(6000))  # as far as n reaches
    assert np.all(np.diff(x) > 0) and np.all(np.diff(y) >= 0)
    at = {q: float(y[np.isclose(x, plots.nines(q))][0]) for q in (50, 99)}
    assert at == {q: pytest.approx(float(histogram.histogram_percentiles(m.histogram, [q])[0])) for q in (50, 99)}


def test_curve_without_histogram_uses_the_stored_percentiles() -> None:
    doc = report_doc(FP_AMD, {ARENA: 1.0})
    del doc["results"][0]["histogram"]
    m = compare.source_from_report(Report.from_json(doc)).measurements[ARENA]
    x, y = plots.curve(m)
    assert np.allclose(x, plots.nines([50, 90, 99, 99.9]))
    assert list(y) == [m.p50_ns, m.p90_ns, m.p99_ns, m.p999_ns]


def test_groups_are_the_marker_group_else_the_test() -> None:
    doc = report_doc(FP_AMD, {ARENA: 1.0, MALLOC: 1.0, "b.py::test_q[ring]": 1.0})
    doc["results"][2]["group"] = "handoff"
    src = compare.source_from_report(Report.from_json(doc))
    assert plots.groups([src]) == {"bench.py::test_alloc": [ARENA, MALLOC], "handoff": ["b.py::test_q[ring]"]}


def test_png_and_svg_show_baseline_and_current_apart(pair: tuple[Path, Path], tmp_path: Path) -> None:
    needs_matplotlib()
    a, b = (compare.load_input(str(p)) for p in pair)
    written = plots.write_plots([("baseline", a), ("current", b)], tmp_path / "out")
    assert sorted(p.name for p in written) == ["bench.py-test_alloc.png", "bench.py-test_alloc.svg"]
    png, svg = sorted(written)
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    root = ET.parse(svg).getroot()
    assert root.tag == f"{SVG}svg"
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert {"arena — baseline", "arena — current", "malloc — baseline", "malloc — current"} <= texts
    assert {"p50", "p90", "p99", "p99.9", "p99.99"} <= texts
    groups = {g.get("id"): g for g in root.iter(f"{SVG}g") if (g.get("id") or "").startswith("hostperf-")}
    assert set(groups) == {"hostperf-baseline-0", "hostperf-current-0", "hostperf-baseline-1", "hostperf-current-1"}

    def line_style(gid: str) -> str:
        return next(p.get("style") or "" for p in groups[gid].iter(f"{SVG}path"))

    # the baseline is dashed, the current run solid: the two can be told apart even in grey
    assert "stroke-dasharray" in line_style("hostperf-baseline-0")
    assert "stroke-dasharray" not in line_style("hostperf-current-0")


def test_cli_plot_writes_files(pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    needs_matplotlib()
    code = cli.main(["plot", str(pair[0]), str(pair[1]), "--out", str(tmp_path / "p")])
    out = capsys.readouterr().out
    assert code == 0 and sorted(Path(x).suffix for x in out.split()) == [".png", ".svg"]
    assert cli.main(["plot", str(pair[0]), "--out", str(tmp_path / "one")]) == 0  # one input alone
    assert len(list((tmp_path / "one").iterdir())) == 2


def test_without_matplotlib_the_message_says_how_to_install(pair: tuple[Path, Path], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(PlotUnavailable, match=r"install it with: pip install 'pytest-hostperf\[plot\]'"):
        plots.require_matplotlib()
    code = cli.main(["plot", str(pair[0]), str(pair[1]), "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == ("hostperf: error: plots need matplotlib, which is not installed; "
                           "install it with: pip install 'pytest-hostperf[plot]'")
    assert not (tmp_path / "p").exists()


def test_legend_names_stay_unique_in_parametrized_groups() -> None:
    ids = ["t.py::test_a[64][fresh]", "t.py::test_a[4096][fresh]", "t.py::test_a[64][arena]"]
    assert plots._labels(ids) == {ids[0]: "test_a[64][fresh]", ids[1]: "test_a[4096][fresh]", ids[2]: "arena"}


def test_rate_sweeps_are_drawn_latency_against_offered_rate(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from pytest_hostperf.reports import plots

    def rec(name: str, rate: float, p99: float, saturated: bool = False) -> SimpleNamespace:
        return SimpleNamespace(nodeid="t.py::test_knee", name=name, p50_ns=p99 / 2, p99_ns=p99, p999_ns=p99 * 2,
                               load={"rate_per_s": rate, "saturated": saturated})

    results = [rec("svc@8k/s", 8000, 9e4), rec("svc@4k/s", 4000, 8e4), rec("svc@16k/s", 16000, 3e6, True),
               rec("alone@1k/s", 1000, 1e5), SimpleNamespace(nodeid="t.py::x", name="closed", load=None)]
    pts = plots.sweep_points(results)
    assert list(pts) == ["t.py::test_knee svc"]  # one sweep of 2+ rates; a single rate or a closed loop is none
    assert [p[0] for p in pts["t.py::test_knee svc"]] == [4000, 8000, 16000] and pts["t.py::test_knee svc"][2][4]
    written = plots.write_sweep_plots(results, tmp_path)
    assert sorted(p.suffix for p in written) == [".png", ".svg"] and all(p.stat().st_size > 1000 for p in written)
    assert "offered rate" in next(p for p in written if p.suffix == ".svg").read_text()
