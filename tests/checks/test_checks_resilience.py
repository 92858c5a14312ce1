"""Lesson 05's checks grade the idea: right answers written differently pass, and the
realistic wrong ones fail with what the check saw (the message a learner reads)."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import re
import threading
import time
from collections import defaultdict
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from rtlab.checks import resilience
from rtlab.checks.resilience import check_fresh, check_keep_asking
from rtlab.core.backoff import Reconnection, backoff_delay

Wait = Any  # (attempt, delay, delay_max) -> seconds


def run(keep_asking, timeout: float = 8.0):  # type: ignore[no-untyped-def]
    return asyncio.run(check_keep_asking(keep_asking, timeout=timeout))


def reconnecting(  # type: ignore[no-untyped-def]
    wait, catch=(OSError, WebSocketException), *, reset=True, blocking=False
):
    """keep_asking as the lesson's solution writes it, with a wait rule of its own (and,
    for a wrong one, no reset of ``attempt`` once connected, or ``time.sleep``)."""

    async def keep_asking(url: str, texts: list[str], delay: float, delay_max: float) -> list:
        answers: list[str] = []
        attempt = 0
        while len(answers) < len(texts):
            try:
                async with connect(url) as ws:
                    if reset:
                        attempt = 0
                    while len(answers) < len(texts):
                        await ws.send(texts[len(answers)])
                        answers.append(await ws.recv())
            except catch:
                if blocking:
                    time.sleep(wait(attempt, delay, delay_max))  # stops the event loop
                else:
                    await asyncio.sleep(wait(attempt, delay, delay_max))
                attempt += 1
        return answers

    return keep_asking


# -- right answers, written differently ---------------------------------------------------


def rtlabs_rule(attempt: int, delay: float, delay_max: float) -> float:
    options = Reconnection(delay=delay, delay_max=delay_max)
    return backoff_delay(attempt, options, random.uniform(-1, 1))


def own_formula(attempt: int, delay: float, delay_max: float) -> float:
    base = min(delay * 2.0 ** min(attempt, 60), delay_max)
    return min(base * random.uniform(0.5, 1.5), delay_max)


def socketio_rule(attempt: int, delay: float, delay_max: float) -> float:
    ms = delay * 1000 * 2.0 ** min(attempt, 60)
    rand = random.random()
    deviation = math.floor(rand * 0.5 * ms)
    ms = ms - deviation if math.floor(rand * 10) & 1 == 0 else ms + deviation
    return int(min(ms, delay_max * 1000)) / 1000


def no_jitter(attempt: int, delay: float, delay_max: float) -> float:
    return min(delay * 2**attempt, delay_max)


def equal_jitter(attempt: int, delay: float, delay_max: float) -> float:
    base = min(delay * 2**attempt, delay_max)
    return base / 2 + random.uniform(0, base / 2)


def full_jitter() -> Wait:
    """Full jitter, from a fixed sequence: now and then it draws waits too alike to grade."""
    draws = random.Random(1)

    def wait(attempt: int, delay: float, delay_max: float) -> float:
        return draws.uniform(0, min(delay * 2**attempt, delay_max))

    return wait


async def one_text_at_a_time(url: str, texts: list[str], delay: float, delay_max: float) -> list:
    """A for loop over the texts, each retried until answered; one connection kept open."""
    answers = []
    ws: ClientConnection | None = None
    attempt = 0
    for text in texts:
        while True:
            try:
                if ws is None:
                    ws = await connect(url)
                    attempt = 0
                await ws.send(text)
                answers.append(await ws.recv())
                break
            except (ConnectionClosed, OSError, WebSocketException):
                ws = None
                await asyncio.sleep(min(delay * 2**attempt, delay_max))
                attempt += 1
    if ws is not None:
        await ws.close()
    return answers


@pytest.mark.parametrize(
    "keep_asking",
    [
        reconnecting(rtlabs_rule),
        reconnecting(own_formula),
        reconnecting(socketio_rule),
        reconnecting(no_jitter),
        reconnecting(equal_jitter),
        reconnecting(full_jitter()),
        reconnecting(no_jitter, catch=Exception),
        one_text_at_a_time,
    ],
    ids=[
        "rtlab-backoff_delay",
        "own-formula",
        "socketio-rule",
        "no-jitter",
        "equal-jitter",
        "full-jitter",
        "catch-Exception",
        "for-loop-per-text",
    ],
)
def test_keep_asking_right_answers_pass(keep_asking) -> None:  # type: ignore[no-untyped-def]
    verdict = run(keep_asking)
    assert str(verdict) == "✅ keep_asking: correct"


def test_the_check_cleans_up_and_takes_a_couple_of_seconds() -> None:
    start = time.monotonic()
    assert run(reconnecting(no_jitter))
    assert time.monotonic() - start < 4
    assert not [t for t in threading.enumerate() if t.name == "rtlab-check"]


# -- wrong answers: what the learner reads -------------------------------------------------


async def never_reconnects(url: str, texts: list[str], delay: float, delay_max: float) -> list:
    async with connect(url) as ws:
        answers = []
        for text in texts:
            await ws.send(text)
            answers.append(await ws.recv())
        return answers


def test_no_reconnection_names_the_drop() -> None:
    verdict = run(never_reconnects)
    assert verdict.message.startswith(
        "keep_asking: raised ConnectionClosedError: no close frame received or sent (a drop); "
        "the server saw 1 connection(s) and 0 refused attempt(s), and answered ['one']"
    )
    assert verdict.hint == resilience.CATCH_HINT


def test_catching_only_a_closed_connection_fails_on_the_refused_handshake() -> None:
    verdict = run(reconnecting(no_jitter, catch=ConnectionClosed))
    assert verdict.message == (
        "keep_asking: raised InvalidStatus: server rejected WebSocket connection: HTTP 503 "
        "(a refused handshake); the server saw 1 connection(s) and 1 refused attempt(s), "
        "and answered ['one']"
    )


def test_giving_up_after_five_attempts_as_the_tutorial_does_fails() -> None:
    async def five_attempts(url: str, texts: list[str], delay: float, delay_max: float) -> list:
        answers: list[str] = []
        attempt = 0
        while len(answers) < len(texts):
            try:
                async with connect(url) as ws:
                    attempt = 0
                    while len(answers) < len(texts):
                        await ws.send(texts[len(answers)])
                        answers.append(await ws.recv())
            except WebSocketException:
                if attempt == 5:  # reconnectionAttempts: 5
                    raise
                await asyncio.sleep(min(delay * 2**attempt, delay_max))
                attempt += 1
        return answers

    verdict = run(five_attempts)
    assert "raised InvalidStatus" in verdict.message
    assert "5 refused attempt(s)" in verdict.message


def test_a_hot_loop_is_named() -> None:
    verdict = run(reconnecting(lambda attempt, delay, delay_max: 0))
    assert not verdict
    # Refused handshakes take a few ms each, tens on a busy machine: either way no backoff.
    assert re.fullmatch(
        r"keep_asking: (the server refused 7 attempts within 0\.\d{3} s: "
        r"a hot loop, with no wait between attempts|waits between refused attempts were "
        r"[\d., ]+ s: they did not grow; .*)",
        verdict.message,
    )
    assert verdict.hint == resilience.BACKOFF_HINT


def test_a_constant_wait_does_not_grow() -> None:
    verdict = run(reconnecting(lambda attempt, delay, delay_max: 0.05))
    assert not verdict
    assert re.fullmatch(
        r"keep_asking: waits between refused attempts were (\d\.\d\d, ){5}\d\.\d\d s: "
        r"they did not grow; double the wait after each failed attempt, up to delay_max",
        verdict.message,
    )


def test_forgetting_the_cap_is_named() -> None:
    verdict = run(reconnecting(lambda attempt, delay, delay_max: delay * 2**attempt))
    assert not verdict
    assert re.fullmatch(
        r"keep_asking: waits between refused attempts were \d\.\d\d, .*, \d\.\d\d s, "
        r"then \d\.\d\d s until the next connection: one is longer than delay_max=0\.4 s",
        verdict.message,
    )


def test_forgetting_the_cap_is_named_whatever_the_jitter_draws() -> None:
    """Jittered, an uncapped wait among the refused attempts may stay under the cap's
    bound; the one after the last of them (1.28 s, times 0.5 to 1.5) never does."""
    low = reconnecting(lambda attempt, delay, delay_max: delay * 2**attempt * 0.5)
    verdict = run(low)
    assert "until the next connection: one is longer than delay_max" in verdict.message
    assert verdict.hint == resilience.BACKOFF_HINT


async def loses_the_text_in_flight(
    url: str, texts: list[str], delay: float, delay_max: float
) -> list:
    answers = []
    ws = await connect(url)
    attempt = 0
    for text in texts:
        try:
            await ws.send(text)
            answers.append(await ws.recv())
        except WebSocketException:  # reconnect, and go on with the next text
            while True:
                await asyncio.sleep(min(delay * 2**attempt, delay_max))
                attempt += 1
                try:
                    ws = await connect(url)
                    attempt = 0
                    break
                except WebSocketException:
                    pass
    await ws.close()
    return answers


def test_a_lost_message_is_named() -> None:
    verdict = run(loses_the_text_in_flight)
    assert verdict.message == (
        "keep_asking: returned ['Echo: one', 'Echo: three', 'Echo: five']: 'Echo: two' is missing"
    )
    assert verdict.hint == resilience.RESEND_HINT


async def starts_over(url: str, texts: list[str], delay: float, delay_max: float) -> list:
    attempt = 0
    while True:
        try:
            async with connect(url) as ws:
                answers = []  # every connection asks everything again
                for text in texts:
                    await ws.send(text)
                    answers.append(await ws.recv())
                return answers
        except WebSocketException:
            await asyncio.sleep(min(delay * 2**attempt, delay_max))
            attempt += 1


def test_resending_what_was_answered_is_named() -> None:
    verdict = run(starts_over)
    assert verdict.message == (
        "keep_asking: the server answered 'one' 3 times: "
        "it was sent again after its answer had arrived"
    )


def test_an_answer_made_up_is_caught() -> None:
    async def fills_in(url: str, texts: list[str], delay: float, delay_max: float) -> list:
        answers = []
        async with connect(url) as ws:
            for text in texts:
                try:
                    await ws.send(text)
                    answers.append(await ws.recv())
                except WebSocketException:
                    answers.append(f"Echo: {text}")  # what the server would have said
        return answers

    verdict = run(fills_in)
    assert verdict.message.startswith(
        "keep_asking: returned 'Echo: two', an answer the server never sent: "
        "the server saw 1 connection(s)"
    )


def test_resending_at_the_end_is_out_of_order() -> None:
    async def retry_later(url: str, texts: list[str], delay: float, delay_max: float) -> list:
        queue, answers, attempt = list(texts), [], 0
        while queue:
            try:
                async with connect(url) as ws:
                    attempt = 0
                    while queue:
                        text = queue.pop(0)
                        try:
                            await ws.send(text)
                            answers.append(await ws.recv())
                        except WebSocketException:
                            queue.append(text)  # try it again after the others
                            raise
            except WebSocketException:
                await asyncio.sleep(min(delay * 2**attempt, delay_max))
                attempt += 1
        return answers

    verdict = run(retry_later)
    assert verdict.message == (
        "keep_asking: returned ['Echo: one', 'Echo: three', 'Echo: five', 'Echo: two', "
        "'Echo: four'], expected ['Echo: one', 'Echo: two', 'Echo: three', 'Echo: four', "
        "'Echo: five']"
    )


def test_never_returning_ends_in_bounded_time_with_what_was_seen() -> None:
    async def forever(url: str, texts: list[str], delay: float, delay_max: float) -> list:
        answers: list[str] = []
        while True:  # forgets to stop once every text is answered
            try:
                async with connect(url) as ws:
                    while len(answers) < len(texts):
                        await ws.send(texts[len(answers)])
                        answers.append(await ws.recv())
                    await ws.recv()  # waits for more
            except WebSocketException:
                await asyncio.sleep(min(delay * 2 ** len(answers), delay_max))

    start = time.monotonic()
    verdict = run(forever, timeout=3)
    assert time.monotonic() - start < 6
    assert verdict.message.startswith("keep_asking: did not return within 3 s; the server saw")
    assert "answered ['one', 'two', 'three', 'four', 'five']" in verdict.message


def test_other_failures_are_crosses_not_tracebacks() -> None:
    async def not_done(url: str, texts: list[str], delay: float, delay_max: float) -> list:
        raise NotImplementedError

    def not_async(url: str, texts: list[str], delay: float, delay_max: float) -> list:
        return [f"Echo: {text}" for text in texts]

    async def two_arguments(url: str, texts: list[str]) -> list:
        return []

    async def returns_nothing(url: str, texts: list[str], delay: float, delay_max: float):
        await reconnecting(no_jitter)(url, texts, delay, delay_max)

    assert str(run(not_done)) == (
        "❌ keep_asking: not done yet\n   Hint: "
        + resilience.KEEP_ASKING_NUDGE
        + " (rtlab.hint() shows the recipe)"
    )
    assert "returned ['Echo: one', 'Echo: two'" in run(not_async).message
    assert "at once: define it with `async def`" in run(not_async).message
    assert run(two_arguments).message == (
        "keep_asking: raised TypeError: test_other_failures_are_crosses_not_tracebacks."
        "<locals>.two_arguments() takes 2 positional arguments but 4 were given"
    )
    assert run(returns_nothing).message == (
        "keep_asking: returned None, expected the list of answers"
    )


# -- fresh(messages) -----------------------------------------------------------------------


def fresh_reference(messages: list[dict]) -> list[dict]:
    newest: dict[str, int] = {}
    kept = []
    for message in messages:
        if message["seq"] > newest.get(message["roomId"], 0):
            newest[message["roomId"]] = message["seq"]
            kept.append(message)
    return kept


def fresh_membership(messages: list[dict]) -> list[dict]:
    newest: dict[str, int] = {}
    kept = []
    for m in messages:
        room, seq = m["roomId"], m["seq"]
        if room not in newest or seq > newest[room]:
            newest[room] = seq
            kept.append(m)
    return kept


def fresh_generator(messages: list[dict]):  # type: ignore[no-untyped-def]
    newest: defaultdict[str, float] = defaultdict(lambda: -math.inf)
    for m in messages:
        if m["seq"] > newest[m["roomId"]]:
            newest[m["roomId"]] = m["seq"]
            yield m


def fresh_filter(messages: list[dict]) -> tuple:
    newest: dict[str, int] = {}

    def new(m: dict) -> bool:
        old = newest.get(m["roomId"], 0)
        newest[m["roomId"]] = max(old, m["seq"])
        return m["seq"] > old

    return tuple(filter(new, messages))


@pytest.mark.parametrize(
    "fresh", [fresh_reference, fresh_membership, fresh_generator, fresh_filter]
)
def test_fresh_right_answers_pass(fresh) -> None:  # type: ignore[no-untyped-def]
    assert str(check_fresh(fresh)) == "✅ fresh: correct"


def test_fresh_not_done_yet_shows_the_nudge() -> None:
    def todo(messages: list[dict]) -> list[dict]:
        raise NotImplementedError

    assert str(check_fresh(todo)) == (
        "❌ fresh: not done yet\n   Hint: "
        + resilience.FRESH_NUDGE
        + " (rtlab.hint() shows the recipe)"
    )


def test_a_set_of_seen_seqs_keeps_an_older_message() -> None:
    def by_set(messages: list[dict]) -> list[dict]:
        seen, kept = set(), []
        for m in messages:
            if (m["roomId"], m["seq"]) not in seen:
                seen.add((m["roomId"], m["seq"]))
                kept.append(m)
        return kept

    verdict = check_fresh(by_set)
    assert verdict.message == (
        "fresh: for arrivals (room, seq) [('lobby', 1), ('lobby', 3), ('lobby', 2)] "
        "kept ['a', 'c', 'b'], expected ['a', 'c']"
    )
    assert verdict.hint == resilience.OLDER_HINT


def test_a_highest_seq_per_sender_keeps_an_older_message() -> None:
    def per_sender(messages: list[dict]) -> list[dict]:
        newest: dict[tuple[str, str], int] = {}
        kept = []
        for m in messages:
            key = (m["roomId"], m["userId"])
            if m["seq"] > newest.get(key, 0):
                newest[key] = m["seq"]
                kept.append(m)
        return kept

    verdict = check_fresh(per_sender)
    assert verdict.message == (
        "fresh: for arrivals (room, seq, user) [('lobby', 1, 'alice'), ('lobby', 3, 'bob'), "
        "('lobby', 2, 'alice')] kept ['a', 'c', 'b'], expected ['a', 'c']"
    )
    assert verdict.hint == resilience.SENDER_HINT


def test_fresh_slips_are_shown_with_the_arrivals() -> None:
    def everything(messages: list[dict]) -> list[dict]:
        return list(messages)

    def one_counter(messages: list[dict]) -> list[dict]:  # forgets that rooms count apart
        newest, kept = 0, []
        for message in messages:
            if message["seq"] > newest:
                newest = message["seq"]
                kept.append(message)
        return kept

    def at_least(messages: list[dict]) -> list[dict]:  # >= keeps a repeat of the newest
        newest: dict[str, int] = {}
        kept = []
        for m in messages:
            if m["seq"] >= newest.get(m["roomId"], 0):
                newest[m["roomId"]] = m["seq"]
                kept.append(m)
        return kept

    def never_updates(messages: list[dict]) -> list[dict]:
        newest: dict[str, int] = {}
        return [m for m in messages if m["seq"] > newest.get(m["roomId"], 0)]

    assert "kept ['a', 'b', 'b', 'c'], expected ['a', 'b', 'c']" in str(check_fresh(everything))
    assert "expected ['a', 'k1', 'b', 'k2']" in str(check_fresh(one_counter))
    assert "kept ['a', 'b', 'b', 'c'], expected ['a', 'b', 'c']" in str(check_fresh(at_least))
    assert "kept ['a', 'b', 'b', 'c']" in str(check_fresh(never_updates))
    for wrong in (everything, one_counter, at_least):
        assert check_fresh(wrong).hint == resilience.FRESH_HINT


def test_fresh_answers_that_are_not_lists_or_raise() -> None:
    assert "expected a list of the messages kept" in str(check_fresh(lambda messages: None))
    assert str(check_fresh(lambda messages: [m["text"] for m in messages])).startswith(
        "❌ fresh: raised KeyError: 'text'"
    )
    assert "returned ['a', 'b']: expected a list" in str(
        check_fresh(lambda messages: [m["message"] for m in messages])
    )


def test_fresh_that_never_returns_is_a_cross_in_bounded_time() -> None:
    more = threading.Event()  # set at the end, so that the learner's thread ends too

    def waits_for_more(messages: list[dict]) -> list[dict]:
        more.wait()  # for a message that never comes
        return messages

    start = time.monotonic()
    verdict = check_fresh(waits_for_more, timeout=0.5)
    more.set()
    assert time.monotonic() - start < 2
    assert verdict.message == "fresh: did not return within 0.5 s: does a loop never end?"


def test_a_hot_loop_slowed_by_a_busy_machine_does_not_pass_as_backoff() -> None:
    """Seen in JupyterLab under load: handshakes failing 10-70 ms apart, growing by chance."""
    times = list(itertools.accumulate([0.0, 0.02, 0.01, 0.02, 0.04, 0.03, 0.07]))
    problem = resilience._waits_problem(times)
    assert problem is not None
    assert "they did not grow" in problem[0]
    doubling = list(itertools.accumulate([0.0, 0.02, 0.04, 0.08, 0.16, 0.32, 0.4]))
    assert resilience._waits_problem([t * 0.6 for t in doubling]) is None  # jittered low


def test_one_wait_stretched_by_a_busy_machine_is_not_a_missing_cap() -> None:
    """Seen under make test on a loaded machine: a right answer's fifth wait took 0.66 s."""
    stretched = list(itertools.accumulate([0.0, 0.04, 0.05, 0.08, 0.20, 0.66, 0.40]))
    assert resilience._waits_problem(stretched) is None
    no_cap = list(itertools.accumulate([0.0, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64]))
    problem = resilience._waits_problem(no_cap)
    assert problem is not None
    assert "longer than delay_max=0.4 s" in problem[0]
    twice_over = list(itertools.accumulate([0.0, 0.05, 0.1, 0.2, 0.7, 0.9, 0.3]))
    assert "longer than delay_max" in resilience._waits_problem(twice_over)[0]


