"""`hostperf compare` / `hostperf show`: inputs, verdicts per step, host differences, formats, exit codes.

The data is built here, deterministically (no random numbers, no clock), so the golden
markdown pins the rendering. If the rendering is meant to change — or verdict.py's rules
move the intervals — regenerate it with
    HOSTPERF_REGEN_GOLDEN=1 python -m pytest tests/reports/test_compare.py -k golden
and review the diff.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from compare_data import (
    ARENA,
    AUDIT_AMD,
    AUDIT_INTEL,
    FIFO,
    FP_AMD,
    FP_INTEL,
    MALLOC,
    NEW,
    OTHER,
    RING,
    SCALES_AMD,
    SCALES_INTEL,
    baseline_doc,
    report_doc,
    report_record,
)

from pytest_hostperf import cli
from pytest_hostperf.reports import compare, compare_render, terminal
from pytest_hostperf.store import disk
from pytest_hostperf.store.records import Report

GOLDEN = Path(__file__).parents[1] / "golden" / "compare_two_hosts.md"


@pytest.fixture
def two_hosts(tmp_path: Path) -> tuple[Path, str, str]:
    folder = tmp_path / "baselines"
    folder.mkdir()
    ids = []
    for doc in (baseline_doc(FP_AMD, AUDIT_AMD, SCALES_AMD, FIFO),
                baseline_doc(FP_INTEL, AUDIT_INTEL, SCALES_INTEL, OTHER)):
        (folder / f"{doc['host_id']}.json").write_text(disk.to_json(doc))
        ids.append(doc["host_id"])
    return folder, ids[0], ids[1]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- two hosts


def test_two_hosts_markdown_matches_golden(two_hosts: tuple[Path, str, str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    folder, amd, intel = two_hosts
    code, out, _ = run_cli(capsys, "compare", "--baselines", str(folder), amd, intel, "--format", "markdown")
    assert code == 0
    if os.environ.get("HOSTPERF_REGEN_GOLDEN"):
        GOLDEN.write_text(out, encoding="utf-8")
    assert out == GOLDEN.read_text(encoding="utf-8")


def test_two_hosts_markdown_is_a_github_table(two_hosts: tuple[Path, str, str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    folder, amd, intel = two_hosts
    _, out, _ = run_cli(capsys, "compare", "--baselines", str(folder), amd, intel, "--format", "markdown")
    lines = out.splitlines()
    assert lines[0] == "### hostperf: 1 regressed, 1 improved, 1 unchanged, 1 new"
    start = lines.index(next(x for x in lines if x.startswith("| measurement |")))
    table = lines[start:lines.index("", start)]
    widths = {x.count(" | ") for x in table}
    assert len(widths) == 1 and table[1].startswith("| :---") and len(table) == 2 + 4
    # regressions first, then what improved, what did not change, and what is new
    assert [x.split(" | ")[-1].rstrip(" |") for x in table[2:]] == ["**regressed**", "improved", "unchanged", "new"]
    assert "`bench.py::test_alloc[malloc]`" in table[2]
    section = lines[lines.index("#### Host differences"):]
    fields = [x.split(" | ")[0].lstrip("| ") for x in section if x.startswith("| ") and ":---" not in x]
    assert fields == ["field", "host id", "cpu_model", "logical_cpus", "physical_cores", "kernel", "governor",
                      "scheduling", "audit swappiness"]  # load changes by the minute: never a difference


def test_two_hosts_table_reads_without_docs(two_hosts: tuple[Path, str, str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    folder, amd, intel = two_hosts
    code, out, _ = run_cli(capsys, "compare", "--baselines", str(folder), amd, intel)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"A: baseline of host {amd} (AMD EPYC 7B13 64-Core Processor, 2 CPUs), 3 runs, "
                               "newest 2024-05-03 12:00 UTC, commit 33333333 on main")
    assert lines[1].startswith(f"B: baseline of host {intel}")
    header = next(x for x in lines if x.startswith("measurement"))
    assert header.split() == ["measurement", "A", "p50", "A", "p99", "A", "p99.9", "B", "p50", "B", "p99", "B",
                              "p99.9", "p99*", "B/A", "[95%", "CI]", "could", "tell", "verdict"]
    malloc = next(x for x in lines if x.startswith(MALLOC))
    assert malloc.split()[-1] == "regressed" and "1.30x [" in malloc
    arena = next(x for x in lines if x.startswith(ARENA))
    assert arena.split()[-1] == "improved" and "0.50x [" in arena
    assert "verdicts (B vs A): 1 regressed, 1 improved, 1 unchanged, 1 new" in lines
    assert any(x.startswith("p50, p99, p99.9: over all calls; p99* ratio B/A: of the medians of the block p99s, "
                            "the robust statistic the gate compares, with its 95% interval; verdicts at a 10% "
                            "tolerance") for x in lines)
    assert any(x.split()[:2] == ["scheduling", "SCHED_FIFO"] and x.split()[-1] == "SCHED_OTHER" for x in lines)


def test_fail_on_regression_exit_codes(two_hosts: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    folder, amd, intel = two_hosts
    # amd -> intel: malloc regressed
    assert run_cli(capsys, "compare", "--baselines", str(folder), amd, intel, "--fail-on-regression")[0] == 1
    assert run_cli(capsys, "compare", "--baselines", str(folder), amd, intel)[0] == 0  # reports, does not gate
    # intel -> amd: malloc improved, arena regressed 2x; with a 150% tolerance only improvements remain
    assert run_cli(capsys, "compare", "--baselines", str(folder), intel, amd, "--fail-on-regression")[0] == 1
    code, out, _ = run_cli(capsys, "compare", "--baselines", str(folder), intel, amd, "--fail-on-regression",
                           "--tolerance=150")
    assert code == 0 and "regressed" not in out.split("verdicts")[1].splitlines()[0]
    # a regression that also broke a budget shows as over-budget, and still fails the comparison
    pr = folder.parent / "pr.json"
    pr.write_text(disk.to_json(report_record(FP_INTEL, SCALES_INTEL, budgets={MALLOC: "over-budget"}).to_json()))
    code, out, _ = run_cli(capsys, "compare", "--baselines", str(folder), amd, str(pr), "--fail-on-regression")
    assert code == 1 and next(x for x in out.splitlines() if x.startswith(MALLOC)).endswith(" over-budget")
    # only the last step counts: a regression earlier in the chain does not fail
    code, _, _ = run_cli(capsys, "compare", "--baselines", str(folder), amd, intel, intel, "--fail-on-regression")
    assert code == 0


def test_json_format_parses(two_hosts: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    folder, amd, intel = two_hosts
    code, out, _ = run_cli(capsys, "compare", "--baselines", str(folder), amd, intel, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == "pytest-hostperf-compare" and doc["schema_version"] == 1
    assert doc["regressed"] is True and doc["summary"] == {"regressed": 1, "improved": 1, "unchanged": 1, "new": 1}
    assert [i["label"] for i in doc["inputs"]] == ["A", "B"] and doc["inputs"][0]["runs"] == 3
    by_id = {m["id"]: m for m in doc["measurements"]}
    malloc = by_id[MALLOC]
    (step,) = malloc["steps"]
    assert step["from"] == "A" and step["to"] == "B" and step["status"] == "regressed"
    lo, hi = step["interval"]
    assert 1.1 < lo < step["ratio"] < hi and abs(step["ratio"] - 1.3) < 0.02
    assert malloc["values"][0]["p99_ns"] < malloc["values"][1]["p99_ns"] and malloc["values"][0]["runs"] == 3
    assert by_id[NEW]["values"][0] is None and by_id[NEW]["status"] == "new"
    assert {d["field"] for d in doc["host_differences"]} >= {"cpu_model", "kernel", "scheduling"}


def test_verdicts_come_from_the_gate_rule(two_hosts: tuple[Path, str, str]) -> None:
    """Each step is verdict.compare over the per-block p99 of every run on each side."""
    from pytest_hostperf.stats import verdict

    folder, amd, intel = two_hosts
    a, b = compare.load_input(amd, folder), compare.load_input(intel, folder)
    cmp = compare.compare_sources([a, b], tolerance_pct=10)
    row = next(r for r in cmp.rows if r.id == MALLOC)
    expected = verdict.compare(list(b.measurements[MALLOC].runs_p99), list(a.measurements[MALLOC].runs_p99),
                               tolerance_pct=10)
    assert (row.status, row.steps[0].ratio, row.steps[0].interval) == (expected.status, expected.ratio,
                                                                       expected.interval)
    assert len(a.measurements[MALLOC].runs_p99) == 3 and len(a.measurements[MALLOC].runs_p99[0]) == 20


# --------------------------------------------------------------------------- more than two inputs


def test_steps_show_incremental_and_cumulative_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """baseline -> fast path -> buffer reuse: each step with its own and its running gain."""
    base = baseline_doc(FP_AMD, AUDIT_AMD, {ARENA: 4.0, RING: 1.0}, FIFO)
    step1 = baseline_doc(FP_AMD, AUDIT_AMD, {ARENA: 2.0, RING: 1.0}, FIFO)
    paths = [tmp_path / "base.json", tmp_path / "step1.json", tmp_path / "step2.json"]
    paths[0].write_text(disk.to_json(base))
    paths[1].write_text(disk.to_json(step1))
    # the last step is a JSON report: inputs of both kinds mix
    paths[2].write_text(disk.to_json(report_record(FP_AMD, {ARENA: 1.0, RING: 1.0}).to_json()))
    code, out, _ = run_cli(capsys, "compare", *map(str, paths), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert [i["kind"] for i in doc["inputs"]] == ["baseline", "baseline", "report"]
    arena = next(m for m in doc["measurements"] if m["id"] == ARENA)
    inc = [s["ratio"] for s in arena["steps"]]
    cum = [s["ratio"] for s in arena["cumulative"]]
    assert [round(x, 1) for x in inc] == [0.5, 0.5] and [round(x, 2) for x in cum] == [0.5, 0.25]
    assert [s["from"] for s in arena["cumulative"]] == ["A", "A"] and [s["from"] for s in arena["steps"]] == ["A", "B"]
    assert {s["status"] for s in arena["steps"] + arena["cumulative"]} == {"improved"}
    ring = next(m for m in doc["measurements"] if m["id"] == RING)
    assert ring["status"] == "unchanged"

    code, out, _ = run_cli(capsys, "compare", *map(str, paths))
    lines = out.splitlines()
    header = next(x for x in lines if x.startswith("measurement"))
    assert "p99* vs previous [95% CI]" in header and "p99* vs A [95% CI]" in header
    first = lines.index(next(x for x in lines if x.startswith(ARENA)))
    assert lines[first].split()[1] == "A"
    assert lines[first + 1].split()[0] == "B" and lines[first + 2].split()[0] == "C"
    assert "0.25x [" in lines[first + 2] and lines[first + 2].split().count("improved") == 2
    assert lines[2].startswith("C: report ") and "commit abcdef01 on fast-path (uncommitted changes)" in lines[2]

    code, md, _ = run_cli(capsys, "compare", *map(str, paths), "--format", "markdown")
    assert md.startswith("### hostperf: 1 improved, 1 unchanged\n")
    assert "| :--- | :--- | ---: |" in md


def test_removed_and_batch_mismatch_are_named(tmp_path: Path) -> None:
    a = compare.source_from_baseline(disk.load(_write(tmp_path / "a.json", baseline_doc(
        FP_AMD, AUDIT_AMD, {ARENA: 1.0, RING: 1.0}, FIFO, batch={ARENA: 4}))))
    b = compare.source_from_baseline(disk.load(_write(tmp_path / "b.json", baseline_doc(
        FP_AMD, AUDIT_AMD, {ARENA: 1.0}, FIFO))))
    cmp = compare.compare_sources([a, b])
    by_id = {r.id: r for r in cmp.rows}
    assert by_id[RING].status == "removed"
    assert any("batch sizes differ (A batched(4), B single)" in n for n in by_id[ARENA].notes)
    assert not cmp.differences  # the same host
    text = "\n".join(compare_render.render_table(cmp))
    assert "batched(k): each sample is the mean of k calls" in text


def _write(path: Path, doc: dict) -> Path:
    path.write_text(disk.to_json(doc))
    return path


# --------------------------------------------------------------------------- the run's own report


def test_from_run_uses_the_gate_verdicts_over_budget_first_after_regressions(tmp_path: Path) -> None:
    base = disk.load(_write(tmp_path / "b.json", baseline_doc(FP_AMD, AUDIT_AMD, SCALES_AMD, FIFO)))
    v = {"stat": "p99", "baseline_ns": 2000, "current_ns": 2000, "tolerance_pct": 10.0, "baseline_runs": 3,
         "extra_rounds": 0, "reason": "..."}
    doc = report_doc(FP_AMD, {RING: 1.0, ARENA: 1.0, MALLOC: 1.0, NEW: 1.0}, budgets={ARENA: "over-budget"},
                     verdicts={RING: {**v, "status": "unchanged", "ratio": 1.01, "interval": [0.95, 1.07]},
                               ARENA: {**v, "status": "unchanged", "ratio": 1.0, "interval": [0.95, 1.05]},
                               MALLOC: {**v, "status": "regressed", "ratio": 1.5, "interval": [1.3, 1.7]},
                               NEW: {**v, "status": "new", "ratio": None, "interval": None}})
    cmp = compare.from_run(Report.from_json(doc), base, base_name="baselines/amd.json")
    assert [r.id for r in cmp.rows] == [MALLOC, ARENA, RING, NEW]
    md = compare_render.render_markdown(cmp)
    assert md.splitlines()[0] == "### hostperf: 1 regressed, 1 over budget, 1 unchanged, 1 new"
    assert "| **over-budget** |" in md and "1.50x [1.30, 1.70]" in md
    assert "baseline `baselines/amd.json`" in md and "report `this run`" in md
    # without a baseline: every measurement is new, and the summary says how to record one
    alone = compare_render.render_markdown(compare.from_run(report_record(FP_AMD, {RING: 1.0}), None,
                                                            base_name="baselines/x.json"))
    assert alone.splitlines()[0] == "### hostperf: 1 new"
    assert "record one with: pytest --hostperf --hostperf-save" in alone


def test_markdown_escapes_pipes_in_ids(tmp_path: Path) -> None:
    mid = "bench.py::test_p[a|b][x]"
    doc = baseline_doc(FP_AMD, AUDIT_AMD, {mid: 1.0}, FIFO, runs=1)
    a = compare.source_from_baseline(disk.load(_write(tmp_path / "a.json", doc)))
    md = compare_render.render_markdown(compare.compare_sources([a, a]))
    row = next(x for x in md.splitlines() if "test_p" in x)
    assert "`bench.py::test_p[a\\|b][x]`" in row
    assert row.replace("\\|", "").count("|") == 11  # 10 cells


# --------------------------------------------------------------------------- inputs and errors


def test_input_errors_exit_2_and_name_the_problem(two_hosts: tuple[Path, str, str], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder, amd, _ = two_hosts
    code, _, err = run_cli(capsys, "compare", "--baselines", str(folder), amd, "no-such-host")
    assert code == 2 and "'no-such-host': no such file, and no baseline for host id" in err and amd in err
    code, _, err = run_cli(capsys, "compare", "--baselines", str(folder), amd)
    assert code == 2 and "compare needs at least two inputs" in err
    (tmp_path / "other.json").write_text('{"schema": "something-else"}')
    code, _, err = run_cli(capsys, "compare", "--baselines", str(folder), amd, str(tmp_path / "other.json"))
    assert code == 2 and 'not a pytest-hostperf report or baseline' in err and '"something-else"' in err
    (tmp_path / "cut.json").write_text('{"schema": "pytest-hostperf-report", "resu')
    code, _, err = run_cli(capsys, "compare", amd, str(tmp_path / "cut.json"), "--baselines", str(folder))
    assert code == 2 and "invalid JSON at line 1" in err
    bad = report_doc(FP_AMD, {RING: 1.0})
    bad["results"][0]["blocks"][3]["p99_ns"] = "fast"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    code, _, err = run_cli(capsys, "compare", amd, str(tmp_path / "bad.json"), "--baselines", str(folder))
    assert code == 2 and "results[0].blocks[3].p99_ns: expected a number of nanoseconds" in err
    with pytest.raises(SystemExit) as exc:
        cli.main(["compare", amd, amd, "--format", "html"])
    assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


# --------------------------------------------------------------------------- show


def test_show_baseline_lists_host_and_run_history(two_hosts: tuple[Path, str, str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder, amd, _ = two_hosts
    code, out, _ = run_cli(capsys, "show", str(folder / f"{amd}.json"))
    assert code == 0
    lines = out.splitlines()
    assert lines[1] == f"host {amd}"
    assert "cpu AMD EPYC 7B13 64-Core Processor, logical cpus 2" in lines[2]
    assert lines[3] == "  audit warnings (newest run): swappiness 60"
    runs = [x for x in lines if x.startswith("#")]
    assert [x.split()[:4] for x in runs] == [["#1", "2024-05-01", "12:00", "UTC"], ["#2", "2024-05-02", "12:00", "UTC"],
                                            ["#3", "2024-05-03", "12:00", "UTC"]]
    assert runs[0].split()[4:7] == ["11111111", "main", "no"]
    header = next(x for x in lines if x.startswith("measurement"))
    assert header.split() == ["measurement", "mode", "p50", "p99", "p99.9", "p99", "#1", "p99", "#2", "p99", "#3"]
    malloc = next(x for x in lines if x.startswith(MALLOC)).split()
    assert malloc[1] == "single" and len(malloc) == 2 + 3 * 2 + 3 * 2  # p50 p99 p99.9, then 3 runs' p99
    # by host id too
    code, out2, _ = run_cli(capsys, "show", amd, "--baselines", str(folder))
    assert code == 0 and out2.splitlines()[2:] == lines[2:]


def test_show_report_is_the_run_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    path.write_text(disk.to_json(report_record(FP_AMD, {RING: 1.0}).to_json()))
    code, out, _ = run_cli(capsys, "show", str(path))
    assert code == 0
    assert out.splitlines()[0].startswith("measurement") and RING in out


# --------------------------------------------------------------------------- reading a file once, typed


def _rich_report_doc() -> dict:
    """A report with every part the records read: verdict, budgets, timer, speedups, counters, noise."""
    doc = report_doc(FP_AMD, {RING: 1.0}, budgets={RING: "over-budget"},
                     verdicts={RING: {"status": "regressed", "stat": "p99", "ratio": 1.5, "interval": [1.3, 1.7],
                                      "baseline_ns": 2000, "current_ns": 3000, "tolerance_pct": 10.0,
                                      "baseline_runs": 3, "extra_rounds": 1, "reason": "slower"}})
    r = doc["results"][0]
    r.update(intervals_ns={"p99": [1, 2]}, why="minor_faults x3", not_gated=None, worker="gw0",
             host={**OTHER, "controls": [{"control": "pin", "applied": True, "detail": "cpus 7", "reason": None,
                                          "fix": None}]})
    doc.update(timer={"clock": "perf_counter_ns", "overhead_ns": 50, "resolution_ns": 1, "pairs": 100},
               speedups=[{"fast": ARENA, "slow": RING, "stat": "p99", "factor": 2.0, "speedup": 2.5,
                          "interval": [2.1, 2.9], "status": "holds", "message": "2.5x faster"}],
               counters={"enabled": True, "read_cost_ns": 80, "unavailable": {"cycles": "perf_event_paranoid 4"}},
               noise={"probes": {"before": {"text": "3 interruptions > 10 us"}}, "share": 0.01,
                      "baseline_share": 0.002, "noisy": True}, concurrency=1, tools={"python": "3.11.7"})
    doc["host"]["not_applied"] = [{"control": "rt", "applied": False, "detail": "SCHED_FIFO 49",
                                   "reason": "EPERM", "fix": "ulimit -r 99"}]
    return doc


def _leaves(node: object, path: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [path] + [p for k, v in node.items() for p in _leaves(v, (*path, k))]
    if isinstance(node, list):
        return [path] + [p for i, v in enumerate(node[:2]) for p in _leaves(v, (*path, i))]
    return [path]


def test_a_checked_report_is_one_the_records_and_renderers_read(tmp_path: Path) -> None:
    """Every field of a rich report, replaced by hostile values or removed: check_report refuses it with
    the file's name, or the record reads it and every renderer runs -- never a KeyError or TypeError."""
    from pytest_hostperf.errors import ReportError
    from pytest_hostperf.reports import plots
    from pytest_hostperf.store.report_schema import check_report

    good = _rich_report_doc()
    assert check_report(good, "r.json") is good
    refused = 0
    for path in _leaves(good)[1:]:
        for bad in ("x", -1, None, [], {}, True, 1.5, "delete"):
            doc = json.loads(json.dumps(good))
            *parent_path, key = path
            parent = doc
            for k in parent_path:
                parent = parent[k]
            if bad == "delete":
                if not isinstance(parent, dict):
                    continue
                del parent[key]
            else:
                parent[key] = bad
            try:
                check_report(doc, "r.json")
            except ReportError as exc:
                assert str(exc).startswith("r.json: "), exc
                refused += 1
                continue
            try:
                rec = Report.from_json(doc)
                src = compare.source_from_report(rec)
                terminal.terminal_summary(rec)
                compare_render.render_markdown(compare.from_run(rec, None, base_name="b.json"))
                compare_render.render_table(compare.compare_sources([src, src]))
                for m in src.measurements.values():
                    plots.curve(m)
            except Exception as exc:  # noqa: BLE001 -- name the field that got through
                pytest.fail(f"{'.'.join(map(str, path))} = {bad!r} passed check_report, then: {exc!r}")
    assert refused > 100


