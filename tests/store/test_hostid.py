"""Host ids (hostid.py): stable, grouping hosts of one class, and always a safe file name."""
from __future__ import annotations

import re

import pytest
from baseline_data import FP
from hypothesis import given
from hypothesis import strategies as st

from pytest_hostperf.errors import BaselineError
from pytest_hostperf.store import hostid


def test_host_id_of_a_fixed_fingerprint_never_changes() -> None:
    # Changing it renames every committed baseline: store.legacy_baseline finds a file named by
    # the previous rule (e5c77717 here, before issue 16) by its runs' fingerprint, and moves it.
    assert hostid.host_id(FP) == "amd-epyc-7b13-64-core-2cpu-x86_64-0aacc7f7"



def test_sanitize_examples() -> None:
    assert hostid.sanitize_host_id("CI Runner #3 (x86_64)") == "ci-runner-3-x86_64"
    assert hostid.sanitize_host_id("../../etc/passwd") == "etc-passwd"
    assert hostid.sanitize_host_id("Café") == "cafe"
    assert len(hostid.sanitize_host_id("x" * 300)) == 80


@given(st.text())
def test_sanitize_is_safe_and_idempotent(text: str) -> None:
    try:
        clean = hostid.sanitize_host_id(text)
    except BaselineError:
        return
    assert re.fullmatch(r"[a-z0-9_][a-z0-9._-]*", clean) and len(clean) <= 80 and ".." not in clean
    assert hostid.sanitize_host_id(clean) == clean



def test_host_id_groups_hosts_of_one_class() -> None:
    hid = hostid.host_id(FP)
    assert hostid.host_id(dict(FP)) == hid
    assert hostid.host_id({**FP, "kernel": "5.15.0-92-generic"}) == hid  # patch level: same class
    assert hostid.host_id({**FP, "python": "3.11.9", "numpy": "2.0.0", "rt_runtime_us": -1}) == hid
    assert hostid.host_id({**FP, "kernel": "6.1.0-13-amd64"}) != hid
    assert hostid.host_id({**FP, "python": "3.12.1"}) != hid
    # fields only hostperf reads are compared when the baseline is used, not hashed: one id per
    # machine whatever measured it (pytest-benchmark's machine_info has none of them)
    assert hostid.host_id({**FP, "governor": "performance", "smt": False, "numa_nodes": None}) == hid
    assert hostid.host_id({**FP, "python_implementation": "cpython"}) == hid
    other = hostid.host_id({**FP, "cpu_model": "AMD EPYC 7763 64-Core Processor"})
    assert other != hid and other.startswith("amd-epyc-7763-64-core-2cpu-x86_64-")
    intel = hostid.host_id({**FP, "cpu_model": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
                              "logical_cpus": 8})
    assert intel.startswith("intel-xeon-platinum-8375c-8cpu-x86_64-")


@pytest.mark.parametrize("fp", [{k: None for k in FP}, {}, {"cpu_model": "   "}, {"cpu_model": "@@@ (TM)"},
                                {"cpu_model": "x" * 500, "logical_cpus": 10**6, "arch": "../../" * 50},
                                {"cpu_model": 5, "logical_cpus": "two", "kernel": 5, "python": None}])
def test_host_id_tolerates_missing_and_odd_values(fp: dict) -> None:
    hid = hostid.host_id(fp)
    assert re.fullmatch(r"[a-z0-9_][a-z0-9._-]*-[0-9a-f]{8}", hid) and len(hid) <= 80
    assert hostid.sanitize_host_id(hid) == hid
    if not isinstance(fp.get("cpu_model"), str) or not fp["cpu_model"].strip():
        assert hid.startswith("unknown-cpu")


def test_host_id_override_wins() -> None:
    assert hostid.host_id(FP, override="My CI/Runner") == "my-ci-runner"
    with pytest.raises(BaselineError, match="no usable characters"):
        hostid.host_id(FP, override="../")

