"""A request's feature lookup, with its table cold or warm in the caches.

``Lookup`` gathers ``rows`` random rows (64 bytes each: one cache line) of a table of a few
MiB, as a request's decode step looks up its features. Before each request, outside the timed
lookup, it either reads through a buffer 1.5x the last-level cache (sysfs) (``cold=True``: the
table has been evicted, as after a burst of other work) or reads the table itself (warm). The
call times only the lookup and returns its ns (``hostperf(..., self_timed=True)``), so both
sides do the same untimed work of the same kind, and only what the caches hold differs.
"""
from __future__ import annotations

import time

import numpy as np

from pytest_hostperf.measure.sampling import touch

#: The table: 4 MiB, twice the per-core L2 of the development VM's EPYC, an eighth of its L3.
TABLE_BYTES = 4 << 20
ROW = 8  # int64 per row: 64 bytes, one cache line
#: Assumed when sysfs does not say: the development VM's L3.
DEFAULT_LLC_BYTES = 32 << 20


def llc_bytes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> int:
    """The largest cache of CPU 0 in bytes, from sysfs (``index*/size``, e.g. ``32768K``)."""
    from pathlib import Path

    sizes = []
    for f in Path(root).glob("index*/size"):
        try:
            text = f.read_text().strip().upper()
            sizes.append(int(text[:-1]) << {"K": 10, "M": 20, "G": 30}[text[-1]] if text[-1] in "KMG" else int(text))
        except (OSError, ValueError, KeyError, IndexError):
            continue
    return max(sizes, default=DEFAULT_LLC_BYTES)


def evict_bytes() -> int:
    """1.5x the last-level cache, between 16 MiB and 512 MiB: reading it through evicts the table."""
    return min(512 << 20, max(16 << 20, llc_bytes() * 3 // 2))


class Lookup:
    """One feature lookup per call: ``rows`` random rows of the table, summed; returns its ns."""

    def __init__(self, *, cold: bool, rows: int = 256, table_bytes: int = TABLE_BYTES,
                 evict: int | None = None, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.table = rng.integers(0, 1 << 20, size=(table_bytes // (8 * ROW), ROW), dtype=np.int64)
        self.indices = rng.integers(0, len(self.table), size=(1024, rows))
        self.evict = np.ones(evict_bytes() if evict is None else evict, dtype=np.uint8) if cold else None
        self.i = 0
        self.checksum = 0

    def __call__(self) -> int:
        touch(self.table if self.evict is None else self.evict)  # untimed: warm the table, or evict it
        idx = self.indices[self.i % len(self.indices)]
        self.i += 1
        t0 = time.perf_counter_ns()
        self.checksum += int(self.table[idx].sum())
        return time.perf_counter_ns() - t0
