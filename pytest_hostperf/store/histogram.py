"""The latency histogram codec (``log2-32``): encode samples, decode, merge, recompute percentiles.

A baseline keeps each measurement's distribution as a compact log-bucket histogram so any
percentile can be recomputed and plotted without re-running (see :func:`encode_histogram`
for the format). :func:`_check_histogram` is the format's shape check, used by both schemas
for the histograms inside a baseline or a report and here for histograms handed in. The
bucket scheme itself is the statistics layer's (``stats.percentiles.bucket_of``). Pure: no I/O.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pytest_hostperf.errors import BaselineError, InvalidArgument
from pytest_hostperf.stats.percentiles import SUB_BUCKETS, bucket_of
from pytest_hostperf.store.jsoncheck import (
    MAX_NS,
    _at,
    _check_json,
    _int,
    _Invalid,
    _keys,
    _kind,
    _ns,
    _obj,
    _show,
)
from pytest_hostperf.store.jsonfile import Json

__all__ = ["ENCODING", "MAX_INDEX", "SUB_BUCKETS", "decode_histogram", "encode_histogram",
           "histogram_percentiles", "histogram_samples", "merge_histograms"]

ENCODING = "log2-32"

_HIST_KEYS = frozenset({"encoding", "sub_buckets", "index", "count", "min_ns", "max_ns", "total"})


MAX_INDEX = int(bucket_of(np.array([MAX_NS]))[0])


def encode_histogram(samples_ns: npt.ArrayLike) -> Json:
    """The latency distribution in a compact log-bucket histogram (``log2-32``).

    Samples are rounded to integer ns. Bucket ``i`` covers ``[2**(i/32), 2**((i+1)/32))``
    ns; values below 1 ns count in bucket 0. Each bucket is about 2.2% wide, so any
    percentile recomputed from the histogram is within about 1.1% (one half bucket) of
    the exact one. Only non-empty buckets are stored, as two parallel lists::

        {"encoding": "log2-32", "sub_buckets": 32,
         "index": [328, 329, 352], "count": [5, 93, 2],   # ascending, counts >= 1
         "min_ns": 1230, "max_ns": 2050, "total": 100}     # exact min, max and sample count

    A bucket's representative value is its geometric middle, ``2**((i+0.5)/32)`` ns.

    >>> encode_histogram(np.array([1000, 1000, 1001, 2000]))["count"]
    [3, 1]
    """
    values = np.asarray(samples_ns, dtype=np.float64).ravel()
    if values.size == 0:
        raise InvalidArgument("encode_histogram: no samples")
    if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > MAX_NS:
        raise InvalidArgument(f"encode_histogram: samples must be finite ns in [0, {MAX_NS}], got min "
                              f"{values.min()!r}, max {values.max()!r}")
    ints = np.rint(values).astype(np.int64)
    index, count = np.unique(bucket_of(ints), return_counts=True)
    return {
        "encoding": ENCODING,
        "sub_buckets": SUB_BUCKETS,
        "index": [int(i) for i in index],
        "count": [int(c) for c in count],
        "min_ns": int(ints.min()),
        "max_ns": int(ints.max()),
        "total": int(ints.size),
    }


def _checked_histogram(h: Json) -> Json:
    """``h`` itself once its shape is checked; BaselineError ``malformed histogram: ...`` if not."""
    try:
        _check_json(h, "histogram")
        _check_histogram(h, "histogram")
    except _Invalid as exc:
        raise BaselineError(f"malformed histogram: {exc}") from None
    return h


def decode_histogram(h: Json) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """(representative value in ns of each stored bucket — its geometric middle —, count)."""
    _checked_histogram(h)
    index = np.asarray(h["index"], dtype=np.float64)
    return np.exp2((index + 0.5) / SUB_BUCKETS), np.asarray(h["count"], dtype=np.int64)


def histogram_percentiles(h: Json, qs: Sequence[float]) -> npt.NDArray[np.float64]:
    """Percentiles (0..100) recomputed from a histogram, numpy's linear method.

    Each order statistic is taken as its bucket's representative value (the exact min
    and max at the ends), clamped to ``[min_ns, max_ns]``; so a result lies within one
    bucket width (2.2%, in practice half that) of ``np.percentile`` of the samples.
    """
    _checked_histogram(h)
    q = np.asarray(list(qs), dtype=np.float64)
    if q.size and (not np.all(np.isfinite(q)) or q.min() < 0 or q.max() > 100):
        raise InvalidArgument(f"histogram_percentiles: percentiles must be in [0, 100], got {list(qs)!r}")
    reps, counts = decode_histogram(h)
    lo_ns, hi_ns = float(h["min_ns"]), float(h["max_ns"])
    reps = np.clip(reps, lo_ns, hi_ns)
    total = int(h["total"])
    cum = np.cumsum(counts)

    def order_stat(k: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        out = reps[np.searchsorted(cum, k, side="right")]
        out = np.where(k == 0, lo_ns, out)
        return np.where(k == total - 1, hi_ns, out)

    rank = (total - 1) * q / 100.0
    below = np.floor(rank).astype(np.int64)
    above = np.minimum(below + 1, total - 1)
    frac = rank - below
    v_lo, v_hi = order_stat(below), order_stat(above)
    return np.clip(v_lo + frac * (v_hi - v_lo), lo_ns, hi_ns)


def histogram_samples(h: Json) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The histogram as whole-ns values with counts, ascending, for another histogram to record.

    One count each at the exact ``min_ns`` and ``max_ns`` (the first and last sample, which
    the histogram knows exactly); every other sample at its bucket's representative value
    rounded to whole ns and clamped to ``[min_ns, max_ns]``, as :func:`histogram_percentiles`
    reads them. So the values are exact to one bucket width (1/32 of a power of two, 2.2%).

    >>> v, c = histogram_samples(encode_histogram(np.array([1000, 1000, 1001, 1500, 2000])))
    >>> v.tolist(), c.tolist()
    ([1000, 1496, 2000], [3, 1, 1])
    """
    reps, counts = decode_histogram(h)
    lo_ns, hi_ns = int(h["min_ns"]), int(h["max_ns"])
    if int(h["total"]) == 1:
        return np.array([lo_ns], dtype=np.int64), np.array([1], dtype=np.int64)
    inner = counts.copy()
    inner[0] -= 1
    inner[-1] -= 1
    values = np.concatenate([[lo_ns], np.clip(np.rint(reps), lo_ns, hi_ns).astype(np.int64), [hi_ns]])
    counts = np.concatenate([[1], inner, [1]]).astype(np.int64)
    keep = counts > 0
    out, where = np.unique(values[keep], return_inverse=True)  # equal values (clamped ones) as one
    summed = np.zeros(out.size, dtype=np.int64)
    np.add.at(summed, where, counts[keep])
    return out.astype(np.int64), summed


