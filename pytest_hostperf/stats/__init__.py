"""Statistics and verdict rules, pure: percentiles and per-block statistics with bootstrap
intervals over blocks (``percentiles``), a measurement's summary (``result``), the stored
baseline's comparison rule and budget and speed-up checks (``verdict``), the paired rule
(``paired``) and the counter changes that explain a verdict (``counter_changes``). Nothing
here reads a clock or a file. May import measure (its sample type), host, units and errors.
"""
