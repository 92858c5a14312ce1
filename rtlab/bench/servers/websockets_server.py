"""Raw ``websockets``: an echo on ``/echo``, rooms on ``/room?room=R`` built on its broadcast,
and the least a JSON chat does on ``/chat?room=R&user=U``.

``/echo`` answers text ``m`` with ``Echo: m`` (as the tutorial's Node ``ws`` server). On
``/room`` the server says ``joined`` once the connection is in the room, then every
message is broadcast to the room, the sender included (as ``io.to(room).emit``), as it
came: the relay never reads it. ``/chat`` reads it: a ``send-message`` event is parsed,
its room and text checked, and rtlab's ``receive-message`` (user, room, text, timestamp)
encoded and broadcast; nothing numbered, kept or acknowledged, no error answered. What
any chat speaking JSON on ``websockets`` costs at the least (``rtlab bench``: the peer
``websockets-json``).
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import defaultdict
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import websockets
from websockets.asyncio.server import ServerConnection, serve

from rtlab.bench.servers import loop_name, run

ROOMS: defaultdict[str, set[ServerConnection]] = defaultdict(set)
CHATS: defaultdict[str, set[ServerConnection]] = defaultdict(set)
ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def chat_event(message: str, room: str, user: str) -> str | None:
    """``receive-message`` for a ``send-message`` event to ``room``, or None."""
    try:
        event = json.loads(message)
        data = event["data"]
        text = data["message"]
    except (ValueError, TypeError, KeyError):
        return None
    if event.get("event") != "send-message" or data.get("roomId") != room:
        return None
    if not isinstance(text, str) or not text:
        return None
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    payload = {"userId": user, "roomId": room, "message": text, "timestamp": now}
    return ENCODE({"event": "receive-message", "data": payload})


async def handler(connection: ServerConnection) -> None:
    url = urlsplit(connection.request.path if connection.request else "")
    if url.path == "/echo":
        async for message in connection:
            await connection.send(f"Echo: {message}" if isinstance(message, str) else message)
    elif url.path == "/room":
        room = parse_qs(url.query).get("room", ["lobby"])[0]
        members = ROOMS[room]
        members.add(connection)
        try:
            await connection.send("joined")
            async for message in connection:
                websockets.broadcast(members, message)
        finally:
            members.discard(connection)
    elif url.path == "/chat":
        query = parse_qs(url.query)
        room, user = query.get("room", ["lobby"])[0], query.get("user", ["anonymous"])[0]
        members = CHATS[room]
        members.add(connection)
        try:
            await connection.send("joined")
            async for message in connection:
                if isinstance(message, str) and (event := chat_event(message, room, user)):
                    websockets.broadcast(members, event)
        finally:
            members.discard(connection)


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serve(handler, "127.0.0.1", 0) as server:
        print(f"listening {server.sockets[0].getsockname()[1]} on {loop_name()}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    run(main())  # on asyncio, or uvloop with rtlab bench --loop uvloop: the same for all
