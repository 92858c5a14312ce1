"""Checks for lesson 00, welcome: what polling costs compared with push.

The exercise: a client polls an idle feed just often enough that updates arrive,
on average, ``latency_ms`` late; each poll costs ``header_bytes``. How many bytes per
second does it spend on headers alone?
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

from rtlab.checks import Verdict, grade

__all__ = ["check_idle_polling_cost"]

# (latency_ms, header_bytes): the lesson's run, then halving the latency, then edge cases.
CASES: tuple[tuple[float, float], ...] = (
    (100, 300),  # the run in the lesson: one poll every 200 ms
    (50, 300),  # half the delay: twice the cost
    (1000, 250),  # a relaxed feed: one poll every 2 s
    (300, 100),  # not a whole number of bytes per second
    (0.5, 400),  # sub-millisecond freshness: 1000 polls per second
    (100, 0),  # free headers (they never are): free polling
)

HINT = (
    "on average an update waits half a poll interval: so how often must the client poll? "
    "Each poll costs header_bytes; and mind milliseconds vs seconds."
)

UNITS = "mind the units: latency_ms is in milliseconds, the answer in bytes per second"

# A learner's answer divided by the right one, for the common slips.
SLIPS: tuple[tuple[float, str], ...] = (
    (2.0, "you polled every latency_ms, but an update waits only half an interval on average"),
    (4.0, "the poll interval is 2 * latency_ms, not latency_ms / 2"),
    (0.001, UNITS),
    (0.002, UNITS),
    (1e-6, UNITS),
)


def _expected(latency_ms: float, header_bytes: float) -> float:
    interval_s = 2 * latency_ms / 1000
    return header_bytes / interval_s


def _diagnose(got: float, expected: float) -> str:
    if expected == 0:
        return ""
    ratio = got / expected
    for slip, advice in SLIPS:
        if math.isclose(ratio, slip, rel_tol=1e-6):
            return f": {advice}"
    return ""


def check_idle_polling_cost(function: Callable[[float, float], float]) -> Verdict:
    """Grade ``idle_polling_cost(latency_ms, header_bytes)`` on several cases."""

    def attempt() -> str | None:
        if not callable(function):
            return f"expected a function, got {type(function).__name__}"
        for latency_ms, header_bytes in CASES:
            expected = _expected(latency_ms, header_bytes)
            got = function(latency_ms, header_bytes)
            args = f"latency_ms={latency_ms}, header_bytes={header_bytes}"
            if got is None:
                return f"({args}) returned None: did you forget `return`?"
            if isinstance(got, bool) or not isinstance(got, numbers.Real):
                return f"({args}) returned {got!r}: expected a number of bytes per second"
            if not math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9):
                why = _diagnose(got, expected)
                return f"({args}) gave {got:g} bytes/s, expected {expected:g}{why}"
        return None

    return grade("idle_polling_cost", attempt, HINT)
