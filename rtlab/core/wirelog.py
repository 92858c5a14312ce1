"""What crosses a TCP connection, decoded: HTTP messages, then WebSocket frames after a 101.

A :class:`WireLog` is fed the raw bytes of each direction of each connection, in the
order they crossed, and turns them into records, like the WebSocket panel of the
browser's developer tools::

    wire = WireLog()
    conn = wire.open()
    wire.feed(conn, "client→server", request_bytes, at=0.0)
    wire.feed(conn, "server→client", response_bytes, at=0.01)
    print(wire.text())

Each direction is read as HTTP (request or status line, headers, a body by
Content-Length or chunked) until a ``101 Switching Protocols`` answers an upgrade;
from then on both directions are WebSocket frames (:mod:`rtlab.core.frames`).
Payloads are unmasked, and inflated when ``permessage-deflate`` compressed them (RSV1).
Memory is bounded: a record keeps at most ``KEEP`` bytes of its payload, and the log the
last ``cap`` records (the oldest go first; :meth:`WireLog.text` says how many went).
Bytes that are neither HTTP nor frames end the decoding of that direction with one
``error`` record. Pure: no sockets, no clocks (``at`` is given), no threads.
"""

from __future__ import annotations

import collections
import contextlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from rtlab.core.frames import FrameError, Header, Opcode, decode_close, decode_header, mask

__all__ = [
    "CAP",
    "KEEP",
    "PREVIEW",
    "TO_CLIENT",
    "TO_SERVER",
    "Direction",
    "WireLog",
    "WireRecord",
    "preview",
]

Direction = Literal["client→server", "server→client"]
TO_SERVER: Direction = "client→server"
TO_CLIENT: Direction = "server→client"
ARROWS = {TO_SERVER: "C→S", TO_CLIENT: "S→C"}

CAP = 1000  # records kept by default; older ones are dropped
KEEP = 2048  # payload bytes kept per record
PREVIEW = 60  # characters of payload shown in the text table
STEP = 65536  # inflate at most this many bytes at a time
MAX_HEAD = 65536  # an HTTP head longer than this is not HTTP worth decoding
_DEFLATE_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 §7.2.2: removed by the sender, added back here


@dataclass(frozen=True)
class WireRecord:
    """One HTTP message or one WebSocket frame, as it crossed the wire.

    ``length`` is the payload's (or HTTP body's) size on the wire; ``payload`` its first
    ``KEEP`` bytes, unmasked and inflated, as ``str`` for text frames and UTF-8 HTTP
    bodies (``truncated`` when more was there). ``inflated`` is the size after
    decompression of a compressed frame (``rsv1``), else None.
    """

    conn: int
    direction: Direction
    time: float  # seconds since the capture started
    kind: Literal["http", "frame", "error"]
    line: str = ""  # http: the request or status line; error: what went wrong
    opcode: str = ""  # frame: TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG or 0xN
    fin: bool = False
    rsv1: bool = False
    masked: bool = False
    length: int = 0
    payload: bytes | str = b""
    truncated: bool = False
    inflated: int | None = None
    close_code: int | None = None
    close_reason: str = ""

    @property
    def preview(self) -> str:
        """The payload in one short line (the close code and reason for a close frame)."""
        if self.opcode == "CLOSE":
            if self.close_code is None:
                return "(no close code)" if not self.payload else "(invalid close payload)"
            return f"{self.close_code} {self.close_reason}".rstrip()
        return preview(self.payload, self.truncated)


