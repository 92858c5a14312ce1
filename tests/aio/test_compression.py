"""permessage-deflate off, on, and above a threshold (rtlab.aio.compression).

Without I/O: a ThresholdDeflate sender and websockets' own receiver stay in step
over any sequence of messages. Over real sockets: what the handshake negotiates,
and the bytes on the wire, counted by the byte-counting proxy or read raw.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import zlib
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect as ws_connect
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import CONT, Frame, Opcode

import rtlab
from rtlab import cli
from rtlab.aio.client import EventClient
from rtlab.aio.compression import (
    DEFAULT_THRESHOLD,
    ThresholdDeflate,
    client_options,
    negotiated,
    threshold,
)
from rtlab.aio.server import LabServer
from rtlab.core import frames

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 20) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def wire_size(payload: int, masked: bool) -> int:
    """Bytes of one unfragmented frame: header, mask key, payload (RFC 6455 §5.2)."""
    header = 2 if payload <= 125 else 4 if payload <= 0xFFFF else 10
    return header + (4 if masked else 0) + payload


# -- the option -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (None, None),
        ("off", None),
        (False, None),
        ("on", 0),
        (True, 0),
        (0, 0),
        (1024, 1024),
        ("1024", 1024),
        ("0", 0),
    ],
)
def test_the_option_means_off_on_or_a_threshold(option, expected):
    assert threshold(option) == expected


@pytest.mark.parametrize("option", [-1, "-5", "fast", 1.5, "", "1e3", [1024]])
def test_a_bad_option_is_refused_clearly(option):
    with pytest.raises(ValueError, match="compression must be 'off', 'on' or a threshold"):
        threshold(option)
    with pytest.raises(ValueError, match="compression must be"):
        LabServer(compression=option)


def test_the_command_line_refuses_a_bad_compression(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["serve", "--port", "0", "--compression", "fast"])
    assert exit.value.code == 2
    assert (
        "rtlab serve: error: argument --compression: must be off, on or a size in bytes"
        " (0 or more), got 'fast'" in capsys.readouterr().err
    )
    assert cli.parser().parse_args(["serve"]).compression == str(DEFAULT_THRESHOLD)


# -- without I/O: the threshold keeps both ends in step ---------------------------------


def pair(limit: int, no_context_takeover: bool) -> tuple[ThresholdDeflate, PerMessageDeflate]:
    """A sender with a threshold and the receiver at the other end (plain websockets)."""
    sender = ThresholdDeflate(no_context_takeover, no_context_takeover, 12, 12, threshold=limit)
    receiver = PerMessageDeflate(no_context_takeover, no_context_takeover, 12, 12)
    return sender, receiver


messages = st.lists(
    st.tuples(
        st.binary(max_size=300) | st.sampled_from([b'{"event":"x","data":"abc"}' * 20, b""]),
        st.integers(min_value=1, max_value=3),  # fragments
    ),
    max_size=25,
)


@settings(max_examples=200)
@given(messages, st.integers(min_value=0, max_value=400), st.booleans())
def test_any_messages_round_trip_and_only_the_big_ones_are_compressed(
    sent, limit, no_context_takeover
):
    sender, receiver = pair(limit, no_context_takeover)
    for payload, parts in sent:
        size = -(-len(payload) // parts) or 1
        chunks = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
        wire = []
        for i, chunk in enumerate(chunks):
            frame = Frame(Opcode.BINARY if i == 0 else CONT, chunk, i == len(chunks) - 1)
            wire.append(sender.encode(frame))
        # RSV1 on the first frame only, and only when the message's first frame is big enough.
        assert wire[0].rsv1 == (len(chunks[0]) >= limit)
        assert not any(f.rsv1 for f in wire[1:])
        received = b"".join(bytes(receiver.decode(f).data) for f in wire)
        assert received == payload
    assert sender.compressed + sender.skipped == len(sent)


def test_a_skipped_message_leaves_the_compression_context_as_it_was():
    sender, receiver = pair(100, no_context_takeover=False)
    big = b'{"event":"receive-message","data":{"message":"hello there"}}' * 5
    first = sender.encode(Frame(Opcode.TEXT, big))
    small = sender.encode(Frame(Opcode.TEXT, b"tiny"))
    second = sender.encode(Frame(Opcode.TEXT, big))
    assert (first.rsv1, small.rsv1, second.rsv1) == (True, False, True)
    assert bytes(small.data) == b"tiny"
    assert len(second.data) < len(first.data) / 4  # the context remembered the first
    for frame, payload in [(first, big), (small, b"tiny"), (second, big)]:
        assert bytes(receiver.decode(frame).data) == payload
    assert (sender.compressed, sender.skipped) == (2, 1)


# -- over real sockets ------------------------------------------------------------------


@pytest.fixture
def servers():
    """A lab server for each setting (no pings: the byte counts stay exact)."""
    started = {
        name: rtlab.start_server(ping_interval=None, compression=option)
        for name, option in [("off", "off"), ("on", "on"), ("1024", 1024)]
    }
    yield started
    for server in started.values():
        server.stop()


def server_extensions(server: Any) -> list[str]:
    """The permessage-deflate parameters of each open connection, as the server sees them."""

    def read() -> list[str]:
        found = []
        for connection in server.server._clients:
            extension = negotiated(connection.protocol.extensions)
            found.append(repr(extension) if extension is not None else "none")
        return found

    return server.call(read)


@pytest.mark.parametrize(
    ("server_option", "client_option", "expected"),
    [
        ("off", "on", None),
        ("on", "off", None),
        ("off", "off", None),
        ("on", "on", 0),
        ("1024", 1024, 1024),
        ("1024", "on", 0),
        ("on", 200, 200),
    ],
)
def test_what_the_handshake_negotiates(servers, server_option, client_option, expected):
    server = servers[server_option]

    async def main() -> None:
        client = await EventClient.connect(server.url, "alice", compression=client_option)
        mine = negotiated(client.connection.protocol.extensions)
        if expected is None:
            assert mine is None
            assert "permessage-deflate" not in str(client.connection.response.headers)
        else:
            assert isinstance(mine, ThresholdDeflate)
            assert mine.threshold == expected  # the client's own threshold, for what it sends
            header = client.connection.response.headers["Sec-WebSocket-Extensions"]
            assert header.startswith("permessage-deflate")
        theirs = await asyncio.to_thread(server_extensions, server)
        assert len(theirs) == 1
        if expected is None:
            assert theirs == ["none"]
        else:
            assert f"threshold={threshold(server_option)})" in theirs[0]
        await client.close()

    run(main())


async def echo_counted(url: str, proxy: Any, messages: list[str], option: Any) -> tuple[int, int]:
    """Send each message to /echo through ``proxy``; the wire bytes each way, after the
    handshake (answers checked: they decode to what was sent)."""
    async with ws_connect(url + "/echo", ping_interval=None, **client_options(option)) as ws:
        await asyncio.to_thread(proxy.reset)
        for message in messages:
            await ws.send(message)
            assert await ws.recv() == f"Echo: {message}"
        traffic = await asyncio.to_thread(lambda: proxy.traffic)
        return traffic.to_server, traffic.to_client


def test_off_puts_exactly_the_payload_and_its_framing_on_the_wire(servers):
    server = servers["off"]
    messages = ["hi", "x" * 200, json.dumps({"event": "e", "data": "y" * 70_000})]
    with rtlab.start_proxy(server) as proxy:
        up, down = run(echo_counted(proxy.url, proxy, messages, "on"))  # the client offers
    assert up == sum(wire_size(len(m.encode()), masked=True) for m in messages)
    assert down == sum(wire_size(len(m.encode()) + 6, masked=False) for m in messages)


def chat_like(i: int) -> str:
    return json.dumps(
        {
            "event": "receive-message",
            "data": {"userId": "alice", "roomId": "lobby", "message": f"message number {i}"},
            "ns": "/",
        }
    )


def test_on_makes_repetitive_json_take_far_fewer_bytes(servers):
    messages = [chat_like(i) for i in range(100)]
    payload = sum(len(m) for m in messages)
    counted = {}
    for name in ("off", "on"):
        with rtlab.start_proxy(servers[name]) as proxy:
            counted[name] = run(echo_counted(proxy.url, proxy, messages, "on"))
    assert counted["off"][1] > payload  # uncompressed: the payload and its framing
    assert counted["on"][0] < counted["off"][0] / 3  # client to server
    assert counted["on"][1] < counted["off"][1] / 3  # server to client


def test_on_with_random_bytes_saves_nothing_but_still_round_trips(servers):
    blobs = [os.urandom(2000) for _ in range(5)]

    async def main(url: str) -> None:
        async with ws_connect(url + "/echo", **client_options("on")) as ws:
            for blob in blobs:
                await ws.send(blob)
                assert await ws.recv() == blob

    run(main(servers["on"].url))


def raw_echo(port: int, messages: list[str]) -> list[frames.Frame]:
    """Open /echo with a hand-made handshake offering permessage-deflate, send each
    message uncompressed, and return the server's frames exactly as they came."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            (
                f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
            ).encode()
        )
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65536)
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        assert b" 101 " in head.split(b"\r\n")[0]
        assert b"permessage-deflate" in head
        received = []
        for message in messages:
            sock.sendall(frames.encode(frames.Frame.text(message), frames.generate_mask()))
            while (decoded := frames.decode(buffer)) is None:
                buffer += sock.recv(65536)
            frame, _, used = decoded
            buffer = buffer[used:]
            received.append(frame)
        return received


