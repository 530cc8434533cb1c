"""The gate seam: one :class:`Gate` per way of comparing a measurement, each returning a typed
:class:`Judged` whose outcome is a ``Verdict`` or a :class:`NotCompared` saying why not.

The ``hostperf`` fixture picks the gate once per run (``run/session.py``) and hands each
measurement to it as an :class:`Asked`: what to call is hidden behind a ``Sampler`` that
samples under the test's host controls, so a gate decides only how many rounds, against what,
and with which rule. The ways: a stored baseline, confirmed paired before a regression holds
(``gate/stored.py``); paired with a base commit measured now (``gate/paired.py``);
pytest-benchmark's rounds against a stored baseline (``gate/rounds.py``); and none (a smoke
run, or the base side of a pairing: ``Ungated``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pytest_hostperf.pairing.sides import Sampler

if TYPE_CHECKING:
    from pytest_hostperf.measure.sampling import Plan, Samples
    from pytest_hostperf.stats.result import Result
    from pytest_hostperf.stats.verdict import Verdict
    from pytest_hostperf.store.records import HostState, StoredMeasurement


@dataclass(frozen=True, slots=True)
class NotCompared:
    """A measurement the gate did not compare, and why (no baseline, no base measurement)."""

    why: str


@dataclass(frozen=True, slots=True)
class Judged:
    """A measurement as its gate leaves it: the result, the host state it was sampled in, and
    the outcome (None: not gated, ``not_gated`` says why; the report shows it in place of a verdict)."""

    result: Result
    host: HostState | None
    outcome: Verdict | NotCompared | None
    base: tuple[StoredMeasurement, ...] = ()  # the stored runs it was compared with
    extra_rounds: int = 0
    not_gated: str | None = None


@dataclass(frozen=True, slots=True)
class Asked:
    """One measurement asked for: its id, the plan as asked, and how to sample and summarize it."""

    mid: str
    nodeid: str
    name: str
    plan: Plan
    tolerance: float
    budgeted: bool  # it has a budget: every sample asked for is taken
    sampler: Sampler
    summarize: Callable[[Samples], Result]
    not_gated: str | None = None  # it cannot be gated, and why (pytest-benchmark's batched rounds)
    repeatable: bool = True  # the sampler can sample again (another tool's timing loop may not)


class Gate(Protocol):
    """A way of comparing one measurement."""

    def judge(self, asked: Asked) -> Judged: ...


class Ungated:
    """Measure as asked, compare with nothing (a smoke run: a few calls, nothing decided)."""

    def judge(self, asked: Asked) -> Judged:
        raw = asked.sampler.sample(asked.plan, None)
        return Judged(asked.summarize(raw), None, None)
