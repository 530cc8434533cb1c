"""Every hostile file of the fault suite, through every command that reads a file.

test_hostile_baselines.py bounds what ``baseline.load`` costs; this file checks that the one
bounded reader (``jsonfile.py``) is what each entry point uses: ``pytest --hostperf`` (the
file as this host's baseline), ``hostperf show``, ``compare``, ``plot`` and
``import-benchmark``. Each must answer with one line that names the file -- never a
traceback, never a half-understood file accepted.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_hostperf import cli

from .conftest import GOLDEN, child_env, write_golden
from .test_hostile_baselines import BIG, MESSAGE_BOUND, RSS_BOUND_MIB, SMALL, _write_repeated

HAS_MPL = importlib.util.find_spec("matplotlib") is not None
CLI_COMMANDS = {
    "show": lambda f: ["show", f],
    "compare": lambda f: ["compare", f, str(GOLDEN)],
    "plot": lambda f: ["plot", f, "--out", "plots"],
    "import-benchmark": lambda f: ["import-benchmark", f],
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The small hostile corpus and the links, each file alone in its own folder as
    ``baselines/h.json`` (so the plugin reads it as host ``h``'s baseline)."""
    root = tmp_path_factory.mktemp("hostile")
    outside = root / "outside"
    write_golden(outside)
    files = {}
    for name, make in SMALL.items():
        files[name] = root / name / "baselines" / "h.json"
        files[name].parent.mkdir(parents=True)
        files[name].write_bytes(make())
    links = {"link-to-outside-baseline": next(outside.iterdir()), "link-to-dev-zero": Path("/dev/zero"),
             "link-dangling": root / "nowhere.json", "link-to-etc": Path("/etc/hostname")}
    for name, target in links.items():
        files[name] = root / name / "baselines" / "h.json"
        files[name].parent.mkdir(parents=True)
        files[name].symlink_to(target)
    return files


def _one_clear_line(text: str, path: Path, where: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert "Traceback" not in text, f"{where}: a traceback:\n{text[-2000:]}"
    assert len(lines) == 1, f"{where}: not one line:\n{text[-2000:]}"
    assert str(path) in lines[0] and len(lines[0]) < MESSAGE_BOUND, f"{where}: {lines[0][:300]}"
    return lines[0]


@pytest.mark.parametrize("command", [
    *(c for c in CLI_COMMANDS if c != "plot"),
    pytest.param("plot", marks=pytest.mark.skipif(not HAS_MPL, reason="matplotlib (the plot extra) is not installed")),
])
def test_every_hostile_file_is_one_clear_line_from_the_cli(corpus: dict[str, Path], command: str,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name, path in corpus.items():
        rc = cli.main(CLI_COMMANDS[command](str(path)))
        out, err = capsys.readouterr()
        where = f"hostperf {command} {name}"
        assert rc == 2 and out == "", f"{where}: exit {rc}, stdout {out[:300]!r}"
        line = _one_clear_line(err, path, where)
        assert line.startswith("hostperf: error: "), f"{where}: {line[:300]}"
        if name.startswith("link-"):
            assert "symlink" in line, f"{where}: {line[:300]}"
    assert not (tmp_path / "plots").exists() or not any((tmp_path / "plots").iterdir()), "a plot was written"


def test_every_hostile_file_is_one_clear_line_from_the_plugin(corpus: dict[str, Path],
                                                               pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one="def test_x(hostperf):\n    hostperf(len, 'abc')\n")
    for name, path in corpus.items():
        res = pytester.runpytest_inprocess("--hostperf", "--hostperf-host=h", f"--hostperf-baselines={path.parent}",
                                           "-p", "no:cacheprovider")
        where = f"pytest --hostperf with {name} as the baseline"
        assert res.ret == pytest.ExitCode.USAGE_ERROR, f"{where}: exit {res.ret}\n{res.stdout.str()[-2000:]}"
        line = _one_clear_line(res.stderr.str(), path, where)
        assert line.startswith("ERROR: hostperf baseline: "), f"{where}: {line[:300]}"
        assert "passed" not in res.stdout.str(), f"{where}: tests ran against an unreadable baseline"


#: Runs each entry point on each file in a fresh interpreter; what it printed and what it cost.
ENTRY = textwrap.dedent("""
    import contextlib, io, json, resource, sys
    from pytest_hostperf import cli
    path, commands = sys.argv[1], json.loads(sys.argv[2])
    out = {}
    for name, argv in commands.items():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        err, std = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
            rc = cli.main(argv)
        out[name] = {"rc": rc, "stderr": err.getvalue(), "stdout": std.getvalue()[:300],
                     "rss_growth_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before}
    print(json.dumps(out))
""")


@pytest.mark.parametrize("name", sorted(BIG))
def test_big_hostile_files_are_refused_by_every_command_in_bounded_memory(tmp_path: Path, name: str) -> None:
    head, unit, tail, total = BIG[name]
    path = tmp_path / name
    _write_repeated(path, head, unit, tail, total)
    commands = {c: make(str(path)) for c, make in CLI_COMMANDS.items() if c != "plot" or HAS_MPL}
    proc = subprocess.run([sys.executable, "-c", ENTRY, str(path), json.dumps(commands)], capture_output=True,
                          text=True, timeout=120, env=child_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for command, got in json.loads(proc.stdout).items():
        where = f"hostperf {command} {name}"
        assert got["rc"] == 2, (where, got)
        _one_clear_line(got["stderr"], path, where)
        assert got["rss_growth_kib"] < RSS_BOUND_MIB * 1024, (where, got["rss_growth_kib"])
