"""Pure decision rules of the comparison with a baseline: the ratio of the gated statistic and
its interval over the baseline's runs, and the :class:`Verdict` (made here only, by keyword)
that says regressed, improved, unchanged or inconclusive; when more rounds could change it.

A verdict is reached only with confidence: an interval that straddles the tolerance is
``inconclusive``, reported, never silently passed. Budgets are ``checks.py``'s.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np

from pytest_hostperf.stats import percentiles as stats
from pytest_hostperf.units import STAT_LABELS, format_ns

#: How the gate's statistic is named wherever it is shown: the median of the block values, not
#: the percentile over all calls that tables report (docs/gate.md).
GATED = {k: f"block-median {v}" for k, v in STAT_LABELS.items()}


# --------------------------------------------------------------------------- baseline comparison

#: Verdicts of a comparison against a baseline (``over-budget`` comes from budgets).
STATUSES = ("regressed", "improved", "unchanged", "inconclusive", "over-budget", "new")


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """Current run vs baseline runs for one measurement and one statistic (p99 by default).

    Made here only (:func:`compare`, :func:`from_pairs`, :func:`not_comparable`), by keyword."""
    status: str
    stat: str
    ratio: float | None  # current / baseline
    interval: tuple[float, float] | None  # 95% interval of the ratio
    baseline_ns: float | None
    current_ns: float
    tolerance_pct: float
    baseline_runs: int
    reason: str
    rounds: int = 1  # measurement rounds of the current run the verdict rests on
    confirmation: str = ""  # what re-measuring paired against the baseline's commit found
    pairs: tuple[tuple[float, float], ...] = ()  # paired gate: (head, base) block statistic per pair
    others: tuple[Verdict, ...] = ()  # --hostperf-gate: the other gated statistics' verdicts (see worst())

    @property
    def failed(self) -> bool:
        return self.status in ("regressed", "over-budget")

    @property
    def detail(self) -> str:
        """The reason, then (``--hostperf-gate`` with several statistics) the other statistics'
        verdicts: ``...; other gated statistics: block-median p99 unchanged +2% [-3%, +7%]``."""
        if not self.others:
            return self.reason
        return self.reason + "; other gated statistics: " + ", ".join(
            f"{GATED[o.stat]} {o.status} {o.delta_text()}" for o in self.others)

    def delta_text(self) -> str:
        """``+38% [+30%, +46%]`` — the change and its interval, in percent."""
        if self.ratio is None or self.interval is None:
            return "-"
        lo, hi = self.interval
        return f"{self.ratio - 1:+.0%} [{lo - 1:+.0%}, {hi - 1:+.0%}]"


def median_bootstrap_se(values: np.ndarray, rng: np.random.Generator, resamples: int) -> float:
    """Standard error of log(median of ``values``) within one run, by a bootstrap over its blocks."""
    if len(values) < 2:
        return 0.0
    boot = stats.bootstrap_medians(values, resamples=resamples, rng=rng)
    return float(np.std(np.log(np.maximum(boot, 1e-9)), ddof=1))


def _log_estimates(runs: Sequence[np.ndarray]) -> np.ndarray:
    """log of each run's estimate (the median of its block values)."""
    return np.log(np.maximum([float(np.median(r)) for r in runs], 1e-9))


#: Smallest run-to-run spread (standard deviation of log p99 between runs) ever assumed: a
#: run's p99 moves between runs on any host (neighbours, frequency, page placement); with few
#: runs the spread measured from them is unreliable. Chosen with benchmarks/verdict_quality.py.
RUN_SPREAD_FLOOR = 0.03
#: Spread assumed while the baseline holds fewer than 3 runs and cannot show its own. On the
#: shared 2-vCPU development VM the benchmark suite's p99s moved by 20-60% between runs minutes
#: apart (IPC and hand-offs most): until three runs are saved only large changes (~1.7x) fail.
FEW_RUNS_SPREAD = 0.25
#: Median-based estimates are this much noisier (in variance) than a mean of as many values.
_MEDIAN_VARIANCE = np.pi / 2


