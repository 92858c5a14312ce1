"""A WebSocket endpoint that records what a browser did on it, and relays it to a real server.

The JavaScript exercises run in the learner's own browser tab, whose page (JupyterLab's)
the lab server would refuse as a foreign origin. So the page connects here instead: a
``websockets`` server on 127.0.0.1 that accepts any origin, writes down the handshake
(``Origin``, ``User-Agent``), every message each way and the close frame the browser sent,
and passes each message on to ``target`` (the lab server's ``/echo``, say), whose replies
go back to the browser. A check then grades what this server saw. Given a ``delay``
(seconds, a range), it holds each reply back for a random time in that range before
passing it on: code that closes on a timer, not when the reply comes, then shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import random
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from rtlab.notebook.background import BackgroundLoop, Running, _start

RELAY_TIMEOUT = 5.0  # seconds for the relay to reach the target


@dataclass
class Seen:
    """One browser connection, as the recording server saw it."""

    id: int
    run: str  # the ``run`` query parameter of the URL it asked for
    origin: str | None
    user_agent: str | None
    # ("in", message) from the browser, ("out", message) to it, in the order they happened
    log: list[tuple[str, str | bytes]] = field(default_factory=list)
    closed: bool = False
    close_code: int | None = None  # of the close frame the browser sent; None: it sent none
    close_reason: str = ""
    closed_by: str = ""  # "browser", "server" (the target went away) or "" while open
    target_error: str = ""  # why the relay could not reach the target, if it could not

    @property
    def received(self) -> list[str | bytes]:
        """The messages the browser sent, in order."""
        return [message for way, message in self.log if way == "in"]

    @property
    def sent(self) -> list[str | bytes]:
        """The messages the server sent to the browser, in order."""
        return [message for way, message in self.log if way == "out"]


class RecordingServer:
    """The recording relay on the caller's event loop: ``await start()``, ``await stop()``."""

    def __init__(
        self,
        target: str,
        host: str = "127.0.0.1",
        port: int = 0,
        delay: tuple[float, float] | None = None,
    ) -> None:
        self.target = target
        self.delay = delay  # seconds each reply is held back: random, between the two
        self.host = host
        self.port = port
        self.seen: list[Seen] = []
        self._ids = itertools.count(1)
        self._server: Server | None = None

    async def start(self) -> RecordingServer:
        self._server = await serve(self._handle, self.host, self.port, max_size=2**20)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close(code=1001, reason="server stopping")
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, browser: ServerConnection) -> None:
        request = browser.request
        assert request is not None
        query = parse_qs(urlsplit(request.path).query)
        seen = Seen(
            next(self._ids),
            query.get("run", [""])[0],
            request.headers.get("Origin"),
            request.headers.get("User-Agent"),
        )
        self.seen.append(seen)
        try:
            async with connect(self.target, open_timeout=RELAY_TIMEOUT) as upstream:
                await self._relay(browser, upstream, seen)
        except (OSError, TimeoutError, ConnectionClosed, ValueError) as error:
            seen.target_error = f"{type(error).__name__}: {error}"
            seen.closed_by = "server"
            await browser.close(1011, "the lab server cannot be reached")
        finally:
            await browser.wait_closed()
            seen.closed = True
            protocol = browser.protocol
            if protocol.close_rcvd is not None:
                seen.close_code = protocol.close_rcvd.code
                seen.close_reason = protocol.close_rcvd.reason
            seen.closed_by = seen.closed_by or "browser"

    async def _relay(
        self, browser: ServerConnection, upstream: ClientConnection, seen: Seen
    ) -> None:
        async def inward() -> None:
            async for message in browser:
                seen.log.append(("in", message))
                await upstream.send(message)

        async def outward() -> None:
            async for message in upstream:
                if self.delay:
                    await asyncio.sleep(random.uniform(*self.delay))
                await browser.send(message)  # raises once the browser has sent its close
                seen.log.append(("out", message))

        tasks = [asyncio.create_task(inward()), asyncio.create_task(outward())]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await task
        if upstream.close_code is not None and browser.close_code is None:
            seen.closed_by = "server"  # the target went away: tell the browser why
            rcvd = upstream.close_rcvd
            await browser.close(rcvd.code if rcvd else 1011, rcvd.reason if rcvd else "")


class Recorder(Running):
    """A recording relay in the background; what :func:`start_recorder` returns."""

    def __init__(self, recording: RecordingServer, background: BackgroundLoop) -> None:
        super().__init__(background)
        self.recording = recording

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/``: where the browser connects."""
        return f"ws://{self.recording.host}:{self.recording.port}/"

    @property
    def port(self) -> int:
        return self.recording.port

    def seen(self, run: str | None = None) -> list[Seen]:
        """A copy of the connections seen so far (of one ``run`` only, if given)."""
        if not self.running:
            return []
        everything = self._background.call(lambda: copy.deepcopy(self.recording.seen))
        return [s for s in everything if run is None or s.run == run]

    async def _stop(self) -> None:
        await self.recording.stop()

    def __repr__(self) -> str:
        if not self.running:
            return "<Recorder stopped>"
        return f"<Recorder {self.url} -> {self.recording.target}>"


def start_recorder(target: str, delay: tuple[float, float] | None = None) -> Recorder:
    """Start a recording relay to the WebSocket URL ``target`` on its own background loop;
    with ``delay``, each reply waits a random time in that range (seconds)."""

    async def make(background: BackgroundLoop) -> Recorder:
        return Recorder(await RecordingServer(target, delay=delay).start(), background)

    return _start(make, "rtlab-recorder")
