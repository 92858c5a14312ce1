"""The checks of lesson 02 pass right answers, fail wrong ones with a hint, and wait for work."""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close
from websockets.sync.client import connect as sync_connect

from rtlab.checks import native_api
from rtlab.checks.native_api import (
    ASK_HINT,
    ASK_NUDGE,
    CLOSE_EVENT_HINT,
    CLOSE_EVENT_NUDGE,
    check_ask,
    check_close_event,
)

# -- ask(url, text) --------------------------------------------------------------


def run_check_ask(ask, timeout: float = 3.0):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        return await check_ask(ask, timeout=timeout)

    verdict = asyncio.run(main())
    assert not [t for t in threading.enumerate() if t.name == "rtlab-server"]  # server stopped
    return verdict


async def ask_right(url: str, text: str) -> str:
    async with connect(url) as ws:
        await ws.send(text)
        return await ws.recv()


async def ask_explicit_close(url: str, text: str) -> str:
    ws = await connect(url)
    try:
        await ws.send(text)
        reply = await ws.recv()
    finally:
        await ws.close()
    return reply


async def ask_async_for(url: str, text: str) -> str:
    async with connect(url, compression=None) as ws:
        await ws.send(text)
        async for message in ws:
            return str(message)
    raise AssertionError("unreachable")


def ask_sync_in_a_thread(url: str, text: str):  # type: ignore[no-untyped-def]
    def blocking() -> str:
        with sync_connect(url) as ws:
            ws.send(text)
            return str(ws.recv(timeout=2))

    return asyncio.to_thread(blocking)


@pytest.mark.parametrize(
    "ask",
    [ask_right, ask_explicit_close, ask_async_for, ask_sync_in_a_thread],
    ids=lambda f: f.__name__,
)
def test_right_answers_written_differently_pass(ask) -> None:
    verdict = run_check_ask(ask)
    assert verdict.passed, verdict
    assert str(verdict) == "✅ ask: correct"


async def ask_never_closes(url: str, text: str) -> str:
    ws = await connect(url)
    await ws.send(text)
    return await ws.recv()


_shared: dict[str, Any] = {}


async def ask_one_connection_for_all(url: str, text: str) -> str:
    if "ws" not in _shared:
        _shared["ws"] = await connect(url)
    await _shared["ws"].send(text)
    return await _shared["ws"].recv()


async def ask_strips_prefix(url: str, text: str) -> str:
    async with connect(url) as ws:
        await ws.send(text)
        reply = await ws.recv()
        return reply.removeprefix("Echo: ")


async def ask_without_recv(url: str, text: str) -> str:
    async with connect(url) as ws:
        await ws.send(text)
    return f"Echo: {text}"


async def ask_returns_text_sent(url: str, text: str) -> str:
    async with connect(url) as ws:
        await ws.send(text)
        await ws.recv()
        return text


async def ask_waits_twice(url: str, text: str) -> str:
    async with connect(url) as ws:
        await ws.send(text)
        await ws.recv()
        return await ws.recv()


async def ask_one_connection_to_send_another_to_receive(url: str, text: str) -> str:
    async with connect(url) as sender, connect(url) as receiver:
        await sender.send(text)
        return await receiver.recv()


async def ask_ignores_cancelling(url: str, text: str) -> str:
    while True:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            continue


async def ask_forgets_await(url: str, text: str):  # type: ignore[no-untyped-def]
    async with connect(url) as ws:
        await ws.send(text)
        return ws.recv()


async def ask_wrong_path(url: str, text: str) -> str:
    async with connect(url.rsplit("/", 1)[0] + "/nope") as ws:
        await ws.send(text)
        return await ws.recv()


def ask_not_async(url: str, text: str) -> str:
    return f"Echo: {text}"


def ask_blocks(url: str, text: str) -> str:
    time.sleep(5)
    return f"Echo: {text}"


async def ask_gives_up(url: str, text: str) -> str:
    raise asyncio.CancelledError


