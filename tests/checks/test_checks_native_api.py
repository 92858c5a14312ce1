"""The checks of lesson 02 pass right answers, fail wrong ones with a hint, and wait for work."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.sync.client import connect as sync_connect

from rtlab.checks.native_api import ASK_HINT, ASK_NUDGE, BLOCKED, NOT_CLEAN, check_ask

# -- ask(url, text) --------------------------------------------------------------


def run_check_ask(ask, timeout: float = 3.0):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        return await check_ask(ask, timeout=timeout)

    # Not asyncio.run: it would wait at the end for a task the learner's code keeps alive
    # (one that ignores cancelling), where a kernel's loop just goes on.
    loop = asyncio.new_event_loop()
    try:
        verdict = loop.run_until_complete(main())
    finally:
        loop.close()
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


async def ask_drops_the_connection(url: str, text: str) -> str:
    ws = await connect(url)
    await ws.send(text)
    reply = await ws.recv()
    ws.transport.abort()  # no closing handshake: the server sees 1006
    return reply


async def ask_closes_with_an_error(url: str, text: str) -> str:
    ws = await connect(url)
    await ws.send(text)
    reply = await ws.recv()
    await ws.close(1011, "oops")
    return reply


async def ask_with_the_sync_client(url: str, text: str) -> str:
    """Wrong: section 2's deadlock. The check's server lived on a loop of its own, so this
    passed; through the check's relay on the cell's loop, nothing answers its handshake."""
    with sync_connect(url, open_timeout=1) as ws:  # 1 s, as in section 2 (the default: 10)
        ws.send(text)
        return str(ws.recv(timeout=2))


def test_a_blocking_client_in_an_async_def_is_told_it_blocked_the_loop() -> None:
    verdict = run_check_ask(ask_with_the_sync_client)
    assert not verdict.passed
    assert verdict.message == (
        "ask: ask('…/echo', 'hello') blocked the event loop, so its connection got no answer "
        "(TimeoutError: timed out while waiting for handshake response)"
    )
    assert verdict.hint == BLOCKED


@pytest.mark.parametrize(
    ("ask", "closed"),
    [(ask_drops_the_connection, "1006 (abnormal closure)"), (ask_closes_with_an_error, "1011")],
)
def test_a_connection_that_does_not_close_cleanly_fails_with_its_hint(ask, closed) -> None:
    verdict = run_check_ask(ask)
    assert verdict.message.startswith(
        f"ask: ask('…/echo', 'hello') ended its connection with {closed}"
    ), verdict.message
    assert verdict.message.endswith(", not a clean close")
    assert verdict.hint == NOT_CLEAN


async def ask_close_not_awaited(url: str, text: str) -> str:
    ws = await connect(url)
    await ws.send(text)
    reply = await ws.recv()
    ws.close()  # a coroutine made and dropped: it never runs, nothing is closed
    return reply


async def ask_close_not_awaited_in_finally(url: str, text: str) -> str:
    ws = await connect(url)
    try:
        await ws.send(text)
        return await ws.recv()
    finally:
        ws.close()


@pytest.mark.parametrize("ask", [ask_close_not_awaited, ask_close_not_awaited_in_finally])
def test_a_close_without_await_is_named(ask, recwarn) -> None:
    """Python warns "coroutine 'Connection.close' was never awaited": the check hears it and
    names the mistake, every time it runs (the warning registry would show it once)."""
    for _ in range(2):
        verdict = run_check_ask(ask)
        assert not verdict.passed
        assert verdict.message == (
            "ask: ask('…/echo', 'hello') left 1 connection open after returning: "
            "`ws.close()` without `await` never ran"
        )
        assert "`await ws.close()`" in verdict.hint
    assert not [w for w in recwarn if "never awaited" in str(w.message)]  # the verdict says it


async def ask_right_with_a_stray_close(url: str, text: str) -> str:
    async with connect(url) as ws:
        await ws.send(text)
        reply = await ws.recv()
        ws.close()  # never runs, but the block closes the connection anyway
    return reply


def test_a_stray_close_without_await_passes_and_python_still_warns() -> None:
    """The connection closed cleanly (the block did it): a pass, with Python's own warning."""
    with pytest.warns(RuntimeWarning, match="coroutine 'Connection.close' was never awaited"):
        verdict = run_check_ask(ask_right_with_a_stray_close)
    assert verdict.passed, verdict
