"""Pairing: ``--hostperf-against=REF`` measures the base commit now, beside the head.

Owns the base tree (``worktree``: a directory or a detached git worktree), the base session's
process (``process``: started with the head's harness, always reaped), the wire between the
two sessions (``channel``), the head's side (``head``: it leads test by test and decides each
measurement from rounds of block pairs taken in turns) and the base's side (``base``). It may
import store, stats, measure, host, units and errors; the pytest hooks that drive both sides
live in the pytest layer (``run/against.py``), so nothing here imports pytest.
"""
