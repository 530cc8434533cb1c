"""``gate/stored.py`` pinned by exact values: how many blocks a round takes, when rounds are
re-measured and when they stop, and what the stored gate asks of its sampler, progress line and
confirmation (fakes for each: nothing is timed here; docs/mutation.md)."""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np

from pytest_hostperf.gate import stored
from pytest_hostperf.gate.seam import Asked
from pytest_hostperf.measure import sampling
from pytest_hostperf.stats import verdict
from pytest_hostperf.stats.percentiles import BlockStats
from pytest_hostperf.stats.result import summarize

PLAN = sampling.Plan(samples=2_000, blocks=20, max_seconds=2.0, warmup_seconds=0.25)


def _run(p99s: Any) -> Any:
    """A stored run as the gate reads it: blocks with ``get(stat)`` (p50 half the p99)."""
    return SimpleNamespace(blocks=[BlockStats(100, v / 2, v, v, v, v) for v in np.asarray(p99s, dtype=float)])


def _samples(level: float, blocks: int = 20, batch: int = 1) -> sampling.Samples:
    """``blocks`` blocks of 50 calls, each block's calls all ``level`` ns: every block statistic is ``level``."""
    return sampling.Samples(values=np.full(50 * blocks, level), block_sizes=(50,) * blocks, batch=batch,
                            warmup_calls=0, calls=50 * blocks, seconds=0.1, truncated=False)


def _summ(s: sampling.Samples) -> Any:
    return summarize(s, nodeid="t.py::test", name="f")


#: Three stored runs at 1000 ns: σ is the floor, a constant round's interval ±7.5% (log) around it.
TIGHT = [_run([1000.0] * 20) for _ in range(3)]
#: Three runs a factor e^0.5 apart: an interval no number of rounds could decide.
SPREAD = [_run([1000.0 * math.exp(x)] * 20) for x in (-0.5, 0.0, 0.5)]


# ----------------------------------------------------------------------------- blocks by noise


def _noisy_runs(seed: int, n: int = 3, blocks: int = 12, within: float = 0.2) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [1e5 * np.exp(lv + rng.normal(0, within, blocks)) for lv in np.linspace(-0.05, 0.05, n)]


def test_noise_blocks_exact() -> None:
    runs = _noisy_runs(1)
    g = np.random.default_rng(0)
    per_block = float(np.median([len(r) * verdict.median_bootstrap_se(r, g, 200) ** 2 for r in runs]))
    want = max(stored.MIN_NOISE_BLOCKS, math.ceil(per_block / (verdict.run_spread(runs) / 3) ** 2))
    assert want > stored.MIN_NOISE_BLOCKS
    assert stored.noise_blocks(runs) == want == stored.noise_blocks(runs, np.random.default_rng(0))
    assert stored.noise_blocks(runs, np.random.default_rng(1)) != want


def test_noise_blocks_needs_runs_of_two_blocks() -> None:
    assert stored.noise_blocks([np.array([5.0]), np.array([])]) == 1_000_000_000
    two = [np.array([1e5, 3e5])]
    g = np.random.default_rng(0)
    want = max(5, math.ceil(2 * verdict.median_bootstrap_se(two[0], g, 200) ** 2 / (verdict.FEW_RUNS_SPREAD / 3) ** 2))
    assert stored.noise_blocks(two) == want


def test_scaled_keeps_the_plan_unless_fewer_blocks() -> None:
    assert stored.scaled(PLAN, 20) is PLAN and stored.scaled(PLAN, 40) is PLAN
    assert stored.scaled(PLAN, 5) == replace(PLAN, samples=500, blocks=5, max_seconds=0.5)


def test_plan_by_noise_shares_one_generator_over_the_gated_statistics() -> None:
    def run(p99s: np.ndarray, p999s: np.ndarray) -> Any:
        return SimpleNamespace(blocks=[SimpleNamespace(get={"p99": a, "p999": b}.__getitem__)
                                       for a, b in zip(p99s, p999s)])

    p99s, p999s = _noisy_runs(3, within=0.05), _noisy_runs(2, within=0.08)  # p999 needs 14 blocks (15 if seeded 1)
    base = [run(a, b) for a, b in zip(p99s, p999s)]
    g = np.random.default_rng(0)
    need = max(stored.noise_blocks(p99s, g), stored.noise_blocks(p999s, g))
    assert stored.plan_by_noise(PLAN, base, ("p99", "p999")) == stored.scaled(PLAN, need)
    assert need > stored.MIN_NOISE_BLOCKS


# ----------------------------------------------------------------------------- verdicts of rounds


