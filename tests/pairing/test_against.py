"""``--hostperf-against``: the base session driven by the head, end to end."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_hostperf.stats.paired import MAX_PAIRS

LIB = """SCALE = {scale}


def work(n):
    acc = 0
    for i in range(n * SCALE):
        acc = (acc + i * i) & 0xFFFF
    return acc
"""
TESTS = """
from mylib import work

def test_w(hostperf):
    hostperf(work, 100, name="work")

def test_plain():
    assert work(0) == 0
"""
INI = "[pytest]\nhostperf_samples = 2000\nhostperf_max_time = 0.5\n"


def _project(path: Path, scale: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "mylib.py").write_text(LIB.format(scale=scale))
    (path / "test_w.py").write_text(TESTS)
    (path / "pytest.ini").write_text(INI)
    return path


def _leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in Path(tmp).glob("hostperf-base-*"))


def test_against_a_directory_pairs_each_measurement(pytester: pytest.Pytester, tmp_path: Path) -> None:
    _project(pytester.path, scale=1)
    base = _project(tmp_path / "base", scale=1)
    res = pytester.runpytest_subprocess("--hostperf", f"--hostperf-against={base}", "--hostperf-json=r.json",
                                        "--hostperf-tolerance=50")
    res.assert_outcomes(passed=2)
    res.stdout.fnmatch_lines([f"*paired against {base}*"])
    doc = json.loads((pytester.path / "r.json").read_text())
    (r,) = doc["results"]
    v = r["verdict"]
    m = re.match(rf"paired with {re.escape(str(base))}: 4 process pairs, (\d+) block pairs", v["reason"])
    assert m and 24 <= int(m.group(1)) <= MAX_PAIRS + 8, v["reason"]  # 6 block pairs a process pair first
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (it is in the dev extra)")
    schema = json.loads((Path(__file__).resolve().parents[2] / "docs" / "schemas" / "report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)  # a paired report is a report
    assert v["status"] in ("unchanged", "inconclusive", "improved") and v["baseline_ns"] > 0
    # the report keeps every pair: (head, base) block p99 in ns, in schedule order
    assert len(v["pairs"]) == int(m.group(1)) and all(h > 0 and b > 0 for h, b in v["pairs"])


def test_a_slower_head_fails_paired_against_a_git_revision(pytester: pytest.Pytester) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    _project(pytester.path, scale=1)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-C", str(pytester.path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], check=True)
    (pytester.path / "mylib.py").write_text(LIB.format(scale=3))  # the change: 3x the work
    res = pytester.runpytest_subprocess("--hostperf", "--hostperf-against=HEAD")
    res.assert_outcomes(passed=1, failed=1)
    res.stdout.fnmatch_lines(["*test_w.py::test_w[[]work[]]: block-median p99 regressed: base * -> head *, ratio *"
                              "paired with HEAD: 4 process pairs, * block pairs*"])
    assert "no baseline for host" not in res.stdout.str()
    listed = subprocess.run([*git, "worktree", "list"], capture_output=True, text=True, check=True).stdout
    assert len(listed.strip().splitlines()) == 1, f"the base worktree was not removed: {listed}"


def test_a_revision_git_cannot_check_out_is_one_clear_error(pytester: pytest.Pytester) -> None:
    _project(pytester.path, scale=1)
    res = pytester.runpytest_subprocess("--hostperf", "--hostperf-against=no-such-ref")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*--hostperf-against=no-such-ref: not a directory, and not a revision of *"])
    assert "Traceback" not in res.stderr.str()


@pytest.mark.parametrize("ref, message", [
    ("x" * 5000, "*--hostperf-against=xxx*... (5000 characters): not a usable revision or directory (give a commit*"),
    ("--output={out}", "*--hostperf-against=--output=*: not a directory, and not a revision of *"),
    ("-h", "*--hostperf-against=-h: not a directory, and not a revision of *"),
    ("--end-of-options", "*--hostperf-against=--end-of-options: not a directory, and not a revision of *"),
    ("HEAD\n--output={out}", "*--hostperf-against=HEAD\\n--output=*: not a usable revision or directory*"),
], ids=["5000-chars", "an-option", "help", "end-of-options", "newline"])
def test_a_hostile_ref_is_one_line_before_git_sees_it(pytester: pytest.Pytester, tmp_path: Path, ref: str,
                                                       message: str) -> None:
    """Whatever REF is, on the command line or in HOSTPERF_AGAINST: one usage line naming the
    option and the fix, no traceback, and git never takes it as an option (``--output=F``
    would make git write F)."""
    git = _committed_project(pytester.path)
    del git
    out = tmp_path / "written-by-git"
    ref = ref.format(out=out)
    for how in ("option", "env"):
        if how == "option":
            res = pytester.runpytest_subprocess("--hostperf", f"--hostperf-against={ref}")
        else:
            with pytest.MonkeyPatch.context() as mp:
                if "\n" in ref:
                    continue  # an environment value with a newline is the same string as the option's
                mp.setenv("HOSTPERF_AGAINST", ref)
                res = pytester.runpytest_subprocess("--hostperf")
        assert res.ret == pytest.ExitCode.USAGE_ERROR, (how, res.stdout.str()[-800:], res.stderr.str()[-800:])
        res.stderr.fnmatch_lines([message])
        assert "Traceback" not in res.stderr.str() and "INTERNALERROR" not in res.stdout.str() + res.stderr.str()
        assert not out.exists(), "git took REF as an option"


def test_a_base_that_cannot_collect_is_one_clear_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    _project(pytester.path, scale=1)
    base = _project(tmp_path / "base", scale=1)
    (base / "mylib.py").write_text("raise ImportError('the base is broken')\n")
    res = pytester.runpytest_subprocess("--hostperf", f"--hostperf-against={base}")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(
        [f"*--hostperf-against={base}: the base session of pair 1 failed: collection failed in the base tree*"])
    assert _processes_in(base) == [], "a replica session outlived the refused run"


def _committed_project(path: Path) -> list[str]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    _project(path, scale=1)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-C", str(path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], check=True)
    return git


def test_under_xdist_the_paired_tests_gather_on_one_worker(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    git = _committed_project(pytester.path)
    (pytester.path / "test_more.py").write_text(TESTS.replace("test_w", "test_v").replace("work\")", "work2\")")
                                               .replace("def test_plain", "def test_plain2"))
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "more"], check=True)
    (pytester.path / "mylib.py").write_text(LIB.format(scale=3))  # the change: 3x the work
    res = pytester.runpytest_subprocess("-n", "2", "--hostperf", "--hostperf-against=HEAD",
                                        "--hostperf-json=r.json")
    res.assert_outcomes(passed=2, failed=2)
    res.stdout.fnmatch_lines(["*test_w.py::test_w[[]work[]]: block-median p99 regressed: base * -> head *"
                              "paired with HEAD*",
                              "*--hostperf-against under 2 xdist workers: the paired tests ran on one worker*"])
    doc = json.loads((pytester.path / "r.json").read_text())
    assert len({r["worker"] for r in doc["results"]}) == 1 and len(doc["results"]) == 2
    assert all(len(r["verdict"]["pairs"]) >= 20 for r in doc["results"])
    listed = subprocess.run([*git, "worktree", "list"], capture_output=True, text=True, check=True).stdout
    assert len(listed.strip().splitlines()) == 1, f"the base worktree was not removed: {listed}"


def test_under_xdist_a_bad_revision_is_one_clear_error(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    _committed_project(pytester.path)
    res = pytester.runpytest_subprocess("-n", "2", "--hostperf", "--hostperf-against=no-such-ref")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*--hostperf-against=no-such-ref: not a directory, and not a revision of*"])
    assert "Traceback" not in res.stderr.str()


def test_against_without_hostperf_is_smoke_and_starts_nothing(pytester: pytest.Pytester, tmp_path: Path) -> None:
    _project(pytester.path, scale=1)
    res = pytester.runpytest_subprocess(f"--hostperf-against={tmp_path / 'nowhere'}")
    res.assert_outcomes(passed=2)


def _processes_in(tree: Path) -> list[int]:
    import psutil

    out = []
    for p in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if str(tree) in " ".join(p.info["cmdline"] or ()) or str(tree) == (p.info["cwd"] or ""):
                out.append(p.pid)
        except psutil.Error:
            pass
    return out


BASE_DIES = """
import os
from mylib import work

