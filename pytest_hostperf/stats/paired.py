"""The paired comparison's rules: from block pairs of head and base to a verdict.

:func:`verdict` decides from the pairs only: per block pair the log ratio head/base of the
gated statistic; a bootstrap over pairs of their median gives the ratio's interval
(never a test on raw calls: consecutive calls are correlated and the host drifts).
Pairing the same code is what cancels the host: measured on a shared 2-vCPU VM, the run-level
p99 of unchanged code moved 2x between runs while the paired ratio's robust spread was 3%.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from pytest_hostperf.stats import percentiles
from pytest_hostperf.stats.verdict import could_decide


@dataclass(frozen=True, slots=True)
class PairedVerdict:
    """Head vs base measured now, from block pairs."""
    status: str  # "regressed" | "improved" | "unchanged" | "inconclusive"
    stat: str
    ratio: float  # head / base: exp(median log ratio over pairs)
    interval: tuple[float, float]  # its bootstrap interval over pairs
    pairs: int
    tolerance_pct: float
    reason: str

    @property
    def failed(self) -> bool:
        return self.status == "regressed"


def block_p50_p99s(values: np.ndarray, sizes: Sequence[int]) -> tuple[list[float], list[float]]:
    """Each block's median and p99 (ns), as ``result.summarize`` computes them, without the
    bootstrap intervals: cheap enough to run between rounds of pairs at SCHED_FIFO, where a
    summary's tens of ms of numpy would add to the CPU's RT time and invite throttling into a
    block."""
    blocks = [percentiles.block_stats(b) for b in percentiles.split_blocks(values, sizes)]
    return [b.p50 for b in blocks], [b.p99 for b in blocks]


#: Samples per block a block median rests on at least (10 either side of it).
MIN_MEDIAN_BLOCK = 20


def bounded(head_p50: Sequence[float], head_p99: Sequence[float], base_p50: Sequence[float],
            base_p99: Sequence[float], *, head_small: bool, base_small: bool,
            tolerance_pct: float) -> PairedVerdict | None:
    """A verdict from bounds, when one side's blocks are too small for their own p99.

    A block's p99 is at least its median. So when the head's blocks are too small, head
    p50 / base p99 per pair bounds the p99 ratio from below: if even that clears +tolerance,
    the head regressed (its p99 can only be higher). Mirrored, head p99 / base p50 bounds it
    from above when the base's blocks are too small: if that lies below -tolerance, improved.
    None when neither bound decides (or both sides are too small): the caller stays
    inconclusive."""
    if head_small == base_small:
        return None
    if head_small:
        v = verdict(log_ratios(head_p50, base_p99), tolerance_pct=tolerance_pct)
        want, which = "regressed", "the head's block medians over the base's block p99s, a lower bound"
    else:
        v = verdict(log_ratios(head_p99, base_p50), tolerance_pct=tolerance_pct)
        want, which = "improved", "the head's block p99s over the base's block medians, an upper bound"
    if v.status != want:
        return None
    return replace(v, reason=f"{v.pairs} block pairs, {want}: {which} of the p99 ratio clears "
                             f"{'+' if want == 'regressed' else '-'}{tolerance_pct:g}%")


def log_ratios(head: Sequence[float], base: Sequence[float]) -> np.ndarray:
    """Per block pair: log(head / base) of the gated statistic (pairs in schedule order)."""
    h = np.asarray(head, dtype=np.float64)
    b = np.asarray(base, dtype=np.float64)
    if h.shape != b.shape or h.ndim != 1 or not h.size:
        raise ValueError(f"log_ratios: need the same number of head and base blocks, got {h.size} and {b.size}")
    if np.any(h <= 0) or np.any(b <= 0):
        raise ValueError("log_ratios: block statistics must be positive nanoseconds")
    return np.log(h) - np.log(b)


def verdict(ratios: np.ndarray, *, tolerance_pct: float, stat: str = "p99", confidence: float = 0.95,
            resamples: int = 2000, rng: np.random.Generator | None = None) -> PairedVerdict:
    """The paired verdict from per-pair log ratios (bootstrap over pairs of their median).

    ``regressed`` only when the whole interval lies above 1 + tolerance; ``improved`` the
    mirror image; ``unchanged`` when it lies within ±tolerance; else ``inconclusive``.
    """
    r = np.asarray(ratios, dtype=np.float64)
    if r.ndim != 1 or r.size < 2:
        raise ValueError("verdict: needs at least 2 block pairs")
    rng = np.random.default_rng(0) if rng is None else rng
    idx = rng.integers(0, r.size, size=(resamples, r.size))
    boot = np.median(r[idx], axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = (float(x) for x in np.quantile(boot, [alpha, 1 - alpha]))
    centre = float(np.median(r))
    margin = float(np.log1p(tolerance_pct / 100))
    ratio, interval = float(np.exp(centre)), (float(np.exp(lo)), float(np.exp(hi)))
    if lo > margin:
        status, why = "regressed", f"the whole interval is above +{tolerance_pct:g}%"
    elif hi < -margin:
        status, why = "improved", f"the whole interval is below -{tolerance_pct:g}%"
    elif lo >= -margin and hi <= margin:
        status, why = "unchanged", f"the interval lies within ±{tolerance_pct:g}%"
    else:
        status, why = "inconclusive", f"the interval reaches past ±{tolerance_pct:g}%; more pairs would decide"
    return PairedVerdict(status, stat, ratio, interval, int(r.size), tolerance_pct,
                         f"{r.size} block pairs, {why}")


#: Sequential stopping's defaults (as Chromium's Pinpoint): after the first pairs, this many
#: more at a time while the verdict is inconclusive, up to MAX_PAIRS pairs or MORE_S seconds
#: of extra pairs, and no further once the pairs the bound still allows could not decide
#: (``futile``). ``against.py`` and ``benchmarks/verdict_quality.py`` both use them.
STEP_PAIRS = 10
MAX_PAIRS = 200
MORE_S = 10.0


def futile(v: PairedVerdict, reachable: int) -> bool:
    """Whether an ``inconclusive`` paired verdict is beyond what ``reachable`` pairs in all
    could decide: with the interval's half-width shrunk as 1/sqrt(pairs) to ``reachable``
    pairs and the estimate moved by one standard error either way (the cautious side, as
    ``verdict.undecidable`` does for rounds), it could neither clear the tolerance nor fit
    inside it. More pairs would spend the bound and change nothing."""
    if v.status != "inconclusive":
        return False
    lo, hi = v.interval
    if reachable <= v.pairs:
        return True
    if lo <= 0 or hi <= lo:
        return False

    return not could_decide(v.ratio, v.interval, float(np.sqrt(v.pairs / reachable)), v.tolerance_pct,
                            clear_at_tolerance=True)


def sequential(next_pairs: Callable[[int], np.ndarray], *, tolerance_pct: float, first: int = 10,
               step: int = STEP_PAIRS, max_pairs: int = MAX_PAIRS, deadline_s: float = MORE_S,
               clock: Callable[[], float] = time.monotonic, initial: np.ndarray | None = None) -> PairedVerdict:
    """Sequential stopping (as Chromium's Pinpoint adds repeats while undecided): take
    ``first`` pairs, then ``step`` more while the verdict is inconclusive, up to ``max_pairs``
    or ``deadline_s`` seconds after the first pairs, and not once they could not decide it
    (``futile``: the pairs still reachable are counted from the pace of the extra pairs so
    far; before any, from ``max_pairs``). ``next_pairs(k)`` measures k more pairs and returns
    their log ratios; ``initial`` stands for the first call when already taken."""
    ratios = np.asarray(next_pairs(first) if initial is None else initial, dtype=np.float64)
    start, first_n = clock(), ratios.size
    v = verdict(ratios, tolerance_pct=tolerance_pct)
    while v.status == "inconclusive" and ratios.size < max_pairs:
        spent = clock() - start
        if spent >= deadline_s:
            break
        extra = ratios.size - first_n
        reachable = max_pairs if extra == 0 or spent <= 0 else \
            min(max_pairs, ratios.size + int(extra * (deadline_s - spent) / spent))
        if futile(v, reachable):
            return replace(v, reason=f"{v.pairs} block pairs, the interval reaches past ±{tolerance_pct:g}%; "
                                     f"not taken further: the {reachable} pairs the bound allows could not decide it")
        ratios = np.concatenate([ratios, next_pairs(min(step, max_pairs - ratios.size))])
        v = verdict(ratios, tolerance_pct=tolerance_pct)
    return v
