"""The load client's codec for each wire format, so that its cost is the same for every server.

Three formats: rtlab's protocol v1 (JSON envelopes, acks by ``id``), raw text (an
echo answering ``Echo: m``, and a room where every text is broadcast), and Socket.IO
(Engine.IO v4 over WebSocket: open packet ``0{...}``, ``40`` to connect, events
``42[...]``, acks ``42N[...]`` answered ``43N[...]``, pings ``2`` answered ``3``).

Frames are built with f-strings, not a JSON encoder: the payloads this module makes
are letters, digits and ``~.`` only, so no escaping is needed. What the load client
looks for in a reply is a marker inside the payload (``~e12~`` for echo number 12,
``~m7~`` for room message 7), found the same way whatever the wire.
"""

from __future__ import annotations

import re
from typing import Protocol

from websockets.asyncio.client import ClientConnection

ECHO = re.compile(r"~e(\d+)~")
MESSAGE = re.compile(r"~m(\d+)~([0-9.]+)~")
TYPING = '"typing"'


def chat_json(room: str, text: str, ack: int | None) -> str:
    """rtlab's ``send-message`` event, with an ack id when ``ack`` is not None."""
    data = f'{{"roomId":"{room}","message":"{text}"}}'
    tail = "" if ack is None else f',"id":{ack}'
    return f'{{"event":"send-message","data":{data}{tail}}}'


def padded(marker: str, size: int) -> str:
    """``marker`` padded with ``.`` to ``size`` characters (never cut)."""
    return marker + "." * (size - len(marker))


class Wire(Protocol):
    """How one server family is spoken to."""

    name: str
    acks: bool  # whether the server acknowledges an event that asks for it

    def echo_url(self, base: str, user: str) -> str: ...
    def room_url(self, base: str, user: str, room: str) -> str: ...
    async def open(self, ws: ClientConnection) -> None: ...
    def echo(self, n: int, payload: str) -> str: ...
    async def join(self, ws: ClientConnection, room: str) -> None: ...
    def publish(self, room: str, text: str, mid: str | None = None) -> str: ...
    def typing(self, room: str, typing: bool) -> str | None: ...
    def chat(self, room: str, text: str, ack: int | None) -> str: ...
    def is_ack(self, frame: str) -> bool: ...
    def control(self, frame: str | bytes) -> str | None: ...


async def _until(ws: ClientConnection, wire: Wire, prefix: str) -> str:
    """Read frames (answering pings) until one starts with ``prefix``."""
    while True:
        frame = await ws.recv()
        assert isinstance(frame, str), "a text frame was expected"
        if (answer := wire.control(frame)) is not None:
            await ws.send(answer)
        elif frame.startswith(prefix):
            return frame


class RtlabWire:
    """Protocol v1 on ``/ws`` (docs/protocol.md); the echo is the bench server's ``echo`` event."""

    name = "rtlab"
    acks = True

    def echo_url(self, base: str, user: str) -> str:
        return f"{base}/ws?user={user}"

    def room_url(self, base: str, user: str, room: str) -> str:
        return f"{base}/ws?user={user}"

    async def open(self, ws: ClientConnection) -> None:
        pass

    def echo(self, n: int, payload: str) -> str:
        return f'{{"event":"echo","data":"{payload}","id":{n}}}'

    async def join(self, ws: ClientConnection, room: str) -> None:
        await ws.send(f'{{"event":"join-room","data":"{room}","id":0}}')
        answer = await _until(ws, self, '{"ack":0,')
        if '"error"' in answer:
            raise RuntimeError(f"join-room refused: {answer}")

    def publish(self, room: str, text: str, mid: str | None = None) -> str:
        tail = "" if mid is None else f',"mid":"{mid}"'  # as rtlab's reconnecting client
        return f'{{"event":"send-message","data":{{"roomId":"{room}","message":"{text}"}}{tail}}}'

    def typing(self, room: str, typing: bool) -> str | None:
        flag = "true" if typing else "false"
        return f'{{"event":"typing","data":{{"roomId":"{room}","typing":{flag}}}}}'

    def chat(self, room: str, text: str, ack: int | None) -> str:
        return chat_json(room, text, ack)

    def is_ack(self, frame: str) -> bool:
        return frame.startswith('{"ack":')

    def control(self, frame: str | bytes) -> str | None:
        return None


class TextWire:
    """Raw text: ``/echo`` answers ``Echo: m``; ``/room?room=R`` says ``joined``, then relays."""

    name = "text"
    acks = False

    def echo_url(self, base: str, user: str) -> str:
        return f"{base}/echo"

    def room_url(self, base: str, user: str, room: str) -> str:
        return f"{base}/room?room={room}&user={user}"

    async def open(self, ws: ClientConnection) -> None:
        pass

    def echo(self, n: int, payload: str) -> str:
        return payload

    async def join(self, ws: ClientConnection, room: str) -> None:
        await _until(ws, self, "joined")

    def publish(self, room: str, text: str, mid: str | None = None) -> str:
        return text

    def typing(self, room: str, typing: bool) -> str | None:
        return None  # a raw room has no events

    def chat(self, room: str, text: str, ack: int | None) -> str:
        return chat_json(room, text, None)  # the same JSON, relayed as it is: no acks

    def is_ack(self, frame: str) -> bool:
        return False

    def control(self, frame: str | bytes) -> str | None:
        return None


class JsonWire(TextWire):
    """Raw websockets' ``/chat``: the same ``send-message`` JSON, answered with
    ``receive-message`` events, no acks (servers/websockets_server.py)."""

    name = "json"

    def room_url(self, base: str, user: str, room: str) -> str:
        return f"{base}/chat?room={room}&user={user}"


class SocketIOWire:
    """Socket.IO v5 over Engine.IO v4, WebSocket transport only, default namespace."""

    name = "socketio"
    acks = True

    def echo_url(self, base: str, user: str) -> str:
        return f"{base}/socket.io/?EIO=4&transport=websocket"

    def room_url(self, base: str, user: str, room: str) -> str:
        return self.echo_url(base, user)

    async def open(self, ws: ClientConnection) -> None:
        await _until(ws, self, "0{")  # Engine.IO open packet
        await ws.send("40")  # Socket.IO connect to "/"
        await _until(ws, self, "40")

    def echo(self, n: int, payload: str) -> str:
        return f'42{n}["echo","{payload}"]'

    async def join(self, ws: ClientConnection, room: str) -> None:
        await ws.send(f'420["join-room","{room}"]')
        await _until(ws, self, "430[")

    def publish(self, room: str, text: str, mid: str | None = None) -> str:
        return f'42["send-message",{{"roomId":"{room}","message":"{text}"}}]'

    def typing(self, room: str, typing: bool) -> str | None:
        flag = "true" if typing else "false"
        return f'42["typing",{{"roomId":"{room}","typing":{flag}}}]'

    def chat(self, room: str, text: str, ack: int | None) -> str:
        data = f'["send-message",{{"roomId":"{room}","message":"{text}"}}]'
        return f"42{data}" if ack is None else f"42{ack}{data}"

    def is_ack(self, frame: str) -> bool:
        return frame.startswith("43")

    def control(self, frame: str | bytes) -> str | None:
        return "3" if frame == "2" else None  # Engine.IO ping -> pong


WIRES: dict[str, Wire] = {w.name: w for w in (RtlabWire(), TextWire(), JsonWire(), SocketIOWire())}
