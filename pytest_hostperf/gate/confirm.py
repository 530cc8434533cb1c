"""Confirming stored verdicts paired: a regression against the stored baseline is re-measured
against the baseline's commit, both measured now, before it fails a test; and at the end of
the run, stored ``inconclusive`` and ``improved`` verdicts are settled the same way, furthest
from ``unchanged`` first, within the run's settle budget (``--hostperf-settle``).

A stored baseline carries the host's speed of the hour it was saved (the same code's run-level
p99 moved 2x within minutes on a shared host); pairing the same calls now cancels the host.
A pairing that decides is the verdict, and its message keeps both comparisons; one that does
not decide leaves the verdict ``inconclusive`` (a stored regression) or as stored.
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
    from pytest_hostperf.measure.sampling import Plan
    from pytest_hostperf.pairing.head import AgainstHead


class Confirmation:
    """Re-measures regressions paired against ``sha``, the baseline's newest run's commit.

    ``head_for(sha)`` gives the paired session (started on first use; None where ``sha`` is not
    a commit of this repository); ``at_sha()`` whether the tree is exactly that commit, clean
    (asked when a regression is first confirmed: a run without one runs no git)."""

    def __init__(self, sha: str | None, *, at_sha: Callable[[], bool],
                 head_for: Callable[[str], AgainstHead | None], note: Callable[[str], None] = lambda _: None) -> None:
        self.sha = sha
        self.at_sha = at_sha
        self.head_for = head_for
        self.note = note  # said once per run (note_once)

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
            self.note(missing_commit(sha))
            return replace(v, confirmation=f"not confirmed: the baseline's commit {sha[:12]} is not in this "
                                           "repository (see the note on fetching it)")
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
        if pv.status == "regressed":
            return replace(v, confirmation=f"confirmed {paired_text(sha, pv)}")
        return decided_by_pairing(v, pv, sha)

    def settle(self, v: Verdict, *, nodeid: str, mid: str, name: str, plan: Plan) -> Verdict:
        """A stored ``inconclusive`` or ``improved`` verdict of a test that already ran, re-measured
        paired against the baseline's commit: a pairing that decides is the verdict."""
        why = self.unpairable()
        if why:
            return replace(v, reason=f"{v.reason}; not settled paired: {why}")
        assert self.sha is not None
        head = self.head_for(self.sha)
        if head is None:
            self.note(missing_commit(self.sha))
        if head is None or head.broken:
            return replace(v, reason=f"{v.reason}; not settled paired: "
                                     f"{head.broken if head else 'the commit is not in this repository'}")
        try:
            paired = head.settle(nodeid, mid, name, plan)
        except (PairingError, MeasurementError) as exc:
            head.broken = head.broken or str(exc)
            return replace(v, reason=f"{v.reason}; not settled paired: {exc}")
        if paired.verdict is None:
            return replace(v, reason=f"{v.reason}; not settled paired: {paired.alone}")
        return decided_by_pairing(v, paired.verdict, self.sha)

    def unpairable(self) -> str:
        """Why no pairing can run against the baseline's commit ('' when one can)."""
        if not self.sha:
            return "the baseline records no commit"
        if self.at_sha():
            return f"the tree is the baseline's own commit ({self.sha[:12]}, clean): nothing to pair with"
        return ""


def missing_commit(sha: str) -> str:
    """Once per run: why the stored verdicts cannot be paired, and the fix."""
    return (f"stored verdicts not confirmed or settled paired: the baseline's commit {sha[:12]} is not in this "
            "repository (a shallow clone? actions/checkout fetches one commit unless told `fetch-depth: 0`; or "
            f"`git fetch origin {sha}`), so each stands on the stored comparison alone")


def paired_text(sha: str, pv: Verdict) -> str:
    lo, hi = pv.interval or (float("nan"), float("nan"))
    return f"paired against {sha[:12]} now: ratio {pv.ratio:.2f} [95% CI {lo:.2f} .. {hi:.2f}]"


def decided_by_pairing(v: Verdict, pv: Verdict, sha: str) -> Verdict:
    """The final verdict of a stored verdict ``v`` re-measured paired (``pv``): the pairing's
    when it decides, with both comparisons in the message; else ``inconclusive``."""
    lo, hi = v.interval or (float("nan"), float("nan"))
    stored = (f"stored {v.status} {_pct(v.ratio)} [{_pct(lo)}, {_pct(hi)}] against the baseline"
              if v.ratio is not None else f"stored {v.status}")
    if pv.status in ("unchanged", "improved", "regressed"):
        moved = "; the host moved, not the code" if pv.status != v.status else ""
        return replace(v, status=pv.status, ratio=pv.ratio, interval=pv.interval, pairs=pv.pairs,
                       reason=f"{stored}; {paired_text(sha, pv)}: {pv.status}{moved} ({pv.reason})")
    return replace(v, status="inconclusive", reason=f"{stored}; {paired_text(sha, pv)}: inconclusive as well "
                                                    f"({pv.reason})")


def _pct(r: float | None) -> str:
    return "?" if r is None or r != r else f"{(r - 1) * 100:+.0f}%"
