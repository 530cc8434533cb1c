"""The ``hostperf`` fixture object: measures a function call by call under host control.

One measurement's trip, one way down: the test's host controls (``settings.resolve_controls``)
and a sampler that applies them (``host.control``) and samples (``measure``), handed as an
``Asked`` to the run's gate (``gate``), which decides how many rounds and against what; the
``Judged`` that comes back, with its budgets checked (``stats.checks``), becomes a typed record
(``store.records``) appended to the run's log. The statistics and the gate load with the first
measurement (numpy), not when pytest starts: those imports stand where they are used.
"""
from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hostperf.errors import HostperfWarning, InvalidArgument
from pytest_hostperf.host import control, sched
from pytest_hostperf.run import placement
from pytest_hostperf.run.context import Entry, RunContext, RunLog
from pytest_hostperf.run.settings import (
    BUDGET_KEYS,
    Controls,
    MarkerSettings,
    RunSettings,
    measurement_budgets,
    parse_marker,
    resolve_controls,
)
from pytest_hostperf.units import STATS, format_ns, parse_duration

if TYPE_CHECKING:
    from pytest_hostperf.gate.seam import Asked, Gate, Judged
    from pytest_hostperf.measure.counters import Reader
    from pytest_hostperf.measure.device import CudaSurface
    from pytest_hostperf.measure.openloop import OpenLoop
    from pytest_hostperf.measure.sampling import Plan, Samples, TimerInfo, Turns
    from pytest_hostperf.pairing.sides import Sampler
    from pytest_hostperf.stats.checks import BudgetCheck, SpeedupCheck, Sweep
    from pytest_hostperf.stats.result import Result
    from pytest_hostperf.stats.verdict import Verdict
    from pytest_hostperf.store.records import HostState

#: hostperf's own keywords: never passed to the measured function (``kwargs={...}`` passes those).
OWN_KEYWORDS = ("name", "samples", "self_timed", "timer", "rate", "arrivals", *BUDGET_KEYS, "warm", "kwargs")


@contextlib.contextmanager
def controlled(log: RunLog, controls: Controls) -> Iterator[HostState]:
    """Apply ``controls`` (pin, mlock, SCHED_FIFO; always restored) and yield the host state read
    back from the OS inside them, not copied from the options. ``rt='required'`` skips the test
    when SCHED_FIFO was not applied; each control that was not applied is noted once per run."""
    from pytest_hostperf.store.records import HostState  # numpy: loaded by the first measurement

    with control.controlled(cpus=controls.cpus, rt=controls.rt, mlock=controls.mlock) as applied:
        during = control.snapshot()
        controls.skip_unless_rt(next((a for a in applied if a.control == "rt" and not a.applied), None))
        yield HostState(cpus=tuple(during.affinity), policy=during.policy, priority=during.priority,
                        memory_locked=during.memory_locked, controls=tuple(a.as_dict() for a in applied))
    log.controls_not_applied(applied)


@dataclass(frozen=True, slots=True)
class CallSampler:
    """Samples ``fn(*args, **kwargs)``: the gate's and the pairing's ``Sampler``."""
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    timer: TimerInfo
    self_timed: bool
    controls: Controls
    log: RunLog
    counters: Reader | None = None
    cuda: CudaSurface | None = None  # timer="cuda": each call's device time from CUDA events
    open_loop: OpenLoop | None = None  # rate=: calls issued at a rate, timed from their intended start

    def controlled(self) -> contextlib.AbstractContextManager[HostState]:
        return controlled(self.log, self.controls)

    def sample(self, plan: Plan, turns: Turns | None) -> Samples:
        from pytest_hostperf.measure import sampling  # numpy: loaded by the first measurement

        return sampling.sample(self.fn, self.args, self.kwargs, plan=plan, timer=self.timer,
                               self_timed=self.self_timed, counters=self.counters, turns=turns, cuda=self.cuda,
                               open_loop=self.open_loop)


