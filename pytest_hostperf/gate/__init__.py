"""The gate: how a measurement is compared and how many rounds its verdict rests on.

One seam (``seam.Gate``: an ``Asked`` measurement in, a typed ``Judged`` out, its outcome a
``Verdict`` or a ``NotCompared``), one implementation per way of comparing: the stored baseline
with paired confirmation (``stored``, ``confirm``), paired against a base commit measured now
(``paired``), pytest-benchmark's rounds (``rounds``), and none (``seam.Ungated``). May import
pairing, store, stats, measure, host, units and errors; never pytest.
"""
