"""The lab server reads a client's frames itself (InlineConnection._walk): whatever the
frames and however TCP cuts them, every event is answered once and in order, pings get
their pongs, and what websockets refuses is still refused with its own close code.

Raw sockets to a real lab server: hypothesis draws events (answered at once, or by a
handler that awaits, so that later ones queue in websockets), pings, fragmented messages
and messages past the size read here, then cuts the byte stream anywhere.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.frames import Frame

import rtlab
from rtlab.aio.inline import CARRY
from rtlab.core import frames

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
users = itertools.count()


def frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True) -> bytes:
    """A client's frame (``masked=False``: one that breaks the rule)."""
    key = frames.generate_mask() if masked else None
    return frames.encode(frames.Frame(frames.Opcode(opcode), payload, fin), key)


def event(name: str, n: int, pad: int = 0) -> bytes:
    return json.dumps({"event": name, "data": {"n": n, "pad": "x" * pad}, "id": n}).encode()


@pytest.fixture(scope="module")
def lab():
    with rtlab.start_server(rate_limit=None, compression="off") as running:
        server = running.server

        @server.on("echo")
        def echo(session, data):
            return data["n"]

        @server.on("slow")
        async def slow(session, data):
            await asyncio.sleep(0.002)
            return data["n"]

        yield running


