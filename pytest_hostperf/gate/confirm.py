"""Confirming a stored regression paired: a regression against the stored baseline is
re-measured against the baseline's commit, both measured now, before it fails a test.

A stored baseline carries the host's speed of the hour it was saved (the same code's run-level
p99 moved 2x within minutes on a shared host); pairing the same calls now cancels the host.
Confirmed, the verdict stays regressed; not confirmed, it is inconclusive (the host, not the
code, is slower than then).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from pytest_hostperf.errors import MeasurementError
from pytest_hostperf.pairing.channel import PairingError
from pytest_hostperf.stats.verdict import GATED, Verdict

if TYPE_CHECKING:
    from pytest_hostperf.gate.seam import Asked
    from pytest_hostperf.pairing.head import AgainstHead


class Confirmation:
    """Re-measures regressions paired against ``sha``, the baseline's newest run's commit.

    ``head_for(sha)`` gives the paired session (started on first use; None where ``sha`` is not
    a commit of this repository); ``at_sha()`` whether the tree is exactly that commit, clean
    (asked when a regression is first confirmed: a run without one runs no git)."""

    def __init__(self, sha: str | None, *, at_sha: Callable[[], bool],
                 head_for: Callable[[str], AgainstHead | None]) -> None:
        self.sha = sha
        self.at_sha = at_sha
        self.head_for = head_for

    def confirm(self, v: Verdict, asked: Asked) -> Verdict:
        sha = self.sha
        if not sha:
            return replace(v, confirmation="not confirmed: the baseline records no commit")
        if self.at_sha():
            return replace(v, status="inconclusive", reason=f"{v.reason}; the baseline was saved at this very commit "
                           f"({sha[:12]}, clean tree): the host is slower than then, not the code")
        if v.stat != "p99":  # --hostperf-gate: the paired gate compares block p99s only
            return replace(v, confirmation=f"not confirmed: the paired re-measurement compares p99 only, so a "
                           f"{GATED[v.stat]} regression fails on the stored comparison alone")
        head = self.head_for(sha)
        if head is None:
            return replace(v, confirmation=f"not confirmed: the baseline's commit {sha[:12]} is not in this repository")
        if head.broken:
            return replace(v, confirmation=f"not confirmed: {head.broken}")
        try:
            paired = head.confirm(asked.nodeid, asked.mid, asked.name, asked.plan, asked.sampler, asked.summarize)
        except (PairingError, MeasurementError) as exc:
            head.broken = head.broken or str(exc)  # the next flagged measurement does not retry it
            return replace(v, confirmation=f"not confirmed: {exc}")
        pv = paired.verdict
        if pv is None:
            return replace(v, confirmation=f"not confirmed: {paired.alone}")
        lo, hi = pv.interval or (float("nan"), float("nan"))
        paired_text = f"paired against {sha[:12]} now: ratio {pv.ratio:.2f} [95% CI {lo:.2f} .. {hi:.2f}]"
        if pv.status == "regressed":
            return replace(v, confirmation=f"confirmed {paired_text}")
        return replace(v, status="inconclusive", reason=f"{v.reason}; not confirmed {paired_text} ({pv.status}): "
                       "the host is slower than when the baseline was saved")