def test_gated_verdict_is_compare_on_each_statistic() -> None:
    rounds = [_summ(_samples(1100.0)).blocks]
    v = stored.gated_verdict(rounds, TIGHT, ("p50",), tolerance=5)
    assert v == verdict.compare([np.full(20, 1100.0)], [np.full(20, 500.0)] * 3, tolerance_pct=5, stat="p50")
    w = stored.gated_verdict(rounds, TIGHT, ("p50",), tolerance=5, extra_spread=0.3)
    assert w == verdict.compare([np.full(20, 1100.0)], [np.full(20, 500.0)] * 3, tolerance_pct=5, stat="p50",
                                extra_spread=0.3)
    assert w.interval != v.interval
    res = SimpleNamespace(blocks=rounds[0])
    both = stored.compare_once(res, TIGHT, tolerance=5, gated=("p50", "p99"))
    assert both == stored.gated_verdict(rounds, TIGHT, ("p50", "p99"), tolerance=5)
    assert stored.compare_once(res, TIGHT, tolerance=5) == stored.gated_verdict(rounds, TIGHT, ("p99",), tolerance=5)


def _settle(first: float, base: list[Any], *, more: float | None = None, **kw: Any) -> tuple[stored.Settled, list[int]]:
    taken: list[int] = []

    def again() -> sampling.Samples:
        taken.append(1)
        return _samples(first if more is None else more)

    return stored.settle(_samples(first), again, _summ, base, **{"tolerance": 10, "noisy": False, **kw}), taken


def test_a_noisy_host_widens_every_rounds_verdict() -> None:
    quiet, _ = _settle(1200.0, TIGHT, max_rounds=0)
    assert quiet.verdict.status == "regressed"
    noisy, _ = _settle(1200.0, TIGHT, max_rounds=0, noisy=True)
    assert noisy.verdict.status == "inconclusive"
    assert noisy.verdict == verdict.compare([np.full(20, 1200.0)], [np.full(20, 1000.0)] * 3, tolerance_pct=10,
                                            extra_spread=stored.NOISY_SPREAD)
    again, taken = _settle(1200.0, TIGHT, max_rounds=1, noisy=True)
    assert taken == [1] and again.extra_rounds == 1
    assert again.verdict == verdict.compare([np.full(20, 1200.0)] * 2, [np.full(20, 1000.0)] * 3, tolerance_pct=10,
                                            extra_spread=stored.NOISY_SPREAD)
    # the result is of every round's samples together
    assert again.result.calls == 2000 and again.result.p99 == 1200.0


def test_an_undecidable_verdict_is_not_re_measured() -> None:
    s, taken = _settle(1000.0, SPREAD, max_rounds=1, strict=True)
    assert s.verdict.status == "inconclusive" and verdict.undecidable(s.verdict, 2)
    assert taken == [] and s.extra_rounds == 0 and s.result.calls == 1000


def test_the_cannot_fail_note_only_where_it_stopped_the_rounds() -> None:
    s, taken = _settle(930.0, TIGHT, max_rounds=1)  # inconclusive, 0.93x: cannot fail
    assert verdict.cannot_fail(s.verdict) and taken == []
    assert s.verdict.reason.endswith("; " + stored.CANNOT_FAIL_NOTE)
    only_regressions, taken = _settle(930.0, TIGHT, max_rounds=1, retry=("regressed",))
    assert only_regressions.verdict.status == "inconclusive" and taken == []
    assert stored.CANNOT_FAIL_NOTE not in only_regressions.verdict.reason
    none_left, taken = _settle(930.0, TIGHT, max_rounds=0)
    assert stored.CANNOT_FAIL_NOTE not in none_left.verdict.reason


def test_rounds_stop_once_the_verdict_is_settled() -> None:
    # one disturbed round, then two as before: the median of three rounds settles it, one round short of the bound
    s, taken = _settle(2000.0, TIGHT, more=1000.0, max_rounds=3)
    assert taken == [1, 1] and s.verdict.status == "unchanged" and s.extra_rounds == 2
    s, taken = _settle(1000.0, TIGHT, max_rounds=3)
    assert taken == [] and s.verdict.status == "unchanged" and s.extra_rounds == 0


# ----------------------------------------------------------------------------- the stored gate, with fakes


class _Sampler:
    def __init__(self, level: float) -> None:
        self.level = level
        self.plans: list[sampling.Plan] = []
        self.entered = 0

    @contextmanager
    def controlled(self) -> Iterator[str]:
        self.entered += 1
        yield "HOST"

    def sample(self, plan: sampling.Plan, progress: object) -> sampling.Samples:
        assert progress is None
        self.plans.append(plan)
        return _samples(self.level, blocks=plan.blocks, batch=4)


class _Log:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def begin(self, mid: str, budget_s: float = 0.0) -> None:
        self.calls.append(("begin", mid, budget_s))

    def step(self, what: str, budget_s: float | None = None) -> None:
        self.calls.append(("step", what, budget_s))

    def note(self, text: str) -> None:
        self.calls.append(("note", text))

    def confirm(self, part: verdict.Verdict, asked: Asked) -> verdict.Verdict:
        self.calls.append(("confirm", part.stat, asked.mid))
        return replace(part, confirmation="confirmed paired")


