"""Run servers on an event loop of their own, in a daemon thread, so cells stay free.

A notebook's kernel already runs an event loop for the cells. A server started on
that loop only runs while a cell awaits something; on a loop of its own in a
background thread it serves all the time, and cells (sync or ``await``) act as
its clients.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

from rtlab.aio.proxy import Proxy, Traffic
from rtlab.aio.server import ClientInfo, LabServer, Update
from rtlab.core.tokens import issue
from rtlab.core.wirelog import WireLog
from rtlab.notebook.nested import run

T = TypeVar("T")
R = TypeVar("R", bound="Running")

TIMEOUT = 10.0
PASS_TTL = 30 * 86400  # seconds a page pass is valid (the server's secret dies with it)


def _kernel_loop_runs() -> bool:
    """Whether an event loop runs in this thread (a notebook cell's, say)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class BackgroundLoop:
    """An asyncio event loop running in a daemon thread.

    Errors that nobody awaited are kept in ``errors`` instead of being printed:
    output from another thread would land in whichever cell happens to run.
    """

    def __init__(self, name: str = "rtlab-loop") -> None:
        self.errors: collections.deque[str] = collections.deque(maxlen=100)
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(self._keep_error)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def _keep_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        self.errors.append(f"{context.get('message', '')} {error!r}".strip())

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def run(
        self,
        coro: Coroutine[Any, Any, T],
        timeout: float | None = TIMEOUT,
        *,
        turning: bool = False,
    ) -> T:
        """Run ``coro`` on the background loop and wait for its result.

        A plain blocking wait, unless ``turning``: then, called from a notebook cell
        (where the kernel's loop runs in this thread), the wait keeps that loop turning
        (see :func:`rtlab.run`), for waits that peers living on it must answer, such as
        a server's closing handshakes. Only those waits make nest_asyncio2 patch asyncio,
        so lessons measure on asyncio's own C tasks until then.
        """
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("BackgroundLoop.run() called from its own thread would deadlock")
        if not self.alive:
            coro.close()
            raise RuntimeError("the background loop is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        if turning and _kernel_loop_runs():
            return run(asyncio.wait_for(asyncio.wrap_future(future), timeout))
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()  # as asyncio.wait_for would
            raise

    def call(self, function: Callable[..., T], *args: Any, timeout: float = TIMEOUT) -> T:
        """Call a plain function on the loop's thread (where its objects live)."""

        async def call() -> T:
            return function(*args)

        return self.run(call(), timeout)

    def close(self, timeout: float = TIMEOUT) -> None:
        """Stop the loop and wait for its thread to end."""
        if self.alive:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)


class Running:
    """Something serving on a background loop of its own; stop it, or use ``with``."""

    def __init__(self, background: BackgroundLoop) -> None:
        self._background = background

    @property
    def running(self) -> bool:
        return self._background.alive

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` on the server's own thread (where its state lives)."""
        return self._background.call(function, *args)

    async def _stop(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Close every connection, free the port and end the thread."""
        if self._background.alive:
            try:
                self._background.run(
                    self._stop(), turning=True
                )  # clients on the cell's loop answer
            finally:
                self._background.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RunningServer(Running):
    """A lab server serving in the background; what :func:`start_server` returns."""

    def __init__(self, server: LabServer, background: BackgroundLoop) -> None:
        super().__init__(background)
        self.server = server

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT``, the base of the WebSocket endpoints."""
        return self.server.url

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT/``, the browser page."""
        return self.server.http_url

    @property
    def echo_url(self) -> str:
        return f"{self.url}/echo"

    def page_pass(self) -> str | None:
        """A pass for this server's pages (``?pass=``), signed with its own page secret:
        it admits ``?user=NAME`` where the address proves nothing (through a proxy)."""
        secret = self.server.admission.page_secret
        return issue(secret, "page", PASS_TTL, time.time()) if secret else None

    @property
    def feed_url(self) -> str:
        return f"{self.url}/feed"

    @property
    def running(self) -> bool:
        return super().running and self.server.running

    @property
    def clients(self) -> list[ClientInfo]:
        """The open WebSocket connections right now."""
        if not self.running:
            return []
        return self._background.call(lambda: self.server.clients)

    @property
    def log(self) -> list[str]:
        """What the server logged (it never prints), plus background errors."""
        return [*self.server.log, *self._background.errors]

    def emit(self, event: str, data: Any = None, *, ns: str = "/", to: str | None = None) -> int:
        """Send an event from the server to a room, or to everyone in ``ns``; how many got it."""
        return self._background.call(lambda: self.server.emit(event, data, ns=ns, to=to))

    def publish(self, text: str) -> Update:
        """Publish an update on the feed (``/feed``), pushed to subscribers at once."""
        return self._background.call(self.server.publish, text)

    async def _stop(self) -> None:
        await self.server.stop()  # code 1001, going away

    def __repr__(self) -> str:
        if not self.running:
            return "<RunningServer stopped>"
        n = len(self.clients)
        return f"<RunningServer {self.http_url} {n} client{'' if n == 1 else 's'}>"


class RunningProxy(Running):
    """A byte-counting proxy in the background; what :func:`start_proxy` returns."""

    def __init__(self, proxy: Proxy, background: BackgroundLoop) -> None:
        super().__init__(background)
        self.proxy = proxy

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT``: use it where you would use the server's URL."""
        return self.proxy.url

    @property
    def http_url(self) -> str:
        return self.proxy.http_url

    @property
    def traffic(self) -> Traffic:
        """Bytes each way and connections so far (a copy)."""
        return self._background.call(lambda: dataclasses.replace(self.proxy.traffic))

    def reset(self) -> Traffic:
        """The counts so far; counting starts again from zero."""
        return self._background.call(self.proxy.reset)

    @property
    def connections(self) -> int:
        """Connections open through the proxy right now."""
        return self._background.call(lambda: self.proxy.connections)

    @property
    def wire(self) -> WireLog:
        """What crossed the proxy, decoded (``wire.text()``, ``wire.records``, ``wire.clear()``).

        Records are added on the proxy's thread; reading them from a cell is safe.
        """
        if self.proxy.wire is None:
            raise RuntimeError("this proxy does not capture: start it with capture=True")
        return self.proxy.wire

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The proxy's event loop (where ``wire`` is fed), for live views."""
        return self._background.loop

    def faults(
        self,
        *,
        latency: float | None = None,
        bandwidth: float | None = None,
        cut_after: int | None = None,
        refuse_upgrades: bool | None = None,
    ) -> None:
        """Set faults while traffic flows: ``latency`` in seconds each way, ``bandwidth``
        in bytes per second (0 lifts the cap), ``cut_after`` bytes per connection,
        ``refuse_upgrades`` to answer WebSocket upgrade requests 403 (plain HTTP passes)."""

        def apply() -> None:
            if latency is not None:
                self.proxy.latency = latency
            if bandwidth is not None:
                self.proxy.bandwidth = bandwidth or None
            if cut_after is not None:
                self.proxy.cut_after = cut_after
            if refuse_upgrades is not None:
                self.proxy.refuse_upgrades = refuse_upgrades

        self._background.call(apply)

    def freeze(self) -> None:
        """Stop forwarding, keep the sockets open: to both ends the link looks alive but dead."""
        self._background.call(self.proxy.freeze)

    def thaw(self) -> None:
        self._background.call(self.proxy.thaw)

    def cut(self, abort: bool = False) -> int:
        """Close every connection through the proxy, both sides; how many were cut."""
        return self._background.call(self.proxy.cut, abort)

    async def _stop(self) -> None:
        await self.proxy.stop()

    def __repr__(self) -> str:
        if not self.running:
            return "<RunningProxy stopped>"
        host, port = self.proxy.target
        return f"<RunningProxy {self.proxy.host}:{self.proxy.port} -> {host}:{port}>"


def _start(make: Callable[[BackgroundLoop], Coroutine[Any, Any, R]], name: str) -> R:
    background = BackgroundLoop(name=name)
    try:
        return background.run(make(background))
    except BaseException:
        background.close()
        raise


def start_server(host: str = "127.0.0.1", port: int = 0, **options: Any) -> RunningServer:
    """Start a lab server on its own loop in a daemon thread; port 0 picks a free port.

    ``options`` go to :class:`~rtlab.aio.server.LabServer` (``max_size``, ``ping_interval``,
    ``compression="off"|"on"|BYTES``...).
    Use it with ``with`` or call ``stop()`` when done. The server gets a random
    ``page_secret`` of its own, so that the pages a notebook shows through a proxy
    (JupyterHub, Binder) carry a pass instead of trusting the address (rtlab.notebook.page).
    """
    options.setdefault("page_secret", secrets.token_urlsafe(32))

    async def make(background: BackgroundLoop) -> RunningServer:
        return RunningServer(await LabServer(host, port, **options).start(), background)

    return _start(make, "rtlab-server")


def start_proxy(
    target: RunningServer | str, port: int = 0, *, capture: bool = False
) -> RunningProxy:
    """Start a byte-counting TCP proxy in front of ``target`` (a server or a ``ws://`` URL).

    ``capture=True`` also decodes what crosses it into ``proxy.wire`` (see
    :mod:`rtlab.core.wirelog`; :func:`rtlab.wire_view` shows it live).
    """
    text = target if isinstance(target, str) else target.url
    url = urlsplit(text)
    if url.hostname is None or url.port is None:
        raise ValueError(
            f"expected a URL with a host and a port, like ws://127.0.0.1:8765: {text!r}"
        )

    async def make(background: BackgroundLoop) -> RunningProxy:
        proxy = Proxy(url.hostname, url.port, port=port, capture=capture)
        return RunningProxy(await proxy.start(), background)

    return _start(make, "rtlab-proxy")
