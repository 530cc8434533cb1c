"""Semaphore IPC: two processes ping-pong through POSIX named semaphores.

This is how milk's ImageStreamIO hands frames between processes (and what its
``milk-semloopspeed`` measures): the writer ``sem_post``\\ s, the reader sleeps in
``sem_wait`` until woken. Every round trip is two cross-process wake-ups, so on a VM whose
idle vCPUs halt it costs ~40-70 us (DESIGN §11: C 24.6 kHz, Python 17-23 kHz across cores;
this module measured 14-16 kHz across cores, ~80 kHz on one core, on the 2-vCPU VM).
Each ctypes call costs ~0.4 us, so on one core ``kind="multiprocessing"`` (C calls) is faster.

The semaphores are reached through ``ctypes`` on the C library -- no compiled dependency.
Named semaphores live in ``/dev/shm`` as ``sem.<name>``.

Every IPC resource this package creates is named ``hostperf-<owner pid>-<random>[-tag]``
(see :func:`resource_name`) and unlinked in ``finally``; a resource left behind by a
process that was killed is removed by a later run's :func:`sweep_stale`, which recognises
it by its dead owner pid. Child processes are always reaped with a timeout.

Nothing here waits without a bound: every wait is a timed wait, and a peer that died or
went silent turns into a :class:`~pytest_hostperf.errors.MeasurementError` naming its pid.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import multiprocessing
import os
import re
import secrets
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.workloads import _libc
from pytest_hostperf.errors import HostperfError, InvalidArgument, MeasurementError

__all__ = [
    "PREFIX",
    "IpcResourceError",
    "NamedSemaphore",
    "SemPingPong",
    "list_resources",
    "loops_per_second",
    "owner_pid",
    "pid_alive",
    "resource_name",
    "sweep_stale",
]

PREFIX = "hostperf-"
SHM_DIR = Path("/dev/shm")
DEFAULT_TIMEOUT_S = 2.0
# A spawned child imports Python and this package before it can answer: allow it longer.
DEFAULT_START_TIMEOUT_S = 30.0
# How long a blocked wait sleeps before it looks whether its peer is still there.
_SLICE_S = 0.05
_SLICE_NS = 50_000_000


# --- errors ----------------------------------------------------------------------------------


class IpcResourceError(HostperfError, OSError):
    """A shared-memory segment or named semaphore could not be created in ``/dev/shm``.

    The message names ``/dev/shm``, what was being created and the fix; ``errno`` is the
    system's (``ENOSPC`` for a full ``/dev/shm``).
    """


_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.ENOMEM})
FIX_SHM_FULL = (
    "free it (ls -la /dev/shm; stale hostperf-* entries of dead processes are swept by the next "
    "run) or give it more room (mount -o remount,size=256M /dev/shm; in a container: "
    "docker run --shm-size=256m)"
)


def shm_error(what: str, err: int | None, *, path: str | os.PathLike[str] | None = None) -> IpcResourceError:
    """The error for an IPC resource that ``/dev/shm`` could not hold: names it, and the fix.

    >>> str(shm_error("ring segment", errno.ENOSPC))  # doctest: +ELLIPSIS
    'ring segment: cannot create it in /dev/shm: /dev/shm is full (No space left on device); free it ...'
    """
    where = f"cannot create {path}" if path is not None else f"cannot create it in {SHM_DIR}"
    why = os.strerror(err) if err else "unknown error"
    if err in _SPACE_ERRNOS:
        text = f"{what}: {where}: {SHM_DIR} is full ({why}); {FIX_SHM_FULL}"
    else:
        text = (f"{what}: {where}: {why}; POSIX shared memory and named semaphores live in {SHM_DIR}, "
                "which must be a writable tmpfs (docker run --shm-size=256m)")
    exc = IpcResourceError(text)
    exc.errno = err
    return exc


# --- names and the sweep of stale resources ---------------------------------------------------


#: Processes that have swept stale resources already (a forked child sweeps on its own).
_SWEPT: set[int] = set()


def resource_name(tag: str = "", *, prefix: str = PREFIX) -> str:
    """A fresh IPC resource name ``<prefix><pid>-<8 hex>[-tag]`` that encodes its owner's pid.

    The first call in a process also runs :func:`sweep_stale`, so a run removes what an
    earlier, killed run left in ``/dev/shm``.

    >>> resource_name("ping")  # doctest: +SKIP
    'hostperf-4242-9f0c1a2b-ping'
    """
    if tag and not re.fullmatch(r"[A-Za-z0-9_.]+", tag):
        raise InvalidArgument(f"tag: {tag!r} may only hold letters, digits, '_' and '.' (e.g. 'ping')")
    if os.getpid() not in _SWEPT:  # the first resource of a process clears what killed runs left
        _SWEPT.add(os.getpid())
        sweep_stale(prefix)
    name = f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
    return f"{name}-{tag}" if tag else name


def owner_pid(name: str, *, prefix: str = PREFIX) -> int | None:
    """The owner pid encoded in a resource name (``sem.`` prefix allowed), or None if not ours."""
    if name.startswith("sem."):
        name = name[4:]
    m = re.match(re.escape(prefix) + r"([0-9]+)-[0-9a-f]+(?:-[A-Za-z0-9_.]+)?$", name)
    return int(m.group(1)) if m else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a process of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_resources(pid: int | None = None, prefix: str = PREFIX, shm_dir: Path = SHM_DIR) -> list[Path]:
    """Our shared-memory segments and named semaphores in ``shm_dir`` (of ``pid`` only, if given)."""
    try:
        names = os.listdir(shm_dir)
    except FileNotFoundError:
        return []
    return sorted(
        Path(shm_dir, n) for n in names
        if (owner := owner_pid(n, prefix=prefix)) is not None and (pid is None or owner == pid)
    )


def sweep_stale(
    prefix: str = PREFIX,
    shm_dir: Path = SHM_DIR,
    *,
    alive: Callable[[int], bool] = pid_alive,
) -> list[Path]:
    """Remove our shared-memory segments and named semaphores whose owner pid is dead.

    Looks at ``shm_dir`` entries named ``<prefix><pid>-...`` or ``sem.<prefix><pid>-...``
    owned by this user; removes those whose pid ``alive`` says is gone and returns their paths.
    Unlinking the file is exactly what ``shm_unlink``/``sem_unlink`` do on Linux; processes that
    still map it keep their mapping. A pid reused by an unrelated process makes its resource
    look alive, so it is kept (the safe mistake); the next sweep after that process ends gets it.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(shm_dir))
    except FileNotFoundError:
        return removed
    uid = os.getuid()
    for entry in entries:
        pid = owner_pid(entry.name, prefix=prefix)
        if pid is None or pid == os.getpid():
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if st.st_uid != uid or alive(pid):
            continue  # someone else's, or its owner still runs
        with contextlib.suppress(FileNotFoundError):  # a concurrent sweep got it first
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


