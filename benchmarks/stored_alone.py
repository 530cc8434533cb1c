"""How good is the stored gate where no pairing can run? Real ``pytest --hostperf`` sessions in a
folder outside git (as a CI shallow clone without the baseline's commit is), against a baseline
of runs saved one after the other.

Usage:  python benchmarks/stored_alone.py [--saves 5] [--sessions 8] [--per-session 5] [--slower 1.5]

It saves ``--saves`` runs of the workload (``work(200)``, ~10 us a call) with
``--hostperf-save``, seconds apart, then gates: sessions of the same code and sessions of a
copy ``--slower`` times slower take turns (two of the same for one slower), each measuring the
workload ``--per-session`` times. It prints how many unchanged comparisons failed (false
failures) and how many slower ones were caught, and the verdict counts. Bounded: each session
has a 600 s timeout; the folder is a temp dir removed at the end.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

if not __package__:  # run as ``python benchmarks/stored_alone.py``: benchmarks/ is found from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.verdict_quality_e2e import TESTS, WORKLOAD


def workload(iterations: int) -> str:
    return WORKLOAD.format(label="stored alone", note="", iter=iterations, every=0, factor=1)


def session(folder: Path, *extra: str) -> list[dict]:
    out = folder / "report.json"
    out.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hostperf",
                    f"--hostperf-json={out}", *extra, "test_q.py"], cwd=folder, capture_output=True, text=True,
                   timeout=600, stdin=subprocess.DEVNULL)
    if not out.exists():
        return []
    return [r["verdict"] for r in json.loads(out.read_text())["results"] if r.get("verdict")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=5, help="runs saved into the baseline (default 5)")
    parser.add_argument("--sessions", type=int, default=8, help="gating sessions of the same code (default 8)")
    parser.add_argument("--per-session", type=int, default=5, help="measurements per session (default 5)")
    parser.add_argument("--slower", type=float, default=1.5, help="the slower copy's factor (default 1.5)")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="hostperf-stored-alone-"))
    same, slow = Counter[str](), Counter[str]()
    try:
        (folder / "test_q.py").write_text(TESTS.format(n=args.per_session))
        (folder / "wl.py").write_text(workload(200))
        for _ in range(args.saves):
            session(folder, "--hostperf-save")
        for s in range(args.sessions):
            (folder / "wl.py").write_text(workload(200))
            same.update(v["status"] for v in session(folder))
            if s % 2 == 1:
                (folder / "wl.py").write_text(workload(int(200 * args.slower)))
                slow.update(v["status"] for v in session(folder))
            print(f"after session {s + 1}: same code {dict(same)}; {args.slower:g}x slower {dict(slow)}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    n_same, n_slow = sum(same.values()), sum(slow.values())
    print(f"\nstored gate alone (outside git), {args.saves} runs saved back to back")
    print(f"same code: {same['regressed']} of {n_same} failed (regressed); {dict(same)}")
    print(f"{args.slower:g}x slower: {slow['regressed']} of {n_slow} caught; {dict(slow)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
