"""Host control and the host's state: pinning, SCHED_FIFO, mlockall and cache warming, each a
context manager that puts the process back as it was (``control``, with ``cpus``, ``sched``,
``warm``, ``mlock_guard`` and the one libc loader ``libc``); what the host is (``fingerprint``)
and how well it is tuned (``audit``), read from /proc and /sys (``procfs``). It imports only
``units`` and ``errors``, and no numpy at import time.
"""
