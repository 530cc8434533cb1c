"""``hostperf(fn, ..., warm=[buffers])``: buffers read through before every block, outside its timing."""
from __future__ import annotations

import mmap

import numpy as np
import pytest

from pytest_hostperf.errors import InvalidArgument
from pytest_hostperf.measure import sampling


def test_every_block_is_preceded_by_a_touch_of_each_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    table, other = np.zeros(1 << 16, dtype=np.uint8), bytearray(4096)
    monkeypatch.setattr(sampling, "touch", lambda buf: events.append("touch-table" if buf is table else "touch-other"))
    plan = sampling.Plan(samples=40, blocks=4, max_seconds=10, warmup_calls=1, pause_fraction=0,
                        min_pause_seconds=0, batch=1, warm=(table, other))
    raw = sampling.sample(lambda: events.append("call"), plan=plan, timer=sampling.TimerInfo("fake", 50, 10, 100),
                         sleep=lambda s: None)
    assert raw.block_sizes == (10, 10, 10, 10)
    # after the warm-up: each block opens with both touches, then its 10 timed calls
    first = events.index("touch-table")
    assert events[first:] == (["touch-table", "touch-other"] + ["call"] * 10) * 4


def test_touch_reads_one_byte_per_cache_line() -> None:
    buf = np.zeros(10 * sampling.CACHE_LINE, dtype=np.uint8)
    buf[::sampling.CACHE_LINE] = 1
    buf[1::sampling.CACHE_LINE] = 7  # not read: one byte of each line is enough to load it
    assert sampling.touch(buf) == 10
    assert sampling.touch(np.full((4, sampling.CACHE_LINE), 255, dtype=np.uint8)) == 4 * 255  # 2-D: its lines too


def test_warm_accepts_buffers_and_names_what_is_not_one() -> None:
    with mmap.mmap(-1, 4096) as m:
        got = sampling.warm_buffers([np.zeros(8), bytearray(8), memoryview(b"abcd"), m])
        assert len(got) == 4
    assert sampling.warm_buffers(None) == () and len(sampling.warm_buffers(np.zeros(4))) == 1
    with pytest.raises(InvalidArgument, match=r"warm=\.\.\.\): item 1 \(dict\) is not a buffer"):
        sampling.warm_buffers([np.zeros(4), {"a": 1}])
    with pytest.raises(InvalidArgument, match=r"item 0 is not contiguous.*np\.ascontiguousarray"):
        sampling.warm_buffers([np.zeros((8, 8))[:, 0]])


def test_warm_through_the_fixture_is_not_passed_to_the_function(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import numpy as np

        TABLE = np.arange(1 << 18, dtype=np.int64)

        def lookup(i, **kw):
            assert not kw, kw  # warm= is hostperf's, not the function's
            return TABLE[i]

        def test_lookup(hostperf):
            r = hostperf(lookup, 12345, warm=[TABLE], name="lookup", samples=200)
            assert r.n == 200 or r.smoke
    """)
    for args in ((), ("--hostperf", "--hostperf-max-time=0.5")):  # smoke mode, then measured
        pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
