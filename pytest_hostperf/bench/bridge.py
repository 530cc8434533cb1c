"""pytest-benchmark under ``--hostperf``: its tests run under hostperf's host control, and their
rounds become a hostperf measurement ``<test>[benchmark]`` (gated on p99 when timed per call).

A plugin object of its own, registered by ``plugin.py`` only under ``--hostperf`` when
pytest-benchmark is installed. The rounds' conversion and plan live in ``pbench.py``. Two
things are changed on each test's ``benchmark`` fixture, both outside its timed rounds:

- **Fixed rounds**: after pytest-benchmark calibrates, the rounds and iterations are
  set to the baseline's (``pbench.fixed_plan``), so a run's percentiles compare like for like
  with the stored ones; calibration alone no longer moves them.
- **Paced rounds**: at SCHED_FIFO, rounds that ran back to back for ``PACE_RUN_S`` are followed
  by a sleep of ``sampling.Plan.pause_fraction`` of that time, so the test keeps its core busy
  at most ~89% of any second and RT throttling (950 ms a second here) never stalls a round.

Both reach into the fixture's private ``_calibrate_timer``, ``_make_runner``, ``_min_rounds`` and
``_max_time`` (the same in pytest-benchmark 4.0 to 5.3); where a version lacks them the run
says so and the rounds are pytest-benchmark's own.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hostperf.run.fixture import Recorder, controlled, rounds_plan
from pytest_hostperf.run.session import HostperfSession

if TYPE_CHECKING:
    from pytest_hostperf.measure.sampling import TimerInfo
    from pytest_hostperf.run.context import RunLog
    from pytest_hostperf.store.pbench import RoundsPlan

#: Longest stretch of back-to-back rounds at SCHED_FIFO before a pause.
PACE_RUN_S = 0.1
#: The run's note when pytest-benchmark tests were measured with fixed rounds.
FIXED_NOTE = ("pytest-benchmark tests: rounds and iterations fixed by hostperf after pytest-benchmark's calibration "
              "(the baseline's counts, or without a baseline pytest-benchmark's own, which --hostperf-save then keeps "
              "for later runs), and paced at SCHED_FIFO; n shows the rounds")
#: The run's note when ``--benchmark-disable`` left pytest-benchmark tests unmeasured.
DISABLED_NOTE = ("--benchmark-disable: pytest-benchmark tests ran their function once, unmeasured, so hostperf "
                 "measured and gated nothing of them; add --benchmark-enable to measure them")
#: The run's note when --hostperf-against pairs pytest-benchmark tests.
PAIRED_NOTE = ("pytest-benchmark tests paired: after pytest-benchmark's calibration on the head (its iterations "
               "per round), each side's rounds fill --benchmark-max-time, in blocks taking turns with the base's on "
               "one CPU; the verdict is on the p99 of round times (batched(k): a round's time per iteration); "
               "pytest-benchmark's table and files show the head's rounds")
#: The fixture attributes this module changes (see the module docstring).
_PRIVATE = ("_calibrate_timer", "_make_runner", "_min_rounds", "_max_time")


class Pacer:
    """Sleeps after a round, outside its timing, once rounds have run ``run_s`` since the last
    pause: ``fraction`` of that time (at least ``min_pause_s``)."""

    def __init__(self, *, fraction: float, min_pause_s: float, run_s: float = PACE_RUN_S,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.fraction, self.min_pause_s, self.run_s = fraction, min_pause_s, run_s
        self.clock, self.sleep = clock, sleep
        self.since = clock()
        self.pauses = 0  # read back for the run's note: how often, and how long, it paused
        self.paused_s = 0.0

    def after_round(self) -> None:
        busy = self.clock() - self.since
        if busy >= self.run_s:
            pause = max(self.min_pause_s, busy * self.fraction)
            self.sleep(pause)
            self.pauses += 1
            self.paused_s += pause
            self.since = self.clock()


class BenchBridge:
    """Wraps the call of each test that uses pytest-benchmark's ``benchmark`` fixture."""

    def __init__(self, run: HostperfSession) -> None:
        self.run = run
        # the run's pacing, folded into one note (one line per test made a 330-line summary)
        self.paced_tests = 0
        self.pauses = 0
        self.paused_s = 0.0
        self.rounds_s = 0.0
        self.batched: dict[int, int] = {}  # iterations per round -> tests
        self.folded: dict[str, str] = {}  # note key -> the note's text now

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, Any]:
        bench = None
        if "benchmark" in getattr(item, "fixturenames", ()):
            bench = item.funcargs.get("benchmark")  # type: ignore[attr-defined]
        if bench is None:
            return (yield)
        if not getattr(bench, "enabled", False):
            self._note(DISABLED_NOTE)
            return (yield)
        from pytest_hostperf.measure import sampling  # numpy: loaded by the first benchmark
        from pytest_hostperf.store import pbench  # numpy: loaded by the first benchmark

        rec = self.run.recorder(item)
        if self.run.pairing is not None or self.run.replica is not None:
            return (yield from self._paired(bench, rec))
        mid = f"{rec.nodeid}[benchmark]"
        base = self.run.ctx.baseline_of(mid)
        chosen: list[RoundsPlan] = []
        budget = 0.0
        missing = [a for a in _PRIVATE if not hasattr(bench, a)]
        if missing:
            self._note(f"pytest-benchmark's fixture lacks {', '.join(missing)} in this version: its rounds are its "
                       "own (calibrated each run), not paced at SCHED_FIFO, and a comparison with different rounds "
                       "is inconclusive")
        else:
            budget = float(bench._max_time)  # --benchmark-max-time, before the fixed plan sets it to 0
            _fix_rounds(bench, base[-1] if base else None, budget, chosen)
        pacer = None
        runners: list[Callable[..., Any]] = []
        if not missing:
            if rec.controls.rt:
                plan = sampling.Plan()
                pacer = Pacer(fraction=plan.pause_fraction, min_pause_s=plan.min_pause_seconds)
            _wrap_runners(bench, pacer, runners)
        with controlled(self.run.log, rec.controls) as host:
            outcome = yield
        meta = getattr(bench, "stats", None)
        data = getattr(getattr(meta, "stats", None), "data", None)
        if meta is None or not data:
            return outcome
        iterations = int(getattr(meta, "iterations", 1) or 1)
        raw = pbench.samples_from_data(data, iterations)
        if chosen:
            self._note(FIXED_NOTE)
            if chosen[0].capped:
                self._note(f"{mid}: rounds cut from the baseline's {base[-1].n} to {len(data)}, to stay within "
                           f"{pbench.ROUNDS_TIME_CAP:g}x --benchmark-max-time (the code is slower than then)")
        if pacer is not None and pacer.pauses:
            self._paced(pacer.pauses, pacer.paused_s, sum(data) * iterations)
        if iterations > 1:
            self._batched(iterations)
        again = None
        if chosen and len(runners) == 1:  # benchmark(fn): one runner, its rounds can be run again
            again = self._again(rec, runners[0], chosen[0], budget_s=budget)
        paced = {"pauses": pacer.pauses, "paused_s": round(pacer.paused_s, 6)} if pacer is not None else None
        rec.record_external(raw, name="benchmark", host=replace(host, timed_by="pytest-benchmark", paced=paced),
                            gate=True, again=again, plan=rounds_plan(budget or 1.0))
        return outcome

    def _paired(self, bench: Any, rec: Recorder) -> Generator[None, None, Any]:
        """Under ``--hostperf-against`` (and in its replica sessions): the test's rounds measured by
        the paired gate, in blocks taking turns with the base's (``bench/rounds.py``), then handed
        to pytest-benchmark as its own rounds, so its table, ``--benchmark-json`` and
        ``--benchmark-autosave`` show the head's rounds as it reports them."""
        missing = [a for a in (*_PRIVATE, "_make_stats", "_raw_pedantic") if not hasattr(bench, a)]
        if missing:
            self._note(f"pytest-benchmark's fixture lacks {', '.join(missing)} in this version: its tests are not "
                       "paired, and run as pytest-benchmark runs them")
            return (yield)
        _pair_rounds(bench, rec, self.run.ctx.instruments.timer, self.run.log)
        self._note(PAIRED_NOTE)
        return (yield)

    def _again(self, rec: Recorder, runner: Callable[..., Any], plan: RoundsPlan, *,
               budget_s: float) -> Callable[[], Any]:
        """Another round of the test's rounds, as pytest-benchmark ran them (its runner, as many
        rounds and iterations, under the same host control, paced), bounded by
        ``ROUNDS_TIME_CAP`` x its time budget; for the gate only: pytest-benchmark's own
        statistics keep its rounds."""
        from pytest_hostperf.store import pbench  # numpy: loaded by the first benchmark

        def again() -> Any:
            values: list[float] = []
            loops = range(plan.iterations)
            with controlled(self.run.log, rec.controls):
                deadline = time.monotonic() + pbench.ROUNDS_TIME_CAP * max(budget_s, 0.1)
                for _ in range(plan.rounds):
                    values.append(float(runner(loops)) / plan.iterations)
                    if time.monotonic() > deadline:
                        break
            return pbench.samples_from_data(values, plan.iterations)

        return again

    def _note(self, text: str) -> None:
        self.run.log.note_once(text)  # once per run (and the same line from every xdist worker)

    def _batched(self, iterations: int) -> None:
        """Add one batched test to the run's one line about them (replaced in place)."""
        self.batched[iterations] = self.batched.get(iterations, 0) + 1
        sizes = ", ".join(f"{n} at k={k}" for k, n in sorted(self.batched.items()))
        self._fold("batched", f"{sum(self.batched.values())} pytest-benchmark test(s) ran k > 1 iterations per round "
                              f"({sizes}): each is gated on the p99 of its rounds' times per iteration, shown as "
                              "batched(k) (a round's mean of k calls, whose p99 understates the calls' own tail), "
                              "and compared only with runs of the same k; time one per call with "
                              "benchmark.pedantic(fn, rounds=..., iterations=1)")

    def _fold(self, key: str, text: str) -> None:
        """One note per ``key`` for the whole run, replaced in place as tests add to it."""
        notes = self.run.log.notes
        old = self.folded.get(key)
        if old in notes:
            notes[notes.index(old)] = text
        else:
            notes.append(text)
        self.folded[key] = text

    def _paced(self, pauses: int, paused_s: float, rounds_s: float) -> None:
        """Add one test's pacing to the run's one line about it (replaced in place, so the summary
        says it once, with the counts and totals)."""
        self.paced_tests += 1
        self.pauses += pauses
        self.paused_s += paused_s
        self.rounds_s += rounds_s
        self._fold("paced", f"paced {self.paced_tests} pytest-benchmark test(s) at SCHED_FIFO: {self.pauses:,} "
                            f"pause(s), {self.paused_s:.3f} s outside their rounds, which ran {self.rounds_s:.3f} s "
                            "(each test's in the JSON report: host.paced)")


