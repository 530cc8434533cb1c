"""Hostile baseline files: each rejected with a clear error, in bounded time and memory.

tests/store/test_store.py checks the message of every malformed-file case in-process. This file
adds what that cannot show: the cost. Every corpus file is loaded in a fresh interpreter,
which reports the exception type, the message and how much its peak RSS grew; the suite
bounds the wall time of each interpreter (a hang is a failure, not a stall) and the RSS
growth. A 60 MiB file of ``[],`` -- under the 64 MiB size limit -- took 8 s and 1.5 GiB
before the loader learned to count values first. Then two fuzzers the other file lacks:
byte-level splicing of hostile tokens into a real baseline file, and saving over the result.
"""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_hostperf.errors import BaselineError
from pytest_hostperf.store import disk

from .conftest import GOLDEN, HOST, child_env, write_golden

#: What one rejected file may cost on top of the interpreter: a few times the size limit, and
#: below what the container flood cost before the value count (1.5 GiB).
RSS_BOUND_MIB = 1024
#: Longest message a rejection may print (keys and ids in it are cut to 80 characters).
MESSAGE_BOUND = 2000

LOADER = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    from pytest_hostperf.store import disk
    out = {}
    for name in sys.argv[2:]:
        path = Path(sys.argv[1], name)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            disk.load(path)
            got = {"type": None}
        except BaseException as exc:
            got = {"type": [c.__name__ for c in type(exc).__mro__], "message": str(exc)}
        got["rss_growth_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        out[name] = got
    print(json.dumps(out))
""")


def _load_elsewhere(folder: Path, names: list[str], timeout: float = 120) -> dict:
    """Load each file in a fresh interpreter (one for all ``names``); what each raised and cost."""
    proc = subprocess.run([sys.executable, "-c", LOADER, str(folder), *names], capture_output=True, text=True,
                          timeout=timeout, env=child_env())
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _golden_text() -> str:
    return GOLDEN.read_text(encoding="utf-8")


def _nested_key(size: int) -> bytes:
    doc = json.loads(_golden_text())
    doc["k" * size] = 1
    return json.dumps(doc).encode()


def _huge_id(size: int) -> bytes:
    doc = json.loads(_golden_text())
    run = doc["runs"][0]
    run["measurements"]["x" * size] = {"mode": "single"}
    return json.dumps(doc).encode()


def _nested_duplicate() -> bytes:
    text = _golden_text()
    return text.replace('"batch": ', '"batch": 1, "batch": ', 1).encode()


def _token(value: str) -> bytes:
    """The golden file with the first p99_ns value replaced by raw JSON text."""
    text, n = re.subn(r'"p99_ns": \d+', lambda m: f'"p99_ns": {value}', _golden_text(), count=1)
    assert n == 1
    return text.encode()


SMALL: dict[str, Callable[[], bytes]] = {
    "truncated-half.json": lambda: _golden_text()[: len(_golden_text()) // 2].encode(),
    "truncated-last-brace.json": lambda: _golden_text().rstrip()[:-1].encode(),
    "truncated-one-byte.json": lambda: b"{",
    "empty.json": lambda: b"",
    "nul-bytes.json": lambda: b"\0" * 4096,
    "random-binary.json": lambda: random.Random(8).randbytes(1 << 20),
    "utf8-bom.json": lambda: b"\xef\xbb\xbf" + _golden_text().encode(),
    "nested-arrays-100000.json": lambda: b"[" * 100_000,
    "nested-objects-100000.json": lambda: b'{"a":' * 100_000,
    "nested-parseable-900.json": lambda: b"[" * 900 + b"]" * 900,
    "float-1e400.json": lambda: _token("1e400"),
    "float-minus-1e400.json": lambda: _token("-1e400"),
    "int-5000-digits.json": lambda: _token("1" + "0" * 5000),
    "int-4000-digits.json": lambda: _token("1" + "0" * 4000),  # parses (< 4300 digits), then refused
    "nan.json": lambda: _token("NaN"),
    "infinity.json": lambda: _token("Infinity"),
    "minus-infinity.json": lambda: _token("-Infinity"),
    "top-level-nan.json": lambda: b"NaN",
    "wrong-type-version.json": lambda: _golden_text().replace('"schema_version": 1', '"schema_version": "1"').encode(),
    "wrong-type-runs.json": lambda: json.dumps({**json.loads(_golden_text()), "runs": {"0": 1}}).encode(),
    "unknown-schema.json": lambda: json.dumps({"schema": "pyperf", "version": "1.0", "benchmarks": []}).encode(),
    "future-schema.json": lambda: _golden_text().replace('"schema_version": 1', '"schema_version": 99').encode(),
    "duplicate-key-nested.json": _nested_duplicate,
    "one-megabyte-key.json": lambda: _nested_key(1 << 20),
    "one-megabyte-id.json": lambda: _huge_id(1 << 20),
}


def test_small_hostile_corpus_is_rejected_clearly(tmp_path: Path) -> None:
    for name, make in SMALL.items():
        (tmp_path / name).write_bytes(make())
    # Links that point outside the folder: never followed, whatever they point at.
    outside = tmp_path / "outside"
    write_golden(outside)
    links = {"link-to-outside-baseline.json": outside / f"{HOST}.json", "link-to-dev-zero.json": Path("/dev/zero"),
             "link-dangling.json": tmp_path / "nowhere.json", "link-to-etc.json": Path("/etc/hostname")}
    for name, target in links.items():
        (tmp_path / name).symlink_to(target)
    results = _load_elsewhere(tmp_path, [*SMALL, *links])
    for name, got in results.items():
        assert got["type"] is not None, f"{name} was accepted as a baseline"
        assert got["type"][:3] == ["BaselineError", "HostperfError", "ValueError"], (name, got["type"])
        assert str(tmp_path / name) in got["message"], (name, got["message"][:300])
        assert len(got["message"]) < MESSAGE_BOUND, (name, len(got["message"]), got["message"][:300])
        assert got["rss_growth_kib"] < RSS_BOUND_MIB * 1024, (name, got["rss_growth_kib"])
    for name in links:
        assert "symlink" in results[name]["message"], results[name]["message"]
    assert "nested too deep" in results["nested-objects-100000.json"]["message"]
    assert "too large" in results["int-4000-digits.json"]["message"]
    assert "UTF-8 BOM" in results["utf8-bom.json"]["message"]
    assert "newer pytest-hostperf" in results["future-schema.json"]["message"]
    assert 'duplicate key "batch"' in results["duplicate-key-nested.json"]["message"]
    assert '"kkkk' in results["one-megabyte-key.json"]["message"]  # named, but cut short


def _write_repeated(path: Path, head: bytes, unit: bytes, tail: bytes, total: int) -> None:
    with path.open("wb") as fh:
        fh.write(head)
        block = unit * ((1 << 20) // len(unit))
        written = len(head)
        while written + len(block) + len(tail) <= total:
            fh.write(block)
            written += len(block)
        fh.write(tail)


BIG = {
    # name: (head, repeated unit, tail, total bytes)
    "whitespace-100mb.json": (b'{"schema": "pytest-hostperf-baseline"', b" ", b"}", 100_000_000),
    "empty-lists-60mib.json": (b"[", b"[],", b"[]]", 60 << 20),
    "floats-60mib.json": (b"[", b"1.5,", b"1]", 60 << 20),
}


@pytest.mark.parametrize("name", sorted(BIG))
def test_big_hostile_files_cost_bounded_memory(tmp_path: Path, name: str) -> None:
    head, unit, tail, total = BIG[name]
    _write_repeated(tmp_path / name, head, unit, tail, total)
    got = _load_elsewhere(tmp_path, [name])[name]
    assert got["type"] is not None and got["type"][0] == "BaselineError", got
    assert str(tmp_path / name) in got["message"] and len(got["message"]) < MESSAGE_BOUND
    assert got["rss_growth_kib"] < RSS_BOUND_MIB * 1024, got["rss_growth_kib"]
    if name.startswith("whitespace"):
        assert "more than the 64 MiB" in got["message"]  # refused on its size, before reading
    else:
        assert "JSON values is more than" in got["message"]  # refused on its count, before parsing


def test_saving_over_a_hard_link_never_writes_through_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    before = write_golden(outside)
    folder = tmp_path / "baselines"
    folder.mkdir()
    os.link(outside / f"{HOST}.json", folder / f"{HOST}.json")
    latest = disk.load(folder / f"{HOST}.json").latest
    disk.save_run(folder, HOST, latest, keep=100)
    assert (outside / f"{HOST}.json").read_bytes() == before  # the rename replaced the link only
    assert len(disk.load(folder / f"{HOST}.json").runs) == 3


# --------------------------------------------------------------------------- fuzzing

HOSTILE_TOKENS = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"9" * 40, b"-0", b"1.0", b"[" * 50, b"{" * 50,
                  b"]", b"}", b'"', b",", b":", b"null", b"true", b'"\\u0000"', b'"\\ud800"', b"\xff\xfe",
                  b'"schema_version": 2', b'"runs": []', b'"n": -1', b'"a": 1, "a": 2', b"\0", b"\n" * 3]

splices = st.lists(
    st.tuples(st.sampled_from(["insert", "delete", "replace", "duplicate"]), st.floats(0, 1), st.integers(1, 64),
              st.one_of(st.sampled_from(HOSTILE_TOKENS), st.binary(min_size=1, max_size=16))),
    min_size=1, max_size=4)


def _splice(data: bytes, ops: list[tuple[str, float, int, bytes]]) -> bytes:
    for kind, where, length, token in ops:
        at = int(where * len(data))
        if kind == "insert":
            data = data[:at] + token + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + length:]
        elif kind == "replace":
            data = data[:at] + token + data[at + len(token):]
        else:
            data = data[:at] + data[at:at + length] + data[at:]
    return data


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(ops=splices)
def test_fuzz_spliced_real_file_only_ever_raises_baseline_error_and_is_never_overwritten(
        tmp_path: Path, ops: list[tuple[str, float, int, bytes]]) -> None:
    folder = tmp_path / "fuzz"
    valid = write_golden(folder)
    path = folder / f"{HOST}.json"
    latest = disk.load(path).latest
    data = _splice(valid, ops)
    path.write_bytes(data)
    try:
        loaded = disk.load(path)
    except BaselineError as exc:  # the clean error, naming the file; anything else fails the test
        assert str(path) in str(exc) and len(str(exc)) < MESSAGE_BOUND
        loaded = None
    if loaded is None:
        # A file that cannot be read is never overwritten by a save.
        with pytest.raises(BaselineError, match="refusing to overwrite"):
            disk.save_run(folder, HOST, latest, keep=100)
        assert path.read_bytes() == data
    else:  # still a valid baseline: it round-trips
        text = disk.to_json(loaded.to_dict())
        path.write_text(text, encoding="utf-8")
        assert disk.load(path).runs == loaded.runs
