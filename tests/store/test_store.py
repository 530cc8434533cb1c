"""Baseline files (store.py): round trip, the golden file, bounded reading, locking, atomicity,
paths and symlinks."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from baseline_data import (
    AUDIT,
    COMMIT,
    FP,
    MID,
    TIMER,
    TOOLS,
    make_run,
    ns_values,
    real_record,
    valid_doc,
    with_extra,
    write,
)

from pytest_hostperf.errors import BaselineError, InvalidArgument
from pytest_hostperf.store import baseline_schema, hostid
from pytest_hostperf.store import disk as store
from pytest_hostperf.store.histogram import encode_histogram
from pytest_hostperf.store.records import Commit, ResultRecord, StoredMeasurement, StoredRun, Timer

GOLDEN = Path(__file__).parent.parent / "golden" / "baseline_v1.json"


# --------------------------------------------------------------------------- round trip and format


def test_round_trip(tmp_path: Path) -> None:
    run = make_run(0)
    path = store.save_run(tmp_path / "baselines", "box-1", run)
    assert path == (tmp_path / "baselines" / "box-1.json").resolve()
    b = store.load(path)
    assert b.host_id == "box-1" and b.path == path
    assert b.runs == (run,)
    assert b.latest == run
    assert b.ids() == [MID]
    assert b.runs_of(MID) == [run.measurements[MID]]
    assert store.load_if_exists(tmp_path / "baselines", "box-1") == b


def test_ids_and_runs_of_span_runs(tmp_path: Path) -> None:
    r0 = make_run(0, measurements={"a": real_record(0)})
    r1 = make_run(1, measurements={"a": real_record(1), "b": real_record(2)})
    store.save_run(tmp_path, "h", r0)
    b = store.load(store.save_run(tmp_path, "h", r1))
    assert b.ids() == ["a", "b"]
    assert b.runs_of("a") == [r0.measurements["a"], r1.measurements["a"]]
    assert b.runs_of("b") == [r1.measurements["b"]]
    assert b.runs_of("missing") == []
    assert b.latest.extra["seq"] == 1


def test_keep_last_k(tmp_path: Path) -> None:
    for seq in range(7):
        path = store.save_run(tmp_path, "h", make_run(seq, measurements={}), keep=3)
    assert [r.extra["seq"] for r in store.load(path).runs] == [4, 5, 6]
    path = store.save_run(tmp_path, "h", make_run(7, measurements={}))  # default keep=5
    assert [r.extra["seq"] for r in store.load(path).runs] == [4, 5, 6, 7]
    with pytest.raises(InvalidArgument, match="keep"):
        store.save_run(tmp_path, "h", make_run(8), keep=0)


def test_file_has_sorted_keys_integer_ns_and_no_temp_files(tmp_path: Path) -> None:
    path = store.save_run(tmp_path, "h", make_run(0))
    text = path.read_text(encoding="utf-8")

    def ordered(pairs: list[tuple[str, Any]]) -> dict:
        keys = [k for k, _ in pairs]
        assert keys == sorted(keys)
        return dict(pairs)

    doc = json.loads(text, object_pairs_hook=ordered)
    assert text == store.to_json(doc) and text.endswith("}\n")
    values = ns_values(doc)
    assert len(values) > 50 and all(type(v) is int for _, v in values)
    assert os.listdir(tmp_path) == ["h.json"]  # the lock is an flock on the folder: no lock file
    assert path.stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------- golden file

# The golden file pins the v1 format byte for byte. If a change to the format is meant
# (and SCHEMA_VERSION is bumped, with a line in its history), regenerate it with
#   HOSTPERF_REGEN_GOLDEN=1 python -m pytest tests/store/test_store.py -k golden
# and review the diff. Keep the old file as baseline_v<N>.json so old files stay tested.


def _golden_result(nodeid: str, name: str, samples: np.ndarray, blocks: int, batch: int) -> dict:
    """A Result.to_dict()-shaped dict computed here with numpy only, so that the golden file
    does not change when stats.py changes."""
    def ns(x: float) -> int:
        return int(round(float(x)))

    parts = np.split(samples, blocks)
    qs = [50, 90, 99, 99.9]
    block_rows = [{"n": len(p), **{f"{s}_ns": ns(v) for s, v in zip(("p50", "p90", "p99", "p999"),
                                                                    np.percentile(p, qs))},
                   "max_ns": ns(p.max())} for p in parts]
    med = {s: ns(np.median([b[f"{s}_ns"] for b in block_rows])) for s in ("p50", "p90", "p99", "p999")}
    return {"id": f"{nodeid}[{name}]", "nodeid": nodeid, "name": name, "group": "golden" if batch > 1 else None,
            "mode": "single" if batch == 1 else f"batched({batch})", "batch": batch, "n": len(samples),
            "calls": len(samples) * batch, "smoke": False, "truncated": False, "seconds": 0.001,
            **{f"{s}_ns": v for s, v in med.items()}, "max_ns": ns(samples.max()),
            "min_ns": ns(samples.min()), "mean_ns": ns(samples.mean()), "intervals_ns": {},
            "blocks": block_rows}


def golden_doc() -> dict:
    single = (1000 + (np.arange(60) * 7919) % 997).astype(np.float64)
    batched = (200 + (np.arange(40) * 104729) % 131) / 4.0
    r_single = _golden_result("bench.py::test_alloc", "arena", single, 3, 1)
    r_batched = _golden_result("bench.py::test_alloc", "malloc", batched, 2, 4)
    r_batched["host"] = {"cpus": [1], "policy": "SCHED_FIFO", "priority": 49, "memory_locked": True,
                         "controls": [{"control": "rt", "applied": True, "reason": None}]}
    measurements = {r["id"]: StoredMeasurement.of(ResultRecord.from_json({**r, "histogram": encode_histogram(s)}))
                    for r, s in ((r_single, single), (r_batched, batched))}
    runs = [
        StoredRun(created_utc="2024-05-01T12:00:00Z", commit=Commit(**COMMIT), tools=TOOLS, fingerprint=FP,
                  audit=tuple(AUDIT), timer=Timer(**TIMER), concurrency=1, measurements=measurements).to_json(),
        StoredRun(created_utc="2024-05-02T08:30:00.250Z", commit=Commit(), tools=TOOLS, fingerprint=FP, audit=(),
                  timer=None, concurrency=2, measurements={k: v for k, v in measurements.items() if "arena" in k},
                  extra={"note": "xdist -n 2"}).to_json(),
    ]
    return {"schema": baseline_schema.SCHEMA, "schema_version": 1, "host_id": hostid.host_id(FP), "runs": runs}


def test_golden_file_matches_constructed_runs() -> None:
    text = store.to_json(golden_doc())
    if os.environ.get("HOSTPERF_REGEN_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.read_text(encoding="utf-8") == text


def test_golden_file_loads_and_reserializes_byte_identically() -> None:
    b = store.load(GOLDEN)
    assert store.to_json(b.to_dict()) == GOLDEN.read_bytes().decode("utf-8")
    assert b.host_id == hostid.host_id(FP)
    assert len(b.runs) == 2 and b.latest.extra["note"] == "xdist -n 2"
    assert b.ids() == ["bench.py::test_alloc[arena]", "bench.py::test_alloc[malloc]"]



# --------------------------------------------------------------------------- reading


def test_huge_integer_literal_without_a_python_digit_limit(tmp_path: Path) -> None:
    # Python < 3.10.7 has no limit on int() of a literal, which is quadratic: the reader checks
    # lengths itself, with or without Python's limit (lifted here).
    path = write(tmp_path / "big.json", b'{"schema": "pytest-hostperf-baseline", "n": ' + b"9" * 1_000_000 + b"}")
    limit = getattr(sys, "get_int_max_str_digits", lambda: None)()
    if limit is not None:
        sys.set_int_max_str_digits(0)
    try:
        with pytest.raises(BaselineError, match=r"big.json: integer 9{40}\.\.\. is too large"):
            store.load(path)
    finally:
        if limit is not None:
            sys.set_int_max_str_digits(limit)



def test_file_larger_than_limit_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "spaces.json"
    with path.open("wb") as fh:  # 100 MB of whitespace around a valid document
        fh.write(json.dumps(valid_doc()).encode())
        for _ in range(100):
            fh.write(b" " * 1_000_000)

    def no_open(*a: object, **k: object) -> None:
        raise AssertionError("the size check must come before opening the file")

    monkeypatch.setattr(os, "open", no_open)
    with pytest.raises(BaselineError, match=r"spaces.json: \d+ bytes is more than the 64 MiB"):
        store.load(path)
    monkeypatch.undo()
    sparse = tmp_path / "sparse.json"
    with sparse.open("wb") as fh:
        fh.truncate(store.MAX_BYTES + 1)
    with pytest.raises(BaselineError, match="64 MiB"):
        store.load(sparse)


def test_not_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(BaselineError, match=r"dir.json is not a regular file"):
        store.load(tmp_path / "dir.json")
    os.mkfifo(tmp_path / "fifo.json")  # must not block waiting for a writer
    with pytest.raises(BaselineError, match=r"fifo.json is not a regular file"):
        store.load(tmp_path / "fifo.json")
    with pytest.raises(BaselineError, match=r"missing.json: no such baseline file"):
        store.load(tmp_path / "missing.json")



# --------------------------------------------------------------------------- concurrency and atomicity

WRITER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from dataclasses import replace
    from pytest_hostperf.store import disk as store
    from pytest_hostperf.store.records import StoredRun
    run = StoredRun.from_json(json.loads(sys.argv[3]))
    for i in range(10):
        extra = {**run.extra, "writer": sys.argv[2], "seq": i}
        store.save_run(Path(sys.argv[1]), "race-host", replace(run, extra=extra), keep=100)
""")


