"""The harness (pytest_hostperf, installed) never imports the benchmark suite (benchmarks/, not installed)."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _imported(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_the_harness_imports_nothing_from_the_benchmark_suite() -> None:
    found = [
        f"{path.relative_to(REPO)}: {name}"
        for path in sorted((REPO / "pytest_hostperf").rglob("*.py"))
        for name in _imported(ast.parse(path.read_text(), str(path)))
        if name == "benchmarks" or name.startswith("benchmarks.")
    ]
    assert found == []
    assert not (REPO / "pytest_hostperf" / "workloads").exists(), "the workloads live in benchmarks/workloads/"