def test_threshold_sends_small_messages_plain_and_big_ones_compressed(servers):
    server = servers["1024"]
    small = json.dumps({"event": "x", "data": "s" * 500})  # an echo under 1024 bytes
    big = json.dumps({"event": "x", "data": "b" * 5000})  # far above
    plain, packed = raw_echo(server.port, [small, big])
    assert not plain.rsv1  # RSV1 clear: the payload as it is
    assert plain.payload == f"Echo: {small}".encode()
    assert packed.rsv1
    assert len(packed.payload) < 200
    inflate = zlib.decompressobj(wbits=-15)
    assert inflate.decompress(packed.payload + b"\x00\x00\xff\xff") == f"Echo: {big}".encode()


def test_threshold_counted_by_the_proxy_and_decoded_on_both_sides(servers):
    server = servers["1024"]
    small = "s" * 300
    big = chat_like(0) * 100
    with rtlab.start_proxy(server) as proxy:
        up_small, down_small = run(echo_counted(proxy.url, proxy, [small], 1024))
        up_big, down_big = run(echo_counted(proxy.url, proxy, [big], 1024))
    assert up_small == wire_size(len(small), masked=True)  # exactly: nothing compressed
    assert down_small == wire_size(len(small) + 6, masked=False)
    assert up_big < len(big) / 10
    assert down_big < len(big) / 10


