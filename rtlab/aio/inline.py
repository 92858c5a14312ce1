"""A websockets server connection that hands each message over as soon as it is parsed,
and holds every client to the server's per-connection limits, on every path.

``websockets`` reads a message in three steps: ``data_received`` parses the frames and
queues them (its ``Assembler``), wakes the task waiting in ``recv()``, and that task
takes the message out at the loop's next turn. For a small JSON event that is a good
share of the lab server's work (rtlab bench, echo: about 15% of its CPU time).

:class:`InlineConnection` skips the queue when it can: when the connection's handler is
waiting in ``recv()`` with nothing queued, a complete text or binary frame goes straight
from ``data_received`` to the receiver given to ``serve_inline``. Everything else takes
websockets' own path: fragmented messages, invalid UTF-8 (which websockets closes with
1007), and every message that arrives while earlier ones are still queued or being
handled, so the order of messages is always kept.

On a connection without compression it also reads those frames itself (``_walk``):
websockets' frame parser, a generator reading the header in three steps, was a fifth of
the chat message's CPU time. It follows the frame boundaries from the first byte after
the handshake; a complete, final, masked text or binary frame within ``max_size`` is
unmasked and handed over here, and every other frame (control frames, fragments, one
too big, one that arrives while the handler is busy) is fed to websockets whole, so its
checks, pongs, limits and closing codes are its own. A frame whose end has not come yet
waits here up to ``CARRY`` bytes (a bigger one goes to websockets as it comes). A
connection whose client sent frames before the handshake's answer is left to websockets
(its boundaries unknown), as is one that closes.

What a connection may cost (:class:`ConnectionLimits`, shared by a server's connections):

- **Pings.** websockets answers every ping with a pong, also to a client that never
  reads them. Pings are rate-limited per connection like events (a token bucket); past
  it the connection closes with 1008 ``too many pings``.
- **Unsent bytes.** Whatever fills the transport's buffer (pongs, echoes, the feed,
  events), once more than ``max_buffer`` bytes wait the connection closes with 1008
  ``too slow``, and is aborted if the peer has not finished closing ``close_timeout``
  seconds later.
- **Unread input.** websockets stops reading past its ``max_queue`` frames, but only
  between reads: with permessage-deflate, one read of 256 KiB can hold hundreds of
  frames that each inflate to ``max_size``. A compressed connection's reads are parsed
  in slices of ``SLICE`` bytes, and what is left of a read waits, compressed, until the
  queue has room again.
- **Its turn.** Messages handled as they are read keep the queue empty, so that rule
  alone would handle a whole read at once: 256 KiB of 1 KiB frames that each inflate
  to a 1 MiB JSON event is many seconds of parsing, every other client kept waiting.
  Once a compressed read's messages come to ``TURN`` bytes, the rest waits for the
  loop's next turn, unread: the others' messages go first.

And what websockets leaves unsaid or trips on, mended here. A request it cannot parse
(not HTTP, a bad request line, a body) is closed without a word; it is answered 400
naming why first, as nginx does. And two races of websockets 17: what arrives after a
request, before the server has answered it, is parsed at once. Bytes that are not a
frame, or the end of the client's side of the connection, fail the protocol, and
websockets then trips on its own assertion as it answers ("unexpected internal error",
logged as a server error). A failed connection is not answered; and since a client may
end its side right after its request (HTTP's half-close) and still read the answer, that
end is taken once the answer is sent.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidMessage
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Event, State
from websockets.server import ServerProtocol

from rtlab.core.ratelimit import FULL, Bucket, take

try:  # websockets' C unmasking, as its own frame parser uses
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - a websockets built without it
    from websockets.utils import apply_mask

# Takes one message for its owner; False when it cannot take it now (it then goes
# through recv()). One function for every connection, called with the connection's owner:
# no object made per connection (see InlineConnection.serve_inline).
Receiver = Callable[[Any, str | bytes], bool]

MAX_BUFFER = 4 * 2**20  # bytes waiting to be sent to one client before it is dropped
PING_RATE = 2.0  # pings per second a client may send, on average...
PING_BURST = 10  # ...and at once
SLICE = 2048  # bytes of a compressed connection's read parsed at a time (see module)
TURN = 65536  # bytes of messages a compressed read may inflate to per turn of the loop
CARRY = 65536  # a frame this big at most waits here for its end; a bigger one, in websockets
_LENGTH16, _LENGTH64 = struct.Struct("!H").unpack_from, struct.Struct("!Q").unpack_from
OPEN, CONNECTING, CLOSED = State.OPEN, State.CONNECTING, State.CLOSED


@dataclass
class ConnectionLimits:
    """What each connection of a server may cost, and how many were closed for it."""

    max_buffer: int = MAX_BUFFER
    ping_rate: float = PING_RATE
    ping_burst: int = PING_BURST
    dropped_slow: int = field(default=0, compare=False)  # closed: over max_buffer unsent
    dropped_pings: int = field(default=0, compare=False)  # closed: too many pings


@dataclass(slots=True)
class _Guard:
    """A connection's own state for its limits, in one slotted object: Python shares an
    instance dict's keys between instances only up to 30 attributes, and websockets'
    connection has 27; past 30 each connection's dict costs 1.3 KiB more."""

    limits: ConnectionLimits
    pings: Bucket  # the pings' token bucket
    over: bool = False  # closed for a limit already: say it once
    unread: bytearray = field(default_factory=bytearray)  # a compressed read's rest
    eof_after_response: bool = False  # the client ended its side after its request
    owner: Any = None  # see InlineConnection.serve_inline
    on_message: Receiver | None = None
    on_overflow: Callable[[Any], None] | None = None
    walk: bool = True  # frame boundaries known: frames may be read here (see module)
    carry: bytes = b""  # the start of a frame not complete yet, read here
    skip: int = 0  # bytes of a frame that websockets reads, still to come
    inflated: int = 0  # bytes of the frames parsed from a compressed read in this turn