def test_concurrent_saves_from_processes_all_land(tmp_path: Path) -> None:
    folder = tmp_path / "baselines"
    run = json.dumps(make_run(0).to_json())
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(w), run],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for w in range(3)]
    reads = 0
    deadline = time.monotonic() + 60
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        b = store.load_if_exists(folder, "race-host")  # never half-written, never invalid
        reads += b is not None
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    b = store.load(folder / "race-host.json")
    assert (sorted((r.extra["writer"], r.extra["seq"]) for r in b.runs)
            == [(str(w), i) for w in range(3) for i in range(10)])
    assert os.listdir(folder) == ["race-host.json"]


def test_lock_wait_is_bounded(tmp_path: Path) -> None:
    import fcntl

    store.save_run(tmp_path, "h", make_run(0))
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)  # another save holds the folder's lock
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(BaselineError, match=r"timed out after 0.2 s waiting for the lock on the baselines "
                                                r"folder .*: another process is saving"):
            store.save_run(tmp_path, "h", make_run(1), lock_timeout=0.2)
    finally:
        os.close(fd)
    assert len(store.load(tmp_path / "h.json").runs) == 1
    store.save_run(tmp_path, "h", make_run(1), lock_timeout=0.2)  # released: goes through


@pytest.mark.parametrize(("target", "exc"), [("replace", OSError(28, "No space left on device")),
                                             ("fsync", OSError(5, "Input/output error")),
                                             ("replace", KeyboardInterrupt())])
