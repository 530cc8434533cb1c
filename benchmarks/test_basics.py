"""Basics every host shows: the timer floor and a 100 us sleep's wake-up.

What to expect: a no-op is far below what one timer read can resolve, so it is reported as
``batched(k)`` (k calls per sample); ``time.sleep(100e-6)`` wakes 50-150 us late on a VM
(timer slack and the hypervisor), so its p50 lands between 100 us and 1 ms.
"""
from __future__ import annotations

import time


def test_noop_is_batched(hostperf):
    r = hostperf(lambda: None, name="noop")
    assert r.batched


def test_sleep_100us(hostperf):
    r = hostperf(time.sleep, 100e-6, name="sleep_100us")
    assert r.p99 >= r.p50 >= 100_000
