"""Host ids: the name of a host class, and so of its baseline file ``<host-id>.json``.

:func:`host_id` makes one from a host fingerprint (a readable slug plus a short hash of
the fields that change latency), :func:`sanitize_host_id` makes any text safe as a file
name. Pure: no I/O (the file's path in a folder is ``disk.baseline_path``).
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

from pytest_hostperf.errors import BaselineError

__all__ = ["HOST_ID_MAX", "host_id", "sanitize_host_id"]

HOST_ID_MAX = 80

_MAJOR_MINOR_RE = re.compile(r"\s*(\d+)\.(\d+)")


def sanitize_host_id(text: str) -> str:
    """A host id made safe as a file name: a lowercase slug of ``[a-z0-9._-]``.

    Runs of other characters become one ``-``, runs of dots one ``.``; leading dots and
    dashes go, and the result is at most 80 characters. ``/``, ``\\``, NUL and ``..`` can
    never survive, so the id can never name a path outside the baselines folder.

    >>> sanitize_host_id("CI Runner #3 (x86_64)")
    'ci-runner-3-x86_64'
    >>> sanitize_host_id("../../etc/passwd")
    'etc-passwd'
    """
    if not isinstance(text, str):
        raise BaselineError(f"host id {text!r} is not a string; give a name such as 'ci-runner-1'")
    s = unicodedata.normalize("NFKD", text.lower())
    s = "".join(c for c in s if not unicodedata.combining(c))  # 'Café' -> 'cafe', not 'caf-'
    s = re.sub(r"[^a-z0-9._-]+", "-", s)
    s = re.sub(r"\.{2,}", ".", s)
    s = re.sub(r"-{2,}", "-", s)
    s = s.lstrip(".-")[:HOST_ID_MAX].rstrip(".-")
    if not s:
        shown = repr(text) if len(text) <= 60 else repr(text[:60]) + "..."
        raise BaselineError(f"host id {shown} has no usable characters; use letters, digits, '.', '_' "
                            "or '-' (e.g. --hostperf-host=ci-runner-1 or HOSTPERF_HOST=ci-runner-1)")
    return s


def _major_minor(value: object) -> object:
    """'5.15.0-91-generic' -> '5.15', '3.11.7' -> '3.11'; anything else unchanged."""
    if isinstance(value, str):
        m = _MAJOR_MINOR_RE.match(value)
        return f"{int(m.group(1))}.{int(m.group(2))}" if m else value.strip()
    return value


def _short_model(model: str) -> str:
    """'Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz' -> 'Intel Xeon Platinum 8375C'."""
    s = re.sub(r"\([^)]*\)", " ", model)  # (R), (TM), and VM notes like '(with IBPB)'
    s = re.sub(r"@\s*[\d.]+\s*[GMK]Hz", " ", s, flags=re.IGNORECASE)
    s = re.sub(r"\b(CPU|Processor)\b", " ", s, flags=re.IGNORECASE)
    return " ".join(s.split())


def host_id(fingerprint: dict[str, Any], override: str | None = None) -> str:
    """The id of this host class, naming its baseline file.

    ``override`` (``--hostperf-host`` / ``HOSTPERF_HOST``) wins, sanitized. Otherwise a
    readable slug (short CPU model, logical CPUs, arch) plus 8 hex digits of a SHA-256 over
    the fields every source reports, hostperf's own fingerprint and pytest-benchmark's
    ``machine_info`` alike, so that one machine has one id whatever measured it (a baseline
    saved from pytest-benchmark's file and one saved by hostperf itself must be the same file):
    CPU model, logical CPUs, arch, kernel major.minor, Python major.minor and implementation.
    The kernel patch level is left out so that CI runners of one SKU share a baseline; the
    fields only hostperf reads (physical cores, SMT, NUMA nodes, governor, RT throttling) are
    compared when a baseline is used, and the summary names those that differ.

    >>> host_id({"cpu_model": "AMD EPYC", "logical_cpus": 2, "arch": "x86_64"})[:-8]
    'amd-epyc-2cpu-x86_64-'
    """
    if override is not None:
        return sanitize_host_id(override)
    fp = fingerprint if isinstance(fingerprint, dict) else {}
    model = fp.get("cpu_model")
    model = " ".join(model.split()) if isinstance(model, str) and model.strip() else None
    impl = fp.get("python_implementation")
    fields = {
        "cpu_model": model,
        "logical_cpus": fp.get("logical_cpus"),
        "arch": fp.get("arch"),
        "kernel": _major_minor(fp.get("kernel")),
        "python": _major_minor(fp.get("python")),
        "python_implementation": impl.strip().lower() if isinstance(impl, str) else impl,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8]
    try:
        cpu = sanitize_host_id(_short_model(model))[:48] if model else "unknown-cpu"
    except BaselineError:  # a model name of symbols only
        cpu = "unknown-cpu"
    parts = [cpu]
    logical = fp.get("logical_cpus")
    if type(logical) is int:
        parts.append(f"{logical}cpu")
    if isinstance(fp.get("arch"), str) and fp["arch"].strip():
        parts.append(fp["arch"])
    slug = sanitize_host_id("-".join(parts))[:HOST_ID_MAX - 9].rstrip(".-")
    return f"{slug}-{digest}"

