"""`hostperf export --format hdr` (HdrHistogram's interval log) and `hostperf show --percentiles`.

Exports of a baseline and a report made by the project's own code are decoded back with the
hdrhistogram package and checked against the stored log2-32 histograms; without the package
(simulated by hiding it from the import system) the command names the extra to install.
"""
from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from compare_data import ARENA, AUDIT_AMD, FIFO, FP_AMD, MALLOC, RING, baseline_doc, report_doc

from pytest_hostperf import cli
from pytest_hostperf.errors import HdrUnavailable
from pytest_hostperf.reports import compare
from pytest_hostperf.reports import export as hdr
from pytest_hostperf.store import disk
from pytest_hostperf.store import disk as store
from pytest_hostperf.store.histogram import SUB_BUCKETS, encode_histogram, histogram_percentiles, histogram_samples
from pytest_hostperf.store.records import Report
from pytest_hostperf.units import format_ns

#: An id HdrHistogram's log readers would split: a comma, spaces and a percent sign.
ODD = "bench.py::test_odd[a, b 5%]"
BUCKET = 2 ** (1 / SUB_BUCKETS) - 1  # one log2-32 bucket's relative width (2.2%)
HDR_DIGITS = 1e-3  # HdrHistogram's own precision at 3 significant digits
QS = (1.0, 10.0, 50.0, 90.0, 99.0, 99.9)


def needs_hdrhistogram() -> Any:
    """The HdrHistogram class, or skip."""
    module = pytest.importorskip("hdrh.histogram",
                                 reason="hdrhistogram is not installed (it is in the hdr and dev extras)")
    return module.HdrHistogram


@pytest.fixture
def base_file(tmp_path: Path) -> Path:
    path = tmp_path / "base.json"
    path.write_text(disk.to_json(baseline_doc(FP_AMD, AUDIT_AMD, {ARENA: 1.0, MALLOC: 3.0, ODD: 0.5}, FIFO)))
    return path


def _write_report(path: Path, doc: dict[str, Any]) -> Path:
    disk.write_report(path, Report.from_json(doc))  # the plugin's own writer
    return path


@pytest.fixture
def report_file(tmp_path: Path) -> Path:
    return _write_report(tmp_path / "terminal.json", report_doc(FP_AMD, {RING: 1.0, ARENA: 2.0}))


def _epoch(utc: str) -> float:
    return datetime.fromisoformat(utc.replace("Z", "+00:00")).timestamp()


def _intervals(text: str) -> list[tuple[str, float, float, float, str]]:
    """(id, start s, length s, max ms, payload) of each interval line."""
    out = []
    for line in text.splitlines():
        if line.startswith("Tag="):
            fields = line.split(",")
            assert len(fields) == 5, line
            tag, start, length, max_ms, payload = fields
            assert " " not in tag
            out.append((unquote(tag[len("Tag="):]), float(start), float(length), float(max_ms), payload))
    return out


def _check_same(hist: Any, h: dict[str, Any]) -> None:
    """An HdrHistogram decoded from an export holds the stored histogram's values and counts."""
    values, counts = histogram_samples(h)
    assert hist.get_total_count() == h["total"] == int(counts.sum())
    expected: dict[int, int] = {}
    for v, c in zip(values.tolist(), counts.tolist()):  # values HdrHistogram cannot tell apart add up
        key = hist.get_lowest_equivalent_value(v)
        expected[key] = expected.get(key, 0) + c
    assert {k: hist.get_count_at_value(k) for k in expected} == expected
    assert hist.values_are_equivalent(hist.get_min_value(), h["min_ns"])
    assert hist.values_are_equivalent(hist.get_max_value(), h["max_ns"])
    for q in QS:  # nearest rank (HdrHistogram) against interpolation (numpy's linear): within a bucket
        ours = float(histogram_percentiles(h, [q])[0])
        assert hist.get_value_at_percentile(q) == pytest.approx(ours, rel=BUCKET + 2 * HDR_DIGITS, abs=1), q


# --------------------------------------------------------------------------- export