class Recorder:
    """The ``hostperf`` fixture: call it to measure a function's per-call latency.

    >>> r = hostperf(model.predict, features, name="predict")   # doctest: +SKIP
    >>> r.p99, r.mode                                             # doctest: +SKIP
    """

    def __init__(self, ctx: RunContext, log: RunLog, gate: Gate, item: pytest.Item, *,
                 rounds_gate: Gate | None = None, records_only: bool = False,
                 progress_end: Callable[[], None] = lambda: None) -> None:
        self._ctx = ctx
        self._log = log
        self._gate = gate
        self._rounds_gate = rounds_gate  # pytest-benchmark's rounds (record_external), under --hostperf
        self._records_only = records_only  # smoke runs and the base side of a pairing: nothing decided
        self._progress_end = progress_end
        self._item = item
        # the id measurements are stored under: without xdist's "@group" suffix, so a
        # baseline saved by a gathered xdist run matches a plain run's
        self._nodeid = placement.ungrouped(item.nodeid)
        self.settings: MarkerSettings = parse_marker(item)
        self.controls: Controls = resolve_controls(ctx.settings, self.settings)
        self.entries: list[Entry] = []
        self.checks: list[BudgetCheck] = []
        self.verdicts: dict[str, Verdict] = {}
        self.why: dict[str, str] = {}  # measurement id -> counters that changed against the baseline
        self.speedups: list[SpeedupCheck] = []
        self.sweeps: list[Sweep] = []
        self.knee_failures: list[str] = []  # sweeps whose knee fell against the base
        if ctx.full and self.controls.rt_required:
            ok, reason, fix = sched.rt_available(self.controls.rt or sched.DEFAULT_RT_PRIORITY)
            if not ok:
                pytest.skip(f"rt='required' but SCHED_FIFO is not available: {reason}; fix: {fix}")

    @property
    def nodeid(self) -> str:
        """The test's node id as its measurements are stored (without xdist's ``@group``)."""
        return self._nodeid

    @property
    def results(self) -> list[Result]:
        return [e.result for e in self.entries]

    @property
    def tolerance(self) -> float:
        return self.settings.tolerance if self.settings.tolerance is not None else self._ctx.settings.tolerance

    def __call__(self, fn: Callable[..., Any], *args: Any, name: str | None = None,
                 samples: int | None = None, self_timed: bool = False, p99: str | float | None = None,
                 p999: str | float | None = None, max: str | float | None = None,  # budgets: the marker's keys
                 warm: object = None, timer: str = "wall", rate: str | float | None = None,
                 arrivals: str = "fixed", kwargs: Mapping[str, Any] | None = None, **fn_kwargs: Any) -> Result:
        """Measure ``fn(*args, **kwargs)`` call by call and return its ``Result``.

        ``name`` labels the measurement (default: the function's name); it must be unique
        within the test. ``samples`` overrides the marker and ``--hostperf-samples``.
        ``self_timed=True``: ``fn`` returns its own latency in ns (CUDA events, wake-up
        lateness), recorded instead of the wall time around the call. ``p99``, ``p999``,
        ``max``: this measurement's budgets (``"50us"``, parsed as the marker's), each replacing
        the marker's on that statistic for this measurement only; ``"off"`` lifts the marker's.
        ``warm``: buffers (numpy arrays, bytearrays, memoryviews) read through, one byte per
        cache line, before every block, outside its timing: what the calls find in the caches
        is then the buffers, not what the previous test left.
        ``timer="cuda"``: each call's latency is its device time, between two CUDA events
        recorded on the current stream around it (the host waits for the device once per
        block), and its host wall time is kept beside it (``wall_ns`` in the report); the
        measurement is labelled ``cuda-events``. Needs torch with a CUDA device (else a clear
        error naming the fix); without ``--hostperf-cpus`` or a marker's ``cpus`` it is pinned
        to a CPU local to the GPU where the GPU's NUMA node is known.
        ``rate="20k/s"``: open loop. The calls are issued at that rate (``arrivals="fixed"``
        intervals, or ``"poisson"``), each call's latency measured from its **intended** start (a
        call queued behind a stall counts its wait: no coordinated omission) and its service time
        from its actual start kept beside it; the achieved rate is reported, and a function that
        cannot keep up is ``saturated``: over any budget, never a passing comparison
        (docs/open-loop.md).
        Every other keyword goes to ``fn``; ``kwargs={...}`` passes ``fn`` keywords that share a
        name with one of hostperf's own (``name``, ``samples``, ``self_timed``, ``timer``, ``rate``,
        ``arrivals``, ``p99``, ``p999``, ``max``, ``warm``, ``kwargs``).
        """
        from pytest_hostperf.gate.seam import Asked  # numpy: loaded by the first measurement
        from pytest_hostperf.measure import sampling  # numpy: loaded where first used

        if not callable(fn):
            raise InvalidArgument(f"hostperf(fn, ...): {fn!r} is not callable; pass the function, not its result")
        given = {"p99": p99, "p999": p999, "max": max}  # `max` shadows the builtin below: not used as one
        kwargs = _call_kwargs(fn, kwargs, fn_kwargs, given)
        budgets = measurement_budgets(self.settings.budgets, given)
        name = name if name is not None else getattr(fn, "__qualname__", None) or type(fn).__name__
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"hostperf(..., name=...): {name!r} is not a non-empty string")
        if any(e.result.name == name for e in self.entries):
            raise InvalidArgument(f"hostperf: measurement name {name!r} is already used in this test; "
                                  "give each measurement its own name=...")
        if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
            raise InvalidArgument(f"hostperf(..., samples=...): {samples!r} is not a whole number >= 1")
        if timer not in ("wall", "cuda"):
            raise InvalidArgument(f"hostperf(..., timer=...): {timer!r} is not 'wall' or 'cuda'")
        cuda = None
        controls = self.controls
        if timer == "cuda":
            from pytest_hostperf.host import gpu  # numpy: loaded where first used
            from pytest_hostperf.measure import device  # numpy: loaded where first used

            cuda = device.cuda_surface()
            if controls.cpus is None:  # pinned near the GPU unless told where (issue 25)
                near = gpu.local_cpu()
                if near is not None:
                    controls = replace(controls, cpus=(near,))
        open_loop = None
        if rate is not None:
            import zlib

            from pytest_hostperf.measure import openloop  # numpy: loaded where first used

            if self_timed or timer != "wall":
                raise InvalidArgument("hostperf(..., rate=...): an open-loop measurement times each call from its "
                                      "intended start on the host clock; drop self_timed / timer")
            # Poisson arrivals: one schedule per measurement, the same on both sides of a pair
            open_loop = openloop.OpenLoop(openloop.parse_rate(rate), arrivals,
                                          seed=zlib.crc32(f"{self._nodeid}[{name}]".encode()))
        mid = f"{self._nodeid}[{name}]"
        base = self._ctx.baseline_of(mid)
        plan = replace(sampling_plan(self._ctx.settings, samples or self.settings.samples,
                                     batch=base[-1].batch if base else None), warm=sampling.warm_buffers(warm))
        instruments = self._ctx.instruments
        paired = self._ctx.settings.against is not None  # the paired head reads no counters in its turns
        sampler = CallSampler(fn, args, kwargs, instruments.timer, self_timed, controls, self._log,
                              None if paired else instruments.reader, cuda, open_loop)
        smoke = not self._ctx.full
        asked = Asked(mid=mid, nodeid=self._nodeid, name=name, plan=plan, tolerance=self.tolerance,
                      budgeted=bool(budgets), sampler=sampler,
                      summarize=lambda raw: self._summarize(raw, name=name, smoke=smoke))
        return self._judge(asked, budgets)

    def _judge(self, asked: Asked, budgets: Mapping[str, int] | None) -> Result:
        """Hand one measurement to the run's gate and keep what it judged (only the record where
        nothing is decided: a smoke run, a replica session)."""
        from pytest_hostperf.store import records  # numpy: loaded by the first measurement

        judged = self._gate.judge(asked)
        if self._records_only:  # nothing is decided: no budget, no verdict
            entry = Entry(judged.result, records.ResultRecord.of(judged.result))
            self.entries.append(entry)
            self._log.keep(entry)
            return judged.result
        return self._keep(judged, budgets=budgets)

    def measure_rounds(self, sampler: Sampler, plan: Plan, *, name: str = "benchmark") -> tuple[Result, Samples]:
        """Measure another tool's rounds (pytest-benchmark's, through ``sampler``) by the run's
        gate as a hostperf measurement ``name``: paired with the base under ``--hostperf-against``,
        in turns with the head in a replica session. Returns the result and the rounds it rests on
        (the head replicas' under pairing), for the tool's own statistics."""
        from pytest_hostperf.gate.seam import Asked  # numpy: loaded by the first measurement

        taken: list[Samples] = []

        def summarize(raw: Samples) -> Result:
            taken.append(raw)
            return self._summarize(raw, name=name)

        asked = Asked(mid=f"{self._nodeid}[{name}]", nodeid=self._nodeid, name=name, plan=plan,
                      tolerance=self.tolerance, budgeted=False, sampler=sampler, summarize=summarize)
        res = self._judge(asked, None)  # the marker's budgets, as record_external's
        return res, taken[-1]

    def _summarize(self, raw: Samples, *, name: str, smoke: bool = False) -> Result:
        from pytest_hostperf.stats import result  # numpy: loaded by the first measurement

        return result.summarize(raw, nodeid=self._nodeid, name=name, group=self.settings.group, smoke=smoke,
                                 series=self.settings.series)

    def _keep(self, judged: Judged, *, budgets: Mapping[str, int] | None = None) -> Result:
        """Record a judged measurement in this test and the run, and check its budgets (``budgets``:
        this measurement's, from :func:`settings.measurement_budgets`; None: the marker's)."""
        from pytest_hostperf.gate.seam import NotCompared  # numpy: loaded by the first measurement
        from pytest_hostperf.stats import checks as budget_checks  # numpy: loaded where first used
        from pytest_hostperf.stats import counter_changes  # numpy: loaded where first used
        from pytest_hostperf.stats.checks import saturation_text as checks_saturation  # numpy: loaded where first used
        from pytest_hostperf.store import records  # numpy: loaded where first used

        self._progress_end()
        res = judged.result
        saturated = checks_saturation(res)
        if saturated:  # said in the summary with the rate achieved, whatever the budgets and verdicts
            self._log.note(f"{res.id}: {saturated}")
        budgets = self.settings.budgets if budgets is None else budgets
        checks = [budget_checks.check_budget(res, stat, budget) for stat, budget in budgets.items()]
        self.checks.extend(checks)
        cur = res.counters
        before = [m.counters for m in judged.base if m.counters]
        why = None
        if cur and before:
            changes = counter_changes.changed(cur, before)
            if changes:
                why = self.why[res.id] = counter_changes.describe_changes(changes)
        outcome = judged.outcome
        verdict: records.VerdictRecord | None = None
        if isinstance(outcome, NotCompared):  # shown as new, with the reason (p99*)
            verdict = records.VerdictRecord(status="new", stat="p99", ratio=None, interval=None, baseline_ns=None,
                                            current_ns=int(round(res.gate_p99)), tolerance_pct=self.tolerance,
                                            baseline_runs=0, extra_rounds=judged.extra_rounds, reason=outcome.why)
        elif outcome is not None:
            if res.saturated and outcome.status != "regressed":  # never a passing comparison of a queue
                outcome = replace(outcome, status="inconclusive",
                                  reason=f"{checks_saturation(res)}; {outcome.reason}")
            self.verdicts[res.id] = outcome
            verdict = records.VerdictRecord.of(outcome, judged.extra_rounds)
        record = records.ResultRecord.of(res, budgets=[records.BudgetRecord.of(c) for c in checks], host=judged.host,
                                         verdict=verdict, why=why, not_gated=judged.not_gated, counters=cur)
        entry = Entry(res, record, None if isinstance(outcome, NotCompared) else outcome)
        self.entries.append(entry)
        self._log.keep(entry)
        return res

    def record_external(self, raw: Samples, *, name: str, host: HostState, gate: bool,
                        why_not: str | None = None, again: Callable[[], Samples] | None = None,
                        plan: Plan | None = None) -> Result:
        """Record samples timed by another tool (pytest-benchmark) as one measurement, judged by the
        run's rounds gate: compared with the baseline when ``gate``, else reported with ``why_not``
        in place of a verdict. ``again()``, where the tool's timing loop can be run again
        (pytest-benchmark's runner for as many rounds): a regressed verdict is re-measured up to
        ``MAX_ROUNDS`` times and must hold over the rounds, as for hostperf's own measurements, then
        confirmed paired with ``plan`` (the rounds' plan, :func:`rounds_plan`)."""
        from pytest_hostperf.gate.rounds import TakenRounds  # numpy: loaded by the first measurement
        from pytest_hostperf.gate.seam import Asked  # numpy: loaded where first used
        from pytest_hostperf.measure import sampling  # numpy: loaded where first used

        if self._rounds_gate is None:
            raise InvalidArgument("hostperf: samples timed by another tool are recorded under --hostperf only")
        asked = Asked(mid=f"{self._nodeid}[{name}]", nodeid=self._nodeid, name=name, plan=plan or sampling.Plan(),
                      tolerance=self.tolerance, budgeted=False, sampler=TakenRounds(raw, host, again),
                      summarize=lambda x: self._summarize(x, name=name),
                      not_gated=None if gate else (why_not or "not gated"), repeatable=again is not None)
        return self._keep(self._rounds_gate.judge(asked))

    def sweep(self, fn: Callable[..., Any], *args: Any, rates: Sequence[str | float], p99: str | float | None = None,
              within: float = 3.0, name: str | None = None, arrivals: str = "fixed", samples: int | None = None,
              kwargs: Mapping[str, Any] | None = None, **fn_kwargs: Any) -> Sweep:
        """Latency against offered rate: ``fn`` measured open-loop at each of ``rates`` (each a
        measurement ``<name>@<rate>``, gated as any other, with no budget of its own), and the
        **knee**: the highest rate whose p99 stays within ``p99`` (a budget, ``"200us"``), or
        without one within ``within`` x the unloaded p99 (the service time's p99 at the lowest
        rate). The knee is gated too: against the baseline or the base measured now, a knee
        that falls fails the test (``knee fell from 42k/s to 31k/s``)."""
        from pytest_hostperf.measure import openloop  # numpy: loaded where first used
        from pytest_hostperf.stats import checks  # numpy: loaded where first used

        if not rates:
            raise InvalidArgument("hostperf.sweep(..., rates=...): give at least one rate, "
                                  "e.g. rates=['10k/s', '20k/s']")
        if not (isinstance(within, (int, float)) and within > 1):
            raise InvalidArgument(f"hostperf.sweep(..., within=...): {within!r} is not a factor above 1 (e.g. 3)")
        offered = sorted(openloop.parse_rate(r) for r in rates)
        label = name if name is not None else getattr(fn, "__qualname__", None) or type(fn).__name__
        results = [self(fn, *args, name=f"{label}@{openloop.format_rate(r)}", rate=r, arrivals=arrivals,
                        samples=samples, p99="off", p999="off", max="off", kwargs=kwargs, **fn_kwargs)
                   for r in offered]
        if p99 is not None:
            limit_ns = float(parse_duration(p99, what="hostperf.sweep(..., p99=...)"))
            limit = f"p99 <= {format_ns(limit_ns)}"
        else:
            unloaded = (results[0].load or {}).get("service", {}).get("p99", results[0].p99)
            limit_ns = within * float(unloaded)
            limit = f"p99 <= {within:g}x the unloaded p99 ({format_ns(unloaded)}, the service time at " \
                    f"{openloop.format_rate(offered[0])})"
        rows = tuple(checks.SweepRow(rate=r, achieved=(res.load or {}).get("achieved", r), p50=res.p50, p99=res.p99,
                                     p999=res.p999, saturated=res.saturated, result_id=res.id)
                     for r, res in zip(offered, results))
        sw = checks.Sweep(label, rows, limit_ns, limit, checks.knee([(r.rate, r.p99, r.saturated) for r in rows],
                                                                     limit_ns))
        self._log.note(f"{self._nodeid}: sweep {label}: knee "
                       f"{openloop.format_rate(sw.knee) if sw.knee else 'below the lowest rate'} ({limit})")
        self.sweeps.append(sw)
        self._gate_knee(sw, results)
        return sw

    def _gate_knee(self, sw: Sweep, results: Sequence[Result]) -> None:
        """Fail the test when the knee fell against the baseline (or the base measured now): both
        knees from the gate's statistic (the median block p99) of each rate, head and base alike."""
        from pytest_hostperf.measure import openloop  # numpy: loaded where first used
        from pytest_hostperf.stats import checks  # numpy: loaded where first used

        verdicts = [self.verdicts.get(r.id) for r in results]
        if not all(v is not None and v.baseline_ns for v in verdicts):
            return  # a rate new here, or not compared: no knee of the base to compare with
        head = checks.knee([(row.rate, v.current_ns, row.saturated) for row, v in zip(sw.rows, verdicts)
                            if v is not None], sw.limit_ns)
        base = checks.knee([(row.rate, float(v.baseline_ns or 0), False) for row, v in zip(sw.rows, verdicts)
                            if v is not None], sw.limit_ns)
        if base is not None and (head is None or head < base):
            fell = openloop.format_rate(head) if head is not None else "below the lowest rate"
            self.knee_failures.append(f"{self._nodeid}: sweep {sw.name}: knee fell from {openloop.format_rate(base)} "
                                      f"to {fell} ({sw.limit}, on the median block p99 of each rate, head and base)")

    def note(self, text: str) -> None:
        """Add a line to the hostperf section of the terminal summary and the JSON report
        (e.g. a rate derived from a measurement: ``semaphore ping-pong: 15.2 kHz``)."""
        self._log.note(f"{self._nodeid}: {text}")

    def expect_faster(self, fast: Result, slow: Result, *, factor: float = 1.0, at: str = "p99") -> SpeedupCheck | None:
        """Fail the test when ``fast`` is confidently *not* ``factor`` times faster than ``slow``.

        Both measurements come from this run, so this relative budget holds on any host and
        needs no baseline. Inconclusive (the interval straddles ``factor``) warns, or fails
        under ``--hostperf-strict``. In smoke mode nothing is decided. A ``HostperfWarning``
        says when the two are timed differently (one ``batched(k)``, the other ``single``, or
        two batch sizes): then the comparison is not like for like.
        """
        from pytest_hostperf.stats import checks  # numpy: loaded where first used

        if not (isinstance(factor, (int, float)) and factor > 0):
            raise InvalidArgument(f"expect_faster(..., factor=...): {factor!r} is not a positive number (e.g. 2.0)")
        if at not in STATS:
            raise InvalidArgument(f"expect_faster(..., at=...): {at!r} is not one of p50, p90, p99, p999, max")
        if fast.smoke or slow.smoke:
            return None
        if fast.batch != slow.batch:
            warnings.warn(HostperfWarning(
                f"expect_faster({fast.id}, {slow.id}): the two are timed differently ({fast.mode} vs {slow.mode}): "
                f"a batched(k) sample is the mean of k calls, whose {at} understates the tail, so this {at} "
                "comparison is not like for like; compare calls of similar cost (each timed alone, or both "
                "batched alike)"), stacklevel=2)
        check = checks.check_speedup(fast, slow, factor=float(factor), stat=at)
        self.speedups.append(check)
        self._log.speedups.append(check)
        if check.failed:
            pytest.fail(check.message, pytrace=False)
        return check

    # -- what the test's outcome is ----------------------------------------------------------
    def failures(self, *, strict: bool) -> list[str]:
        """The test's failures (over budget, regressed; inconclusive ones too under ``strict``), each
        message one line or more. An inconclusive verdict is not a Python warning: the summary
        lists it with its reason and what would decide it, so a suite run under
        ``filterwarnings = error`` is not failed by hostperf for a verdict it passes."""
        from pytest_hostperf.stats import verdict  # numpy: loaded by the first measurement

        def why(mid: str) -> str:
            return f" — {self.why[mid]}" if mid in self.why else ""

        failures = [c.message + why(c.result_id) for c in self.checks if c.failed] + list(self.knee_failures)
        failures += [verdict.regression_message(mid, v) + why(mid) for mid, v in self.verdicts.items() if v.failed]
        if not strict:
            return failures
        unsure = [c.message for c in self.checks if c.status == "inconclusive"]
        unsure += [f"{mid}: {verdict.GATED[v.stat]} inconclusive: {v.detail}" for mid, v in self.verdicts.items()
                   if v.status == "inconclusive"]
        unsure += [c.message for c in self.speedups if c.status == "inconclusive"]
        return failures + [f"{u} (failing: --hostperf-strict)" for u in unsure]

    def missing_baselines(self, *, fix: str) -> list[str]:
        """``--hostperf-require-baseline``: a failure for each of the test's measurements that had no
        stored baseline to be compared with (verdict ``new``), ending with ``fix`` (where none was
        found, the command that records one)."""
        return [f"{mid}: no baseline to compare with, and --hostperf-require-baseline is set: {fix}"
                for mid, v in self.verdicts.items() if v.status == "new"]

    def junit_properties(self) -> list[tuple[str, object]]:
        """``record_property`` entries of the test's measurements, so ``--junitxml`` shows them:
        ``hostperf[<name>].p99_ns`` and ``hostperf[<name>].verdict`` (over-budget wins, as in reports)."""
        props: list[tuple[str, object]] = []
        for e in self.entries:
            props += [(f"hostperf[{e.result.name}].p99_ns", e.record.p99_ns),
                      (f"hostperf[{e.result.name}].verdict", e.record.status)]
        return props


