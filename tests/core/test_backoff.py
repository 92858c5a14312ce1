"""The reconnection schedule: exponential, capped, jittered within bounds."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtlab.core.backoff import Reconnection, backoff_delay, schedule


def test_without_jitter_the_delay_doubles_up_to_the_cap():
    options = Reconnection(delay=1, delay_max=5, randomization_factor=0)
    assert [backoff_delay(n, options) for n in range(6)] == [1, 2, 4, 5, 5, 5]


def test_jitter_spreads_the_delay_around_the_base():
    options = Reconnection(delay=1, delay_max=100, randomization_factor=0.5)
    assert backoff_delay(2, options, u=-1) == 2.0
    assert backoff_delay(2, options, u=0) == 4.0
    assert backoff_delay(2, options, u=1) == 6.0


@given(
    attempt=st.integers(0, 200),
    delay=st.floats(0, 10),
    extra=st.floats(0, 100),
    factor=st.floats(0, 1),
    u=st.floats(-1, 1),
)
def test_every_delay_stays_within_its_bounds(attempt, delay, extra, factor, u):
    options = Reconnection(delay=delay, delay_max=delay + extra, randomization_factor=factor)
    base = min(delay * 2**attempt, delay + extra)
    wait = backoff_delay(attempt, options, u)
    assert base * (1 - factor) - 1e-9 <= wait <= min(base * (1 + factor), delay + extra) + 1e-9


def test_schedule_stops_after_the_attempts():
    options = Reconnection(attempts=3, randomization_factor=0)
    assert list(schedule(options)) == [1, 2, 4]
    assert list(schedule(Reconnection(enabled=False))) == []


def test_schedule_without_a_limit_goes_on_and_is_reproducible_with_a_seed():
    options = Reconnection()
    first = list(itertools.islice(schedule(options, random.Random(7)), 50))
    again = list(itertools.islice(schedule(options, random.Random(7)), 50))
    assert first == again
    assert len(set(first[10:])) > 1  # jitter: capped delays still differ
    assert all(2.5 <= d <= 5 for d in first[10:])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"delay": -1}, "need 0 <= delay <= delay_max"),
        ({"delay": 10, "delay_max": 5}, "need 0 <= delay <= delay_max"),
        ({"randomization_factor": 1.5}, "randomization_factor must be from 0 to 1"),
        ({"attempts": -1}, "attempts must be 0 or more"),
    ],
)
def test_bad_options_are_refused_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Reconnection(**kwargs)


def test_bad_arguments_are_refused_clearly():
    with pytest.raises(ValueError, match="attempt must be 0 or more"):
        backoff_delay(-1, Reconnection())
    with pytest.raises(ValueError, match="u must be from -1 to 1"):
        backoff_delay(0, Reconnection(), u=2)
