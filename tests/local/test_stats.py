"""The one percentile the demo, the load test and the benchmarks report (nearest rank)."""

from __future__ import annotations

import math
import random

import pytest

from podfleet.local.stats import percentile

HUNDRED = [float(v) for v in range(1, 101)]


@pytest.mark.parametrize(("q", "expected"), [
    (50, 50.0), (95, 95.0), (99, 99.0), (100, 100.0), (0, 1.0), (0.5, 1.0), (99.5, 100.0),
])
def test_a_percentile_of_a_hundred_samples_is_the_sample_of_that_rank(q: float,
                                                                      expected: float) -> None:
    assert percentile(HUNDRED, q) == expected


def test_the_samples_need_not_be_sorted() -> None:
    shuffled = list(HUNDRED)
    random.Random(3).shuffle(shuffled)

    assert percentile(shuffled, 99) == 99.0


def test_a_percentile_is_always_a_measured_sample() -> None:
    # Between 10 and 20 there is nothing that was measured: no interpolation
    assert percentile([10.0, 20.0], 50) == 10.0
    assert percentile([10.0, 20.0], 51) == 20.0


def test_a_rank_that_floating_point_puts_a_hair_above_a_whole_one_is_that_one() -> None:
    # 7 * 100 / 100 is exact, but 0.07 * 100 is 7.000000000000001 in floating point
    samples = [float(v) for v in range(1, 10_001)]

    assert percentile(samples, 0.07 * 100) == 700.0
    assert percentile(samples, 99.9) == 9990.0


def test_no_samples_have_no_percentile() -> None:
    assert math.isnan(percentile([], 50))


@pytest.mark.parametrize("q", [-1, 100.5, 0.99 * 1000])
def test_a_percentile_outside_0_to_100_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile(HUNDRED, q)