def test_w(hostperf):
    os._exit(3)  # the base process dies mid-run

def test_plain():
    assert work(0) == 0
"""

BASE_HANGS = """
import time
from mylib import work

def test_w(hostperf):
    time.sleep(600)  # never reaches its measurement

def test_plain():
    assert work(0) == 0
"""


@pytest.mark.parametrize("tests, message", [
    (BASE_DIES, "*--hostperf-against=*: paired: the base session of pair 1 closed the connection (it exited or was "
                "killed)*"),
    (BASE_HANGS, "*--hostperf-against=*: paired: no word from the base session of pair 1 within 2 s (it hung)*"),
], ids=["killed", "hung"])
def test_a_base_that_dies_or_hangs_fails_the_test_in_bounded_time_and_is_reaped(
        pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tests: str, message: str) -> None:
    import time

    _project(pytester.path, scale=1)
    base = _project(tmp_path / "base", scale=1)
    (base / "test_w.py").write_text(tests)
    monkeypatch.setenv("HOSTPERF_PAIRING_WAIT_S", "2")
    t0 = time.monotonic()
    res = pytester.runpytest_subprocess("--hostperf", f"--hostperf-against={base}", timeout=120)
    assert time.monotonic() - t0 < 60
    res.assert_outcomes(passed=1, failed=1)
    res.stdout.fnmatch_lines([message])
    assert _processes_in(base) == [], "the base session outlived the run"


def _fifo_in(pid: int) -> bool:
    import os

    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        try:
            if os.sched_getscheduler(int(tid)) == os.SCHED_FIFO:
                return True
        except OSError:
            pass
    return False


def test_ctrl_c_during_pairing_ends_the_run_and_reaps_the_base(pytester: pytest.Pytester, tmp_path: Path) -> None:
    import os
    import signal
    import sys
    import time

    from pytest_hostperf.host.sched import rt_available

    if not rt_available(49).available:
        pytest.skip("SCHED_FIFO is not permitted here: the test finds the pairing by its RT threads")
    _project(pytester.path, scale=1)
    (pytester.path / "pytest.ini").write_text("[pytest]\nhostperf_samples = 400000\nhostperf_max_time = 20\n")
    base = _project(tmp_path / "base", scale=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS"))}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hostperf",
                             f"--hostperf-against={base}", "test_w.py::test_w"], cwd=pytester.path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(_fifo_in(pid) for pid in _processes_in(base)):
            time.sleep(0.05)
        assert any(_fifo_in(pid) for pid in _processes_in(base)), "no replica ever reached SCHED_FIFO"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode != 0, out.decode(errors="replace")[-2000:]
    assert _processes_in(base) == [], "a base session outlived the interrupted run"
    assert [p for p in _processes_in(pytester.path) if p not in (proc.pid, os.getpid())] == [], \
        "a head session outlived the run"


SLOW_LIB = """import os

