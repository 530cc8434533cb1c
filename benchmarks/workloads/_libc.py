"""The C library of the workloads: loaded once, with ``use_errno=True``, its prototypes declared here.

:func:`load` is libc (``find_library("c")``, else the running program's own symbols, which
include libc's) for arena (``mallopt``), transfer (``mlock``) and wakeup (``prctl``);
:func:`sem_library` is where ipc's POSIX named semaphores live. A symbol this C library lacks
is simply not declared: the caller's ``hasattr`` or attribute access finds it missing, as it
would on a bare ``ctypes.CDLL``. ``ctypes.get_errno()`` reads the errno of the last call.

The harness (pytest_hostperf) has its own loader; nothing there imports this module.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util

__all__ = ["PROTOTYPES", "load", "load_or_none", "sem_library"]

#: ``name: (argtypes, restype)`` of each function the workloads call with converted arguments.
#: The semaphore hot path (``sem_post``, ``sem_trywait``, ``sem_clockwait``, ``sem_timedwait``,
#: ``sem_close``) stays untyped on purpose and is not here: argument conversion through
#: argtypes costs ~0.3 us a call (measured), a visible share of a ~15 us same-core round trip;
#: ipc calls those with ready-made ctypes objects.
PROTOTYPES: dict[str, tuple[tuple[type, ...], type]] = {
    # arena: glibc's malloc knobs, and whether this is glibc at all.
    "gnu_get_libc_version": ((), ctypes.c_char_p),
    "mallopt": ((ctypes.c_int, ctypes.c_int), ctypes.c_int),
    # transfer: page-locked host buffers.
    "mlock": ((ctypes.c_void_p, ctypes.c_size_t), ctypes.c_int),
    "munlock": ((ctypes.c_void_p, ctypes.c_size_t), ctypes.c_int),
    # wakeup: the calling thread's timer slack.
    "prctl": ((ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong), ctypes.c_int),
    # ipc: sem_open is variadic; on x86-64 and aarch64 Linux the integer arguments travel in
    # the same registers as a fixed-argument call, so declaring them fixed is sound.
    "sem_open": ((ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint), ctypes.c_void_p),
    "sem_unlink": ((ctypes.c_char_p,), ctypes.c_int),
}

_libc: ctypes.CDLL | None = None


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Set the argtypes and restype of each PROTOTYPES function that ``lib`` has."""
    for name, (argtypes, restype) in PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            continue  # not in this C library: callers see it missing, as before
        fn.argtypes = argtypes
        fn.restype = restype
    return lib


def load() -> ctypes.CDLL:
    """libc, loaded on the first call and shared after; ``OSError`` if it cannot be loaded
    (nothing is cached then: the next call tries again)."""
    global _libc  # a process-wide cache of the loaded library, not state
    if _libc is None:
        _libc = _declare(ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True))
    return _libc


def load_or_none() -> ctypes.CDLL | None:
    """:func:`load`, or None where libc cannot be loaded."""
    try:
        return load()
    except OSError:
        return None


def sem_library() -> ctypes.CDLL | None:
    """The C library with POSIX named semaphores (``sem_open``): libc (glibc >= 2.34, musl),
    else libpthread (older glibc); None if neither has them. The caller caches the answer."""
    candidates = (load, lambda: _declare(ctypes.CDLL(ctypes.util.find_library("pthread"), use_errno=True)))
    for candidate in candidates:
        with contextlib.suppress(OSError, TypeError):
            lib = candidate()
            if hasattr(lib, "sem_open"):
                return lib
    return None
