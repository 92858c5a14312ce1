"""The tutorial's Socket.IO chat server, on python-socketio: the real Socket.IO protocol.

Its handlers are the tutorial's: ``join-room`` joins a room and tells the others
``user-joined``; ``send-message`` {roomId, message} sends ``receive-message`` {userId,
message, timestamp} to the whole room; ``broadcast`` sends ``broadcast-message`` (the data
as sent) to everyone. One addition: ``join-room`` returns an acknowledgement, so a client
that asks knows when it is in. Both transports are on (long-polling first, then the upgrade
to WebSocket), and every HTTP request to ``/socket.io/`` is counted by transport.

It also serves ``/`` (a chat page with the official browser client, ``socket.io-client``)
and ``/socket.io.min.js``, from the npm package pinned by ``static/socketio``'s lockfile,
installed with ``npm ci`` on first use into ``$RTLAB_CACHE/socketio-client`` (else
``~/.cache/rtlab/socketio-client``).
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import logging
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import socketio
from aiohttp import web

PACKAGE_FILES = ("package.json", "package-lock.json")
BUNDLE = Path("node_modules", "socket.io-client", "dist", "socket.io.min.js")
NPM_MISSING = (
    "npm not found: install Node.js 18 or newer (https://nodejs.org, or `apt install nodejs npm`)"
    " for the browser's socket.io-client; everything else runs without it"
)


class ClientMissing(RuntimeError):
    """The browser client cannot be installed here (no npm, or npm ci failed)."""


def client_bundle(install: bool = True) -> Path:
    """The path of ``socket.io.min.js``; with ``install``, ``npm ci`` it on first use."""
    source = resources.files("rtlab").joinpath("static", "socketio")
    digest = hashlib.sha256()
    for name in PACKAGE_FILES:
        digest.update(source.joinpath(name).read_bytes())
    root = os.environ.get("RTLAB_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "rtlab"
    folder = base / "socketio-client" / digest.hexdigest()[:16]
    if (folder / BUNDLE).exists():
        return folder / BUNDLE
    npm = shutil.which("npm")
    if not install or npm is None:
        raise ClientMissing(NPM_MISSING if npm is None else f"not installed yet in {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    for name in PACKAGE_FILES:
        (folder / name).write_bytes(source.joinpath(name).read_bytes())
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not (folder / BUNDLE).exists():
        raise ClientMissing(f"npm ci failed in {folder}: {done.stderr.strip()[-500:]}")
    return folder / BUNDLE


class _Keep(logging.Handler):
    """Keeps python-socketio's warnings and errors in a list: a background thread never prints."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname}: {record.getMessage()}")


def timestamp() -> str:
    """``new Date()`` as JSON sends it: ISO 8601, UTC, milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SocketIOChat:
    """The tutorial's chat server on python-socketio and aiohttp, on 127.0.0.1, port 0."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ping_interval: float = 25,
        ping_timeout: float = 20,
        numbered_ids: bool = False,
    ) -> None:
        """``numbered_ids``: sessions named s1, s2… (the same on every run, for a lesson's
        output) instead of 20 random characters, which a real server must keep: whoever
        knows a long-polling session's id can send and receive as that session."""
        self.host, self.port = host, port
        self.log: list[str] = []  # the tutorial's console.log lines, and errors: never printed
        logger = logging.getLogger(f"rtlab.socketio.{id(self):x}")
        logger.propagate = False
        logger.setLevel(logging.WARNING)
        logger.addHandler(_Keep(self.log))
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            logger=logger,
            engineio_logger=logger,
        )
        if numbered_ids:
            count = itertools.count(1)
            self.sio.eio.generate_id = lambda: f"s{next(count)}"
        self.app = web.Application(middlewares=[self._count])
        self.sio.attach(self.app)
        self.app.router.add_get("/", self._page)
        self.app.router.add_get("/socket.io.min.js", self._bundle)
        self.requests: collections.Counter[str] = collections.Counter()
        self._runner: web.AppRunner | None = None
        self._handlers()

    def _handlers(self) -> None:
        sio = self.sio

        @sio.on("connect")
        async def connect(sid: str, environ: dict[str, Any]) -> None:
            self.log.append(f"User connected: {sid}")

        @sio.on("join-room")
        async def join_room(sid: str, room_id: str) -> dict[str, Any]:
            await sio.enter_room(sid, room_id)
            self.log.append(f"User {sid} joined room {room_id}")
            await sio.emit("user-joined", sid, room=room_id, skip_sid=sid)
            return {"roomId": room_id}  # not in the tutorial: an ack, so a client knows

        @sio.on("send-message")
        async def send_message(sid: str, data: dict[str, Any]) -> None:
            payload = {"userId": sid, "message": data["message"], "timestamp": timestamp()}
            await sio.emit("receive-message", payload, room=data["roomId"])

        @sio.on("broadcast")
        async def broadcast(sid: str, data: Any) -> None:
            await sio.emit("broadcast-message", data)

        @sio.on("disconnect")
        async def disconnect(sid: str, reason: Any = None) -> None:
            self.log.append(f"User disconnected: {sid}")

    @web.middleware
    async def _count(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith("/socket.io/"):
            transport = request.query.get("transport", "?")
            self.requests[f"{transport} {request.method}"] += 1
        return await handler(request)

    async def _page(self, request: web.Request) -> web.StreamResponse:
        page = resources.files("rtlab").joinpath("static", "socketio.html").read_text()
        return web.Response(text=page, content_type="text/html")

    async def _bundle(self, request: web.Request) -> web.StreamResponse:
        try:
            path = client_bundle(install=False)
        except ClientMissing as error:
            return web.Response(status=404, text=str(error))
        return web.FileResponse(path, headers={"Content-Type": "text/javascript"})

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: where Socket.IO clients connect (not ``ws://``)."""
        return f"http://{self.host}:{self.port}"

    def rooms(self, room: str) -> list[str]:
        """The sids in ``room`` of namespace ``/``."""
        return sorted(sid for sid, _ in self.sio.manager.get_participants("/", room))

    async def start(self) -> SocketIOChat:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Close every session (a long-poll waiting for data too), then the HTTP server."""
        if self._runner is not None:
            eio = self.sio.eio
            for session in list(eio.sockets.values()):  # no wait: no GET may come to flush it
                await session.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
            eio.sockets.clear()
            await self.sio.shutdown()
            await self._runner.cleanup()
            self._runner = None