def merge_histograms(histograms: Sequence[Json | None]) -> Json | None:
    """One ``log2-32`` histogram of several (a baseline's runs), each checked when it was read:
    counts added per bucket."""
    hs = [dict(h) for h in histograms if h]
    if not hs:
        return None
    if len(hs) == 1:
        return hs[0]
    counts: dict[int, int] = {}
    for h in hs:
        for i, n in zip(h["index"], h["count"]):
            counts[i] = counts.get(i, 0) + n
    index = sorted(counts)
    return {"encoding": hs[0]["encoding"], "sub_buckets": hs[0]["sub_buckets"], "index": index,
            "count": [counts[i] for i in index], "min_ns": min(h["min_ns"] for h in hs),
            "max_ns": max(h["max_ns"] for h in hs), "total": sum(h["total"] for h in hs)}


def _locate_bucket_problem(index: list[int], count: list[int], where: str) -> None:
    # The lists are unchecked JSON: the int annotation is what the fast path found untrue.
    """The slow path of histogram checking: find and name the first bad entry."""
    prev = -1
    for i, b in enumerate(index):
        _int(b, f"{where}.index[{i}]", 0, MAX_INDEX, "a bucket index")
        if b <= prev:
            raise _Invalid(f"{where}.index[{i}]", f"bucket indexes must be strictly ascending ({prev} then {b})")
        prev = b
    for i, c in enumerate(count):
        _int(c, f"{where}.count[{i}]", 1, MAX_NS, "a count")


def _check_histogram(h: object, where: str) -> None:
    h = _obj(h, where)
    _keys(h, where, _HIST_KEYS)
    if h["encoding"] != ENCODING:
        raise _Invalid(_at(where, "encoding"), f"unknown encoding {_show(h['encoding'])} (expected {ENCODING!r})")
    if h["sub_buckets"] != SUB_BUCKETS or type(h["sub_buckets"]) is not int:
        raise _Invalid(_at(where, "sub_buckets"), f"expected {SUB_BUCKETS}, got {_show(h['sub_buckets'])}")
    index, count = h["index"], h["count"]
    for name, v in (("index", index), ("count", count)):
        if type(v) is not list:
            raise _Invalid(_at(where, name), f"expected an array, got {_kind(v)}")
    if len(index) != len(count):
        raise _Invalid(where, f"index has {len(index)} entries but count has {len(count)}")
    if not index:
        raise _Invalid(_at(where, "index"), "no buckets")
    if not (all(type(b) is int for b in index) and all(type(c) is int for c in count)
            and 0 <= index[0] and index[-1] <= MAX_INDEX and all(a < b for a, b in zip(index, index[1:]))
            and min(count) >= 1 and max(count) <= MAX_NS):
        _locate_bucket_problem(index, count, where)
    total = _int(h["total"], _at(where, "total"), 1, MAX_NS)
    if sum(count) != total:
        raise _Invalid(_at(where, "total"), f"{total}, but the counts add up to {sum(count)}")
    lo, hi = _ns(h["min_ns"], _at(where, "min_ns")), _ns(h["max_ns"], _at(where, "max_ns"))
    if lo > hi:
        raise _Invalid(where, f"min_ns {lo} > max_ns {hi}")
    lo_b, hi_b = (int(x) for x in bucket_of(np.array([lo, hi])))
    if lo_b != index[0] or hi_b != index[-1]:
        raise _Invalid(where, f"min_ns/max_ns fall in buckets {lo_b}/{hi_b}, but the stored buckets span "
                              f"{index[0]}..{index[-1]}")
