"""The chat events (lesson 09): presence with last seen, typing, history on join, DMs.

``join-room``       (the built-in one, extended) the ack gains ``history``, the room's
                    last 50 messages oldest first, and ``presence``, a list of
                    {"userId", "online", "lastSeen"}; when a user's first session joins,
                    the others in the room get ``presence`` {"roomId", "userId",
                    "online": true, "lastSeen"} after ``user-joined``
leaving             (``leave-room``, disconnecting) when a user's last session leaves,
                    the others in the room get ``user-left``, then ``presence`` with
                    "online": false, then ``typing`` false if they were typing (one
                    order, with Redis or without)
``send-message``    (extended) the sender's typing in that room ends
``typing``          {"roomId", "typing": bool} -> the others in the room get ``typing``
                    {"roomId", "userId", "typing"}; a typing=true not renewed within
                    ``LabApp.typing_expiry`` seconds (5) ends on its own
``direct-message``  {"to": USER, "message": TEXT} -> every session of USER and the
                    sender's other sessions get ``direct-message`` {"from", "to",
                    "message", "timestamp"}; ack {"delivered": sessions written to}

The state is pure (rtlab/core/presence.py); this module adds the sockets and timers.
Presence and history live in the namespace's room store (room_store.py: local_rooms.py
or redis_rooms.py); its markers say when a user comes online in a room or is gone from
it, and every process tells its own members. A typing indicator lives with the process
its typist is on, and ends there when they are no longer in the room there.
:class:`ChatEvents` extends the built-in events by subclassing them: a handler it
extends calls the built-in one with ``super()``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from rtlab.aio.admission import USER
from rtlab.aio.builtin_events import BuiltinEvents, message_text, room_id, timestamp
from rtlab.core.envelope import EnvelopeError, ErrorCode, encode_event
from rtlab.core.presence import Typing

if TYPE_CHECKING:
    from rtlab.aio.events import Handler, Namespace, Session
    from rtlab.aio.lab_app import LabApp
    from rtlab.aio.room_store import RoomStore


class TypingIndicators:
    """One namespace's typing indicators started on this process, and their timers."""

    def __init__(self, ns: Namespace, app: LabApp) -> None:
        self.ns = ns
        self.app = app
        self.typing = Typing()
        self.timers: dict[tuple[str, str], asyncio.TimerHandle] = {}

    def end_typing_of_the_absent(self, room: str) -> None:
        """Typing started here ends here when its user is no longer in ``room`` here."""
        for user in self.typing.typing(room):
            if not self.ns.has_user(user, room):
                self.stop_typing(room, user)

    def start_typing(self, room: str, session: Session) -> None:
        """``session``'s user types in ``room``: tell the others if new, (re)arm the timer."""
        loop = asyncio.get_running_loop()
        key = (room, session.user)
        if self.typing.start(room, session.user, loop.time(), self.app.typing_expiry):
            self._tell(room, session.user, True, session)
        self._cancel(key)
        self.timers[key] = loop.call_later(self.app.typing_expiry, self._expire, room, key[1])

    def stop_typing(self, room: str, user: str, skip: Session | None = None) -> None:
        """``user`` stopped typing in ``room`` (said so, sent, left): tell the room if so."""
        self._cancel((room, user))
        if self.typing.stop(room, user):
            self._tell(room, user, False, skip)

    def _expire(self, room: str, user: str) -> None:
        self.timers.pop((room, user), None)
        loop = asyncio.get_running_loop()
        if self.typing.expire(room, user, loop.time()):
            self._tell(room, user, False, None)
        elif (until := self.typing.deadline(room, user)) is not None:
            # The loop may run a timer a hair early: wait for the rest.
            delay = max(0.0, until - loop.time()) + 0.001
            self.timers[(room, user)] = loop.call_later(delay, self._expire, room, user)

    def _cancel(self, key: tuple[str, str]) -> None:
        timer = self.timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _tell(self, room: str, user: str, typing: bool, skip: Session | None) -> None:
        self.ns.emit(
            "typing", {"roomId": room, "userId": user, "typing": typing}, to=room, skip=skip
        )