SCALE = int(os.environ.get("SLOW", "1")) * {scale}


def work(n):
    acc = 0
    for i in range(n * SCALE):
        acc = (acc + i * i) & 0xFFFF
    return acc
"""


@pytest.fixture(scope="module")
def saved_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository of the project at v1 with three baseline runs saved, made once; each
    test works on its own copy (``_git_project``)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    import os
    import sys

    repo = _project(tmp_path_factory.mktemp("saved") / "repo", scale=1)
    (repo / "mylib.py").write_text(SLOW_LIB.format(scale=1))
    (repo / ".gitignore").write_text("baselines/\n")
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "v1"], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS", "SLOW"))}
    env["PYTEST_ADDOPTS"] = "-p no:hypothesispytest"
    for _ in range(3):  # three runs: the gate then learns the run-to-run spread (fewer assume 25%)
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hostperf",
                        "--hostperf-save"], cwd=repo, env=env, check=True, capture_output=True, timeout=120)
    return repo


def _git_project(p: pytest.Pytester, saved: Path) -> list[str]:
    shutil.copytree(saved, p.path, symlinks=True, dirs_exist_ok=True)  # pytester's folder is the cwd: keep it
    return ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-C", str(p.path)]


def test_a_stored_regression_confirmed_paired_fails_with_both_figures(pytester: pytest.Pytester,
                                                                       saved_repo: Path) -> None:
    git = _git_project(pytester, saved_repo)
    (pytester.path / "mylib.py").write_text(SLOW_LIB.format(scale=3))  # the code really got 3x slower
    subprocess.run([*git, "commit", "-q", "-am", "v2: slower"], check=True)
    res = pytester.runpytest_subprocess("--hostperf")
    res.assert_outcomes(passed=1, failed=1)
    res.stdout.fnmatch_lines(["*test_w[[]work[]]: block-median p99 regressed: baseline * -> current *; "
                              "confirmed paired against * now: ratio *"])


def test_a_slower_host_is_not_a_regression_once_paired(pytester: pytest.Pytester, saved_repo: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    git = _git_project(pytester, saved_repo)
    (pytester.path / "README").write_text("the code under test is unchanged\n")
    subprocess.run([*git, "add", "README"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "v2: docs"], check=True)
    monkeypatch.setenv("SLOW", "3")  # both sides 3x slower: the "host" changed, not the code
    res = pytester.runpytest_subprocess("--hostperf", "--hostperf-json=r.json")
    res.assert_outcomes(passed=2)
    (r,) = json.loads((pytester.path / "r.json").read_text())["results"]
    # the pairing decides (the same code both sides): its verdict is the verdict, both comparisons told
    assert r["verdict"]["status"] in ("unchanged", "inconclusive"), r["verdict"]
    assert r["verdict"]["reason"].startswith("stored regressed +"), r["verdict"]["reason"]
    assert "; paired against " in r["verdict"]["reason"]
    if r["verdict"]["status"] == "unchanged":
        assert "unchanged; the host moved, not the code" in r["verdict"]["reason"]
    # --hostperf-no-confirm: the stored comparison alone decides, as before
    pytester.runpytest_subprocess("--hostperf", "--hostperf-no-confirm").assert_outcomes(passed=1, failed=1)


def test_a_regression_at_the_baselines_own_clean_commit_is_the_host(pytester: pytest.Pytester, saved_repo: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _git_project(pytester, saved_repo)
    monkeypatch.setenv("SLOW", "3")
    res = pytester.runpytest_subprocess("--hostperf", "--hostperf-json=r.json")
    res.assert_outcomes(passed=2)
    (r,) = json.loads((pytester.path / "r.json").read_text())["results"]
    assert r["verdict"]["status"] == "inconclusive"
    assert "the baseline was saved at this very commit" in r["verdict"]["reason"]


def test_a_baseline_commit_that_cannot_run_leaves_the_regression_unconfirmed(pytester: pytest.Pytester,
                                                                             saved_repo: Path) -> None:
    git = _git_project(pytester, saved_repo)
    # the head's worktree has a conftest the baseline's commit lacks; the *base* gets one that
    # refuses to run by making the baseline commit unrunnable: rewrite history is overkill, so
    # point the baseline at a commit whose tree cannot collect
    (pytester.path / "conftest.py").write_text(
        "import os\nassert 'hostperf-base-' not in os.getcwd(), 'this tree cannot run as a base'\n")
    subprocess.run([*git, "add", "conftest.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a tree that cannot be a base"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    (path,) = (pytester.path / "baselines").glob("*.json")
    doc = json.loads(path.read_text())
    for run in doc["runs"]:
        run["commit"]["sha"] = sha
    path.write_text(json.dumps(doc, sort_keys=True, indent=1))
    (pytester.path / "mylib.py").write_text(SLOW_LIB.format(scale=3))
    subprocess.run([*git, "commit", "-q", "-am", "v2: slower"], check=True)
    res = pytester.runpytest_subprocess("--hostperf")
    res.assert_outcomes(passed=1, failed=1)  # failed on the stored comparison, not an error
    res.stdout.fnmatch_lines(["*p99 regressed: baseline * -> current *; not confirmed: --hostperf-against=* the base "
                              "session *"])


HEAD_RAISES = """
from mylib import work

