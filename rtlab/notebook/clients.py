"""Event clients for cells and scripts: ``await aconnect(...)`` or plain ``connect(...)``.

The async face is :class:`~rtlab.aio.client.EventClient` on the caller's loop (a
cell's ``await``). The synchronous face runs the same client on one shared
background loop, so plain code, scripts and widgets can use it without ``await``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Sequence
from typing import Any, TypeAlias

from rtlab.aio.client import ClientHandler, EventClient, Refused
from rtlab.core.envelope import DEFAULT_NAMESPACE, Event
from rtlab.notebook.background import BackgroundLoop, RunningProxy, RunningServer
from rtlab.notebook.shared import SharedServer

Target: TypeAlias = RunningServer | RunningProxy | SharedServer | str
"""A lab server (or a proxy in front of one), the class's shared server, or a ``ws://`` URL."""

_loop: BackgroundLoop | None = None
_loop_lock = threading.Lock()


def client_loop() -> BackgroundLoop:
    """The background loop that every synchronous client shares (made on first use)."""
    global _loop
    with _loop_lock:
        if _loop is None or not _loop.alive:
            _loop = BackgroundLoop(name="rtlab-clients")
        return _loop


def _targets(target: Target | Sequence[Target]) -> list[Target]:
    """One target, or several (servers sharing rooms through Redis) as a list."""
    if isinstance(target, str) or hasattr(target, "url"):  # a server, a proxy, a URL
        return [target]
    targets = list(target)
    if not targets:
        raise ValueError("no server to connect to: the list is empty")
    for one in targets:
        if not (isinstance(one, str) or hasattr(one, "url")):
            raise TypeError(f"expected a server or a ws:// URL, got {one!r}")
    return targets


def _url(target: Target | Sequence[Target]) -> str | list[str]:
    urls = [one if isinstance(one, str) else one.url for one in _targets(target)]
    return urls[0] if len(urls) == 1 else urls


def _options(target: Target | Sequence[Target], user: str, options: Any) -> Any:
    """A shared server's token goes with it; it must name ``user`` (the server decides)."""
    shared = [t for t in _targets(target) if isinstance(t, SharedServer) and t.token is not None]
    if not shared or "token" in options:
        return options
    if len({t.token for t in shared}) > 1:
        raise ValueError("these shared servers come with different tokens: pass token=...")
    for one in shared:
        if one.user != user:
            raise ValueError(
                f"your token for {one.url} names {one.user!r}: connect as {one.user!r}, "
                f"not {user!r} (its user decides who you are on that server)"
            )
    return {**options, "token": shared[0].token}


async def aconnect(target: Target | Sequence[Target], user: str, **options: Any) -> EventClient:
    """Connect as ``user`` to a lab server (or a ``ws://`` URL, or the class's
    :func:`~rtlab.notebook.shared.shared_server`), on the running loop.

    A list of them (servers sharing rooms through Redis, ``rtlab serve --redis``)
    connects to the first that answers; with ``reconnection``, each reconnection
    tries them in turn, the one just lost first.

    ``options`` go to :meth:`EventClient.connect <rtlab.aio.client.EventClient.connect>`:
    ``reconnection=True`` (or a :class:`~rtlab.core.backoff.Reconnection`),
    ``max_queue``, ``ping_interval``, ``ping_timeout``, ``open_timeout``,
    ``compression="off"|"on"|BYTES``... Bytes anywhere in an event's data travel in a
    binary frame, and come back as ``bytes``.
    """
    return await EventClient.connect(_url(target), user, **_options(target, user, options))


