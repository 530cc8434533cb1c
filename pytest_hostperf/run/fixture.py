"""The ``hostperf`` fixture object: measures a function call by call under host control.

One measurement's trip, in one direction: host controls (``settings.resolve_controls``,
``host.control``) -> sampling (``measure``) -> statistics (``result``/``stats``) -> verdict
(``gate``/``verdict``) -> a typed record (``records.ResultRecord``) kept by the run.
"""
from __future__ import annotations

import contextlib
import itertools
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pytest

from pytest_hostperf.errors import HostperfWarning, InvalidArgument
from pytest_hostperf.run.settings import (
    BUDGET_KEYS,
    Controls,
    MarkerSettings,
    RunSettings,
    measurement_budgets,
    parse_marker,
    resolve_controls,
)

if TYPE_CHECKING:
    from pytest_hostperf.measure.sampling import Plan, Samples, TimerInfo
    from pytest_hostperf.run.session import HostperfSession
    from pytest_hostperf.stats.result import Result
    from pytest_hostperf.stats.verdict import BudgetCheck, SpeedupCheck, Verdict
    from pytest_hostperf.store.records import HostState, ResultRecord, StoredMeasurement

STAT_NAMES = ("p50", "p90", "p99", "p999", "max")
#: hostperf's own keywords: never passed to the measured function (``kwargs={...}`` passes those).
#: The run's note when --hostperf-against meets pytest-benchmark tests.
PBENCH_PAIRED_NOTE = ("--hostperf-against: pytest-benchmark tests are measured on the head only (pytest-benchmark "
                      "runs its rounds back to back, which cannot take turns with the base block by block): shown "
                      "as new; to pair one, time it with the hostperf fixture (docs/xdist-and-pytest-benchmark.md)")
#: The run's note when a measurement took fewer blocks than asked for (gate.plan_by_noise).
NOISE_NOTE = ("sampled by noise: a measurement compared with a baseline takes only the blocks its verdict can use "
              "(until its own error is a third of the baseline's run-to-run spread, at least 5 blocks; n shows what "
              "was taken); --hostperf-save, and a measurement with a budget, take every sample")
OWN_KEYWORDS = ("name", "samples", "self_timed", *BUDGET_KEYS, "warm", "kwargs")


@dataclass(slots=True)
class Entry:
    """One measurement of the run: the fixture's ``Result`` (with its samples) and its record."""

    result: Result
    record: ResultRecord


