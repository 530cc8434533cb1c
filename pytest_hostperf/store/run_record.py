"""The older way to build a baseline run for saving, as dicts: :func:`measurement_record`
(which encodes the samples' histogram again) and :func:`new_run`, each validated at once.

Superseded by the typed path -- ``records.StoredRun.of(report)`` (each result's histogram
encoded once, by the report) handed to ``disk.save_run``, which validates once. Kept only
while ``run/outputs.py`` and ``run/xdist.py`` still call it; it goes with them.
"""
from __future__ import annotations

import copy
import math
from datetime import datetime, timezone
from typing import Any

import numpy as np
import numpy.typing as npt

from pytest_hostperf.errors import BaselineError, InvalidArgument
from pytest_hostperf.store.baseline_schema import (
    _BLOCK_KEYS,
    _RECORD_KEYS,
    _RUN_KEYS,
    _TIMER_KEYS,
    _check_record,
    _check_run,
)
from pytest_hostperf.store.histogram import encode_histogram
from pytest_hostperf.store.jsoncheck import _check_json, _Invalid

__all__ = ["measurement_record", "new_run"]


def _ns_int(value: object) -> object:
    """An integer from ints, numpy scalars and finite floats (rounded); anything else unchanged
    so that validation reports it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value):
        return int(round(float(value)))
    return value


def measurement_record(result_dict: dict[str, Any], samples_ns: npt.ArrayLike) -> dict[str, Any]:
    """What a baseline stores for one measurement: the summary of ``records.ResultRecord.to_json()`` (mode,
    batch, n, percentiles, min, max, mean, per-block percentiles, group, host) plus the
    histogram of ``samples_ns``. All times are integer ns. Raises BaselineError when the
    two do not describe a valid measurement (the record would not load back)."""
    if not isinstance(result_dict, dict):
        raise BaselineError(f"measurement_record: expected ResultRecord.to_json(), got {type(result_dict).__name__}")
    missing = sorted((_RECORD_KEYS - {"histogram"}) - result_dict.keys())
    if missing:
        raise BaselineError(f"measurement_record: result dict lacks {', '.join(missing)}; "
                            "pass ResultRecord.to_json()")
    record: dict[str, Any] = {k: _ns_int(result_dict[k]) for k in _RECORD_KEYS - {"histogram", "blocks"}}
    blocks = result_dict["blocks"]
    record["blocks"] = ([{k: _ns_int(b.get(k)) for k in _BLOCK_KEYS} if isinstance(b, dict) else b
                         for b in blocks] if isinstance(blocks, (list, tuple)) else blocks)
    if "host" in result_dict and result_dict["host"] is not None:
        record["host"] = copy.deepcopy(result_dict["host"])
    if result_dict.get("counters"):
        record["counters"] = copy.deepcopy(result_dict["counters"])
    try:
        record["histogram"] = encode_histogram(samples_ns)
    except InvalidArgument as exc:
        raise BaselineError(f"measurement_record: {exc}") from None
    try:
        _check_json(record, "record")
        _check_record(record, "record")
    except _Invalid as exc:
        raise BaselineError(f"measurement_record for {result_dict.get('id', '?')!r}: {exc}") from None
    return record


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run(*, measurements: dict[str, dict[str, Any]], fingerprint: dict[str, Any], audit: list[Any],
            timer: dict[str, Any] | None, tools: dict[str, Any], concurrency: int = 1,
            commit: dict[str, Any] | None = None, created_utc: str | None = None,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run, ready for :func:`store.save_run`; validated here, so a bad input fails at once.

    ``measurements`` maps ids to :func:`measurement_record` results; ``audit`` is
    ``host.audit.audit_to_json(...)`` (``Check`` objects are converted); ``timer`` is the
    ``{"clock", "overhead_ns", "resolution_ns", "pairs"}`` dict (a ``TimerInfo`` is
    converted, float ns rounded); ``commit`` defaults to unknown (see :func:`provenance.commit_info`);
    ``created_utc`` to now. ``extra`` adds JSON keys to the run; it cannot replace one.
    """
    if timer is not None and not isinstance(timer, dict):
        timer = {k: getattr(timer, k, None) for k in _TIMER_KEYS}
    if isinstance(timer, dict):
        timer = {k: (_ns_int(v) if k.endswith("_ns") else v) for k, v in timer.items()}
    run: dict[str, Any] = {
        "created_utc": _utc_now() if created_utc is None else created_utc,
        "commit": {"sha": None, "branch": None, "dirty": None} if commit is None else dict(commit),
        "tools": dict(tools) if isinstance(tools, dict) else tools,
        "fingerprint": dict(fingerprint) if isinstance(fingerprint, dict) else fingerprint,
        "audit": ([a.as_dict() if hasattr(a, "as_dict") else a for a in audit]
                  if isinstance(audit, (list, tuple)) else audit),
        "timer": timer,
        "concurrency": concurrency,
        "measurements": measurements,
    }
    if extra:
        clash = sorted(set(extra) & _RUN_KEYS)
        if clash:
            raise BaselineError(f"new_run: extra keys {', '.join(clash)} would replace the run's own keys; "
                                "rename them")
        run.update(extra)
    run = copy.deepcopy(run)  # the run must not share mutable parts with the caller's objects
    try:
        _check_json(run, "run")
        _check_run(run, "run")
    except _Invalid as exc:
        raise BaselineError(f"new_run: {exc}") from None
    return run
