"""Checks for lesson 02, the native API.

``check_ask`` is awaited: in a notebook cell the kernel's loop is already
running, and the learner's ``ask`` is a coroutine, so the cell awaits the check
(``await check_ask(ask)``). It starts a lab server of its own and stops it from a
worker thread, so that the learner's connections, which live on the cell's loop,
can answer the server's closing handshake.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close

from rtlab.checks import Verdict, grade
from rtlab.notebook.background import start_server
from rtlab.notebook.wait import until

ASK_TEXTS = ("hello", "héllo wörld 👋", "", "two\nlines", "x" * 5000)

ASK_HINT = (
    "use `async with connect(url) as ws:` and send and receive inside the block; "
    "leaving the block closes the connection cleanly (code 1000), and a `return` "
    "inside it leaves the block too."
)

CLOSE_EVENT_HINT = (
    "code and reason come from the close frame received, `closed.rcvd` "
    "(no frame received: code 1006 and reason ''); wasClean is true when close "
    "frames went both ways, `closed.rcvd` and `closed.sent` both set, "
    "whatever the code."
)


def _raise(error: BaseException) -> Callable[[], str | None]:
    def attempt() -> str | None:
        raise error

    return attempt


async def _ask_problem(ask: Callable[[str, str], Any], timeout: float) -> str | None:
    server = start_server()
    try:
        for text in ASK_TEXTS:
            call = f"ask(url, {text[:20] + '…' if len(text) > 20 else text!r})"
            result = ask(server.echo_url, text)
            if not inspect.isawaitable(result):
                return f"{call} returned {result!r} at once: define it with `async def`"
            try:
                reply = await asyncio.wait_for(result, timeout)
            except TimeoutError:
                return f"{call} did not return within {timeout:g} s (waiting for a second reply?)"
            expected = f"Echo: {text}"
            if reply != expected:
                shown = reply if not isinstance(reply, str) or len(reply) < 40 else reply[:40] + "…"
                return f"{call} returned {shown!r}, expected the server's reply 'Echo: …'"
            try:
                await until(lambda: not server.clients, timeout=1.0)
            except TimeoutError:
                n = len(server.clients)
                return f"{call} left {n} connection{'s' if n != 1 else ''} open after returning"
        return None
    finally:
        # From a thread: the server's closing handshake needs this loop to answer it.
        await asyncio.to_thread(server.stop)


class Pending:
    """A check that runs when awaited: ``await check_ask(ask)`` gives its Verdict.

    Shown without ``await`` (the last line of a cell), it says what is missing
    instead of showing a coroutine object.
    """

    def __init__(self, name: str, run: Callable[[], Coroutine[Any, Any, Verdict]]) -> None:
        self._name = name
        self._run = run

    def __await__(self) -> Generator[Any, None, Verdict]:
        return self._run().__await__()

    def __repr__(self) -> str:
        return str(
            Verdict(
                False,
                f"{self._name}: not checked yet",
                f"the check must be awaited: put `await` in front of it, "
                f"`await native_api.check_{self._name}({self._name})`",
            )
        )


async def _check_ask(ask: Callable[[str, str], Any], timeout: float) -> Verdict:
    try:
        problem = await _ask_problem(ask, timeout)
    except Exception as error:
        return grade("ask", _raise(error), ASK_HINT)
    return grade("ask", lambda: problem, ASK_HINT)


def check_ask(ask: Callable[[str, str], Any], timeout: float = 3.0) -> Pending:
    """Grade ``async def ask(url, text) -> str`` against a lab server's ``/echo``.

    Each text (ASCII, unicode, empty, two lines, 5000 characters) must come back
    as ``Echo: text``, and the connection must be closed once ``ask`` returns.
    Await it: ``await check_ask(ask)`` gives a :class:`~rtlab.checks.Verdict`.
    """
    return Pending("ask", lambda: _check_ask(ask, timeout))


def _close_cases() -> list[tuple[ConnectionClosed, dict[str, Any]]]:
    def closed(kind: type[ConnectionClosed], rcvd: Close | None, sent: Close | None):
        order = None if rcvd is None or sent is None else True
        return kind(rcvd, sent, order)

    done, away = Close(1000, "done"), Close(1001, "server stopping")
    too_big, empty = Close(1009, "message too big"), Close(1005, "")

    def event(code: int, reason: str, clean: bool) -> dict[str, Any]:
        return {"code": code, "reason": reason, "wasClean": clean}

    return [
        (closed(ConnectionClosedOK, done, done), event(1000, "done", True)),
        (closed(ConnectionClosedOK, away, away), event(1001, "server stopping", True)),
        (closed(ConnectionClosedOK, empty, empty), event(1005, "", True)),
        (closed(ConnectionClosedError, too_big, too_big), event(1009, "message too big", True)),
        (closed(ConnectionClosedError, None, None), event(1006, "", False)),
        (closed(ConnectionClosedError, None, done), event(1006, "", False)),
    ]


def _close_event_problem(close_event: Callable[[ConnectionClosed], Any]) -> str | None:
    for closed, expected in _close_cases():
        got = close_event(closed)
        if got != expected:
            return (
                f"for {type(closed).__name__}({closed}) it returned {got!r}, expected {expected!r}"
            )
    return None


def check_close_event(close_event: Callable[[ConnectionClosed], Any]) -> Verdict:
    """Grade ``close_event(closed) -> {"code", "reason", "wasClean"}``, the browser's
    ``CloseEvent`` made from a ``ConnectionClosed`` exception."""
    return grade("close_event", lambda: _close_event_problem(close_event), CLOSE_EVENT_HINT)
