"""Which fields of the inputs' hosts differ: fingerprint, scheduling, memory locking,
concurrency and audit readings, as the comparison's host-differences table shows them."""
from __future__ import annotations

from collections.abc import Sequence

from pytest_hostperf.host.sched import short_policy
from pytest_hostperf.reports.model import Source
from pytest_hostperf.reports.tables import cell
from pytest_hostperf.store.records import HostState

#: Audit readings that change from minute to minute on one host: never a host difference.
MOMENTARY_AUDIT = frozenset({"load", "cpu_freq"})
#: Fingerprint fields in the order a reader scans them; others follow sorted.
_FINGERPRINT_ORDER = ("cpu_model", "logical_cpus", "physical_cores", "smt", "numa_nodes", "arch", "kernel",
                      "python", "python_implementation", "governor", "rt_runtime_us", "numpy", "torch",
                      "cuda_device")


def _policy_text(host: HostState) -> str:
    policy = host.policy or "?"
    return f"{policy} {host.priority}" if short_policy(policy) in ("fifo", "rr") else policy


def host_fields(src: Source) -> dict[str, str | None]:
    """What a reader needs to know about an input's host: id, fingerprint, the scheduling and
    memory locking its measurements ran under, concurrency, and the audit readings."""
    out: dict[str, object] = {"host id": src.host_id}
    fp = src.fingerprint
    for key in [*(k for k in _FINGERPRINT_ORDER if k in fp), *sorted(k for k in fp if k not in _FINGERPRINT_ORDER)]:
        out[key] = fp[key]
    hosts = [m.host for m in src.measurements.values() if m.host]
    if hosts:
        locked = {bool(h.memory_locked) for h in hosts}
        out.update({"scheduling": ", ".join(sorted({_policy_text(h) for h in hosts})),
                    "memory locked": "mixed" if len(locked) > 1 else "yes" if locked.pop() else "no"})
    if src.concurrency is not None:
        out.update(concurrency=src.concurrency)
    for name, reading in src.audit.items():
        if name not in MOMENTARY_AUDIT:
            out[f"audit {name}"] = reading
    return {k: cell(v) for k, v in out.items()}


def host_differences(sources: Sequence[Source]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Fields whose value is not the same in every input that records them, with each input's
    value (``-``: unknown or not recorded)."""
    fields = [host_fields(s) for s in sources if s.kind != "none"]
    if len(fields) < 2:
        return ()
    names: dict[str, None] = {}
    for f in fields:
        names.update(dict.fromkeys(f))
    out = []
    for name in names:
        known = [f[name] for f in fields if name in f]  # a field an input does not record is no difference
        if len(known) >= 2 and len(set(known)) > 1:
            out.append((name, tuple("-" if f.get(name) is None else str(f[name]) for f in fields)))
    return tuple(out)