# --- POSIX named semaphores through ctypes ----------------------------------------------------


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _SemLib:
    """The C library's semaphore functions, loaded once."""

    def __init__(self) -> None:
        lib = _libc.sem_library()
        if lib is None:
            raise HostperfError("POSIX named semaphores: sem_open not found in libc or libpthread (Linux only)")
        # sem_open and sem_unlink are typed (see _libc.PROTOTYPES).
        self.sem_open = lib.sem_open
        self.sem_unlink = lib.sem_unlink
        # The hot-path functions stay untyped and are called with ready-made ctypes objects:
        # argument conversion through argtypes would cost ~0.3 us per call (measured), a
        # visible share of a ~15 us same-core round trip.
        self.sem_post = lib.sem_post
        self.sem_trywait = lib.sem_trywait
        self.sem_close = lib.sem_close
        # sem_clockwait (glibc >= 2.30) takes a CLOCK_MONOTONIC deadline, immune to
        # wall-clock steps; older libcs get sem_timedwait on CLOCK_REALTIME.
        try:
            self.clockwait = lib.sem_clockwait
        except AttributeError:
            self.clockwait = None
        self.timedwait = lib.sem_timedwait


_semlib: _SemLib | None = None


def _sem() -> _SemLib:
    global _semlib  # a process-wide cache of loaded symbols, not state
    if _semlib is None:
        _semlib = _SemLib()
    return _semlib


