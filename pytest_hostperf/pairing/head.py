"""The head's side of ``--hostperf-against=REF``: the user's pytest session drives both sides of
the comparison, as pytest-xdist's controller drives its workers. It starts process pairs, each
a fresh replica session in the head tree and one in the base tree under one hash seed (seeds
varied across pairs, environments padded to one size), leads them test by test, and measures
each ``hostperf()`` call as the replicas' calls of the same name, block by block in turns on
one CPU, pair after pair. The verdict's interval spans the process pairs (``paired.grouped_verdict``):
what differs between two processes running the same code is inside it.

The replicas are pytest sessions (``process.py``, ``replica.py``), each driven over a socket
pair: the head names a test (``run``), each measurement of every replica meets by name
(``ready``), the first head replica times a few calls to choose the batch size (``probe``),
then each process pair samples in turns through ``turns.BatonTurns`` on its own socket pair
(``go``) and sends its samples back (``result``): the head computes their block statistics, and
reports the head replicas' samples as its result. The head's own test runs as pytest runs it
(its assertions, its pass or fail); its ``hostperf()`` calls return what the head replicas
measured. Every wait is bounded; every replica is reaped and the base worktree removed at the
end of the run, also after a failure. The pytest hooks that drive this object live in the
pytest layer (``run/against.py``).
"""
from __future__ import annotations

import functools
import math
import secrets
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pytest_hostperf.errors import MeasurementError
from pytest_hostperf.measure import sampling
from pytest_hostperf.pairing.channel import Json, PairingError
from pytest_hostperf.pairing.process import Replica, launch, padded
from pytest_hostperf.pairing.sides import Sampler, Steps
from pytest_hostperf.pairing.wire import samples_from_wire
from pytest_hostperf.pairing.worktree import base_tree, remove_tree
from pytest_hostperf.stats import paired, verdict
from pytest_hostperf.stats.verdict import Verdict
from pytest_hostperf.store.records import HostState

if TYPE_CHECKING:
    from pytest_hostperf.measure.sampling import Plan, Samples
    from pytest_hostperf.stats.result import Result

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

    result: Result | None  # None when settling a stored verdict: only the verdict is wanted
    host: HostState | None
    verdict: Verdict | None
    alone: str | None = None


def plan_message(plan: Plan) -> Json:
    """A sampling plan as a replica reads it from a ``go`` or ``probe`` message."""
    return {"samples": plan.samples, "blocks": plan.blocks, "max_seconds": plan.max_seconds,
            "warmup_calls": plan.warmup_calls, "warmup_seconds": plan.warmup_seconds, "batch": plan.batch}


@dataclass(slots=True)
class ProcessPair:
    """One head replica and one base replica, started alike under one hash seed."""
    seed: int
    head: Replica
    base: Replica

    @property
    def both(self) -> tuple[Replica, Replica]:
        return self.head, self.base


