"""The reports layer: everything a person reads about measurements, rendered from the typed
records the storage layer reads and writes. It owns the terminal summary of a run
(:mod:`.terminal`), the comparison of baselines and reports (built by :mod:`.compare` into the
types of :mod:`.model`, drawn as a table, markdown or JSON by :mod:`.compare_render`, host
differences by :mod:`.compare_hosts`), the markdown job summary, the step-series tables
(:mod:`.steps`), the percentile plots (:mod:`.plots`) and the HdrHistogram export
(:mod:`.export`), all on one module of table and markdown helpers (:mod:`.tables`). It may
import the storage, statistics, measuring and host layers, ``units`` and ``errors``; never the
pytest layer, the gate, pairing or the pytest-benchmark bridge, which call it.
"""
