"""A skewed clock for one test process (:mod:`podfleet.local.skewed_clock`), or a skip that
says what is missing."""

from __future__ import annotations

import pytest

from podfleet.local.skewed_clock import SkewedClockUnavailable
from podfleet.local.skewed_clock import skewed_clock_env as _skewed_clock_env


def skewed_clock_env(seconds: float) -> dict[str, str]:
    """The environment that runs a process ``seconds`` ahead; skips the test without a
    working libfaketime."""
    try:
        return _skewed_clock_env(seconds)
    except SkewedClockUnavailable as exc:
        pytest.skip(str(exc))
