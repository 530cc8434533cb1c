"""Headline percentiles are pooled over all calls, and every output agrees on them (issue 15).

``stats.pooled``: exact points, intervals from a bootstrap over blocks. Then every percentile
that ``hostperf show`` / ``compare`` (table, markdown, JSON), the terminal summary, the JSON
report, ``--hostperf-markdown`` and the plots print, on the committed baseline and on a fresh
run, equals the percentile of the stored distribution (the measurement's ``log2-32``
histogram; for a baseline the histogram merged over its runs) to the histogram's bucket width.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_hostperf import cli
from pytest_hostperf.measure.sampling import Samples
from pytest_hostperf.reports import compare, model, plots
from pytest_hostperf.reports import terminal as report
from pytest_hostperf.stats import percentiles as stats
from pytest_hostperf.stats.result import summarize
from pytest_hostperf.store.histogram import SUB_BUCKETS, histogram_percentiles, merge_histograms
from pytest_hostperf.store.records import ResultRecord
from pytest_hostperf.units import format_ns, parse_duration

REPO = Path(__file__).resolve().parents[2]
#: The committed baselines (one per host class).
BASELINES = sorted((REPO / "baselines").glob("*.json"))
#: One bucket of the ``log2-32`` histogram: a percentile read from it is this close to the exact one.
BUCKET = 2 ** (1 / SUB_BUCKETS)
#: Printed values have three significant digits: half a unit of the last one, relative, at most.
PRINTED = 1.005
QS = (50.0, 99.0, 99.9)
TIMES = ("p50_ns", "p99_ns", "p999_ns")


def within(value: float, reference: float, factor: float = BUCKET) -> bool:
    """``value`` within ``factor`` (and a rounding ns) of ``reference``, either way."""
    return reference / factor - 1 <= value <= reference * factor + 1


def printed_agrees(cell: str, reference: float) -> bool:
    """A printed latency (``8.10 us``) read back with :func:`units.parse_duration`, against the
    percentile of the stored histogram: the bucket width, plus the rounding to three digits."""
    return within(parse_duration(cell), reference, BUCKET * PRINTED)


def columns(line: str) -> list[str]:
    """The cells of a terminal table line (columns are two or more spaces apart; a value is ``8.10 us``)."""
    return re.split(r"\s{2,}", line.strip())


def md_cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    """``hostperf ARGV...`` in this process: its output lines (what was captured before is dropped:
    pytester echoes its subprocesses' output there)."""
    capsys.readouterr()
    code = cli.main(list(argv))
    out = capsys.readouterr().out
    assert code == 0, out
    return out.splitlines()


# --------------------------------------------------------------------------- stats.pooled


def _blocks(seed: int, n_blocks: int = 20, size: int = 1000) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.rint(rng.lognormal(np.log(1000), 0.2, size)) for _ in range(n_blocks)]


def test_pooled_point_is_numpy_percentile_of_all_samples() -> None:
    blocks = _blocks(1)
    qs = [50, 90, 99, 99.9]
    point, lo, hi, (max_lo, max_hi) = stats.pooled(blocks, qs)
    assert point.tolist() == np.percentile(np.concatenate(blocks), qs).tolist()  # exactly
    assert np.all(lo <= point) and np.all(point <= hi) and np.all(lo < hi)
    top = float(np.concatenate(blocks).max())
    assert max_lo <= top <= max_hi
    # uneven blocks, as a time budget leaves them: still the pooled samples, exactly
    uneven = [b[: 100 + 37 * i] for i, b in enumerate(blocks)]
    assert stats.pooled(uneven, qs)[0].tolist() == np.percentile(np.concatenate(uneven), qs).tolist()


def test_pooled_one_block_has_zero_width_intervals() -> None:
    (block,) = _blocks(2, n_blocks=1)
    point, lo, hi, max_ci = stats.pooled([block], [50, 99])
    assert lo.tolist() == point.tolist() == hi.tolist() == np.percentile(block, [50, 99]).tolist()
    assert max_ci == (block.max(), block.max())