# (a wrong answer, the verdict's message; every one is shown with the recipe)
ASK_WRONG = [
    (ask_never_closes, "ask: ask('…/echo', 'hello') left 1 connection open after returning"),
    (
        ask_one_connection_for_all,
        "ask: ask('…/echo', 'hello') left 1 connection open after returning",
    ),
    (
        ask_strips_prefix,
        "ask: ask('…/echo', 'hello') returned 'hello', expected the server's reply 'Echo: …'",
    ),
    (
        ask_returns_text_sent,
        "ask: ask('…/echo', 'hello') returned 'hello', expected the server's reply 'Echo: …'",
    ),
    (
        ask_without_recv,
        'ask: ask(\'…/ws?user=checker\', \'{"event":"connect","ns":\'…) returned '
        '\'Echo: {"event":"connect","ns":"/chat","i\'…, expected the server\'s reply '
        '\'{"ack":1,"data":{"ns":"/chat"}}\': return what `recv()` gave, not a reply '
        "made up in `ask`",
    ),
    (
        ask_waits_twice,
        "ask: ask('…/echo', 'hello') did not return within 0.5 s (waiting for a second reply?)",
    ),
    (
        ask_one_connection_to_send_another_to_receive,
        "ask: ask('…/echo', 'hello') did not return within 0.5 s (waiting for a second reply?)",
    ),
    (
        ask_ignores_cancelling,
        "ask: ask('…/echo', 'hello') did not return within 0.5 s (waiting for a second reply?)",
    ),
    (
        ask_forgets_await,
        "ask: ask('…/echo', 'hello') returned a coroutine: put `await` before `ws.recv()`",
    ),
    (
        ask_wrong_path,
        "ask: ask('…/echo', 'hello') raised InvalidStatus: server rejected WebSocket "
        "connection: HTTP 404",
    ),
    (
        ask_not_async,
        "ask: ask('…/echo', 'hello') returned 'Echo: hello' at once: define it with `async def`",
    ),
    (
        ask_blocks,
        "ask: ask('…/echo', 'hello') did not return within 0.5 s: define it with `async def`",
    ),
    (ask_gives_up, "ask: ask('…/echo', 'hello') raised CancelledError"),
    ("ask", "ask: expected a function, got str"),
]


@pytest.mark.parametrize(("ask", "message"), ASK_WRONG, ids=[str(i) for i in range(len(ASK_WRONG))])
def test_wrong_answers_fail_with_the_recipe(ask, message) -> None:
    _shared.clear()
    verdict = run_check_ask(ask, timeout=0.5)
    assert not verdict.passed
    assert verdict.message == message
    assert verdict.hint == ASK_HINT
    _shared.clear()


def test_ask_not_done_yet_gets_the_nudge() -> None:
    async def ask_not_done(url: str, text: str) -> str:
        raise NotImplementedError  # your code here

    verdict = run_check_ask(ask_not_done)
    assert (
        str(verdict)
        == f"❌ ask: not done yet\n   Hint: {ASK_NUDGE} (rtlab.hint() shows the recipe)"
    )


def test_ask_check_without_await_says_so() -> None:
    pending = check_ask(ask_right)
    assert repr(pending) == (
        "❌ ask: not checked yet\n"
        "   Hint: the check must be awaited: put `await` in front of it, "
        "`await native_api.check_ask(ask)`"
    )
    assert not [t for t in threading.enumerate() if t.name == "rtlab-server"]  # nothing started


# -- close_event(closed) ----------------------------------------------------------


def close_event_right(closed: ConnectionClosed) -> dict:
    if closed.rcvd is None:
        return {"code": 1006, "reason": "", "wasClean": False}
    return {
        "code": closed.rcvd.code,
        "reason": closed.rcvd.reason,
        "wasClean": closed.sent is not None,
    }


