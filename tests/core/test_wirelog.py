"""The wire log: HTTP then WebSocket frames, decoded from raw bytes fed in any pieces."""

from __future__ import annotations

import zlib

import pytest

from rtlab.core import frames
from rtlab.core.frames import Frame
from rtlab.core.wirelog import KEEP, TO_CLIENT, TO_SERVER, WireLog, preview

REQUEST = (
    b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:54321\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
SWITCH = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
)
MASK = b"\x01\x02\x03\x04"


def upgraded(extensions: str = "") -> tuple[WireLog, int]:
    wire = WireLog()
    conn = wire.open()
    wire.feed(conn, TO_SERVER, REQUEST, 0.0)
    extra = f"Sec-WebSocket-Extensions: {extensions}\r\n".encode() if extensions else b""
    wire.feed(conn, TO_CLIENT, SWITCH + extra + b"\r\n", 0.1)
    return wire, conn


def frames_of(wire: WireLog) -> list[tuple[str, str, bool, bool, int, bytes | str]]:
    return [
        (r.direction, r.opcode, r.fin, r.masked, r.length, r.payload)
        for r in wire.records
        if r.kind == "frame"
    ]


def deflate(stream: zlib._Compress, text: str) -> bytes:  # type: ignore[name-defined]
    data = stream.compress(text.encode()) + stream.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]  # RFC 7692: the sender removes the empty block's tail


def test_a_handshake_then_frames_both_ways():
    wire, conn = upgraded()
    wire.feed(conn, TO_SERVER, frames.encode(Frame.text("hello"), MASK), 0.2)
    wire.feed(conn, TO_CLIENT, frames.encode(Frame.text("Echo: hello")), 0.3)
    wire.feed(conn, TO_SERVER, frames.encode(Frame.close(1000, "bye"), MASK), 0.4)
    wire.feed(conn, TO_CLIENT, frames.encode(Frame.close(1000, "bye")), 0.5)
    assert wire.text() == (
        "conn  dir  opcode  FIN  RSV1  MASK  length  data\n"
        "   1  C→S  HTTP                          0  GET /echo HTTP/1.1\n"
        "   1  S→C  HTTP                          0  HTTP/1.1 101 Switching Protocols\n"
        "   1  C→S  TEXT    1    0     1          5  hello\n"
        "   1  S→C  TEXT    1    0     0         11  Echo: hello\n"
        "   1  C→S  CLOSE   1    0     1          5  1000 bye\n"
        "   1  S→C  CLOSE   1    0     0          5  1000 bye"
    )
    times = [r.time for r in wire.records]
    assert times == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    close = wire.records[-1]
    assert (close.close_code, close.close_reason) == (1000, "bye")


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_pieces_of_any_size_decode_the_same(size):
    data = (
        REQUEST + frames.encode(Frame.text("x" * 300), MASK) + frames.encode(Frame.ping(b"p"), MASK)
    )
    reply = SWITCH + b"\r\n" + frames.encode(Frame.binary(bytes(range(200))))
    whole = WireLog()
    conn = whole.open()
    whole.feed(conn, TO_SERVER, REQUEST, 0)
    whole.feed(conn, TO_CLIENT, reply, 0)
    whole.feed(conn, TO_SERVER, data[len(REQUEST) :], 0)
    pieces = WireLog()
    conn = pieces.open()
    for i in range(0, len(REQUEST), size):
        pieces.feed(conn, TO_SERVER, REQUEST[i : i + size], 0)
    for i in range(0, len(reply), size):
        pieces.feed(conn, TO_CLIENT, reply[i : i + size], 0)
    rest = data[len(REQUEST) :]
    for i in range(0, len(rest), size):
        pieces.feed(conn, TO_SERVER, rest[i : i + size], 0)
    assert pieces.records == whole.records
    assert frames_of(pieces) == [
        (TO_CLIENT, "BINARY", True, False, 200, bytes(range(200))),
        (TO_SERVER, "TEXT", True, True, 300, "x" * 300),
        (TO_SERVER, "PING", True, True, 1, "p"),
    ]


