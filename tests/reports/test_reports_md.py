"""Reports of a ``--hostperf`` run, end to end in pytest subprocesses: the markdown report
(``--hostperf-markdown`` and ``$GITHUB_STEP_SUMMARY``), plots (``--hostperf-plot``) and the
JUnit properties. Latencies are never asserted; only what the files say about them."""
from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET

import pytest

SLEEP_TEST = """
import time

def test_sleep(hostperf):
    hostperf(time.sleep, 0.0001, name="sleep")
"""

# Two measurements in two tests; HOSTPERF_SLOWDOWN slows only `work`.
TWO_TESTS = """
from benchmarks.workloads.synthetic import slowdown_from_env, work

def test_steady(hostperf):
    hostperf(work, 300, name="steady")

def test_work(hostperf):
    hostperf(work, int(300 * slowdown_from_env()), name="work")
"""
# Far beyond host noise (tolerance 300%, slowdown 20x), as in test_gate.py.
LOOSE = "--hostperf-tolerance=300"


def test_step_summary_is_appended_when_set(fast_ini: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    fast_ini.makepyfile(SLEEP_TEST)
    summary = fast_ini.path / "summary.md"
    summary.write_text("## an earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = fast_ini.runpytest_subprocess("--hostperf")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["note: markdown report appended to $GITHUB_STEP_SUMMARY"])
    text = summary.read_text()
    assert text.startswith("## an earlier step\n### hostperf: 1 new\n")
    assert "| `test_step_summary_is_appended_when_set.py::test_sleep[sleep]` | - | - | - |" in text
    assert "no baseline for host" in text


def test_step_summary_is_not_written_in_smoke_mode(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(SLEEP_TEST)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest_subprocess("--hostperf-markdown=r.md")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*--hostperf-markdown is written only under --hostperf*"])
    assert not summary.exists() and not (pytester.path / "r.md").exists()


def test_markdown_report_matches_hostperf_compare(fast_ini: pytest.Pytester) -> None:
    fast_ini.makepyfile(SLEEP_TEST)
    fast_ini.runpytest_subprocess("--hostperf", "--hostperf-save").assert_outcomes(passed=1)
    result = fast_ini.runpytest_subprocess("--hostperf", "--hostperf-markdown=out/report.md",
                                           "--hostperf-json=r.json", "--hostperf-tolerance=300")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["note: markdown report written to *report.md"])
    md = (fast_ini.path / "out" / "report.md").read_text()
    lines = md.splitlines()
    assert lines[0].startswith("### hostperf: 1 ") and "regressed" not in lines[0]
    assert lines[2].startswith("- **A** baseline `baselines/") and lines[3].startswith("- **B** report `this run`")
    (baseline_file,) = (fast_ini.path / "baselines").glob("*.json")
    # the same renderer as `hostperf compare --format markdown`: the same table header and layout
    compared = fast_ini.run(sys.executable, "-m", "pytest_hostperf.cli", "compare", str(baseline_file), "r.json",
                            "--format", "markdown", "--tolerance=300")
    assert compared.ret == 0
    header = next(x for x in lines if x.startswith("| measurement"))
    assert header == next(x for x in compared.outlines if x.startswith("| measurement"))
    assert header == ("| measurement | A p50 | A p99 | A p99.9 | B p50 | B p99 | B p99.9 | p99* B/A [95% CI] "
                      "| could tell | verdict |")


def test_regression_reports_markdown_junit_and_plots(pytester: pytest.Pytester,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the plot extra: pip install -e '.[plot]')")
    pytester.makeini("[pytest]\nhostperf_samples = 4000\nhostperf_max_time = 0.4\n")
    pytester.makepyfile(TWO_TESTS)
    pytester.runpytest_subprocess("--hostperf", "--hostperf-save", LOOSE).assert_outcomes(passed=2)
    monkeypatch.setenv("HOSTPERF_SLOWDOWN", "20")
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest_subprocess("--hostperf", LOOSE, "--hostperf-markdown=report.md",
                                           "--hostperf-plot=plots", "--junitxml=junit.xml")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["note: plots written to *plots (4 files)"])

    md = (pytester.path / "report.md").read_text()
    assert summary.read_text() == md + "\n"
    lines = md.splitlines()
    assert lines[0] in ("### hostperf: 1 regressed, 1 unchanged", "### hostperf: 1 regressed, 1 improved",
                        "### hostperf: 1 regressed, 1 inconclusive")
    rows = [x for x in lines if x.startswith("| `")]
    assert "test_work[work]" in rows[0] and rows[0].endswith("| **regressed** |")  # regressions first
    assert "Host differences" not in md  # the same host

    node = "test_regression_reports_markdown_junit_and_plots.py::"
    cases = {c.get("name"): c for c in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")}
    props = {name: {p.get("name"): p.get("value") for p in case.iter("property")} for name, case in cases.items()}
    assert props["test_work"]["hostperf[work].verdict"] == "regressed"
    assert props["test_steady"]["hostperf[steady].verdict"] in ("unchanged", "improved", "inconclusive")
    assert int(props["test_work"]["hostperf[work].p99_ns"]) > int(props["test_steady"]["hostperf[steady].p99_ns"])

    files = sorted(p.name for p in (pytester.path / "plots").iterdir())
    stems = [f"{node}test_steady", f"{node}test_work"]
    assert files == sorted(f"{s.replace('::', '-')}.{ext}" for s in stems for ext in ("png", "svg"))
    svg = (pytester.path / "plots" / f"{stems[1].replace('::', '-')}.svg").read_text()
    assert "work — baseline" in svg and "work — current" in svg
    assert (pytester.path / "plots" / f"{stems[1].replace('::', '-')}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_junit_properties_in_a_passing_run(fast_ini: pytest.Pytester) -> None:
    fast_ini.makepyfile(SLEEP_TEST)
    fast_ini.runpytest_subprocess("--hostperf", "--junitxml=j.xml").assert_outcomes(passed=1)
    (case,) = ET.parse(fast_ini.path / "j.xml").getroot().iter("testcase")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["hostperf[sleep].verdict"] == "new"
    assert int(props["hostperf[sleep].p99_ns"]) >= 100_000  # sleep(100 us) cannot take less


def test_plots_without_matplotlib_warn_and_the_run_goes_on(fast_ini: pytest.Pytester) -> None:
    fast_ini.makeconftest("import sys\nsys.modules['matplotlib'] = None  # as if it were not installed\n")
    fast_ini.makepyfile(SLEEP_TEST)
    result = fast_ini.runpytest_subprocess("--hostperf", "--hostperf-plot=plots", "--hostperf-json=r.json")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["warning: plots NOT written: plots need matplotlib, which is not installed; "
                                 "install it with: pip install 'pytest-hostperf[plot]'"])
    assert not (fast_ini.path / "plots").exists()
    assert json.loads((fast_ini.path / "r.json").read_text())["results"][0]["histogram"]["encoding"] == "log2-32"


def test_rt_off_on_the_command_line_is_off(fast_ini: pytest.Pytester) -> None:
    """--hostperf-rt=off parses to "no priority"; it must not fall back to the default 49."""
    fast_ini.makepyfile(SLEEP_TEST)
    result = fast_ini.runpytest_subprocess("--hostperf", "--hostperf-rt=off", "--hostperf-json=r.json")
    result.assert_outcomes(passed=1)
    (row,) = json.loads((fast_ini.path / "r.json").read_text())["results"]
    assert row["host"]["policy"] == "SCHED_OTHER"
    assert not [c for c in row["host"]["controls"] if c["control"] == "rt" and c["applied"]]
