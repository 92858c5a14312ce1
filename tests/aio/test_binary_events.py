"""Binary payloads on /ws over real sockets: custom events carry bytes in binary frames."""

from __future__ import annotations

import asyncio
import json
import os
import struct
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from websockets.asyncio.client import connect as ws_connect

import rtlab
from rtlab.aio.client import AckError, EventClient
from rtlab.core.attachments import pack
from rtlab.notebook.background import RunningServer

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 20) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def lab():
    """A lab server whose ``samples`` handler sends what it gets to a room, bytes and all."""
    with rtlab.start_server() as running:
        server = running.server

        @server.on("samples")
        def samples(session, data):
            delivered = server.emit("samples", data, to=data["roomId"])
            return {"delivered": delivered, "size": len(data["raw"])}

        @server.on("reverse")
        def reverse(session, data):
            return bytes(reversed(data))  # the ack carries bytes: a binary ack frame

        @server.on("samples", ns="/chat")
        def chat_samples(session, data):
            return {"ns": "/chat", "first": data[:1]}

        yield running


def test_a_handler_gets_bytes_and_every_room_member_gets_identical_bytes(lab: RunningServer):
    payload = os.urandom(4000)

    async def main() -> None:
        clients = [await EventClient.connect(lab.url, f"u{i}") for i in range(4)]
        for client in clients[:3]:
            await client.emit("join-room", "lab", ack=True)
        answer = await clients[0].emit(
            "samples", {"roomId": "lab", "raw": payload, "rate": 100}, ack=True
        )
        assert answer == {"delivered": 3, "size": 4000}
        for client in clients[:3]:
            [data] = await client.wait_for("samples")
            assert data == {"roomId": "lab", "raw": payload, "rate": 100}
            assert type(data["raw"]) is bytes
        await clients[3].emit("heartbeat", ack=True)  # a round trip: nothing else came
        assert clients[3].events("samples") == []
        for client in clients:
            await client.close()

    run(main())


def test_the_wire_carries_a_binary_frame_with_the_raw_bytes_and_no_base64(lab: RunningServer):
    payload = bytes(range(256)) * 4

    async def main() -> None:
        async with ws_connect(f"{lab.url}/ws?user=raw") as ws:
            await ws.send(json.dumps({"event": "join-room", "data": "lab", "id": 1}))
            assert json.loads(await ws.recv())["ack"] == 1
            await ws.send(pack({"event": "samples", "data": {"roomId": "lab", "raw": payload}}))
            frame = await ws.recv()
            assert isinstance(frame, bytes)
            (length,) = struct.unpack(">I", frame[:4])
            assert json.loads(frame[4 : 4 + length]) == {
                "event": "samples",
                "data": {"roomId": "lab", "raw": {"_bin": 0}},
                "ns": "/",
                "bin": [1024],
            }
            assert frame[4 + length :] == payload
            assert len(frame) == 4 + length + len(payload)  # no base64: 1:1 on the wire

    run(main())


def test_acks_may_carry_bytes_and_text_events_stay_text(lab: RunningServer):
    async def main() -> None:
        alice = await EventClient.connect(lab.url, "alice")
        assert await alice.emit("reverse", b"\x01\x02\x03", ack=True) == b"\x03\x02\x01"
        assert await alice.emit("samples", b"xyz", ns="/chat", ack=True) == {
            "ns": "/chat",
            "first": b"x",
        }
        await alice.close()
        async with ws_connect(f"{lab.url}/ws?user=bob") as ws:
            await ws.send(json.dumps({"event": "join-room", "data": "lab", "id": 1}))
            assert isinstance(await ws.recv(), str)  # no bytes: a text frame as before
            await ws.send(pack({"event": "reverse", "data": b"ab", "id": 2}))
            answer = await ws.recv()
            assert isinstance(answer, bytes)
            assert answer.endswith(b'{"ack":2,"data":{"_bin":0},"bin":[2]}ba')

    run(main())


def test_the_chat_stays_text_bytes_are_refused_as_a_message(lab: RunningServer):
    async def main() -> None:
        alice = await EventClient.connect(lab.url, "alice")
        await alice.emit("join-room", "lobby", ack=True)
        with pytest.raises(AckError) as refused:
            await alice.emit(
                "send-message", {"roomId": "lobby", "message": b"hi"}, ack=True, timeout=5
            )
        assert refused.value.code == "invalid"
        await alice.emit("send-message", {"roomId": "lobby", "message": "hi"}, ack=True)
        [message] = await alice.wait_for("receive-message")
        assert message["message"] == "hi"
        await alice.close()

    run(main())


BAD_FRAMES = [
    (b"\x00\x01", "got 2 bytes"),
    (struct.pack(">I", 100) + b"{}", "the envelope's length is 100 bytes"),
    (struct.pack(">I", 5) + b"{nope", "not valid JSON"),
    (struct.pack(">I", 14) + b'{"event":"x"} ', "'bin' must be a list"),
    (struct.pack(">I", 24) + b'{"event":"x","bin":[5]} ' + b"ab", "says 5 bytes"),
    (pack({"event": "x", "data": b"a"}).replace(b'"_bin":0', b'"_bin":7'), "names no attach"),
    (pack({"event": "x", "data": b"a"}).replace(b'{"_bin":0}', b'"aaaaaaaa"'), "is not used"),
]


def test_malformed_binary_frames_get_invalid_errors_and_the_connection_stays(
    lab: RunningServer,
):
    async def main() -> None:
        alice = await EventClient.connect(lab.url, "alice")
        for count, (frame, words) in enumerate(BAD_FRAMES, 1):
            await alice.connection.send(frame)
            errors = await alice.wait_for("error", count)
            assert errors[-1]["code"] == "invalid", errors[-1]
            assert errors[-1]["message"].startswith("binary frame: ")
            assert words in errors[-1]["message"], errors[-1]
            assert await alice.emit("reverse", b"ok", ack=True) == b"ko"  # still served
        # With a readable id, the refusal names it, and the client's request fails at once.
        bad = pack({"event": "reverse", "data": b"a", "id": 999}).replace(b"[1]", b"[2]")
        await alice.connection.send(bad)
        errors = await alice.wait_for("error", len(BAD_FRAMES) + 1)
        assert errors[-1]["ref"] == 999
        assert not alice.closed
        await alice.close()

    run(main())


def test_the_synchronous_client_sends_and_receives_bytes(lab: RunningServer):
    payload = os.urandom(100_000)
    with rtlab.connect(lab, "alice") as alice, rtlab.connect(lab, "bob") as bob:
        alice.emit("join-room", "lab", ack=True)
        bob.emit("join-room", "lab", ack=True)
        assert alice.emit("samples", {"roomId": "lab", "raw": payload}, ack=True)["size"] == len(
            payload
        )
        [got] = bob.wait_for("samples")
        assert got["raw"] == payload
        assert alice.emit("reverse", bytearray(b"abc"), ack=True) == b"cba"


def test_a_reconnecting_client_queues_and_sends_bytes(lab: RunningServer):
    with rtlab.connect(lab, "alice", reconnection=True) as alice:
        assert alice.emit("reverse", memoryview(b"queued"), ack=True) == b"deueuq"