def test_tail_bunched_in_two_blocks_moves_the_pooled_p99_not_the_block_median() -> None:
    """The reason for the change: a tail that happened in 2 of 20 blocks (a neighbour, a
    throttled core) is the run's p99; the median of the block p99s does not see it, and
    stays what the gate compares."""
    blocks = _blocks(3)
    for b in blocks[6], blocks[13]:
        b[:150] *= 10  # 300 slow calls of 20000: 1.5% of all calls, 15% of two blocks
    point, lo, hi, _ = stats.pooled(blocks, [99])
    block_median = float(np.median([np.percentile(b, 99) for b in blocks]))
    assert point[0] > 8_000  # the slow calls' latency
    assert block_median < 2_000  # the fast calls' tail
    assert lo[0] <= point[0] <= hi[0]
    assert hi[0] > 5 * lo[0]  # how many slow blocks a run catches varies: a wide interval says so
    raw = Samples(values=np.concatenate(blocks), block_sizes=tuple(b.size for b in blocks), batch=1,
                  warmup_calls=0, calls=20_000, seconds=0.1, truncated=False)
    r = summarize(raw, nodeid="t.py::test", name="bunched")
    assert r.p99 == point[0] and r.gate_p99 == block_median
    (row,) = report.result_rows([ResultRecord.of(r)])
    assert row[3] == format_ns(point[0])  # the table's p99 is the pooled one


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(1, 10**7), min_size=1, max_size=40), min_size=1, max_size=12),
       st.sampled_from([[50.0], [99.0], [0.0, 50.0, 90.0, 99.0, 99.9, 100.0]]), st.integers(0, 2**32 - 1))
def test_pooled_intervals_contain_their_point(layout: list[list[int]], qs: list[float], seed: int) -> None:
    blocks = [np.array(b, dtype=np.float64) for b in layout]
    values = np.concatenate(blocks)
    point, lo, hi, (max_lo, max_hi) = stats.pooled(blocks, qs, resamples=200, rng=np.random.default_rng(seed))
    assert point.tolist() == np.percentile(values, qs).tolist()
    assert np.all(lo <= point) and np.all(point <= hi)
    assert np.all(values.min() <= lo) and np.all(hi <= values.max())  # interval ends are sample levels
    assert values.min() <= max_lo <= values.max() <= max_hi == values.max()  # the max is the largest block max
    if len(blocks) == 1:
        assert lo.tolist() == hi.tolist() == point.tolist()


# --------------------------------------------------------------------------- the committed baseline


@pytest.fixture(params=BASELINES, ids=[p.name for p in BASELINES])
def committed(request: pytest.FixtureRequest) -> Path:
    """Each committed baseline file in turn."""
    path: Path = request.param
    return path


