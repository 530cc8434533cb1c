"""Semaphore IPC: two processes on different CPUs ping-pong through named semaphores.

What it shows: the cost of a cross-core wake-up, the figure milk's ``semloopspeed`` reports
(its docs: 200-500 kHz on bare metal, 30-100 kHz in VMs, for the C version). POSIX named
semaphores are driven through ctypes (what ImageStreamIO streams use); ``multiprocessing``
semaphores are the same glibc objects called from C. Expect 10-25 kHz in a small VM, where
an idle vCPU halts and each wake-up goes through the hypervisor; SCHED_FIFO raises it.
"""
from __future__ import annotations

import pytest

from benchmarks.workloads.ipc import SemPingPong, loops_per_second


@pytest.mark.hostperf(group="semaphore-ipc")
@pytest.mark.parametrize("kind", ["posix", "multiprocessing"])
def test_semaphore_ping_pong(hostperf, cpu_pair, kind):
    with SemPingPong(kind, cpus=cpu_pair) as pp:
        r = hostperf(pp.roundtrip, name="roundtrip")
    assert r.p99 >= r.p50
    if not r.smoke:
        hostperf.note(f"{kind} semaphore ping-pong: {loops_per_second(r) / 1e3:.1f} kHz at p50 "
                      f"({loops_per_second(r, 'p99') / 1e3:.1f} kHz at p99)")
