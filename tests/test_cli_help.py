"""``hostperf --help`` and every subcommand's: printed without a traceback, and no ``%%``
(argparse %-formats help strings, but prints a description as written)."""
from __future__ import annotations

import argparse

import pytest

from pytest_hostperf import cli


def _subcommands() -> list[str]:
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(sub.choices)


@pytest.mark.parametrize("argv", [[], *([name] for name in _subcommands())], ids=lambda a: " ".join(a) or "hostperf")
def test_help_has_no_doubled_percent_signs(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hostperf") and "%%" not in out, out


def test_the_percent_signs_that_are_meant_are_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert {"audit", "compare", "show", "plot"} <= set(_subcommands())
    with pytest.raises(SystemExit):
        cli.main(["compare", "--help"])
    assert "95% interval" in " ".join(capsys.readouterr().out.split())
