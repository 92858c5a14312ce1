"""A TCP proxy that counts every byte between clients and a server."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass
class Traffic:
    """Bytes and connections seen by a proxy since it started (or was reset)."""

    connections: int = 0
    to_server: int = 0
    to_client: int = 0

    @property
    def total(self) -> int:
        return self.to_server + self.to_client


class Proxy:
    """Forwards ``host:port`` to ``target_host:target_port``; ``traffic`` counts the bytes."""

    def __init__(
        self, target_host: str, target_port: int, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = port
        self.traffic = Traffic()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        """``ws://HOST:PORT``: connect here instead of to the target."""
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and cut every connection still open."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    def reset(self) -> Traffic:
        """Return the counts so far and start counting from zero."""
        traffic, self.traffic = self.traffic, Traffic()
        return traffic

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._writers.add(client_w)
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            self._writers.discard(client_w)
            return
        self._writers.add(server_w)
        self.traffic.connections += 1
        await asyncio.gather(
            self._pipe(client_r, server_w, upstream=True),
            self._pipe(server_r, client_w, upstream=False),
        )
        self._writers.difference_update((client_w, server_w))

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if upstream:
                    self.traffic.to_server += len(data)
                else:
                    self.traffic.to_client += len(data)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass  # one side went away: close the other
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
