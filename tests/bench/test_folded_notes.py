"""The run's pacing of pytest-benchmark tests is one line with counts and totals, not one per test."""
from __future__ import annotations

from types import SimpleNamespace

from pytest_hostperf.bench.bridge import BenchBridge


def test_pacing_of_many_tests_is_folded_into_one_note_with_counts_and_totals() -> None:
    log = SimpleNamespace(notes=["an earlier note"])
    bridge = BenchBridge(SimpleNamespace(log=log))  # type: ignore[arg-type]
    calls: list[tuple[int, float, float]] = [(3, 0.25, 2.0), (1200, 14.0, 90.5), (1, 0.001, 0.1)]
    for pauses, paused, rounds in calls:
        bridge._paced(pauses, paused, rounds)
    assert log.notes == ["an earlier note",
                         "paced 3 pytest-benchmark test(s) at SCHED_FIFO: 1,204 pause(s), 14.251 s outside their "
                         "rounds, which ran 92.600 s (each test's in the JSON report: host.paced)"]
    log.notes.append("a later note")
    bridge._paced(1, 1.0, 1.0)  # still one line, where it was
    assert [n.split(":")[0] for n in log.notes] == ["an earlier note",
                                                    "paced 4 pytest-benchmark test(s) at SCHED_FIFO", "a later note"]


def test_batched_tests_are_one_note_with_counts_per_iteration_size() -> None:
    log = SimpleNamespace(notes=[])
    bridge = BenchBridge(SimpleNamespace(log=log))  # type: ignore[arg-type]
    for k in (16, 4, 16):
        bridge._batched(k)
    (note,) = log.notes
    assert note.startswith("3 pytest-benchmark test(s) ran k > 1 iterations per round (1 at k=4, 2 at k=16)")
    assert "batched(k)" in note and "same k" in note
