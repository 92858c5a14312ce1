"""The tutorial's Socket.IO chat server in the background: ``rtlab.start_socketio()``."""

from __future__ import annotations

import collections
from typing import Any

from rtlab.aio.socketio_chat import SocketIOChat
from rtlab.notebook.background import BackgroundLoop, Running, _start


class RunningSocketIO(Running):
    """A python-socketio chat server on a loop of its own; what :func:`start_socketio` returns."""

    def __init__(self, chat: SocketIOChat, background: BackgroundLoop) -> None:
        super().__init__(background)
        self.chat = chat

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: Socket.IO clients start with an HTTP request."""
        return self.chat.url

    @property
    def port(self) -> int:
        return self.chat.port

    @property
    def http_url(self) -> str:
        """The chat page with the browser's ``socket.io-client``."""
        return self.chat.url + "/"

    @property
    def requests(self) -> collections.Counter[str]:
        """HTTP requests to ``/socket.io/`` so far, by transport and method (a copy)."""
        return self._background.call(lambda: collections.Counter(self.chat.requests))

    @property
    def sessions(self) -> int:
        """Engine.IO sessions open right now (on either transport)."""
        return self._background.call(lambda: len(self.chat.sio.eio.sockets))

    @property
    def log(self) -> list[str]:
        return [*self.chat.log, *self._background.errors]

    def members(self, room: str) -> list[str]:
        """The sids in ``room`` right now."""
        return self._background.call(self.chat.rooms, room)

    def emit(self, event: str, data: Any = None, to: str | None = None) -> None:
        """Send an event from the server, to a room or a sid (``to``), or to everyone."""
        self._background.run(self.chat.sio.emit(event, data, to=to))

    async def _stop(self) -> None:
        await self.chat.stop()

    def __repr__(self) -> str:
        if not self.running:
            return "<RunningSocketIO stopped>"
        return f"<RunningSocketIO {self.url} python-socketio>"


def start_socketio(**options: Any) -> RunningSocketIO:
    """Start the tutorial's Socket.IO chat server on 127.0.0.1, a free port, in the background.

    ``options`` go to :class:`~rtlab.aio.socketio_chat.SocketIOChat` (``ping_interval``...).
    """

    async def make(background: BackgroundLoop) -> RunningSocketIO:
        return RunningSocketIO(await SocketIOChat(**options).start(), background)

    return _start(make, "rtlab-socketio")
