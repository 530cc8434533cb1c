"""How good is the paired gate as users get it? Real ``pytest --hostperf --hostperf-against=BASE``
sessions, each its own process tree, on real commits of a small git repository.

Usage:  python benchmarks/verdict_quality_e2e.py [--sessions 20] [--per-session 5] [--tolerance 5]
                                                 [--cases unchanged,+10%,+25%,tail,1ms+25%] [--out F.jsonl]

Each case is two commits of one workload module (``wl.py``, the ``work(n)`` loop of
``benchmarks/workloads/synthetic.py``): the base and the head. A session checks the head out and
runs ``pytest --hostperf --hostperf-against=<base sha>`` in a fresh process, whose test file
measures the workload ``--per-session`` times (each a separate test: a comparison). The cases
take turns session by session (A B C A B C ...), so they see the same host. The cases:

- ``unchanged``: the head commit changes a comment only; any ``regressed`` or ``improved`` is
  a false verdict, and the **coverage** is the share of its 95% intervals that contain 1.0;
- ``+10%``, ``+25%``: ``work(220)``, ``work(250)`` against ``work(200)``;
- ``tail``: every 50th call does three times the work (2% of calls 3x: the p99 moves);
- ``1ms+25%``: a ~1 ms call made 25% slower (blocks too short for their own p99).

It prints, per case, the verdict counts, the coverage and the seconds per comparison, and
appends every comparison to ``--out`` (JSON lines). Bounded: each session has a 600 s timeout;
the repository lives in a temp dir removed at the end.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

if not __package__:  # run as ``python benchmarks/verdict_quality_e2e.py``: benchmarks/ is found from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.workloads.synthetic import work

#: The workload module of the temporary repository: the yardstick ``work(n)`` as the project
#: has it (its source copied in: the repository is the user's code, not this package's).
WORKLOAD = '''"""The measured workload ({label})."""
# {note}
ITER = {iter}
TAIL_EVERY = {every}
TAIL_FACTOR = {factor}
_count = [0]


''' + inspect.getsource(work).replace("{", "{{").replace("}", "}}") + '''

def call():
    _count[0] += 1
    if TAIL_EVERY and _count[0] % TAIL_EVERY == 0:
        return work(int(ITER * TAIL_FACTOR))
    return work(ITER)
'''

TESTS = '''import pytest

import wl


@pytest.mark.parametrize("i", range({n}))
def test_q(hostperf, i):
    hostperf(wl.call, name="w")
'''

SLOW_ITER = 30_000  # about 1 ms a call on the development VM


@dataclass(frozen=True)
class Case:
    label: str
    base: dict[str, float]
    head: dict[str, float]
    unchanged: bool = False


CASES = (
    Case("unchanged", {"iter": 200, "every": 0, "factor": 1}, {"iter": 200, "every": 0, "factor": 1}, unchanged=True),
    Case("+10%", {"iter": 200, "every": 0, "factor": 1}, {"iter": 220, "every": 0, "factor": 1}),
    Case("+25%", {"iter": 200, "every": 0, "factor": 1}, {"iter": 250, "every": 0, "factor": 1}),
    Case("tail", {"iter": 200, "every": 0, "factor": 1}, {"iter": 200, "every": 50, "factor": 3}),
    Case("1ms+25%", {"iter": SLOW_ITER, "every": 0, "factor": 1},
         {"iter": int(SLOW_ITER * 1.25), "every": 0, "factor": 1}),
)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL).stdout.strip()


def commit(repo: Path, label: str, params: dict[str, float], note: str, per_session: int) -> str:
    (repo / "wl.py").write_text(WORKLOAD.format(label=label, note=note, **params))
    (repo / "test_q.py").write_text(TESTS.format(n=per_session))
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=vq@example.invalid", "-c", "user.name=vq", "commit", "-q", "--allow-empty",
        "-m", f"{label}: {note}")
    return git(repo, "rev-parse", "HEAD")


def run_session(repo: Path, head: str, base: str, args: argparse.Namespace) -> tuple[list[dict], float, str]:
    git(repo, "checkout", "-q", "--detach", head)
    out = repo.parent / "report.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hostperf",
           f"--hostperf-against={base}", f"--hostperf-tolerance={args.tolerance:g}", f"--hostperf-json={out}",
           f"--hostperf-pairs={args.pairs}", "test_q.py"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    took = time.monotonic() - t0
    if not out.exists():
        return [], took, (proc.stdout + proc.stderr)[-2000:]
    report = json.loads(out.read_text())
    return [r["verdict"] for r in report["results"] if r.get("verdict")], took, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20, help="sessions per case (default 20)")
    parser.add_argument("--per-session", type=int, default=5, help="comparisons per session (default 5)")
    parser.add_argument("--tolerance", type=float, default=5.0, help="tolerance in percent (default 5)")
    parser.add_argument("--pairs", type=int, default=4, help="--hostperf-pairs (default 4)")
    parser.add_argument("--cases", default=",".join(c.label for c in CASES), help="comma-separated case labels")
    parser.add_argument("--out", default="", help="append every comparison to this JSON-lines file")
    args = parser.parse_args(argv)
    chosen = [c for c in CASES if c.label in args.cases.split(",")]
    if not chosen:
        parser.error(f"--cases: none of {args.cases!r} is a case; choose from {', '.join(c.label for c in CASES)}")
    tmp = Path(tempfile.mkdtemp(prefix="hostperf-vq-e2e-"))
    repo = tmp / "repo"
    repo.mkdir()
    counts: dict[str, Counter[str]] = {c.label: Counter() for c in chosen}
    covered: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    try:
        git(repo, "init", "-q")
        shas = {}
        for c in chosen:
            base = commit(repo, c.label, c.base, "base", args.per_session)
            head = commit(repo, c.label, c.head, "head: " + ("a comment changed" if c.unchanged else "slower"),
                          args.per_session)
            shas[c.label] = (base, head)
        for s in range(args.sessions):
            for c in chosen:
                base, head = shas[c.label]
                verdicts, took, err = run_session(repo, head, base, args)
                if err:
                    print(f"session {s + 1} {c.label}: no report: {err}", file=sys.stderr)
                    counts[c.label]["no report"] += args.per_session
                seconds[c.label] += took
                for v in verdicts:
                    counts[c.label][v["status"]] += 1
                    lo, hi = v.get("interval") or (None, None)
                    if lo is not None and lo <= 1.0 <= hi:
                        covered[c.label] += 1
                    if args.out:
                        with open(args.out, "a") as f:
                            f.write(json.dumps({"case": c.label, "session": s, "status": v["status"],
                                                "ratio": v.get("ratio"), "interval": v.get("interval"),
                                                "reason": v.get("reason"), "seconds": took}) + "\n")
            print(f"after session {s + 1}: " + "; ".join(f"{label} {dict(n)}" for label, n in counts.items()),
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nend-to-end, tolerance {args.tolerance:g}%, {args.pairs} process pair(s), "
          f"{args.per_session} comparisons per session")
    print(f"{'case':<10} {'n':>4} {'regressed':>9} {'improved':>8} {'unchanged':>9} {'inconcl.':>8} "
          f"{'coverage':>8} {'s/comparison':>12}")
    for c in chosen:
        n = sum(counts[c.label].values())
        cov = f"{covered[c.label] / n:.0%}" if c.unchanged and n else ""
        print(f"{c.label:<10} {n:>4} {counts[c.label]['regressed']:>9} {counts[c.label]['improved']:>8} "
              f"{counts[c.label]['unchanged']:>9} {counts[c.label]['inconclusive']:>8} {cov:>8} "
              f"{seconds[c.label] / max(n, 1):>12.1f}")
    return 0


if __name__ == "__main__":
    os.environ.pop("HOSTPERF_AGAINST", None)
    sys.exit(main())