class Client:
    """A synchronous event client: every call blocks until done (or times out)."""

    def __init__(self, inner: EventClient, background: BackgroundLoop) -> None:
        self.inner = inner
        self._background = background

    @property
    def user(self) -> str:
        return self.inner.user

    @property
    def closed(self) -> bool:
        return self.inner.closed

    @property
    def close_code(self) -> int | None:
        return self.inner.close_code

    @property
    def errors(self) -> list[str]:
        return list(self.inner.errors)

    @property
    def connected(self) -> bool:
        """Connected and caught up (after a drop: namespaces and rooms joined again)."""
        return self.inner.connected

    @property
    def queued(self) -> int:
        """Events waiting for the server's acknowledgement (with reconnection)."""
        return self.inner.queued

    @property
    def reconnects(self) -> int:
        """How many times the client came back after a drop."""
        return self.inner.reconnects

    @property
    def refusal(self) -> Refused | None:
        """Why the server turned the client away for good (it stopped reconnecting)."""
        return self.inner.refusal

    def emit(
        self,
        event: str,
        data: Any = None,
        *,
        ns: str = DEFAULT_NAMESPACE,
        ack: bool = False,
        timeout: float = 5.0,
        mid: str | None = None,
    ) -> Any:
        """Send an event; with ``ack=True`` return the acknowledgement's data."""
        coro = self.inner.emit(event, data, ns=ns, ack=ack, timeout=timeout, mid=mid)
        return self._background.run(coro, timeout + 1)

    def emit_soon(
        self,
        event: str,
        data: Any = None,
        *,
        ns: str = DEFAULT_NAMESPACE,
        ack: bool = False,
        timeout: float = 5.0,
        mid: str | None = None,
    ) -> concurrent.futures.Future[Any]:
        """Like :meth:`emit` without waiting: a future of the acknowledgement (for UIs)."""
        coro = self.inner.emit(event, data, ns=ns, ack=ack, timeout=timeout, mid=mid)
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._background.loop)
        except RuntimeError:  # the loop is closed
            coro.close()
            raise ConnectionError(f"{self.user}: the client loop is closed") from None

    def on(
        self, event: str, handler: ClientHandler | None = None, *, ns: str = DEFAULT_NAMESPACE
    ) -> Any:
        """Call ``handler(data)`` for each ``event``. It runs on the background thread:
        update widgets or lists there, never print."""
        return self.inner.on(event, handler, ns=ns)

    def events(self, event: str | None = None, ns: str | None = None) -> list[Event]:
        return self._background.call(self.inner.events, event, ns)

    def wait_for(
        self, event: str, count: int = 1, *, ns: str = DEFAULT_NAMESPACE, timeout: float = 5.0
    ) -> list[Any]:
        """Block until ``count`` ``event`` events arrived in all; their data, in order."""
        coro = self.inner.wait_for(event, count, ns=ns, timeout=timeout)
        return self._background.run(coro, timeout + 1)

    def typing(
        self, room: str, typing: bool = True, *, ns: str = DEFAULT_NAMESPACE, timeout: float = 5.0
    ) -> Any:
        """Tell the others in ``room`` that you are typing (or stopped): the ``typing`` event."""
        data = {"roomId": room, "typing": typing}
        return self.emit("typing", data, ns=ns, ack=True, timeout=timeout)

    def dm(self, user: str, text: str, *, ns: str = DEFAULT_NAMESPACE, timeout: float = 5.0) -> Any:
        """A direct message to every session of ``user``; the ack says to how many sessions
        it was written (``user``'s, and your other tabs)."""
        data = {"to": user, "message": text}
        return self.emit("direct-message", data, ns=ns, ack=True, timeout=timeout)

    def close(self) -> None:
        if not self.inner.closed and self._background.alive:
            self._background.run(self.inner.close())

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client {self.user!r} {'closed' if self.closed else 'connected'}>"


def connect(target: Target | Sequence[Target], user: str, **options: Any) -> Client:
    """Connect as ``user`` to a lab server (or a ``ws://`` URL, or the class's
    :func:`~rtlab.notebook.shared.shared_server`), or to the first that answers of a
    list of them (see :func:`aconnect`); returns a synchronous client.

    ``options`` are :func:`aconnect`'s, for instance
    ``rtlab.connect(server, "alice", reconnection=True, ping_interval=5, ping_timeout=5)``.
    """
    background = client_loop()
    options = _options(target, user, options)
    return Client(background.run(EventClient.connect(_url(target), user, **options)), background)
