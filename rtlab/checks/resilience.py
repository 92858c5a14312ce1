"""Checks for lesson 05, resilience: a client that reconnects, and messages seen once.

Exercise 1: ``async def keep_asking(url, texts, delay, delay_max)`` sends each text to
an echo server and returns the answers in order, through a fault proxy that the check
cuts twice. After the first cut the server refuses a few connection attempts (HTTP 503,
as while it restarts); the check times those attempts: they must be spaced by waits that
grow (exponential backoff), not a hot loop. Each text must be answered exactly once.

The same client in JavaScript (:func:`js_keep_asking`, a box that runs it in the
learner's browser tab) meets the same server, cuts and refusals, and is graded from what
the server saw: browser handshakes (an ``Origin``), each text answered once, waits that
grow (the same rule as above), and a close once every text has its answer.

Exercise 2: ``fresh(messages)`` keeps, from ``receive-message`` data in the order it
arrived, each message whose ``seq`` is newer than every one seen before in its
room: what a client does with a replay after reconnecting, so that nothing shows twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import itertools
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidHandshake, WebSocketException
from websockets.http11 import Request, Response

from rtlab.aio.proxy import Proxy
from rtlab.checks import Problem, Verdict, describe, grade
from rtlab.checks.bounded import STILL_RUNNING, call_within
from rtlab.checks.browser import NOT_DONE, browser_url, page_error
from rtlab.checks.relay import Relay
from rtlab.notebook.background import BackgroundLoop
from rtlab.notebook.jsbox import Attempt, JsBox

__all__ = ["check_fresh", "check_keep_asking", "js_keep_asking"]

# -- keep_asking(url, texts, delay, delay_max) --------------------------------------------

TEXTS = ("one", "two", "three", "four", "five")
CUTS = {"two": True, "four": False}  # cut the link when this text first arrives: outage?
DELAY, DELAY_MAX = 0.01, 0.4  # what the check passes to keep_asking
REFUSALS = 7  # attempts the server refuses after the first cut, timed
HOT_LOOP = 0.15  # the refused attempts spread over less than this many seconds: no waits
GROWTH = 0.2  # seconds the last two waits exceed twice the shortest early one (doubling: 0.3)
SLACK = 0.1  # seconds a wait may exceed delay_max (a connection attempt takes time too)
RESET = 0.18  # seconds from the second cut to the next handshake: more, attempt was not reset
STALL = 0.25  # seconds the caller's loop may not turn: longer, twice, something blocked it
JS_SLACK = 0.2  # the same in a browser tab, whose failed handshakes take longer under load

KEEP_ASKING_NUDGE = (
    "start with one `async with connect(url) as ws:` that sends each text and appends "
    "`await ws.recv()`; then put it in a loop that catches the error when the link drops"
)
KEEP_ASKING_HINT = (
    "loop until every text has its answer: connect, then send the first text not yet "
    "answered and wait for its answer, one at a time; on OSError or WebSocketException "
    "(a cut, a refused handshake) sleep min(delay * 2**attempt, delay_max), jittered, "
    "then attempt += 1 and connect again; after connecting, attempt = 0"
)
CATCH_HINT = (
    "a dropped link raises ConnectionClosedError, a refused handshake InvalidStatus (both "
    "WebSocketException), a refused connection OSError: catch them, wait, and connect again, "
    "for as long as it takes"
)
RESEND_HINT = (
    "keep the answers you have; after reconnecting, send the first text without an answer "
    "(the one in flight when the link dropped) and go on from there"
)
RESET_HINT = (
    "once connected, the link was good: set attempt = 0, so that the next drop starts "
    "again from delay, not from where the last outage left the waits"
)
BLOCKING_HINT = (
    "time.sleep or a websockets.sync client in an async def stops the whole event loop "
    "(the kernel's: every other task waits too, and a server there cannot answer); wait "
    "with `await asyncio.sleep(seconds)`, connect with `async with connect(url) as ws:`"
)
BACKOFF_HINT = (
    "after failed attempt n (from 0), sleep min(delay * 2**n, delay_max), jittered "
    "(for instance times random.uniform(0.5, 1.5), capped again), before trying again"
)


@dataclass
class _Seen:
    """What the check's echo server saw."""

    received: list[str] = field(default_factory=list)  # texts, in order of arrival
    answered: collections.Counter[str] = field(default_factory=collections.Counter)
    connections: int = 0  # handshakes accepted
    refusals: list[float] = field(default_factory=list)  # when each refused attempt came
    outage: bool = False  # refusing handshakes now
    origins: list[str | None] = field(default_factory=list)  # Origin of each accepted handshake
    accepted: list[float] = field(default_factory=list)  # when each accepted handshake came
    open_now: int = 0  # connections open at the moment
    most_open: int = 0  # ...and the most ever open at once
    cuts: dict[str, float] = field(default_factory=dict)  # when each cue cut the link
    closes: list[int | None] = field(default_factory=list)  # close code the client sent, each

    def summary(self) -> str:
        answered = [text for text in TEXTS if self.answered[text]]
        return (
            f"the server saw {self.connections} connection(s) and "
            f"{len(self.refusals)} refused attempt(s), and answered {answered}"
        )