def preview(payload: bytes | str, truncated: bool = False, width: int = PREVIEW) -> str:
    """``payload`` in at most ``width`` characters: text with control characters escaped,
    bytes as hex (``binary 00 01 ff…``)."""
    if isinstance(payload, str):
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in payload[: width + 1])
        cut = truncated or len(text) > width
        return text[:width] + ("…" if cut else "")
    if not payload:
        return ""
    shown = payload[: width // 3]
    cut = truncated or len(shown) < len(payload)
    return "binary " + shown.hex(" ") + ("…" if cut else "")


class _Inflater:
    """permessage-deflate for one direction (RFC 7692): one stream, or one per message."""

    def __init__(self, reset_each_message: bool) -> None:
        self.reset_each_message = reset_each_message
        self._stream = zlib.decompressobj(-15)

    def inflate(self, data: bytes, end: bool, room: int) -> tuple[bytes, int]:
        """The first ``room`` bytes ``data`` inflates to, and how many it inflates to in all.

        Inflating goes in steps of at most ``STEP`` bytes of output, so that a small
        payload that inflates to gigabytes (a "zip bomb") never sits in memory.
        """
        stream = self._stream
        out = stream.decompress(data + (_DEFLATE_TAIL if end else b""), STEP)
        kept, total = out[: max(0, room)], len(out)
        while True:  # what did not fit in STEP: input left over, or output held back
            more = stream.decompress(stream.unconsumed_tail, STEP)
            if not more and not stream.unconsumed_tail:
                break
            total += len(more)
        if end and self.reset_each_message:
            self._stream = zlib.decompressobj(-15)
        return kept, total


class _Side:
    """The decoding state of one direction of one connection."""

    def __init__(self, direction: Direction) -> None:
        self.direction = direction
        self.buf = bytearray()
        self.mode = "http"  # http, body, chunk-size, chunk, chunk-end, hold, frames, off
        self.head: tuple[str, dict[str, str]] | None = None
        self.remaining = 0
        self.seen = 0  # body bytes so far
        self.kept = bytearray()
        self.upgrade_asked = False  # client side: the last request asked for websocket
        # frames
        self.header: Header | None = None
        self.offset = 0
        self.inflater: _Inflater | None = None
        self.compressed_message = False  # the data message in progress has RSV1
        self.text_message = False  # the data message in progress is TEXT
        self.inflated = 0


class _Conn:
    def __init__(self, number: int) -> None:
        self.number = number
        self.sides = {TO_SERVER: _Side(TO_SERVER), TO_CLIENT: _Side(TO_CLIENT)}


class WireLog:
    """Records of what crossed, per connection and direction; see the module's docstring.

    Feed it from one thread; ``records`` and :meth:`text` may be read from any.
    """

    def __init__(self, cap: int = CAP) -> None:
        if cap < 1:
            raise ValueError(f"cap must be at least 1 record, got {cap}")
        self.cap = cap
        self._records: collections.deque[WireRecord] = collections.deque(maxlen=cap)
        self._dropped = 0
        self._conns: dict[int, _Conn] = {}
        self._count = 0
        self._listeners: list[Callable[[WireRecord], None]] = []

    # -- feeding -------------------------------------------------------------------------

    def open(self) -> int:
        """A new connection; its number (1, 2, ...) for :meth:`feed`."""
        self._count += 1
        self._conns[self._count] = _Conn(self._count)
        return self._count

    def close(self, conn: int) -> None:
        """Forget a connection's decoding state (its records stay)."""
        self._conns.pop(conn, None)

    def feed(self, conn: int, direction: Direction, data: bytes, at: float) -> None:
        """Bytes that crossed ``conn`` in ``direction``, ``at`` seconds after capture started."""
        state = self._conns.get(conn)
        if state is None:
            raise KeyError(f"connection {conn} is not open in this wire log")
        side = state.sides[direction]
        if side.mode == "off":
            return
        side.buf += data
        self._advance(state, side, at)

    @property
    def records(self) -> list[WireRecord]:
        """The records kept, oldest first (a copy)."""
        return list(self._records)

    @property
    def dropped(self) -> int:
        """Records dropped because the log was full."""
        return self._dropped

    def clear(self) -> None:
        """Forget the records so far; decoding goes on where it is."""
        self._records.clear()
        self._dropped = 0

    def subscribe(self, listener: Callable[[WireRecord], None]) -> Callable[[], None]:
        """Call ``listener(record)`` for each new record, on the feeding thread; returns
        a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    # -- showing -------------------------------------------------------------------------

    def text(
        self,
        limit: int | None = None,
        decode: Callable[[bytes | str], str] | None = None,
    ) -> str:
        """A table of the records, without times, ports or keys: the same every run.

        ``limit`` shows only the last ``limit`` records; ``decode(payload)`` replaces the
        preview of data frames and HTTP bodies (e.g. Engine.IO packets).
        """
        records = self.records
        notes = []
        if self._dropped:
            notes.append(
                f"({self._dropped} older records dropped: the log keeps the last {self.cap})"
            )
        if limit is not None and len(records) > limit:
            notes.append(f"({len(records) - limit} earlier records not shown)")
            records = records[len(records) - limit :] if limit > 0 else []
        rows = [("conn", "dir", "opcode", "FIN", "RSV1", "MASK", "length", "data")]
        for record in records:
            rows.append(_row(record, decode))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        lines = [*notes]
        for row in rows:
            cells = [
                cell.rjust(w) if i in (0, 6) else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=False))
            ]
            lines.append(("  ".join(cells) + "  " + row[-1]).rstrip())
        if not records:
            lines.append("(nothing captured yet)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        n = len(self._records)
        c = self._count
        return f"<WireLog {n} record{'' if n == 1 else 's'}, {c} connection{'' if c == 1 else 's'}>"

    # -- decoding ------------------------------------------------------------------------

    def _emit(self, record: WireRecord) -> None:
        if len(self._records) == self.cap:
            self._dropped += 1
        self._records.append(record)
        for listener in list(self._listeners):
            try:
                listener(record)
            except Exception:  # a broken view must not break what is being watched
                self._listeners.remove(listener)

    def _error(self, conn: _Conn, side: _Side, at: float, why: str) -> None:
        self._emit(WireRecord(conn.number, side.direction, at, "error", line=why))
        side.mode = "off"
        side.buf.clear()

    def _advance(self, conn: _Conn, side: _Side, at: float) -> None:
        while side.buf and side.mode != "off":
            mode = side.mode
            if mode == "http":
                progressed = self._read_head(conn, side, at)
            elif mode in ("body", "chunk"):
                progressed = self._read_body(conn, side, at)
            elif mode in ("chunk-size", "chunk-end"):
                progressed = self._read_chunk_line(conn, side, at)
            elif mode == "frames":
                progressed = self._read_frame(conn, side, at)
            else:  # "hold": a client's bytes after an upgrade request, until the answer
                progressed = False
            if not progressed:
                return

    def _read_head(self, conn: _Conn, side: _Side, at: float) -> bool:
        end = side.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(side.buf) > MAX_HEAD or not _may_be_http(bytes(side.buf[:8])):
                self._error(conn, side, at, f"{len(side.buf)} bytes that are not HTTP")
            return False
        head = bytes(side.buf[:end]).decode("latin-1")
        del side.buf[: end + 4]
        first, *rest = head.split("\r\n")
        if not _may_be_http(first.encode("latin-1")):
            self._error(conn, side, at, f"not HTTP: {preview(first, width=40)}")
            return False
        headers = {}
        for line in rest:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        side.head = (first, headers)
        side.seen = 0
        side.kept.clear()
        if side.direction == TO_SERVER:
            side.upgrade_asked = headers.get("upgrade", "").lower() == "websocket"
            if side.upgrade_asked:
                self._finish_http(conn, side, at)
                side.mode = "hold"
                return True
        if "chunked" in headers.get("transfer-encoding", "").lower():
            side.mode = "chunk-size"
            return True
        length = headers.get("content-length", "")
        status = first.split(" ", 2)[1] if side.direction == TO_CLIENT else ""
        if length.isdigit() and int(length) > 0:
            side.mode, side.remaining = "body", int(length)
            return True
        if side.direction == TO_CLIENT and not length and status not in ("101", "204", "304"):
            self._finish_http(conn, side, at, until_close=True)
            side.mode = "off"
            return False
        self._finish_http(conn, side, at)
        return True

    def _read_body(self, conn: _Conn, side: _Side, at: float) -> bool:
        n = min(side.remaining, len(side.buf))
        side.kept += side.buf[: max(0, min(n, KEEP - len(side.kept)))]
        side.seen += n
        side.remaining -= n
        del side.buf[:n]
        if side.remaining:
            return False
        if side.mode == "chunk":
            side.mode = "chunk-end"
        else:
            self._finish_http(conn, side, at)
        return True

    def _read_chunk_line(self, conn: _Conn, side: _Side, at: float) -> bool:
        end = side.buf.find(b"\r\n")
        if end < 0:
            if len(side.buf) > 1024:
                self._error(conn, side, at, "a chunk size line longer than 1024 bytes")
            return False
        line = bytes(side.buf[:end]).split(b";")[0].strip()
        del side.buf[: end + 2]
        if side.mode == "chunk-end":
            if side.remaining < 0 and line:  # after the last chunk: trailers, ignored
                return True
            if side.remaining < 0:
                self._finish_http(conn, side, at)
            else:
                side.mode = "chunk-size"
            return True
        try:
            size = int(line, 16)
        except ValueError:
            self._error(conn, side, at, f"bad chunk size {line[:20]!r}")
            return False
        if size == 0:
            side.mode, side.remaining = "chunk-end", -1  # then trailers and an empty line
        else:
            side.mode, side.remaining = "chunk", size
        return True

    def _finish_http(self, conn: _Conn, side: _Side, at: float, until_close: bool = False) -> None:
        assert side.head is not None
        first, headers = side.head
        body = bytes(side.kept)
        payload: bytes | str = body
        with contextlib.suppress(UnicodeDecodeError):
            payload = body.decode("utf-8")
        if until_close:
            first += " (body until the connection closes: not decoded)"
        self._emit(
            WireRecord(
                conn.number,
                side.direction,
                at,
                "http",
                line=first,
                length=side.seen,
                payload=payload,
                truncated=side.seen > len(body),
            )
        )
        side.mode = "http"
        side.head = None
        if side.direction == TO_CLIENT:
            self._answered(conn, first, headers, at)

    def _answered(self, conn: _Conn, status_line: str, headers: dict[str, str], at: float) -> None:
        client = conn.sides[TO_SERVER]
        if not client.upgrade_asked:
            return
        client.upgrade_asked = False
        server = conn.sides[TO_CLIENT]
        if status_line.split(" ", 2)[1:2] == ["101"]:
            extensions = headers.get("sec-websocket-extensions", "").lower()
            if "permessage-deflate" in extensions:
                client.inflater = _Inflater("client_no_context_takeover" in extensions)
                server.inflater = _Inflater("server_no_context_takeover" in extensions)
            client.mode = server.mode = "frames"
        else:
            client.mode = "http"
        self._advance(conn, client, at)

    def _read_frame(self, conn: _Conn, side: _Side, at: float) -> bool:
        if side.header is None:
            try:
                header = decode_header(side.buf)
            except FrameError as error:
                self._error(conn, side, at, f"not a WebSocket frame: {error}")
                return False
            if header is None:
                return False
            del side.buf[: header.size]
            side.header, side.offset, side.inflated = header, 0, 0
            side.kept.clear()
            if header.opcode in (Opcode.TEXT, Opcode.BINARY):
                side.compressed_message = header.rsv1 and side.inflater is not None
        header = side.header
        n = min(header.length - side.offset, len(side.buf))
        chunk = bytes(side.buf[:n])
        del side.buf[:n]
        if header.mask_key is not None:
            turn = side.offset % 4
            chunk = mask(chunk, header.mask_key[turn:] + header.mask_key[:turn])
        side.offset += n
        done = side.offset == header.length
        data_frame = header.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION)
        if data_frame and side.compressed_message and side.inflater is not None:
            try:
                end = done and header.fin
                chunk, size = side.inflater.inflate(chunk, end, KEEP - len(side.kept))
            except zlib.error as error:
                self._error(conn, side, at, f"compressed payload that does not inflate: {error}")
                return False
            side.inflated += size
        side.kept += chunk[: max(0, KEEP - len(side.kept))]
        if not done:
            return n > 0
        self._finish_frame(conn, side, at)
        return True

    def _finish_frame(self, conn: _Conn, side: _Side, at: float) -> None:
        header = side.header
        assert header is not None
        side.header = None
        try:
            opcode = Opcode(header.opcode).name
        except ValueError:
            opcode = f"0x{header.opcode:x}"
        compressed = side.compressed_message and opcode in ("TEXT", "BINARY", "CONTINUATION")
        kept = bytes(side.kept)
        size = side.inflated if compressed else header.length
        payload: bytes | str = kept
        code, reason = None, ""
        if opcode == "TEXT" or (opcode == "CONTINUATION" and side.text_message):
            payload = kept.decode("utf-8", errors="replace")
        elif opcode in ("PING", "PONG"):
            with contextlib.suppress(UnicodeDecodeError):
                payload = kept.decode("utf-8")
        elif opcode == "CLOSE" and kept:
            with contextlib.suppress(FrameError):
                code, reason = decode_close(kept)
        if opcode == "TEXT":
            side.text_message = True
        elif opcode == "BINARY":
            side.text_message = False
        if header.fin and opcode in ("TEXT", "BINARY", "CONTINUATION"):
            side.compressed_message = False
        self._emit(
            WireRecord(
                conn.number,
                side.direction,
                at,
                "frame",
                opcode=opcode,
                fin=header.fin,
                rsv1=header.rsv1,
                masked=header.masked,
                length=header.length,
                payload=payload,
                truncated=size > len(kept),
                inflated=side.inflated if compressed else None,
                close_code=code,
                close_reason=reason,
            )
        )


def _may_be_http(start: bytes) -> bool:
    """True if ``start`` can begin a status line (``HTTP/``) or a request line (``GET ``)."""
    if b"HTTP/".startswith(start[:5]):
        return True
    method = start.split(b" ", 1)[0]
    return method.isalpha() and method.isupper()


def _row(record: WireRecord, decode: Callable[[bytes | str], str] | None) -> tuple[str, ...]:
    arrow = ARROWS[record.direction]
    if record.kind == "error":
        return (str(record.conn), arrow, "?", "", "", "", "", record.line)
    data = record.preview
    if decode is not None and record.payload and record.opcode in ("", "TEXT", "BINARY"):
        try:
            data = preview(decode(record.payload), record.truncated)
        except Exception as error:  # a decoder's bug must not hide the capture
            data = f"{data}  [decode failed: {type(error).__name__}]"
    if record.kind == "http":
        body = f"  body: {data}" if record.length else ""
        return (str(record.conn), arrow, "HTTP", "", "", "", str(record.length), record.line + body)
    if record.inflated is not None:
        data = f"{data}  (inflated to {record.inflated})"
    flags = ("1" if record.fin else "0", "1" if record.rsv1 else "0", "1" if record.masked else "0")
    return (str(record.conn), arrow, record.opcode, *flags, str(record.length), data)