#: Extra sampling rounds for a regressed or inconclusive verdict.
MAX_ROUNDS = 2


def _call_kwargs(fn: Callable[..., Any], explicit: Mapping[str, Any] | None, rest: Mapping[str, Any],
                 budgets: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``fn`` is called with: ``kwargs={...}`` and every keyword that is not
    one of hostperf's own (``OWN_KEYWORDS``). A budget keyword given while ``fn``'s signature
    names a parameter of that name (``torch.clamp(x, max=...)`` style) is refused unless
    ``kwargs=`` is given: otherwise a keyword meant for ``fn`` would silently become a budget."""
    if explicit is not None and not (isinstance(explicit, Mapping) and all(isinstance(k, str) for k in explicit)):
        raise InvalidArgument(f"hostperf(..., kwargs=...): {explicit!r} is not a mapping of keyword names to values "
                              "(e.g. kwargs={'max': 1.0}); it holds the function's own keyword arguments")
    both = sorted(set(explicit or ()) & set(rest))
    if both:
        raise InvalidArgument(f"hostperf(...): keyword(s) {', '.join(both)} given both in kwargs= and directly")
    if explicit is None:
        clash = [k for k, v in budgets.items() if v is not None and _takes_keyword(fn, k)]
        if clash:
            k = clash[0]
            raise InvalidArgument(
                f"hostperf(fn, ..., {k}=...): {k}= is this measurement's {k} budget, never an argument of fn, "
                f"but {getattr(fn, '__qualname__', fn)!r} takes a {k!r} argument too; pass fn's own as "
                f"kwargs={{{k!r}: ...}} (then {k}=... is the budget alone), or wrap fn")
    return {**(explicit or {}), **rest}


def _takes_keyword(fn: Callable[..., Any], key: str) -> bool:
    """Whether ``fn``'s signature names a parameter ``key`` that can be passed by keyword (False
    where the signature cannot be read, as for some builtins)."""
    try:
        param = inspect.signature(fn).parameters.get(key)
    except (TypeError, ValueError):
        return False
    return param is not None and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)


#: Rounds of a pytest-benchmark test measured by the run's gate (paired, settled, confirmed):
#: as many as fill its --benchmark-max-time on each side, in hostperf's 20 blocks.
ROUNDS_SAMPLES = 20_000


def rounds_plan(max_time_s: float) -> Plan:
    """The plan of a pytest-benchmark test's rounds measured by hostperf (paired, or confirming a
    stored verdict paired): each side's rounds fill pytest-benchmark's own time budget
    (``--benchmark-max-time``), as its plain run's do; the first rounds warm up."""
    from pytest_hostperf.measure import sampling  # numpy: loaded where first used

    budget = max(float(max_time_s), 0.01)
    return sampling.Plan(samples=ROUNDS_SAMPLES, max_seconds=budget, warmup_calls=100,
                         warmup_seconds=min(0.3, budget / 10))


def sampling_plan(run: RunSettings, samples: int | None, *, batch: int | None = None) -> Plan:
    """The sampling plan of one measurement; ``batch`` pins the batch size to the baseline's, so
    both compare. Smoke mode: a few calls."""
    from pytest_hostperf.measure import sampling  # numpy: loaded where first used

    if not run.full:
        return sampling.SMOKE_PLAN
    return sampling.Plan(samples=samples or run.samples, max_seconds=run.max_time,
                        warmup_seconds=min(0.3, run.max_time / 10), batch=batch)
