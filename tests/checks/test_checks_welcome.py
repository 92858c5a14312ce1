"""The check for lesson 00's exercise: idle_polling_cost(latency_ms, header_bytes)."""

from __future__ import annotations

import math
import re
import sys
import threading
import time

import pytest

from rtlab.checks import Verdict
from rtlab.checks.welcome import CASES, HINT, NUDGE, check_idle_polling_cost, measure_idle_poll

FIRST = "idle_polling_cost: (latency_ms=100, header_bytes=300) "


def correct(latency_ms: float, header_bytes: float) -> float:
    polls_per_second = 1000 / (2 * latency_ms)
    return header_bytes * polls_per_second


def test_a_correct_answer_passes_and_says_what_a_live_poll_cost() -> None:
    verdict = check_idle_polling_cost(correct)
    assert isinstance(verdict, Verdict)
    assert verdict.passed, verdict
    assert re.fullmatch(
        r"✅ idle_polling_cost: correct\. Live: an idle poll of a lab server cost (\d+) bytes, "
        r"so 100 ms freshness costs [\d,]+ B/s per client, [\d.]+ MB/s for 10,000 clients",
        str(verdict),
    )
    assert not [
        t for t in threading.enumerate() if t.name in ("rtlab-server", "rtlab-proxy")
    ]  # all stopped


def test_a_live_idle_poll_costs_a_few_hundred_bytes_every_time() -> None:
    first = measure_idle_poll()
    assert 150 < first < 600  # a request line, a status line and their headers
    assert measure_idle_poll(polls=2) == first  # the same bytes on every poll


RIGHT = [
    pytest.param(lambda latency, header: header * 500 / latency, id="500/latency"),
    pytest.param(lambda latency, header: header / (2 * latency / 1000), id="over the interval"),
    pytest.param(lambda latency, header: float(header) * (1 / (latency * 2e-3)), id="float"),
    pytest.param(
        lambda latency, header: header * (1000 / latency) / 2 if header else 0, id="a branch"
    ),
]


@pytest.mark.parametrize("answer", RIGHT)
def test_right_answers_written_differently_pass(answer) -> None:
    assert check_idle_polling_cost(answer).passed


def test_the_cases_include_edge_cases() -> None:
    assert any(header == 0 for _, header in CASES)
    assert any(latency < 1 for latency, _ in CASES)
    assert any(correct(*case) != int(correct(*case)) for case in CASES)


def test_not_done_yet_gets_the_nudge() -> None:
    def learner_copy(latency_ms: float, header_bytes: float) -> float:
        raise NotImplementedError  # your code here

    verdict = check_idle_polling_cost(learner_copy)
    assert not verdict.passed
    assert str(verdict) == (
        f"❌ idle_polling_cost: not done yet\n   Hint: {NUDGE} (rtlab.hint() shows the recipe)"
    )


