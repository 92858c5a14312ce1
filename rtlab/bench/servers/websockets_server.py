"""Raw ``websockets``: an echo on ``/echo`` and rooms on ``/room?room=R`` built on its broadcast.

``/echo`` answers text ``m`` with ``Echo: m`` (as the tutorial's Node ``ws`` server). On
``/room`` the server says ``joined`` once the connection is in the room, then every
message is broadcast to the room, the sender included (as ``io.to(room).emit``).
"""

from __future__ import annotations

import asyncio
import signal
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

import websockets
from websockets.asyncio.server import ServerConnection, serve

from rtlab.bench.servers import loop_name, run

ROOMS: defaultdict[str, set[ServerConnection]] = defaultdict(set)


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
