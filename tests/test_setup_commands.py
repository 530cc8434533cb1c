"""The README's two set-up commands and .ci/run agree, and each makes a fresh virtual environment."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    setup = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [line for block in re.findall(r"```sh\n(.*?)```", setup, re.S)
            for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_has_exactly_two_commands_each_in_a_fresh_venv() -> None:
    commands = _readme_commands()
    assert len(commands) == 2, commands
    main, tests = commands
    for cmd in commands:
        # a stock Debian/Ubuntu Python refuses a bare `pip install` (PEP 668): make and use a venv
        assert cmd.startswith("python3 -m venv --clear .venv && "), cmd
        assert " python3 -m pip" not in cmd and ".venv/bin/python -m pip install" in cmd, cmd
    assert main.endswith(".venv/bin/python -m pytest --hostperf benchmarks/"), main
    # two xdist workers: the suite is mostly child pytest processes (this 2-core VM: 121 s vs 200 s serial)
    assert tests.endswith(".venv/bin/python -m pytest -n 2 tests/"), tests


def test_ci_runs_exactly_the_readme_test_command_then_types_lint_and_layers() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8").replace("\\\n    ", "")
    steps = [line for line in script.splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert steps[0] == _readme_commands()[1], steps
    assert steps[1:] == [".venv/bin/python -m mypy --strict pytest_hostperf && "
                         ".venv/bin/python -m ruff check pytest_hostperf tests benchmarks "
                         "&& .venv/bin/lint-imports"], steps