def run_spread(baseline_runs: Sequence[np.ndarray], current_rounds: Sequence[np.ndarray] = (), *,
               floor: float = RUN_SPREAD_FLOOR) -> float:
    """Run-to-run spread σ: a robust standard deviation of log(run estimate).

    The deviations of the baseline's runs from their median and of the current rounds from
    theirs are pooled, and σ = 1.4826 × their median absolute value (the MAD), so one run
    disturbed by a neighbour does not inflate it. At least ``floor``; at least
    ``FEW_RUNS_SPREAD`` while the baseline holds fewer than three runs.
    """
    devs: list[float] = []
    for group in (baseline_runs, current_rounds):
        logs = _log_estimates([r for r in group if len(r)])
        if len(logs) >= 2:
            devs.extend((logs - np.median(logs)).tolist())
    measured = 1.4826 * float(np.median(np.abs(devs))) if len(devs) >= 3 else 0.0
    # Rounds of the current run are taken moments apart: they cannot show how far p99 moves
    # between occasions, so a baseline of fewer than three runs keeps the larger assumption.
    if sum(1 for r in baseline_runs if len(r)) < 3:
        return max(floor, FEW_RUNS_SPREAD, measured)
    return max(floor, measured)


def _se_factor(n: int) -> float:
    """Variance factor of the centre of ``n`` runs: a median from three on, else a mean."""
    return (_MEDIAN_VARIANCE if n >= 3 else 1.0) / n


def baseline_ratio_interval(current_rounds: Sequence[np.ndarray], baseline_runs: Sequence[np.ndarray], *,
                            confidence: float = 0.95, resamples: int = 500, extra_spread: float = 0.0,
                            rng: np.random.Generator | None = None) -> tuple[float, tuple[float, float], float]:
    """Ratio current / baseline of a run-level estimate, its interval, and the spread σ used.

    The unit is the run: each baseline run and each current round gives one estimate, the
    median of its block values (robust to a disturbed block). The baseline's centre is the
    median of its runs' estimates, the current's the median of its rounds' (the mean below
    three). On a log scale the difference has standard error σ·sqrt(f(m) + f(K)), with σ the
    robust run-to-run spread (:func:`run_spread`, never below the typical within-run bootstrap
    error of either side), m rounds, K runs and f(n) = 1/n (π/2n for a median). Run-level rather than
    sample-level because on a shared host p99 drifts between runs far more than blocks within
    one run show (benchmarks/verdict_quality.py measures the consequence).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    runs = [np.asarray(r, dtype=np.float64) for r in baseline_runs if len(r)]
    rounds = [np.asarray(r, dtype=np.float64) for r in current_rounds if len(r)]
    if not runs or not rounds:
        raise ValueError("baseline_ratio_interval needs current blocks and at least one baseline run")
    base_logs, cur_logs = _log_estimates(runs), _log_estimates(rounds)
    def centre(x: np.ndarray) -> float:
        return float(np.median(x)) if len(x) >= 3 else float(np.mean(x))

    delta = centre(cur_logs) - centre(base_logs)
    within = max(float(np.median([median_bootstrap_se(r, rng, resamples) for r in side])) for side in (runs, rounds))
    sigma = float(np.hypot(max(run_spread(runs, rounds), within), extra_spread))  # + a noisy host's share
    se = sigma * float(np.sqrt(_se_factor(len(rounds)) + _se_factor(len(runs))))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return float(np.exp(delta)), (float(np.exp(delta - z * se)), float(np.exp(delta + z * se))), sigma


def ratio_interval(current: np.ndarray, baseline_runs: Sequence[np.ndarray], *, confidence: float = 0.95,
                   resamples: int = stats.BOOTSTRAP_RESAMPLES,
                   rng: np.random.Generator | None = None) -> tuple[float, tuple[float, float]]:
    """Point estimate and bootstrap interval of median(current) / median(baseline), by blocks.

    For two measurements of one run (``expect_faster``), where no run-to-run drift separates
    them: the interval comes from resampling the blocks of each side (never single samples:
    consecutive samples are correlated).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    runs = [np.asarray(r, dtype=np.float64) for r in baseline_runs if len(r)]
    if not runs or not len(current):
        raise ValueError("ratio_interval needs current blocks and at least one baseline run")
    base_vals = np.concatenate(runs)
    cur_boot = stats.bootstrap_medians(np.asarray(current, dtype=np.float64), resamples=resamples, rng=rng)
    base_boot = stats.bootstrap_medians(base_vals, resamples=resamples, rng=rng)
    ratios = cur_boot / np.maximum(base_boot, 1e-9)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(ratios, [alpha, 1 - alpha])
    return float(np.median(current)) / max(float(np.median(base_vals)), 1e-9), (float(lo), float(hi))


