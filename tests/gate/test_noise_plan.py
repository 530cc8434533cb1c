"""``gate.plan_by_noise``: a round compared with a baseline takes only the blocks its verdict can use."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from pytest_hostperf.gate import stored as gate
from pytest_hostperf.measure import sampling

PLAN = sampling.Plan(samples=20_000, blocks=20, max_seconds=3.0)


def _run(block_p99s: Any) -> Any:
    """A stored measurement as plan_by_noise reads it: blocks with ``get(stat)``."""
    return SimpleNamespace(blocks=[SimpleNamespace(get=lambda s, v=float(v): v) for v in block_p99s])


def _baseline(run_levels: list[float], within: float, blocks: int = 20, seed: int = 1) -> list[Any]:
    """Runs whose level moves by ``run_levels`` (log scale) and whose blocks scatter by ``within``."""
    rng = np.random.default_rng(seed)
    return [_run(1e5 * np.exp(level + rng.normal(0, within, blocks))) for level in run_levels]


def test_run_to_run_spread_far_above_a_rounds_error_takes_few_blocks() -> None:
    # runs 30% apart, blocks 2% apart: 5 blocks already put a round's error far below σ / 3
    plan = gate.plan_by_noise(PLAN, _baseline([0.0, 0.3, -0.3, 0.25, -0.2], within=0.02))
    assert plan.blocks == gate.MIN_NOISE_BLOCKS
    # every block as large and as long as before: samples and time shrink in proportion
    assert plan.samples == PLAN.samples * plan.blocks // PLAN.blocks
    assert plan.max_seconds == pytest.approx(PLAN.max_seconds * plan.blocks / PLAN.blocks)


def test_blocks_as_noisy_as_the_runs_keep_the_whole_plan() -> None:
    # runs 3% apart (the floor), blocks 30% apart: every block is needed
    assert gate.plan_by_noise(PLAN, _baseline([0.0, 0.03, -0.03, 0.02, -0.02], within=0.3)) == PLAN


def test_in_between_the_blocks_grow_with_the_blocks_noise() -> None:
    levels = [0.0, 0.15, -0.15, 0.12, -0.1]
    taken = [gate.plan_by_noise(PLAN, _baseline(levels, within=w)).blocks for w in (0.02, 0.1, 0.2, 0.4)]
    assert taken == sorted(taken) and taken[0] < taken[-1] == PLAN.blocks


def test_no_baseline_or_few_blocks_keep_the_plan() -> None:
    assert gate.plan_by_noise(PLAN, []) == PLAN
    small = sampling.Plan(samples=100, blocks=gate.MIN_NOISE_BLOCKS, max_seconds=1.0)
    assert gate.plan_by_noise(small, _baseline([0.0, 0.3, -0.3], within=0.01)) == small


def test_every_gated_statistic_gets_the_blocks_it_needs() -> None:
    # p99 is tight within runs; p999 (here) is as noisy as the runs move: gating both takes the whole plan
    rng = np.random.default_rng(3)

    def block(level: float) -> Any:
        by_stat = {"p99": 1e5 * np.exp(level + rng.normal(0, 0.01)), "p999": 1e6 * np.exp(rng.normal(0, 0.5))}
        return SimpleNamespace(get=by_stat.__getitem__)

    runs = [SimpleNamespace(blocks=[block(lv) for _ in range(20)]) for lv in (0.0, 0.3, -0.3, 0.25, -0.2)]
    assert gate.plan_by_noise(PLAN, runs, ("p99",)).blocks == gate.MIN_NOISE_BLOCKS
    assert gate.plan_by_noise(PLAN, runs, ("p99", "p999")) == PLAN
