"""One exception root for the plugin, with subclasses that also inherit the builtin they resemble."""
from __future__ import annotations

import pytest


class HostperfError(Exception):
    """Base of every error pytest-hostperf raises on purpose."""


class InvalidArgument(HostperfError, ValueError):
    """A value given by the user (option, ini key, marker, fixture argument) is not valid."""


class MeasurementError(HostperfError, RuntimeError):
    """A measurement could not be taken (the function raised, no sample fit the time budget...)."""


class HostControlError(HostperfError, OSError):
    """A host control (pinning, SCHED_FIFO, mlock) could not be applied or restored."""


class BaselineError(HostperfError, ValueError):
    """A baseline file cannot be read, validated or written."""


class HostperfWarning(pytest.PytestWarning):
    """Something the user should know that does not fail the run (an inconclusive budget...).

    A ``pytest.PytestWarning``, as a plugin's warnings are (so ``-W error::pytest.PytestWarning``
    and pytest's warning summary treat it as pytest's own), and so still a ``UserWarning``."""


class ReportError(HostperfError, ValueError):
    """A report or compare input cannot be read or is not a pytest-hostperf report or baseline."""


class PlotUnavailable(HostperfError, ImportError):
    """Plots were asked for but matplotlib (the ``plot`` extra) is not installed."""


class HdrUnavailable(HostperfError, ImportError):
    """An HdrHistogram export was asked for but hdrhistogram (the ``hdr`` extra) is not installed."""