def close_event_getattr(closed: ConnectionClosed) -> dict:
    return {
        "code": getattr(closed.rcvd, "code", 1006),
        "reason": getattr(closed.rcvd, "reason", ""),
        "wasClean": closed.rcvd_then_sent is not None,
    }


def close_event_deprecated_attributes(closed: ConnectionClosed) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        code, reason = closed.code, closed.reason
    return dict(code=code, reason=reason, wasClean=bool(closed.rcvd and closed.sent))


@pytest.mark.parametrize(
    "close_event", [close_event_right, close_event_getattr, close_event_deprecated_attributes]
)
def test_right_close_events_written_differently_pass(close_event) -> None:
    verdict = check_close_event(close_event)
    assert verdict.passed, verdict
    assert str(verdict) == "✅ close_event: correct"


def _with(**changes: Any):  # type: ignore[no-untyped-def]
    def close_event(closed: ConnectionClosed) -> dict:
        event = close_event_right(closed)
        for key, change in changes.items():
            event[key] = change(closed, event)
        return event

    return close_event


def close_event_no_default(closed: ConnectionClosed) -> dict:
    return {"code": closed.rcvd.code, "reason": closed.rcvd.reason, "wasClean": True}  # type: ignore[union-attr]


OK_1000 = "ConnectionClosedOK(received 1000 (OK) done; then sent 1000 (OK) done)"
ERROR_1009 = (
    "ConnectionClosedError(received 1009 (message too big) message too big; "
    "then sent 1009 (message too big) message too big)"
)
RCVD_ONLY = "ConnectionClosedError(received 1001 (going away) server stopping; no close frame sent)"

CLOSE_WRONG = [
    pytest.param(
        _with(wasClean=lambda closed, _: isinstance(closed, ConnectionClosedOK)),
        f"for {ERROR_1009} it wasClean is False, expected True: close frames went both ways, "
        "whatever the code",
        id="wasClean means OK",
    ),
    pytest.param(
        _with(wasClean=lambda closed, _: closed.rcvd is not None),
        f"for {RCVD_ONLY} it wasClean is True, expected False: not both ways, whatever the code",
        id="wasClean means a frame came",
    ),
    pytest.param(
        _with(wasClean=lambda closed, event: event["code"] in (1000, 1001)),
        "for ConnectionClosedOK(received 1005 (no status received [internal]); then sent 1005 "
        "(no status received [internal])) it wasClean is False, expected True: close frames "
        "went both ways, whatever the code",
        id="wasClean from the code",
    ),
    pytest.param(
        _with(code=lambda closed, event: 1005 if closed.rcvd is None else event["code"]),
        "for ConnectionClosedError(no close frame received or sent) it code is 1005, expected "
        "1006: no close frame came in, which a browser reports as 1006",
        id="1005 for no frame",
    ),
    pytest.param(
        _with(code=lambda closed, event: 1006 if event["code"] == 1005 else event["code"]),
        "for ConnectionClosedOK(received 1005 (no status received [internal]); then sent 1005 "
        "(no status received [internal])) it code is 1006, expected 1005: a close frame "
        "without a code is reported as 1005, not 1006",
        id="1006 for no code",
    ),
    pytest.param(
        _with(code=lambda closed, event: closed.sent.code if closed.sent else 1006),
        "for ConnectionClosedError(sent 1000 (OK) done; no close frame received) it code is "
        "1000, expected 1006: no close frame came in, which a browser reports as 1006",
        id="code of the frame sent",
    ),
    pytest.param(
        _with(reason=lambda closed, event: ""),
        f"for {OK_1000} it reason is '', expected 'done': the reason of the close frame "
        "received, or '' when none came",
        id="reason lost",
    ),
    pytest.param(
        _with(reason=lambda closed, event: str(closed)),
        f"for {OK_1000} it reason is 'received 1000 (OK) done; then sent 1000 (OK) done', "
        "expected 'done': the reason of the close frame received, or '' when none came",
        id="reason is the message",
    ),
    pytest.param(
        lambda closed: (1000, "done", True),
        f"for {OK_1000} it returned (1000, 'done', True): return a dict with 'code', "
        "'reason' and 'wasClean'",
        id="a tuple",
    ),
    pytest.param(
        lambda closed: {**close_event_right(closed), "was_clean": True},
        f"for {OK_1000} it returned keys ['code', 'reason', 'wasClean', 'was_clean'], "
        "expected ['code', 'reason', 'wasClean']",
        id="an extra key",
    ),
    pytest.param(
        lambda closed: {"code": 1000, "reason": "done", "wasclean": True},
        f"for {OK_1000} it returned keys ['code', 'reason', 'wasclean'], "
        "expected ['code', 'reason', 'wasClean']",
        id="a key misspelled",
    ),
    pytest.param(
        close_event_no_default,
        "for ConnectionClosedError(no close frame received or sent) it raised AttributeError: "
        "'NoneType' object has no attribute 'code'",
        id="no default: AttributeError",
    ),
    pytest.param(
        lambda closed: None,
        f"for {OK_1000} it returned None: return a dict with 'code', 'reason' and 'wasClean'",
        id="no return",
    ),
]


