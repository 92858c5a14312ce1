"""A TCP proxy that counts every byte and injects faults: latency, a bandwidth cap, freezes, cuts.

Put it between a client and a server, then change its faults while traffic flows::

    proxy = await Proxy("127.0.0.1", server_port).start()
    proxy.latency = 0.2       # every byte arrives 200 ms later, each way
    proxy.bandwidth = 10_000  # at most 10 kB/s each way, per connection
    proxy.freeze()            # stop forwarding, keep the sockets open (a half-open link)
    proxy.thaw()
    proxy.cut()               # close every connection, both sides
    proxy.cut_after = 100     # each connection carries 100 more bytes, then is cut
    proxy.refuse_upgrades = True  # answer a WebSocket upgrade request 403, as some proxies do
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from rtlab.core.wirelog import CAP, TO_CLIENT, TO_SERVER, WireLog

CHUNK = 65536
REFUSAL = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def asks_upgrade(data: bytes) -> bool:
    """Whether a chunk from the client is an HTTP request to upgrade to WebSocket."""
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    return head.startswith(b"get ") and b"\r\nupgrade: websocket" in head


@dataclass
class Traffic:
    """Bytes and connections seen by a proxy since it started (or was reset)."""

    connections: int = 0
    to_server: int = 0
    to_client: int = 0

    @property
    def total(self) -> int:
        return self.to_server + self.to_client


class _Link:
    """One client connection and its connection to the target."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.writers = (client, server)
        self.budget: int | None = None  # bytes left before a cut, when cut_after is set
        self.conn = 0  # its number in the proxy's wire log, when capturing

    def cut(self, abort: bool = False) -> None:
        for writer in self.writers:
            if abort:
                writer.transport.abort()
            else:
                writer.close()


class Proxy:
    """Forwards ``host:port`` to ``target_host:target_port``; see the module's docstring."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        capture: bool = False,
        cap: int = CAP,
    ) -> None:
        self.target = (target_host, target_port)
        self.wire = WireLog(cap) if capture else None  # what crossed, decoded
        self._started = time.monotonic()
        self.host = host
        self.port = port
        self.traffic = Traffic()
        self.latency = 0.0  # seconds added each way
        self.bandwidth: float | None = None  # bytes per second, each way, per connection
        self.refuse_upgrades = False  # answer WebSocket upgrade requests 403, then close
        self.refused = 0  # upgrade requests refused so far
        self._cut_after: int | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()

    @property
    def url(self) -> str:
        """``ws://HOST:PORT``: connect here instead of to the target."""
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def connections(self) -> int:
        """Connections open through the proxy right now."""
        return len(self._links)

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and cut every connection still open."""
        if self._server is None:
            return
        self._server.close()
        self._flowing.set()
        self.cut()
        await self._server.wait_closed()
        self._server = None

    def reset(self) -> Traffic:
        """Return the counts so far and start counting from zero."""
        traffic, self.traffic = self.traffic, Traffic()
        return traffic

    # -- faults --------------------------------------------------------------------------

    def freeze(self) -> None:
        """Stop forwarding in both directions; the sockets stay open, as on a dead link."""
        self._flowing.clear()

    def thaw(self) -> None:
        """Forward again what was held back, and everything after it."""
        self._flowing.set()

    @property
    def frozen(self) -> bool:
        return not self._flowing.is_set()

    def cut(self, abort: bool = False) -> int:
        """Close every open connection on both sides (``abort``: reset, no FIN); how many."""
        links = list(self._links)
        for link in links:
            link.cut(abort)
        return len(links)

    @property
    def cut_after(self) -> int | None:
        return self._cut_after

    @cut_after.setter
    def cut_after(self, count: int | None) -> None:
        """Let each open and future connection carry ``count`` more bytes, then cut it."""
        if count is not None and count < 0:
            raise ValueError(f"cut_after must be 0 or more bytes, got {count}")
        self._cut_after = count
        for link in self._links:
            link.budget = count

    # -- forwarding ----------------------------------------------------------------------

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        link = _Link(client_w, server_w)
        link.budget = self._cut_after
        if self.wire is not None:
            link.conn = self.wire.open()
        self._links.add(link)
        self.traffic.connections += 1
        try:
            await asyncio.gather(
                self._pipe(link, client_r, server_w, upstream=True),
                self._pipe(link, server_r, client_w, upstream=False),
            )
        finally:
            self._links.discard(link)
            if self.wire is not None:
                self.wire.close(link.conn)

    async def _pipe(
        self,
        link: _Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        upstream: bool,
    ) -> None:
        # A delay line: chunks are read as they come and written once their time is due,
        # so latency delays bytes without slowing the flow down.
        due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def read() -> None:
            try:
                while data := await reader.read(CHUNK):
                    await self._flowing.wait()
                    if upstream and self.refuse_upgrades and asks_upgrade(data):
                        self.refused += 1
                        link.writers[0].write(REFUSAL)  # sent before the close below
                        link.cut()
                        break
                    due.put_nowait((time.monotonic() + self.latency, data))
            except ConnectionError:
                pass
            finally:
                due.put_nowait((0.0, b""))

        async def write() -> None:
            while True:
                at, data = await due.get()
                if not data:
                    return
                await asyncio.sleep(at - time.monotonic())
                await self._flowing.wait()
                if link.budget is not None:
                    data = data[: link.budget]
                    link.budget -= len(data)
                while data:
                    # Under a bandwidth cap, write in slices of 1/20 s worth of bytes.
                    size = max(1, int(self.bandwidth / 20)) if self.bandwidth else len(data)
                    piece, data = data[:size], data[size:]
                    if upstream:
                        self.traffic.to_server += len(piece)
                    else:
                        self.traffic.to_client += len(piece)
                    writer.write(piece)
                    if self.wire is not None:
                        at = time.monotonic() - self._started
                        self.wire.feed(link.conn, TO_SERVER if upstream else TO_CLIENT, piece, at)
                    await writer.drain()
                    if self.bandwidth:
                        await asyncio.sleep(len(piece) / self.bandwidth)
                if link.budget == 0:
                    link.cut()
                    return

        reading = asyncio.ensure_future(read())
        try:
            await write()
        except ConnectionError:
            pass  # one side went away: close the other
        finally:
            reading.cancel()
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await reading
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
