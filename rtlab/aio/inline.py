"""A websockets server connection that hands each message over as soon as it is parsed,
and holds every client to the server's per-connection limits, on every path.

``websockets`` reads a message in three steps: ``data_received`` parses the frames and
queues them (its ``Assembler``), wakes the task waiting in ``recv()``, and that task
takes the message out at the loop's next turn. For a small JSON event that is a good
share of the lab server's work (rtlab bench, echo: about 15% of its CPU time).

:class:`InlineConnection` skips the queue when it can: when the connection's handler is
waiting in ``recv()`` with nothing queued, a complete text or binary frame goes straight
to ``on_message`` from ``data_received``. Everything else takes websockets' own path:
fragmented messages, invalid UTF-8 (which websockets closes with 1007), and every
message that arrives while earlier ones are still queued or being handled, so the order
of messages is always kept.

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

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidMessage
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Event, State
from websockets.server import ServerProtocol

# Takes one message for its owner; False when it cannot take it now (it then goes
# through recv()). One function for every connection, called with the connection's owner:
# no object made per connection (see InlineConnection.serve_inline).
Receiver = Callable[[Any, str | bytes], bool]

MAX_BUFFER = 4 * 2**20  # bytes waiting to be sent to one client before it is dropped
PING_RATE = 2.0  # pings per second a client may send, on average...
PING_BURST = 10  # ...and at once
SLICE = 2048  # bytes of a compressed connection's read parsed at a time (see module)


@dataclass
class ConnectionLimits:
    """What each connection of a server may cost, and how many were closed for it."""

    max_buffer: int = MAX_BUFFER
    ping_rate: float = PING_RATE
    ping_burst: int = PING_BURST
    dropped_slow: int = field(default=0, compare=False)  # closed: over max_buffer unsent
    dropped_pings: int = field(default=0, compare=False)  # closed: too many pings

    @property
    def full(self) -> tuple[float, float]:
        """A full ping bucket, as of long ago: every connection starts with this one."""
        return (float(self.ping_burst), 0.0)


@dataclass(slots=True)
class _Guard:
    """A connection's own state for its limits, in one slotted object: Python shares an
    instance dict's keys between instances only up to 30 attributes, and websockets'
    connection has 27; past 30 each connection's dict costs 1.3 KiB more."""

    limits: ConnectionLimits
    pings: tuple[float, float]  # tokens left, when counted
    over: bool = False  # closed for a limit already: say it once
    unread: bytearray = field(default_factory=bytearray)  # a compressed read's rest
    eof_after_response: bool = False  # the client ended its side after its request
    owner: Any = None  # see InlineConnection.serve_inline
    on_message: Receiver | None = None
    on_overflow: Callable[[Any], None] | None = None


class InlineConnection(ServerConnection):
    """A ``ServerConnection`` whose complete messages may bypass ``recv()``, held to
    ``limits`` (see module)."""

    def __init__(self, *args: Any, limits: ConnectionLimits | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = limits if limits is not None else ConnectionLimits()
        protocol = self.protocol
        self._g = _Guard(
            limits,
            limits.full,
        )
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
                except Exception:  # as websockets does when a connection handler fails
                    self.logger.error("message handler failed", exc_info=True)
                    self.protocol.fail(CloseCode.INTERNAL_ERROR)
                    self.send_data()
                    return
        super().process_event(event)

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
            tokens, at = self._g.pings
            now = time.monotonic()
            rate, burst = self._g.limits.ping_rate, self._g.limits.ping_burst
            tokens = min(float(burst), tokens + (now - at) * rate)
            if tokens < 1:
                self._g.limits.dropped_pings += 1
                self._close_for(f"too many pings: over {burst} at once, {rate:g} a second")
                return
            self._g.pings = (tokens - 1, now)
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
        if self.request is not None and self.response is None:  # answering it now
            self._g.eof_after_response = True
            return True  # asyncio keeps the transport open: the response still goes out
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
        if self._g.unread or (len(data) > SLICE and self.protocol.extensions):
            self._g.unread += data
            self._feed()
        else:
            super().data_received(data)

    def _feed(self) -> None:
        """Parse the rest of a compressed read, a slice at a time, while the queue has room."""
        unread = self._g.unread
        while unread and not self.recv_messages.paused:
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
        if not self.recv_messages.paused:
            self.transport.resume_reading()
