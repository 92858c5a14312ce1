"""The checks of lesson 02 pass right answers, fail wrong ones with a hint, and wait for work."""

from __future__ import annotations

import asyncio
import threading

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from rtlab.checks import native_api
from rtlab.checks.native_api import check_ask, check_close_event

# -- ask(url, text) --------------------------------------------------------------


async def ask_right(url: str, text: str) -> str:
    async with connect(url) as ws:
        await ws.send(text)
        return await ws.recv()


async def ask_never_closes(url: str, text: str) -> str:
    ws = await connect(url)
    await ws.send(text)
    return await ws.recv()


async def ask_strips_prefix(url: str, text: str) -> str:
    async with connect(url) as ws:
        await ws.send(text)
        reply = await ws.recv()
        return reply.removeprefix("Echo: ")


async def ask_waits_twice(url: str, text: str) -> str:
    async with connect(url) as ws:
        await ws.send(text)
        await ws.recv()
        return await ws.recv()


async def ask_not_done(url: str, text: str) -> str:
    raise NotImplementedError  # your code here


def ask_not_async(url: str, text: str) -> str:
    return f"Echo: {text}"


def run_check_ask(ask, timeout: float = 3.0):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        return await check_ask(ask, timeout=timeout)

    return asyncio.run(main())


def test_ask_right_answer_passes() -> None:
    verdict = run_check_ask(ask_right)
    assert verdict.passed, verdict
    assert str(verdict) == "✅ ask: correct"


def test_ask_left_open_fails_with_hint() -> None:
    verdict = run_check_ask(ask_never_closes)
    assert not [t for t in threading.enumerate() if t.name == "rtlab-server"]  # server stopped
    assert not verdict.passed
    assert "ask(url, 'hello') left 1 connection open after returning" in verdict.message
    assert verdict.hint == native_api.ASK_HINT
    assert "Hint: use `async with connect(url) as ws:`" in str(verdict)


def test_ask_wrong_text_fails() -> None:
    verdict = run_check_ask(ask_strips_prefix)
    assert not verdict.passed
    assert verdict.message == (
        "ask: ask(url, 'hello') returned 'hello', expected the server's reply 'Echo: …'"
    )
    assert verdict.hint == native_api.ASK_HINT


def test_ask_that_hangs_times_out() -> None:
    verdict = run_check_ask(ask_waits_twice, timeout=0.3)
    assert not verdict.passed
    assert "did not return within 0.3 s" in verdict.message


def test_ask_not_done_yet() -> None:
    verdict = run_check_ask(ask_not_done)
    assert not verdict.passed
    assert verdict.message == "ask: not done yet"
    assert verdict.hint == native_api.ASK_HINT


def test_ask_must_be_async() -> None:
    verdict = run_check_ask(ask_not_async)
    assert not verdict.passed
    assert "returned 'Echo: hello' at once: define it with `async def`" in verdict.message


def test_ask_check_without_await_says_so() -> None:
    pending = check_ask(ask_right)
    assert repr(pending) == (
        "❌ ask: not checked yet\n"
        "   Hint: the check must be awaited: put `await` in front of it, "
        "`await native_api.check_ask(ask)`"
    )
    assert not [t for t in threading.enumerate() if t.name == "rtlab-server"]  # nothing started


def test_ask_connection_error_is_reported() -> None:
    async def ask_wrong_path(url: str, text: str) -> str:
        async with connect(url.removesuffix("/echo") + "/nope") as ws:
            await ws.send(text)
            return await ws.recv()

    verdict = run_check_ask(ask_wrong_path)
    assert not verdict.passed
    assert verdict.message == (
        "ask: raised InvalidStatus: server rejected WebSocket connection: HTTP 404"
    )


# -- close_event(closed) ----------------------------------------------------------


def close_event_right(closed: ConnectionClosed) -> dict:
    if closed.rcvd is None:
        return {"code": 1006, "reason": "", "wasClean": False}
    return {
        "code": closed.rcvd.code,
        "reason": closed.rcvd.reason,
        "wasClean": closed.sent is not None,
    }


def close_event_clean_means_ok(closed: ConnectionClosed) -> dict:
    event = close_event_right(closed)
    event["wasClean"] = type(closed).__name__ == "ConnectionClosedOK"
    return event


def close_event_no_default(closed: ConnectionClosed) -> dict:
    return {"code": closed.rcvd.code, "reason": closed.rcvd.reason, "wasClean": True}  # type: ignore[union-attr]


def test_close_event_right_answer_passes() -> None:
    verdict = check_close_event(close_event_right)
    assert verdict.passed, verdict
    assert str(verdict) == "✅ close_event: correct"


def test_close_event_clean_is_not_ok() -> None:
    verdict = check_close_event(close_event_clean_means_ok)
    assert not verdict.passed
    assert verdict.message.startswith("close_event: for ConnectionClosedError(received 1009")
    assert "'wasClean': False}, expected {'code': 1009" in verdict.message
    assert verdict.hint == native_api.CLOSE_EVENT_HINT


def test_close_event_missing_frame_crashes() -> None:
    verdict = check_close_event(close_event_no_default)
    assert not verdict.passed
    assert verdict.message == (
        "close_event: raised AttributeError: 'NoneType' object has no attribute 'code'"
    )
    assert "Hint: code and reason come from the close frame received" in str(verdict)


def test_close_event_not_done_yet() -> None:
    def close_event(closed: ConnectionClosed) -> dict:
        raise NotImplementedError  # your code here

    verdict = check_close_event(close_event)
    assert not verdict.passed
    assert verdict.message == "close_event: not done yet"
    assert verdict.hint == native_api.CLOSE_EVENT_HINT
