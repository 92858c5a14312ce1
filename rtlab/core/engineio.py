"""Engine.IO v4 and Socket.IO v5 packets, as text: what each one on the wire means.

Socket.IO rides on Engine.IO. An Engine.IO packet is one digit, its type, then its data::

    0{"sid":"…","upgrades":["websocket"],"pingInterval":25000,…}  open
    2 / 3                                                         ping / pong
    2probe / 3probe, then 5                                       the upgrade to WebSocket
    4…                                                            a message: a Socket.IO packet

A Socket.IO packet (inside a message ``4``) is a digit too, then an optional namespace
(``/chat,``), an optional acknowledgement id, then JSON: ``40`` connects to ``/``,
``42["send-message",{…}]`` is an event, ``421["join-room","lobby"]`` asks for the ack
``431[…]``. Over HTTP long-polling several packets travel in one body, separated by the
record separator ``\\x1e``; over WebSocket each packet is one frame. No I/O here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

SEPARATOR = "\x1e"  # between packets in one long-polling body
ENGINE = {
    "0": "open",
    "1": "close",
    "2": "ping",
    "3": "pong",
    "4": "message",
    "5": "upgrade",
    "6": "noop",
}
SOCKET = {
    "0": "connect",
    "1": "disconnect",
    "2": "event",
    "3": "ack",
    "4": "connect_error",
    "5": "binary event",
    "6": "binary ack",
}
PREVIEW = 60  # characters of a packet's text shown by describe()
_SOCKET_HEAD = re.compile(r"(?P<type>\d)(?:(?P<attachments>\d+)-)?(?:(?P<ns>/[^,]*),)?(?P<id>\d*)")


@dataclass(frozen=True)
class Packet:
    """One Engine.IO packet, and the Socket.IO packet inside it when it is a message."""

    engine: str  # open, close, ping, pong, message, upgrade, noop
    text: str  # the packet as it crossed the wire
    socket: str | None = None  # connect, event, ack...: only for a Socket.IO message
    ns: str = "/"
    ack_id: int | None = None
    data: Any = None  # the JSON after the header (an event's [name, *args]), or None

    @property
    def event(self) -> str | None:
        """The event's name, for an event packet."""
        if self.socket in ("event", "binary event") and isinstance(self.data, list) and self.data:
            return str(self.data[0])
        return None

    @property
    def meaning(self) -> str:
        """``open``, ``ping``, ``probe``, ``connect /``, ``event send-message``, ``ack 1``..."""
        if self.engine in ("ping", "pong") and self.text[1:] == "probe":
            return f"{self.engine} probe"
        if self.socket is None:
            return self.engine
        if self.socket in ("connect", "disconnect", "connect_error"):
            return f"{self.socket} {self.ns}"
        words = [self.socket]
        if self.event is not None:
            words.append(self.event)
        if self.ack_id is not None:  # an event asking for an ack, or the ack answering it
            words.append(
                f"(ack {self.ack_id})" if self.socket.endswith("event") else str(self.ack_id)
            )
        if self.ns != "/":
            words.append(f"in {self.ns}")
        return " ".join(words)


class PacketError(ValueError):
    """Text that is not an Engine.IO packet."""


def parse(text: str) -> Packet:
    """One Engine.IO packet (and the Socket.IO packet in a message); PacketError if not one."""
    if not text or text[0] not in ENGINE:
        raise PacketError(f"not an Engine.IO packet: {text[:20]!r}")
    engine = ENGINE[text[0]]
    if engine != "message" or len(text) < 2:
        return Packet(engine, text)
    head = _SOCKET_HEAD.match(text, 1)
    if head is None or head["type"] not in SOCKET:
        return Packet(engine, text)  # a plain Engine.IO message, not Socket.IO
    rest = text[head.end() :]
    try:
        data = json.loads(rest) if rest else None
    except ValueError as error:
        raise PacketError(f"not JSON after the header: {rest[:20]!r}") from error
    return Packet(
        engine,
        text,
        SOCKET[head["type"]],
        head["ns"] or "/",
        int(head["id"]) if head["id"] else None,
        data,
    )


def split(body: str) -> list[str]:
    """The packets of a long-polling body (one or more, separated by ``\\x1e``)."""
    return body.split(SEPARATOR)


def describe(payload: bytes | str, width: int = PREVIEW) -> str:
    """What a payload means, then the packet: ``event send-message: 42["send-message",…]``.

    The meaning comes first, so that a shortened preview keeps it. A long-polling body's
    packets are joined with `` ␞ ``. Bytes that are not UTF-8 (a binary attachment) show
    as their length; text that is no packet (``ok``, a POST's answer) as itself.
    """
    if isinstance(payload, bytes):
        try:
            payload = payload.decode()
        except UnicodeDecodeError:
            return f"<{len(payload)} bytes, binary attachment>"
    parts = []
    for text in split(payload):
        shown = text if len(text) <= width else text[: width - 1] + "…"
        try:
            parts.append(f"{parse(text).meaning}: {shown}")
        except PacketError:
            parts.append(shown)
    return " ␞ ".join(parts)
