"""The paired gate (``--hostperf-against=REF``): each measurement taken now, in turns with the
base commit's measurement of the same name (``pairing.head``); its verdict comes from the block
pairs alone. A measurement the base does not have is measured alone and not compared."""
from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_hostperf.gate.seam import Asked, Judged, NotCompared

if TYPE_CHECKING:
    from pytest_hostperf.gate.stored import Progress
    from pytest_hostperf.pairing.head import AgainstHead


class PairedGate:
    def __init__(self, head: AgainstHead, progress: Progress) -> None:
        self.head = head
        self.progress = progress

    def judge(self, asked: Asked) -> Judged:
        self.progress.begin(asked.mid)  # the head shows its rounds of pairs
        got = self.head.measure(asked.mid, asked.name, asked.plan, asked.sampler, asked.summarize)
        outcome = got.verdict if got.verdict is not None else NotCompared(got.alone or "not paired")
        assert got.result is not None  # a measurement taken in a test always has its result
        return Judged(got.result, got.host, outcome)
