from __future__ import annotations

import os

import pytest

# Tests that spawn pytest subprocesses must not inherit a user's GitHub summary file.
os.environ.pop("GITHUB_STEP_SUMMARY", None)


@pytest.fixture
def fast_ini(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester project whose full-mode measurements stay short (small samples and budget)."""
    pytester.makeini("[pytest]\nhostperf_samples = 400\nhostperf_max_time = 0.3\n")
    return pytester
