"""Percentiles by nearest rank: each one is a value that was really measured."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtlab.core.stats import Summary, percentile, rate, ratio


def test_nearest_rank_on_the_textbook_example():
    values = [15, 20, 35, 40, 50]
    assert [percentile(values, q) for q in (5, 30, 40, 50, 100)] == [15, 20, 20, 35, 50]


def test_p99_of_a_hundred_values_is_the_second_worst():
    values = list(range(1, 101))
    summary = Summary.of(reversed(values))
    assert (summary.count, summary.p50, summary.p90, summary.p99, summary.max) == (
        100,
        50,
        90,
        99,
        100,
    )


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1), st.floats(1, 100))
def test_a_percentile_is_a_measured_value_between_min_and_max(values, q):
    p = percentile(values, q)
    assert p in values
    assert min(values) <= p <= max(values)
    assert percentile(values, 100) == max(values)


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="q must be"):
        percentile([1.0], 0)
    with pytest.raises(ValueError, match="no values"):
        Summary.of([])


def test_rate_and_ratio_edges():
    assert rate(10, 2) == 5
    assert rate(10, 0) == 0
    assert ratio(3, 2) == 1.5
    assert ratio(1, 0) == math.inf
    assert math.isnan(ratio(0, 0))
