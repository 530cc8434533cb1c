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
    return _decided(float(np.median(r)), lo, hi, tolerance_pct=tolerance_pct, stat=stat, pairs=int(r.size),
                    what=f"{r.size} block pairs")


#: Student's t quantile at 0.975 for 1..30 degrees of freedom (beyond 30: the 30's, a little
#: wide). Written out: numpy has no t distribution, and scipy is not a dependency.
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)


#: Smallest spread (standard deviation of log ratio) between process pairs ever assumed: with
#: a handful of pairs their sample spread is sometimes tiny by chance (a chi-square with few
#: degrees of freedom), and an interval built on it misses; measured end to end, the same code's
#: comparisons spread 3% (benchmarks/verdict_quality_e2e.py, docs/gate.md).
PAIR_SPREAD_FLOOR = 0.02


def grouped_verdict(groups: Sequence[Sequence[float]], *, tolerance_pct: float, stat: str = "p99",
                    resamples: int = 2000, rng: np.random.Generator | None = None) -> PairedVerdict:
    """The paired verdict over several process pairs: ``groups[i]`` holds the log ratios of the
    block pairs process pair ``i`` took.

    Two processes running the same code differ by a fixed offset (hash seed, address-space
    layout, environment size: Mytkowicz et al. 2009) that the block pairs of one process pair
    cannot see, so the interval must span process pairs (Kalibera and Jones 2013). The centre
    is the median of every block pair's log ratio; its standard error comes from the cluster
    bootstrap, which resamples whole process pairs (each drawn with all its block pairs, as
    Davison and Hinkley 1997, section 3.8, recommend for two-stage data: drawing the blocks
    again inside counts their variance twice), scaled by sqrt(n/(n-1)) for the plug-in variance
    of n pairs and never below ``PAIR_SPREAD_FLOOR / sqrt(n)``; the 95% interval is the centre ±
    Student's t with n-1 degrees of freedom times it (with a handful of pairs a percentile
    bootstrap would be too narrow). One process pair: :func:`verdict` over its blocks."""
    gs = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    if not gs:
        raise ValueError("grouped_verdict: needs block pairs")
    if len(gs) == 1:
        return verdict(gs[0], tolerance_pct=tolerance_pct, stat=stat, resamples=resamples, rng=rng)
    rng = np.random.default_rng(0) if rng is None else rng
    n = len(gs)
    allr = np.concatenate(gs)
    centre = float(np.median(allr))
    drawn = rng.integers(0, n, size=(resamples, n))
    boot = np.array([np.median(np.concatenate([gs[i] for i in pick])) for pick in drawn])
    se = max(float(np.std(boot, ddof=1)) * float(np.sqrt(n / (n - 1))), PAIR_SPREAD_FLOOR / float(np.sqrt(n)))
    half = T975[min(n - 1, len(T975)) - 1] * se
    return _decided(centre, centre - half, centre + half, tolerance_pct=tolerance_pct, stat=stat,
                    pairs=int(allr.size), what=f"{n} process pairs, {allr.size} block pairs")


def _decided(centre: float, lo: float, hi: float, *, tolerance_pct: float, stat: str, pairs: int,
             what: str) -> PairedVerdict:
    status, why = _rule(lo, hi, float(np.log1p(tolerance_pct / 100)), tolerance_pct)
    return PairedVerdict(status, stat, float(np.exp(centre)), (float(np.exp(lo)), float(np.exp(hi))), pairs,
                         tolerance_pct, f"{what}, {why}")


def pooled_verdict(groups: Sequence[tuple[Sequence[np.ndarray], Sequence[np.ndarray]]], *, tolerance_pct: float,
                   q: float = 99.0, stat: str = "p99", resamples: int = 1000,
                   rng: np.random.Generator | None = None) -> PairedVerdict:
    """The paired verdict for calls too slow to fill blocks of 1000: ``groups[i]`` holds the
    head's and the base's blocks of raw latencies (ns, in schedule order, paired by index) of
    process pair ``i``. Each pair's estimate is the log ratio of the ``q``-th percentile of
    every call the head made over the base's (a block of 150 calls has no p99 of its own, but
    900 calls have one resting on 9 above it); its bootstrap resamples block pairs (both sides'
    blocks of one pair drawn together, so the pairing that cancels the host is kept), and the
    interval spans process pairs as :func:`hierarchical` does."""
    rng = np.random.default_rng(0) if rng is None else rng
    estimates: list[float] = []
    within: list[np.ndarray] = []
    pairs = 0
    for head, base in groups:
        if len(head) != len(base) or not len(head):
            raise ValueError(f"pooled_verdict: need as many head as base blocks, got {len(head)} and {len(base)}")
        hb = [np.asarray(b, dtype=np.float64) for b in head]
        bb = [np.asarray(b, dtype=np.float64) for b in base]
        k = len(hb)
        pairs += k
        estimates.append(float(np.log(np.percentile(np.concatenate(hb), q)) -
                               np.log(np.percentile(np.concatenate(bb), q))))
        picks = rng.integers(0, k, size=(resamples if len(groups) == 1 else 0, k))  # one pair: its own bootstrap
        within.append(np.array([np.log(np.percentile(np.concatenate([hb[j] for j in pick]), q)) -
                                np.log(np.percentile(np.concatenate([bb[j] for j in pick]), q)) for pick in picks]))
    what = f"{len(estimates)} process pair(s), {pairs} block pairs, each side's {stat} over all its calls"
    return hierarchical(estimates, np.stack(within) if within else np.empty((0, 0)), tolerance_pct=tolerance_pct,
                        stat=stat, pairs=pairs, what=what)