def test_events_cross_a_threshold_server_both_ways(servers):
    server = servers["1024"]
    long = "a long line of chat, " * 20  # ~420 characters: under the 500 limit
    blob = os.urandom(3000)

    async def main() -> None:
        alice = await EventClient.connect(server.url, "alice", compression=1024)
        bob = await EventClient.connect(server.url, "bob", compression="off")
        for client in (alice, bob):
            await client.emit("join-room", "lobby", ack=True)
        for i in range(3):
            await alice.emit("send-message", {"roomId": "lobby", "message": f"{i}"}, ack=True)
            await bob.emit("send-message", {"roomId": "lobby", "message": long}, ack=True)
        assert await alice.emit("heartbeat", {"pad": "p" * 5000, "blob": blob}, ack=True)
        for client in (alice, bob):
            got = await client.wait_for("receive-message", 6)
            assert [m["message"] for m in got] == ["0", long, "1", long, "2", long]
        extension = negotiated(alice.connection.protocol.extensions)
        assert isinstance(extension, ThresholdDeflate)
        assert extension.skipped >= 4  # join, three short messages
        assert extension.compressed == 1  # the 8 kB heartbeat
        assert negotiated(bob.connection.protocol.extensions) is None
        await alice.close()
        await bob.close()

    run(main())


@pytest.mark.parametrize(("option", "offered"), [("off", False), ("on", True), ("2000", True)])
def test_rtlab_serve_takes_the_option(option, offered):
    from tests.cli.test_cli import start, wait_for_line

    process = start("serve", "--port", "0", "--compression", option)
    try:
        url = wait_for_line(process, r"events\s+(ws://127\.0\.0\.1:\d+)/ws").group(1)

        async def main() -> Any:
            client = await EventClient.connect(url, "alice", compression="on")
            agreed = client.connection.response.headers.get("Sec-WebSocket-Extensions")
            await client.close()
            return agreed

        agreed = run(main())
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert (agreed is not None) == offered
