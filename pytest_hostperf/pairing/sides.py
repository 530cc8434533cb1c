"""What each side of a pairing needs from the measurement it pairs: a sampler that samples
under the test's host controls, and a status line to show the rounds of pairs on. The pytest
layer provides both; the gate hands them through."""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pytest_hostperf.measure.sampling import Plan, Samples, Turns
    from pytest_hostperf.store.records import HostState


class Sampler(Protocol):
    """How one measurement is sampled: under the test's host controls (``controlled``, which
    yields the host state read back inside them), one plan at a time, in turns or not."""

    def controlled(self) -> AbstractContextManager[HostState]: ...

    def sample(self, plan: Plan, turns: Turns | None) -> Samples: ...


class Steps(Protocol):
    """Where the rounds of pairs are shown (the run's status line)."""

    def step(self, what: str, budget_s: float | None = None) -> None: ...