class InlineConnection(ServerConnection):
    """A ``ServerConnection`` whose complete messages may bypass ``recv()``, held to
    ``limits`` (see module)."""

    def __init__(self, *args: Any, limits: ConnectionLimits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = limits if limits is not None else ConnectionLimits()
        protocol = self.protocol
        # The walk needs the protocol's state of a fragmented message and its size limit
        # by these names (websockets 15 to 17); without them, websockets reads it all.
        walk = hasattr(protocol, "current_size") and hasattr(protocol, "max_message_size")
        self._g = _Guard(limits, FULL, walk=walk)
        # websockets queues a pong as it parses a ping, before process_event sees it.
        # (The protocol's own methods are called through its class: nothing kept per
        # connection for them.)
        protocol.recv_frame = self._limited  # type: ignore[method-assign]
        protocol.send_response = self._answer  # type: ignore[method-assign]
        protocol.send_eof = self._unparsed  # type: ignore[method-assign]

    def serve_inline(
        self, owner: Any, on_message: Receiver, on_overflow: Callable[[Any], None]
    ) -> None:
        """From now on, ``on_message(owner, message)`` takes each complete message the
        handler waits for (see module), and past ``max_buffer`` ``on_overflow(owner)`` is
        called instead of closing the connection (the event hub drops the owner, its
        session: the rooms are told, the drop is counted there)."""
        g = self._g
        g.owner, g.on_message, g.on_overflow = owner, on_message, on_overflow

    def serve_plain(self) -> None:
        """Back to websockets' own path for every message, and its own limits."""
        g = self._g
        g.owner = g.on_message = g.on_overflow = None

    def process_event(self, event: Event) -> None:
        g = self._g
        if isinstance(event, Frame):
            g.inflated += len(event.data)
        receive = g.on_message
        if (
            receive is not None
            and isinstance(event, Frame)
            and event.fin
            and (event.opcode is Opcode.TEXT or event.opcode is Opcode.BINARY)
            and self._waiting()
        ):
            try:
                message = event.data.decode() if event.opcode is Opcode.TEXT else bytes(event.data)
            except UnicodeDecodeError:
                pass  # websockets' recv() fails the connection with 1007
            else:
                try:
                    if receive(g.owner, message):
                        return
                except Exception:
                    self._handler_failed()
                    return
        if isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
            self._end_by_deadline()
        super().process_event(event)

    def _end_by_deadline(self) -> None:
        """Once the peer's close came and ours went (the TCP connection half-closed), the
        peer must close it by websockets' close deadline. Only websockets' own ``close()``
        waits that deadline out: a peer that answered nothing more and kept its socket open
        held the connection, and the server's stop (Ctrl-C), for ever. Aborted then."""
        deadline = self.close_deadline
        if deadline is not None:
            self.loop.call_at(deadline, self._abort_unless_closed)

    def _abort_unless_closed(self) -> None:
        if self.protocol.state is not CLOSED and self.transport is not None:
            self.transport.abort()

    def _handler_failed(self) -> None:
        """What websockets does when a connection's handler fails: log it, close 1011."""
        self.logger.error("message handler failed", exc_info=True)
        self.protocol.fail(CloseCode.INTERNAL_ERROR)
        self.send_data()

    def _waiting(self) -> bool:
        """Whether the handler waits in ``recv()`` for a new message, none queued."""
        try:  # the queue of websockets 14 to 17; tests/aio/test_events.py notices a change
            frames = self.recv_messages.frames
            return frames.get_waiter is not None and not frames.queue
        except AttributeError:  # another websockets: every message takes its own path
            return False

    # -- limits -------------------------------------------------------------------------

    def _limited(self, frame: Frame) -> None:
        """The protocol's ``recv_frame``, but a ping past the bucket gets no pong: the
        connection closes with 1008 instead (and reads nothing more)."""
        if frame.opcode is Opcode.PING and not self._g.over:
            rate, burst = self._g.limits.ping_rate, self._g.limits.ping_burst
            self._g.pings, wait = take(self._g.pings, time.monotonic(), rate, burst)
            if wait:
                self._g.limits.dropped_pings += 1
                self._close_for(f"too many pings: over {burst} at once, {rate:g} a second")
                return
        ServerProtocol.recv_frame(self.protocol, frame)

    def send_data(self) -> None:
        """websockets' ``send_data``, then the slow-consumer rule (see module)."""
        super().send_data()
        if self._g.eof_after_response and self.response is not None:
            self._response_sent()
            return
        limits = self._g.limits
        if self.transport.get_write_buffer_size() > limits.max_buffer and not self._g.over:
            if self._g.on_overflow is not None:
                self._g.over = True
                self._g.on_overflow(self._g.owner)
                return
            limits.dropped_slow += 1
            self._close_for(f"too slow: over {limits.max_buffer} bytes waiting to be sent")

    def _close_for(self, reason: str) -> None:
        """Close with 1008 for a limit, logged once; abort if the peer does not finish."""
        self._g.over = True
        self.logger.warning("closed connection from %s: %s", self.remote_address, reason)
        if self.protocol.state is State.OPEN:
            self.protocol.fail(CloseCode.POLICY_VIOLATION, reason)
            super().send_data()  # not ours: the rule that called us is not asked again
        timeout = self.close_timeout if self.close_timeout is not None else 10.0
        self.loop.call_later(timeout, self._abort)

    def _abort(self) -> None:
        if not self.connection_lost_waiter.done():
            self.transport.abort()

    # -- a request, then the end of the client's side -----------------------------------

    def _answer(self, response: Any) -> None:
        """The protocol's ``send_response``, unless the protocol failed meanwhile."""
        if not self.protocol.eof_sent:
            ServerProtocol.send_response(self.protocol, response)

    def _unparsed(self) -> None:
        """The protocol's ``send_eof``; when it ends a request it could not parse, a 400
        naming why goes first (a client that left before its request ended gets nothing)."""
        protocol = self.protocol
        failed = protocol.handshake_exc
        if (
            protocol.state is State.CONNECTING
            and self.request is None
            and isinstance(failed, InvalidMessage)
            and failed.__cause__ is not None
            and not isinstance(failed.__cause__, EOFError)
        ):
            cause = failed.__cause__
            why = "the request is not ASCII" if isinstance(cause, UnicodeError) else str(cause)
            text = f"Failed to open a WebSocket connection: {why[:200]}.\n"
            protocol.writes.append(protocol.reject(400, text).serialize())
        ServerProtocol.send_eof(self.protocol)

    def eof_received(self) -> bool | None:
        answering = self.request is not None and self.response is None
        # asyncio keeps a plain transport open after True, so the response still goes out;
        # a TLS one closes anyway, and says so in a warning a client could repeat at will.
        if answering and self.transport.get_extra_info("ssl_object") is None:
            self._g.eof_after_response = True
            return True
        return super().eof_received()

    def _response_sent(self) -> None:
        """The answer went out: now the end the client sent after its request."""
        self._g.eof_after_response = False
        super().eof_received()  # websockets' own: the protocol ends, then the connection
        self.transport.close()  # what asyncio does after an eof_received() like it

    # -- reading compressed input in slices ----------------------------------------------

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.recv_messages.resume = self._resume

    def data_received(self, data: bytes) -> None:
        g = self._g
        if g.walk:
            state = self.protocol.state
            if state is OPEN and not self.protocol.extensions:
                self._walk(data)
                return
            if state is CONNECTING:
                known = self.request is not None
                super().data_received(data)
                # Frames sent before the answer (the request's end not this read's end):
                # websockets parsed them as they came, their boundaries are its own.
                if known or (self.request is not None and data.find(b"\r\n\r\n") != len(data) - 4):
                    g.walk = False
                return
            g.walk = False  # compressed, or closing: websockets' from now on
            if g.carry:  # a frame's start, read here: websockets waits at its boundary
                data, g.carry = g.carry + data, b""
            g.skip = 0  # (or in the frame it reads: the rest is its own anyway)
        if g.unread or (len(data) > SLICE and self.protocol.extensions):
            g.unread += data
            self._feed()
        else:
            super().data_received(data)

    def _walk(self, data: bytes) -> None:
        """Read the frames of ``data`` that are the handler's, from a frame boundary on;
        the others, whole, through websockets (see module)."""
        g = self._g
        if g.carry:
            data, g.carry = g.carry + data, b""
        end, i = len(data), 0
        websockets = super().data_received
        while i < end:
            if g.skip:  # the rest of a frame websockets reads
                n = min(g.skip, end - i)
                g.skip -= n
                websockets(data[i : i + n])
                i += n
                continue
            if end - i < 2:
                g.carry = data[i:]
                return
            first, second = data[i], data[i + 1]
            length = second & 0x7F
            longer = 2 if length == 126 else 8 if length == 127 else 0  # bytes of a length
            if end - i < 2 + longer:
                g.carry = data[i:]
                return
            if longer:
                (length,) = (_LENGTH16 if longer == 2 else _LENGTH64)(data, i + 2)
            head = i + 2 + longer + (4 if second & 0x80 else 0)  # masked: its 4-byte key
            stop = head + length
            limit = self.protocol.max_message_size
            ours = (
                (first == 0x81 or first == 0x82)  # final text or binary, no RSV bits
                and second & 0x80  # masked, as a client's frames must be
                and (limit is None or length <= limit)
                and self.protocol.current_size is None  # no fragmented message under way
                and g.on_message is not None
            )
            if ours and stop > end and stop - i <= CARRY:
                g.carry = data[i:]  # wait for its end here
                return
            if ours and stop <= end and self._waiting() and self.protocol.state is OPEN:
                payload = apply_mask(data[head:stop], data[head - 4 : head])
                if first == 0x82:
                    message: str | bytes = payload
                else:
                    try:
                        message = payload.decode()
                    except UnicodeDecodeError:
                        message = b""  # websockets' to refuse (1007), below
                        ours = False
                if ours:
                    try:
                        taken = g.on_message(g.owner, message)
                    except Exception:
                        self._handler_failed()
                        g.walk = False
                        return
                    if taken:
                        i = stop
                        continue
            # websockets' to read: this frame whole, then on
            if stop > end:
                g.skip = stop - end
                stop = end
            websockets(data[i:stop])
            i = stop
            if self.protocol.state is not OPEN:  # it closed: the rest is websockets' too
                g.walk, g.skip = False, 0
                if i < end:
                    websockets(data[i:])
                return

    def _feed(self) -> None:
        """Parse the rest of a compressed read, a slice at a time, while the queue has room
        and this turn's frames come to less than ``TURN`` bytes (see module)."""
        g = self._g
        unread = g.unread
        g.inflated = 0
        while unread and not self.recv_messages.paused:
            if g.inflated >= TURN:  # the others' turn: the rest at the loop's next
                self.transport.pause_reading()
                self.loop.call_soon(self._resumed)
                return
            chunk = bytes(unread[:SLICE])
            del unread[:SLICE]  # cheap: a bytearray drops its head in place
            super().data_received(chunk)

    def _resume(self) -> None:
        """The queue has room again: the rest of the last read first, then the socket."""
        self.loop.call_soon(self._resumed)

    def _resumed(self) -> None:
        if self.connection_lost_waiter.done():  # closed meanwhile: nothing more to read
            self._g.unread.clear()
            return
        self._feed()
        if not self.recv_messages.paused and not self._g.unread:
            self.transport.resume_reading()
