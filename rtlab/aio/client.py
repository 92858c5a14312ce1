"""A protocol v1 client on ``websockets``: emit with acknowledgements, handlers, explicit waits.

::

    client = await EventClient.connect(server.url, "alice")
    await client.emit("join-room", "lobby", ack=True)
    await client.emit("send-message", {"roomId": "lobby", "message": "hi"})
    messages = await client.wait_for("receive-message", count=1, timeout=5)
    await client.close()
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import itertools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from rtlab.core.envelope import (
    DEFAULT_NAMESPACE,
    Ack,
    EnvelopeError,
    Event,
    decode_reply,
    encode_event,
)

ClientHandler = Callable[[Any], Any | Awaitable[Any]]
KEPT_EVENTS = 10_000  # received events kept for inspection and waits


class AckError(Exception):
    """The server answered an event with an error: ``code`` and ``message`` say why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def events_url(url: str, user: str) -> str:
    """``ws://HOST:PORT`` (or a full ``.../ws`` URL) to the events endpoint for ``user``."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"expected a ws:// or wss:// URL, got {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/ws"):
        path += "/ws"
    return f"{parts.scheme}://{parts.netloc}{path}?user={quote(user)}"


class EventClient:
    """One user's connection to ``/ws``. Make it with :meth:`connect`."""

    def __init__(self, connection: ClientConnection, user: str) -> None:
        self.connection = connection
        self.user = user
        self.received: collections.deque[Event] = collections.deque(maxlen=KEPT_EVENTS)
        self.errors: list[str] = []  # handler failures, kept instead of printed
        self._handlers: dict[tuple[str, str], list[ClientHandler]] = {}
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._namespaces = {DEFAULT_NAMESPACE}
        self._changed = asyncio.Condition()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, url: str, user: str, *, open_timeout: float = 10) -> EventClient:
        """Connect as ``user`` to a server URL (``server.url`` or ``ws://HOST:PORT``)."""
        connection = await connect(events_url(url, user), open_timeout=open_timeout)
        return cls(connection, user)

    # -- sending -----------------------------------------------------------------------

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

        Raises :class:`AckError` when the server refuses the event, ``TimeoutError``
        when no answer comes within ``timeout`` seconds.
        """
        if ns not in self._namespaces:
            await self._join_namespace(ns, timeout)
        if not ack:
            await self.connection.send(encode_event(event, data, ns, mid=mid))
            return None
        return await self._request(event, data, ns, mid, timeout)

    async def _request(
        self, event: str, data: Any, ns: str, mid: str | None, timeout: float
    ) -> Any:
        ack_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ack_id] = future
        try:
            await self.connection.send(encode_event(event, data, ns, ack_id, mid))
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._pending.pop(ack_id, None)

    async def _join_namespace(self, ns: str, timeout: float) -> None:
        await self._request("connect", None, ns, None, timeout)
        self._namespaces.add(ns)

    # -- receiving -----------------------------------------------------------------------

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
            raise ConnectionError(
                f"{self.user}: connection closed after {len(arrived())} of {count} {event!r}"
            )
        return arrived()

    async def _read(self) -> None:
        try:
            async for message in self.connection:
                try:
                    reply = decode_reply(message)
                except EnvelopeError as error:
                    self.errors.append(f"unreadable message from the server: {error}")
                    continue
                if isinstance(reply, Ack):
                    self._settle(reply)
                else:
                    await self._dispatch(reply)
                async with self._changed:
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"{self.user}: connection closed"))
            async with self._changed:
                self._changed.notify_all()

    def _settle(self, ack: Ack) -> None:
        future = self._pending.get(ack.ack)
        if future is None or future.done():
            return
        if ack.error is not None:
            error = ack.error
            future.set_exception(AckError(error.get("code", "?"), error.get("message", "")))
        else:
            future.set_result(ack.data)

    async def _dispatch(self, event: Event) -> None:
        if event.event == "error" and isinstance(event.data, dict) and "ref" in event.data:
            data = event.data
            future = self._pending.get(data["ref"])
            if future is not None and not future.done():
                future.set_exception(AckError(data.get("code", "?"), data.get("message", "")))
        for handler in self._handlers.get((event.ns, event.event), []):
            try:
                result = handler(event.data)
                if inspect.isawaitable(result):
                    await result
            except Exception as error:
                self.errors.append(f"handler for {event.event!r} failed: {error!r}")
        # Recorded after its handlers ran, so that a wait never sees half-handled events.
        self.received.append(event)

    # -- closing -----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._reader.done()

    @property
    def close_code(self) -> int | None:
        return self.connection.close_code

    async def wait_closed(self) -> None:
        """Wait until the connection is closed and every event before the close handled."""
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._reader)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.connection.close(code, reason)
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def __aenter__(self) -> EventClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "connected"
        return f"<EventClient {self.user!r} {state}, {len(self.received)} events received>"