class AgainstHead:
    """The head's side: starts the process pairs, sends them each hostperf test, pairs their
    measurements, and stops them at the end of the run."""

    def __init__(self, ref: str, *, rootdir: Path, base_args: list[str], python: str | None, tolerance: float,
                 progress: Steps, note: Callable[[str], None], lead: bool = True, pairs: int = 4,
                 paths: list[str] | None = None) -> None:
        self.ref = ref
        self.rootdir = rootdir
        self.base_args = base_args
        self.python = python
        self.tolerance = tolerance
        self.progress = progress
        self.note = note
        self.lead = lead  # False: confirming one flagged measurement at a time, not every test
        self.npairs = max(1, int(pairs))
        self.paths = list(paths or [])  # the head's test paths, relative to its rootdir: what replicas collect
        self.pairs: list[ProcessPair] = []
        self.tree: Path | None = None
        self._tmp: Path | None = None
        self.started = False
        self.waiting = False  # the replicas are running a test we asked for and have not all said done
        self.broken: str | None = None  # why the replicas can no longer pair
        self._stage = "idle"  # of the current measurement: "owed" (replicas wait for go), "turns"
        self.nodeid = ""  # the test the replicas are running for us
        self._done: dict[int, str] = {}  # id(replica) -> its outcome of the current test, once said

    @property
    def replicas(self) -> list[Replica]:
        return [r for p in self.pairs for r in p.both]

    def start(self) -> None:
        """Check out the base tree and start every process pair; raise :class:`PairingError`
        naming REF when any replica cannot start (all of them are reaped then)."""
        self.started = True
        try:
            self.tree, self._tmp = base_tree(self.ref, self.rootdir)
            seeds: list[int] = []
            while len(seeds) < self.npairs:
                seed = 1 + secrets.randbelow(4_294_967_295)  # PYTHONHASHSEED's range is 0..2**32-1; 0 disables it
                if seed not in seeds:
                    seeds.append(seed)
            for i, seed in enumerate(seeds):
                h_end, b_end = socket.socketpair()  # the pair's baton: one end each, the head keeps none
                try:
                    lh, lb = padded(launch("head", self.rootdir, self.base_args, sys.executable, seed, self.paths),
                                    launch("base", self.tree, self.base_args, self.python, seed, self.paths))
                    head = Replica(f"head session of pair {i + 1}", lh, h_end)
                    try:
                        base = Replica(f"base session of pair {i + 1}", lb, b_end)
                    except PairingError:
                        head.quit()
                        head.reap(5.0)
                        raise
                finally:
                    h_end.close()
                    b_end.close()
                self.pairs.append(ProcessPair(seed, head, base))
            for pair in self.pairs:  # started all at once: they import and collect in parallel
                hellos = [r.hello() for r in pair.both]
                if hellos[0].get("hash_check") != hellos[1].get("hash_check"):
                    self.note(f"paired: process pair under hash seed {pair.seed}: the two sides' hash functions "
                              "differ (different Python builds?), so the seed is not matched")
        except PairingError as exc:
            self.close(grace=5.0)
            raise PairingError(f"--hostperf-against={self.ref}: {exc}") from None
        if self.lead:
            self.note(f"paired against {self.ref} (base tree {self.tree}): {self.npairs} process pair(s), each a "
                      "fresh head and base session under one hash seed; each measurement taken in turns on one "
                      "CPU, pair after pair, its interval spanning the pairs")

    def run_test(self, nodeid: str) -> None:
        """Ask every replica to run the test ``nodeid`` (its measurements then wait for ours)."""
        if not self.pairs:
            return
        self.nodeid = nodeid
        self._done = {}
        for rep in self.replicas:
            try:
                rep.ctl.send(run=nodeid)
            except OSError as exc:
                self.break_pairing(f"the {rep.who} is gone ({exc.strerror or exc})")
                return
        self.waiting = True

    def break_pairing(self, why: str, rep: Replica | None = None) -> None:
        """Pairing cannot go on: every later paired measurement fails with ``why``."""
        if self.broken is None:
            out = f"; {rep.who}'s output: {rep.output(600)}" if rep is not None else ""
            self.broken = f"--hostperf-against={self.ref}: {why}{out}"
            self.waiting = False

    def receive(self, rep: Replica) -> Json:
        try:
            return rep.ctl.recv()
        except (MeasurementError, OSError, ValueError) as exc:
            self.break_pairing(str(exc), rep)
            raise MeasurementError(self.broken) from None

    def _next(self, rep: Replica, name: str | None = None) -> Json:
        """The replica's next word in this test: ``ready`` for a measurement, or ``done``. With
        ``name``, measurements before that one are declined (confirming a later one)."""
        if id(rep) in self._done:
            return {"done": self._done[id(rep)]}
        msg = self.receive(rep)
        while name is not None and "ready" in msg and msg["ready"] != name:
            rep.ctl.send(skip=True)
            msg = self.receive(rep)
        if "done" in msg:
            self._done[id(rep)] = str(msg["done"])
        return msg

    def finish_test(self) -> str | None:
        """Let the replicas finish the test: decline their remaining measurements, read their
        outcomes; the base's outcome is returned."""
        if not self.pairs or not self.waiting or self.broken is not None:
            return None
        for pair in self.pairs:
            for rep in pair.both:
                while True:
                    msg = self._next(rep)
                    if "done" in msg:
                        break
                    if self.lead and rep is pair.base and pair is self.pairs[0]:
                        self.note(f"paired: {self.nodeid}[{msg['ready']}] is measured at {self.ref} only: "
                                  "this tree no longer measures it")
                    rep.ctl.send(skip=True)
        self.waiting = False
        return self._done.get(id(self.pairs[0].base))

    def confirm(self, nodeid: str, mid: str, name: str, plan: Plan, sampler: Sampler,
                summarize: Callable[[Samples], Result]) -> PairedMeasurement:
        """Re-measure one flagged measurement paired, from inside its test: the replicas run the
        same test from its start and their earlier measurements are declined."""
        if not self.started:
            self.start()
        if not self.waiting and self.broken is None:
            self.run_test(nodeid)
        return self.measure(mid, name, plan, sampler, summarize, skip_others=True)

    def measure(self, mid: str, name: str, plan: Plan, sampler: Sampler | None,
                summarize: Callable[[Samples], Result] | None, *, skip_others: bool = False) -> PairedMeasurement:
        """One measurement paired over the process pairs. Anything that stops it while a pair
        takes turns (Ctrl-C, a timeout, a replica failing) breaks the pairing at once, and the
        run's end reaps the replicas without a long wait; stopped before the turns began, the
        replicas are told to skip this one."""
        self._stage = "idle"
        try:
            return self._measure(mid, name, plan, sampler, summarize, skip_others=skip_others)
        except BaseException as exc:
            if self._stage == "owed":  # the replicas wait for go: let them go on
                for rep in self.replicas:
                    try:
                        rep.ctl.send(skip=True)
                    except OSError:
                        pass
            elif self._stage == "turns" and not isinstance(exc, MeasurementError):
                self.break_pairing(f"the head stopped mid-measurement ({type(exc).__name__})")
            raise
        finally:
            self._stage = "idle"

    def settle(self, nodeid: str, mid: str, name: str, plan: Plan) -> PairedMeasurement:
        """Measure one measurement of a test that already ended, paired, for its verdict only:
        the replicas run the test from its start and decline the measurements before it."""
        if not self.started:
            self.start()
        self.finish_test()
        self.run_test(nodeid)
        try:
            return self.measure(mid, name, plan, None, None, skip_others=True)
        finally:
            self.finish_test()

    def _alone(self, plan: Plan, sampler: Sampler | None, summarize: Callable[[Samples], Result] | None,
               why: str) -> PairedMeasurement:
        if sampler is None or summarize is None:  # settling: nothing to measure alone
            return PairedMeasurement(None, None, None, why)
        with sampler.controlled() as host:
            raw = sampler.sample(plan, None)
        return PairedMeasurement(summarize(raw), host, None, why)

    def _measure(self, mid: str, name: str, plan: Plan, sampler: Sampler | None,
                 summarize: Callable[[Samples], Result] | None, *, skip_others: bool) -> PairedMeasurement:
        if self.broken is not None:
            raise MeasurementError(self.broken)
        if not self.waiting:
            return self._alone(plan, sampler, summarize, f"not measured by the base ({self.ref}: not run)")
        msgs = [(rep, self._next(rep, name if skip_others else None)) for rep in self.replicas]
        if not all(m.get("ready") == name for _, m in msgs):
            for rep, m in msgs:
                if "ready" in m:
                    rep.ctl.send(skip=True)
            base_msg, head_msg = msgs[1][1], msgs[0][1]
            if "done" in base_msg:
                why = f"not measured by the base ({self.ref}: {base_msg['done']})"
            elif base_msg.get("ready") != name:
                why = f"the base ({self.ref}) measured {base_msg.get('ready')!r} here, not {name!r}"
                if self.lead:
                    self.note(f"paired: {self.nodeid}[{base_msg.get('ready')}] is measured at {self.ref} only: "
                              "this tree no longer measures it")
            else:
                why = (f"this tree's own replica session did not measure {name!r} here "
                       f"({head_msg.get('done') or head_msg.get('ready')})")
            return self._alone(plan, sampler, summarize, why)
        self._stage = "owed"  # every replica said ready and waits for its orders
        lead = self.pairs[0].head
        lead.ctl.send(probe=True, plan=plan_message(replace(plan, samples=plan.blocks, max_seconds=0.2)))
        probed = self.receive(lead)
        if "batch" not in probed:  # its test failed: measured here, the failure is the user's to see
            if "done" in probed:
                self._done[id(lead)] = str(probed["done"])
            for rep in self.replicas:
                if rep is not lead:
                    rep.ctl.send(skip=True)
            self._stage = "idle"
            return self._alone(plan, sampler, summarize, f"the {lead.who} could not measure it "
                                                         f"({probed.get('done') or probed})")
        # each block holds >= MIN_BLOCK samples, so its p99 rests on >= 10 samples above it
        samples = max(plan.samples, plan.blocks * MIN_BLOCK)
        pplan = replace(plan, batch=int(probed["batch"]), samples=samples,
                        max_seconds=plan.max_seconds * min(samples / plan.samples, PAIRED_TIME_SCALE))
        self._stage = "turns"
        # a sample slower than a block's share of the time budget: each pair's first round takes the
        # fewest block pairs (2, one ABBA), not the plan's share of blocks (a 250 ms round would
        # otherwise take 6 turns a side in each of the 4 pairs: 12 s where pytest-benchmark took 1.3)
        slow = float(probed.get("sample_ns") or 0.0) * 1e-9 > pplan.max_seconds / pplan.blocks
        rounds = Rounds(self, mid, name, pplan, slow=slow)
        decided = rounds.run(self.tolerance)
        for rep in self.replicas:
            rep.ctl.send(enough=name)
        self._stage = "idle"
        # the head's result: every call its replicas measured, summarized once
        return PairedMeasurement(summarize(rounds.merged()) if summarize is not None else None, rounds.host, decided)

    def close(self, grace: float | None = None) -> None:
        """Ask every replica to quit, reap them all (terminate, then kill, by pid), remove the tree."""
        grace = (2.0 if self.broken else 30.0) if grace is None else grace
        try:
            for rep in self.replicas:
                rep.quit()
            for rep in self.replicas:
                rep.reap(grace)
        finally:
            self.pairs = []
            remove_tree(self.rootdir, self._tmp)
            self._tmp = None


