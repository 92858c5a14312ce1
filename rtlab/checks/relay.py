"""A relay on the cell's own event loop, in front of a check's server.

A check's server runs on a loop of its own, so a learner's client reaches it even when
the learner's coroutine blocks the cell's loop (a ``websockets.sync`` client in an
``async def``): a deadlock that a server on the kernel's loop would show (lesson 02,
section 2) passed unseen. Through this relay, which only runs while the cell's loop is
free, a blocking client hears nothing back, and the relay can tell that it was blocked.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["Relay"]


class Relay:
    """A TCP relay to a server, on the loop it is started on (the cell's): the learner's
    connections pass through it, so they get answers only while that loop is free.
    ``late`` counts the connections it could accept only once ``asking`` (the learner's
    coroutine) was over, ``gave_up`` those whose client closed before any answer came (a
    client waits for the handshake's answer, unless it timed out): either way, made while
    the learner's code blocked the loop."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.asking: asyncio.Future[Any] | None = None  # the learner's coroutine, running
        self.accepted = 0
        self.late = 0
        self.gave_up = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"ws://{host}:{port}"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.asking is not None and self.asking.done():
            self.late += 1
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.add(up_writer)
        answered: list[int] = []  # bytes written to the client, so far

        async def from_client() -> None:
            await _copy(reader, up_writer)
            if not answered:  # the client closed before anything came back
                self.gave_up += 1

        await asyncio.gather(from_client(), _copy(up_reader, writer, answered))

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()


async def _copy(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sizes: list[int] | None = None
) -> None:
    """Bytes from ``reader`` to ``writer`` until the end, then close ``writer``; the size of
    each write is noted in ``sizes``."""
    try:
        while data := await reader.read(65536):
            if sizes is not None:
                sizes.append(len(data))
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
