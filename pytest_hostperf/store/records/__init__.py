"""Typed records of a run, each owning its JSON: nothing else knows the keys.

A report (``--hostperf-json``) is a :class:`Report` of :class:`ResultRecord` s; a baseline
run is a :class:`StoredRun` of :class:`StoredMeasurement` s. Each record has ``to_json()``
(the JSON-ready dict, byte-compatible with the formats published in docs/) and
``from_json(d)`` (from a dict already checked by ``baseline_schema`` or ``report_schema``, or
written by this version); ``of(...)`` builds one from the layers below (a ``stats.Result``,
a ``verdict.Verdict``...) or, for a baseline run, from the run's report.
Times are integer nanoseconds. Blobs whose keys belong to another module stay dicts there:
a fingerprint (``host/``), audit entries, a histogram (``histogram.py``), counters
(``measure.counters``), noise probes (``measure.noise``): those are ``Json`` objects.

Plain frozen dataclasses, not msgspec Structs: validation of baselines needs JSON paths in
its messages and ranges msgspec's decoder does not express, and the records are built a few
hundred times per run, where decoding speed does not matter.
"""
from __future__ import annotations

from pytest_hostperf.store.records.parts import (
                                           REPORT_SCHEMA,
                                           REPORT_SCHEMA_VERSION,
                                           Block,
                                           BudgetRecord,
                                           Commit,
                                           HostState,
                                           SpeedupRecord,
                                           Timer,
                                           VerdictRecord,
                                           applied_from_json,
)
from pytest_hostperf.store.records.report import (
                                           BaselineInfo,
                                           CountersInfo,
                                           HostInfo,
                                           NoiseInfo,
                                           Report,
                                           ResultRecord,
                                           Settings,
                                           audit_warnings,
)
from pytest_hostperf.store.records.stored import StoredMeasurement, StoredRun, utc_now

__all__ = ["REPORT_SCHEMA", "REPORT_SCHEMA_VERSION", "BaselineInfo", "Block", "BudgetRecord", "Commit",
           "CountersInfo", "HostInfo", "HostState", "NoiseInfo", "Report", "ResultRecord", "Settings",
           "SpeedupRecord", "StoredMeasurement", "StoredRun", "Timer", "VerdictRecord", "applied_from_json",
           "audit_warnings", "utc_now"]
