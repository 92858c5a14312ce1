"""A protocol v1 client on ``websockets``: acks, handlers, waits, and reconnection.

::

    client = await EventClient.connect(server.url, "alice")
    await client.emit("join-room", "lobby", ack=True)
    await client.emit("send-message", {"roomId": "lobby", "message": "hi"})
    messages = await client.wait_for("receive-message", count=1, timeout=5)
    await client.close()

With ``reconnection=Reconnection()`` (Socket.IO's options, see rtlab.core.backoff) the
client survives drops: it reconnects with exponential backoff and jitter, joins its
namespaces and rooms again, gets the room messages it missed (``since`` the last
``seq`` it saw), and resends what the server has not acknowledged. Events emitted
while offline wait in a bounded queue. Every event then carries a ``mid``, so the
server delivers a resend once. Local events report it all: ``disconnect``,
``reconnect_attempt``, ``reconnect_error``, ``reconnect`` and ``reconnect_failed``.
A refusal that retrying cannot change (401, 403, another 4xx but 429:
rtlab/core/refusal.py) ends it at once: the client closes and raises :class:`Refused`
with the server's reason.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import inspect
import itertools
import json
import random
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.protocol import State

from rtlab.aio.compression import DEFAULT_THRESHOLD, Compression, client_options
from rtlab.core.backoff import Reconnection, schedule
from rtlab.core.envelope import (
    DEFAULT_NAMESPACE,
    Ack,
    EnvelopeError,
    Event,
    decode_reply,
    encode_event,
)
from rtlab.core.refusal import advice, is_final

ClientHandler = Callable[[Any], Any | Awaitable[Any]]
KEPT_EVENTS = 10_000  # received events kept for inspection and waits
KEPT_ERRORS = 100  # the last errors noted (a handler that fails at every event: its last)
MAX_QUEUE = 1000  # events waiting for the server's acknowledgement, offline or not
PACED_TIMEOUT = 10.0  # seconds to wait for each acknowledgement of a backlog
# Refusals that keep an event queued, to be sent again after retryAfter: too fast, and
# a service the server needs (Redis, with rtlab serve --redis) away for a moment.
RETRIED = frozenset({"rate_limited", "unavailable"})


class AckError(Exception):
    """The server answered an event with an error: ``code`` and ``message`` say why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class _Turned(InvalidStatus):
    """A handshake the server answered with another status than 101: ``status`` and
    ``reason`` (its body), and as its message what to do. Still an ``InvalidStatus``."""

    def __init__(self, error: InvalidStatus) -> None:
        super().__init__(error.response)
        self.status = error.response.status_code
        self.reason = bytes(error.response.body or b"").decode(errors="replace").strip()

    def __str__(self) -> str:
        return advice(self.status, self.reason)


class Refused(_Turned):
    """The server refused the handshake for good: ``status`` and ``reason`` (its body)
    say why, and the message says what to do. Still an ``InvalidStatus``."""


class Declined(_Turned):
    """The server turned the first handshake away for now (a 429, a 5xx): trying again
    later may get in. Like :class:`Refused`, its message gives the server's reason
    (``ann already has 8 connections open``), not the status alone."""


def final_refusal(error: BaseException) -> Refused | None:
    """The :class:`Refused` a failed handshake amounts to, or None if retrying may help."""
    if isinstance(error, Refused):
        return error
    if isinstance(error, InvalidStatus) and is_final(error.response.status_code):
        return Refused(error)
    return None


class OfflineQueueFull(Exception):
    """``max_queue`` events already wait for the server: this one was not queued."""