class Recorder:
    """The ``hostperf`` fixture: call it to measure a function's per-call latency.

    >>> r = hostperf(model.predict, features, name="predict")   # doctest: +SKIP
    >>> r.p99, r.mode                                             # doctest: +SKIP
    """

    def __init__(self, run: HostperfSession, item: pytest.Item) -> None:
        from pytest_hostperf.run import placement
        self._run = run
        self._item = item
        # the id measurements are stored under: without xdist's "@group" suffix, so a
        # baseline saved by a gathered xdist run matches a plain run's
        self._nodeid = placement.ungrouped(item.nodeid)
        self.settings: MarkerSettings = parse_marker(item)
        self.controls: Controls = resolve_controls(run.settings, self.settings)
        self.entries: list[Entry] = []
        self.checks: list[BudgetCheck] = []
        self.verdicts: dict[str, Verdict] = {}
        self.why: dict[str, str] = {}  # measurement id -> counters that changed against the baseline
        self.speedups: list[SpeedupCheck] = []
        if run.settings.full and self.controls.rt_required:
            from pytest_hostperf.host import control

            ok, reason, fix = control.rt_available(self.controls.rt or control.DEFAULT_RT_PRIORITY)
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
        return self.settings.tolerance if self.settings.tolerance is not None else self._run.settings.tolerance

    def __call__(self, fn: Callable[..., Any], *args: Any, name: str | None = None,
                 samples: int | None = None, self_timed: bool = False, p99: str | float | None = None,
                 p999: str | float | None = None, max: str | float | None = None,  # budgets: the marker's keys
                 warm: Any = None, kwargs: Mapping[str, Any] | None = None, **fn_kwargs: Any) -> Result:
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
        Every other keyword goes to ``fn``; ``kwargs={...}`` passes ``fn`` keywords that share a
        name with one of hostperf's own (``name``, ``samples``, ``self_timed``, ``p99``,
        ``p999``, ``max``, ``warm``, ``kwargs``).
        """
        from pytest_hostperf.gate import stored as gate
        from pytest_hostperf.measure import sampling as measure
        from pytest_hostperf.store import records

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
        base = self._run.baseline_of(f"{self._nodeid}[{name}]")
        plan = replace(sampling_plan(self._run.settings, samples or self.settings.samples,
                                     batch=base[-1].batch if base else None), warm=measure.warm_buffers(warm))
        timer = self._run.timer
        asked = plan  # the plan as asked for: a paired confirmation takes it whole
        if not self._run.settings.full:
            raw = measure.sample(fn, args, kwargs, plan=plan, timer=timer, self_timed=self_timed)
            res = self._summarize(raw, name=name, smoke=True)  # smoke mode: no budget is checked
            entry = Entry(res, records.ResultRecord.of(res))
            self.entries.append(entry)
            self._run.keep(entry)
            return res

        mid = f"{self._nodeid}[{name}]"
        if self._run.pairing_base is not None:  # the base side of --hostperf-against: measure in turns, gate nothing
            res = self._run.pairing_base.measure(name, fn, args, kwargs, controls=self.controls, timer=timer,
                                                 self_timed=self_timed, warm=plan.warm,
                                                 summarize=lambda s: self._summarize(s, name=name))
            if res is None:
                res = self._summarize(measure.sample(fn, args, kwargs, plan=measure.SMOKE_PLAN, timer=timer), name=name)
            entry = Entry(res, records.ResultRecord.of(res))
            self.entries.append(entry)
            self._run.keep(entry)
            return res
        if self._run.pairing is not None:  # --hostperf-against: paired with the base, measured now
            from pytest_hostperf.stats import verdict as rules

            self._run.progress.begin(mid)  # against.py shows the rounds of pairs
            res, host, v = self._run.pairing.measure(mid, name, fn, args, kwargs, controls=self.controls,
                                                     timer=timer, plan=plan, self_timed=self_timed,
                                                     summarize=lambda s: self._summarize(s, name=name))
            if isinstance(v, str):
                v = rules.Verdict("new", "p99", None, None, None, res.gate_p99, self.tolerance, 0, v)  # p99*
            self.verdicts[mid] = v
            return self._keep(res, host=host, base=[], verdict=records.VerdictRecord.of(v, 0), budgets=budgets)
        if base and budgets == {} and not self._run.settings.save:  # a budget checks the calls asked for
            plan = gate.plan_by_noise(plan, base, self._run.settings.gate)
            if plan.blocks < asked.blocks and NOISE_NOTE not in self._run.notes:
                self._run.notes.append(NOISE_NOTE)
        rounds = 1 + self._run.max_rounds
        self._run.progress.begin(mid, rounds * plan.max_seconds + plan.warmup_seconds)
        self._run.progress.step(f"round 1/{rounds}")
        raw, host = self._sample_controlled(fn, args, kwargs, plan, timer, self_timed)
        later = itertools.count(2)

        def again() -> Samples:
            self._run.progress.step(f"round {next(later)}/{rounds}")
            more, _ = self._sample_controlled(fn, args, kwargs, replace(plan, batch=raw.batch, warmup_calls=10),
                                              timer, self_timed)
            return more

        settled = gate.settle(raw, again, lambda s: self._summarize(s, name=name), base, tolerance=self.tolerance,
                              noisy=self._run.noisy, max_rounds=self._run.max_rounds,
                              gated=self._run.settings.gate, strict=self._run.settings.strict)
        v = settled.verdict
        if v.status == "regressed" and self._run.settings.confirm:
            from pytest_hostperf.stats import verdict as rules

            # each gated statistic that regressed is confirmed on its own (paired: p99 only)
            v = rules.worst([self._confirm(part, name, fn, args, kwargs, asked, timer, self_timed)
                             if part.status == "regressed" else part for part in rules.gated_parts(v)])
        self.verdicts[settled.result.id] = v
        return self._keep(settled.result, host=host, base=base,
                          verdict=records.VerdictRecord.of(v, settled.extra_rounds), budgets=budgets)

    def _confirm(self, v: Verdict, name: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 plan: Plan, timer: TimerInfo, self_timed: bool) -> Verdict:
        """A regression against the stored baseline, re-measured paired against the baseline's
        commit before it fails the test (DESIGN.md section 12): confirmed, it stays regressed;
        not confirmed, it is inconclusive (the host, not the code, is slower than then)."""
        from pathlib import Path

        from pytest_hostperf.store import provenance

        run = self._run
        sha = run.stored_runs[-1].commit.sha if run.stored_runs else None
        if not sha:
            return replace(v, confirmation="not confirmed: the baseline records no commit")
        now = provenance.commit_info(Path(run.config.rootpath))
        if now.get("sha") == sha and now.get("dirty") is False:
            return replace(v, status="inconclusive", reason=f"{v.reason}; the baseline was saved at this very commit "
                           f"({sha[:12]}, clean tree): the host is slower than then, not the code")
        if v.stat != "p99":  # --hostperf-gate: the paired gate compares block p99s only
            from pytest_hostperf.stats.verdict import GATED

            return replace(v, confirmation=f"not confirmed: the paired re-measurement compares p99 only, so a "
                           f"{GATED[v.stat]} regression fails on the stored comparison alone")
        head = run.confirmer(sha)
        if head is None:
            return replace(v, confirmation=f"not confirmed: the baseline's commit {sha[:12]} is not in this repository")
        mid = f"{self._nodeid}[{name}]"
        from pytest_hostperf.errors import MeasurementError
        from pytest_hostperf.pairing.head import PairingError

        if head.broken:
            return replace(v, confirmation=f"not confirmed: {head.broken}")
        try:
            _, _, pv = head.confirm(self._nodeid, mid, name, fn, args, kwargs, controls=self.controls, timer=timer,
                                    plan=plan, self_timed=self_timed,
                                    summarize=lambda s: self._summarize(s, name=name))
        except (PairingError, MeasurementError) as exc:
            head.broken = head.broken or str(exc)  # the next flagged measurement does not retry it
            return replace(v, confirmation=f"not confirmed: {exc}")
        if isinstance(pv, str):
            return replace(v, confirmation=f"not confirmed: {pv}")
        lo, hi = pv.interval or (float("nan"), float("nan"))
        paired_text = f"paired against {sha[:12]} now: ratio {pv.ratio:.2f} [95% CI {lo:.2f} .. {hi:.2f}]"
        if pv.status == "regressed":
            return replace(v, confirmation=f"confirmed {paired_text}")
        return replace(v, status="inconclusive", reason=f"{v.reason}; not confirmed {paired_text} ({pv.status}): "
                       "the host is slower than when the baseline was saved")

    def _summarize(self, raw: Samples, *, name: str, smoke: bool = False) -> Result:
        from pytest_hostperf.stats import result

        return result.summarize(raw, nodeid=self._nodeid, name=name, group=self.settings.group, smoke=smoke,
                                 series=self.settings.series)

    def _keep(self, res: Result, *, host: HostState | None, base: list[StoredMeasurement],
              verdict: Any = None, not_gated: str | None = None, budgets: Mapping[str, int] | None = None) -> Result:
        """Record a measured result in this test and the run, and check its budgets (``budgets``:
        this measurement's, from :func:`settings.measurement_budgets`; None: the marker's)."""
        from pytest_hostperf.stats import counter_changes
        from pytest_hostperf.stats import verdict as rules
        from pytest_hostperf.store import records

        self._run.progress.end()
        budgets = self.settings.budgets if budgets is None else budgets
        checks = [rules.check_budget(res, stat, budget) for stat, budget in budgets.items()]
        self.checks.extend(checks)
        cur = res.counters
        before = [m.counters for m in base if m.counters]
        why = None
        if cur and before:
            changes = counter_changes.changed(cur, before)
            if changes:
                why = self.why[res.id] = counter_changes.describe_changes(changes)
        record = records.ResultRecord.of(res, budgets=[records.BudgetRecord.of(c) for c in checks], host=host,
                                         verdict=verdict, why=why, not_gated=not_gated, counters=cur)
        entry = Entry(res, record)
        self.entries.append(entry)
        self._run.keep(entry)
        return res

    def record_external(self, raw: Samples, *, name: str, host: HostState, gate: bool,
                        why_not: str | None = None, again: Callable[[], Samples] | None = None) -> Result:
        """Record samples timed by another tool (pytest-benchmark) as one measurement: compared
        with the baseline when ``gate``, else reported with ``why_not`` in place of a verdict.
        ``again()``, where the tool's timing loop can be run again (pytest-benchmark's runner
        for as many rounds): a regressed verdict is re-measured up to ``max_rounds`` times and
        must hold over the rounds, as for hostperf's own measurements."""
        from pytest_hostperf.gate import stored as gates
        from pytest_hostperf.stats import verdict as rules
        from pytest_hostperf.store import pbench, records

        res = self._summarize(raw, name=name)
        base = self._run.baseline_of(res.id) if self._run.settings.full else []
        if self._run.pairing is not None:  # --hostperf-against pairs hostperf's own blocks only
            if PBENCH_PAIRED_NOTE not in self._run.notes:
                self._run.notes.append(PBENCH_PAIRED_NOTE)
            v = rules.Verdict("new", "p99", None, None, None, res.gate_p99, self.tolerance, 0,
                              "not paired: pytest-benchmark times its rounds itself "
                              "(docs/xdist-and-pytest-benchmark.md)")
            self.verdicts[res.id] = v
            return self._keep(res, host=host, base=[], verdict=records.VerdictRecord.of(v, 0),
                              not_gated=None if gate else why_not)
        if gate and self._run.settings.full:
            # only the stored runs of as many rounds and iterations compare like for like
            extra = 0
            alike = [m for m in base if pbench.like_for_like(res.n, res.batch, (m.n, m.batch)) is None]
            if base and not alike:
                unlike = pbench.like_for_like(res.n, res.batch, (base[-1].n, base[-1].batch))
                v = rules.Verdict("inconclusive", "p99", None, None, None, res.gate_p99, self.tolerance, len(base),
                                  f"not like for like with the baseline: {unlike}; save three runs "
                                  "with hostperf's fixed rounds (pytest --hostperf --hostperf-save)")
            elif again is not None and alike:
                settled = gates.settle(raw, again, lambda x: self._summarize(x, name=name), alike,
                                       tolerance=self.tolerance, noisy=self._run.noisy,
                                       max_rounds=self._run.max_rounds, gated=self._run.settings.gate,
                                       retry=("regressed",))  # an inconclusive one passes: not worth the time
                # the verdict rests on every round; the result stays pytest-benchmark's own rounds,
                # the figures its table shows and the count a saved baseline fixes for later runs
                v, extra = settled.verdict, settled.extra_rounds
            else:
                v = gates.compare_once(res, alike, tolerance=self.tolerance, gated=self._run.settings.gate)
            if base and alike and len(alike) < len(base):
                v = replace(v, reason=f"{v.reason}; compared with the {len(alike)} of {len(base)} baseline runs "
                                      "taken with as many rounds and iterations")
            self.verdicts[res.id] = v
            return self._keep(res, host=host, base=alike, verdict=records.VerdictRecord.of(v, extra))
        if why_not:
            self._run.notes.append(f"{res.id}: {why_not}")
        return self._keep(res, host=host, base=base, not_gated=why_not)

    def note(self, text: str) -> None:
        """Add a line to the hostperf section of the terminal summary and the JSON report
        (e.g. a rate derived from a measurement: ``semaphore ping-pong: 15.2 kHz``)."""
        self._run.notes.append(f"{self._nodeid}: {text}")

    def expect_faster(self, fast: Result, slow: Result, *, factor: float = 1.0, at: str = "p99") -> Any:
        """Fail the test when ``fast`` is confidently *not* ``factor`` times faster than ``slow``.

        Both measurements come from this run, so this relative budget holds on any host and
        needs no baseline. Inconclusive (the interval straddles ``factor``) warns, or fails
        under ``--hostperf-strict``. In smoke mode nothing is decided. A ``HostperfWarning``
        says when the two are timed differently (one ``batched(k)``, the other ``single``, or
        two batch sizes): then the comparison is not like for like.
        """
        from pytest_hostperf.stats import verdict

        if not (isinstance(factor, (int, float)) and factor > 0):
            raise InvalidArgument(f"expect_faster(..., factor=...): {factor!r} is not a positive number (e.g. 2.0)")
        if at not in STAT_NAMES:
            raise InvalidArgument(f"expect_faster(..., at=...): {at!r} is not one of p50, p90, p99, p999, max")
        if fast.smoke or slow.smoke:
            return None
        if fast.batch != slow.batch:
            warnings.warn(HostperfWarning(
                f"expect_faster({fast.id}, {slow.id}): the two are timed differently ({fast.mode} vs {slow.mode}): "
                f"a batched(k) sample is the mean of k calls, whose {at} understates the tail, so this {at} "
                "comparison is not like for like; compare calls of similar cost (each timed alone, or both "
                "batched alike)"), stacklevel=2)
        check = verdict.check_speedup(fast, slow, factor=float(factor), stat=at)
        self.speedups.append(check)
        self._run.speedups.append(check)
        if check.failed:
            pytest.fail(check.message, pytrace=False)
        return check

    def _sample_controlled(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], plan: Plan,
                           timer: TimerInfo, self_timed: bool = False) -> tuple[Samples, HostState]:
        """Sample under pinning, mlock and SCHED_FIFO, recording the state read back from the OS."""
        from pytest_hostperf.measure import sampling as measure

        with controlled(self._run, self.controls) as host:
            raw = measure.sample(fn, args, kwargs, plan=plan, timer=timer, self_timed=self_timed,
                                 counters=self._run.reader)
        return raw, host


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
    import inspect

    try:
        param = inspect.signature(fn).parameters.get(key)
    except (TypeError, ValueError):
        return False
    return param is not None and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)


