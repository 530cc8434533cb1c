"""Baselines and the p99 gate end to end: save, compare, regress, strict, corrupt files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

WORK_TEST = """
from benchmarks.workloads.synthetic import slowdown_from_env, work

def test_work(hostperf):
    hostperf(work, int(300 * slowdown_from_env()), name="work")
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nhostperf_samples = 4000\nhostperf_max_time = 0.4\n")
    pytester.makepyfile(WORK_TEST)
    return pytester


def _baseline(p: pytest.Pytester) -> Path:
    (path,) = (p.path / "baselines").glob("*.json")
    return path


# The machinery is tested with changes far beyond any host noise (tolerance 300%, slowdown 20x):
# how finely the gate separates noise from change is measured by benchmarks/verdict_quality.py.
LOOSE = "--hostperf-tolerance=300"


def _save(p: pytest.Pytester, times: int = 1) -> Path:
    for _ in range(times):
        p.runpytest_subprocess("--hostperf", "--hostperf-save", LOOSE).assert_outcomes(passed=1)
    return _baseline(p)


def test_no_baseline_passes_and_says_how_to_create_one(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--hostperf")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_work[[]work[]]", "*new", "no baseline for host * nothing was compared; "
                                 "record one with: pytest --hostperf --hostperf-save"])
    assert not (project.path / "baselines").exists()


def test_save_then_compare_then_2x_slower_fails(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(project, times=3)
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == 1 and len(doc["runs"]) == 3
    (mid,) = doc["runs"][-1]["measurements"]
    assert mid == "test_save_then_compare_then_2x_slower_fails.py::test_work[work]"
    same = project.runpytest_subprocess("--hostperf", "--hostperf-json=r.json", LOOSE)
    assert same.ret == 0, same.stdout.str()
    verdict = json.loads((project.path / "r.json").read_text())["results"][0]["verdict"]
    assert verdict["status"] in ("unchanged", "improved", "inconclusive") and verdict["baseline_runs"] == 3
    monkeypatch.setenv("HOSTPERF_SLOWDOWN", "20")
    slow = project.runpytest_subprocess("--hostperf", LOOSE)
    slow.assert_outcomes(failed=1)
    slow.stdout.fnmatch_lines([
        "*test_work[[]work[]]: block-median p99 regressed: baseline * -> current *, ratio *[[]95% CI * .. *[]] "
        "(tolerance 300%, 3 baseline run(s))*",
    ])
    assert len(json.loads(path.read_text())["runs"]) == 3  # comparing never writes


def test_keep_runs_and_host_override_is_sanitized(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nhostperf_samples = 500\nhostperf_max_time = 0.2\nhostperf_keep_runs = 2\n")
    for _ in range(3):
        project.runpytest_subprocess("--hostperf", "--hostperf-save", "--hostperf-host=../../etc/Evil Host", LOOSE,
                                     ).assert_outcomes(passed=1)
    files = list((project.path / "baselines").iterdir())
    assert [f.name for f in files if f.suffix == ".json"] == ["etc-evil-host.json"] or all(
        f.parent == project.path / "baselines" for f in files)
    path = _baseline(project)
    assert path.parent == project.path / "baselines"
    assert len(json.loads(path.read_text())["runs"]) == 2


def test_strict_fails_an_inconclusive_verdict(project: pytest.Pytester) -> None:
    path = _save(project)
    doc = json.loads(path.read_text())
    for run in doc["runs"]:
        for rec in run["measurements"].values():
            for i, block in enumerate(rec["blocks"]):  # a baseline far too noisy to decide anything
                f = 0.02 if i % 2 else 1.0
                for key in ("p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"):
                    block[key] = int(block[key] * f)
    path.write_text(json.dumps(doc, sort_keys=True, indent=1))
    lenient = project.runpytest_subprocess("--hostperf", LOOSE)
    lenient.assert_outcomes(passed=1)  # no warning: the summary says it (a strict filterwarnings passes too)
    lenient.stdout.fnmatch_lines(["inconclusive: *test_work[[]work[]]: *interval*"])
    strict = project.runpytest_subprocess("--hostperf", "--hostperf-strict", LOOSE)
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["*p99 inconclusive*(failing: --hostperf-strict)*"])


def test_differing_fingerprint_is_named(project: pytest.Pytester) -> None:
    path = _save(project)
    doc = json.loads(path.read_text())
    doc["runs"][-1]["fingerprint"]["kernel"] = "2.6.32-old"
    path.write_text(json.dumps(doc, sort_keys=True, indent=1))
    result = project.runpytest_subprocess("--hostperf", LOOSE)
    result.stdout.fnmatch_lines(["baseline was taken on a different setup: *kernel 2.6.32-old -> *"])


def test_corrupt_baseline_is_a_clear_usage_error(project: pytest.Pytester) -> None:
    path = _save(project)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    result = project.runpytest_subprocess("--hostperf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*hostperf baseline: *{path.name}*"])
    assert "Traceback" not in result.stderr.str()
    assert path.read_text() == text[: len(text) // 2]  # nothing rewritten


def test_save_needs_full_mode(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--hostperf-save")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--hostperf-save needs --hostperf*"])


def test_expect_faster_fails_only_when_confidently_not(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nhostperf_samples = 2000\nhostperf_max_time = 0.3\n")
    pytester.makepyfile("""
        from benchmarks.workloads.synthetic import work

        def test_holds(hostperf):
            slow = hostperf(work, 2000, name="slow")
            fast = hostperf(work, 100, name="fast")
            check = hostperf.expect_faster(fast, slow, factor=2)
            assert check is None if slow.smoke else check.status == "holds"

        def test_fails(hostperf):
            slow = hostperf(work, 200, name="slow")
            fast = hostperf(work, 100, name="fast")
            hostperf.expect_faster(fast, slow, factor=50)

        def test_smoke_never_decides(hostperf):
            pass
    """)
    result = pytester.runpytest_subprocess("--hostperf")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_fails[[]fast[]] is not 50x faster than *test_fails[[]slow[]] at block-median p99: speedup *"])
    pytester.runpytest_subprocess().assert_outcomes(passed=3)  # smoke mode: no decision


def test_runs_saved_close_together_are_marked_and_widen_the_stored_interval() -> None:
    from pytest_hostperf.gate import stored

    assert stored.runs_span_s(["2026-12-04T10:00:00Z", "2026-12-04T10:00:30Z", "2026-12-04T10:01:00Z"]) == 60.0
    assert stored.runs_span_s(["2026-12-04T10:00:00Z"]) is None
    assert stored.runs_span_s(["yesterday", "2026-12-04T10:00:00Z"]) is None

    def gate(created: list[str]) -> stored.StoredGate:
        return stored.StoredGate(baseline_of=lambda mid: [], gated=("p99",), strict=False, by_noise=False,
                                 noisy=lambda: False, progress=None, note_once=lambda s: None,  # type: ignore[arg-type]
                                 confirmation=None, runs_created=created)

    close = gate(["2026-12-04T10:00:00Z", "2026-12-04T10:59:00Z"])
    apart = gate(["2026-12-04T10:00:00Z", "2026-12-04T11:00:00Z"])  # exactly CLOSE_RUNS_S: trusted
    assert close.drift == stored.CLOSE_RUNS_SPREAD and apart.drift == 0.0
    assert gate([]).drift == 0.0