_MONOTONIC = ctypes.c_int(time.CLOCK_MONOTONIC)


class NamedSemaphore:
    """A POSIX named semaphore (``/dev/shm/sem.<name>``), with timed waits only.

    >>> with NamedSemaphore.create(resource_name("demo")) as s:  # doctest: +SKIP
    ...     s.post(); s.wait(0.1)
    True

    The creator unlinks it on ``close(unlink=True)`` / context exit; an opener only closes.
    Deadlines are CLOCK_MONOTONIC ns (``time.monotonic_ns()``), or CLOCK_REALTIME
    (``time.time_ns()``) where libc lacks ``sem_clockwait``; :attr:`clock` is the right one.
    """

    __slots__ = ("name", "_h", "_owner", "_ts", "_ts_ref", "_sl", "_post", "_wait", "_args", "clock")

    def __init__(self, name: str, handle: int, owner: bool) -> None:
        sl = _sem()
        self.name = name
        self._h: ctypes.c_void_p | None = ctypes.c_void_p(handle)
        self._owner = owner
        self._sl = sl
        self._ts = _Timespec()
        self._ts_ref = ctypes.byref(self._ts)
        self._post = sl.sem_post
        if sl.clockwait is not None:
            self._wait = sl.clockwait
            self._args: tuple[Any, ...] = (self._h, _MONOTONIC, self._ts_ref)
            self.clock: Callable[[], int] = time.monotonic_ns
        else:
            self._wait = sl.timedwait
            self._args = (self._h, self._ts_ref)
            self.clock = time.time_ns

    @classmethod
    def create(cls, name: str, value: int = 0) -> NamedSemaphore:
        """Create a new semaphore (fails if the name exists: names are unique by design)."""
        return cls(name, cls._open(name, os.O_CREAT | os.O_EXCL, value), owner=True)

    @classmethod
    def open(cls, name: str) -> NamedSemaphore:
        """Open an existing semaphore created by another process."""
        return cls(name, cls._open(name, 0, 0), owner=False)

    @staticmethod
    def _open(name: str, flags: int, value: int) -> int:
        if "/" in name or not name:
            raise InvalidArgument(f"semaphore name: {name!r} must be non-empty and hold no '/'")
        handle = _sem().sem_open(b"/" + name.encode(), flags, 0o600, value)
        if not handle:  # SEM_FAILED is (sem_t *) 0 in glibc and musl
            err = ctypes.get_errno()
            if flags & os.O_CREAT and err not in (errno.EEXIST, errno.EINVAL):
                raise shm_error(f"named semaphore {name!r}", err, path=SHM_DIR / f"sem.{name}")
            raise HostperfError(f"sem_open({name!r}) failed: {os.strerror(err)} [errno {err}]")
        return handle

    def _closed(self) -> HostperfError:
        # A NULL sem_t* would crash libc: refuse in Python instead.
        return HostperfError(f"semaphore {self.name!r} is closed")

    def post(self) -> None:
        """Increment the semaphore, waking one waiter."""
        if self._h is None:
            raise self._closed()
        if self._post(self._h) != 0:
            err = ctypes.get_errno()
            raise HostperfError(f"sem_post({self.name!r}) failed: {os.strerror(err)}")

    def try_wait(self) -> bool:
        """Decrement without blocking; False when the count is zero."""
        if self._h is None:
            raise self._closed()
        return self._sl.sem_trywait(self._h) == 0

    def wait(self, timeout_s: float) -> bool:
        """Wait at most ``timeout_s`` seconds to decrement; False on timeout."""
        return self.wait_until_ns(self.clock() + int(timeout_s * 1e9))

    def wait_until_ns(self, deadline_ns: int) -> bool:
        """Wait until an absolute deadline on :attr:`clock`; False on timeout."""
        if self._h is None:
            raise self._closed()
        ts = self._ts
        ts.tv_sec, ts.tv_nsec = divmod(deadline_ns, 1_000_000_000)
        while True:
            if self._wait(*self._args) == 0:
                return True
            err = ctypes.get_errno()
            if err == errno.ETIMEDOUT:
                return False
            if err != errno.EINTR:  # EINTR: a signal handler ran; wait again, same deadline
                raise HostperfError(f"sem_timedwait({self.name!r}) failed: {os.strerror(err)}")

    def close(self, unlink: bool | None = None) -> None:
        """Close the handle; unlink the name too when ``unlink`` (default: if we created it)."""
        if self._h is not None:
            h, self._h = self._h, None
            self._args = ()
            self._sl.sem_close(h)
        if self._owner if unlink is None else unlink:
            self._owner = False
            self._sl.sem_unlink(b"/" + self.name.encode())  # ENOENT (already gone) is fine

    def __enter__(self) -> NamedSemaphore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- helpers shared by the ping-pong workloads ------------------------------------------------


