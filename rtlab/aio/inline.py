"""A websockets server connection that hands each message over as soon as it is parsed.

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
"""

from __future__ import annotations

from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Event

# Takes one message; False when it cannot take it now (it then goes through recv()).
Receiver = Callable[[str | bytes], bool]


class InlineConnection(ServerConnection):
    """A ``ServerConnection`` whose complete messages may bypass ``recv()`` (see module)."""

    on_message: Receiver | None = None

    def process_event(self, event: Event) -> None:
        if (
            self.on_message is not None
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
                    if self.on_message(message):
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