def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       target: str, exc: BaseException) -> None:
    path = store.save_run(tmp_path, "h", make_run(0))
    before = path.read_bytes()

    def boom(*a: object, **k: object) -> None:
        raise exc

    monkeypatch.setattr(os, target, boom)
    with pytest.raises(BaselineError if isinstance(exc, OSError) else KeyboardInterrupt) as info:
        store.save_run(tmp_path, "h", make_run(1))
    monkeypatch.undo()
    if isinstance(exc, OSError):
        assert str(path) in str(info.value) and exc.strerror in str(info.value)
        assert "previous file is unchanged" in str(info.value)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["h.json"]


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Any:
    """A 64 KiB tmpfs (root only): a real full disk and a real read-only folder."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (no CAP_SYS_ADMIN)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.parametrize("failure", ["disk-full", "read-only"])
def test_failed_save_on_real_filesystem(tiny_fs: Path, failure: str) -> None:
    path = store.save_run(tiny_fs, "h", make_run(0))
    before = path.read_bytes()
    if failure == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
        run = make_run(1)
    else:
        run = make_run(1, pad="x" * 200_000)
    with pytest.raises(BaselineError, match="No space left on device" if failure == "disk-full" else "Read-only"):
        store.save_run(tiny_fs, "h", run)
    assert path.read_bytes() == before
    assert os.listdir(tiny_fs) == ["h.json"]


def test_never_overwrites_a_file_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    path.write_text('{"schema": "pytest-hostperf-baseline", "schema_version": 1, "host_id": "h", "ru')
    before = path.read_bytes()
    with pytest.raises(BaselineError, match=r"refusing to overwrite .*h.json: invalid JSON at line 1"):
        store.save_run(tmp_path, "h", make_run(0))
    assert path.read_bytes() == before


def test_file_of_another_host_is_not_mixed_in(tmp_path: Path) -> None:
    store.save_run(tmp_path, "a", make_run(0))
    os.rename(tmp_path / "a.json", tmp_path / "b.json")
    with pytest.raises(BaselineError, match="holds host id 'a', expected 'b'"):
        store.load_if_exists(tmp_path, "b")
    with pytest.raises(BaselineError, match="holds host id 'a', expected 'b'"):
        store.save_run(tmp_path, "b", make_run(1))
    assert store.load(tmp_path / "b.json").host_id == "a"  # an explicit path still loads
    assert store.load_if_exists(tmp_path, "c") is None


def test_save_validates_the_run_first(tmp_path: Path) -> None:
    run = make_run(0)
    run.measurements[MID] = replace(run.measurements[MID], p99_ns=1.5)
    where = re.escape(f'run.measurements["{MID}"].p99_ns')
    with pytest.raises(BaselineError, match=f"save_run: not a valid run: {where}"):
        store.save_run(tmp_path, "h", run)
    run = replace(make_run(0), concurrency=np.int64(2))
    with pytest.raises(BaselineError, match="not a JSON value"):
        store.save_run(tmp_path, "h", run)
    assert os.listdir(tmp_path) == []



# --------------------------------------------------------------------------- paths

HOSTILE = ["../x", "/etc/passwd", "a\x00b", "x" * 300, "..", ".", "", "ÄÖÜ-Straße", "東京", "東京-1",
           "..\\..\\windows\\system32", "-rf", " ", "\n", ".hidden", "a/../../b", "a..b", "a/./b",
           "CON", "host\u202eexe.json", "ﬁle", "İstanbul"]


@pytest.mark.parametrize("host", HOSTILE, ids=[ascii(h)[:30] for h in HOSTILE])
def test_hostile_host_ids_stay_inside_the_folder(tmp_path: Path, host: str) -> None:
    folder = tmp_path / "baselines"
    folder.mkdir()
    try:
        clean = hostid.sanitize_host_id(host)
    except BaselineError as exc:
        assert "no usable characters" in str(exc) and "--hostperf-host" in str(exc)
        with pytest.raises(BaselineError):
            store.baseline_path(folder, host)
        return
    assert re.fullmatch(r"[a-z0-9_][a-z0-9._-]{0,79}", clean) and ".." not in clean
    assert not clean.endswith((".", "-"))
    path = store.baseline_path(folder, host)
    assert path.parent == folder.resolve() and path.name == f"{clean}.json"
    saved = store.save_run(folder, host, make_run(0, measurements={}))
    assert saved == path and os.listdir(folder) == [f"{clean}.json"]
    assert os.listdir(tmp_path) == ["baselines"]



def test_symlink_in_the_folder_is_refused(tmp_path: Path) -> None:
    folder, outside = tmp_path / "baselines", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    target = store.save_run(outside, "victim", make_run(0))
    before = target.read_bytes()
    (folder / "victim.json").symlink_to(target)
    for call in (lambda: store.load(folder / "victim.json"),
                 lambda: store.load_if_exists(folder, "victim"),
                 lambda: store.baseline_path(folder, "victim"),
                 lambda: store.save_run(folder, "victim", make_run(1))):
        with pytest.raises(BaselineError, match="symlink"):
            call()
    assert target.read_bytes() == before
    (folder / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    with pytest.raises(BaselineError, match="symlink"):
        store.save_run(folder, "dangling", make_run(1))
    assert not (tmp_path / "nowhere.json").exists()


# --------------------------------------------------------------------------- the lock


def _like_nfs(real: Any) -> Any:
    """flock as an NFS client does it (byte-range locks underneath): a directory, opened
    read-only, cannot take an exclusive lock (EBADF); files lock as usual."""
    import errno
    import stat

    def flock(fd: int, op: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        real(fd, op)

    return flock


def test_no_lock_file_is_left_and_one_an_old_version_left_is_removed(tmp_path: Path) -> None:
    store.save_run(tmp_path, "h", make_run(0))
    assert os.listdir(tmp_path) == ["h.json"]
    (tmp_path / ".h.lock").write_bytes(b"")  # what versions before the folder lock left behind
    store.save_run(tmp_path, "h", make_run(1))
    assert os.listdir(tmp_path) == ["h.json"] and len(store.load(tmp_path / "h.json").runs) == 2


def test_an_old_lock_file_held_right_now_or_not_empty_is_left_alone(tmp_path: Path) -> None:
    import fcntl

    (tmp_path / ".h.lock").write_bytes(b"")
    fd = os.open(tmp_path / ".h.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # an older version, saving at this moment
        store.save_run(tmp_path, "h", make_run(0))
    finally:
        os.close(fd)
    (tmp_path / ".g.lock").write_text("a user's notes")
    store.save_run(tmp_path, "g", make_run(0))
    assert sorted(os.listdir(tmp_path)) == [".g.lock", ".h.lock", "g.json", "h.json"]


def test_a_symlink_named_like_an_old_lock_file_is_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    folder = tmp_path / "baselines"
    folder.mkdir()
    (folder / ".h.lock").symlink_to(victim)
    store.save_run(folder, "h", make_run(0))
    assert victim.read_text() == "keep me" and (folder / ".h.lock").is_symlink()


def test_where_a_folder_cannot_be_locked_a_lock_file_stands_in_for_the_save_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl
    import threading

    monkeypatch.setattr(fcntl, "flock", _like_nfs(fcntl.flock))
    folder = tmp_path / "baselines"
    seen: list[list[str]] = []
    real_write = store._atomic_write

    def write(path: Path, text: str, mode: int) -> None:
        seen.append(sorted(os.listdir(path.parent)))  # inside the save: the lock file is there
        real_write(path, text, mode)

    monkeypatch.setattr(store, "_atomic_write", write)
    errors: list[BaseException] = []

    def saver(w: int) -> None:
        try:
            for i in range(5):
                store.save_run(folder, "h", with_extra(make_run(0), writer=w, seq=i), keep=100)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=saver, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    runs = store.load(folder / "h.json").runs
    assert sorted((r.extra["writer"], r.extra["seq"]) for r in runs) == [(w, i) for w in range(3) for i in range(5)]
    assert all(".h.lock" in names for names in seen) and os.listdir(folder) == ["h.json"]
    (folder / "h.json").unlink()
    (folder / ".h.lock").symlink_to(tmp_path / "victim.txt")  # the lock file path is never followed
    with pytest.raises(BaselineError, match=r"lock file .*\.h\.lock: is a symlink"):
        store.save_run(folder, "h", make_run(0))
    assert not (tmp_path / "victim.txt").exists()



def test_list_host_ids(tmp_path: Path) -> None:
    assert store.list_host_ids(tmp_path / "missing") == []
    assert store.list_host_ids(tmp_path) == []
    for host in ("b-host", "a-host"):
        store.save_run(tmp_path, host, make_run(0, measurements={}))
    (tmp_path / "c-host.json").symlink_to(tmp_path / "a-host.json")  # baseline_path refuses links
    (tmp_path / "d-host.json").mkdir()
    for name in ("Not A Host.json", ".json", "notes.txt", ".e-host.json"):
        (tmp_path / name).write_text("{}")
    assert store.list_host_ids(tmp_path) == ["a-host", "b-host"]
    assert store.list_host_ids(str(tmp_path)) == ["a-host", "b-host"]  # type: ignore[arg-type]


def test_a_baseline_named_by_an_earlier_host_id_is_used_and_moved_by_the_next_save(tmp_path: Path) -> None:
    """The host id's hash once covered fields pytest-benchmark's files lack (issue 16): a file
    named by that id is found by its runs' fingerprint, used, and renamed by the next save."""
    from pytest_hostperf.store.hostid import host_id

    new_id = host_id(FP)
    old_id = "amd-epyc-7b13-64-core-2cpu-x86_64-e5c77717"  # this fingerprint's id before issue 16
    old = tmp_path / f"{old_id}.json"
    old.write_text(store.to_json({**valid_doc(), "host_id": old_id}))
    found = store.load_if_exists(tmp_path, new_id)
    assert found is not None and found.path == old and len(found.runs) == len(valid_doc()["runs"])
    assert store.load_if_exists(tmp_path, host_id({**FP, "logical_cpus": 64})) is None  # another host: none
    path = store.save_run(tmp_path, new_id, make_run(9))
    assert path.name == f"{new_id}.json" and not old.exists()
    moved = store.load(path)
    assert moved.host_id == new_id and len(moved.runs) == len(found.runs) + 1