def opened(lab, before: bytes = b"") -> socket.socket:
    """A raw connection to /ws, its handshake answered (``before``: sent with the request)."""
    raw = socket.create_connection(("127.0.0.1", lab.port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = (
        f"GET /ws?user=walker{next(users)} HTTP/1.1\r\nHost: 127.0.0.1:{lab.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    raw.sendall(request.encode() + before)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += raw.recv(1)  # one byte at a time: frames after the answer stay unread
    assert answer.startswith(b"HTTP/1.1 101 "), answer
    return raw


class Reader:
    """The server's frames, one at a time."""

    def __init__(self, raw: socket.socket) -> None:
        self.raw, self.buffer = raw, b""

    def next(self) -> tuple[int, bytes]:
        while (found := frames.decode(self.buffer)) is None:
            chunk = self.raw.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.buffer += chunk
        got, _, used = found
        self.buffer = self.buffer[used:]
        return got.opcode, got.payload


def send_cut(raw: socket.socket, stream: bytes, cuts: list[int]) -> None:
    """``stream`` in pieces, cut at ``cuts``, each its own write (and, mostly, read)."""
    start = 0
    for cut in [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]:
        if cut > start:
            raw.sendall(stream[start:cut])
            time.sleep(0.0005)
            start = cut


item = st.one_of(
    st.tuples(st.just("echo"), st.sampled_from([0, 0, 0, 100, 200, 70_000])),
    st.tuples(st.just("slow"), st.just(0)),
    st.tuples(st.just("ping"), st.integers(0, 125)),
    st.tuples(st.just("fragments"), st.integers(2, 4)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(item, min_size=1, max_size=12), cuts=st.lists(st.integers(0, 2**20)))
def test_every_event_is_answered_once_in_order_however_tcp_cuts_it(lab, items, cuts):
    stream, acks, pongs = b"", [], []
    for n, (kind, size) in enumerate(items):
        if kind == "ping":
            payload = bytes([n % 256]) * size
            stream += frame(0x9, payload)
            pongs.append(payload)
        elif kind == "fragments":
            message = event("echo", n)
            step = -(-len(message) // size)
            parts = [message[i : i + step] for i in range(0, len(message), step)]
            for k, part in enumerate(parts):
                stream += frame(0x1 if k == 0 else 0x0, part, fin=k == len(parts) - 1)
            acks.append(n)
        else:
            stream += frame(0x1, event(kind, n, size))
            acks.append(n)
    raw = opened(lab)
    try:
        send_cut(raw, stream, cuts)
        reader, got_acks, got_pongs = Reader(raw), [], []
        while len(got_acks) < len(acks) or len(got_pongs) < len(pongs):
            opcode, payload = reader.next()
            if opcode == 0xA:
                got_pongs.append(payload)
            elif opcode == 0x1:
                answer = json.loads(payload)
                if "ack" in answer:
                    assert "error" not in answer, answer
                    assert answer["data"] == answer["ack"]
                    got_acks.append(answer["ack"])
        assert got_acks == acks
        assert got_pongs == pongs
    finally:
        raw.close()


def test_plain_events_are_read_here_and_the_rest_by_websockets(lab, monkeypatch):
    """The walk is what reads a plain event: websockets' frame parser starts once (for
    the first frame, then never fed) and reads only the ping."""
    parse = Frame.parse.__func__
    started = []

    def counted(cls, *args, **kwargs):
        started.append(1)
        return (yield from parse(cls, *args, **kwargs))

    raw = opened(lab)
    with raw:
        monkeypatch.setattr(Frame, "parse", classmethod(counted))
        raw.sendall(b"".join(frame(0x1, event("echo", n)) for n in range(20)))
        reader = Reader(raw)
        assert [json.loads(reader.next()[1])["ack"] for _ in range(20)] == list(range(20))
        assert started == []  # websockets' parser still waits for the first frame's header
        raw.sendall(frame(0x9, b"hi") + frame(0x1, event("echo", 20)))
        assert reader.next() == (0xA, b"hi")
        assert json.loads(reader.next()[1])["ack"] == 20
        # websockets read the ping (with the parser it had waiting for a header since the
        # handshake), then started one for the next frame: the event, read here instead.
        assert len(started) == 1


def closed_with(raw: socket.socket) -> int:
    reader = Reader(raw)
    while True:
        opcode, payload = reader.next()
        if opcode == 0x8:
            return frames.decode_close(payload)[0]


def test_a_frame_of_invalid_utf8_is_closed_1007(lab):
    raw = opened(lab)
    with raw:
        raw.sendall(frame(0x1, event("echo", 1)) + frame(0x1, b'{"event":"\xff"}'))
        assert closed_with(raw) == 1007


def test_an_unmasked_frame_is_closed_1002(lab):
    raw = opened(lab)
    with raw:
        raw.sendall(frame(0x1, event("echo", 1), masked=False))
        assert closed_with(raw) == 1002


def test_a_message_past_max_size_is_closed_1009(lab):
    raw = opened(lab)
    with raw:
        raw.sendall(frame(0x1, event("echo", 1, 2**20)))
        assert closed_with(raw) == 1009


def test_a_new_message_inside_a_fragmented_one_is_closed_1002(lab):
    raw = opened(lab)
    with raw:
        raw.sendall(frame(0x1, b'{"event":', fin=False) + frame(0x1, event("echo", 1)))
        assert closed_with(raw) == 1002


def test_frames_sent_with_the_request_are_answered_in_order(lab):
    """Before the handshake's answer (which RFC 6455 forbids, and websockets takes):
    websockets reads this connection's frames, the walk never starts."""
    raw = opened(lab, before=frame(0x1, event("echo", 1)) + frame(0x1, event("slow", 2)))
    with raw:
        raw.sendall(frame(0x1, event("echo", 3)))
        reader, acks = Reader(raw), []
        while len(acks) < 3:
            _, payload = reader.next()
            acks.append(json.loads(payload)["ack"])
        assert acks == [1, 2, 3]


def test_a_frame_waits_here_for_its_end_only_up_to_carry(lab):
    """A frame cut in two is kept here up to CARRY bytes; a bigger one goes to websockets
    as it comes: both are answered."""
    raw = opened(lab)
    with raw:
        for n, pad in ((1, CARRY // 2), (2, 2 * CARRY)):
            data = frame(0x1, event("echo", n, pad))
            raw.sendall(data[: len(data) // 2])
            time.sleep(0.05)
            raw.sendall(data[len(data) // 2 :])
            _, payload = Reader(raw).next()
            assert json.loads(payload) == {"ack": n, "data": n}


def test_a_frame_begun_here_when_the_server_closes_goes_on_to_websockets(lab):
    """The hub closes a connection (1008, too many refused messages) while the start of
    the next frame waits here for its end: its end, when it comes, is websockets' to
    read, and nothing fails on the server (a failed data_received would be in its log)."""
    before = len(lab.log)
    raw = opened(lab)
    with raw:
        refused = frame(0x1, b"not json") * 40  # past the 30 refusals a session may earn
        last = frame(0x1, event("echo", 1))
        raw.sendall(refused + last[:5])
        time.sleep(0.1)
        raw.sendall(last[5:] + frame(0x9, b"after"))
        assert closed_with(raw) == 1008
        time.sleep(0.1)
    failed = [line for line in lab.log[before:] if "error" in line.lower()]
    assert failed == []