def _committed(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _merged(doc: dict[str, Any], mid: str) -> dict[str, Any]:
    h = merge_histograms([run["measurements"][mid].get("histogram") for run in doc["runs"]
                          if mid in run["measurements"]])
    assert h is not None
    return h


def test_show_committed_baseline_prints_the_merged_histograms_percentiles(committed: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    doc = _committed(committed)
    lines = run_cli(capsys, "show", str(committed))
    at = next(i for i, x in enumerate(lines) if x.startswith("measurement"))
    header = columns(lines[at])
    assert header[:5] == ["measurement", "mode", "p50", "p99", "p99.9"]
    assert header[5:] == [f"p99 #{k}" for k in range(1, len(doc["runs"]) + 1)]
    rows = [columns(x) for x in lines[at + 2:] if x.startswith("benchmarks/")]
    ids = sorted({mid for run in doc["runs"] for mid in run["measurements"]})
    assert [r[0] for r in rows] == ids
    for r in rows:
        mid = r[0]
        want = histogram_percentiles(_merged(doc, mid), QS)
        assert r[2:5] == [format_ns(float(v)) for v in want], mid
        assert all(printed_agrees(c, float(v)) for c, v in zip(r[2:5], want)), mid
        for cell, run in zip(r[5:], doc["runs"]):
            m = run["measurements"].get(mid)
            if m is None:
                assert cell == "-"
                continue
            own = float(histogram_percentiles(m["histogram"], [99])[0])
            assert cell == format_ns(own) and printed_agrees(cell, own), (mid, cell)
    legend = lines[at + 2 + len(rows)]
    assert "median over the runs" not in legend and "merged" in legend, legend

    # --percentiles: the same numbers, read from the same merged histograms
    more = run_cli(capsys, "show", str(committed), "--percentiles", "50,99,99.9")
    at = max(i for i, x in enumerate(more) if x.startswith("measurement"))
    assert columns(more[at])[3:] == ["p50", "p99", "p99.9"]
    for r in (columns(x) for x in more[at + 2:] if x.startswith("benchmarks/")):
        assert r[3:] == [format_ns(float(v)) for v in histogram_percentiles(_merged(doc, r[0]), QS)], r[0]


def test_compare_committed_baseline_in_every_format_prints_merged_percentiles(
        committed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _committed(committed)
    path = str(committed)
    want = {mid: histogram_percentiles(_merged(doc, mid), QS) for run in doc["runs"] for mid in run["measurements"]}
    cmp = json.loads("\n".join(run_cli(capsys, "compare", path, path, "--format", "json")))
    assert {m["id"] for m in cmp["measurements"]} == set(want)
    for m in cmp["measurements"]:
        for v in m["values"]:
            assert [v[k] for k in TIMES] == [round(float(x)) for x in want[m["id"]]], m["id"]
    md = [md_cells(x) for x in run_cli(capsys, "compare", path, path, "--format", "markdown") if x.startswith("| `")]
    table = [columns(x) for x in run_cli(capsys, "compare", path, path) if x.startswith("benchmarks/")]
    assert len(md) == len(table) == len(want)
    for cells in [*md, *table]:
        mid = cells[0].strip("`")
        text = [format_ns(float(x)) for x in want[mid]]
        assert cells[1:7] == text + text, mid
        assert all(printed_agrees(c, float(x)) for c, x in zip(cells[1:4], want[mid]))


def test_plot_of_committed_baseline_reads_p99_of_the_merged_histogram(committed: Path) -> None:
    doc = _committed(committed)
    src = compare.load_input(str(committed))
    for mid, m in src.measurements.items():
        x, y = plots.curve(m)
        (p99,) = y[np.isclose(x, plots.nines(99))]
        assert p99 == pytest.approx(m.p99_ns, rel=1e-12)
        assert within(float(p99), float(histogram_percentiles(_merged(doc, mid), [99])[0]), 1 + 1e-12), mid


# --------------------------------------------------------------------------- a fresh run

# `steady` has budgets, so their messages are checked too. `bunched`: every 1000th call starts
# 50 calls 20x slower (5% of the calls, in one or two of every 5 blocks of 200: also when the
# compared run takes fewer blocks, gate.plan_by_noise): its pooled p99 is the slow calls', its
# block-median p99 the fast ones'.
FRESH = """
import pytest
from benchmarks.workloads.synthetic import work

class Bunched:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return work(4000 if (self.calls // 50) % 20 == 7 else 200)

@pytest.mark.hostperf(p99="10s", p999="10s")
def test_steady(hostperf):
    hostperf(work, 200, name="steady")

def test_bunched(hostperf):
    hostperf(Bunched(), name="bunched")
"""


def _table(lines: list[str], first: str) -> tuple[list[str], list[list[str]]]:
    """The terminal summary's header and rows (those of the run's measurements), a table wider
    than 120 columns (each name on its own line, its figures indented under it) joined back."""
    at = next(i for i, x in enumerate(lines) if x.startswith("measurement") and ("p99.9" in x or "figures" in x))
    if "p99.9" in lines[at]:
        rows = []
        for x in lines[at + 2:]:
            if not x.startswith(first):
                break
            rows.append(columns(x))
        return columns(lines[at]), rows
    header, rows, name = ["measurement", *columns(lines[at + 1])], [], ""
    for x in lines[at + 3:]:
        if x.startswith("  "):
            rows.append([name, *columns(x)])
            name = ""
        elif x.startswith(first) or name:
            name += x
        else:
            break
    return header, rows


def test_fresh_run_every_output_prints_the_pooled_percentiles(pytester: pytest.Pytester,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    pytester.makeini("[pytest]\nhostperf_samples = 4000\nhostperf_max_time = 0.5\n")
    pytester.makepyfile(FRESH)
    loose = "--hostperf-tolerance=300"
    pytester.runpytest_subprocess("--hostperf", "--hostperf-save", loose).assert_outcomes(passed=2)
    result = pytester.runpytest_subprocess("--hostperf", loose, "--hostperf-json=r.json", "--hostperf-markdown=r.md")
    result.assert_outcomes(passed=2)
    (base_file,) = (pytester.path / "baselines").glob("*.json")
    base = json.loads(base_file.read_text())
    (stored,) = base["runs"]
    doc = json.loads((pytester.path / "r.json").read_text())
    results = {r["id"]: r for r in doc["results"]}
    node = "test_fresh_run_every_output_prints_the_pooled_percentiles.py::"
    assert sorted(results) == [f"{node}test_bunched[bunched]", f"{node}test_steady[steady]"]

    # the JSON report: pooled percentiles, the histogram's to its bucket width; intervals hold them
    for mid, r in results.items():
        assert r["mode"] == "single", mid  # per call: the histogram is of the same samples
        h = r["histogram"]
        for k, v in zip(TIMES, histogram_percentiles(h, QS)):
            assert within(r[k], float(v)), (mid, k, r[k], float(v))
        assert r["max_ns"] == h["max_ns"] and r["min_ns"] == h["min_ns"]
        for s in ("p50", "p99", "p999"):
            lo, hi = r["intervals_ns"][s]
            assert lo <= r[f"{s}_ns"] <= hi, (mid, s)
        # the gate's verdict: its figures are the block-median p99s (p99*), of this run and the baseline
        v = r["verdict"]
        # (with re-measured rounds, the centre of the rounds' own block medians: verdict.compare's rule)
        blocks = np.array([b["p99_ns"] for b in r["blocks"]], dtype=float)
        logs = np.log([np.median(part) for part in np.array_split(blocks, 1 + v["extra_rounds"])])
        centre = float(np.exp(np.median(logs) if logs.size >= 3 else np.mean(logs)))
        assert v["stat"] == "p99" and within(v["current_ns"], centre, 1 + 1e-9)
        base_blocks = [b["p99_ns"] for b in stored["measurements"][mid]["blocks"]]
        assert within(v["baseline_ns"], float(np.median(base_blocks)), 1 + 1e-9)
    # budgets: judged on, and their messages print, the pooled percentiles and their intervals
    steady = results[f"{node}test_steady[steady]"]
    assert [b["stat"] for b in steady["budgets"]] == ["p99", "p999"]
    for b in steady["budgets"]:
        name = {"p99": "p99", "p999": "p99.9"}[b["stat"]]
        assert b["estimate_ns"] == steady[f"{b['stat']}_ns"] and b["interval_ns"] == steady["intervals_ns"][b["stat"]]
        printed = re.match(rf".*: {re.escape(name)} (\S+ \S+) \[95% CI (\S+ \S+) \.\. (\S+ \S+)\] is within",
                           b["message"])
        assert printed, b["message"]
        for cell, ns in zip(printed.groups(), [b["estimate_ns"], *b["interval_ns"]]):
            assert within(parse_duration(cell), ns, PRINTED), b["message"]
        assert printed_agrees(printed.group(1), float(histogram_percentiles(steady["histogram"],
                                                                            [float(name[1:])])[0]))
    bunched = results[f"{node}test_bunched[bunched]"]
    block_median = float(np.median([b["p99_ns"] for b in bunched["blocks"]]))
    assert bunched["p99_ns"] > 3 * block_median  # the test tells the two statistics apart

    # the terminal summary of the run, and `hostperf show r.json`
    header, rows = _table(result.outlines, node)
    assert header[:6] == ["measurement", "n", "p50", "p99", "p99.9", "max"]
    assert header[-4:-1] == ["base p99*", "Δp99* [95% CI]", "could tell"]
    assert report.GATED_NOTE in result.outlines
    shown_header, shown = _table(run_cli(capsys, "show", str(pytester.path / "r.json")), node)
    assert shown_header == header
    for rows_ in (rows, shown):
        assert sorted(r[0] for r in rows_) == sorted(results)
        for r in rows_:
            rec = results[r[0]]
            assert r[2:6] == [format_ns(rec[k]) for k in (*TIMES, "max_ns")], r
            for cell, v in zip(r[2:5], histogram_percentiles(rec["histogram"], QS)):
                assert printed_agrees(cell, float(v)), (r[0], cell, float(v))
            # base p99*: the gate's statistic, the baseline's median block p99, and labelled so
            base_blocks = [b["p99_ns"] for b in stored["measurements"][r[0]]["blocks"]]
            assert within(parse_duration(r[header.index("base p99*")]), float(np.median(base_blocks)), PRINTED), r
            assert r[header.index("base p99*")] == format_ns(rec["verdict"]["baseline_ns"])

    # --hostperf-markdown and `hostperf compare BASELINE r.json` in every format: A is the
    # baseline (its merged histogram), B this run (the report's pooled percentiles)
    base_pct = {mid: histogram_percentiles(merge_histograms([m["histogram"]]), QS)
                for mid, m in stored["measurements"].items()}
    md = (pytester.path / "r.md").read_text().splitlines()
    md_rows = [md_cells(x) for x in md if x.startswith("| `")]
    # the ratio is of the gate's statistic, not of the p99 columns beside it: labelled so
    assert md_cells(next(x for x in md if x.startswith("| measurement")))[7] == "p99* B/A [95% CI]"
    assert any(x.startswith("p50, p99, p99.9: over all calls; p99* ratio B/A: of the medians of the block p99s")
               for x in md)
    cmp_md = [md_cells(x) for x in run_cli(capsys, "compare", str(base_file), str(pytester.path / "r.json"),
                                           "--format", "markdown", "--tolerance=300") if x.startswith("| `")]
    cmp_table = [columns(x) for x in run_cli(capsys, "compare", str(base_file), str(pytester.path / "r.json"),
                                             "--tolerance=300") if x.startswith(node)]
    for rows_ in (md_rows, cmp_md, cmp_table):
        assert sorted(r[0].strip("`") for r in rows_) == sorted(results)
        for r in rows_:
            mid = r[0].strip("`")
            assert r[1:4] == [format_ns(float(v)) for v in base_pct[mid]], r
            assert r[4:7] == [format_ns(results[mid][k]) for k in TIMES], r
            for cell, v in zip(r[1:7], [*base_pct[mid], *histogram_percentiles(results[mid]["histogram"], QS)]):
                assert printed_agrees(cell, float(v)), (mid, cell, float(v))
    cmp = json.loads("\n".join(run_cli(capsys, "compare", str(base_file), str(pytester.path / "r.json"),
                                       "--format", "json")))
    for m in cmp["measurements"]:
        a, b = m["values"]
        assert [a[k] for k in TIMES] == [round(float(v)) for v in base_pct[m["id"]]]
        assert [b[k] for k in TIMES] == [results[m["id"]][k] for k in TIMES]

    # the plots: the curve's p99 point is the table's p99, to the bucket width
    run = compare.load_input(str(pytester.path / "r.json"))
    for mid, m in run.measurements.items():
        x, y = plots.curve(m)
        (p99,) = y[np.isclose(x, plots.nines(99))]
        assert within(float(p99), results[mid]["p99_ns"]), (mid, float(p99), results[mid]["p99_ns"])
        row = next(r for r in rows if r[0] == mid)
        assert printed_agrees(row[3], float(p99))


def test_write_plots_draws_the_curve_whose_p99_is_the_tables(committed: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the plot extra: pip install -e '.[plot]')")
    drawn: dict[str, float] = {}
    real = plots.curve

    def spy(m: model.Measurement) -> Any:
        x, y = real(m)
        drawn[m.id] = float(y[np.isclose(x, plots.nines(99))][0])
        return x, y

    monkeypatch.setattr(plots, "curve", spy)
    run_cli(capsys, "plot", str(committed), "--out", str(tmp_path / "plots"))
    lines = run_cli(capsys, "show", str(committed))
    at = next(i for i, x in enumerate(lines) if x.startswith("measurement"))
    table = {r[0]: r[3] for r in (columns(x) for x in lines[at + 2:] if x.startswith("benchmarks/"))}
    assert sorted(drawn) == sorted(table)
    for mid, p99 in drawn.items():
        assert table[mid] == format_ns(p99), mid


def test_pooled_finishes_in_a_forked_child_at_sched_fifo() -> None:
    """The bootstrap never calls BLAS: OpenBLAS's threaded dgemm span forever in a forked
    child at SCHED_FIFO (found when verdict_quality's paired base child summarized)."""
    import os
    import time

    if not hasattr(os, "fork") or not hasattr(os, "SCHED_FIFO"):
        pytest.skip("needs fork and SCHED_FIFO (Linux)")
    parts = [np.random.default_rng(i).lognormal(10, 0.3, 1000) for i in range(20)]
    stats.pooled(parts, [50, 99])
    cpu = max(os.sched_getaffinity(0))
    pid = os.fork()
    if pid == 0:  # the child: bounded by the parent's kill below, whatever happens
        try:
            os.sched_setaffinity(0, {cpu})
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        except OSError:
            os._exit(3)
        stats.pooled(parts, [50, 99])
        os._exit(0)
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("stats.pooled did not finish within 30 s in a forked SCHED_FIFO child")
    if os.WEXITSTATUS(status) == 3:
        pytest.skip("SCHED_FIFO is not permitted here (the child could not set it)")
    assert os.WEXITSTATUS(status) == 0
