"""pytest-hostperf: latency benchmarks as regression tests.

Importing this package stays cheap (no numpy, no torch): pytest loads it for every run.
"""
from __future__ import annotations

from pytest_hostperf.errors import HostperfError
from pytest_hostperf.units import format_ns, parse_duration

__version__ = "0.1.0"
__all__ = ["HostperfError", "__version__", "format_ns", "parse_duration"]