def _online_cpus() -> list[int]:
    # The child may be pinned outside the caller's own mask (the caller may already be pinned
    # to its CPU), so check against the CPUs that exist, not sched_getaffinity(0).
    try:
        text = Path("/sys/devices/system/cpu/online").read_text().strip()
        cpus: list[int] = []
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            cpus.extend(range(int(lo), int(hi or lo) + 1))
        return cpus
    except (OSError, ValueError):
        return list(range(os.cpu_count() or 1))


def validate_cpus(cpus: tuple[int, int] | None) -> tuple[int, int] | None:
    """Check a ``(parent_cpu, child_cpu)`` pair against the CPUs online."""
    if cpus is None:
        return None
    online = _online_cpus()
    if (not isinstance(cpus, (tuple, list)) or len(cpus) != 2
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in cpus)):
        raise InvalidArgument(f"cpus: {cpus!r} is not a (parent_cpu, child_cpu) pair (e.g. {tuple(online[-2:])})")
    for c in cpus:
        if c not in online:
            raise InvalidArgument(f"cpus: CPU {c} is not online (online: {online})")
    return (cpus[0], cpus[1])


# Exit code of a child that could not pin itself (from sysexits.h: EX_CONFIG).
PIN_FAILED_EXIT = 78


def child_setup(cpu: int | None) -> None:
    """First thing a ping-pong child does: ignore Ctrl-C (the parent stops it) and pin itself."""
    # SIGINT reaches the whole foreground process group; the parent's __exit__ stops the
    # child cleanly, so a child traceback would only be noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            os._exit(PIN_FAILED_EXIT)  # the parent turns this code into a clear message


def peer_gone(proc: Any) -> str | None:
    """Why a child process can no longer answer, or None while it runs."""
    code = proc.exitcode  # polls with waitpid(WNOHANG); reaps it if it ended
    if code is None:
        return None
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"died of signal {signal.Signals(-code).name} (exit code {code})"
    if code == PIN_FAILED_EXIT:
        return "could not pin itself to its CPU (not in its cgroup cpuset?) and exited"
    return f"exited with code {code}"


def no_answer(what: str, proc: Any, timeout_s: float) -> MeasurementError:
    """The error for a round trip that got no answer: names the peer pid and why."""
    why = peer_gone(proc)
    if why is not None:
        return MeasurementError(f"{what}: peer process pid {proc.pid} {why}; the round trip cannot complete")
    return MeasurementError(
        f"{what}: peer process pid {proc.pid} did not answer within {timeout_s:g} s "
        f"(alive but stalled: an overloaded host or a starved CPU?)"
    )


def reap(proc: Any, timeout_s: float = 2.0) -> None:
    """Join a child we started; terminate, then kill it by pid if it does not exit in time."""
    if proc is None or proc.pid is None:
        return
    proc.join(timeout_s)
    if proc.exitcode is None:
        proc.terminate()
        proc.join(1.0)
    if proc.exitcode is None:
        proc.kill()
        proc.join(1.0)


def _thread_count() -> int:
    # /proc counts native threads too (OpenMP, torch), which threading.active_count() misses.
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 2  # unknown: assume threads, so "auto" picks the safe spawn