def _pair_rounds(bench: Any, rec: Recorder, timer: TimerInfo, log: RunLog) -> None:
    """Route ``bench``'s rounds through ``rec.measure_rounds`` (the paired gate): ``benchmark(fn)``
    after pytest-benchmark's calibration (its iterations are the probe's), ``benchmark.pedantic``
    in place of pytest-benchmark's rounds loop; what was measured then fills pytest-benchmark's
    own statistics (its runner replays the rounds' times, without calling the function)."""
    import numpy as np  # numpy: loaded by the first benchmark

    from pytest_hostperf.bench import rounds as pbrounds  # numpy: loaded by the first benchmark

    plan = rounds_plan(float(bench._max_time))  # pytest-benchmark's time budget, on each side
    make, calibrate = bench._make_runner, bench._calibrate_timer
    replay: deque[float] = deque()

    def sampler(round_of: pbrounds.RoundOf, *, calibrate: Callable[[], int] | None = None,
                iterations: int | None = None) -> pbrounds.RoundsSampler:
        return pbrounds.RoundsSampler(round_of, calibrate, iterations, timer, rec.controls, log)

    def maker(*args: Any, **kwargs: Any) -> Callable[..., Any]:
        runner = make(*args, **kwargs)

        def replayed(loops_range: Any, *rest: Any, **kw: Any) -> Any:
            return replay.popleft() if replay else runner(loops_range, *rest, **kw)
        return replayed

    def paired_calibration(runner: Any) -> tuple[float, int, range]:
        _, raw = rec.measure_rounds(sampler(pbrounds.runner_rounds(runner),
                                            calibrate=lambda: int(calibrate(runner)[1])), plan)
        k = raw.batch
        replay.extend(float(v) * k / 1e9 for v in raw.values)  # seconds per round, as the runner returns them
        bench._min_rounds, bench._max_time, bench._warmup = len(raw.values), 0.0, 0
        if getattr(bench, "_precision", None) is not None:
            bench._precision = None
        return float(np.median(raw.values)) * k / 1e9, k, range(k)

    def paired_pedantic(target: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
                        setup: Callable[[], Any] | None = None, teardown: Callable[..., Any] | None = None,
                        rounds: int = 1, warmup_rounds: int = 0, iterations: int = 1) -> Any:
        pbrounds.check_pedantic(rounds, warmup_rounds, iterations, setup)
        round_of, once = pbrounds.pedantic_rounds(make, target, args, kwargs, setup, teardown)
        _, raw = rec.measure_rounds(sampler(round_of, iterations=iterations), plan)
        stats = bench._make_stats(raw.batch)
        for v in raw.values:
            stats.update(float(v) * raw.batch / 1e9)
        return once()  # the function's result, as pedantic returns it

    bench._make_runner = maker
    bench._calibrate_timer = paired_calibration
    bench._raw_pedantic = paired_pedantic