def boom(n):
    raise RuntimeError("the head's code fails")

def test_a(hostperf):
    hostperf(boom, 100, name="work")

def test_b(hostperf):
    hostperf(work, 100, name="work")
"""
BASE_FINE = """
from mylib import work

def test_a(hostperf):
    hostperf(work, 100, name="work")

def test_b(hostperf):
    hostperf(work, 100, name="work")
"""


def test_a_head_function_that_raises_fails_its_test_and_pairing_goes_on(pytester: pytest.Pytester,
                                                                        tmp_path: Path) -> None:
    _project(pytester.path, scale=1)
    (pytester.path / "test_w.py").write_text(HEAD_RAISES)
    base = _project(tmp_path / "base", scale=1)
    (base / "test_w.py").write_text(BASE_FINE)
    res = pytester.runpytest_subprocess("--hostperf", f"--hostperf-against={base}", "--hostperf-json=r.json",
                                        "--hostperf-tolerance=50", timeout=120)
    res.assert_outcomes(passed=1, failed=1)
    res.stdout.fnmatch_lines(["*RuntimeError: the head's code fails*"])
    (r,) = json.loads((pytester.path / "r.json").read_text())["results"]
    assert r["id"] == "test_w.py::test_b[work]" and r["verdict"]["reason"].startswith(f"paired with {base}")


def test_an_undecided_pairing_takes_more_pairs_up_to_the_bound(pytester: pytest.Pytester, tmp_path: Path) -> None:
    _project(pytester.path, scale=1)
    base = _project(tmp_path / "base", scale=1)
    # a 0.5% tolerance: the same code rarely decides at 20 pairs, so sequential stopping adds pairs
    res = pytester.runpytest_subprocess("--hostperf", f"--hostperf-against={base}", "--hostperf-json=r.json",
                                        "--hostperf-tolerance=0.5", timeout=120)
    assert res.ret in (0, 1)
    (r,) = json.loads((pytester.path / "r.json").read_text())["results"]
    v = r["verdict"]
    n = len(v["pairs"])
    # 6 block pairs per process pair first, then 2 more per process pair at a time
    assert 24 <= n <= MAX_PAIRS + 8 and (n - 24) % 8 == 0, n
    assert n > 24 or v["status"] != "inconclusive", "an undecided verdict at 24 pairs must take more"
    assert v["reason"].startswith(f"paired with {base}: 4 process pairs, {n} block pairs")


def test_the_base_side_runs_this_harness_not_the_base_trees_copy(pytester: pytest.Pytester, tmp_path: Path) -> None:
    _project(pytester.path, scale=1)
    base = _project(tmp_path / "base", scale=1)
    (base / "pytest_hostperf").mkdir()  # a base tree with its own (here: broken) copy of the harness
    (base / "pytest_hostperf" / "__init__.py").write_text("raise ImportError('the base tree harness was imported')\n")
    res = pytester.runpytest_subprocess("--hostperf", f"--hostperf-against={base}", "--hostperf-tolerance=50")
    res.assert_outcomes(passed=2)
    res.stdout.fnmatch_lines([f"*paired against {base}*"])


HEAD_SIDES = """
import pytest
from mylib import work