def test_an_early_wait_stretched_by_a_busy_machine_does_not_hide_the_growth() -> None:
    """Seen in CI in JupyterLab: a right answer's second wait took 0.38 s, the others 0.13 to
    0.41, and the last two together were less than 1.5 times the first two."""
    stretched = list(itertools.accumulate([0.0, 0.13, 0.38, 0.19, 0.23, 0.41, 0.25]))
    assert resilience._waits_problem(stretched) is None
    same = list(itertools.accumulate([0.0, 0.13, 0.38, 0.19, 0.16, 0.18, 0.15]))
    assert "they did not grow" in resilience._waits_problem(same)[0]


def test_what_each_refused_attempt_costs_on_a_busy_machine_is_allowed_for() -> None:
    """Seen in CI late in a long test run: every wait 0.1 s longer than the sleep in it."""
    costly = list(itertools.accumulate([0.0, 0.10, 0.14, 0.17, 0.29, 0.33, 0.50]))
    assert resilience._waits_problem(costly) is None
    no_cap = list(itertools.accumulate([0.0, 0.11, 0.12, 0.14, 0.18, 0.26, 0.42, 0.74]))
    assert "longer than delay_max" in resilience._waits_problem(no_cap)[0]


def test_keep_asking_that_never_resets_its_attempts_gets_the_reset_hint() -> None:
    verdict = run(reconnecting(no_jitter, reset=False))
    assert re.fullmatch(
        r"keep_asking: after the link dropped again, 0\.\d\d s passed before the next "
        r"connection, not about delay=0\.01 s",
        verdict.message,
    ), verdict.message
    assert verdict.hint == resilience.RESET_HINT


