"""Pure rules over per-block counters (read by ``counters.py``): per-call values, and which
counters changed clearly against a baseline. No system calls here: ``result.py`` uses it.

The per-call format ``{counter: {"per_call": float, "blocks": [float, ...]}}`` is defined here.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def per_call(names: tuple[str, ...], block_deltas: npt.NDArray[np.float64], block_calls: npt.ArrayLike
             ) -> dict[str, dict[str, Any]]:
    """Per counter: the per-call mean over all blocks and each block's per-call value.

    ``block_deltas`` is (blocks, counters); ``block_calls`` the calls of each block (samples x
    batch). ``ipc`` is derived from cycles and instructions where both exist.
    """
    calls = np.maximum(np.asarray(block_calls, dtype=np.float64), 1.0)
    out: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(names):
        col = block_deltas[:, j]
        out[name] = {"per_call": float(col.sum() / calls.sum()), "blocks": (col / calls).round(4).tolist()}
    if "cycles" in out and "instructions" in out:
        cyc = block_deltas[:, names.index("cycles")]
        ins = block_deltas[:, names.index("instructions")]
        out["ipc"] = {"per_call": float(ins.sum() / max(cyc.sum(), 1.0)),
                      "blocks": (ins / np.maximum(cyc, 1.0)).round(4).tolist()}
    return out


#: A counter changed when its per-call value moved by at least this much...
MIN_ABS_CHANGE = 0.5
#: ...and by at least this factor (either way).
MIN_FACTOR = 1.5


def changed(current: dict[str, dict[str, Any]], baseline: list[dict[str, dict[str, Any]]]
            ) -> list[tuple[str, float, float]]:
    """Counters whose per-call value differs clearly from every baseline run's: ``(name, before, now)``.

    "Clearly": beyond the baseline runs' own range by at least ``MIN_ABS_CHANGE`` per call and
    by a factor of ``MIN_FACTOR`` (counts are small integers per call: 0 -> 3 allocations, 0 ->
    256 page faults; a rule on the range is enough and never fires on the counters' own jitter).
    """
    out: list[tuple[str, float, float]] = []
    for name, cur in current.items():
        before = [b[name]["per_call"] for b in baseline if name in b]
        if not before:
            continue
        now, lo, hi = cur["per_call"], min(before), max(before)
        grew = now > hi + MIN_ABS_CHANGE and now >= MIN_FACTOR * max(hi, 1e-9)
        shrank = now < lo - MIN_ABS_CHANGE and lo >= MIN_FACTOR * max(now, 1e-9)
        if grew or shrank:
            out.append((name, float(np.median(before)), now))
    return out


def describe_changes(changes: list[tuple[str, float, float]]) -> str:
    """``page faults/call 0.0 -> 16.0, py_allocations/call 0 -> 3``."""
    def fmt(x: float) -> str:
        return f"{x:.0f}" if abs(x) >= 10 else f"{x:.1f}"

    return ", ".join(f"{name.replace('_', ' ')}/call {fmt(a)} -> {fmt(b)}" for name, a, b in changes)
