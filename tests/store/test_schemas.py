"""The published JSON Schemas (docs/schemas/) describe what the code writes and reads.

The committed baselines and a fresh report validate; broken baselines do not, so the
schemas are not vacuous. The code stays the authority: baseline.py checks more than a
schema can say (orderings, sums), see each schema's ``$comment``.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

jsonschema = pytest.importorskip(
    "jsonschema", reason="jsonschema is not installed (it is in the dev extra: pip install -e '.[dev]')")

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "docs" / "schemas"
GOLDEN_BASELINES = sorted((REPO / "tests" / "golden").glob("*.json"))
COMMITTED_BASELINES = sorted((REPO / "baselines").glob("*.json"))


def _validator(name: str) -> Any:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def baseline_schema() -> Any:
    return _validator("baseline")


@pytest.fixture(scope="module")
def report_schema() -> Any:
    return _validator("report")


def _errors(validator: Any, doc: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:200]}"
            for e in validator.iter_errors(doc)]


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_schemas_are_valid_draft_2020_12() -> None:
    for name in ("baseline", "report"):
        _validator(name)


def test_both_schemas_describe_the_histogram_alike() -> None:
    """A report's histogram is checked by the baseline loader's own rule: one definition, twice."""
    baseline = _load(SCHEMAS / "baseline.schema.json")
    report = _load(SCHEMAS / "report.schema.json")
    assert baseline["$defs"]["histogram"] == report["$defs"]["histogram"]


@pytest.mark.parametrize("path", COMMITTED_BASELINES + GOLDEN_BASELINES,
                         ids=lambda p: str(p.relative_to(REPO)))
def test_committed_baselines_validate(baseline_schema: Any, path: Path) -> None:
    doc = _load(path)
    if doc.get("schema") != "pytest-hostperf-baseline":
        pytest.skip(f"{path.name} is not a baseline file")
    assert _errors(baseline_schema, doc) == []


def test_there_is_a_committed_and_a_golden_baseline() -> None:
    assert COMMITTED_BASELINES, "no baselines/*.json"
    assert any(_load(p).get("schema") == "pytest-hostperf-baseline" for p in GOLDEN_BASELINES), \
        "no baseline among tests/golden/*.json"


TEST_FILE = """
import pytest


@pytest.mark.hostperf(p99="1s")
def test_two(hostperf):
    slow = hostperf(sorted, list(range(200)), name="sorted")
    fast = hostperf(len, "abc", name="len")
    hostperf.expect_faster(fast, slow, factor=1.5)
"""


def test_fresh_report_and_saved_baseline_validate(pytester: pytest.Pytester, baseline_schema: Any,
                                                  report_schema: Any) -> None:
    pytester.makeini("[pytest]\nhostperf_samples = 300\nhostperf_max_time = 0.2\n")
    pytester.makepyfile(test_budget=TEST_FILE)
    first = pytester.runpytest_subprocess("--hostperf", "--hostperf-save", "--hostperf-json=r.json")
    assert first.ret == 0, first.stdout.str()
    # Against a baseline of one run on a shared host the verdicts may go either way (a
    # `regressed` fails the test); the report is written in any case, and that is what is checked.
    second = pytester.runpytest_subprocess("--hostperf", "--hostperf-json=r2.json")
    assert second.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), second.stdout.str()

    saved = sorted((pytester.path / "baselines").glob("*.json"))
    assert len(saved) == 1, saved
    assert _errors(baseline_schema, _load(saved[0])) == []

    r1, r2 = _load(pytester.path / "r.json"), _load(pytester.path / "r2.json")
    for doc in (r1, r2):
        assert _errors(report_schema, doc) == []
        assert len(doc["results"]) == 2
        assert [b["stat"] for r in doc["results"] for b in r["budgets"]] == ["p99", "p99"]
        assert len(doc["speedups"]) == 1
    # The first run had no baseline, the second compares with the one the first saved.
    assert {r["verdict"]["status"] for r in r1["results"]} == {"new"}
    assert all(r["verdict"]["status"] != "new" and r["verdict"]["baseline_runs"] == 1 for r in r2["results"])


# --------------------------------------------------------------------------- not vacuous


@pytest.fixture
def good_baseline() -> dict[str, Any]:
    return _load(COMMITTED_BASELINES[0] if COMMITTED_BASELINES else GOLDEN_BASELINES[0])


def _first_record(doc: dict[str, Any]) -> dict[str, Any]:
    return next(iter(doc["runs"][0]["measurements"].values()))


def test_the_unbroken_baseline_validates(baseline_schema: Any, good_baseline: dict[str, Any]) -> None:
    assert _errors(baseline_schema, good_baseline) == []


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_wrong_schema_version_fails(baseline_schema: Any, good_baseline: dict[str, Any], version: Any) -> None:
    good_baseline["schema_version"] = version
    assert _errors(baseline_schema, good_baseline)


@pytest.mark.parametrize("where, key", [
    ("doc", "host_id"), ("doc", "runs"), ("run", "commit"), ("run", "measurements"),
    ("record", "p99_ns"), ("record", "histogram"), ("block", "p99_ns"), ("histogram", "total"),
])
def test_missing_required_key_fails(baseline_schema: Any, good_baseline: dict[str, Any], where: str,
                                    key: str) -> None:
    record = _first_record(good_baseline)
    target = {"doc": good_baseline, "run": good_baseline["runs"][0], "record": record,
              "block": record["blocks"][0], "histogram": record["histogram"]}[where]
    del target[key]
    assert _errors(baseline_schema, good_baseline)


@pytest.mark.parametrize("where", ["record", "block"])
def test_negative_p99_fails(baseline_schema: Any, good_baseline: dict[str, Any], where: str) -> None:
    record = _first_record(good_baseline)
    (record if where == "record" else record["blocks"][0])["p99_ns"] = -1
    assert _errors(baseline_schema, good_baseline)


@pytest.mark.parametrize("mutate", [
    pytest.param(lambda d: d.__setitem__("schema", "pytest-hostperf-report"), id="foreign-schema"),
    pytest.param(lambda d: d.__setitem__("host_id", "../etc"), id="host-id-path"),
    pytest.param(lambda d: d.__setitem__("surprise", 1), id="unknown-top-level-key"),
    pytest.param(lambda d: _first_record(d).__setitem__("p50_ns", 1.5), id="float-ns"),
    pytest.param(lambda d: _first_record(d).__setitem__("mode", "batched(0)"), id="mode"),
    pytest.param(lambda d: _first_record(d)["histogram"].__setitem__("encoding", "hdr"), id="encoding"),
    pytest.param(lambda d: d["runs"][0].__setitem__("created_utc", "yesterday"), id="created-utc"),
])
def test_other_broken_baselines_fail(baseline_schema: Any, good_baseline: dict[str, Any], mutate: Any) -> None:
    broken = copy.deepcopy(good_baseline)
    mutate(broken)
    assert _errors(baseline_schema, broken)


def test_a_broken_report_fails(report_schema: Any) -> None:
    doc = {"schema": "pytest-hostperf-report", "schema_version": 1, "created_utc": None, "mode": "imported",
           "host": None, "baseline": None, "timer": None, "speedups": [], "notes": [], "results": [],
           "source": {"tool": "pytest-benchmark", "version": "4.0.0", "file": "b.json"}}
    assert _errors(report_schema, doc) == []
    for key, value in (("schema_version", 2), ("mode", "smoke"), ("results", {})):
        assert _errors(report_schema, {**doc, key: value}), key
    del doc["results"]
    assert _errors(report_schema, doc)