def sampling_plan(run: RunSettings, samples: int | None, *, batch: int | None = None) -> Plan:
    """The sampling plan of one measurement; ``batch`` pins the batch size to the baseline's, so
    both compare. Smoke mode: a few calls."""
    from pytest_hostperf.measure import sampling as measure

    if not run.full:
        return measure.SMOKE_PLAN
    return measure.Plan(samples=samples or run.samples, max_seconds=run.max_time,
                        warmup_seconds=min(0.3, run.max_time / 10), batch=batch)


@contextlib.contextmanager
def controlled(run: HostperfSession, controls: Controls) -> Iterator[HostState]:
    """Apply ``controls`` (pin, mlock, SCHED_FIFO; always restored) and yield the host state read
    back from the OS inside them, not copied from the options. ``rt='required'`` skips the test
    when SCHED_FIFO was not applied; each control that was not applied is noted once per run."""
    from pytest_hostperf.host import control
    from pytest_hostperf.store.records import HostState

    with control.controlled(cpus=controls.cpus, rt=controls.rt, mlock=controls.mlock) as applied:
        during = control.snapshot()
        controls.skip_unless_rt(next((a for a in applied if a.control == "rt" and not a.applied), None))
        yield HostState(cpus=tuple(during.affinity), policy=during.policy, priority=during.priority,
                        memory_locked=during.memory_locked, controls=tuple(a.as_dict() for a in applied))
    run.note_controls(applied)