def test_a(hostperf):
    hostperf(work, 100, name="x")
    hostperf(work, 100, name="y")

def test_s(hostperf):
    hostperf(work, 100, name="work")

def test_f(hostperf):
    hostperf(work, 100, name="work")
"""
BASE_SIDES = """
import pytest
from mylib import work

def test_a(hostperf):
    hostperf(work, 100, name="x")
    hostperf(work, 100, name="z")

def test_s(hostperf):
    pytest.skip("not on the base")

def test_f(hostperf):
    raise AssertionError("the base fails")
"""


def test_one_sided_measurements_and_outcomes_are_shown_not_paired(pytester: pytest.Pytester, tmp_path: Path) -> None:
    _project(pytester.path, scale=1)
    (pytester.path / "test_w.py").write_text(HEAD_SIDES)
    base = _project(tmp_path / "base", scale=1)
    (base / "test_w.py").write_text(BASE_SIDES)
    res = pytester.runpytest_subprocess("--hostperf", f"--hostperf-against={base}", "--hostperf-json=r.json",
                                        "--hostperf-tolerance=50", timeout=180)
    res.assert_outcomes(passed=3)  # a one-sided measurement never fails the head's test
    got = {r["id"]: r["verdict"] for r in json.loads((pytester.path / "r.json").read_text())["results"]}
    assert got["test_w.py::test_a[x]"]["reason"].startswith(f"paired with {base}")
    assert got["test_w.py::test_a[y]"]["status"] == "new"  # only in the head
    assert got["test_w.py::test_s[work]"]["status"] == "new" and "skipped" in got["test_w.py::test_s[work]"]["reason"]
    assert got["test_w.py::test_f[work]"]["status"] == "new" and "failed" in got["test_w.py::test_f[work]"]["reason"]
    assert not any(v.get("pairs") for k, v in got.items() if k != "test_w.py::test_a[x]")
    res.stdout.fnmatch_lines([f"*test_w.py::test_a[[]z[]]* is measured at {base} only: this tree no longer "
                              "measures it*"])


SLOW_SETUP_TESTS = """
import time