def hierarchical(estimates: Sequence[float], within: np.ndarray, *, tolerance_pct: float, stat: str, pairs: int,
                 what: str) -> PairedVerdict:
    """The verdict from one log-ratio estimate per process pair (``within[i]``: the bootstrap
    distribution of estimate ``i``, resampling its block pairs; used when there is one pair).

    The centre is the mean of the estimates. The interval comes from the two-stage bootstrap
    that resamples the process pairs and keeps each one's block pairs as they are (Davison and
    Hinkley 1997, section 3.8: resampling the second stage too counts the within-pair variance
    twice, since the spread of the pairs' estimates already holds it; measured here, it gave
    intervals of ±35% where the pairs' estimates spread ±5%). That bootstrap's variance of the
    mean is known in closed form, (n-1)/n times s^2/n, so it is computed, not drawn: the
    standard error is s/sqrt(n) (the plug-in factor undone), and the 95% interval is the centre
    ± Student's t with n-1 degrees of freedom times it. With 4 pairs a percentile bootstrap
    would be far too narrow (it can only reshuffle 4 values); t pays for knowing the spread
    from 4 values. One estimate: the interval of its own bootstrap, which cannot see what
    differs between processes (the reason says so)."""
    n = len(estimates)
    if n == 0:
        raise ValueError("hierarchical: needs at least one process pair's estimate")
    centre = float(np.mean(estimates))
    if n == 1:
        lo, hi = (float(x) for x in np.quantile(within[0], [0.025, 0.975]))
        what += " (one process pair: the interval cannot see what differs between processes)"
    else:
        # a floor on the pairs' spread: four values agreeing by chance must not make a tiny interval
        se = max(float(np.std(estimates, ddof=1)), PAIR_SPREAD_FLOOR) / float(np.sqrt(n))
        half = T975[min(n - 1, len(T975)) - 1] * se
        lo, hi = centre - half, centre + half
    return _decided(centre, lo, hi, tolerance_pct=tolerance_pct, stat=stat, pairs=pairs, what=what)


def _rule(lo: float, hi: float, margin: float, tolerance_pct: float) -> tuple[str, str]:
    """The paired rule on a log-ratio interval [lo, hi] and the log tolerance ``margin``."""
    if lo > margin:
        return "regressed", f"the whole interval is above +{tolerance_pct:g}%"
    if hi < -margin:
        return "improved", f"the whole interval is below -{tolerance_pct:g}%"
    if lo >= -margin and hi <= margin:
        return "unchanged", f"the interval lies within ±{tolerance_pct:g}%"
    return "inconclusive", f"the interval reaches past ±{tolerance_pct:g}%; more pairs would decide"


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
               clock: Callable[[], float] = time.monotonic, initial: np.ndarray | None = None,
               decide: Callable[[np.ndarray], PairedVerdict] | None = None) -> PairedVerdict:
    """Sequential stopping (as Chromium's Pinpoint adds repeats while undecided): take
    ``first`` pairs, then ``step`` more while the verdict is inconclusive, up to ``max_pairs``
    or ``deadline_s`` seconds after the first pairs, and not once they could not decide it
    (``futile``: the pairs still reachable are counted from the pace of the extra pairs so
    far; before any, from ``max_pairs``). ``next_pairs(k)`` measures k more pairs and returns
    their log ratios; ``initial`` stands for the first call when already taken. ``decide``
    gives the verdict of the pairs so far (default :func:`verdict` over all their log ratios;
    over several process pairs the caller's :func:`grouped_verdict`)."""
    if decide is None:
        def decide(r: np.ndarray) -> PairedVerdict:
            return verdict(r, tolerance_pct=tolerance_pct)

    ratios = np.asarray(next_pairs(first) if initial is None else initial, dtype=np.float64)
    start, first_n = clock(), ratios.size
    v = decide(ratios)
    while v.status == "inconclusive" and ratios.size < max_pairs:
        spent = clock() - start
        if spent >= deadline_s:
            break
        extra = ratios.size - first_n
        reachable = max_pairs if extra == 0 or spent <= 0 else \
            min(max_pairs, ratios.size + int(extra * (deadline_s - spent) / spent))
        if futile(v, reachable):
            return replace(v, reason=f"{v.reason.split(', the interval')[0]}, the interval reaches past "
                                     f"±{tolerance_pct:g}%; "
                                     f"not taken further: the {reachable} pairs the bound allows could not decide it")
        ratios = np.concatenate([ratios, next_pairs(min(step, max_pairs - ratios.size))])
        v = decide(ratios)
    return v
