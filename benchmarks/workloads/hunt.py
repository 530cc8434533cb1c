"""A small request path, with the fixes of a latency hunt switched on one at a time.

One request (``Pipeline.__call__``, timed by itself and returning its ns):

1. **decode**: the request's bytes become 256 feature ids (``np.frombuffer``);
2. **look up**: the ids gather their rows (64 bytes each, one cache line) from a 4 MiB table;
3. **model**: a small numeric model on a scratch buffer of 256 KiB, above glibc's default
   mmap threshold: features times weights, a ReLU, a sum (element-wise numpy only, no BLAS:
   OpenBLAS threads must not spin at SCHED_FIFO);
4. **hand off**: the request's id goes to a consumer process, and the request waits for its
   answer.

The fixes, each switched on by a keyword (``Pipeline.STEPS`` lists them in the order the
hunt applies them):

- ``arena=True``: the scratch buffer comes from a pre-faulted :class:`~.arena.Arena`
  (reset after each request) instead of a fresh ``np.empty`` per request;
- ``ring=True``: the hand-off goes over a shared-memory ring both sides poll
  (:class:`~.ring.ProcessPingPong` ``"ring"``) instead of ``multiprocessing.Queue``;
- pinned and SCHED_FIFO: the host controls of the measurement (the test's marker), not a
  keyword here;
- ``warm=True``: between requests the table is read through (warm) instead of evicted.

Between requests (untimed, inside the call before its clock starts) the path does what a
service does between requests: other work that evicts the table (reading a buffer 1.5x the
last-level cache), or, warmed, a read through the table itself. The consumer process is
pinned to the peer CPU in every step, so no step ever puts a polling consumer on a CPU the
test does not own.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.workloads.arena import Arena
from benchmarks.workloads.cache import ROW, TABLE_BYTES, evict_bytes
from benchmarks.workloads.ring import ProcessPingPong
from pytest_hostperf.measure.sampling import touch

#: Feature ids per request.
FEATURES = 256
#: The model's hidden width: FEATURES x ROW x HIDDEN float64 = 256 KiB of scratch per request.
HIDDEN = 16
SCRATCH_BYTES = FEATURES * ROW * HIDDEN * 8
#: Distinct requests cycled through (their ids are random rows of the table).
REQUESTS = 1024


#: Extra work on each served request, in us: 0 here; a commit that sets it slows the path (the
#: paired knee's demonstration: 20 us is ~25% of the +warm step's p50).
SERVE_EXTRA_US = 0


class Pipeline:
    """One request per call; returns its latency in ns (``hostperf(..., self_timed=True)``).

    A context manager: entering starts the consumer process, leaving stops and reaps it (and
    unlinks the ring's shared memory)."""

    STEPS = ("baseline", "+arena", "+shm ring", "+pinned FIFO", "+warm")

    def __init__(self, *, arena: bool = False, ring: bool = False, warm: bool = False,
                 cpus: tuple[int, int] | None = None, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.table = rng.integers(0, 1 << 20, size=(TABLE_BYTES // (8 * ROW), ROW), dtype=np.int64)
        ids = rng.integers(0, len(self.table), size=(REQUESTS, FEATURES), dtype=np.uint32)
        self.requests = [row.tobytes() for row in ids]
        self.weights = rng.standard_normal((ROW, HIDDEN))
        self.arena = Arena(2 * SCRATCH_BYTES) if arena else None
        self.evict = None if warm else np.ones(evict_bytes(), dtype=np.uint8)
        self.consumer = ProcessPingPong("ring" if ring else "mpqueue", cpus=cpus)
        self.i = 0
        self.checksum = 0.0

    @property
    def buffers(self) -> list[Any]:
        """What ``hostperf(..., warm=...)`` should warm before every block: the table, and the
        arena's memory where there is one."""
        return [self.table] + ([self.arena.buffer] if self.arena is not None else [])

    def __enter__(self) -> Pipeline:
        self.consumer.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.consumer.__exit__(*exc)

    def serve(self) -> None:
        """One request, as an open-loop client issues it: the path alone, timed by the caller
        (``hostperf.sweep(path.serve, rates=...)``); nothing evicted or warmed between requests,
        which arrive as the rate says."""
        req = self.requests[self.i % REQUESTS]
        self.i += 1
        self._request(req)
        if SERVE_EXTRA_US:  # a slower commit of the path, for the paired knee (docs/open-loop.md)
            end = time.perf_counter_ns() + int(SERVE_EXTRA_US * 1000)
            while time.perf_counter_ns() < end:
                pass

    def __call__(self) -> int:
        touch(self.table if self.evict is None else self.evict)  # between requests: untimed
        req = self.requests[self.i % REQUESTS]
        self.i += 1
        t0 = time.perf_counter_ns()
        self._request(req)
        return time.perf_counter_ns() - t0

    def _request(self, req: bytes) -> None:
        """The request path itself: decode, gather, the model on the scratch buffer, the hand-off."""
        ids = np.frombuffer(req, dtype=np.uint32)
        feats = self.table[ids]
        if self.arena is not None:
            h = self.arena.empty((FEATURES, ROW, HIDDEN))
        else:
            h = np.empty((FEATURES, ROW, HIDDEN))
        np.multiply(feats[:, :, None], self.weights[None, :, :], out=h)
        np.maximum(h, 0.0, out=h)
        self.checksum += float(h.sum())
        if self.arena is not None:
            self.arena.reset()
        self.consumer.roundtrip()
