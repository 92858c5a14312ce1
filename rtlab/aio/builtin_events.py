"""The built-in events, as the tutorial's Socket.IO chat server defines them.

``join-room``     data: room id, or {"roomId", "since": seq}
                                      -> the others in the room get ``user-joined``;
                                         with ``since``, the joiner first gets the
                                         room's messages after ``seq`` again
``leave-room``    data: room id       -> the others in the room get ``user-left``
``send-message``  {"roomId", "message"} -> everyone in the room, sender included,
                                          gets ``receive-message``
``broadcast``     data: any text      -> everyone in the namespace gets ``broadcast-message``
                                         (on a server with a secret, from an instructor)
``heartbeat``     data: anything      -> acknowledged at once with the server's time (an
                                         application-level heartbeat, beside ping/pong)

Presence is per user: a user with two connections (a notebook and a browser tab)
joins a room once and leaves it when the last of them leaves.

A disconnecting user's rooms get ``user-left`` too (``BuiltinEvents.left``).

:class:`BuiltinEvents` is a namespace class, as in python-socketio: one per namespace,
a method per event; the chat events (chat_events.py) extend it by subclassing. What
enters a room, leaves it and sends to it goes through the namespace's room store
(room_store.py: in this process or in Redis), whose markers (a user's first session in
a room, a user gone from it everywhere) say when to tell ``user-joined`` and
``user-left``, each process to its own members of the room.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rtlab.core.envelope import EnvelopeError, ErrorCode, encode_event

if TYPE_CHECKING:
    from rtlab.aio.events import Handler, Namespace, Session
    from rtlab.aio.lab_app import LabApp
    from rtlab.aio.room_store import RoomStore

ROOM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_MESSAGE = 500  # characters, as in the tutorial
INSTRUCTORS_BROADCAST = (
    "on a class's server only an instructor sends to everyone: send to your room instead"
)


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text
_MS = [f".{ms:03d}Z" for ms in range(1000)]  # the milliseconds' part, written once


def timestamp() -> str:
    """Now, as JavaScript's ``new Date().toISOString()`` writes it.

    Every room message carries one: the date and time are formatted once a second, the
    milliseconds' part once."""
    second, ms = divmod(int(time.time() * 1000), 1000)
    if second != _second[0]:
        when = datetime.fromtimestamp(second, UTC)
        _second[:] = [second, when.strftime("%Y-%m-%dT%H:%M:%S")]
    return _second[1] + _MS[ms]


def room_id(value: Any, field: str = "data") -> str:
    if not isinstance(value, str) or not ROOM.fullmatch(value):
        raise EnvelopeError(
            ErrorCode.INVALID,
            f"{field} must be a room id: 1 to 64 letters, digits or _.- , got {value!r:.40}",
        )
    return value


def message_text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise EnvelopeError(ErrorCode.INVALID, f"{field} must be a string, got {value!r:.40}")
    if not value.strip():
        raise EnvelopeError(ErrorCode.INVALID, f"{field} must not be empty")
    if len(value) > MAX_MESSAGE:
        raise EnvelopeError(
            ErrorCode.INVALID, f"{field} is {len(value)} characters; the limit is {MAX_MESSAGE}"
        )
    return value


class BuiltinEvents:
    """The built-in events of one namespace, sharing the server's :class:`LabApp` (its
    limits), with the namespace's rooms in ``store``."""

    def __init__(self, ns: Namespace, app: LabApp, store: RoomStore) -> None:
        self.ns = ns
        self.app = app
        self.store = store

    def handlers(self) -> dict[str, Handler]:
        """Event name -> the method that handles it (a subclass adds its own)."""
        return {
            "join-room": self.join_room,
            "leave-room": self.leave_room,
            "send-message": self.send_message,
            "broadcast": self.broadcast,
            "heartbeat": self.heartbeat,
        }

    def install(self) -> None:
        """Register the handlers on the namespace, ``left`` for disconnections, and what
        the store's markers mean (``joined``, ``gone``)."""
        for event, handler in self.handlers().items():
            # With Redis, a room message's mid is checked and kept by its one script; a
            # resent join-room joins again (its ack, presence and history, is not kept).
            idempotent = event == "join-room"
            message = event == "send-message"
            self.ns.on(event, checks_mid=message, idempotent=idempotent, pipelined=message)(handler)
        self.ns.on_leave.append(self.left)
        self.ns.on_joined.append(self.joined)
        self.ns.on_gone.append(self.gone)

    def join_room(self, session: Session, data: Any) -> Any:
        since, field = None, "data"
        if isinstance(data, dict):
            field = "roomId"
            since = data.get("since")
            if since is not None and (type(since) is not int or since < 0):
                raise EnvelopeError(
                    ErrorCode.INVALID, f"since must be a whole number, got {since!r:.40}"
                )
            data = data.get("roomId")
        room = room_id(data, field)
        mine = self.ns.rooms.rooms_of(session)
        if room not in mine and len(mine) >= self.app.max_rooms:
            raise EnvelopeError(
                ErrorCode.LIMIT_EXCEEDED, f"already in {len(mine)} rooms: leave one first"
            )
        return self.store.enter(session, room, since)

    def leave_room(self, session: Session, data: Any) -> dict[str, Any]:
        room = room_id(data)
        if self.ns.leave(session, room):  # then as a disconnection leaves it (events.py)
            self.ns.hub.manager.left(self.ns.name, room, session)
            self.left(session, room)
        return {"roomId": room}

    def left(self, session: Session, room: str) -> None:
        """``session`` is out of ``room`` here: the store says if its user is ``gone``."""
        self.store.left(session, room)

    def joined(self, room: str, user: str, when: str) -> None:
        """``user``'s first session entered ``room`` (on any process)."""
        self.tell(room, "user-joined", {"userId": user, "roomId": room})

    def gone(self, room: str, user: str, when: str, died: bool) -> None:
        """``user`` is out of ``room`` on every process: they left, or their process died."""
        self.tell(room, "user-left", {"userId": user, "roomId": room})

    def tell(self, room: str, event: str, data: Any) -> None:
        """To this process's members of ``room`` (with Redis every process tells its own)."""
        ns = self.ns
        ns.hub.deliver(list(ns.rooms.members(room)), encode_event(event, data, ns.name))

    def send_message(self, session: Session, data: Any) -> Any:
        if not isinstance(data, dict):
            raise EnvelopeError(
                ErrorCode.INVALID, 'data must be an object: {"roomId": ..., "message": ...}'
            )
        room = data.get("roomId")
        # A room the sender is in was checked as they joined it: the usual case.
        member = type(room) is str and self.ns.rooms.is_member(session, room)
        if not member:
            room = room_id(room, "roomId")
        text = message_text(data.get("message"), "message")
        if not member:
            raise EnvelopeError(ErrorCode.NOT_MEMBER, f"join {room!r} before sending to it")
        payload = {"userId": session.user, "roomId": room, "message": text}
        payload["timestamp"] = timestamp()
        return self.store.send(session, room, payload)

    def broadcast(self, session: Session, data: Any) -> dict[str, Any]:
        if not self.app.may_broadcast(session):
            raise EnvelopeError(ErrorCode.FORBIDDEN, INSTRUCTORS_BROADCAST)
        text = message_text(data, "data")
        payload = {"userId": session.user, "message": text, "timestamp": timestamp()}
        return {"delivered": self.ns.emit("broadcast-message", payload)}

    def heartbeat(self, session: Session, data: Any) -> dict[str, Any]:
        return {"time": timestamp()}
