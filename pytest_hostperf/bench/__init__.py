"""The pytest-benchmark bridge: under ``--hostperf``, pytest-benchmark's ``benchmark`` fixture
runs fixed rounds (the baseline's, after its calibration), paced at SCHED_FIFO, and its
per-round times are recorded and gated through the ``hostperf`` fixture object (``bridge``).
It may import the pytest layer (``run``) and every layer below it; only ``plugin.py`` imports it.
"""
