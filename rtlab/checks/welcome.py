"""Checks for lesson 00, welcome: what polling costs compared with push.

The exercise: a client polls an idle feed just often enough that updates arrive,
on average, ``latency_ms`` late; each poll costs ``header_bytes``. How many bytes per
second does it spend on headers alone?

The check tries fixed cases, then a live one: it polls a real lab server's idle feed
through a byte-counting proxy and asks the learner's function what those measured
headers cost at 100 ms of freshness.
"""

from __future__ import annotations

import math
import numbers
import urllib.request
from collections.abc import Callable

from rtlab.checks import Problem, Verdict, grade
from rtlab.checks.bounded import STILL_RUNNING, call_within
from rtlab.notebook.background import start_proxy, start_server
from rtlab.notebook.wait import wait_until

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

LIMIT = 2.0  # seconds the learner's function may take for one case
LIVE_POLLS = 3  # idle polls of a real lab server, to measure a poll's bytes
LIVE_LATENCY_MS = 100

NUDGE = (
    "start with the poll interval: on average an update waits half of it, so which "
    "interval gives latency_ms?"
)

HINT = (
    "an update waits half a poll interval on average, so poll every 2 * latency_ms "
    "milliseconds, that is 1000 / (2 * latency_ms) polls per second; each costs "
    "header_bytes, so return header_bytes * 1000 / (2 * latency_ms)."
)

UNITS = "mind the units: latency_ms is in milliseconds, the answer in bytes per second"

# A learner's answer divided by the right one, for the common slips.
SLIPS: tuple[tuple[float, str], ...] = (
    (2.0, "you polled every latency_ms, but an update waits only half an interval on average"),
    (4.0, "the poll interval is 2 * latency_ms, not latency_ms / 2"),
    (0.001, UNITS),
    (0.002, UNITS),
    (1e-6, UNITS),
    (1000.0, UNITS),
    (8.0, "that is bits per second: the answer is in bytes"),
    (60.0, "that is bytes per minute: the answer is per second"),
)


def _expected(latency_ms: float, header_bytes: float) -> float:
    interval_s = 2 * latency_ms / 1000
    return header_bytes / interval_s


def _diagnose(got: float, latency_ms: float, header_bytes: float) -> str:
    expected = _expected(latency_ms, header_bytes)
    if expected == 0:
        return ""
    if header_bytes and math.isclose(got, expected / header_bytes, rel_tol=1e-6):
        return ": that is polls per second; each poll costs header_bytes"
    if math.isclose(got, 2 * latency_ms / 1000, rel_tol=1e-6):
        return ": that is the poll interval in seconds; how many polls fit in a second?"
    ratio = got / expected
    for slip, advice in SLIPS:
        if math.isclose(ratio, slip, rel_tol=1e-6):
            return f": {advice}"
    return ""


def _grade_one(
    function: Callable[[float, float], float], latency_ms: float, header_bytes: float
) -> str | None:
    args = f"latency_ms={latency_ms:g}, header_bytes={header_bytes:g}"
    got = call_within(lambda: function(latency_ms, header_bytes), LIMIT)
    if got is STILL_RUNNING:
        return f"({args}) did not return within {LIMIT:g} s: does a loop never end?"
    if got is None:
        return f"({args}) returned None: did you forget `return`?"
    if isinstance(got, bool) or not isinstance(got, numbers.Real):
        return f"({args}) returned {got!r}: expected a number of bytes per second"
    expected = _expected(latency_ms, header_bytes)
    if not math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9):
        why = _diagnose(got, latency_ms, header_bytes)
        return f"({args}) gave {got:g} bytes/s, expected {expected:g}{why}"
    return None


def measure_idle_poll(polls: int = LIVE_POLLS) -> int:
    """Bytes on the wire, both ways, of one idle ``GET /feed`` of a real lab server."""
    with start_server() as server, start_proxy(server) as proxy:
        for _ in range(polls):
            with urllib.request.urlopen(f"{proxy.http_url}feed?after=0", timeout=5) as answer:
                answer.read()
        wait_until(lambda: proxy.connections == 0, timeout=5, what="the polls to finish")
        return proxy.traffic.total // polls


def check_idle_polling_cost(function: Callable[[float, float], float]) -> Verdict:
    """Grade ``idle_polling_cost(latency_ms, header_bytes)`` on fixed cases, then on the
    bytes of a real idle poll of a lab server."""
    live: list[int] = []

    def attempt() -> Problem | None:
        if not callable(function):
            return f"expected a function, got {type(function).__name__}"
        for latency_ms, header_bytes in CASES:
            if problem := _grade_one(function, latency_ms, header_bytes):
                return problem
        live.append(measure_idle_poll())
        problem = _grade_one(function, LIVE_LATENCY_MS, live[0])
        return f"with a live poll's bytes {problem}" if problem else None

    verdict = grade("idle_polling_cost", attempt, HINT, NUDGE)
    if not verdict.passed:
        return verdict
    cost = _expected(LIVE_LATENCY_MS, live[0])
    return Verdict(
        True,
        f"{verdict.message}. Live: an idle poll of a lab server cost {live[0]} bytes, so "
        f"{LIVE_LATENCY_MS} ms freshness costs {cost:,.0f} B/s per client, "
        f"{cost * 10_000 / 1e6:.1f} MB/s for 10,000 clients",
    )
