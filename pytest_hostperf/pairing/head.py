"""``--hostperf-against=REF``: the head session measures each ``hostperf()`` call paired with
the same call of the base commit, measured now, block by block on one CPU.

The base side is a second pytest session in the base tree (``against_base.py``), started by
the head and driven over a socket pair: the head leads test by test (``run`` a nodeid), each
``hostperf(fn, name=...)`` of the two sides meets by name (``ready`` / ``go``), the two
samplings take turns through ``paired.BatonTurns`` on a second socket, and the base sends its
block statistics back (``result``). The harness is the head's installation on both sides:
the base process imports ``pytest_hostperf`` before it puts the base tree first on
``sys.path``, so only the code under test comes from the base.

Every wait is bounded (``WAIT_S``); the base process is reaped and the worktree removed at
the end of the run, also after a failure or Ctrl-C.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from pytest_hostperf.errors import HostperfError, MeasurementError

#: Longest wait for one message from the other side (a test's set-up before its first
#: measurement counts here too); ``HOSTPERF_PAIRING_WAIT_S`` overrides it (tests use it).
WAIT_S = 60.0
WAIT_ENV = "HOSTPERF_PAIRING_WAIT_S"
#: Longest a ``git worktree`` command may take.
GIT_S = 60.0
FD_ENV = "HOSTPERF_PAIRING_FDS"
TREE_ENV = "HOSTPERF_PAIRING_TREE"
#: Samples per block of a paired measurement at least: 10 above the block's p99.
MIN_BLOCK = 1000
#: A paired plan's time budget may grow with the samples its blocks need, to at most this
#: many times the test's own: a call whose untimed set-up dwarfs it (a cache eviction before
#: each self-timed lookup) would otherwise stretch 400 asked samples to 20000 calls of 4 ms.
PAIRED_TIME_SCALE = 2.0


class PairingError(HostperfError, RuntimeError):
    """The paired comparison could not run (no base tree, the base session died or hung)."""


def wait_s() -> float:
    try:
        return float(os.environ.get(WAIT_ENV, WAIT_S))
    except ValueError:
        return WAIT_S


class Channel:
    """JSON lines over a connected socket; every receive has a deadline."""

    def __init__(self, sock: socket.socket, who: str, timeout: float | None = None) -> None:
        self.sock = sock
        self.who = who
        self.timeout = wait_s() if timeout is None else timeout
        self._buf = b""

    def send(self, **msg: Any) -> None:
        self.sock.sendall(json.dumps(msg).encode() + b"\n")

    def recv(self, timeout: float | None = None) -> dict[str, Any]:
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.sock], [], [], max(left, 0))
            if not ready:
                raise MeasurementError(f"paired: no word from the {self.who} within {timeout:g} s (it hung)")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise MeasurementError(f"paired: the {self.who} closed the connection (it exited or was killed)")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        msg = json.loads(line)
        if not isinstance(msg, dict):
            raise MeasurementError(f"paired: unexpected message from the {self.who}: {line[:200]!r}")
        return msg


def check_ref(ref: str, rootdir: Path) -> None:
    """Raise :class:`PairingError` unless ``ref`` is a directory or a commit of ``rootdir``'s
    repository (what the xdist controller checks before its workers start base sessions)."""
    if Path(ref).is_dir():
        return
    try:
        proc = subprocess.run(["git", "-C", str(rootdir), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                              capture_output=True, text=True, timeout=GIT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PairingError(f"--hostperf-against={ref}: git rev-parse failed: {exc}") from None
    if proc.returncode != 0:
        raise PairingError(f"--hostperf-against={ref}: not a directory, and not a revision of {rootdir} "
                           "(fetch it, or give a sha, a branch or a path to the base checkout)")


def base_tree(ref: str, rootdir: Path) -> tuple[Path, Path | None]:
    """The base checkout: ``ref`` itself when it is a directory, else a detached worktree of the
    git revision ``ref`` in a temp dir (returned second, to be removed). No network."""
    given = Path(ref)
    if given.is_dir():
        return given.resolve(), None
    tmp = Path(tempfile.mkdtemp(prefix="hostperf-base-"))
    tree = tmp / "base"
    try:
        proc = subprocess.run(["git", "-C", str(rootdir), "worktree", "add", "--detach", "-q", str(tree), ref],
                              capture_output=True, text=True, timeout=GIT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PairingError(f"--hostperf-against={ref}: git worktree failed: {exc}") from None
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        why = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise PairingError(f"--hostperf-against={ref}: not a directory, and git cannot check it out as a "
                           f"revision of {rootdir}: {why}")
    return tree, tmp


def remove_tree(rootdir: Path, tmp: Path | None) -> None:
    if tmp is None:
        return
    subprocess.run(["git", "-C", str(rootdir), "worktree", "remove", "--force", str(tmp / "base")],
                   capture_output=True, timeout=GIT_S, stdin=subprocess.DEVNULL, check=False)
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["git", "-C", str(rootdir), "worktree", "prune"], capture_output=True, timeout=GIT_S,
                   stdin=subprocess.DEVNULL, check=False)


#: The base process's entry: import the harness first (so it stays the head's installation),
#: then put the base tree first on sys.path and run pytest there.
BOOT = (
    "import os, sys\n"
    "sys.path[:] = [p for p in sys.path if p not in ('', '.')]\n"  # -c put the cwd first: not the base tree's harness
    "import pytest, pytest_hostperf.pairing.base\n"
    "tree = os.environ['" + TREE_ENV + "']\n"
    "sys.path.insert(0, tree)\n"
    "os.chdir(tree)\n"
    "sys.exit(pytest.main(sys.argv[1:]))\n"
)


class Base:
    """The base session: its process, its two channels, and its cleanup."""

    def __init__(self, ref: str, rootdir: Path, args: list[str], python: str | None = None) -> None:
        self.ref = ref
        self.rootdir = rootdir
        self.tree, self._tmp = base_tree(ref, rootdir)
        ctl_head, ctl_base = socket.socketpair()
        baton_head, baton_base = socket.socketpair()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTEST_XDIST", "HOSTPERF_AGAINST")) and k != "GITHUB_STEP_SUMMARY"}
        env[FD_ENV] = f"{ctl_base.fileno()},{baton_base.fileno()}"
        env[TREE_ENV] = str(self.tree)
        self.log = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                [python or sys.executable, "-c", BOOT, "-p", "pytest_hostperf.pairing.base", "-p", "no:cacheprovider",
                 "-q", "--hostperf", *args, str(self.tree)],
                cwd=tempfile.gettempdir(), env=env, pass_fds=(ctl_base.fileno(), baton_base.fileno()),
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        except OSError as exc:
            remove_tree(rootdir, self._tmp)
            raise PairingError(f"--hostperf-against={ref}: cannot start the base session: {exc}") from None
        finally:
            ctl_base.close()
            baton_base.close()
        self.ctl = Channel(ctl_head, "base session")
        self.baton = baton_head
        try:
            hello = self.ctl.recv()
        except MeasurementError:
            try:  # let it finish writing why it stopped
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            out = self.output()
            self.close(grace=5.0)
            raise PairingError(f"--hostperf-against={ref}: the base session did not start: {out}") from None
        if hello.get("error"):
            self.close(grace=5.0)
            raise PairingError(f"--hostperf-against={ref}: the base session failed: {hello['error']}")

    def output(self, limit: int = 2000) -> str:
        """The base session's last output, one line (for error messages)."""
        if self.log.closed:
            return "(closed)"
        self.log.seek(0)
        text = self.log.read().decode(errors="replace").strip()
        return (text[-limit:] or "no output").replace("\n", " | ")

    def close(self, grace: float = 30.0) -> None:
        """Ask the base to quit, then reap it (terminate, then kill, by pid), remove the tree.
        The baton socket closes first, so a base waiting for its turn stops waiting at once."""
        try:
            baton = getattr(self, "baton", None)
            if baton is not None and baton.fileno() != -1:
                baton.close()
            try:
                self.ctl.send(quit=True)
            except (OSError, AttributeError):
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            for s in (getattr(self, "baton", None), getattr(getattr(self, "ctl", None), "sock", None)):
                if s is not None:
                    s.close()
            self.log.close()
            remove_tree(self.rootdir, self._tmp)