def compare(current: np.ndarray | Sequence[np.ndarray], baseline_runs: Sequence[np.ndarray], *,
            tolerance_pct: float, stat: str = "p99", extra_spread: float = 0.0,
            rng: np.random.Generator | None = None) -> Verdict:
    """Decide ``regressed`` / ``improved`` / ``unchanged`` / ``inconclusive``.

    ``current`` is one round's block values, or a list of rounds (re-measurements) of them;
    ``baseline_runs`` one array of block values per stored run. ``extra_spread`` widens the
    interval (added to σ in quadrature) when the host was noisier than during the baseline.
    - regressed: the ratio's interval lies above 1 and its point estimate above 1 + tolerance;
    - improved: the mirror image (interval below 1, point below 1 / (1 + tolerance));
    - unchanged: the interval lies within [1 / (1 + tolerance), 1 + tolerance];
    - inconclusive: anything else.
    The caller re-measures a regressed or inconclusive result (a regression must hold over
    several rounds, so one disturbed round cannot fail a run), then warns on inconclusive.
    The bounds are symmetric on a log scale: 2x slower and 2x faster are equally far from 1.
    """
    rounds = [np.asarray(current)] if isinstance(current, np.ndarray) and np.ndim(current) == 1 else list(current)
    cur = float(np.median(np.concatenate(rounds))) if rounds else float("nan")
    if not baseline_runs:
        return Verdict(status="new", stat=stat, ratio=None, interval=None, baseline_ns=None, current_ns=cur,
                       tolerance_pct=tolerance_pct, baseline_runs=0, reason="no baseline for this measurement",
                       rounds=len(rounds))
    ratio, (lo, hi), sigma = baseline_ratio_interval(rounds, baseline_runs, extra_spread=extra_spread, rng=rng)
    up = 1 + tolerance_pct / 100
    down = 1 / up
    base = float(np.exp(np.median(_log_estimates([r for r in baseline_runs if len(r)]))))
    cur = base * ratio
    label = GATED[stat]
    if lo > 1 and ratio > up:
        status, why = "regressed", f"{label} confidently above baseline by more than the {tolerance_pct:g}% tolerance"
    elif hi < 1 and ratio < down:
        status, why = "improved", f"{label} confidently below baseline by more than the {tolerance_pct:g}% tolerance"
    elif down <= lo and hi <= up:
        status, why = "unchanged", f"{label} interval within ±{tolerance_pct:g}% of baseline"
    else:
        status, why = "inconclusive", (f"{label} interval [{lo - 1:+.0%}, {hi - 1:+.0%}] is too wide or too close "
                                       f"to the {tolerance_pct:g}% tolerance to decide (run-to-run spread "
                                       f"{sigma:.0%})")
    return Verdict(status=status, stat=stat, ratio=ratio, interval=(lo, hi), baseline_ns=base, current_ns=cur,
                   tolerance_pct=tolerance_pct, baseline_runs=len(baseline_runs), reason=why, rounds=len(rounds))


