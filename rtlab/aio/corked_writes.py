"""Writes to many connections without waiting: corked per turn of the loop, the slow dropped.

A connection that gets several messages in one turn of the event loop (acks of events
in flight, a room's messages) gets them in one system call instead of one each (rtlab
bench: +50% round trips and fan-out deliveries per server CPU second). Frames queue in
the connection's own websockets buffer (the sans-I/O protocol), so their order with
every other write is kept, and go out as websockets' ``Connection.send_data`` writes
them (:func:`send_data`). A connection is skipped as ``websockets.broadcast`` skips it:
when it is not open, or while it sends a fragmented message. A connection that already
has bytes waiting in its transport gains nothing from waiting: it is written now, and
reported to ``overflow`` once more than ``max_buffer`` bytes wait; so is one whose frames
of this turn alone pass ``max_buffer`` (a burst to a reader that stopped), so that it is
reported at most one message past the bound.

A text frame to a connection without extensions (no compression) is written here, its
header in one ``struct`` call: what websockets' ``Frame.serialize`` makes of it, without
the checks a frame the server makes cannot fail, nor a ``BytesIO``; and once for all the
members of a room that get the same data. It was a sixth of the chat message's CPU time
(py-spy, rtlab bench chat, rooms of 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from websockets.asyncio.connection import Connection
from websockets.protocol import Side, State

OPEN = State.OPEN
SERVER = Side.SERVER
_SHORT, _MEDIUM, _LONG = (
    struct.Struct("!BB").pack,
    struct.Struct("!BBH").pack,
    struct.Struct("!BBQ").pack,
)

K = TypeVar("K", bound=Hashable)


def send_data(connection: Connection) -> None:
    """``Connection.send_data`` of websockets, with the data before an end of stream
    joined into one write: what the protocol queued, then the half-close (or, on TLS,
    which cannot half-close, the close) it may ask for."""
    write_chunks(connection.transport, connection.protocol.data_to_send())


def text_frame(data: bytes) -> bytes:
    """A server's unmasked, final text frame of ``data``, uncompressed."""
    n = len(data)
    if n < 126:
        return _SHORT(0x81, n) + data
    if n < 65536:
        return _MEDIUM(0x81, 126, n) + data
    return _LONG(0x81, 127, n) + data


def write_chunks(transport: asyncio.Transport, chunks: list[bytes]) -> None:
    """What :func:`send_data` writes of the chunks the protocol gave (b"": end of stream)."""
    if all(chunks):  # no end of stream among them: the usual case, one write
        if chunks:
            transport.write(b"".join(chunks))
        return
    pending: list[bytes] = []
    for data in chunks:
        if data:
            pending.append(data)
            continue
        if pending:
            transport.write(b"".join(pending))
            pending = []
        if transport.can_write_eof():
            # write_eof() documents no exception; OSError is plausible, uvloop's RuntimeError.
            with contextlib.suppress(Exception):
                transport.write_eof()
        else:
            transport.close()
    if pending:
        transport.write(b"".join(pending))


class CorkedWriter(Generic[K]):
    """Frames for many connections, written once per turn of the loop (see module).

    ``K`` names a connection's owner (a session), handed to ``overflow``."""

    def __init__(self, max_buffer: int, overflow: Callable[[K], None]) -> None:
        self.max_buffer = max_buffer
        self.overflow = overflow
        # owner -> [its connection, the bytes of its frames queued this turn]
        self._corked: dict[K, list[Any]] = {}
        self._framed = (b"", b"")  # the last data written as a text frame, and its frame

    def write(self, owner: K, connection: Connection, data: bytes, text: bool) -> None:
        """Queue one frame; the frames queued in one turn of the loop go out in one write."""
        protocol = connection.protocol
        if protocol.state is not OPEN:
            return  # closing: as websockets.broadcast, skip it
        if getattr(connection, "send_in_progress", None) is not None:
            # A fragmented message is being sent: as websockets.broadcast, skip it (rtlab
            # sends none; older websockets named it fragmented_send_waiter).
            connection.logger.warning("skipped write: sending a fragmented message")
            return
        if text and not protocol.extensions and protocol.side is SERVER:
            # protocol.send_text(data), the frame made here (see module); no fragmented
            # message can be in progress, since send_in_progress is None.
            if data is not self._framed[0]:  # a room's members share one frame
                self._framed = (data, text_frame(data))
            protocol.writes.append(self._framed[1])
        elif text:
            protocol.send_text(data)
        else:
            protocol.send_binary(data)
        if connection.transport.get_write_buffer_size():
            self.flush(owner, connection)
            return
        corked = self._corked
        queued = corked.get(owner)
        if queued is None:  # its first frame this turn
            if not corked:
                asyncio.get_running_loop().call_soon(self._uncork)
            corked[owner] = [connection, len(data)]
            if len(data) <= self.max_buffer:
                return
        else:
            queued[1] += len(data)
            if queued[1] <= self.max_buffer:
                return
        del corked[owner]  # this turn's frames alone pass the bound
        self.flush(owner, connection)

    def _uncork(self) -> None:
        corked, self._corked = self._corked, {}
        max_buffer = self.max_buffer
        for owner, (connection, _) in corked.items():
            # flush(), inlined: once per member of every room message
            transport = connection.transport
            write_chunks(transport, connection.protocol.data_to_send())
            if transport.get_write_buffer_size() > max_buffer:
                self.overflow(owner)

    def flush(self, owner: K, connection: Connection) -> None:
        """Write what is queued for ``connection`` now; ``overflow`` if over ``max_buffer``."""
        send_data(connection)
        if connection.transport.get_write_buffer_size() > self.max_buffer:
            self.overflow(owner)
