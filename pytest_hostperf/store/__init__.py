"""File formats and storage: everything hostperf keeps on disk, typed all the way there.

It owns the one bounded reader every file goes through (``jsonfile``), the atomic writer and
the baselines folder's lock (``atomic``), the one JSON serializer and the only module that
reads or writes baseline and report files (``disk``), the baseline and report schemas
(``baseline_schema``, ``report_schema``) written with one validation framework
(``jsoncheck``), the ``log2-32`` histogram codec (``histogram``), host ids (``hostid``), the
commit measured (``provenance``), pytest-benchmark's file format (``pbench``) and the typed
records of a run that own their JSON (``records/``). A run reaches disk as a typed
``records.StoredRun`` built from the run's report, and is validated once, by ``disk.save_run``.
It may import the layers below it -- ``stats``, ``measure``, ``host``, ``units``, ``errors`` --
and nothing above: no pytest, no reports, no run.
"""
