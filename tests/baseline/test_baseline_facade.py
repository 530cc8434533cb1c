"""``pytest_hostperf.baseline`` is a facade: each name it exports is its owner module's object."""
from __future__ import annotations

import pytest

from pytest_hostperf import baseline, histogram, hostid, provenance, run_record, schema, store

OWNERS = {
    hostid: ["HOST_ID_MAX", "host_id", "sanitize_host_id"],
    histogram: ["ENCODING", "MAX_INDEX", "SUB_BUCKETS", "decode_histogram", "encode_histogram",
                "histogram_percentiles"],
    provenance: ["GIT_TIMEOUT_S", "commit_info"],
    schema: ["MAX_DEPTH", "MAX_NS", "SCHEMA", "SCHEMA_VERSION"],
    run_record: ["measurement_record", "new_run"],
    store: ["DEFAULT_KEEP", "LOCK_TIMEOUT_S", "MAX_BYTES", "MAX_VALUES", "Baseline", "baseline_path",
            "list_host_ids", "load", "load_if_exists", "save_run", "to_json"],
}


@pytest.mark.parametrize("module", list(OWNERS), ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_facade_reexports_the_owners_objects(module: object) -> None:
    for name in OWNERS[module]:
        assert getattr(baseline, name) is getattr(module, name), name


def test_facade_exports_exactly_the_owned_names() -> None:
    assert sorted(baseline.__all__) == sorted(n for names in OWNERS.values() for n in names)


def test_every_module_states_its_job() -> None:
    for module in (baseline, *OWNERS):
        assert module.__doc__ and len(module.__doc__.split()) > 10, module.__name__