def slow_setup():
    time.sleep(0.002)  # untimed set-up, as a cache eviction before a self-timed lookup
    return 1000

def test_w(hostperf):
    hostperf(slow_setup, name="slow", self_timed=True, samples=40)
"""


def _paired_run(pytester: pytest.Pytester, base_dir: Path, head: str, base: str) -> tuple[int, dict[str, Any]]:
    """Head and base projects (one test file each, a 0.5 s budget), paired: exit code and the one result."""
    for p, text in ((pytester.path, head), (base_dir, base)):
        p.mkdir(parents=True, exist_ok=True)
        (p / "test_w.py").write_text(text)
        (p / "pytest.ini").write_text("[pytest]\nhostperf_max_time = 0.5\n")
    res = pytester.runpytest_subprocess("--hostperf", f"--hostperf-against={base_dir}", "--hostperf-json=r.json",
                                        timeout=120)
    (r,) = json.loads((pytester.path / "r.json").read_text())["results"]
    return res.ret, r


def test_a_paired_plan_grows_its_time_budget_at_most_twofold(pytester: pytest.Pytester, tmp_path: Path) -> None:
    # 40 samples asked; a paired block needs 1000, so the plan would ask 20000 calls of >= 2 ms
    # (40 s a side at the test's own pace) if its time budget grew with the samples
    ret, r = _paired_run(pytester, tmp_path / "base", SLOW_SETUP_TESTS, SLOW_SETUP_TESTS)
    assert ret == 0, r
    # 2 x 0.5 s of calls of >= 2 ms per 20 blocks: at most 500 of them, however many block pairs were taken
    blocks = int(re.search(r"(\d+) block pairs", r["verdict"]["reason"]).group(1))
    assert 0 < r["n"] <= 500 * (blocks + 19) // 20, (r["n"], blocks)
    # blocks too short for a p99 each: each side's p99 over all its calls is compared
    assert "each side's p99 over all its calls" in r["verdict"]["reason"], r["verdict"]["reason"]
    assert r["verdict"]["status"] != "regressed", r["verdict"]


def test_a_head_too_slow_for_its_blocks_p99_is_still_caught_by_all_its_calls(pytester: pytest.Pytester,
                                                                          tmp_path: Path) -> None:
    # the head's call spends 0.2 ms untimed per call, so its blocks hold a few hundred samples at
    # most, too few for a p99 each; each side's p99 over all its calls (10 us against 1 us) decides
    head = SLOW_SETUP_TESTS.replace("return 1000", "return 10000").replace("sleep(0.002)", "sleep(0.0002)")
    base = "\n".join(x for x in SLOW_SETUP_TESTS.splitlines() if "time.sleep" not in x)
    assert base != SLOW_SETUP_TESTS
    ret, r = _paired_run(pytester, tmp_path / "base", head, base)
    assert ret == 1, r
    v = r["verdict"]
    assert v["status"] == "regressed", v["reason"]
    assert "each side's p99 over all its calls" in v["reason"] and "too few for a block p99 each" in v["reason"]
    assert v["ratio"] > 5, v


def test_the_sessions_start_under_the_strictest_configuration_the_head_runs_under(pytester: pytest.Pytester,
                                                                                  tmp_path: Path) -> None:
    """``filterwarnings = error``, ``strict = true`` and ``-W error``, as real suites set them:
    every replica session starts and pairs, and no assert-rewrite warning arises at all."""
    strict = INI + "filterwarnings =\n    error\nstrict = true\n"
    for tree in (pytester.path, tmp_path / "base"):
        _project(tree, scale=1)
        (tree / "pytest.ini").write_text(strict)
    res = pytester.runpytest_subprocess("-W", "error", "--hostperf", f"--hostperf-against={tmp_path / 'base'}",
                                        "--hostperf-tolerance=50", "--hostperf-json=r.json", timeout=180)
    res.assert_outcomes(passed=2)
    assert "PytestAssertRewriteWarning" not in res.stdout.str() + res.stderr.str()
    (r,) = json.loads((pytester.path / "r.json").read_text())["results"]
    assert r["verdict"]["reason"].startswith(f"paired with {tmp_path / 'base'}: 4 process pairs")


def test_replicas_collect_the_heads_test_paths_in_their_own_tree(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from pytest_hostperf.pairing.process import collected
    from pytest_hostperf.run.against import test_paths

    root = tmp_path / "root"
    (root / "tests" / "bench").mkdir(parents=True)
    (root / "tests" / "bench" / "test_a.py").write_text("")
    config = SimpleNamespace(rootpath=root, invocation_params=SimpleNamespace(dir=root / "tests"),
                             args=["bench/test_a.py::test_x[1]", "bench", str(tmp_path / "elsewhere.py")])
    paths = test_paths(config)  # type: ignore[arg-type]
    assert paths == ["tests/bench/test_a.py::test_x[1]", "tests/bench"]  # relative to rootdir; outside left out
    base = tmp_path / "base"
    (base / "tests" / "bench").mkdir(parents=True)  # the base has the folder, not the new file
    assert collected(base, paths) == [str(base / "tests/bench")]
    assert collected(root, paths) == [str(root / "tests/bench/test_a.py::test_x[1]"), str(root / "tests/bench")]
    assert collected(base, []) == [str(base)]  # none given: the whole tree
    whole = SimpleNamespace(rootpath=root, invocation_params=SimpleNamespace(dir=root), args=[str(root)])
    assert test_paths(whole) == []  # type: ignore[arg-type]


def test_a_declined_measurement_in_a_replica_is_smoke_so_expect_faster_decides_nothing() -> None:
    """Settling a later measurement, a replica declines the earlier ones: their few calls must not
    fail the test's expect_faster before it reaches the one asked for (the main job's settlements
    read 'not measured by the base: failed' for that reason)."""
    from types import SimpleNamespace

    from pytest_hostperf.gate.seam import Asked
    from pytest_hostperf.measure import sampling
    from pytest_hostperf.run.against import ReplicaGate
    from pytest_hostperf.stats.result import summarize

    side = SimpleNamespace(measure=lambda *a, **k: None)  # the head declined it
    timer = sampling.TimerInfo("t", 40, 1, 2)

    class Sampler:
        def controlled(self):  # type: ignore[no-untyped-def]
            raise AssertionError("not used")

        def sample(self, plan: sampling.Plan, turns: object) -> sampling.Samples:
            return sampling.sample(len, ("abc",), plan=plan, timer=timer)

    asked = Asked(mid="t.py::t[a]", nodeid="t.py::t", name="a", plan=sampling.Plan(), tolerance=10.0,
                  budgeted=False, sampler=Sampler(), summarize=lambda raw: summarize(raw, nodeid="t.py::t", name="a"))
    judged = ReplicaGate(side).judge(asked)  # type: ignore[arg-type]
    assert judged.result.smoke and judged.result.n == sampling.SMOKE_PLAN.samples