def _fix_rounds(bench: Any, stored: Any, budget: float, chosen: list[RoundsPlan]) -> None:
    """After pytest-benchmark's calibration, set the rounds and iterations of ``pbench.fixed_plan``
    for its time ``budget`` (appended to ``chosen``): ``rounds = max(ceil(max_time / duration), min_rounds)`` then
    gives exactly them, and its precision stop (5.3) is off so that none is dropped."""
    from pytest_hostperf.store import pbench  # numpy: loaded by the first benchmark

    calibrate = bench._calibrate_timer

    def fixed(runner: Any) -> tuple[float, int, range]:
        duration, loops, _ = calibrate(runner)
        plan = pbench.fixed_plan(duration, loops, min_rounds=int(bench._min_rounds), max_time_s=budget,
                                 baseline=(stored.n, stored.batch) if stored is not None else None)
        bench._min_rounds, bench._max_time = plan.rounds, 0.0
        if getattr(bench, "_precision", None) is not None:
            bench._precision = None
        chosen.append(plan)
        return duration * plan.iterations / max(loops, 1), plan.iterations, range(plan.iterations)

    bench._calibrate_timer = fixed


def _wrap_runners(bench: Any, pacer: Pacer | None, made: list[Callable[..., Any]]) -> None:
    """Every runner the fixture makes is kept in ``made`` and, with a ``pacer``, sleeps after a
    round when it says (outside the round's timing)."""
    make = bench._make_runner

    def maker(*args: Any, **kwargs: Any) -> Callable[..., Any]:
        runner = make(*args, **kwargs)

        def paced(*a: Any, **k: Any) -> Any:
            out = runner(*a, **k)
            if pacer is not None:
                pacer.after_round()
            return out

        made.append(paced)
        return paced

    bench._make_runner = maker