def test_export_of_a_baseline_decodes_back_run_by_run(base_file: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    HdrHistogram = needs_hdrhistogram()
    out = tmp_path / "base.hlog"
    assert cli.main(["export", str(base_file), "--format", "hdr", "-o", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"{out}: 9 histogram(s) of {base_file}")
    text = out.read_text()
    lines = text.splitlines()
    assert lines[1] == "#[Histogram log format version 1.3]"
    assert lines[2].startswith(f"#[StartTime: {_epoch('2024-05-01T12:00:00Z'):.3f} (seconds since epoch), ")
    assert lines[3] == "#[BaseTime: 0.000 (seconds since epoch)]"
    assert lines[4] == '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'

    runs = disk.load(base_file).runs
    found = _intervals(text)
    assert [(mid, start) for mid, start, *_ in found] == [
        (mid, _epoch(run.created_utc)) for run in runs for mid in sorted(run.measurements)]
    assert ODD in {mid for mid, *_ in found}
    for (mid, _, length, max_ms, payload), run in zip(found, [r for r in runs for _ in range(3)]):
        assert payload.startswith("HISTFAAA") and length == 0.0
        h = run.measurements[mid].histogram
        hist = HdrHistogram.decode(payload)
        _check_same(hist, h)
        assert max_ms == pytest.approx(h["max_ns"] / 1e6, abs=1e-3)
    # a tool that adds a tag's intervals gets the histogram the gate compares with (the runs merged)
    merged = compare.load_input(str(base_file)).measurements[ARENA].histogram
    assert merged is not None
    total = HdrHistogram(1, 10**12, 3)
    for mid, *_, payload in found:
        if mid == ARENA:
            total.add(HdrHistogram.decode(payload))
    assert total.get_total_count() == merged["total"] == 3 * 2000
    for q in (50.0, 99.0):
        ours = float(histogram_percentiles(merged, [q])[0])
        assert total.get_value_at_percentile(q) == pytest.approx(ours, rel=BUCKET + 2 * HDR_DIGITS, abs=1)


def test_hdrhistograms_own_log_reader_reads_the_export(base_file: Path, tmp_path: Path) -> None:
    HdrHistogram = needs_hdrhistogram()
    from hdrh.log import HistogramLogReader

    out = tmp_path / "base.hlog"
    assert cli.main(["export", str(base_file), "-o", str(out)]) == 0
    reader = HistogramLogReader(str(out), HdrHistogram(1, 10**12, 3))
    read = []
    while (hist := reader.get_next_interval_histogram()) is not None:
        read.append((unquote(hist.get_tag()), hist.get_start_time_stamp() / 1000.0, hist.get_total_count()))
    reader.close()
    runs = disk.load(base_file).runs
    assert read == [(mid, pytest.approx(_epoch(run.created_utc)), 2000)
                    for run in runs for mid in sorted(run.measurements)]


def test_export_of_a_report_to_stdout(report_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    HdrHistogram = needs_hdrhistogram()
    assert cli.main(["export", str(report_file)]) == 0  # --format hdr is the default
    captured = capsys.readouterr()
    assert captured.err == ""
    found = _intervals(captured.out)
    assert [mid for mid, *_ in found] == [RING, ARENA]
    results = store.read_report(report_file).results
    for (_, start, length, _, payload), r in zip(found, results):
        assert start == _epoch("2024-06-01T09:30:00+00:00") and length == pytest.approx(r.seconds, abs=1e-3)
        assert r.histogram is not None
        _check_same(HdrHistogram.decode(payload), r.histogram)
    assert results[0].histogram is not None
    assert hdr.encode(results[0].histogram, HdrHistogram) == found[0][4]


def test_measurements_without_a_histogram_are_named_and_left_out(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    needs_hdrhistogram()
    doc = report_doc(FP_AMD, {RING: 1.0, ARENA: 2.0})
    del doc["results"][0]["histogram"]
    path = _write_report(tmp_path / "old.json", doc)
    assert cli.main(["export", str(path)]) == 0
    captured = capsys.readouterr()
    assert [mid for mid, *_ in _intervals(captured.out)] == [ARENA]
    assert captured.err == (f"hostperf: {RING}: no histogram stored (a report written before histograms were "
                            "kept); left out\n")


def test_tags_are_ids_the_log_readers_do_not_split() -> None:
    for mid in (ODD, "t.py::test_x[tab\there]", "t.py::test_x[new\nline]", "t.py::test_x[é,ü]", "plain[x]"):
        tag = hdr.tag_of(mid)
        assert not any(c in tag for c in " ,\t\r\n") and unquote(tag) == mid
    assert hdr.tag_of("plain[x]") == "plain[x]"


def test_a_single_sample_and_zero_ns_export() -> None:
    HdrHistogram = needs_hdrhistogram()
    for samples in ([5], [0, 0, 3], [10**12]):
        h = encode_histogram(samples)
        _check_same(HdrHistogram.decode(hdr.encode(h, HdrHistogram)), h)


def test_without_hdrhistogram_the_message_says_how_to_install(base_file: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "hdrh", None)  # import hdrh... now raises ImportError
    monkeypatch.setitem(sys.modules, "hdrh.histogram", None)
    with pytest.raises(HdrUnavailable, match=r"install it with: pip install 'pytest-hostperf\[hdr\]'"):
        hdr.require_hdrhistogram()
    out = tmp_path / "x.hlog"
    assert cli.main(["export", str(base_file), "--format", "hdr", "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        "hostperf: error: hostperf export --format hdr needs the hdrhistogram package, which is not installed; "
        "install it with: pip install 'pytest-hostperf[hdr]'")
    assert not out.exists()


def test_export_of_an_unreadable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    needs_hdrhistogram()
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert cli.main(["export", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err


# --------------------------------------------------------------------------- show --percentiles


def _percentile_rows(out: str, qs: list[str], ids: list[str]) -> dict[str, list[str]]:
    """The cells after the id of each measurement's row in the percentile table (split on spaces)."""
    lines = out.splitlines()
    start = lines.index(next(x for x in lines if x.split() == ["measurement", "mode", "samples", *qs]))
    assert set(lines[start + 1]) == {"-", " "}
    rows = lines[start + 2:start + 2 + len(ids)]
    assert sorted(r.split(" ")[0] for r in rows) == sorted(mid.split(" ")[0] for mid in ids)
    return {mid: next(r for r in rows if r.startswith(mid + " "))[len(mid):].split() for mid in ids}


def _ns_cells(values: Any) -> list[str]:
    return " ".join(format_ns(float(v)) for v in values).split()


def test_show_percentiles_of_a_baseline_are_the_merged_histograms(base_file: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["show", str(base_file), "--percentiles", "50,99,99.99"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"baseline {base_file}\n")  # the usual view first
    rows = _percentile_rows(out, ["p50", "p99", "p99.99"], [ARENA, MALLOC, ODD])
    src = compare.load_input(str(base_file))
    for mid in (ARENA, MALLOC, ODD):
        m = src.measurements[mid]
        assert m.histogram is not None
        assert rows[mid] == ["single", "6000", *_ns_cells(histogram_percentiles(m.histogram, [50, 99, 99.99]))]
    assert "p50, p99, p99.99: recomputed from the stored log2-32 histograms; a baseline's runs merged" in out


def test_show_percentiles_of_a_report(report_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["show", str(report_file), "--percentiles", "p90, 99.9,90"]) == 0  # duplicates dropped
    out = capsys.readouterr().out
    assert out.startswith("measurement")  # the run's table first
    rows = _percentile_rows(out, ["p90", "p99.9"], [RING, ARENA])
    for r in store.read_report(report_file).results:
        assert r.histogram is not None
        assert rows[r.id] == ["single", "2000", *_ns_cells(histogram_percentiles(r.histogram, [90, 99.9]))]
    # a report without histograms shows dashes there
    doc = report_doc(FP_AMD, {RING: 1.0})
    del doc["results"][0]["histogram"]
    old = _write_report(tmp_path / "old.json", doc)
    assert cli.main(["show", str(old), "--percentiles", "50"]) == 0
    out = capsys.readouterr().out
    assert _percentile_rows(out, ["p50"], [RING]) == {RING: ["single", "-", "-"]}
    assert "-: no histogram stored" in out


def test_percentiles_parse() -> None:
    assert cli._percentiles("50, 99,99.99,p99.9,50") == [50.0, 99.0, 99.99, 99.9]
    assert cli._percentiles("0,100") == [0.0, 100.0]


@pytest.mark.parametrize("bad", ["101", "abc", "50,,99", "-1", "nan", "inf", "", "99,1e3"])
def test_bad_percentiles_are_a_usage_error_naming_option_value_and_example(
        bad: str, base_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["show", str(base_file), f"--percentiles={bad}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --percentiles:" in err and repr(bad) in err
    assert "e.g. --percentiles 50,99,99.99" in err