def test_a_fragmented_message_with_a_ping_between_its_fragments():
    wire, conn = upgraded()
    for frame in (
        Frame.text("Hel", fin=False),
        Frame.ping(b""),
        Frame(frames.Opcode.CONTINUATION, b"lo"),
    ):
        wire.feed(conn, TO_CLIENT, frames.encode(frame), 1)
    assert frames_of(wire) == [
        (TO_CLIENT, "TEXT", False, False, 3, "Hel"),
        (TO_CLIENT, "PING", True, False, 0, ""),
        (TO_CLIENT, "CONTINUATION", True, False, 2, "lo"),
    ]


def test_lengths_of_16_and_64_bits_and_a_payload_kept_only_in_part():
    wire, conn = upgraded()
    wire.feed(conn, TO_SERVER, frames.encode(Frame.text("a" * 70_000), MASK), 1)
    wire.feed(conn, TO_CLIENT, frames.encode(Frame.binary(b"\xff" * 1000)), 1)
    big, medium = wire.records[2:]
    assert (big.length, big.truncated, len(big.payload)) == (70_000, True, KEEP)
    assert big.payload == "a" * KEEP  # unmasked
    assert (medium.length, medium.truncated) == (1000, False)
    assert big.preview.endswith("a…")
    assert medium.preview.startswith("binary ff ff")


def test_compressed_messages_are_inflated_with_context_takeover():
    wire, conn = upgraded("permessage-deflate")
    stream = zlib.compressobj(wbits=-15)
    first, second = deflate(stream, "hello hello hello"), deflate(stream, "hello hello hello")
    assert len(second) < len(first)  # the second leans on the first: context takeover
    for payload in (first, second):
        frame = Frame(frames.Opcode.TEXT, payload, rsv1=True)
        wire.feed(conn, TO_CLIENT, frames.encode(frame), 1)
    records = wire.records[2:]
    assert [(r.rsv1, r.length, r.inflated, r.payload) for r in records] == [
        (True, len(first), 17, "hello hello hello"),
        (True, len(second), 17, "hello hello hello"),
    ]
    assert wire.text().splitlines()[-1].endswith("hello hello hello  (inflated to 17)")


def test_no_context_takeover_starts_each_message_afresh():
    wire, conn = upgraded("permessage-deflate; client_no_context_takeover")
    for _ in range(2):
        payload = deflate(zlib.compressobj(wbits=-15), "same again")
        frame = Frame(frames.Opcode.TEXT, payload, rsv1=True)
        wire.feed(conn, TO_SERVER, frames.encode(frame, MASK), 1)
    assert [r.payload for r in wire.records[2:]] == ["same again", "same again"]


def test_a_fragmented_compressed_message_inflates_across_fragments():
    wire, conn = upgraded("permessage-deflate")
    payload = deflate(zlib.compressobj(wbits=-15), "one message in two frames")
    head, tail = payload[:5], payload[5:]
    wire.feed(
        conn, TO_CLIENT, frames.encode(Frame(frames.Opcode.TEXT, head, fin=False, rsv1=True)), 1
    )
    wire.feed(conn, TO_CLIENT, frames.encode(Frame(frames.Opcode.CONTINUATION, tail)), 1)
    first, second = wire.records[2:]
    assert (first.rsv1, second.rsv1) == (True, False)
    assert first.payload + second.payload == "one message in two frames"


def test_close_frames_without_a_code_or_with_a_bad_one():
    wire, conn = upgraded()
    wire.feed(conn, TO_SERVER, frames.encode(Frame.close(None), MASK), 1)
    wire.feed(conn, TO_CLIENT, frames.encode(Frame(frames.Opcode.CLOSE, b"\x03\xe8\xff")), 1)
    empty, bad = wire.records[2:]
    assert (empty.close_code, empty.preview) == (None, "(no close code)")
    assert (bad.close_code, bad.preview) == (None, "(invalid close payload)")


