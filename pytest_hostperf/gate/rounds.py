"""pytest-benchmark's rounds against the stored baseline: samples another tool timed, compared
only with the stored runs of as many rounds and iterations (like for like), a regression
re-measured by running pytest-benchmark's runner again, then confirmed paired against the
baseline's commit (``gate/confirm.py``), as hostperf's own measurements are. Rounds of k
iterations are gated on the p99 of their times per iteration, labelled ``batched(k)``. Under
``--hostperf-against`` the rounds are paired by the paired gate (``bench/rounds.py``), not here."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from pytest_hostperf.gate.seam import Asked, Judged
from pytest_hostperf.gate.stored import CLOSE_RUNS_S, CLOSE_RUNS_SPREAD, compare_once, runs_span_s, settle
from pytest_hostperf.stats import verdict
from pytest_hostperf.store import pbench

if TYPE_CHECKING:
    from pytest_hostperf.gate.confirm import Confirmation
    from pytest_hostperf.measure.sampling import Plan, Samples, Turns
    from pytest_hostperf.store.records import HostState, StoredMeasurement



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
        if self.again is None:  # a pedantic test's rounds: measured alone, they are what it took
            return self.rounds
        return self.again()


class RoundsGate:
    """pytest-benchmark's rounds (``TakenRounds``) against the stored runs of as many rounds and
    iterations; a regression must hold over more rounds when the runner can run again, and is
    then confirmed paired (``confirmation``); an inconclusive verdict passes without them (not
    worth the time: the end of the run settles it paired)."""

    def __init__(self, *, baseline_of: Callable[[str], list[StoredMeasurement]], gated: Sequence[str],
                 noisy: Callable[[], bool], max_rounds: int, note: Callable[[str], None],
                 note_once: Callable[[str], None], confirmation: Confirmation | None = None,
                 runs_created: Sequence[str] = ()) -> None:
        self.baseline_of = baseline_of
        self.gated = tuple(gated)
        self.noisy = noisy
        self.max_rounds = max_rounds
        self.note = note
        self.note_once = note_once
        self.confirmation = confirmation
        span = runs_span_s(runs_created)
        # runs saved close together: the same allowance as the stored gate's (gate/stored.py)
        self.drift = CLOSE_RUNS_SPREAD if span is not None and span < CLOSE_RUNS_S else 0.0

    def judge(self, asked: Asked) -> Judged:
        sampler = asked.sampler
        with sampler.controlled() as host:
            raw = sampler.sample(asked.plan, None)
        res = asked.summarize(raw)  # the result stays pytest-benchmark's own rounds, as its table shows
        base = self.baseline_of(asked.mid)
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
                             tolerance=asked.tolerance, noisy=self.noisy(), drift=self.drift,
                             max_rounds=self.max_rounds, gated=self.gated, retry=("regressed",))
            v, extra = settled.verdict, settled.extra_rounds  # the verdict rests on every round
        else:
            v = compare_once(res, alike, tolerance=asked.tolerance, gated=self.gated, drift=self.drift)
        if base and alike and len(alike) < len(base):
            v = replace(v, reason=f"{v.reason}; compared with the {len(alike)} of {len(base)} baseline runs "
                                  "taken with as many rounds and iterations")
        if v.status == "regressed" and self.confirmation is not None:
            # confirmed paired as hostperf's own measurements are: the replicas run the test's rounds in turns
            v = verdict.worst([self.confirmation.confirm(part, asked) if part.status == "regressed" else part
                               for part in verdict.gated_parts(v)])
        return Judged(res, host, v, alike, extra)
