"""Corked writes and the slow-consumer drop, on websockets' sans-I/O protocol, a fake transport."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import pytest
from websockets.asyncio.server import broadcast
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from rtlab.aio.corked_writes import CorkedWriter, send_data, text_frame


class Transport:
    """What CorkedWriter and send_data use of an asyncio transport, recorded."""

    def __init__(self, *, tls: bool = False, buffered: int = 0, stuck: bool = False) -> None:
        self.tls = tls
        self.buffered = buffered
        self.stuck = stuck  # a peer that reads nothing: every byte written stays buffered
        self.calls: list[Any] = []

    def write(self, data: bytes) -> None:
        self.calls.append(bytes(data))
        if self.stuck:
            self.buffered += len(data)

    def can_write_eof(self) -> bool:
        return not self.tls  # asyncio's SSL transport cannot half-close

    def write_eof(self) -> None:
        self.calls.append("eof")

    def close(self) -> None:
        self.calls.append("close")

    def get_write_buffer_size(self) -> int:
        return self.buffered


class Connection:
    """A server connection's protocol (websockets' own, open) on a fake transport."""

    def __init__(self, transport: Transport) -> None:
        self.protocol = ServerProtocol(state=State.OPEN)
        self.transport = transport
        self.send_in_progress: asyncio.Future[None] | None = None
        self.logger = logging.getLogger("test")


def frames(data: bytes) -> list[Frame]:
    """Parse what a server wrote (unmasked frames)."""
    parsed = []
    while data:
        length = data[1] & 0x7F
        parsed.append(Frame(Opcode(data[0] & 0x0F), data[2 : 2 + length]))
        data = data[2 + length :]
    return parsed


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70_000])
def test_a_text_frame_made_here_is_the_one_websockets_makes(size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert text_frame(data) == Frame(Opcode.TEXT, data).serialize(mask=False)


def test_a_compressed_connection_gets_its_frames_from_websockets():
    """permessage-deflate: the frame made here would be wrong, websockets makes it."""
    from websockets.extensions.permessage_deflate import PerMessageDeflate

    transport = Transport()
    connection = Connection(transport)
    connection.protocol.extensions = [PerMessageDeflate(False, False, 15, 15)]
    writer = CorkedWriter(2**20, lambda owner: None)

    async def main() -> None:
        writer.write("a", connection, b"hello hello hello", True)
        await asyncio.sleep(0)  # the turn ends: the corked frame goes out

    asyncio.run(main())
    [sent] = transport.calls
    assert sent[0] == 0xC1  # FIN, RSV1 (compressed), text
    assert sent != text_frame(b"hello hello hello")


def test_send_data_joins_the_data_then_half_closes_without_tls():
    connection = Connection(Transport())
    connection.protocol.send_text(b"a")
    connection.protocol.send_text(b"b")
    connection.protocol.fail(1011)  # a close frame, then the end of the stream
    send_data(connection)  # type: ignore[arg-type]
    written, eof = connection.transport.calls
    assert [f.opcode for f in frames(written)] == [Opcode.TEXT, Opcode.TEXT, Opcode.CLOSE]
    assert eof == "eof"


def test_send_data_closes_the_transport_on_tls_which_cannot_half_close():
    connection = Connection(Transport(tls=True))
    connection.protocol.send_text(b"a")
    connection.protocol.fail(1011)
    send_data(connection)  # type: ignore[arg-type]
    assert connection.transport.calls[1:] == ["close"]


def test_frames_of_one_turn_go_out_in_one_write_and_the_overflowing_are_reported():
    over: list[str] = []

    async def main() -> tuple[list[Any], list[Any]]:
        writer = CorkedWriter[str](max_buffer=100, overflow=over.append)
        quiet, backed_up = Connection(Transport()), Connection(Transport(buffered=500))
        for text in (b"1", b"2", b"3"):
            writer.write("quiet", quiet, text, True)  # type: ignore[arg-type]
        writer.write("backed up", backed_up, b"x", False)  # type: ignore[arg-type]
        assert quiet.transport.calls == []  # corked until the loop turns
        await asyncio.sleep(0)
        return quiet.transport.calls, backed_up.transport.calls

    quiet, backed_up = asyncio.run(main())
    assert [f.data for f in frames(quiet[0])] == [b"1", b"2", b"3"] and len(quiet) == 1
    assert [f.opcode for f in frames(backed_up[0])] == [Opcode.BINARY]  # written at once
    assert over == ["backed up"]


def test_a_burst_past_the_bound_in_one_turn_is_written_and_reported_at_once():
    """Frames of one turn are corked, but not past max_buffer: the reader that stopped is
    reported at the frame that passes the bound, not a turn's worth of frames later."""
    over: list[int] = []

    async def main() -> list[int]:
        stuck = Connection(Transport(stuck=True))
        queued: list[bytes] = []
        writer = CorkedWriter[str](max_buffer=100, overflow=lambda _: over.append(len(queued)))
        for _ in range(10):  # 40 bytes each: the third passes 100
            queued.append(b"x" * 40)
            writer.write("stuck", stuck, queued[-1], True)  # type: ignore[arg-type]
        await asyncio.sleep(0)
        return [len(call) for call in stuck.transport.calls]

    writes = asyncio.run(main())
    assert over[0] == 3
    assert writes[0] == 3 * 42  # the three frames, in one write


def test_closing_connections_and_fragmented_sends_are_skipped_as_broadcast_skips_them():
    async def main() -> tuple[list[Any], list[Any]]:
        writer = CorkedWriter[str](max_buffer=100, overflow=print)
        closing, fragmenting = Connection(Transport()), Connection(Transport())
        closing.protocol.state = State.CLOSING
        fragmenting.send_in_progress = asyncio.get_running_loop().create_future()
        writer.write("closing", closing, b"x", True)  # type: ignore[arg-type]
        writer.write("fragmenting", fragmenting, b"x", True)  # type: ignore[arg-type]
        await asyncio.sleep(0)
        return closing.protocol.data_to_send(), fragmenting.protocol.data_to_send()

    assert asyncio.run(main()) == ([], [])


def test_websockets_broadcast_still_skips_on_send_in_progress():
    """CorkedWriter follows this rule of websockets.broadcast; a change upstream shows here."""
    assert "connection.send_in_progress is not None" in inspect.getsource(broadcast)