def mp_context(start_method: str = "auto") -> Any:
    """The multiprocessing context to start children with.

    ``"auto"`` forks while this process has a single thread -- fast (~10 ms), and no
    re-import of ``__main__``, so scripts without an ``if __name__ == "__main__"`` guard work
    -- and spawns otherwise, since forking a multi-threaded process can deadlock the child.
    Importing numpy starts an OpenBLAS thread, so in practice "auto" spawns: the calling
    script then needs the usual ``if __name__ == "__main__":`` guard, and spawning starts
    multiprocessing's resource-tracker helper process (it exits with this process).
    """
    methods = multiprocessing.get_all_start_methods()
    if start_method == "auto":
        start_method = "fork" if "fork" in methods and _thread_count() == 1 else "spawn"
    if start_method not in methods:
        raise InvalidArgument(f"start_method: {start_method!r} is not 'auto' or one of {methods}")
    return multiprocessing.get_context(start_method)


def loops_per_second(roundtrip: float | Any, stat: str = "p50") -> float:
    """Round trips per second from one round trip's latency in ns.

    Accepts a number of nanoseconds, or a result object with a ``p50``/``mean`` attribute in
    ns (``stat`` picks which). ``loops_per_second(40_000)`` is 25 000.0 (25 kHz).
    """
    ns = roundtrip if isinstance(roundtrip, (int, float)) else getattr(roundtrip, stat)
    if not ns or ns <= 0:
        raise InvalidArgument(f"loops_per_second: {ns!r} ns is not a positive round-trip latency")
    return 1e9 / float(ns)


# --- the ping-pong ----------------------------------------------------------------------------


def _posix_echo(ping_name: str, pong_name: str, stop: Any, cpu: int | None, parent_pid: int) -> None:
    """Child: wait for ping, post pong; leave when told to stop or when the parent is gone."""
    child_setup(cpu)
    ping = NamedSemaphore.open(ping_name)
    pong = NamedSemaphore.open(pong_name)
    try:
        while True:
            if ping.wait(_SLICE_S):
                if stop.value:
                    break
                pong.post()
            elif stop.value or os.getppid() != parent_pid:
                break
    finally:
        ping.close()
        pong.close()


def _mp_echo(ping: Any, pong: Any, stop: Any, cpu: int | None, parent_pid: int) -> None:
    """Child: the same loop over ``multiprocessing.Semaphore``."""
    child_setup(cpu)
    while True:
        if ping.acquire(timeout=_SLICE_S):
            if stop.value:
                break
            pong.release()
        elif stop.value or os.getppid() != parent_pid:
            break