class _Scene:
    """An echo server behind a fault proxy, on a loop of its own, cutting on cue.

    What it sees is kept per ``run`` (the query parameter a JavaScript box adds to the
    URL), so that a browser's later attempt starts from a clean record.
    """

    def __init__(self) -> None:
        self.runs: dict[str, _Seen] = {}
        self.background = BackgroundLoop(name="rtlab-check")
        self.server: Server | None = None
        self.proxy: Proxy | None = None

    async def _start(self) -> None:
        self.server = await serve(
            self._echo, "127.0.0.1", 0, process_request=self._admit, ping_interval=None
        )
        port = self.server.sockets[0].getsockname()[1]
        self.proxy = await Proxy("127.0.0.1", port).start()

    @property
    def seen(self) -> _Seen:
        """What was seen of a run without a ``run`` parameter (the Python exercise)."""
        return self.seen_of("")

    def seen_of(self, run: str) -> _Seen:
        return self.runs.setdefault(run, _Seen())

    def _seen_by(self, request: Request) -> _Seen:
        return self.seen_of(parse_qs(urlsplit(request.path).query).get("run", [""])[0])

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        seen = self._seen_by(request)
        if not seen.outage:
            seen.origins.append(request.headers.get("Origin"))
            seen.accepted.append(time.monotonic())
            return None
        seen.refusals.append(time.monotonic())
        if len(seen.refusals) >= REFUSALS:
            seen.outage = False  # the server is back for the next attempt
        return connection.respond(503, "restarting, try again later\n")

    async def _echo(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        seen = self._seen_by(connection.request)
        seen.connections += 1
        seen.open_now += 1
        seen.most_open = max(seen.most_open, seen.open_now)
        try:
            async for text in connection:
                if not isinstance(text, str):
                    continue
                seen.received.append(text)
                if text in CUTS and seen.received.count(text) == 1:
                    seen.outage = CUTS[text]
                    seen.cuts[text] = time.monotonic()
                    assert self.proxy is not None
                    self.proxy.cut()  # before answering: this text's answer never comes
                    return
                seen.answered[text] += 1
                await connection.send(f"Echo: {text}")
        except ConnectionClosed:
            pass
        finally:
            seen.open_now -= 1
            received = connection.protocol.close_rcvd
            seen.closes.append(received.code if received is not None else None)

    @property
    def url(self) -> str:
        assert self.proxy is not None
        return f"{self.proxy.url}/echo"

    async def _stop(self) -> None:
        if self.proxy is not None:
            await self.proxy.stop()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def on_loop(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` on the scene's loop; from a thread, so this loop stays free."""
        await asyncio.to_thread(self.background.run, coro)

    async def start(self) -> None:
        await self.on_loop(self._start())

    async def stop(self) -> None:
        try:
            await self.on_loop(self._stop())
        finally:
            await asyncio.to_thread(self.background.close)


@dataclass
class _Outcome:
    """How the learner's keep_asking ended, and what the server saw meanwhile."""

    seen: _Seen
    result: Any = None
    error: BaseException | None = None
    timed_out: bool = False
    not_async: bool = False
    blocked: bool = False  # a connection it made got no answer: it held the loop meanwhile
    stalls: list[float] = field(default_factory=list)  # the caller's loop stood still this long


async def _watch_loop(stalls: list[float], tick: float = 0.02) -> None:
    """Note every time this loop turned later than ``tick`` plus STALL: blocked."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(tick)
        if (late := time.monotonic() - before - tick) > STALL:
            stalls.append(late)


async def _run_keep_asking(keep_asking: Callable[..., Any], timeout: float) -> _Outcome:
    scene = _Scene()
    await scene.start()
    outcome = _Outcome(scene.seen)
    assert scene.proxy is not None
    relay = Relay(scene.proxy.host, scene.proxy.port)  # on this loop, as a kernel's server
    try:
        url = await relay.start() + "/echo"
        try:
            call = keep_asking(url, list(TEXTS), DELAY, DELAY_MAX)
        except BaseException as error:  # the learner's code: any error is a ❌
            outcome.error = error
            return outcome
        if not inspect.isawaitable(call):
            outcome.not_async, outcome.result = True, call
            return outcome
        task = relay.asking = asyncio.ensure_future(call)
        watch = asyncio.ensure_future(_watch_loop(outcome.stalls))
        done, _ = await asyncio.wait({task}, timeout=timeout)
        watch.cancel()
        outcome.blocked = relay.gave_up > 0
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)  # never wait on a task that ignores cancel
            outcome.timed_out = True
        elif task.cancelled():
            outcome.error = asyncio.CancelledError()
        elif task.exception() is not None:
            outcome.error = task.exception()
        else:
            outcome.result = task.result()
        return outcome
    finally:
        relay.stop()
        await scene.stop()


def _back(seen: _Seen) -> float | None:
    """Seconds from the last refused attempt to the next handshake the server took."""
    last = seen.refusals[-1] if seen.refusals else None
    return next((when - last for when in seen.accepted if last is not None and when > last), None)


def _waits_problem(
    refusals: list[float],
    hint: str = BACKOFF_HINT,
    slack: float = SLACK,
    back: float | None = None,
) -> Problem | None:
    """A problem with the waits between refused attempts, and the one after the last of
    them (``back``, until the server took a handshake again): none, too long, or not
    growing."""
    gaps = [later - earlier for earlier, later in itertools.pairwise(refusals)]
    shown = ", ".join(f"{gap:.2f}" for gap in gaps)
    span = refusals[-1] - refusals[0]
    if span < HOT_LOOP:
        return (
            f"the server refused {len(refusals)} attempts within {span:.3f} s: "
            "a hot loop, with no wait between attempts",
            hint,
        )
    # A no-cap answer's waits keep growing past delay_max; one late handshake on a busy
    # machine stretches a single wait somewhere in the middle. Every gap also holds what a
    # refused attempt itself costs here, which the shortest one shows: allow that too.
    longest = DELAY_MAX + slack + min(gaps)
    over = [gap for gap in gaps if gap > longest]
    if gaps[-1] > longest or len(over) > 1 or (back is not None and back > longest):
        then = f", then {back:.2f} s until the next connection" if back is not None else ""
        return (
            f"waits between refused attempts were {shown} s{then}: one is longer than "
            f"delay_max={DELAY_MAX:g} s",
            hint,
        )
    # A busy machine only ever stretches a gap, never shortens one: the shortest of the
    # first three is the early wait plus what an attempt costs, whatever stretched the rest.
    if gaps[-1] + gaps[-2] - 2 * min(gaps[:3]) < GROWTH:
        return (
            f"waits between refused attempts were {shown} s: they did not grow; "
            "double the wait after each failed attempt, up to delay_max",
            hint,
        )
    return None


def _keep_asking_problem(outcome: _Outcome, timeout: float) -> Problem | None:
    seen = outcome.seen
    if outcome.blocked:  # whatever it did next: a drop, a timeout, an error
        return "it blocked the event loop: a connection it opened got no answer", BLOCKING_HINT
    if outcome.error is not None:
        error = outcome.error
        if isinstance(error, NotImplementedError):
            raise error
        if not isinstance(error, Exception | SystemExit):  # CancelledError, KeyboardInterrupt
            return f"raised {describe(error)}; {seen.summary()}"
        if isinstance(error, OSError | WebSocketException):
            cause = "a refused handshake" if isinstance(error, InvalidHandshake) else "a drop"
            return f"raised {describe(error)} ({cause}); {seen.summary()}", CATCH_HINT
        raise error
    if outcome.not_async:
        return f"returned {outcome.result!r:.60} at once: define it with `async def`"
    if outcome.timed_out:
        return f"did not return within {timeout:g} s; {seen.summary()}"
    expected = [f"Echo: {text}" for text in TEXTS]
    result = outcome.result
    if not isinstance(result, list | tuple):
        return f"returned {result!r:.60}, expected the list of answers"
    twice = [text for text in TEXTS if seen.answered[text] > 1]
    if twice:
        return (
            f"the server answered {twice[0]!r} {seen.answered[twice[0]]} times: "
            "it was sent again after its answer had arrived",
            RESEND_HINT,
        )
    made_up = [text for text in TEXTS if not seen.answered[text] and f"Echo: {text}" in result]
    if made_up:
        return (
            f"returned 'Echo: {made_up[0]}', an answer the server never sent: {seen.summary()}",
            RESEND_HINT,
        )
    missing = [answer for answer in expected if answer not in result]
    if missing:
        return f"returned {list(result)!r}: {missing[0]!r} is missing", RESEND_HINT
    if list(result) != expected:
        return f"returned {list(result)!r}, expected {expected!r}", RESEND_HINT
    if len(outcome.stalls) >= 2:
        longest = max(outcome.stalls)
        return f"the event loop stood still for up to {longest:.2f} s at a time", BLOCKING_HINT
    return _waits_problem(seen.refusals, back=_back(seen)) or _reset_problem(seen)


def _reset_problem(seen: _Seen, hint: str = RESET_HINT) -> Problem | None:
    """After the second cut the server takes the next handshake: a client that set attempt
    back to 0 when it connected waits about ``delay``, one that did not, ``delay_max``."""
    cut = seen.cuts.get("four")
    after = [when for when in seen.accepted if cut is not None and when > cut]
    if after and after[0] - cut > RESET:
        return (
            f"after the link dropped again, {after[0] - cut:.2f} s passed before the next "
            f"connection, not about delay={DELAY:g} s",
            hint,
        )
    return None


async def check_keep_asking(keep_asking: Callable[..., Any], timeout: float = 8.0) -> Verdict:
    """Grade ``async def keep_asking(url, texts, delay, delay_max) -> list[str]`` live.

    Await it: ``await check_keep_asking(keep_asking)``. It returns within about
    ``timeout`` seconds whatever ``keep_asking`` does (short of blocking the loop).
    """
    try:
        outcome = await _run_keep_asking(keep_asking, timeout)
    except Exception as error:  # the scene itself failed: say so, as a ❌
        failure = error
        return grade("keep_asking", lambda: f"the check could not run: {describe(failure)}", "")
    return grade(
        "keep_asking",
        lambda: _keep_asking_problem(outcome, timeout),
        KEEP_ASKING_HINT,
        KEEP_ASKING_NUDGE,
    )


# -- lesson 05's JavaScript exercise: the same client, in the learner's browser tab ----------

JS_TIMEOUT = 10.0  # seconds the page has to get every answer and close (a hang guard)
JS_SETTLE = DELAY_MAX + JS_SLACK  # seconds to watch after the last close: one more wait

JS_NUDGE = (
    "in connect(), open new WebSocket(url), send the first text without an answer on 'open', "
    "push each answer on 'message'; then add a 'close' listener that calls connect() again"
)
JS_RECIPE = (
    "connect(): const socket = new WebSocket(url); on 'open' set attempt = 0 and send "
    "texts[answers.length]; on 'message' push event.data, then send the next text, or "
    "socket.close(1000) once all are answered; on 'close', unless all are answered, "
    "setTimeout(connect, wait) with wait = Math.min(delay * 2 ** attempt, delayMax), "
    "jittered and capped again, and attempt += 1"
)
JS_BACKOFF_HINT = (
    "in the 'close' listener wait before connecting again: setTimeout(connect, wait) with "
    "wait = Math.min(delay * 2 ** attempt, delayMax) * (0.5 + Math.random()), capped again "
    "at delayMax, then attempt += 1; after 'open', attempt = 0"
)
JS_RECONNECT_HINT = (
    "a refused or cut connection ends with a 'close' event (after 'error'): call connect() "
    "again from there, every time, until every text has its answer; no attempt limit"
)
JS_ONE_CHAIN_HINT = (
    "reconnect from the 'close' listener alone: a failed attempt fires 'error' and then "
    "'close', so reconnecting from both starts two connections for each failure"
)
JS_RESET_HINT = (
    "on 'open' the link is good: set attempt = 0, so that the next drop starts again from "
    "delay, not from where the last outage left the waits"
)
JS_CLOSE_HINT = "once every text has its answer, socket.close(1000), and connect no more"
JS_RESEND_HINT = (
    "keep the answers in an array outside connect(); on 'open' send texts[answers.length], "
    "the first text without an answer (the one in flight when the link dropped)"
)


def _js_problem(scene: _Scene, attempt: Attempt) -> Problem | None:
    seen = scene.seen_of(attempt.run)

    def done() -> bool:
        answered = all(seen.answered[text] for text in TEXTS)
        return answered and seen.connections > 0 and len(seen.closes) == seen.connections

    finished = attempt.wait(done, JS_TIMEOUT)
    connections = seen.connections
    if finished:
        attempt.wait(lambda: False, JS_SETTLE)  # anything after the end: another connection?
    problem = page_error(attempt)
    if problem is not None:
        return f"{problem}; {seen.summary()}"
    if not seen.connections and not seen.refusals:
        return f"the server saw no connection in {JS_TIMEOUT:g} s", JS_NUDGE
    if None in seen.origins:
        return "a handshake had no Origin header: it did not come from a browser page"
    if seen.most_open > 1:
        return (
            f"{seen.most_open} connections were open at the same time: {seen.summary()}",
            JS_ONE_CHAIN_HINT,
        )
    # A right answer connects three times (the first, after each cut); many more are
    # reconnections started twice per failure, as 'error' then 'close' each do.
    chains = seen.connections > 2 * (len(CUTS) + 1)
    twice = [text for text in TEXTS if seen.answered[text] > 1]
    if twice:
        return (
            f"the server answered {twice[0]!r} {seen.answered[twice[0]]} times: "
            "it was sent again after its answer had arrived",
            JS_ONE_CHAIN_HINT if chains else JS_RESEND_HINT,
        )
    missing = [text for text in TEXTS if not seen.answered[text]]
    if missing:
        gave_up = seen.connections < 3 or 0 < len(seen.refusals) < REFUSALS
        hint = JS_RECONNECT_HINT if gave_up else JS_RESEND_HINT
        return f"after {JS_TIMEOUT:g} s {seen.summary()}; {missing[0]!r} got no answer", hint
    if not finished:
        return (
            f"every text was answered, but after {JS_TIMEOUT:g} s a connection is still open",
            JS_CLOSE_HINT,
        )
    if seen.connections > connections:
        problem = f"it connected again after every text had its answer: {seen.summary()}"
        return (problem, JS_ONE_CHAIN_HINT) if chains else problem
    if seen.closes[-1] not in (1000, 1005):
        return f"the last connection ended with close code {seen.closes[-1]}", JS_CLOSE_HINT
    waits = _waits_problem(seen.refusals, JS_BACKOFF_HINT, JS_SLACK, _back(seen))
    return waits or _reset_problem(seen, JS_RESET_HINT)


class _Exercise:
    """The scene a JavaScript box connects to, and its grader."""

    def __init__(self) -> None:
        self.scene = _Scene()
        self.scene.background.run(self.scene._start())

    def grade(self, attempt: Attempt) -> Verdict:
        verdict = grade(
            "js_keep_asking", lambda: _js_problem(self.scene, attempt), JS_RECIPE, JS_NUDGE
        )
        if not verdict.passed:
            return verdict
        seen = self.scene.seen_of(attempt.run)
        waits = [later - earlier for earlier, later in itertools.pairwise(seen.refusals)]
        return Verdict(
            True,
            f"{verdict.message}; the server saw {seen.connections} connections from a browser, "
            f"{len(seen.refusals)} refused attempts {', '.join(f'{w:.2f}' for w in waits)} s "
            "apart, and answered each text once",
        )

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.scene.background.run(self.scene._stop())
        self.scene.background.close()


def js_keep_asking(code: str) -> JsBox:
    """Lesson 05's JavaScript exercise: ``code`` runs in this browser tab with ``url`` bound
    to an echo server behind a fault proxy, which cuts the link twice and refuses attempts
    for a while, as ``check_keep_asking`` does; graded from what the server saw.

    (Firefox spaces failed connections by itself, network.websocket.delay-failed-reconnects:
    there the waits measured are partly the browser's.)
    """
    exercise = _Exercise()
    url = browser_url(exercise.scene.url)
    box = JsBox("js_keep_asking", code, url, exercise.grade, on_close=exercise.stop)
    if NOT_DONE in code:  # a learner copy's placeholder: its verdict is known before any run
        placeholder = Attempt("placeholder", code)
        placeholder.report("error", f"Error: {NOT_DONE}")
        box.verdict = str(exercise.grade(placeholder))
    return box


# -- fresh(messages) ---------------------------------------------------------------------


def _message(room: str, seq: int, text: str, user: str = "bob") -> dict[str, Any]:
    return {"roomId": room, "seq": seq, "userId": user, "message": text}


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
    (  # 2, never seen, arrives after 3: showing it now would put it out of order
        [_message("lobby", 1, "a"), _message("lobby", 3, "c"), _message("lobby", 2, "b")],
        ["a", "c"],
    ),
    (  # the same, from two senders: the room numbers its messages, whoever sent them
        [
            _message("lobby", 1, "a", "alice"),
            _message("lobby", 3, "c", "bob"),
            _message("lobby", 2, "b", "alice"),
        ],
        ["a", "c"],
    ),
)

FRESH_NUDGE = "go through the messages in order and remember something per roomId"
FRESH_HINT = (
    "remember, per roomId, the highest seq seen so far (a dict); keep a message only when its "
    "seq is higher, and update the dict; keep the order of arrival"
)
SENDER_HINT = (
    "seq numbers a room's messages, whoever sent them: remember the highest seq per roomId "
    "alone, not per sender"
)
OLDER_HINT = (
    "a message not seen before can still be older than one already shown: compare its seq "
    "with the highest seq of its room, not with a set of the seqs seen"
)


def _kept(function: Callable[[list[dict[str, Any]]], Any], messages: list[dict[str, Any]]) -> Any:
    """The texts of the messages ``function`` kept, or what it returned when not messages."""
    got = function([dict(m) for m in messages])
    try:
        return [m["message"] for m in got]
    except (TypeError, KeyError):
        return _NotMessages(got)


@dataclass(frozen=True)
class _NotMessages:
    returned: Any


def _fresh_problem(
    function: Callable[[list[dict[str, Any]]], Any], timeout: float
) -> Problem | None:
    for messages, expected in FRESH_CASES:
        texts = call_within(lambda messages=messages: _kept(function, messages), timeout)
        if texts is STILL_RUNNING:
            return f"did not return within {timeout:g} s: does a loop never end?"
        if isinstance(texts, _NotMessages):
            return f"returned {texts.returned!r:.80}: expected a list of the messages kept"
        if texts != expected:
            if len({m["userId"] for m in messages}) > 1:
                arrived = [(m["roomId"], m["seq"], m["userId"]) for m in messages]
                problem = f"for arrivals (room, seq, user) {arrived} kept {texts}"
                return f"{problem}, expected {expected}", SENDER_HINT
            arrived = [(m["roomId"], m["seq"]) for m in messages]
            problem = f"for arrivals (room, seq) {arrived} kept {texts}, expected {expected}"
            older = len(texts) > len(expected) and texts[: len(expected)] == expected
            return (problem, OLDER_HINT) if older and len(set(texts)) == len(texts) else problem
    return None


def check_fresh(function: Callable[[list[dict[str, Any]]], Any], timeout: float = 2.0) -> Verdict:
    """Grade ``fresh(messages)``: each message once, by room and seq, in arrival order."""
    return grade("fresh", lambda: _fresh_problem(function, timeout), FRESH_HINT, FRESH_NUDGE)