def from_pairs(*, status: str, ratio: float, interval: tuple[float, float], head: Sequence[float],
               base: Sequence[float], tolerance_pct: float, reason: str) -> Verdict:
    """The paired gate's verdict on block p99 from ``head``'s and ``base``'s block p99 of each pair:
    both figures are the medians of the pairs' block p99s, the statistic the pairs compare."""
    return Verdict(status=status, stat="p99", ratio=ratio, interval=interval, baseline_ns=float(np.median(base)),
                   current_ns=float(np.median(head)), tolerance_pct=tolerance_pct, baseline_runs=0, reason=reason,
                   pairs=tuple(zip(head, base)))


def not_comparable(*, current_ns: float, tolerance_pct: float, baseline_runs: int, reason: str) -> Verdict:
    """``inconclusive`` without a ratio: a baseline exists but cannot be compared with (its runs
    were taken otherwise); ``reason`` says how and what to do."""
    return Verdict(status="inconclusive", stat="p99", ratio=None, interval=None, baseline_ns=None,
                   current_ns=current_ns, tolerance_pct=tolerance_pct, baseline_runs=baseline_runs, reason=reason)


def could_decide(ratio: float, interval: tuple[float, float], keep: float, tolerance_pct: float, *,
                 clear_at_tolerance: bool) -> bool:
    """Whether more data could still decide a verdict of ``ratio`` and ``interval``: with the
    interval's half-width shrunk to ``keep`` of it and the estimate moved by one standard
    error either way (the cautious side), it could fit within ±tolerance, or clear it: the
    estimate beyond the tolerance and the interval beyond 1 (stored rule) or, with
    ``clear_at_tolerance``, the whole interval beyond it (the paired rule). The shared test of
    :func:`undecidable` (more rounds) and :func:`paired.futile` (more pairs)."""
    lo, hi = interval
    half = (np.log(hi) - np.log(lo)) / 2
    best = half * keep
    shift = half / 1.96  # one standard error of the estimate
    delta, margin = abs(float(np.log(ratio))), float(np.log1p(tolerance_pct / 100))
    could_fit = max(delta - shift, 0.0) + best <= margin
    could_clear = delta + shift > margin and delta + shift - best > (margin if clear_at_tolerance else 0.0)
    return bool(could_fit or could_clear)


def undecidable(v: Verdict, max_rounds: int) -> bool:
    """Whether an ``inconclusive`` verdict is beyond what more rounds could decide: even with
    the current rounds' share of the error gone (only the baseline's σ·sqrt(f(K)) left) and
    its estimate moved by one standard error either way, the interval could neither clear the
    tolerance nor fit inside it. Re-measuring it would spend time and change nothing (issue
    15). ``max_rounds`` is kept for callers; the bound assumes any number of rounds, which is
    the cautious side (a first rule that assumed exactly ``max_rounds`` and a fixed estimate
    cost stored-mode detections: docs/gate.md)."""
    if v.status != "inconclusive" or v.ratio is None or v.interval is None or v.baseline_runs < 1:
        return False
    lo, hi = v.interval
    if lo <= 0 or hi <= lo or max_rounds <= v.rounds:
        return False
    keep = float(np.sqrt(_se_factor(v.baseline_runs) / (_se_factor(v.rounds) + _se_factor(v.baseline_runs))))
    return not could_decide(v.ratio, v.interval, keep, v.tolerance_pct, clear_at_tolerance=False)


