"""Former home of the host fingerprint and the tuning audit, kept so existing imports work.

The code now lives by job: :mod:`.fingerprint` (what this host is), :mod:`.audit` (the
tuning checks, with their readings, verdicts and fixes) and :mod:`.procfs` (the /proc and
/sys readers both share). Import from those in new code; every name this module had is
re-exported here unchanged.
"""
from __future__ import annotations

from pytest_hostperf.host.audit import (
    Check,
    Verdict,
    audit,
    audit_summary,
    audit_to_json,
    check_cpu_freq,
    check_dev_shm,
    check_governor,
    check_hugepages,
    check_isolation,
    check_load,
    check_memlock,
    check_numa,
    check_rt_throttling,
    check_rtprio,
    check_smt,
    check_swappiness,
    check_thp,
    render_audit,
)
from pytest_hostperf.host.fingerprint import fingerprint
from pytest_hostperf.host.procfs import ROOT, effective_capabilities, status_field_kib

__all__ = [
    "ROOT",
    "Check",
    "Verdict",
    "audit",
    "audit_summary",
    "audit_to_json",
    "check_cpu_freq",
    "check_dev_shm",
    "check_governor",
    "check_hugepages",
    "check_isolation",
    "check_load",
    "check_memlock",
    "check_numa",
    "check_rt_throttling",
    "check_rtprio",
    "check_smt",
    "check_swappiness",
    "check_thp",
    "effective_capabilities",
    "fingerprint",
    "render_audit",
    "status_field_kib",
]
