"""The head's side of ``--hostperf-against=REF``: it starts the base session, leads it test by
test, and measures each ``hostperf()`` call paired with the base's call of the same name, block
by block on one CPU.

The base is a second pytest session in the base tree (``process.py``), driven over a socket
pair: the head names a test (``run``), each measurement of the two sides meets by name
(``ready`` / ``go``), the two samplings take turns through ``turns.BatonTurns`` on a second
socket, and the base sends its block statistics back (``result``). Every wait is bounded; the
base process is reaped and its worktree removed at the end of the run, also after a failure.
The pytest hooks that drive this object live in the pytest layer (``run/against.py``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pytest_hostperf.errors import MeasurementError
from pytest_hostperf.measure import sampling
from pytest_hostperf.measure.turns import BatonTurns, schedule
from pytest_hostperf.pairing.channel import Json
from pytest_hostperf.pairing.process import Base
from pytest_hostperf.pairing.sides import Sampler, Steps
from pytest_hostperf.stats import paired, verdict
from pytest_hostperf.stats.verdict import Verdict

if TYPE_CHECKING:
    from pytest_hostperf.measure.sampling import Plan, Samples
    from pytest_hostperf.stats.result import Result
    from pytest_hostperf.store.records import HostState

#: Samples per block of a paired measurement at least: 10 above the block's p99.
MIN_BLOCK = 1000
#: A paired plan's time budget may grow with the samples its blocks need, to at most this
#: many times the test's own: a call whose untimed set-up dwarfs it (a cache eviction before
#: each self-timed lookup) would otherwise stretch 400 asked samples to 20000 calls of 4 ms.
PAIRED_TIME_SCALE = 2.0


@dataclass(frozen=True, slots=True)
class PairedMeasurement:
    """A head measurement and its paired verdict; ``verdict`` is None where the base had no
    such measurement (measured alone, ``alone`` says why)."""

    result: Result
    host: HostState
    verdict: Verdict | None
    alone: str | None = None


def plan_message(plan: Plan) -> Json:
    """A sampling plan as the base side reads it from a ``go`` or ``more`` message."""
    return {"samples": plan.samples, "blocks": plan.blocks, "max_seconds": plan.max_seconds,
            "warmup_calls": plan.warmup_calls, "warmup_seconds": plan.warmup_seconds, "batch": plan.batch}


class AgainstHead:
    """The head's side: starts the base session, sends it each hostperf test, pairs the
    measurements, and stops it at the end of the run."""

    def __init__(self, ref: str, *, rootdir: Path, base_args: list[str], python: str | None, tolerance: float,
                 progress: Steps, note: Callable[[str], None], lead: bool = True) -> None:
        self.ref = ref
        self.rootdir = rootdir
        self.base_args = base_args
        self.python = python
        self.tolerance = tolerance
        self.progress = progress
        self.note = note
        self.lead = lead  # False: confirming one flagged measurement at a time, not every test
        self.base: Base | None = None
        self.waiting = False  # the base is running a test we asked for and has not said done
        self.broken: str | None = None  # why the base session can no longer pair
        self._stage = "idle"  # of the current measurement: "owed" (base waits for go), "turns"
        self.nodeid = ""  # the test the base is running for us

    def start(self) -> None:
        self.base = Base(self.ref, self.rootdir, self.base_args, self.python)
        if self.lead:
            self.note(f"paired against {self.ref} (base tree {self.base.tree}): each measurement "
                      "taken now, block by block with the base on the same CPU")

    def run_test(self, nodeid: str) -> None:
        """Ask the base to run the test ``nodeid`` (its measurements then wait for ours)."""
        if self.base is None:
            return
        self.nodeid = nodeid
        try:
            self.base.ctl.send(run=nodeid)
        except OSError as exc:
            self.break_pairing(f"the base session is gone ({exc.strerror or exc})")
            return
        self.waiting = True

    def break_pairing(self, why: str) -> None:
        """Pairing cannot go on: every later paired measurement fails with ``why``."""
        if self.broken is None:
            out = self.base.output(600) if self.base is not None else ""
            self.broken = f"--hostperf-against={self.ref}: {why}; base output: {out}"
            self.waiting = False

    def receive(self) -> Json:
        assert self.base is not None
        try:
            return self.base.ctl.recv()
        except (MeasurementError, OSError, ValueError) as exc:
            self.break_pairing(str(exc))
            raise MeasurementError(self.broken) from None

    def finish_test(self) -> str | None:
        """Let the base finish the test: decline its remaining measurements, read its outcome."""
        if self.base is None or not self.waiting or self.broken is not None:
            return None
        while True:
            msg = self.receive()
            if "done" in msg:
                self.waiting = False
                return str(msg["done"])
            if "ready" in msg:  # a measurement only the base has: removed in the head
                self._removed(str(msg["ready"]))
                self.base.ctl.send(skip=True)

    def _removed(self, name: str) -> None:
        self.note(f"paired: {self.nodeid}[{name}] is measured by the base only (removed)")

    def confirm(self, nodeid: str, mid: str, name: str, plan: Plan, sampler: Sampler,
                summarize: Callable[[Samples], Result]) -> PairedMeasurement:
        """Re-measure one flagged measurement paired with the base, from inside its test: the base
        runs the same test from its start and its earlier measurements are declined."""
        if self.base is None:
            self.start()
        assert self.base is not None
        if not self.waiting and self.broken is None:
            self.nodeid = nodeid
            self.base.ctl.send(run=nodeid)
            self.waiting = True
        return self.measure(mid, name, plan, sampler, summarize, skip_others=True)

    def measure(self, mid: str, name: str, plan: Plan, sampler: Sampler, summarize: Callable[[Samples], Result],
                *, skip_others: bool = False) -> PairedMeasurement:
        """One head measurement paired with the base's of the same name. Anything that stops it
        while the two sides take turns (Ctrl-C, a timeout, the function raising) breaks the
        pairing at once, so the base stops waiting and the run's end reaps it without a long
        wait; stopped before the turns began, the base is told to skip this one."""
        self._stage = "idle"
        try:
            return self._measure(mid, name, plan, sampler, summarize, skip_others=skip_others)
        except BaseException as exc:
            if self.base is not None and self._stage == "owed":  # the base waits for go: let it go on
                try:
                    self.base.ctl.send(skip=True)
                except OSError:
                    pass
            elif self._stage == "turns" or isinstance(exc, MeasurementError):
                if not isinstance(exc, MeasurementError):
                    self.break_pairing(f"the head stopped mid-measurement ({type(exc).__name__})")
                if self.base is not None:
                    self.base.baton.close()
            raise
        finally:
            self._stage = "idle"

    def _alone(self, plan: Plan, sampler: Sampler, summarize: Callable[[Samples], Result],
               why: str) -> PairedMeasurement:
        with sampler.controlled() as host:
            raw = sampler.sample(plan, None)
        return PairedMeasurement(summarize(raw), host, None, why)

    def _measure(self, mid: str, name: str, plan: Plan, sampler: Sampler, summarize: Callable[[Samples], Result],
                 *, skip_others: bool) -> PairedMeasurement:
        assert self.base is not None
        if self.broken is not None:
            raise MeasurementError(self.broken)
        msg = self.receive() if self.waiting else {"done": "not run"}
        while skip_others and "ready" in msg and msg["ready"] != name:
            self.base.ctl.send(skip=True)
            msg = self.receive()
        if "done" in msg:
            self.waiting = False
            return self._alone(plan, sampler, summarize, f"not measured by the base ({self.ref}: {msg['done']})")
        if msg.get("ready") != name:
            self._removed(str(msg.get("ready")))
            self.base.ctl.send(skip=True)
            return self._alone(plan, sampler, summarize, f"the base measured {msg.get('ready')!r} here, not {name!r}")
        self._stage = "owed"  # the base said ready and waits for go (or skip)
        with sampler.controlled() as host:
            probe = sampler.sample(replace(plan, samples=plan.blocks, max_seconds=0.2), None)
            # each block holds >= MIN_BLOCK samples, so its p99 rests on >= 10 samples above it
            samples = max(plan.samples, plan.blocks * MIN_BLOCK)
            pplan = replace(plan, batch=probe.batch, samples=samples,
                            max_seconds=plan.max_seconds * min(samples / plan.samples, PAIRED_TIME_SCALE))
            self._stage = "turns"
            rounds = Rounds(self, mid, name, pplan, sampler)
            self.base.ctl.send(go=name, plan=plan_message(pplan))
            decided = rounds.run(self.tolerance)
            self.base.ctl.send(enough=name)
        self._stage = "idle"
        return PairedMeasurement(summarize(rounds.merged()), host, decided)  # summarized once, over every pair

    def close(self) -> None:
        if self.base is not None:
            self.base.close(grace=2.0 if self.broken else 30.0)
            self.base = None


class Rounds:
    """The pairs of one measurement, as they are taken."""

    def __init__(self, head: AgainstHead, mid: str, name: str, plan: Plan, sampler: Sampler) -> None:
        self.head = head
        self.mid = mid
        self.name = name
        self.plan = plan
        self.sampler = sampler
        self.per_block = max(1, plan.samples // plan.blocks)
        self.head_p99: list[float] = []
        self.base_p99: list[float] = []
        self.head_p50: list[float] = []
        self.base_p50: list[float] = []
        self.base_sizes: list[int] = []
        self.taken: list[Samples] = []  # the head's raw samples of each round of pairs

    def next_pairs(self, k: int) -> np.ndarray:
        """Take ``k`` more block pairs; their log ratios of block p99."""
        head, base = self.head, self.head.base
        assert base is not None
        pplan = self.plan
        rplan = pplan if not self.taken else replace(
            pplan, samples=self.per_block * k, blocks=k, warmup_calls=10, warmup_seconds=0.01,
            max_seconds=pplan.max_seconds * k / pplan.blocks)
        # between rounds of pairs only: both sides wait here, so the terminal write measures nothing
        head.progress.step(f"{'' if head.lead else 'confirming, '}pairs {len(self.head_p99)}/{len(self.head_p99) + k}",
                           budget_s=None if self.taken else 2 * pplan.max_seconds + paired.MORE_S)
        if self.taken:
            base.ctl.send(more=self.name, plan=plan_message(rplan))
        try:
            more = self.sampler.sample(rplan, BatonTurns("head", base.baton, schedule(k)))
        except MeasurementError as exc:
            head.break_pairing(str(exc))
            raise MeasurementError(head.broken) from None
        got = head.receive()
        h50, h = paired.block_p50_p99s(more.values, more.block_sizes)
        bb = [float(x) for x in got.get("p99_blocks", ())]
        if len(bb) != len(h):
            raise MeasurementError(f"paired {self.mid}: the base took {len(bb)} blocks, the head {len(h)}")
        b50 = [float(x) for x in got.get("p50_blocks", ())]
        sizes = [int(x) for x in got.get("sizes", ())]
        if len(b50) != len(h) or len(sizes) != len(h):
            raise MeasurementError(f"paired {self.mid}: the base sent {len(b50)} block medians and {len(sizes)} "
                                   f"block sizes for {len(h)} blocks")
        self.taken.append(more)
        self.head_p99.extend(h)
        self.base_p99.extend(bb)
        self.head_p50.extend(h50)
        self.base_p50.extend(b50)
        self.base_sizes.extend(sizes)
        return paired.log_ratios(h, bb)

    def merged(self) -> Samples:
        raw = self.taken[0]
        for more in self.taken[1:]:
            raw = sampling.merge(raw, more)
        return raw

    def run(self, tolerance: float) -> Verdict:
        """The first round of pairs, more while undecided, and the verdict of them all."""
        first = self.next_pairs(self.plan.blocks)
        if min(min(self.taken[0].block_sizes), min(self.base_sizes)) < MIN_BLOCK:  # more pairs cannot help
            pv = paired.verdict(first, tolerance_pct=tolerance)
        else:
            pv = paired.sequential(self.next_pairs, tolerance_pct=tolerance, first=self.plan.blocks, initial=first)
        ref = self.head.ref
        status, why = pv.status, f"paired with {ref}: {pv.reason}"
        small_head = min(size for raw in self.taken for size in raw.block_sizes)
        small_base = min(self.base_sizes)
        smallest = min(small_head, small_base)
        bound = None
        if paired.MIN_MEDIAN_BLOCK <= smallest < MIN_BLOCK:
            bound = paired.bounded(self.head_p50, self.head_p99, self.base_p50, self.base_p99,
                                   head_small=small_head < MIN_BLOCK, base_small=small_base < MIN_BLOCK,
                                   tolerance_pct=tolerance)
        if bound is not None:  # one side's blocks too small for their p99, but a bound decides
            pv = bound
            status = bound.status
            side = "head" if small_head < MIN_BLOCK else "base"
            why = (f"paired with {ref}: {bound.reason} (the {side}'s smallest block held {smallest} samples, "
                   f"too few for its own p99: ratio and interval are of the bound)")
        elif smallest < MIN_BLOCK:  # the time budget ran out first: a block p99 rests on < 10 samples
            if status != "inconclusive":
                status, why = "inconclusive", f"paired with {ref}: {pv.pairs} block pairs, {pv.status} " \
                    "if the blocks could be trusted"
            why += (f"; but the smallest block held {smallest} samples, so its p99 rests on {smallest // 100} "
                    f"above it, not {MIN_BLOCK // 100} (--hostperf-max-time gives more)")
        # both figures are the medians of the pairs' block p99s: the statistic the pairs compare
        return verdict.from_pairs(status=status, ratio=pv.ratio, interval=pv.interval, head=self.head_p99,
                                  base=self.base_p99, tolerance_pct=pv.tolerance_pct, reason=why)
