"""Measuring: the timer and its calibration, sampling a function call by call in blocks
(``sampling``), the turns seam that decides when each block runs and the paired schedule that
plugs into it (``turns``), per-block counters (``counters``) and the host-noise probe
(``noise``). Returns raw samples; statistics are the ``stats`` layer's. May import host, units
and errors only.
"""