def _gate(base: list[Any], log: _Log, **kw: Any) -> stored.StoredGate:
    args: dict[str, Any] = dict(baseline_of=lambda mid: base if mid == "t.py::test[f]" else [], gated=("p99",),
                                strict=False, by_noise=True, noisy=lambda: False, progress=log, note_once=log.note,
                                confirmation=log, max_rounds=2)
    args.update(kw)
    return stored.StoredGate(**args)


def _asked(sampler: _Sampler, budgeted: bool = False) -> Asked:
    return Asked(mid="t.py::test[f]", nodeid="t.py::test", name="f", plan=PLAN, tolerance=10, budgeted=budgeted,
                 sampler=sampler, summarize=_summ)


def test_the_gate_samples_by_noise_and_confirms_a_regression() -> None:
    log, sampler = _Log(), _Sampler(2000.0)
    base = [_run(1000.0 * np.exp(x + np.random.default_rng(7).normal(0, 0.01, 20))) for x in (-0.3, 0.0, 0.3)]
    j = _gate(base, log).judge(_asked(sampler))
    small = stored.plan_by_noise(PLAN, base)
    assert small.blocks < PLAN.blocks
    # every round of the plan sampled by noise, the later ones at the first round's batch with a short warm-up
    assert sampler.plans == [small, replace(small, batch=4, warmup_calls=10), replace(small, batch=4, warmup_calls=10)]
    assert sampler.entered == 3
    assert log.calls == [("note", stored.NOISE_NOTE), ("begin", "t.py::test[f]", 3 * small.max_seconds + 0.25),
                         ("step", "round 1/3", None), ("step", "round 2/3", None), ("step", "round 3/3", None),
                         ("confirm", "p99", "t.py::test[f]")]
    assert (j.host, j.base, j.extra_rounds) == ("HOST", tuple(base), 2)
    assert j.outcome.status == "regressed" and j.outcome.confirmation == "confirmed paired"
    assert j.result.calls == 3 * 50 * small.blocks


def test_the_gate_without_confirmation_or_noise_sampling() -> None:
    log, sampler = _Log(), _Sampler(1000.0)
    j = _gate(TIGHT, log, confirmation=None, by_noise=False, max_rounds=1).judge(_asked(sampler))
    assert sampler.plans == [PLAN] and j.extra_rounds == 0 and j.outcome.status == "unchanged"
    assert log.calls == [("begin", "t.py::test[f]", 2 * PLAN.max_seconds + 0.25), ("step", "round 1/2", None)]
    # a budgeted measurement takes every sample asked for; a regression without confirmation stands
    log, sampler = _Log(), _Sampler(2000.0)
    j = _gate(TIGHT, log, confirmation=None, max_rounds=0).judge(_asked(sampler, budgeted=True))
    assert sampler.plans == [PLAN] and j.outcome.status == "regressed" and j.outcome.confirmation == ""
    # no baseline: nothing to sample by, a new measurement
    log, sampler = _Log(), _Sampler(1000.0)
    j = _gate(TIGHT, log, baseline_of=lambda mid: []).judge(_asked(sampler))
    assert sampler.plans == [PLAN] and j.outcome.status == "new" and j.base == ()


def test_the_gate_widens_on_a_noisy_host_and_is_strict_when_asked() -> None:
    log, sampler = _Log(), _Sampler(930.0)
    j = _gate(TIGHT, log, by_noise=False).judge(_asked(sampler))
    assert j.outcome.status == "inconclusive" and j.extra_rounds == 0  # cannot fail: not re-measured
    j = _gate(TIGHT, _Log(), by_noise=False, strict=True).judge(_asked(_Sampler(930.0)))
    assert j.extra_rounds == 2
    j = _gate(TIGHT, _Log(), by_noise=False, noisy=lambda: True, max_rounds=0).judge(_asked(_Sampler(1200.0)))
    assert j.outcome.status == "inconclusive"
    assert _gate(TIGHT, _Log(), by_noise=False, max_rounds=0).judge(_asked(_Sampler(1200.0))).outcome.status == \
        "regressed"
    gated = _gate(TIGHT, _Log(), by_noise=False, gated=("p50", "p99"), max_rounds=0).judge(_asked(_Sampler(1200.0)))
    assert {gated.outcome.stat, *(o.stat for o in gated.outcome.others)} == {"p50", "p99"}


