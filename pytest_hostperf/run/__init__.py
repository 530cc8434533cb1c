"""The pytest layer: the only one that speaks pytest, besides the pytest-benchmark bridge.

It owns the options and the marker (``options``, ``settings``), the run's hooks (``session``),
the ``hostperf`` fixture object (``fixture``), the run's frozen context and its log
(``context``), xdist's placement and its two roles (``placement``, ``xdist``), the hooks that
drive a pairing (``against``), the status line (``progress``) and the end of the run
(``outputs``: the log into one report, handed to the store and the reports). It may import
every layer below it -- gate, pairing, reports, store, stats, measure, host, units, errors --
and never bench/ or plugin.py, which register its objects. The layers that bring numpy
(stats, store, gate, reports, measure.sampling) load where first used, so ``pytest --help``
loads none of them.
"""