class ChatEvents(BuiltinEvents):
    """The built-in events of one namespace, extended, and the chat's own two."""

    def __init__(self, ns: Namespace, app: LabApp, store: RoomStore) -> None:
        super().__init__(ns, app, store)
        self.indicators = TypingIndicators(ns, app)

    def handlers(self) -> dict[str, Handler]:
        return {
            **super().handlers(),
            "typing": self.typing,
            "direct-message": self.direct_message,
        }

    def left(self, session: Session, room: str) -> None:
        super().left(session, room)
        self.indicators.end_typing_of_the_absent(room)

    def joined(self, room: str, user: str, when: str) -> None:
        super().joined(room, user, when)
        online = {"roomId": room, "userId": user, "online": True, "lastSeen": when}
        self.tell(room, "presence", online)

    def gone(self, room: str, user: str, when: str, died: bool) -> None:
        """After ``user-left``, ``presence`` offline, then their typing ends: with Redis,
        the typist's process ends it after the marker of their going, so every process
        tells it in this order. A process that died took the typing and its timer with
        it: every process ends it here."""
        super().gone(room, user, when, died)
        offline = {"roomId": room, "userId": user, "online": False, "lastSeen": when}
        self.tell(room, "presence", offline)
        if died:
            self.tell(room, "typing", {"roomId": room, "userId": user, "typing": False})
        self.indicators.stop_typing(room, user)  # started here (with Redis, ended as they left)

    def send_message(self, session: Session, data: Any) -> Any:
        # The ack itself in one process; with Redis, a future (the message is sent
        # already, the hub pipelines it): typing ends once it is answered.
        answer = super().send_message(session, data)
        if isinstance(answer, dict):
            self._end_typing(answer, session)
        else:
            answer.add_done_callback(lambda done: self._end_typing_once_sent(done, session))
        return answer

    def _end_typing(self, answer: dict[str, Any], session: Session) -> None:
        self.indicators.stop_typing(answer["roomId"], session.user, skip=session)

    def _end_typing_once_sent(self, done: asyncio.Future[Any], session: Session) -> None:
        if not done.cancelled() and done.exception() is None:
            self._end_typing(done.result(), session)

    def typing(self, session: Session, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise EnvelopeError(
                ErrorCode.INVALID, 'data must be an object: {"roomId": ..., "typing": true|false}'
            )
        room = room_id(data.get("roomId"), "roomId")
        on = data.get("typing")
        if not isinstance(on, bool):
            raise EnvelopeError(ErrorCode.INVALID, f"typing must be true or false, got {on!r:.40}")
        if not self.ns.rooms.is_member(session, room):
            raise EnvelopeError(ErrorCode.NOT_MEMBER, f"join {room!r} before typing in it")
        if on:
            self.indicators.start_typing(room, session)
        else:
            self.indicators.stop_typing(room, session.user, skip=session)
        return {"roomId": room, "typing": on}

    def direct_message(self, session: Session, data: Any) -> Any:
        ns = self.ns
        if not isinstance(data, dict):
            raise EnvelopeError(
                ErrorCode.INVALID, 'data must be an object: {"to": USER, "message": TEXT}'
            )
        to = data.get("to")
        if not isinstance(to, str) or not USER.fullmatch(to):
            raise EnvelopeError(
                ErrorCode.INVALID,
                f"to must be a user name: 1 to 32 letters, digits or _.- , got {to!r:.40}",
            )
        text = message_text(data.get("message"), "message")
        if to == session.user:
            raise EnvelopeError(ErrorCode.INVALID, "a direct message goes to someone else")
        payload = {"from": session.user, "to": to, "message": text, "timestamp": timestamp()}
        return self.store.direct(session, to, encode_event("direct-message", payload, ns.name))