class EchoChildOwner:
    """Lifetime shared by the ping-pong workloads: single use; ``with`` starts the echo child
    (``_start``), and leaving it -- or a failed start -- stops and reaps it (``_shutdown``)."""

    _proc: Any = None
    _used: bool = False

    @property
    def pid(self) -> int | None:
        """The echo child's pid once started."""
        return None if self._proc is None else self._proc.pid

    def __enter__(self):  # -> Self
        if self._used:
            raise InvalidArgument(f"{type(self).__name__} is single-use: create a new one for another with-block")
        self._used = True
        try:
            self._start()
        except BaseException:
            self._shutdown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._shutdown()

    def _start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _shutdown(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class SemPingPong(EchoChildOwner):
    """Ping-pong between this process and an echo child through two semaphores.

    ``kind="posix"``: POSIX named semaphores via ctypes (what ImageStreamIO uses);
    ``kind="multiprocessing"``: ``multiprocessing.Semaphore`` (the same glibc semaphore, named
    and unlinked by multiprocessing, and called from C: no ctypes overhead).
    ``cpus=(a, b)`` pins the *child* to CPU ``b``; pinning this process to ``a`` is the
    caller's job (the host-control fixture), so the test runner is never pinned behind its back.

    >>> with SemPingPong("posix", cpus=(0, 1)) as pp:  # doctest: +SKIP
    ...     for _ in range(1000):
    ...         pp.roundtrip()

    ``roundtrip()`` posts ping and waits for pong at most ``timeout_s``; if the child died or
    stayed silent it raises MeasurementError naming the child's pid, and the object is
    broken from then on. Exiting the block stops and reaps the child and unlinks the names.
    """

    def __init__(
        self,
        kind: str = "posix",
        cpus: tuple[int, int] | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        start_method: str = "auto",
    ) -> None:
        if kind not in ("posix", "multiprocessing"):
            raise InvalidArgument(f"kind: {kind!r} is not 'posix' or 'multiprocessing'")
        if not timeout_s > 0:
            raise InvalidArgument(f"timeout_s: {timeout_s!r} must be > 0 (e.g. 2.0)")
        self.kind = kind
        self.cpus = validate_cpus(cpus)
        self.timeout_s = float(timeout_s)
        self.start_timeout_s = float(start_timeout_s)
        self._ctx = mp_context(start_method)
        self._proc: Any = None
        self._stop: Any = None
        self._ping: Any = None
        self._pong: Any = None
        self._broken: str | None = None
        self._used = False
        self._clock: Callable[[], int] = time.monotonic_ns
        self.names: tuple[str, ...] = ()

    def _start(self) -> None:
        ctx = self._ctx
        self._stop = ctx.RawValue("i", 0)  # read by the child only when woken or idle
        child_cpu = None if self.cpus is None else self.cpus[1]
        if self.kind == "posix":
            base = resource_name()
            self.names = (f"{base}-ping", f"{base}-pong")
            self._ping = NamedSemaphore.create(self.names[0])
            self._pong = NamedSemaphore.create(self.names[1])
            self._clock = self._pong.clock
            target, args = _posix_echo, (self.names[0], self.names[1], self._stop, child_cpu, os.getpid())
        else:
            try:  # each is a glibc named semaphore in /dev/shm while it is created
                self._ping, self._pong = ctx.Semaphore(0), ctx.Semaphore(0)
            except OSError as exc:
                raise shm_error("multiprocessing.Semaphore", exc.errno) from None
            target, args = _mp_echo, (self._ping, self._pong, self._stop, child_cpu, os.getpid())
        self._proc = ctx.Process(target=target, args=args, name=f"hostperf-sem-{self.kind}", daemon=True)
        self._proc.start()
        self._roundtrip(self.start_timeout_s)  # handshake: the child is up, pinned and attached

    def roundtrip(self) -> None:
        """One ping -> pong; MeasurementError (naming the child pid) if no answer in time."""
        if self._broken is not None:
            raise MeasurementError(self._broken)
        if self.kind == "posix":
            self._ping.post()
            # The first deadline is only a guard: the normal wake-up arrives in tens of us.
            if self._pong.wait_until_ns(self._clock() + _SLICE_NS):
                return
        else:
            self._ping.release()
            if self._pong.acquire(timeout=_SLICE_S):
                return
        self._slow_wait(self.timeout_s - _SLICE_S)

    def _roundtrip(self, timeout_s: float) -> None:
        if self.kind == "posix":
            self._ping.post()
        else:
            self._ping.release()
        self._slow_wait(timeout_s)

    def _slow_wait(self, timeout_s: float) -> None:
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while True:
            got = self._pong.wait(_SLICE_S) if self.kind == "posix" else self._pong.acquire(timeout=_SLICE_S)
            if got:
                return
            if peer_gone(self._proc) is not None or time.monotonic() >= deadline:
                err = no_answer(f"semaphore ping-pong ({self.kind})", self._proc, self.timeout_s)
                self._broken = str(err)
                raise err

    def _shutdown(self) -> None:
        try:
            if self._proc is not None and self._proc.pid is not None:
                if self._stop is not None:
                    self._stop.value = 1
                with contextlib.suppress(Exception):  # wake the child so it sees the stop flag
                    if self.kind == "posix":
                        self._ping.post()
                    else:
                        self._ping.release()
                reap(self._proc)
        finally:
            if self.kind == "posix":
                for sem in (self._ping, self._pong):
                    if sem is not None:
                        sem.close(unlink=True)
            self._ping = self._pong = None
            self._broken = self._broken or "semaphore ping-pong: used after its with-block ended"