@pytest.mark.parametrize(("close_event", "message"), CLOSE_WRONG)
def test_wrong_close_events_fail_with_the_recipe(close_event, message) -> None:
    verdict = check_close_event(close_event)
    assert not verdict.passed
    assert verdict.message == f"close_event: {message}"
    assert verdict.hint == CLOSE_EVENT_HINT


def test_close_event_not_done_yet_gets_the_nudge() -> None:
    def close_event(closed: ConnectionClosed) -> dict:
        raise NotImplementedError  # your code here

    verdict = check_close_event(close_event)
    assert str(verdict) == (
        f"❌ close_event: not done yet\n   Hint: {CLOSE_EVENT_NUDGE}"
        " (rtlab.hint() shows the recipe)"
    )


def test_real_closes_are_graded_and_shown_when_right() -> None:
    closes = {
        "server left": ConnectionClosedOK(Close(1001, "bye"), Close(1001, "bye"), True),
        "dropped": ConnectionClosedError(None, None, None),
    }
    verdict = check_close_event(close_event_right, closes)
    assert str(verdict) == (
        "✅ close_event: correct; what a browser reports:\n"
        "   server left  {'code': 1001, 'reason': 'bye', 'wasClean': True}\n"
        "   dropped      {'code': 1006, 'reason': '', 'wasClean': False}"
    )


def test_a_real_close_can_catch_what_the_made_up_ones_do_not() -> None:
    def close_event(closed: ConnectionClosed) -> dict:
        if closed.rcvd is not None and closed.rcvd.reason == "frame exceeds limit":
            return {"code": 1009, "reason": "too big", "wasClean": True}
        return close_event_right(closed)

    real = Close(1009, "frame exceeds limit")
    verdict = check_close_event(close_event, {"too big": ConnectionClosedError(real, real, True)})
    assert not verdict.passed
    assert verdict.message.startswith("close_event: for the 'too big' close (received 1009")
    assert "it reason is 'too big', expected 'frame exceeds limit'" in verdict.message


def test_close_event_not_callable() -> None:
    verdict = check_close_event({"code": 1000})  # type: ignore[arg-type]
    assert verdict.message == "close_event: expected a function, got dict"
    assert verdict.hint == native_api.CLOSE_EVENT_HINT


def test_a_close_event_that_never_returns_is_a_cross_not_a_hung_cell() -> None:
    def stuck(closed: ConnectionClosed) -> dict:
        time.sleep(3)  # as good as endless: longer than the check waits
        return close_event_right(closed)

    started = time.monotonic()
    verdict = check_close_event(stuck)
    assert time.monotonic() - started < 2.9
    assert (
        verdict.message
        == f"close_event: for {OK_1000} it did not return within 2 s: does a loop never end?"
    )
    assert verdict.hint == CLOSE_EVENT_HINT
