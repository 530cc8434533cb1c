"""pytest-benchmark's rounds as a measurement that takes turns: the ``Sampler`` through which
the paired gate (``--hostperf-against``, and a stored verdict confirmed or settled paired)
measures a pytest-benchmark test, on the head and on the base alike.

A round is pytest-benchmark's own: its runner (``_make_runner``: its timer, its garbage-collector
setting) timing ``k`` iterations, or for ``benchmark.pedantic(..., setup=...)`` the round
pytest-benchmark runs (set-up, runner, tear-down). hostperf's sampling loop (``measure.sampling``)
calls one round at a time as a self-timed call, so the rounds run in hostperf's blocks and each
block waits for its turn with the other side's on one CPU; each value is then the round's time
per iteration, as pytest-benchmark stores it (``batch`` = the iterations per round).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pytest_hostperf.errors import MeasurementError
from pytest_hostperf.run.fixture import controlled

if TYPE_CHECKING:
    from pytest_hostperf.measure.sampling import Plan, Samples, TimerInfo, Turns
    from pytest_hostperf.run.context import RunLog
    from pytest_hostperf.run.settings import Controls
    from pytest_hostperf.store.records import HostState

#: One round of ``k`` iterations, returning its time in seconds.
RoundOf = Callable[[int], Callable[[], float]]


@dataclass(frozen=True, slots=True)
class RoundsSampler:
    """Samples pytest-benchmark rounds. ``iterations``: the rounds' size when the test fixes it
    (``pedantic``); else ``calibrate()`` (pytest-benchmark's own calibration) chooses it, where no
    plan carries the head's (the pairing's probe, a measurement taken alone)."""

    round_of: RoundOf
    calibrate: Callable[[], int] | None
    iterations: int | None
    timer: TimerInfo
    controls: Controls
    log: RunLog

    def controlled(self) -> contextlib.AbstractContextManager[HostState]:
        return controlled(self.log, self.controls)

    def sample(self, plan: Plan, turns: Turns | None) -> Samples:
        from pytest_hostperf.measure import sampling  # numpy: loaded by the first benchmark

        k = plan.batch or self.iterations or (self.calibrate() if self.calibrate is not None else 1)
        one = self.round_of(k)

        def timed() -> int:
            return int(one() * 1e9)

        raw = sampling.sample(timed, plan=replace(plan, batch=None), timer=self.timer, self_timed=True, turns=turns)
        return replace(raw, values=raw.values / k, batch=k, calls=raw.calls * k)


def runner_rounds(runner: Callable[..., Any]) -> RoundOf:
    """``benchmark(fn)``'s rounds: its runner over ``range(k)``, as pytest-benchmark calls it."""
    def round_of(k: int) -> Callable[[], float]:
        loops = range(k)
        return lambda: float(runner(loops))
    return round_of


def pedantic_rounds(make_runner: Callable[..., Any], target: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any] | None, setup: Callable[[], Any] | None,
                    teardown: Callable[..., Any] | None) -> tuple[RoundOf, Callable[[], Any]]:
    """``benchmark.pedantic``'s rounds, each as pytest-benchmark 4.0-5.3 runs one: ``setup()``'s
    arguments (when it returns them), a runner made for them, ``teardown`` after it; and one more
    call for the result pedantic returns. Written here because pytest-benchmark runs its rounds
    inside its own loop, which cannot take turns."""
    kwargs = kwargs or {}
    has_args = bool(args or kwargs)

    def arguments() -> tuple[tuple[Any, ...], dict[str, Any]]:
        if setup is None:
            return args, kwargs
        got = setup()
        if not got:
            return args, kwargs
        if has_args:
            raise TypeError("Can't use `args` or `kwargs` if `setup` returns the arguments.")
        a, kw = got
        return tuple(a), dict(kw)

    def once() -> Any:
        a, kw = arguments()
        result = target(*a, **kw)
        if teardown is not None:
            teardown(*a, **kw)
        return result

    def round_of(k: int) -> Callable[[], float]:
        if k > 1 and setup is not None:
            raise MeasurementError(f"pytest-benchmark's pedantic rounds with setup run 1 iteration, not {k}")
        loops = range(k) if k > 1 else None

        def one() -> float:
            a, kw = arguments()
            out = make_runner(target, a, kw)(loops)
            if teardown is not None:
                teardown(*a, **kw)
            return float(out if loops else out[0])
        return one
    return round_of, once


def check_pedantic(rounds: object, warmup_rounds: object, iterations: object, setup: object) -> None:
    """pytest-benchmark's own checks of ``pedantic``'s arguments, with its messages."""
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError('Must have positive int for `iterations`.')
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError('Must have positive int for `rounds`.')
    if not isinstance(warmup_rounds, int) or warmup_rounds < 0:
        raise ValueError('Must have positive int for `warmup_rounds`.')
    if iterations > 1 and setup:
        raise ValueError("Can't use more than 1 `iterations` with a `setup` function.")