def cannot_fail(v: Verdict) -> bool:
    """Whether an ``inconclusive`` verdict could not become ``regressed`` however many rounds
    were taken: even with its estimate one standard error higher, the ratio stays within the
    tolerance (``regressed`` needs it above 1 + tolerance). More rounds could only tell
    ``unchanged`` from ``improved``, which passes either way: re-measuring it would spend time
    and change no outcome. Not used under ``--hostperf-strict``, where an
    inconclusive verdict fails. With several gated statistics, every one must be unable to fail."""
    if v.status != "inconclusive":
        return False
    for part in gated_parts(v):
        if part.status in ("improved", "unchanged"):
            continue
        if part.status != "inconclusive" or part.ratio is None or part.interval is None:
            return False
        lo, hi = part.interval
        if lo <= 0 or hi <= lo or part.ratio <= 0:
            return False
        shift = (np.log(hi) - np.log(lo)) / 2 / 1.96  # one standard error of the estimate
        if np.log(part.ratio) + shift > np.log1p(part.tolerance_pct / 100):
            return False
    return True


def regression_message(result_id: str, v: Verdict) -> str:
    """The failure message of a regressed measurement: baseline, current, ratio with interval, tolerance."""
    lo, hi = v.interval or (float("nan"), float("nan"))
    if v.reason.startswith("paired with "):  # --hostperf-against: the base was measured now
        return (f"{result_id}: {GATED[v.stat]} {v.status}: base {format_ns(v.baseline_ns)} -> head "
                f"{format_ns(v.current_ns)}, ratio {v.ratio:.2f} [95% CI {lo:.2f} .. {hi:.2f}] "
                f"(tolerance {v.tolerance_pct:g}%; {v.reason})")
    text = (f"{result_id}: {GATED[v.stat]} {v.status}: baseline {format_ns(v.baseline_ns)} -> current "
            f"{format_ns(v.current_ns)}, ratio {v.ratio:.2f} [95% CI {lo:.2f} .. {hi:.2f}] "
            f"(tolerance {v.tolerance_pct:g}%, {v.baseline_runs} baseline run(s)); held over {v.rounds} "
            f"measurement round(s)" + (f"; {v.confirmation}" if v.confirmation else ""))
    for o in v.others:  # --hostperf-gate: every other statistic that regressed too
        if o.failed:
            o_lo, o_hi = o.interval or (float("nan"), float("nan"))
            text += (f"; also {GATED[o.stat]} {o.status}: baseline {format_ns(o.baseline_ns)} -> current "
                     f"{format_ns(o.current_ns)}, ratio {o.ratio:.2f} [95% CI {o_lo:.2f} .. {o_hi:.2f}]"
                     + (f" ({o.confirmation})" if o.confirmation else ""))
    return text


#: How bad a verdict is when the gate compares several statistics (``--hostperf-gate``): the
#: measurement's verdict is its worst statistic's.
_SEVERITY = {"regressed": 0, "inconclusive": 1, "unchanged": 2, "improved": 3, "new": 4}


def gated_parts(v: Verdict) -> tuple[Verdict, ...]:
    """The per-statistic verdicts a :func:`worst` verdict was made of (itself first, without ``others``)."""
    return (replace(v, others=()), *v.others) if v.others else (v,)


def worst(verdicts: Sequence[Verdict]) -> Verdict:
    """One measurement's verdict when the gate compares several statistics: the worst of them
    (regressed, then inconclusive, unchanged, improved, new; ties go to p99, then to the order
    given), holding the others in ``others`` (so :func:`regression_message` names every
    statistic that regressed, and :attr:`Verdict.detail` all of them). One verdict: itself."""
    parts = [p for v in verdicts for p in gated_parts(v)]
    if not parts:
        raise ValueError("worst() needs at least one verdict")
    if len(parts) == 1:
        return parts[0]
    if all(p.status == "new" for p in parts):  # no baseline: nothing was compared, nothing to add
        return min(parts, key=lambda p: p.stat != "p99")
    order = sorted(range(len(parts)), key=lambda i: (_SEVERITY.get(parts[i].status, -1), parts[i].stat != "p99", i))
    return replace(parts[order[0]], others=tuple(parts[i] for i in order[1:]))
