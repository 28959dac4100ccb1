"""Summaries of measured samples for the demo, the load test and the benchmarks.

Each of them reports latencies as percentiles; one definition here means a p99 in the demo,
a benchmark and docs/benchmarks.md is the same statistic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

# q * n / 100 in floating point can land a hair above a whole rank (7.000000000000001); a
# rank is a whole number, so anything this close to one is that one.
_RANK_SLACK = 1e-9


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0 ≤ ``q`` ≤ 100) of ``values`` by the nearest-rank method:
    the smallest sample that at least ``q`` % of the samples are less than or equal to; NaN
    when there are none.

    Nearest rank always answers with a sample that was measured (no interpolation between
    two), so a p99 of latencies is a latency some task really had, and the p100 is the max.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"a percentile is between 0 and 100, not {q!r}")
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = math.ceil(q * len(ordered) / 100 - _RANK_SLACK)
    return ordered[min(len(ordered), max(1, rank)) - 1]