# A wrong answer, and the message a learner sees; each is shown with the recipe.
WRONG = [
    pytest.param(
        lambda latency, header: header / (latency / 1000),
        FIRST + "gave 3000 bytes/s, expected 1500: you polled every latency_ms, "
        "but an update waits only half an interval on average",
        id="polls every latency_ms",
    ),
    pytest.param(
        lambda latency, header: header / (latency / 2 / 1000),
        FIRST + "gave 6000 bytes/s, expected 1500: the poll interval is 2 * latency_ms, "
        "not latency_ms / 2",
        id="polls every latency_ms / 2",
    ),
    pytest.param(
        lambda latency, header: header / (2 * latency),
        FIRST + "gave 1.5 bytes/s, expected 1500: mind the units: latency_ms is in "
        "milliseconds, the answer in bytes per second",
        id="milliseconds as seconds",
    ),
    pytest.param(
        lambda latency, header: header / latency,
        FIRST + "gave 3 bytes/s, expected 1500: mind the units: latency_ms is in "
        "milliseconds, the answer in bytes per second",
        id="both slips",
    ),
    pytest.param(
        lambda latency, header: 500 / latency,
        FIRST + "gave 5 bytes/s, expected 1500: that is polls per second; "
        "each poll costs header_bytes",
        id="polls per second",
    ),
    pytest.param(
        lambda latency, header: 2 * latency / 1000,
        FIRST + "gave 0.2 bytes/s, expected 1500: that is the poll interval in seconds; "
        "how many polls fit in a second?",
        id="the interval",
    ),
    pytest.param(
        lambda latency, header: 8 * header * 500 / latency,
        FIRST + "gave 12000 bytes/s, expected 1500: that is bits per second: "
        "the answer is in bytes",
        id="bits",
    ),
    pytest.param(
        lambda latency, header: 60 * header * 500 / latency,
        FIRST + "gave 90000 bytes/s, expected 1500: that is bytes per minute: "
        "the answer is per second",
        id="per minute",
    ),
    pytest.param(
        lambda latency, header: header * 500 // latency,
        "idle_polling_cost: (latency_ms=300, header_bytes=100) gave 166 bytes/s, expected 166.667",
        id="floor division",
    ),
    pytest.param(
        lambda latency, header: round(header * 500 / latency),
        "idle_polling_cost: (latency_ms=300, header_bytes=100) gave 167 bytes/s, expected 166.667",
        id="rounded",
    ),
    pytest.param(
        lambda latency, header: header * 5,
        "idle_polling_cost: (latency_ms=50, header_bytes=300) gave 1500 bytes/s, expected 3000",
        id="only right for the lesson's run",
    ),
    pytest.param(
        lambda latency, header: f"{header * 500 / latency} B/s",
        FIRST + "returned '1500.0 B/s': expected a number of bytes per second",
        id="a string",
    ),
    pytest.param(
        lambda latency, header: print(header * 500 / latency),
        FIRST + "returned None: did you forget `return`?",
        id="print, no return",
    ),
    pytest.param(
        lambda latency, header: header / (2 * latency / 1000) if latency >= 1 else math.inf,
        "idle_polling_cost: (latency_ms=0.5, header_bytes=400) gave inf bytes/s, expected 400000",
        id="gives up below a millisecond",
    ),
    pytest.param(
        lambda latency, header: 1 / 0,
        "idle_polling_cost: raised ZeroDivisionError: division by zero",
        id="an exception",
    ),
    pytest.param(
        lambda latency, header: header / (2 * latency / 1000) if header else None,
        "idle_polling_cost: (latency_ms=100, header_bytes=0) returned None: "
        "did you forget `return`?",
        id="forgets the free case",
    ),
]


@pytest.mark.parametrize(("answer", "message"), WRONG)
def test_wrong_answers_fail_with_a_diagnosis_and_the_recipe(answer, message) -> None:
    verdict = check_idle_polling_cost(answer)
    assert not verdict.passed
    assert verdict.message == message
    assert verdict.hint == HINT
    assert str(verdict) == f"❌ {message}\n   Hint: {HINT}"


def test_something_not_callable_fails() -> None:
    verdict = check_idle_polling_cost(1500)  # type: ignore[arg-type]
    assert not verdict.passed
    assert verdict.message == "idle_polling_cost: expected a function, got int"


def test_an_answer_that_exits_is_a_cross_too() -> None:
    verdict = check_idle_polling_cost(lambda latency, header: sys.exit())
    assert not verdict.passed
    assert verdict.message == "idle_polling_cost: raised SystemExit"


@pytest.mark.slow
def test_an_answer_that_never_returns_is_a_cross_not_a_hung_cell() -> None:
    def stuck(latency_ms: float, header_bytes: float) -> float:
        time.sleep(3)  # as good as endless: longer than the check waits
        return header_bytes * 500 / latency_ms

    started = time.monotonic()
    verdict = check_idle_polling_cost(stuck)
    assert time.monotonic() - started < 2.9
    assert verdict.message == (
        "idle_polling_cost: (latency_ms=100, header_bytes=300) did not return within 2 s: "
        "does a loop never end?"
    )
    assert verdict.hint == HINT
