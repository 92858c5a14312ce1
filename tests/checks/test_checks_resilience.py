"""The checks of lesson 04 pass the reference answers and explain the usual slips."""

from __future__ import annotations

from typing import Any

from rtlab.checks.resilience import check_backoff_delay, check_fresh
from rtlab.core.backoff import Reconnection, backoff_delay


def good_delay(attempt: int, delay: float, delay_max: float, factor: float, u: float) -> float:
    base = min(delay * 2.0 ** min(attempt, 1000), delay_max)
    return min(base * (1 + factor * u), delay_max)


def good_fresh(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    newest: dict[str, int] = {}
    kept = []
    for message in messages:
        if message["seq"] > newest.get(message["roomId"], 0):
            newest[message["roomId"]] = message["seq"]
            kept.append(message)
    return kept


def test_the_reference_and_a_learners_answer_pass():
    verdict = check_backoff_delay(good_delay)
    assert verdict and str(verdict) == "✅ backoff_delay: correct"

    def via_rtlab(attempt, delay, delay_max, factor, u):
        options = Reconnection(delay=delay, delay_max=delay_max, randomization_factor=factor)
        return backoff_delay(attempt, options, u)

    assert check_backoff_delay(via_rtlab)
    assert str(check_fresh(good_fresh)) == "✅ fresh: correct"


def test_not_done_yet_shows_the_hint():
    def todo(*args):
        raise NotImplementedError

    for check in (check_backoff_delay, check_fresh):
        verdict = check(todo)
        assert not verdict
        assert "not done yet" in str(verdict)
        assert "Hint:" in str(verdict)


def test_backoff_slips_are_named():
    def no_cap_after_jitter(attempt, delay, delay_max, factor, u):
        return min(delay * 2.0**attempt, delay_max) * (1 + factor * u)

    def from_one(attempt, delay, delay_max, factor, u):
        return good_delay(attempt - 1, delay, delay_max, factor, u) if attempt else delay / 2

    def no_jitter(attempt, delay, delay_max, factor, u):
        return min(delay * 2.0**attempt, delay_max)

    assert "cap after the jitter" in str(check_backoff_delay(no_cap_after_jitter))
    assert "expected 1" in str(check_backoff_delay(from_one))
    assert "expected 0.5" in str(check_backoff_delay(no_jitter))
    assert "not a number" in str(check_backoff_delay(lambda *a: "1 s"))


def test_fresh_slips_are_shown_with_the_arrivals():
    def everything(messages):
        return list(messages)

    def one_counter(messages):  # forgets that rooms count on their own
        newest, kept = 0, []
        for message in messages:
            if message["seq"] > newest:
                newest = message["seq"]
                kept.append(message)
        return kept

    verdict = check_fresh(everything)
    assert not verdict
    assert "kept ['a', 'b', 'b', 'c'], expected ['a', 'b', 'c']" in str(verdict)
    assert "expected ['a', 'k1', 'b', 'k2']" in str(check_fresh(one_counter))
    assert "expected a list" in str(check_fresh(lambda messages: None))