def test_keep_asking_with_time_sleep_gets_the_blocking_hint() -> None:
    verdict = run(reconnecting(no_jitter, blocking=True))
    assert re.fullmatch(
        r"keep_asking: the event loop stood still for up to 0\.\d\d s at a time", verdict.message
    ), verdict.message
    assert verdict.hint == resilience.BLOCKING_HINT


async def keep_asking_with_the_sync_client(
    url: str, texts: list[str], delay: float, delay_max: float
) -> list[str]:
    """Wrong: lesson 02's deadlock. The check's server lived on a loop of its own, so this
    passed; through the check's relay on the caller's loop, no handshake gets an answer."""
    from websockets.sync.client import connect as sync_connect

    answers: list[str] = []
    attempt = 0
    while len(answers) < len(texts):
        try:
            with sync_connect(url, open_timeout=1) as ws:  # lesson 02's 1 s (default: 10)
                attempt = 0
                while len(answers) < len(texts):
                    ws.send(texts[len(answers)])
                    answers.append(str(ws.recv(timeout=2)))
        except (OSError, WebSocketException):
            await asyncio.sleep(rtlabs_rule(attempt, delay, delay_max))
            attempt += 1
    return answers


def test_keep_asking_with_a_blocking_client_gets_the_blocking_hint() -> None:
    verdict = run(keep_asking_with_the_sync_client, timeout=3.0)
    assert verdict.message == (
        "keep_asking: it blocked the event loop: a connection it opened got no answer"
    ), verdict.message
    assert verdict.hint == resilience.BLOCKING_HINT