def test_the_gate_samples_by_its_gated_statistics_and_confirms_only_what_regressed() -> None:
    rng = np.random.default_rng(4)

    def run(level: float) -> Any:  # p50 as before, p99 twice as fast as now and noisy within the run
        return SimpleNamespace(blocks=[BlockStats(100, 1000.0, 1000.0, level * float(np.exp(rng.normal(0, 0.3))),
                                                  1000.0, 1000.0) for _ in range(20)])

    base = [run(x) for x in (500.0, 520.0, 480.0)]
    log, sampler = _Log(), _Sampler(1000.0)
    j = _gate(base, log, gated=("p50", "p99"), max_rounds=0).judge(_asked(sampler))
    # p99's noisy blocks need every block: the plan is kept, and nothing is noted
    assert stored.plan_by_noise(PLAN, base, ("p50",)).blocks < PLAN.blocks
    assert sampler.plans == [stored.plan_by_noise(PLAN, base, ("p50", "p99"))] == [PLAN]
    assert ("note", stored.NOISE_NOTE) not in log.calls
    assert [c for c in log.calls if c[0] == "confirm"] == [("confirm", "p99", "t.py::test[f]")]
    assert j.outcome.status == "regressed" and j.outcome.stat == "p99" and j.outcome.others[0].status == "unchanged"
    # gating p50 alone, its steady blocks decide how many a round takes
    sampler = _Sampler(1000.0)
    _gate(base, _Log(), gated=("p50",), max_rounds=0).judge(_asked(sampler))
    assert sampler.plans == [stored.plan_by_noise(PLAN, base, ("p50",))] != [PLAN]


def test_the_gate_takes_two_more_rounds_by_default() -> None:
    args = dict(baseline_of=lambda mid: [], gated=("p99",), strict=False, by_noise=True, noisy=lambda: False,
                progress=_Log(), note_once=print, confirmation=None)
    assert stored.StoredGate(**args).max_rounds == 2  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- runs saved close together


def test_runs_span_from_their_stamps() -> None:
    assert stored.runs_span_s(["2026-12-04T10:00:00Z", "2026-12-04T09:00:01Z", "2026-12-04T09:30:00Z"]) == 3599.0
    assert stored.runs_span_s(["2026-12-04T10:00:00Z"]) is None
    assert stored.runs_span_s([]) is None
    assert stored.runs_span_s(["2026-12-04T10:00:00Z", "yesterday"]) is None
    assert stored.runs_span_s(["2026-12-04T10:00:00Z", None]) is None  # type: ignore[list-item]


def test_runs_within_an_hour_widen_the_verdict() -> None:
    def gate(*stamps: str) -> stored.StoredGate:
        return _gate(TIGHT, _Log(), runs_created=stamps)

    assert gate("2026-12-04T09:00:01Z", "2026-12-04T10:00:00Z").drift == stored.CLOSE_RUNS_SPREAD  # 3599 s
    assert gate("2026-12-04T09:00:00Z", "2026-12-04T10:00:00Z").drift == 0.0  # exactly an hour: far enough
    assert gate("2026-12-04T09:00:00Z").drift == 0.0 and gate().drift == 0.0
    log, sampler = _Log(), _Sampler(1200.0)
    close = _gate(TIGHT, log, by_noise=False, max_rounds=0, runs_created=("2026-12-04T09:00:00Z",
                                                                           "2026-12-04T09:59:00Z"))
    j = close.judge(_asked(sampler))
    assert j.outcome == verdict.compare([np.full(20, 1200.0)], [np.full(20, 1000.0)] * 3, tolerance_pct=10,
                                        extra_spread=stored.CLOSE_RUNS_SPREAD)
    assert [c for c in log.calls if c[0] == "note"] == [(
        "note", "the baseline's runs were saved within 59 min of each other: their spread is of minutes, not the "
        "drift between days, so the stored gate assumes 20% more (save runs at least 1 h apart to let it learn this "
        "host's own)")]
    # no baseline for this measurement: nothing to note
    log = _Log()
    _gate(TIGHT, log, baseline_of=lambda mid: [], runs_created=("2026-12-04T09:00:00Z", "2026-12-04T09:20:00Z")
          ).judge(_asked(_Sampler(1000.0)))
    assert not [c for c in log.calls if c[0] == "note"]


def test_drift_and_a_noisy_host_add_in_quadrature() -> None:
    s, _ = _settle(1200.0, TIGHT, max_rounds=0, noisy=True, drift=0.1)
    assert s.verdict == verdict.compare([np.full(20, 1200.0)], [np.full(20, 1000.0)] * 3, tolerance_pct=10,
                                        extra_spread=float(np.hypot(stored.NOISY_SPREAD, 0.1)))
    s, _ = _settle(1200.0, TIGHT, max_rounds=0, drift=0.1)
    assert s.verdict == verdict.compare([np.full(20, 1200.0)], [np.full(20, 1000.0)] * 3, tolerance_pct=10,
                                        extra_spread=0.1)