def test_inputs_are_read_once(two_hosts: tuple[Path, str, str], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_hostperf.store import jsonfile

    folder, amd, _ = two_hosts
    rpath = tmp_path / "r.json"
    rpath.write_text(disk.to_json(report_record(FP_AMD, {RING: 1.0}).to_json()))
    reads: list[Path] = []
    real = jsonfile.read_json

    def counting(path: Path, **kw: object) -> object:
        reads.append(Path(path))
        return real(path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(jsonfile, "read_json", counting)
    for arg in (str(folder / f"{amd}.json"), str(rpath)):
        reads.clear()
        assert compare.load_input(arg).kind in ("baseline", "report")
        assert reads == [Path(arg)]
        reads.clear()
        assert run_cli(capsys, "show", arg)[0] == 0
        assert reads == [Path(arg)]
    reads.clear()
    assert compare.load_input(amd, folder).kind == "baseline" and len(reads) == 1


def test_renderers_read_every_part_of_the_record(tmp_path: Path) -> None:
    doc = _rich_report_doc()
    rec = Report.from_json(doc)
    assert disk.to_json(rec.to_json()) == json.dumps(rec.to_json(), sort_keys=True, indent=1, allow_nan=False) + "\n"
    assert Report.from_json(json.loads(disk.to_json(rec.to_json()))) == rec
    base = disk.load(_write(tmp_path / "b.json", baseline_doc(FP_AMD, AUDIT_AMD, {RING: 1.0}, FIFO)))
    assert compare_render.render_markdown(compare.from_run(rec, base, base_name="b")).startswith("#")
    lines = terminal.terminal_summary(rec)
    assert "timer perf_counter_ns: overhead 50 ns, resolution 1 ns (included in every latency, not subtracted)" in lines
    at = next(i for i, x in enumerate(lines) if x.startswith(RING))
    row = lines[at] if lines[at] != RING else lines[at + 1]  # a table over 120 columns: figures under the name
    assert "cpu7 other" in row and "+50% [+30%, +70%]" in row and row.endswith("over-budget  minor_faults x3")
    assert "expect_faster holds: 2.5x faster" in lines and "rt: not applied (EPERM); fix: ulimit -r 99" in lines
    assert any(x.startswith("counters: read around each block") and "cycles: perf_event_paranoid 4" in x
               for x in lines)
    assert "host noise: before 3 interruptions > 10 us (baseline runs: 0.20% of the time)" in lines
