"""scripts/device-check: the one command that runs the GPU checks on a machine with a GPU. Here
(no GPU) only its shape is checked: it parses, and runs each step the issue names."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "device-check"


def test_device_check_parses_and_runs_every_step_into_one_folder() -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    assert os.access(SCRIPT, os.X_OK)
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    text = SCRIPT.read_text()
    for step in ("step audit", "step tests", "step benchmarks", "step paired-aa", "--hostperf-against=HEAD",
                 "--hostperf-json=\"$OUT/benchmarks.json\"", "timeout"):
        assert step in text, step