class Rounds:
    """The block pairs of one measurement, as each process pair takes them."""

    def __init__(self, head: AgainstHead, mid: str, name: str, plan: Plan, *, slow: bool = False) -> None:
        self.head = head
        self.mid = mid
        self.name = name
        self.plan = plan
        self.per_block = max(1, plan.samples // plan.blocks)
        n = len(head.pairs)
        # block pairs per process pair in the first round: the plan's blocks shared out, even so
        # that each process pair's ABBA schedule starts with each side as often
        self.first = 2 if slow else max(2, 2 * math.ceil(plan.blocks / n / 2))
        self.groups: list[list[float]] = [[] for _ in range(n)]  # per process pair: log ratios of its block pairs
        self.head_p99: list[float] = []
        self.base_p99: list[float] = []
        self.head_sizes: list[int] = []
        self.base_sizes: list[int] = []
        self.taken: list[Samples] = []  # the head replicas' raw samples, round by round
        # per process pair: the head's and the base's blocks of raw latencies, paired by index
        self.raw_blocks: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], []) for _ in range(n)]
        self.host: HostState | None = None

    def _result(self, rep: Replica, got: Json, blocks: int) -> Samples:
        """A side's samples of one round, as it sent them (the head computes their block p99s)."""
        if "result" not in got:  # its test failed mid-measurement: its partner waits for a turn that never comes
            self.head.break_pairing(f"the {rep.who} stopped in the middle of {self.mid} ({got.get('done') or got})",
                                    rep)
            raise MeasurementError(f"paired {self.mid}: the {rep.who} stopped mid-measurement "
                                   f"({got.get('done') or got}); its output: {rep.output(600)}")
        try:
            raw = samples_from_wire(got["raw"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MeasurementError(f"paired {self.mid}: the {rep.who} sent no readable samples ({exc})") from None
        if len(raw.block_sizes) != blocks:  # the pair's turns no longer match: nothing later can pair
            self.head.break_pairing(f"the {rep.who} took {len(raw.block_sizes)} blocks of {self.mid}, not {blocks}",
                                    rep)
            raise MeasurementError(f"paired {self.mid}: the {rep.who} took {len(raw.block_sizes)} blocks, "
                                   f"not {blocks}")
        return raw

    def next_round(self, k: int) -> np.ndarray:
        """Each process pair takes ``k`` more block pairs in turn; the log ratios of them all."""
        head = self.head
        first = not self.taken
        rplan = replace(self.plan, samples=self.per_block * k, blocks=k,
                        max_seconds=self.plan.max_seconds * k / self.plan.blocks)
        if not first:  # each replica warmed up in its first round
            rplan = replace(rplan, warmup_calls=10, warmup_seconds=0.01)
        fresh: list[float] = []
        for i, pair in enumerate(head.pairs):
            # between pairs' turns only: every replica waits here, so the terminal write measures nothing
            head.progress.step(f"{'' if head.lead else 'confirming, '}pair {i + 1}/{len(head.pairs)}: "
                               f"{len(self.groups[i])}/{len(self.groups[i]) + k}",
                               budget_s=None if self.taken or i else
                               len(head.pairs) * (2 * rplan.max_seconds + 1) + paired.MORE_S)
            try:
                pair.head.ctl.send(go=self.name, plan=plan_message(rplan))
                pair.base.ctl.send(go=self.name, plan=plan_message(rplan))
            except OSError as exc:
                head.break_pairing(f"process pair {i + 1} is gone ({exc.strerror or exc})")
                raise MeasurementError(head.broken) from None
            got_h, got_b = head.receive(pair.head), head.receive(pair.base)
            raw, braw = self._result(pair.head, got_h, k), self._result(pair.base, got_b, k)
            _, h99 = paired.block_p50_p99s(raw.values, raw.block_sizes)
            _, b99 = paired.block_p50_p99s(braw.values, braw.block_sizes)
            if self.host is None:
                self.host = HostState.from_json(got_h.get("host"))
            self.taken.append(raw)
            for side, got in ((0, raw), (1, braw)):
                self.raw_blocks[i][side].extend(np.split(got.values, np.cumsum(got.block_sizes)[:-1]))
            ratios = paired.log_ratios(h99, b99)
            self.groups[i].extend(float(x) for x in ratios)
            fresh.extend(float(x) for x in ratios)
            self.head_p99 += h99
            self.base_p99 += b99
            self.head_sizes += raw.block_sizes
            self.base_sizes += braw.block_sizes
        return np.asarray(fresh)

    def merged(self) -> Samples:
        return functools.reduce(sampling.merge, self.taken)

    def decide(self, _: object = None) -> paired.PairedVerdict:
        """The verdict of the pairs so far: from the block p99s' log ratios where every block
        holds MIN_BLOCK samples; else (calls too slow to fill them in the time budget) from each
        side's p99 over all its calls, per process pair (``paired.pooled_verdict``)."""
        if self.small():
            return paired.pooled_verdict(self.raw_blocks, tolerance_pct=self.head.tolerance)
        return paired.grouped_verdict(self.groups, tolerance_pct=self.head.tolerance)

    def small(self) -> bool:
        return min(min(self.head_sizes), min(self.base_sizes)) < MIN_BLOCK

    def run(self, tolerance: float) -> Verdict:
        """The first round of pairs, more while undecided, and the verdict of them all."""
        n = len(self.head.pairs)
        first = self.next_round(self.first)
        # more pairs while undecided, for at most MORE_S. Measured on pydantic's suite: capping it
        # at 3x the budget (3 s for pytest-benchmark's 1 s) made the paired run 1.93x its plain run
        # with 11 of 55 benchmarks unchanged; 10 s, 2.08x with 18 (docs/xdist-and-pytest-benchmark.md)
        pv = paired.sequential(lambda more: self.next_round(max(2, 2 * round(more / n / 2))),
                               tolerance_pct=tolerance, first=first.size, initial=first, decide=self.decide)
        why = f"paired with {self.head.ref}: {pv.reason}"
        if self.small():
            why += (f" (blocks of {min(min(self.head_sizes), min(self.base_sizes))} to "
                    f"{max(max(self.head_sizes), max(self.base_sizes))} calls: too few for a block p99 each)")
            # the figures: each side's p99 over all its calls, the statistic compared
            head = [float(np.percentile(np.concatenate(h), 99)) for h, _ in self.raw_blocks]
            base = [float(np.percentile(np.concatenate(b), 99)) for _, b in self.raw_blocks]
        else:  # both figures are the medians of the pairs' block p99s: the statistic the pairs compare
            head, base = self.head_p99, self.base_p99
        return verdict.from_pairs(status=pv.status, ratio=pv.ratio, interval=pv.interval, head=head,
                                  base=base, tolerance_pct=pv.tolerance_pct, reason=why)
