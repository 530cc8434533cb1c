"""The GitHub workflows parse, and hostperf.yml does what the README's CI section says."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (it is in the dev extra: pip install -e '.[dev]')")

WORKFLOWS = Path(__file__).parent.parent / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


def runs(job: dict[str, Any]) -> list[str]:
    return [s["run"] for s in job["steps"] if "run" in s]


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if s.get("uses", "").startswith(action + "@")]


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_every_workflow_parses(name: str) -> None:
    doc = load(name)
    assert doc["jobs"] and "on" in doc


def test_pull_request_gate() -> None:
    doc = load("hostperf.yml")
    assert "pull_request" in doc["on"]
    job = doc["jobs"]["gate"]
    assert job["if"] == "github.event_name == 'pull_request'"
    assert uses(job, "actions/checkout") and uses(job, "actions/setup-python")
    commands = runs(job)
    assert any("pip install -e '.[dev]'" in c for c in commands)
    (checkout,) = uses(job, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0  # the base commit must be in the clone
    step = next(s for s in job["steps"] if "git fetch" in s.get("run", ""))
    assert step["env"]["BASE_REF"] == "${{ github.base_ref }}" and '"$BASE_REF"' in step["run"]
    gate = next(c for c in commands if "--hostperf " in c)
    assert gate.split()[:4] == ["python", "-m", "pytest", "--hostperf"] and "benchmarks/" in gate.split()
    # paired against the base branch, measured now: no committed baseline needed for the runner
    assert '--hostperf-against="origin/$BASE_REF"' in gate
    gate_step = next(s for s in job["steps"] if s.get("run") == gate)
    assert gate_step["env"]["BASE_REF"] == "${{ github.base_ref }}"
    assert "--hostperf-json=hostperf.json" in gate and "--hostperf-plot=hostperf-plots" in gate
    assert "||" not in gate  # the pytest exit status fails the check
    (upload,) = uses(job, "actions/upload-artifact")
    assert upload["uses"] == "actions/upload-artifact@v4" and upload["if"] == "always()"
    assert upload["with"]["path"].split() == ["hostperf.json", "hostperf-plots/"]
    order = [s.get("uses", s.get("run", "")) for s in job["steps"]]
    assert order.index(gate) < order.index(upload["uses"])


def test_manual_refresh_of_a_runner_baseline() -> None:
    doc = load("hostperf.yml")
    inputs = doc["on"]["workflow_dispatch"]["inputs"]
    assert inputs["runner"]["default"] == "ubuntu-latest"
    job = doc["jobs"]["refresh-baseline"]
    assert job["runs-on"] == "${{ inputs.runner }}" and job["if"] == "github.event_name == 'workflow_dispatch'"
    assert any("--hostperf --hostperf-save benchmarks/" in c for c in runs(job))
    (upload,) = uses(job, "actions/upload-artifact")
    assert upload["with"]["path"] == "baselines/"
    # one Python for both jobs: the host id, and so the baseline file, includes its major.minor
    assert doc["env"]["PYTHON_VERSION"]
    for name in ("gate", "refresh-baseline"):
        (setup,) = uses(doc["jobs"][name], "actions/setup-python")
        assert setup["with"]["python-version"] == "${{ env.PYTHON_VERSION }}"