def test_a_reserved_opcode_is_shown_and_decoding_goes_on():
    wire, conn = upgraded()
    wire.feed(conn, TO_CLIENT, b"\x83\x02hi" + frames.encode(Frame.text("after")), 1)
    assert [r.opcode for r in wire.records[2:]] == ["0x3", "TEXT"]


def test_bytes_that_are_not_http_end_that_direction_with_one_error():
    wire = WireLog()
    conn = wire.open()
    wire.feed(conn, TO_SERVER, b"\x16\x03\x01\x02\x00", 0)  # a TLS hello, say
    wire.feed(conn, TO_SERVER, b"more bytes\r\n\r\n", 0)
    wire.feed(conn, TO_CLIENT, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", 0)
    assert [(r.kind, r.direction, r.line) for r in wire.records] == [
        ("error", TO_SERVER, "5 bytes that are not HTTP"),
        ("http", TO_CLIENT, "HTTP/1.1 400 Bad Request"),
    ]
    assert wire.text().splitlines()[1].split(maxsplit=3) == [
        "1",
        "C→S",
        "?",
        "5 bytes that are not HTTP",
    ]


def test_a_refused_upgrade_keeps_reading_http_on_the_same_connection():
    wire = WireLog()
    conn = wire.open()
    wire.feed(conn, TO_SERVER, REQUEST, 0)
    wire.feed(conn, TO_CLIENT, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nno way", 0)
    wire.feed(conn, TO_SERVER, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0)
    assert [(r.line, r.payload) for r in wire.records] == [
        ("GET /echo HTTP/1.1", ""),
        ("HTTP/1.1 403 Forbidden", "no way"),
        ("GET / HTTP/1.1", ""),
    ]


def test_frames_sent_before_the_101_arrives_wait_for_it():
    wire = WireLog()
    conn = wire.open()
    wire.feed(conn, TO_SERVER, REQUEST + frames.encode(Frame.text("eager"), MASK), 0)
    assert len(wire.records) == 1
    wire.feed(conn, TO_CLIENT, SWITCH + b"\r\n", 0)
    assert [r.payload for r in wire.records] == ["", "", "eager"]


def test_long_polling_bodies_by_length_and_chunked():
    wire = WireLog()
    conn = wire.open()
    post = b"POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nContent-Length: 4\r\n\r\n40{}"
    wire.feed(conn, TO_SERVER, post, 0)
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n3;ext=1\r\n\x1e42\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    wire.feed(conn, TO_CLIENT, chunked, 0)
    assert [(r.line, r.length, r.payload) for r in wire.records] == [
        ("POST /socket.io/?EIO=4&transport=polling HTTP/1.1", 4, "40{}"),
        ("HTTP/1.1 200 OK", 5, "ok\x1e42"),
    ]
    assert wire.text().splitlines()[2].endswith("HTTP/1.1 200 OK  body: ok\\x1e42")


def test_a_response_without_length_is_read_until_the_connection_closes():
    wire = WireLog()
    conn = wire.open()
    wire.feed(conn, TO_CLIENT, b"HTTP/1.0 200 OK\r\n\r\nanything at all", 0)
    (record,) = wire.records
    assert record.line == "HTTP/1.0 200 OK (body until the connection closes: not decoded)"


def test_decode_replaces_the_preview_of_data_and_bodies_only():
    wire, conn = upgraded()
    wire.feed(conn, TO_CLIENT, frames.encode(Frame.text("42")), 1)
    wire.feed(conn, TO_CLIENT, frames.encode(Frame.ping(b"42")), 1)
    text = wire.text(decode=lambda payload: f"decoded {payload}")
    assert text.splitlines()[-2].endswith("  decoded 42")
    assert text.splitlines()[-1].endswith("  42")  # pings are not the application's


def test_a_failing_decode_keeps_the_plain_preview():
    wire, conn = upgraded()
    wire.feed(conn, TO_CLIENT, frames.encode(Frame.text("x")), 1)
    assert wire.text(decode=lambda p: 1 / 0).endswith("  x  [decode failed: ZeroDivisionError]")


def test_memory_is_bounded_and_the_text_says_what_was_dropped():
    wire = WireLog(cap=3)
    conn = wire.open()
    wire.feed(conn, TO_SERVER, REQUEST, 0)
    wire.feed(conn, TO_CLIENT, SWITCH + b"\r\n", 0)
    for i in range(5):
        wire.feed(conn, TO_CLIENT, frames.encode(Frame.text(str(i))), 0)
    assert [r.payload for r in wire.records] == ["2", "3", "4"]
    assert wire.dropped == 4
    lines = wire.text(limit=2).splitlines()
    assert lines[:2] == [
        "(4 older records dropped: the log keeps the last 3)",
        "(1 earlier records not shown)",
    ]
    assert [line[-1] for line in lines[3:]] == ["3", "4"]


def test_clear_forgets_records_but_not_where_decoding_is():
    wire, conn = upgraded()
    data = frames.encode(Frame.text("split"), MASK)
    wire.feed(conn, TO_SERVER, data[:4], 0)
    wire.clear()
    assert wire.text() == "conn  dir  opcode  FIN  RSV1  MASK  length  data\n(nothing captured yet)"
    wire.feed(conn, TO_SERVER, data[4:], 0)
    assert [r.payload for r in wire.records] == ["split"]


def test_listeners_hear_each_record_until_they_unsubscribe():
    wire = WireLog()
    heard = []
    unsubscribe = wire.subscribe(heard.append)
    conn = wire.open()
    wire.feed(conn, TO_SERVER, REQUEST, 0)
    unsubscribe()
    unsubscribe()  # twice is harmless
    wire.feed(conn, TO_CLIENT, SWITCH + b"\r\n", 0)
    assert [r.line for r in heard] == ["GET /echo HTTP/1.1"]


def test_connections_are_numbered_and_kept_apart():
    wire = WireLog()
    one, two = wire.open(), wire.open()
    wire.feed(two, TO_SERVER, b"GET /two HTTP/1.1\r\n\r\n", 0)
    wire.feed(one, TO_SERVER, b"GET /one HTTP/1.1\r\n\r\n", 0)
    assert [(r.conn, r.line) for r in wire.records] == [
        (2, "GET /two HTTP/1.1"),
        (1, "GET /one HTTP/1.1"),
    ]
    wire.close(one)
    with pytest.raises(KeyError, match="connection 1 is not open"):
        wire.feed(one, TO_SERVER, b"x", 0)
    assert repr(wire) == "<WireLog 2 records, 2 connections>"


def test_a_cap_below_one_is_refused():
    with pytest.raises(ValueError, match="cap must be at least 1"):
        WireLog(cap=0)


def test_preview_escapes_control_characters_and_cuts_long_payloads():
    assert preview("a\nb\tc") == "a\\nb\\tc"
    assert preview("x" * 100, width=10) == "x" * 10 + "…"
    assert preview(b"\x00\xff") == "binary 00 ff"
    assert preview(b"") == ""


def test_a_message_that_inflates_to_megabytes_is_counted_not_kept():
    wire, conn = upgraded("permessage-deflate")
    stream = zlib.compressobj(wbits=-15)
    bomb = deflate(stream, "a" * 5_000_000)
    after = deflate(stream, "next")
    assert len(bomb) < 10_000
    for payload in (bomb, after):
        wire.feed(conn, TO_CLIENT, frames.encode(Frame(frames.Opcode.TEXT, payload, rsv1=True)), 1)
    big, small = wire.records[2:]
    assert (big.inflated, len(big.payload), big.truncated) == (5_000_000, KEEP, True)
    assert (small.inflated, small.payload) == (4, "next")  # the stream stayed in step


def test_a_listener_that_raises_is_dropped_and_decoding_goes_on():
    wire = WireLog()

    def broken(record):
        raise RuntimeError("a view's bug")

    wire.subscribe(broken)
    conn = wire.open()
    wire.feed(conn, TO_SERVER, REQUEST, 0)
    wire.feed(conn, TO_CLIENT, SWITCH + b"\r\n", 0)
    assert len(wire.records) == 2
