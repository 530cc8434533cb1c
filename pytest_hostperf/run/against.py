"""The pytest hooks of ``--hostperf-against=REF``, each side its own plugin object, registered
only when pairing (as pytest-xdist registers its ``DSession`` / ``WorkerInteractor``).

:class:`HeadRole` starts the process pairs and asks their replica sessions to run each
hostperf test as the head runs it; :class:`ReplicaRole`, in a replica session the head
started, replaces pytest's test loop with "run the test the head names". The pairing itself
is ``pairing/``'s; these hooks only drive it. pairing loads here when a run pairs, never with ``pytest --help`` (numpy).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_hostperf.pairing.channel import PairingError
from pytest_hostperf.run import placement

if TYPE_CHECKING:
    from pytest_hostperf.gate.seam import Asked, Judged
    from pytest_hostperf.pairing.head import AgainstHead
    from pytest_hostperf.pairing.replica import Replica
    from pytest_hostperf.run.settings import RunSettings


#: pytest-benchmark's options that decide how a replica's rounds run, forwarded from the head's
#: command line (its ini and addopts the replicas read themselves). Never its output options
#: (--benchmark-json, --benchmark-autosave, ...): a replica writes nothing.
BENCHMARK_OPTIONS = ("--benchmark-enable", "--benchmark-disable", "--benchmark-max-time", "--benchmark-min-time",
                     "--benchmark-min-rounds", "--benchmark-timer", "--benchmark-calibration-precision",
                     "--benchmark-warmup", "--benchmark-warmup-iterations", "--benchmark-disable-gc")
#: Of those, the ones that take a value.
_VALUED = {o for o in BENCHMARK_OPTIONS if o not in ("--benchmark-enable", "--benchmark-disable",
                                                     "--benchmark-disable-gc")}


def benchmark_args(config: pytest.Config) -> list[str]:
    """The head's pytest-benchmark options of ``BENCHMARK_OPTIONS``, as given on its command line
    (``--opt=value`` or ``--opt value``), for the replica sessions."""
    out: list[str] = []
    given = [str(a) for a in config.invocation_params.args]
    for i, arg in enumerate(given):
        name = arg.split("=", 1)[0]
        if name not in BENCHMARK_OPTIONS:
            continue
        if "=" in arg or name not in _VALUED:
            out.append(arg)
        elif i + 1 < len(given):
            out.append(f"{name}={given[i + 1]}")
    return out


def test_paths(config: pytest.Config) -> list[str]:
    """The head's test paths (its positional arguments, or testpaths), relative to its rootdir,
    ``::node`` parts kept: a replica collects these in its own tree, not the whole tree (a large
    project's other tests may not even import in this environment). Paths outside the rootdir
    are left out; none left: the replicas collect the whole tree."""
    root = Path(config.rootpath).resolve()
    here = Path(config.invocation_params.dir)
    out = []
    for arg in config.args:
        path, sep, node = str(arg).partition("::")
        try:
            rel = (here / path).resolve().relative_to(root)
        except (ValueError, OSError):
            continue
        out.append(f"{rel.as_posix()}{sep}{node}" if str(rel) != "." else "")
    return [] if "" in out else out


def benchmarks_enabled(config: pytest.Config) -> bool:
    """Whether pytest-benchmark measures in this session (installed, and not disabled)."""
    bs = getattr(config, "_benchmarksession", None)
    return bs is not None and not getattr(bs, "disabled", True)


def base_args(s: RunSettings, extra: list[str] | None = None) -> list[str]:
    """The replica sessions' options: the head's sampling and host controls, nothing they write;
    ``extra``: the head's pytest-benchmark options (:func:`benchmark_args`)."""
    args = [f"--hostperf-samples={s.samples}", f"--hostperf-max-time={s.max_time:g}",
            "--hostperf-rt=" + ("off" if s.rt is None else str(s.rt)),
            # auto (the default) is forwarded as nothing: an older base harness would refuse "auto"
            *([] if s.mlock == "auto" else ["--hostperf-mlock" if s.mlock else "--hostperf-no-mlock"]),
            "--hostperf-no-noise", "--hostperf-no-counters", "-p", "no:xdist"]
    if s.cpus:
        args.append("--hostperf-cpus=" + ",".join(map(str, s.cpus)))
    return args + list(extra or ())


class HeadRole:
    """The head's hooks: start the process pairs (at the session's start, or at the first
    hostperf test of an xdist worker), lead them test by test, stop them at the end."""

    def __init__(self, head: AgainstHead, *, lazy: bool) -> None:
        self.head = head
        self.lazy = lazy  # an xdist worker: start the base at its first hostperf test, if it gets one

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.lazy:
            return
        try:
            self.head.start()
        except PairingError as exc:
            raise pytest.UsageError(str(exc)) from None

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        head = self.head
        if not head.lead or head.broken is not None or not _measures(item):
            return
        if not head.started and self.lazy:
            try:
                head.start()
            except PairingError as exc:
                head.broken = str(exc)
                return
        head.run_test(placement.ungrouped(item.nodeid))

    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        self.head.finish_test()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.head.close()


def _measures(item: pytest.Item) -> bool:
    """Whether ``item`` measures: it uses the hostperf fixture, or pytest-benchmark's, measuring."""
    names = getattr(item, "fixturenames", ())
    return "hostperf" in names or ("benchmark" in names and benchmarks_enabled(item.config))


class ReplicaRole:
    """Inside a replica session: run the tests the head names, report each one's outcome."""

    def __init__(self, side: Replica) -> None:
        self.side = side
        self.outcome = "passed"

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # a replica writes nothing: not the pytest-benchmark files the tree's addopts may ask for
        bs = getattr(session.config, "_benchmarksession", None)
        for attr in ("json", "save", "autosave", "histogram"):
            if bs is not None and hasattr(bs, attr):
                setattr(bs, attr, None)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        bs = getattr(session.config, "_benchmarksession", None)
        if bs is not None and isinstance(getattr(bs, "benchmarks", None), list):
            bs.benchmarks.clear()  # no table, no comparison: the head reports

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        from pytest_hostperf.pairing.replica import IDLE_S  # numpy: loaded where first used

        ctl = self.side.ctl
        if session.testsfailed:
            ctl.send(error=f"collection failed in the {self.side.role} tree ({session.testsfailed} error(s))")
            return True
        items = {placement.ungrouped(i.nodeid): i for i in session.items}
        self.side.hello(len(items))
        while True:
            msg = ctl.recv(timeout=IDLE_S)
            if msg.get("quit"):
                return True
            if "run" not in msg:  # a straggler (skip, enough) meant for a measurement that already ended
                continue
            item = items.get(str(msg.get("run")))
            if item is None:
                ctl.send(done="missing")
                continue
            self.outcome = "passed"
            item.ihook.pytest_runtest_protocol(item=item, nextitem=None)
            ctl.send(done=self.outcome)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.outcome = "failed" if report.when == "call" else "error"
        elif report.skipped and self.outcome == "passed":
            self.outcome = "skipped"


class ReplicaGate:
    """A replica's gate: measure in turns with its partner, decide nothing (the head does);
    a measurement the head does not have runs a few calls only."""

    def __init__(self, side: Replica) -> None:
        self.side = side

    def judge(self, asked: Asked) -> Judged:
        from pytest_hostperf.gate.seam import Judged  # numpy: loaded where first used
        from pytest_hostperf.measure import sampling  # numpy: loaded where first used

        res = self.side.measure(asked.name, asked.sampler, asked.summarize, warm=asked.plan.warm)
        if res is None:  # declined (the head settles a later one): a few calls, marked smoke, so that
            # the test's expect_faster on it decides nothing and the test goes on to the one asked for
            res = replace(asked.summarize(asked.sampler.sample(sampling.SMOKE_PLAN, None)), smoke=True)
        return Judged(res, None, None)
