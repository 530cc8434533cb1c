"""pytest-benchmark's rounds against the stored baseline: samples another tool timed, compared
only with the stored runs of as many rounds and iterations (like for like), a regression
re-measured by running pytest-benchmark's runner again. Under ``--hostperf-against`` they are
not paired (pytest-benchmark runs its rounds back to back, which cannot take turns)."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from pytest_hostperf.gate.seam import Asked, Judged, NotCompared
from pytest_hostperf.gate.stored import compare_once, settle
from pytest_hostperf.stats import verdict
from pytest_hostperf.store import pbench

if TYPE_CHECKING:
    from pytest_hostperf.measure.sampling import Plan, Samples, Turns
    from pytest_hostperf.store.records import HostState, StoredMeasurement

#: The run's note when --hostperf-against meets pytest-benchmark tests.
PAIRED_NOTE = ("--hostperf-against: pytest-benchmark tests are measured on the head only (pytest-benchmark "
               "runs its rounds back to back, which cannot take turns with the base block by block): shown "
               "as new; to pair one, time it with the hostperf fixture (docs/xdist-and-pytest-benchmark.md)")
NOT_PAIRED = "not paired: pytest-benchmark times its rounds itself (docs/xdist-and-pytest-benchmark.md)"


class TakenRounds:
    """The ``Sampler`` of rounds pytest-benchmark already took: the first sample is them, under
    the host state they were taken in; each later one runs pytest-benchmark's runner ``again``
    for as many rounds (None: it cannot be run again)."""

    def __init__(self, rounds: Samples, host: HostState, again: Callable[[], Samples] | None) -> None:
        self.rounds = rounds
        self.host = host
        self.again = again
        self.handed_out = False

    @contextlib.contextmanager
    def controlled(self) -> Iterator[HostState]:
        yield self.host  # the runner applies the controls itself, as pytest-benchmark's call did

    def sample(self, plan: Plan, turns: Turns | None) -> Samples:
        if not self.handed_out:
            self.handed_out = True
            return self.rounds
        if self.again is None:
            raise RuntimeError("pytest-benchmark's rounds cannot be run again here")
        return self.again()


class RoundsGate:
    """pytest-benchmark's rounds (``TakenRounds``) against the stored runs of as many rounds and
    iterations; a regression must hold over more rounds when the runner can run again; an
    inconclusive verdict passes without them (not worth the time). Paired runs: not compared."""

    def __init__(self, *, baseline_of: Callable[[str], list[StoredMeasurement]], gated: Sequence[str],
                 noisy: Callable[[], bool], max_rounds: int, paired: bool, note: Callable[[str], None],
                 note_once: Callable[[str], None]) -> None:
        self.baseline_of = baseline_of
        self.gated = tuple(gated)
        self.noisy = noisy
        self.max_rounds = max_rounds
        self.paired = paired
        self.note = note
        self.note_once = note_once

    def judge(self, asked: Asked) -> Judged:
        sampler = asked.sampler
        with sampler.controlled() as host:
            raw = sampler.sample(asked.plan, None)
        res = asked.summarize(raw)  # the result stays pytest-benchmark's own rounds, as its table shows
        base = self.baseline_of(asked.mid)
        if self.paired:  # --hostperf-against pairs hostperf's own blocks only
            self.note_once(PAIRED_NOTE)
            return Judged(res, host, NotCompared(NOT_PAIRED), not_gated=asked.not_gated)
        if asked.not_gated is not None:
            self.note(f"{res.id}: {asked.not_gated}")
            return Judged(res, host, None, tuple(base), not_gated=asked.not_gated)
        alike = tuple(m for m in base if pbench.like_for_like(res.n, res.batch, (m.n, m.batch)) is None)
        extra = 0
        if base and not alike:
            unlike = pbench.like_for_like(res.n, res.batch, (base[-1].n, base[-1].batch))
            v = verdict.not_comparable(current_ns=res.gate_p99, tolerance_pct=asked.tolerance,
                                       baseline_runs=len(base),
                                       reason=f"not like for like with the baseline: {unlike}; save three runs "
                                       "with hostperf's fixed rounds (pytest --hostperf --hostperf-save)")
        elif asked.repeatable and alike:
            settled = settle(raw, lambda: sampler.sample(asked.plan, None), asked.summarize, alike,
                             tolerance=asked.tolerance, noisy=self.noisy(), max_rounds=self.max_rounds,
                             gated=self.gated, retry=("regressed",))
            v, extra = settled.verdict, settled.extra_rounds  # the verdict rests on every round
        else:
            v = compare_once(res, alike, tolerance=asked.tolerance, gated=self.gated)
        if base and alike and len(alike) < len(base):
            v = replace(v, reason=f"{v.reason}; compared with the {len(alike)} of {len(base)} baseline runs "
                                  "taken with as many rounds and iterations")
        return Judged(res, host, v, alike, extra)