def _plan_msg(plan: Any) -> dict[str, Any]:
    """A sampling plan as the base side reads it from a ``go`` or ``more`` message."""
    return {"samples": plan.samples, "blocks": plan.blocks, "max_seconds": plan.max_seconds,
            "warmup_calls": plan.warmup_calls, "warmup_seconds": plan.warmup_seconds, "batch": plan.batch}


class AgainstHead:
    """The head's side: starts the base session, sends it each hostperf test, pairs the
    measurements, and stops it at the end of the run. A plugin object, registered by
    ``plugin.py`` under ``--hostperf --hostperf-against=REF``."""

    def __init__(self, run: Any, ref: str, python: str | None, *, lead: bool = True, lazy: bool = False) -> None:
        self.run = run
        self.lead = lead  # False: confirming one flagged measurement at a time, not every test
        self.lazy = lazy  # an xdist worker: start the base at its first hostperf test, if it gets one
        self.ref = ref
        self.python = python
        self.base: Base | None = None
        self.waiting = False  # the base is running a test we asked for and has not said done
        self.broken: str | None = None  # why the base session can no longer pair
        self._stage = "idle"  # of the current measurement: "owed" (base waits for go), "turns"
        self.nodeid = ""  # the test the base is running for us

    def start(self) -> None:
        s = self.run.settings
        args = [f"--hostperf-samples={s.samples}", f"--hostperf-max-time={s.max_time:g}",
                "--hostperf-rt=" + ("off" if s.rt is None else str(s.rt)),
                # auto (the default) is forwarded as nothing: an older base harness would refuse "auto"
                *([] if s.mlock == "auto" else ["--hostperf-mlock" if s.mlock else "--hostperf-no-mlock"]),
                "--hostperf-no-noise",
                "--hostperf-no-counters", "-p", "no:xdist"]
        if s.cpus:
            args.append("--hostperf-cpus=" + ",".join(map(str, s.cpus)))
        self.base = Base(self.ref, Path(self.run.config.rootpath), args, self.python)
        if self.lead:
            self.run.notes.append(f"paired against {self.ref} (base tree {self.base.tree}): each measurement "
                                  "taken now, block by block with the base on the same CPU")

    def pytest_sessionstart(self, session: Any) -> None:
        import pytest

        if self.lazy:
            return
        try:
            self.start()
        except PairingError as exc:
            raise pytest.UsageError(str(exc)) from None

    def pytest_runtest_setup(self, item: Any) -> None:
        if self.lead and self.broken is None and "hostperf" in getattr(item, "fixturenames", ()):
            from pytest_hostperf.run import placement
            if self.base is None and self.lazy:
                try:
                    self.start()
                except PairingError as exc:
                    self.broken = str(exc)
                    return
            if self.base is None:
                return

            self.nodeid = placement.ungrouped(item.nodeid)
            try:
                self.base.ctl.send(run=self.nodeid)
            except OSError as exc:
                self._break(f"the base session is gone ({exc.strerror or exc})")
                return
            self.waiting = True

    def _break(self, why: str) -> None:
        """Pairing cannot go on: every later paired measurement fails with ``why``."""
        if self.broken is None:
            out = self.base.output(600) if self.base is not None else ""
            self.broken = f"--hostperf-against={self.ref}: {why}; base output: {out}"
            self.waiting = False

    def _recv(self) -> dict[str, Any]:
        assert self.base is not None
        try:
            return self.base.ctl.recv()
        except (MeasurementError, OSError, ValueError) as exc:
            self._break(str(exc))
            raise MeasurementError(self.broken) from None

    def pytest_runtest_teardown(self, item: Any) -> None:
        self.finish_test()

    def finish_test(self) -> str | None:
        """Let the base finish the test: decline its remaining measurements, read its outcome."""
        if self.base is None or not self.waiting or self.broken is not None:
            return None
        while True:
            msg = self._recv()
            if "done" in msg:
                self.waiting = False
                return str(msg["done"])
            if "ready" in msg:  # a measurement only the base has: removed in the head
                self._removed(str(msg["ready"]))
                self.base.ctl.send(skip=True)

    def _removed(self, name: str) -> None:
        self.run.notes.append(f"paired: {self.nodeid}[{name}] is measured by the base only (removed)")

    def confirm(self, nodeid: str, mid: str, name: str, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                **kw: Any) -> tuple[Any, Any, Any]:
        """Re-measure one flagged measurement paired with the base, from inside its test: the base
        runs the same test from its start and its earlier measurements are declined."""
        if self.base is None:
            self.start()
        assert self.base is not None
        if not self.waiting and self.broken is None:
            self.nodeid = nodeid
            self.base.ctl.send(run=nodeid)
            self.waiting = True
        return self.measure(mid, name, fn, args, kwargs, skip_others=True, **kw)

    def measure(self, mid: str, name: str, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], **kw: Any
                ) -> tuple[Any, Any, Any]:
        """One head measurement paired with the base's of the same name: (result, host, verdict);
        the verdict is a string (why) when the base has no such measurement (measured alone).
        Anything that stops it while the two sides take turns (Ctrl-C, a timeout, ``fn``
        raising) breaks the pairing at once, so the base stops waiting and the run's end reaps it
        without a long wait; stopped before the turns began, the base is told to skip this one."""
        self._stage = "idle"
        try:
            return self._measure(mid, name, fn, args, kwargs, **kw)
        except BaseException as exc:
            if self.base is not None and self._stage == "owed":  # the base waits for go: let it go on
                try:
                    self.base.ctl.send(skip=True)
                except OSError:
                    pass
            elif self._stage == "turns" or isinstance(exc, MeasurementError):
                if not isinstance(exc, MeasurementError):
                    self._break(f"the head stopped mid-measurement ({type(exc).__name__})")
                if self.base is not None:
                    self.base.baton.close()
            raise
        finally:
            self._stage = "idle"

    def _measure(self, mid: str, name: str, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], *,
                 controls: Any, timer: Any, plan: Any, self_timed: bool, summarize: Any,
                 skip_others: bool = False) -> tuple[Any, Any, Any]:
        from dataclasses import replace

        from pytest_hostperf.measure import sampling as measure
        from pytest_hostperf.run.fixture import controlled
        from pytest_hostperf.stats import paired, verdict

        assert self.base is not None
        if self.broken is not None:
            raise MeasurementError(self.broken)
        msg = self._recv() if self.waiting else {"done": "not run"}
        while skip_others and "ready" in msg and msg["ready"] != name:
            self.base.ctl.send(skip=True)
            msg = self._recv()
        if "done" in msg:
            self.waiting = False
            with controlled(self.run, controls) as host:
                raw = measure.sample(fn, args, kwargs, plan=plan, timer=timer, self_timed=self_timed)
            why = f"not measured by the base ({self.ref}: {msg['done']})"
            return summarize(raw), host, why
        if msg.get("ready") != name:
            self._removed(str(msg.get("ready")))
            self.base.ctl.send(skip=True)
            with controlled(self.run, controls) as host:
                raw = measure.sample(fn, args, kwargs, plan=plan, timer=timer, self_timed=self_timed)
            return summarize(raw), host, f"the base measured {msg.get('ready')!r} here, not {name!r}"
        self._stage = "owed"  # the base said ready and waits for go (or skip)
        with controlled(self.run, controls) as host:
            probe = measure.sample(fn, args, kwargs, plan=replace(plan, samples=plan.blocks, max_seconds=0.2),
                                   timer=timer, self_timed=self_timed)
            # each block holds >= MIN_BLOCK samples, so its p99 rests on >= 10 samples above it
            samples = max(plan.samples, plan.blocks * MIN_BLOCK)
            pplan = replace(plan, batch=probe.batch, samples=samples,
                            max_seconds=plan.max_seconds * min(samples / plan.samples, PAIRED_TIME_SCALE))
            self._stage = "turns"
            head: list[float] = []
            base: list[float] = []
            head_p50: list[float] = []
            base_p50: list[float] = []
            base_sizes: list[int] = []
            taken: list[Any] = []  # the head's raw samples of each round of pairs

            def next_pairs(k: int) -> Any:
                rplan = pplan if not taken else replace(
                    pplan, samples=per_block * k, blocks=k, warmup_calls=10, warmup_seconds=0.01,
                    max_seconds=pplan.max_seconds * k / pplan.blocks)
                assert self.base is not None
                # between rounds of pairs only: both sides wait here, so the terminal write measures nothing
                self.run.progress.step(f"{'' if self.lead else 'confirming, '}pairs {len(head)}/{len(head) + k}",
                                       budget_s=None if taken else 2 * pplan.max_seconds + paired.MORE_S)
                if taken:
                    self.base.ctl.send(more=name, plan=_plan_msg(rplan))
                try:
                    more = measure.sample(fn, args, kwargs, plan=rplan, timer=timer, self_timed=self_timed,
                                          turns=paired.BatonTurns("head", self.base.baton, paired.schedule(k)))
                except MeasurementError as exc:
                    self._break(str(exc))
                    raise MeasurementError(self.broken) from None
                got = self._recv()
                h50, h = paired.block_p50_p99s(more.values, more.block_sizes)
                bb = [float(x) for x in got.get("p99_blocks", ())]
                if len(bb) != len(h):
                    raise MeasurementError(f"paired {mid}: the base took {len(bb)} blocks, the head {len(h)}")
                b50 = [float(x) for x in got.get("p50_blocks", ())]
                sizes = [int(x) for x in got.get("sizes", ())]
                if len(b50) != len(h) or len(sizes) != len(h):
                    raise MeasurementError(f"paired {mid}: the base sent {len(b50)} block medians and {len(sizes)} "
                                           f"block sizes for {len(h)} blocks")
                taken.append(more)
                head.extend(h)
                base.extend(bb)
                head_p50.extend(h50)
                base_p50.extend(b50)
                base_sizes.extend(sizes)
                return paired.log_ratios(h, bb)

            per_block = max(1, pplan.samples // pplan.blocks)
            self.base.ctl.send(go=name, plan=_plan_msg(pplan))
            first = next_pairs(pplan.blocks)
            if min(min(taken[0].block_sizes), min(base_sizes)) < MIN_BLOCK:  # too small: more pairs cannot help
                pv = paired.verdict(first, tolerance_pct=self.run.settings.tolerance)
            else:
                pv = paired.sequential(next_pairs, tolerance_pct=self.run.settings.tolerance, first=pplan.blocks,
                                       initial=first)
            self.base.ctl.send(enough=name)
        self._stage = "idle"
        raw = taken[0]
        for more in taken[1:]:
            raw = measure.merge(raw, more)
        res = summarize(raw)  # once, over every round of pairs, back at the test's own policy
        status, why = pv.status, f"paired with {self.ref}: {pv.reason}"
        small_head, small_base = min(raw.block_sizes), min(base_sizes)
        smallest = min(small_head, small_base)
        bound = None
        if smallest < MIN_BLOCK and smallest >= paired.MIN_MEDIAN_BLOCK:
            bound = paired.bounded(head_p50, head, base_p50, base, head_small=small_head < MIN_BLOCK,
                                   base_small=small_base < MIN_BLOCK, tolerance_pct=self.run.settings.tolerance)
        if bound is not None:  # one side's blocks too small for their p99, but a bound decides
            pv = bound
            status = bound.status
            side = "head" if small_head < MIN_BLOCK else "base"
            why = (f"paired with {self.ref}: {bound.reason} (the {side}'s smallest block held {smallest} samples, "
                   f"too few for its own p99: ratio and interval are of the bound)")
        elif smallest < MIN_BLOCK:  # the time budget ran out first: a block p99 rests on < 10 samples
            if status != "inconclusive":
                status, why = "inconclusive", f"paired with {self.ref}: {pv.pairs} block pairs, {pv.status} " \
                    "if the blocks could be trusted"
            why += (f"; but the smallest block held {smallest} samples, so its p99 rests on {smallest // 100} "
                    f"above it, not {MIN_BLOCK // 100} (--hostperf-max-time gives more)")
        # both figures are the medians of the pairs' block p99s: the statistic the pairs compare
        v = verdict.Verdict(status, "p99", pv.ratio, pv.interval, float(np.median(base)), float(np.median(head)),
                            pv.tolerance_pct, 0, why, pairs=tuple(zip(head, base)))
        return res, host, v

    def pytest_unconfigure(self, config: Any) -> None:
        if self.base is not None:
            self.base.close(grace=2.0 if self.broken else 30.0)
            self.base = None
