"""Checks for lesson 02, the native API.

``check_ask`` is awaited: in a notebook cell the kernel's loop is already
running, and the learner's ``ask`` is a coroutine, so the cell awaits the check
(``await check_ask(ask)``). It starts a lab server of its own and stops it from a
worker thread, so that the learner's connections, which live on the cell's loop,
can answer the server's closing handshake. Those connections reach the server through
a relay on the cell's loop, as they would reach a server living there (section 2): a
blocking client in an ``async def`` stops that loop and hears nothing back. Every wait
is bounded: a coroutine that never returns, or even ignores its cancellation, is given
up on. While the learner's coroutine runs, the check listens for Python's warning that a
``close`` coroutine was never awaited (``ws.close()`` without ``await``), so that a
connection left open for that reason gets a hint naming it.

(Lesson 02's other exercise is in JavaScript, checked in browser.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import warnings
from collections.abc import Callable, Coroutine, Generator, Iterator
from typing import Any

from rtlab.checks import Problem, Verdict, describe, grade
from rtlab.checks.bounded import STILL_RUNNING, call_within
from rtlab.checks.relay import Relay
from rtlab.notebook.background import RunningServer, start_server
from rtlab.notebook.wait import until

# (endpoint, text, the server's reply): /echo's replies are easy to guess, /ws's is not.
ASK_CASES: tuple[tuple[str, str, str], ...] = (
    *(("/echo", text, f"Echo: {text}") for text in ("hello", "héllo wörld 👋", "", "two\nlines")),
    ("/echo", "x" * 5000, "Echo: " + "x" * 5000),
    (
        "/ws?user=checker",
        '{"event":"connect","ns":"/chat","id":1}',
        '{"ack":1,"data":{"ns":"/chat"}}',
    ),
)
GRACE = 1.0  # seconds a cancelled coroutine, or the server, gets to finish
CLOSING = 3.0  # seconds until the server logs how a connection closed (its close_timeout: 2)

ASK_NUDGE = (
    "open a connection with `async with connect(url) as ws:`, then send and receive "
    "inside the block"
)

ASK_HINT = (
    "use `async with connect(url) as ws:` and send and receive inside the block: "
    "`await ws.send(text)`, then `return await ws.recv()`, the reply the server sent. "
    "Leaving the block closes the connection cleanly (code 1000), and a `return` "
    "inside it leaves the block too."
)

NOT_CLEAN = (
    "close with the closing handshake and code 1000: leave the `async with connect(url) as "
    "ws:` block (or `await ws.close()`). Dropping the connection (1006) or closing with an "
    "error code (1011) tells the server something went wrong"
)
BLOCKED = (
    "a blocking call in an `async def` (a websockets.sync client, time.sleep) stops the "
    "event loop it runs on, so nothing else there can run: here the check's relay to the "
    "server, in section 2 a server on the kernel's loop, which never answers. Use "
    "`async with connect(url) as ws:` and `await`, or run blocking code with "
    "`await asyncio.to_thread(...)`"
)
NOT_AWAITED = (
    "`ws.close()` without `await` only makes a coroutine, and a coroutine nobody awaits never "
    "runs: nothing was closed (Python warns: coroutine 'Connection.close' was never awaited). "
    "Write `await ws.close()`, or use `async with connect(url) as ws:`, which closes the "
    "connection when the block ends"
)
CLEAN = ("1000 ", "1001 ")  # normal closure, going away: nothing went wrong
_CLOSED = re.compile(r"closed #\d+ [^:]*: (.*)$")
_UNAWAITED_CLOSE = re.compile(r"coroutine '[\w.<>]*\bclose' was never awaited")


@contextlib.contextmanager
def _unawaited_closes() -> Iterator[list[warnings.WarningMessage]]:
    """The warnings "coroutine '...close' was never awaited" given meanwhile, each time one
    is (the registry of warnings already shown would hide a second run's), kept from showing
    (the caller shows them with :func:`_show`, unless its verdict names them); other
    warnings show as usual."""
    caught: list[warnings.WarningMessage] = []
    with warnings.catch_warnings():  # puts back the filters and showwarning on leaving
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
            if issubclass(category, RuntimeWarning) and _UNAWAITED_CLOSE.search(str(message)):
                caught.append(warnings.WarningMessage(message, category, filename, lineno))
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        warnings.filterwarnings("always", message=_UNAWAITED_CLOSE.pattern, category=RuntimeWarning)
        yield caught


def _show(caught: list[warnings.WarningMessage]) -> None:
    """Show warnings kept by :func:`_unawaited_closes` as Python would have."""
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _closed(log: list[str]) -> str | None:
    """How the connection of a log's ``closed`` line ended, ``1000 (OK)``; None before it."""
    return next((m[1] for line in log if (m := _CLOSED.search(line))), None)


def _shown(value: object, limit: int = 40) -> str:
    """``repr(value)``, a long string cut to ``limit`` characters (its quotes kept)."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + "…"
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


async def _settle(task: asyncio.Task[Any], timeout: float) -> bool:
    """Wait up to ``timeout`` for ``task``; cancel it if it is not done. True if it finished
    on its own."""
    await asyncio.wait({task}, timeout=timeout)
    if task.done():
        return True
    task.cancel()
    await asyncio.wait({task}, timeout=GRACE)  # a task that ignores cancelling is left
    return False


async def _one_ask(
    ask: Callable[[str, str], Any],
    url: str,
    text: str,
    expected: str,
    timeout: float,
    relay: Relay,
    unawaited: list[warnings.WarningMessage],
) -> Problem | None:
    """One call of ``ask``, judged until it returned; the warnings of a ``close`` never
    awaited meanwhile go to ``unawaited``."""
    call = f"ask('…{url[url.rindex('/') :]}', {_shown(text, 24)})"
    if inspect.iscoroutinefunction(ask):
        result = ask(url, text)
    else:
        result = await asyncio.to_thread(call_within, lambda: ask(url, text), timeout)
        if result is STILL_RUNNING:
            return f"{call} did not return within {timeout:g} s: define it with `async def`"
    if not inspect.isawaitable(result):
        return f"{call} returned {_shown(result)} at once: define it with `async def`"
    task = asyncio.ensure_future(result)
    relay.asking, accepted, late = task, relay.accepted, relay.late
    with _unawaited_closes() as caught:
        settled = await _settle(task, timeout)
    unawaited.extend(caught)
    if not settled:
        return f"{call} did not return within {timeout:g} s (waiting for a second reply?)"
    if task.cancelled():
        return f"{call} raised CancelledError"
    if isinstance(error := task.exception(), NotImplementedError):
        raise error
    if error is not None:  # a connection it made while it held the loop is accepted now
        with contextlib.suppress(TimeoutError):
            await until(lambda: relay.accepted > accepted, timeout=GRACE)
    if relay.late > late:
        said = f" ({describe(error)})" if error is not None else ""
        return f"{call} blocked the event loop, so its connection got no answer{said}", BLOCKED
    if error is not None:
        return f"{call} raised {describe(error)}"
    reply = task.result()
    if inspect.iscoroutine(reply):
        reply.close()  # never awaited: close it, so that Python does not warn
        return f"{call} returned a coroutine: put `await` before `ws.recv()`"
    if reply != expected:
        if url.endswith("/echo"):
            return f"{call} returned {_shown(reply)}, expected the server's reply 'Echo: …'"
        return (
            f"{call} returned {_shown(reply)}, expected the server's reply "
            f"{expected!r}: return what `recv()` gave, not a reply made up in `ask`"
        )
    return None


async def _ask_problem(ask: Callable[[str, str], Any], timeout: float) -> Problem | None:
    if not callable(ask):
        return f"expected a function, got {type(ask).__name__}"
    server: RunningServer = await asyncio.to_thread(start_server)
    relay = Relay(server.host, server.port)
    try:
        relay_url = await relay.start()
        for path, text, expected in ASK_CASES:
            url = f"{relay_url}{path}"
            before = len(server.log)
            unawaited: list[warnings.WarningMessage] = []
            if problem := await _one_ask(ask, url, text, expected, timeout, relay, unawaited):
                _show(unawaited)
                return problem
            call = f"ask('…{path}', {_shown(text, 24)})"
            try:
                await until(lambda: not server.clients, timeout=GRACE)
            except TimeoutError:
                n = len(server.clients)
                left = f"{call} left {n} connection{'s' if n != 1 else ''} open after returning"
                if unawaited:  # named in the verdict: not shown as a warning too
                    return f"{left}: `ws.close()` without `await` never ran", NOT_AWAITED
                return left
            with contextlib.suppress(TimeoutError):  # logged once websockets has closed it
                await until(lambda start=before: _closed(server.log[start:]), timeout=CLOSING)
            closed = _closed(server.log[before:]) or "no closing handshake"
            _show(unawaited)  # the connection closed anyway (an `async with` block, say)
            if not closed.startswith(CLEAN):
                return f"{call} ended its connection with {closed}, not a clean close", NOT_CLEAN
        return None
    finally:
        # From a thread: the server's closing handshake needs this loop to answer it.
        await asyncio.wait({asyncio.ensure_future(asyncio.to_thread(server.stop))}, timeout=5)
        relay.stop()


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


def _raise(error: BaseException) -> Callable[[], Problem | None]:
    def attempt() -> Problem | None:
        raise error

    return attempt


async def _check_ask(ask: Callable[[str, str], Any], timeout: float) -> Verdict:
    try:
        problem = await _ask_problem(ask, timeout)
    except (Exception, SystemExit) as error:  # grade names it (NotImplementedError: nudge)
        return grade("ask", _raise(error), ASK_HINT, ASK_NUDGE)
    return grade("ask", lambda: problem, ASK_HINT, ASK_NUDGE)


def check_ask(ask: Callable[[str, str], Any], timeout: float = 3.0) -> Pending:
    """Grade ``async def ask(url, text) -> str`` against a lab server.

    Each text (ASCII, unicode, empty, two lines, 5000 characters) sent to ``/echo``
    must come back as ``Echo: text``, an event sent to ``/ws`` as the server's own
    answer, and the connection must be closed once ``ask`` returns. Await it:
    ``await check_ask(ask)`` gives a :class:`~rtlab.checks.Verdict`.
    """
    return Pending("ask", lambda: _check_ask(ask, timeout))
