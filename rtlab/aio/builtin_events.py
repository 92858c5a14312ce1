"""The built-in events, as the tutorial's Socket.IO chat server defines them.

``join-room``     data: room id, or {"roomId", "since": seq}
                                      -> the others in the room get ``user-joined``;
                                         with ``since``, the joiner first gets the
                                         room's messages after ``seq`` again
``leave-room``    data: room id       -> the others in the room get ``user-left``
``send-message``  {"roomId", "message"} -> everyone in the room, sender included,
                                          gets ``receive-message``
``broadcast``     data: any text      -> everyone in the namespace gets ``broadcast-message``
``heartbeat``     data: anything      -> acknowledged at once with the server's time (an
                                         application-level heartbeat, beside ping/pong)

Presence is per user: a user with two connections (a notebook and a browser tab)
joins a room once and leaves it when the last of them leaves.

A disconnecting user's rooms get ``user-left`` too (``BuiltinEvents.left``).

:class:`BuiltinEvents` is a namespace class, as in python-socketio: one per namespace,
a method per event; the chat events (chat_events.py) extend it by subclassing.
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

ROOM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_MESSAGE = 500  # characters, as in the tutorial


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def timestamp() -> str:
    """Now, as JavaScript's ``new Date().toISOString()`` writes it.

    Every room message carries one: the date and time are formatted once a second,
    only the milliseconds each time."""
    second, ms = divmod(int(time.time() * 1000), 1000)
    if second != _second[0]:
        when = datetime.fromtimestamp(second, UTC)
        _second[:] = [second, when.strftime("%Y-%m-%dT%H:%M:%S")]
    return f"{_second[1]}.{ms:03d}Z"


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
    """The built-in events of one namespace, in this process, sharing the server's
    :class:`LabApp`. Where rooms span processes, a subclass (redis_events.py) replaces
    what enters, leaves and sends: ``enter``, ``left`` and ``send``."""

    def __init__(self, ns: Namespace, app: LabApp) -> None:
        self.ns = ns
        self.app = app

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
        """Register the handlers on the namespace, and ``left`` for disconnections."""
        for event, handler in self.handlers().items():
            # With Redis, a room message's mid is checked and kept by its one script; a
            # resent join-room joins again (its ack, presence and history, is not kept).
            idempotent = event == "join-room"
            self.ns.on(event, checks_mid=event == "send-message", idempotent=idempotent)(handler)
        self.ns.on_leave.append(self.left)

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
        return self.enter(session, room, since)

    def enter(self, session: Session, room: str, since: int | None) -> Any:
        """Put ``session`` in ``room``: ``user-joined`` to the others if its user is new
        there, what it missed since ``since`` replayed; the join's ack."""
        ns = self.ns
        already_there = ns.has_user(session.user, room)  # from another tab, say
        if ns.join(session, room) and not already_there:
            ns.emit("user-joined", {"userId": session.user, "roomId": room}, to=room, skip=session)
        answer: dict[str, Any] = {"roomId": room, "members": ns.users(room)}
        answer["seq"] = self.app.history.last_seq(ns.name, room)
        if since is not None:
            # Recovery: what the joiner missed, before anything new, in order.
            missed, complete = self.app.history.since(ns.name, room, since, time.time())
            for payload in missed:
                ns.hub.deliver([session], encode_event("receive-message", payload, ns.name))
            answer["recovered"] = complete
            answer["replayed"] = len(missed)
        return answer

    def leave_room(self, session: Session, data: Any) -> dict[str, Any]:
        room = room_id(data)
        if self.ns.leave(session, room):  # then as a disconnection leaves it (events.py)
            self.ns.hub.manager.left(self.ns.name, room, session)
            self.left(session, room)
        return {"roomId": room}

    def left(self, session: Session, room: str) -> None:
        """``session`` is out of ``room``: ``user-left`` if no session of its user is."""
        if not self.ns.has_user(session.user, room):
            self.ns.emit("user-left", {"userId": session.user, "roomId": room}, to=room)

    def send_message(self, session: Session, data: Any) -> Any:
        if not isinstance(data, dict):
            raise EnvelopeError(
                ErrorCode.INVALID, 'data must be an object: {"roomId": ..., "message": ...}'
            )
        room = room_id(data.get("roomId"), "roomId")
        text = message_text(data.get("message"), "message")
        if not self.ns.rooms.is_member(session, room):
            raise EnvelopeError(ErrorCode.NOT_MEMBER, f"join {room!r} before sending to it")
        payload = {"userId": session.user, "roomId": room, "message": text}
        payload["timestamp"] = timestamp()
        return self.send(session, room, payload)

    def send(self, session: Session, room: str, payload: dict[str, Any]) -> Any:
        """Number, keep (on disk first, with a journal) and deliver a room message; the ack."""
        record = self.app.record(session, self.ns.name, room, payload)
        delivered = self.ns.emit("receive-message", record.payload, to=room)
        return {"roomId": room, "seq": record.seq, "delivered": delivered}

    def broadcast(self, session: Session, data: Any) -> dict[str, Any]:
        text = message_text(data, "data")
        payload = {"userId": session.user, "message": text, "timestamp": timestamp()}
        return {"delivered": self.ns.emit("broadcast-message", payload)}

    def heartbeat(self, session: Session, data: Any) -> dict[str, Any]:
        return {"time": timestamp()}
