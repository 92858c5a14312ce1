"""Checks for lesson 04, resilience: the backoff delay, and messages seen once.

Exercise 1: ``backoff_delay(attempt, delay, delay_max, factor, u)`` is the wait before
reconnection attempt ``attempt`` (0 is the first), compared with
:func:`rtlab.core.backoff.backoff_delay` on fixed cases.

Exercise 2: ``fresh(messages)`` keeps, from ``receive-message`` data in the order it
arrived, each message whose ``seq`` is newer than every one seen before in its
room: what a client does with a replay after reconnecting, so that nothing shows twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rtlab.checks import Verdict, grade
from rtlab.core.backoff import Reconnection
from rtlab.core.backoff import backoff_delay as reference_delay

__all__ = ["check_backoff_delay", "check_fresh"]

# (attempt, delay, delay_max, factor, u)
BACKOFF_CASES: tuple[tuple[int, float, float, float, float], ...] = (
    (0, 1.0, 5.0, 0.5, 0.0),  # the first wait: the delay itself
    (1, 1.0, 5.0, 0.5, 0.0),  # doubled
    (2, 1.0, 5.0, 0.5, 0.0),
    (3, 1.0, 5.0, 0.5, 0.0),  # 8 s, capped at 5
    (10, 1.0, 5.0, 0.5, 0.0),
    (0, 1.0, 5.0, 0.5, -1.0),  # jitter down: half
    (1, 1.0, 5.0, 0.5, 1.0),  # jitter up: 3 s
    (2, 1.0, 5.0, 0.5, 0.5),  # 4 * 1.25 = 5
    (2, 1.0, 5.0, 0.5, 1.0),  # 4 * 1.5 = 6, capped at 5
    (5, 1.0, 5.0, 0.5, -0.5),  # capped base 5, jittered down to 3.75
    (0, 0.05, 0.2, 0.0, 1.0),  # no randomization: u changes nothing
    (4, 0.25, 30.0, 1.0, -1.0),  # factor 1: as low as 0
    (200, 0.5, 10.0, 0.2, 0.0),  # far along: still the cap (mind overflow)
)

BACKOFF_HINT = (
    "base = min(delay * 2**attempt, delay_max), then multiply by (1 + factor * u), "
    "and cap the result at delay_max again; attempt 0 waits delay itself"
)


def _backoff_problem(function: Callable[..., float]) -> str | None:
    for attempt, delay, delay_max, factor, u in BACKOFF_CASES:
        options = Reconnection(delay=delay, delay_max=delay_max, randomization_factor=factor)
        expected = reference_delay(attempt, options, u)
        got = function(attempt, delay, delay_max, factor, u)
        if isinstance(got, bool) or not isinstance(got, int | float):
            return f"returned {got!r}, not a number of seconds"
        if math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12):
            continue
        call = f"backoff_delay({attempt}, {delay}, {delay_max}, {factor}, {u})"
        if got > delay_max:
            return f"{call} is {got:g}, more than delay_max={delay_max:g}: cap after the jitter"
        if attempt > 0 and math.isclose(got, reference_delay(attempt - 1, options, u)):
            return f"{call} is {got:g}, one doubling short: attempt 0 waits delay * 2**0"
        return f"{call} is {got:g}, expected {expected:g}"
    return None


def check_backoff_delay(function: Callable[[int, float, float, float, float], float]) -> Verdict:
    """Grade ``backoff_delay(attempt, delay, delay_max, factor, u)``."""
    return grade("backoff_delay", lambda: _backoff_problem(function), BACKOFF_HINT)


def _message(room: str, seq: int, text: str) -> dict[str, Any]:
    return {"roomId": room, "seq": seq, "userId": "bob", "message": text}


# Arrival orders a client can see: live messages, then a replay that overlaps them.
FRESH_CASES: tuple[tuple[list[dict[str, Any]], list[str]], ...] = (
    ([], []),
    (
        [_message("lobby", 1, "a"), _message("lobby", 2, "b")],
        ["a", "b"],
    ),
    (  # a replay after reconnecting repeats 2 and brings 3
        [
            _message("lobby", 1, "a"),
            _message("lobby", 2, "b"),
            _message("lobby", 2, "b"),
            _message("lobby", 3, "c"),
        ],
        ["a", "b", "c"],
    ),
    (  # asking again for everything: only 4 is new
        [
            _message("lobby", 1, "a"),
            _message("lobby", 2, "b"),
            _message("lobby", 1, "a"),
            _message("lobby", 2, "b"),
            _message("lobby", 3, "c"),
            _message("lobby", 4, "d"),
        ],
        ["a", "b", "c", "d"],
    ),
    (  # each room counts on its own
        [
            _message("lobby", 1, "a"),
            _message("kitchen", 1, "k1"),
            _message("lobby", 2, "b"),
            _message("kitchen", 1, "k1"),
            _message("kitchen", 2, "k2"),
        ],
        ["a", "k1", "b", "k2"],
    ),
    (  # joined late: numbering starts at 7, not 1
        [_message("lobby", 7, "g"), _message("lobby", 8, "h"), _message("lobby", 7, "g")],
        ["g", "h"],
    ),
)

FRESH_HINT = (
    "remember, per roomId, the highest seq seen so far (a dict); keep a message only when its "
    "seq is higher, and update the dict; keep the order of arrival"
)


def _fresh_problem(function: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> str | None:
    for messages, expected in FRESH_CASES:
        given = [dict(m) for m in messages]
        got = function(given)
        try:
            texts = [m["message"] for m in got]
        except (TypeError, KeyError):
            return f"returned {got!r:.80}: expected a list of the messages kept"
        if texts != expected:
            arrived = [(m["roomId"], m["seq"]) for m in messages]
            return f"for arrivals (room, seq) {arrived} kept {texts}, expected {expected}"
    return None


def check_fresh(function: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> Verdict:
    """Grade ``fresh(messages)``: each message once, by room and seq, in arrival order."""
    return grade("fresh", lambda: _fresh_problem(function), FRESH_HINT)
