"""python-socketio (AsyncServer on aiohttp, WebSocket transport only) with the tutorial's handlers.

``join-room`` (room id) joins and tells the others ``user-joined``; ``send-message``
{roomId, message} sends ``receive-message`` {userId, message, timestamp} to the whole
room (and acknowledges {"ok": true} when asked); ``broadcast`` sends ``broadcast-message``
to everyone; ``echo`` acknowledges its data.
``join-room`` acknowledges too, when asked, so that a client knows it is in.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime
from typing import Any

import socketio
from aiohttp import web

from rtlab.bench.servers import loop_name, run


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build() -> web.Application:
    # With RTLAB_BENCH_REDIS (rtlab bench's redis scenario): python-socketio's own manager
    # for rooms that span processes.
    url = os.environ.get("RTLAB_BENCH_REDIS")
    manager = socketio.AsyncRedisManager(url) if url else None
    sio = socketio.AsyncServer(
        async_mode="aiohttp", transports=["websocket"], client_manager=manager
    )
    app = web.Application()
    sio.attach(app)

    @sio.on("join-room")
    async def join_room(sid: str, room: str) -> dict[str, Any]:
        await sio.enter_room(sid, room)
        await sio.emit("user-joined", sid, room=room, skip_sid=sid)
        return {"roomId": room}

    @sio.on("send-message")
    async def send_message(sid: str, data: dict[str, Any]) -> dict[str, bool]:
        payload = {"userId": sid, "message": data["message"], "timestamp": timestamp()}
        await sio.emit("receive-message", payload, room=data["roomId"])
        return {"ok": True}  # sent only when the client asked for an ack

    @sio.on("broadcast")
    async def broadcast(sid: str, message: str) -> None:
        payload = {"userId": sid, "message": message, "timestamp": timestamp()}
        await sio.emit("broadcast-message", payload)

    @sio.on("echo")
    async def echo(sid: str, data: Any) -> Any:
        return data

    return app


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(build(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"listening {port} on {loop_name()}", flush=True)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    run(main())  # on asyncio, or uvloop with rtlab bench --loop uvloop: the same for all