def events_url(url: str, user: str, token: str | None = None) -> str:
    """``ws://HOST:PORT`` (or a full ``.../ws`` URL) to the events endpoint for ``user``
    (or for the user a ``token`` names, on a server that requires tokens)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"expected a ws:// or wss:// URL, got {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/ws"):
        path += "/ws"
    if not token and not (isinstance(user, str) and user):
        raise ValueError(
            f"connect as whom? got user {user!r} and no token: give a user name, or on a "
            "class's server your token (RTLAB_TOKEN, or shared_server(..., token=...))"
        )
    query = f"token={quote(token)}" if token else f"user={quote(user)}"
    return f"{parts.scheme}://{parts.netloc}{path}?{query}"


def token_user(token: str) -> str | None:
    """The user a token names, read without checking it (the server checks it)."""
    try:
        claims = json.loads(base64.urlsafe_b64decode(token.partition(".")[0] + "=="))
    except (ValueError, binascii.Error):
        return None
    user = claims.get("sub") if isinstance(claims, dict) else None
    return user if isinstance(user, str) else None


@dataclass
class _Outgoing:
    """An event in the outbox: sent (or not yet) and not yet acknowledged."""

    id: int
    event: str
    data: Any
    ns: str
    mid: str
    future: asyncio.Future[Any]
    sent_on: int = 0  # the connection number it was last sent on; 0: not sent
    paced: asyncio.Future[float | None] | None = None  # set while a paced flush waits on it

    def encode(self) -> str | bytes:  # bytes: data holds bytes, sent in a binary frame
        return encode_event(self.event, self.data, self.ns, self.id, self.mid)


class EventClient:
    """One user's connection to ``/ws``. Make it with :meth:`connect`."""

    def __init__(
        self,
        url: str | Sequence[str],
        user: str,
        *,
        reconnection: Reconnection | None = None,
        max_queue: int = MAX_QUEUE,
        connect_options: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> None:
        # Several URLs (servers sharing rooms through Redis): reconnections try them in turn.
        self.urls = [events_url(u, user, token) for u in ([url] if isinstance(url, str) else url)]
        self.url = self.urls[0]
        self.user = token_user(token) or user if token else user
        self.reconnection = reconnection
        self.max_queue = max_queue
        self.connection: ClientConnection | None = None
        self.received: collections.deque[Event] = collections.deque(maxlen=KEPT_EVENTS)
        self.errors: list[str] = []  # handler failures, kept instead of printed (note_error)
        self.reconnects = 0
        self.refusal: Refused | None = None  # why the server turned us away for good
        self.rate_limited = False  # the server has said "slow down": backlogs go paced
        self._retrying: asyncio.Future[None] | None = None
        self._options = connect_options or {}
        self._handlers: dict[tuple[str, str], list[ClientHandler]] = {}
        self._requests: dict[int, asyncio.Future[Any]] = {}  # direct requests, this connection
        self._outbox: dict[int, _Outgoing] = {}  # with reconnection: until acknowledged
        self._ids = itertools.count(1)
        self._generation = 0  # which connection this is: 1, 2, 3...
        self._mids = f"{user[:16]}-{secrets.token_hex(4)}-"
        self._namespaces = {DEFAULT_NAMESPACE}
        self._rooms: set[tuple[str, str]] = set()
        self._last_seq: dict[tuple[str, str], int] = {}
        self._resumed = asyncio.Event()  # set while connected and caught up
        self._changed = asyncio.Condition()
        self._closing = False
        self._stop = asyncio.Event()  # set by close(): ends a reconnection at once
        self._runner: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls,
        url: str | Sequence[str],
        user: str,
        *,
        reconnection: Reconnection | bool = False,
        max_queue: int = MAX_QUEUE,
        open_timeout: float = 10,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        token: str | None = None,
        ssl: Any = None,
        compression: Compression = DEFAULT_THRESHOLD,
        origin: str | None = None,
    ) -> EventClient:
        """Connect as ``user`` to a server URL (``server.url`` or ``ws://HOST:PORT``), or to
        the first that answers of several servers sharing rooms (``rtlab serve --redis``).

        ``reconnection``: ``True`` for Socket.IO's defaults, or a :class:`Reconnection`.
        ``ping_interval``/``ping_timeout``: the protocol heartbeat; a link that stops
        answering pings is given up after about their sum. ``token``: for a server
        that requires one (it decides the user). ``ssl``: an SSLContext for ``wss://``.
        ``compression``: permessage-deflate ``"off"`` (or None: not offered), ``"on"``,
        or on for messages of at least that many bytes (default 1024). ``origin``: an
        ``Origin`` header to send, as a browser page would (none by default).

        Raises :class:`Refused` when the server turns the handshake away for good.
        """
        options = {
            "open_timeout": open_timeout,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "close_timeout": 2,
            **client_options(compression),
        }
        if ssl is not None:
            options["ssl"] = ssl
        if origin is not None:
            options["origin"] = origin
        chosen = Reconnection() if reconnection is True else reconnection or None
        client = cls(
            url,
            user,
            reconnection=chosen,
            max_queue=max_queue,
            connect_options=options,
            token=token,
        )
        for url in client.urls:  # the first that answers
            client.url = url
            try:
                client._adopt(await connect(url, **options))
                break
            except InvalidStatus as error:
                refusal = final_refusal(error)
                if refusal is not None:
                    raise refusal from None
                raise Declined(error) from None
            except OSError:
                if url == client.urls[-1]:
                    raise
        client._resumed.set()  # before returning: an emit right away is sent at once
        client._runner = asyncio.get_running_loop().create_task(client._run())
        return client

    # -- state ------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Connected and caught up (namespaces and rooms joined again after a drop)."""
        return self._resumed.is_set() and not self.closed

    @property
    def closed(self) -> bool:
        """Closed for good: by :meth:`close`, or with no reconnection left to try."""
        return self._runner is not None and self._runner.done()

    @property
    def close_code(self) -> int | None:
        return self.connection.close_code if self.connection else None

    @property
    def queued(self) -> int:
        """Events waiting for the server's acknowledgement (sent or not)."""
        return len(self._outbox)

    # -- sending ------------------------------------------------------------------------------

    async def emit(
        self,
        event: str,
        data: Any = None,
        *,
        ns: str = DEFAULT_NAMESPACE,
        ack: bool = False,
        timeout: float = 5.0,
        mid: str | None = None,
    ) -> Any:
        """Send an event; with ``ack=True`` wait for the acknowledgement and return its data.

        Raises :class:`AckError` when the server refuses the event and ``TimeoutError``
        when no answer comes within ``timeout`` seconds. With reconnection, an event
        that timed out stays queued and is still delivered once the link is back.
        """
        if self.closed:
            raise self.refusal or ConnectionError(f"{self.user}: the client is closed")
        if self.reconnection is None:
            if ns not in self._namespaces:
                await self._request("connect", None, ns, timeout)
                self._namespaces.add(ns)
            if not ack:
                assert self.connection is not None
                await self.connection.send(encode_event(event, data, ns, mid=mid))
                return None
            return await self._request(event, data, ns, timeout, mid)
        return await self._queue(event, data, ns, ack, timeout, mid)

    async def _queue(
        self, event: str, data: Any, ns: str, ack: bool, timeout: float, mid: str | None
    ) -> Any:
        if len(self._outbox) >= self.max_queue:
            raise OfflineQueueFull(
                f"{self.user}: {self.max_queue} events already wait for the server; "
                f"{event!r} was not queued"
            )
        self._track_rooms(event, data, ns)
        ack_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        entry = _Outgoing(ack_id, event, data, ns, mid or f"{self._mids}{ack_id}", future)
        self._outbox[entry.id] = entry
        entry.future.add_done_callback(lambda f: f.cancelled() or f.exception())
        if ns not in self._namespaces:
            self._namespaces.add(ns)
            if self.connected:
                self._resumed.clear()  # connect the namespace first, then send
                asyncio.get_running_loop().create_task(self._join_namespace_live(ns))
        elif self.connected:
            await self._send(entry)
        if not ack:
            return None
        async with asyncio.timeout(timeout):
            return await asyncio.shield(entry.future)

    async def _join_namespace_live(self, ns: str) -> None:
        generation = self._generation
        try:
            await self._request("connect", None, ns, 5.0)
        except AckError:
            self._namespaces.discard(ns)  # refused: its events will be refused too
        except (ConnectionError, ConnectionClosed, TimeoutError):
            pass
        if self._generation != generation or self.connection.state is not State.OPEN:
            return  # the link dropped meanwhile: the reconnection takes it from here
        await self._flush()
        self._resumed.set()

    def _track_rooms(self, event: str, data: Any, ns: str) -> None:
        room = data.get("roomId") if isinstance(data, dict) else data
        if not isinstance(room, str):
            return
        if event == "join-room":
            self._rooms.add((ns, room))
        elif event == "leave-room":
            self._rooms.discard((ns, room))

    async def _send(self, entry: _Outgoing) -> None:
        if self.connection is None or entry.sent_on == self._generation:
            return
        entry.sent_on = self._generation
        with contextlib.suppress(ConnectionClosed):
            await self.connection.send(entry.encode())

    async def _flush(self, *, paced: bool = False) -> None:
        """Send, in order, everything not yet sent on this connection, including what
        is queued while this runs (each send may let other emits in).

        ``paced`` (a backlog after a drop): one event at a time, each acknowledged
        before the next, and one refused as ``rate_limited`` is sent again once the
        server's ``retryAfter`` has passed, so a backlog meets a rate limit in order
        and loses nothing.
        """
        generation = self._generation
        while unsent := [e for e in self._outbox.values() if e.sent_on != generation]:
            for entry in unsent:
                if self._generation != generation:
                    return  # a new connection: its own resume sends them, after rejoining
                if not paced:
                    await self._send(entry)
                    continue
                while entry.id in self._outbox and self._generation == generation:
                    entry.paced = asyncio.get_running_loop().create_future()
                    await self._send(entry)
                    try:
                        async with asyncio.timeout(PACED_TIMEOUT):
                            retry_after = await entry.paced
                    except TimeoutError:
                        raise TimeoutError(f"{self.user}: no ack for a resent event") from None
                    finally:
                        entry.paced = None
                    if retry_after is None:
                        break
                    await asyncio.sleep(retry_after)

    async def _request(
        self, event: str, data: Any, ns: str, timeout: float, mid: str | None = None
    ) -> Any:
        """Send one event on the current connection and wait for its acknowledgement."""
        if self.connection is None:
            raise ConnectionError(f"{self.user}: not connected")
        ack_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._requests[ack_id] = future
        try:
            await self.connection.send(encode_event(event, data, ns, ack_id, mid))
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._requests.pop(ack_id, None)

    # -- receiving --------------------------------------------------------------------------

    def on(
        self, event: str, handler: ClientHandler | None = None, *, ns: str = DEFAULT_NAMESPACE
    ) -> Any:
        """Call ``handler(data)`` for each ``event`` in ``ns``; usable as a decorator."""

        def register(handler: ClientHandler) -> ClientHandler:
            self._handlers.setdefault((ns, event), []).append(handler)
            return handler

        return register if handler is None else register(handler)

    def events(self, event: str | None = None, ns: str | None = None) -> list[Event]:
        """The events received so far, optionally only one name and namespace."""
        return [
            e
            for e in self.received
            if (event is None or e.event == event) and (ns is None or e.ns == ns)
        ]

    async def wait_for(
        self, event: str, count: int = 1, *, ns: str = DEFAULT_NAMESPACE, timeout: float = 5.0
    ) -> list[Any]:
        """Wait until ``count`` ``event`` events arrived in all; return their data, in order.

        Raises ``TimeoutError`` saying how many came, so that a cell never hangs.
        """

        def arrived() -> list[Any]:
            return [e.data for e in self.events(event, ns)]

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(arrived()) >= count or self.closed)
        except TimeoutError:
            raise TimeoutError(
                f"{self.user}: {len(arrived())} of {count} {event!r} events within {timeout} s"
            ) from None
        if len(arrived()) < count:
            if self.refusal is not None:
                raise self.refusal
            raise ConnectionError(
                f"{self.user}: connection closed after {len(arrived())} of {count} {event!r}"
            )
        return arrived()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _read(self, connection: ClientConnection) -> None:
        try:
            with contextlib.suppress(ConnectionClosed):
                async for message in connection:
                    try:
                        reply = decode_reply(message)
                    except EnvelopeError as error:
                        self.note_error(f"unreadable message from the server: {error}")
                        continue
                    if isinstance(reply, Ack):
                        self._settle(reply)
                    else:
                        await self._dispatch(reply)
                    await self._notify()
        finally:
            # No answer can come now: fail the requests at once (a rejoin waiting
            # here would otherwise hold a reconnection up until its timeout).
            for future in self._requests.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"{self.user}: connection lost"))
            for entry in self._outbox.values():  # a paced resend waits on its ack too
                if entry.paced is not None and not entry.paced.done():
                    entry.paced.set_exception(ConnectionError(f"{self.user}: connection lost"))

    def _settle(self, ack: Ack) -> None:
        entry = self._outbox.get(ack.ack)
        code = ack.error.get("code") if ack.error else None
        if entry is not None and code in RETRIED:
            # Kept, in its place: sent again once the server's retryAfter has passed,
            # and after a rate limit backlogs go one at a time (see _flush).
            assert ack.error is not None
            retry_after = float(ack.error.get("retryAfter", 1.0))
            entry.sent_on = 0
            self.rate_limited = self.rate_limited or code == "rate_limited"
            if entry.paced is not None and not entry.paced.done():
                entry.paced.set_result(retry_after)
            elif self._retrying is None or self._retrying.done():
                self._retrying = asyncio.ensure_future(self._retry(retry_after))
            return
        if entry is not None and entry.paced is not None and not entry.paced.done():
            entry.paced.set_result(None)
        self._outbox.pop(ack.ack, None)
        future = entry.future if entry is not None else self._requests.get(ack.ack)
        if future is None or future.done():
            return
        if ack.error is not None:
            error = ack.error
            if entry is not None:
                self._refused(entry, error.get("code"))
            future.set_exception(AckError(error.get("code", "?"), error.get("message", "")))
        else:
            if entry is not None and entry.event == "join-room" and isinstance(ack.data, dict):
                self._note_seq(entry.ns, ack.data.get("roomId"), ack.data.get("seq"))
            future.set_result(ack.data)

    async def _retry(self, delay: float) -> None:
        """After a rate_limited (or unavailable) refusal outside a paced flush: the rest,
        one at a time after a rate limit."""
        await asyncio.sleep(delay)
        if not self.rate_limited:  # (a paced flush retries by itself)
            self._retrying = None  # a refusal of what is sent now arms the next retry
        generation = self._generation
        with contextlib.suppress(ConnectionError, ConnectionClosed, TimeoutError):
            if self.connected and self._generation == generation:
                await self._flush(paced=self.rate_limited)

    def _refused(self, entry: _Outgoing, code: Any) -> None:
        """A refused join-room is no room to join again after a drop."""
        if entry.event == "join-room" and code not in RETRIED:
            room = entry.data.get("roomId") if isinstance(entry.data, dict) else entry.data
            if isinstance(room, str):
                self._rooms.discard((entry.ns, room))

    def _note_seq(self, ns: str, room: Any, seq: Any) -> bool:
        """Remember the newest room message seen; False for one seen already."""
        if not isinstance(room, str) or type(seq) is not int:
            return True
        if seq <= self._last_seq.get((ns, room), 0):
            return False
        self._last_seq[(ns, room)] = seq
        return True

    async def _dispatch(self, event: Event) -> None:
        data = event.data
        if (
            event.event == "receive-message"
            and isinstance(data, dict)
            and not self._note_seq(event.ns, data.get("roomId"), data.get("seq"))
        ):
            return  # a replay of something already here: exactly once
        if event.event == "error" and isinstance(data, dict) and "ref" in data:
            entry = self._outbox.pop(data["ref"], None)
            if entry is not None:
                self._refused(entry, data.get("code"))
            future = entry.future if entry is not None else self._requests.get(data["ref"])
            if future is not None and not future.done():
                future.set_exception(AckError(data.get("code", "?"), data.get("message", "")))
        for handler in self._handlers.get((event.ns, event.event), []):
            try:
                result = handler(event.data)
                if inspect.isawaitable(result):
                    await result
            except Exception as error:
                self.note_error(f"handler for {event.event!r} failed: {error!r}")
        # Recorded after its handlers ran, so that a wait never sees half-handled events.
        self.received.append(event)

    async def _local(self, name: str, data: Any = None) -> None:
        """Report the connection's life as an event of its own (never from the server)."""
        await self._dispatch(Event(name, data))
        await self._notify()

    # -- the connection's life ----------------------------------------------------------

    def _adopt(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._generation += 1

    async def _run(self) -> None:
        """Read until the link drops; then, with reconnection, bring it back."""
        assert self.connection is not None
        reading: asyncio.Task[None] | None = asyncio.ensure_future(self._read(self.connection))
        try:
            while reading is not None:
                await reading
                self._resumed.clear()
                if self._closing or self.reconnection is None:
                    return
                await self._local("disconnect", {"code": self.close_code})
                reading = await self._reconnect()
            if not self._closing:  # refused, or the attempts ran out (close() is no failure)
                why = {"refused": str(self.refusal)} if self.refusal else {}
                await self._local("reconnect_failed", {"reconnects": self.reconnects, **why})
        finally:
            self._resumed.clear()
            for entry in self._outbox.values():
                if not entry.future.done():
                    closed = ConnectionError(f"{self.user}: client closed")
                    entry.future.set_exception(self.refusal or closed)
            await self._notify()

    async def _reconnect(self) -> asyncio.Task[None] | None:
        """Try until a new connection is resumed: its reader, or None when giving up."""
        assert self.reconnection is not None
        first = self.urls.index(self.url)
        for attempt, delay in enumerate(schedule(self.reconnection, random.Random()), 1):
            await self._local("reconnect_attempt", {"attempt": attempt, "delay": delay})
            self.url = self.urls[(first + attempt - 1) % len(self.urls)]  # the same one first
            try:
                connection = await self._open(delay)
            except (OSError, InvalidHandshake, TimeoutError) as error:
                await self._local("reconnect_error", {"attempt": attempt, "error": str(error)})
                self.refusal = final_refusal(error)
                if self.refusal is not None:
                    return None  # retrying cannot change it: stop here
                continue
            if connection is None:
                return None  # close() was called
            self._adopt(connection)
            reading = asyncio.ensure_future(self._read(connection))
            try:
                await self._resume()
            except (ConnectionError, ConnectionClosed, TimeoutError, AckError) as error:
                await connection.close()
                await reading
                if self._closing:
                    return None
                await self._local("reconnect_error", {"attempt": attempt, "error": str(error)})
                continue
            self.reconnects += 1
            self._resumed.set()
            await self._local("reconnect", {"attempt": attempt})
            return reading
        return None

    async def _open(self, delay: float) -> ClientConnection | None:
        """Wait ``delay`` seconds, then open a connection; None when close() came first.

        close() interrupts both the wait and a handshake that hangs (a frozen link).
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stop.wait()
        if self._closing:
            return None
        opening = asyncio.ensure_future(connect(self.url, **self._options))
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait([opening, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not opening.done():
                opening.cancel()  # websockets aborts the half-open connection
                await asyncio.wait([opening])
        if self._closing:
            if not opening.cancelled() and opening.exception() is None:
                await opening.result().close()
            return None
        return opening.result()  # or raise why it failed

    async def _resume(self) -> None:
        """Namespaces, then rooms (with what was missed), then the outbox, in order.

        A namespace or room the server now refuses for good is given up (and said
        so in ``errors``); only a refusal for going too fast makes the attempt fail.
        """
        for ns in sorted(self._namespaces - {DEFAULT_NAMESPACE}):
            try:
                await self._request("connect", None, ns, 5.0)
            except AckError as error:
                if error.code in RETRIED:
                    raise
                self._namespaces.discard(ns)
                self.note_error(f"{ns}: not connected again: {error}")
        for ns, room in sorted(self._rooms):
            if ns not in self._namespaces:
                self._rooms.discard((ns, room))
                continue
            since = self._last_seq.get((ns, room), 0)
            try:
                answer = await self._request("join-room", {"roomId": room, "since": since}, ns, 5.0)
            except AckError as error:
                if error.code in RETRIED:
                    raise
                self._rooms.discard((ns, room))
                self.note_error(f"{ns} {room}: not joined again: {error}")
                continue
            if not isinstance(answer, dict):
                continue
            seq = answer.get("seq")
            if type(seq) is int and seq < since:
                # The server numbers from 1 again: it restarted without its history.
                # Follow it, or every new message would look like one seen already.
                self._last_seq[(ns, room)] = seq
                self.note_error(
                    f"{ns} {room}: the server numbers messages from 1 again "
                    "(restarted without its history); some may be lost"
                )
            elif answer.get("recovered") is False:
                self.note_error(f"{ns} {room}: messages older than the server keeps are lost")
        await self._flush(paced=self.rate_limited)

    # -- closing ------------------------------------------------------------------------------

    async def wait_closed(self) -> None:
        """Wait until the client is closed for good and every event before that handled."""
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._runner)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close for good, also in the middle of a reconnection (which stops there)."""
        self._closing = True
        self._stop.set()
        if self.connection is not None:
            await self.connection.close(code, reason)
        await self.wait_closed()

    async def __aenter__(self) -> EventClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def note_error(self, error: str) -> None:
        """Keep ``error`` among the last ``KEPT_ERRORS``, instead of printing it."""
        self.errors.append(error)
        if len(self.errors) > KEPT_ERRORS:
            del self.errors[0]

    def __repr__(self) -> str:
        state = "closed" if self.closed else "connected" if self.connected else "reconnecting"
        return f"<EventClient {self.user!r} {state}, {len(self.received)} events received>"
