"""Handing an item to another thread or process and back: mutex queue vs lock-free ring.

What it shows:
- between threads the GIL decides, not the data structure: ``queue.Queue`` (mutex +
  condition variable) wakes the other thread through the GIL handoff; the ring's waiter
  polls with ``sched_yield``, which hands the GIL over at once (and keeps both threads busy).
  Expect tens of microseconds for both; which wins depends on the host (see the README).
- between processes on different CPUs there is no GIL in the way: a single-producer
  single-consumer ring in shared memory, polled by both sides, answers in a few microseconds,
  while ``multiprocessing.Queue`` (pipe + lock + feeder thread + pickling) needs a kernel
  wake-up each way. Expect the ring to win by 10x or more at p50 and p99.
"""
from __future__ import annotations

import pytest

from benchmarks.workloads.ring import ProcessPingPong, ThreadPingPong


@pytest.mark.hostperf(group="handoff-threads")
def test_threads_queue_vs_ring(hostperf):
    with ThreadPingPong("queue") as q:
        queued = hostperf(q.roundtrip, name="queue.Queue")
    with ThreadPingPong("ring") as r:
        ring = hostperf(r.roundtrip, name="ring")
    assert queued.n and ring.n


@pytest.mark.hostperf(group="handoff-processes")
def test_processes_mpqueue_vs_shm_ring(hostperf, cpu_pair):
    with ProcessPingPong("mpqueue", cpus=cpu_pair) as q:
        queued = hostperf(q.roundtrip, name="multiprocessing.Queue")
    with ProcessPingPong("ring", cpus=cpu_pair) as r:
        ring = hostperf(r.roundtrip, name="shm_ring")
    same_cpu = cpu_pair[0] == cpu_pair[1]  # pytest -n N with one CPU per worker
    if not same_cpu:  # the ring's lesson is a cross-core one: both sides poll, nobody sleeps
        hostperf.expect_faster(ring, queued, factor=10, at="p50")
        hostperf.expect_faster(ring, queued, factor=5, at="p99")
    if not ring.smoke:
        where = f"both on CPU {cpu_pair[0]} (a same-core hand-off)" if same_cpu else "across cores"
        hostperf.note(f"shm ring round trips {where}: {1e6 / ring.p50:.0f} kHz at p50; "
                      f"multiprocessing.Queue: {1e6 / queued.p50:.1f} kHz")
