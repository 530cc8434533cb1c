"""Raw samples over the wire: a head-tree replica sends what it sampled to the head, which
reports it as its result. The values go as the bytes of their float64 array (base64 in the
JSON line): exact, and a tenth of the size of decimal text."""
from __future__ import annotations

import base64

import numpy as np

from pytest_hostperf.measure.sampling import Samples
from pytest_hostperf.pairing.channel import Json


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def samples_to_wire(raw: Samples) -> Json:
    out: Json = {"values": _b64(raw.values), "block_sizes": list(raw.block_sizes), "batch": raw.batch,
                 "warmup_calls": raw.warmup_calls, "calls": raw.calls, "seconds": raw.seconds,
                 "truncated": raw.truncated}
    if raw.wall is not None:  # timer="cuda": each call's host wall time beside its device time
        out["wall"] = _b64(raw.wall)
    if raw.service is not None and raw.load is not None:  # rate=: each call's service time, and the load
        out["service"] = _b64(raw.service)
        out["load"] = dict(raw.load)
    return out


def samples_from_wire(d: Json) -> Samples:
    values = np.frombuffer(base64.b64decode(d["values"]), dtype="<f8").astype(np.float64)
    sizes = tuple(int(x) for x in d["block_sizes"])
    if sum(sizes) != values.size:
        raise ValueError(f"samples_from_wire: {values.size} values for blocks of {sum(sizes)}")
    wall = np.frombuffer(base64.b64decode(d["wall"]), dtype="<f8").astype(np.float64) if d.get("wall") else None
    if wall is not None and wall.size != values.size:
        raise ValueError(f"samples_from_wire: {wall.size} wall times for {values.size} values")
    service = np.frombuffer(base64.b64decode(d["service"]), dtype="<f8").astype(np.float64) \
        if d.get("service") else None
    if service is not None and service.size != values.size:
        raise ValueError(f"samples_from_wire: {service.size} service times for {values.size} values")
    return Samples(values=values, block_sizes=sizes, batch=int(d["batch"]), warmup_calls=int(d["warmup_calls"]),
                   calls=int(d["calls"]), seconds=float(d["seconds"]), truncated=bool(d["truncated"]), wall=wall,
                   timer="cuda" if wall is not None else "wall", service=service,
                   load=dict(d["load"]) if service is not None and isinstance(d.get("load"), dict) else None)
