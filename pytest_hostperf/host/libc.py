"""The one C library of the harness: loaded once, on first use, with ``use_errno=True``;
its prototypes declared; small wrappers for the calls hostperf makes (``mlockall``,
``munlockall``, ``perf_event_open`` through ``syscall(2)``).

Every other module goes through here rather than loading libc itself, so a load that
fails fails in one way everywhere: :func:`handle` is None and :func:`has` is False, and
each caller turns that into its own "not available" reason. The wrappers return the errno
of a failed call (:func:`mlockall`, :func:`munlockall`) or raise :class:`OSError` with it
(:func:`perf_event_open`), as their callers need.

Importing this module is cheap: ctypes is imported by the first call.
(The benchmark suite's workloads keep their own loader, ``benchmarks/workloads/_libc.py``.)
"""
from __future__ import annotations

import errno
import functools
import os
import platform
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ctypes  # loaded on first use: importing the host layer stays cheap

__all__ = [
    "NR_PERF_EVENT_OPEN",
    "handle",
    "has",
    "mcl_flags",
    "mlockall",
    "munlockall",
    "perf_event_open",
]

#: syscall(2) number of perf_event_open by machine (arm64 uses the asm-generic table).
NR_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "arm64": 241}


@functools.lru_cache(maxsize=1)
def handle() -> ctypes.CDLL | None:
    """The C library with errno kept (``ctypes.get_errno``), loaded once; None where
    there is none to load (Windows, a static interpreter without ``dlopen``)."""
    import ctypes  # loaded on first use: importing the host layer stays cheap

    lib: ctypes.CDLL | None
    try:
        # dlopen(NULL): the symbols already loaded with the interpreter, libc's among them.
        # It needs no ctypes.util.find_library, which runs ldconfig in a subprocess.
        lib = ctypes.CDLL(None, use_errno=True)
    except (OSError, TypeError):  # TypeError: Windows has no dlopen(NULL)
        lib = None
    if lib is None:
        import ctypes.util  # only where dlopen(NULL) failed

        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        except OSError:
            return None
    _declare(lib)
    return lib


def _declare(lib: ctypes.CDLL) -> None:
    import ctypes  # loaded on first use: importing the host layer stays cheap

    if hasattr(lib, "mlockall"):
        lib.mlockall.argtypes = [ctypes.c_int]
        lib.mlockall.restype = ctypes.c_int
    if hasattr(lib, "munlockall"):
        lib.munlockall.argtypes = []
        lib.munlockall.restype = ctypes.c_int
    if hasattr(lib, "syscall"):
        # long syscall(long number, ...): variadic, so no argtypes; callers pass c_long.
        lib.syscall.restype = ctypes.c_long


def has(name: str) -> bool:
    """Whether libc loaded and exports ``name``.

    >>> has("mlockall")  # doctest: +SKIP
    True
    """
    lib = handle()
    return lib is not None and hasattr(lib, name)


def _function(name: str) -> Any:
    lib = handle()
    if lib is None or not hasattr(lib, name):
        raise OSError(errno.ENOSYS, f"{name} is not available (no libc with {name})")
    return getattr(lib, name)


def mcl_flags() -> tuple[int, int]:
    """``(MCL_CURRENT, MCL_FUTURE)`` of this machine."""
    # MCL_* differ by architecture (asm-generic vs powerpc/sparc/alpha headers).
    machine = platform.machine().lower()
    if machine.startswith(("ppc", "powerpc", "sparc")):
        return 0x2000, 0x4000
    if machine.startswith("alpha"):
        return 8192, 16384
    return 1, 2


def mlockall(flags: int) -> int:
    """``mlockall(flags)``: 0, or the errno it failed with.

    Raises :class:`OSError` (ENOSYS) where there is no mlockall: check :func:`has` first.
    """
    import ctypes  # loaded on first use: importing the host layer stays cheap

    if _function("mlockall")(flags) != 0:
        return ctypes.get_errno() or errno.EIO
    return 0


def munlockall() -> int:
    """``munlockall()``: 0, or the errno it failed with (ENOSYS where there is none)."""
    import ctypes  # loaded on first use: importing the host layer stays cheap

    try:
        fn = _function("munlockall")
    except OSError as exc:
        return exc.errno or errno.ENOSYS
    if fn() != 0:
        return ctypes.get_errno() or errno.EIO
    return 0


def perf_event_open(attr: bytearray, pid: int = 0, cpu: int = -1, group_fd: int = -1,
                    flags: int = 0) -> int:
    """``perf_event_open(2)`` with the ``perf_event_attr`` bytes ``attr``; returns the fd.

    Raises :class:`OSError` with the kernel's errno (ENOENT: no PMU, as in many VMs;
    EACCES/EPERM: ``kernel.perf_event_paranoid``), or errno 0 where the syscall number of
    this machine is not known or there is no ``syscall()``.
    """
    import ctypes  # loaded on first use: importing the host layer stays cheap

    nr = NR_PERF_EVENT_OPEN.get(platform.machine())
    if nr is None or not sys.platform.startswith("linux"):
        raise OSError(0, f"perf_event_open is not known on {platform.system()} {platform.machine()}")
    if not has("syscall"):
        raise OSError(0, "perf_event_open needs libc's syscall(), which could not be loaded")
    buf = (ctypes.c_char * len(attr)).from_buffer(attr)
    fd = int(_function("syscall")(ctypes.c_long(nr), buf, ctypes.c_long(pid), ctypes.c_long(cpu),
                                  ctypes.c_long(group_fd), ctypes.c_ulong(flags)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return fd
