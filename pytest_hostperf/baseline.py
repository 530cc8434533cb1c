"""Per-host baselines: the names other modules use, from the modules that own each job.

``from pytest_hostperf import baseline`` keeps working; new code imports from the owner:

- :mod:`pytest_hostperf.hostid` -- host ids (``host_id``, ``sanitize_host_id``);
- :mod:`pytest_hostperf.histogram` -- the ``log2-32`` latency histogram codec;
- :mod:`pytest_hostperf.provenance` -- the git commit of a run (``commit_info``);
- :mod:`pytest_hostperf.schema` -- the format (``SCHEMA``, ``SCHEMA_VERSION``) and its validation;
- :mod:`pytest_hostperf.run_record` -- building a run for saving (``measurement_record``, ``new_run``);
- :mod:`pytest_hostperf.store` -- the only reader and writer of baseline files (``load``,
  ``save_run``, ``Baseline``...).
"""
from __future__ import annotations

from pytest_hostperf.histogram import (
    ENCODING,
    MAX_INDEX,
    SUB_BUCKETS,
    decode_histogram,
    encode_histogram,
    histogram_percentiles,
)
from pytest_hostperf.hostid import HOST_ID_MAX, host_id, sanitize_host_id
from pytest_hostperf.provenance import GIT_TIMEOUT_S, commit_info
from pytest_hostperf.run_record import measurement_record, new_run
from pytest_hostperf.schema import MAX_DEPTH, MAX_NS, SCHEMA, SCHEMA_VERSION
from pytest_hostperf.store import (
    DEFAULT_KEEP,
    LOCK_TIMEOUT_S,
    MAX_BYTES,
    MAX_VALUES,
    Baseline,
    baseline_path,
    list_host_ids,
    load,
    load_if_exists,
    save_run,
    to_json,
)

__all__ = [
    "DEFAULT_KEEP",
    "ENCODING",
    "GIT_TIMEOUT_S",
    "HOST_ID_MAX",
    "LOCK_TIMEOUT_S",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_INDEX",
    "MAX_NS",
    "MAX_VALUES",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SUB_BUCKETS",
    "Baseline",
    "baseline_path",
    "commit_info",
    "decode_histogram",
    "encode_histogram",
    "histogram_percentiles",
    "host_id",
    "list_host_ids",
    "load",
    "load_if_exists",
    "measurement_record",
    "new_run",
    "sanitize_host_id",
    "save_run",
    "to_json",
]
