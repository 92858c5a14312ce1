"""The lab's rooms in this process: history with its journal, and presence with last seen.

:class:`LocalRooms` is the room store (room_store.py) of a server without Redis, one per
namespace: room messages are numbered and kept by the server's :class:`LabApp` (durable
before visible, lab_app.py), who was in a room and when by a :class:`Presence`
(rtlab/core/presence.py). It raises the namespace's markers at once: a user's first
session in a room (``Namespace.joined``, before the session is among the members) and
their last one gone (``Namespace.gone``). Nothing here awaits: a room message costs no
coroutine.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rtlab.aio.room_store import HISTORY, REPLAYED_PER_EVENT, Ack
from rtlab.core import room_message
from rtlab.core.envelope import EnvelopeError, ErrorCode
from rtlab.core.presence import Presence, iso

if TYPE_CHECKING:
    from rtlab.aio.events import Namespace, Session
    from rtlab.aio.lab_app import LabApp


class LocalRooms:
    """One namespace's rooms, history and presence, in this process."""

    def __init__(self, ns: Namespace, app: LabApp) -> None:
        self.ns = ns
        self.app = app
        self.presence = Presence()

    def enter(self, session: Session, room: str, since: int | None) -> Ack:
        ns, user, history = self.ns, session.user, self.app.history
        now = time.time()
        first = not ns.has_user(user, room)  # not there from another tab, say
        if first:
            ns.joined(room, user, iso(now))  # told to the members already there
        ns.join(session, room)
        if first:
            self.presence.update(room, ns.users(room), now)
        answer: Ack = {"roomId": room, "members": ns.users(room)}
        answer["seq"] = history.last_seq(ns.name, room)
        if since is not None:
            # Recovery: what the joiner missed, before anything new, in order.
            missed, complete = history.since(ns.name, room, since, now)
            for payload in missed:
                ns.hub.deliver([session], room_message.event(ns.name, payload))
            ns.hub.charge(session, len(missed) // REPLAYED_PER_EVENT)
            answer["recovered"] = complete
            answer["replayed"] = len(missed)
        answer["history"] = history.recent(ns.name, room, HISTORY, now)
        answer["presence"] = self.presence_list(room)
        return answer

    def left(self, session: Session, room: str) -> None:
        ns, user = self.ns, session.user
        if ns.has_user(user, room):
            return  # another tab of theirs is still there
        now = time.time()
        self.presence.update(room, ns.users(room), now)
        ns.gone(room, user, iso(now), died=False)

    def presence_list(self, room: str) -> list[dict[str, Any]]:
        """What the join's acknowledgement says about who is (and was) in ``room``."""
        return [
            {
                "userId": entry.user,
                "online": entry.online,
                "lastSeen": None if entry.last_seen is None else iso(entry.last_seen),
            }
            for entry in self.presence.entries(room)
        ]

    def send(self, session: Session, room: str, payload: dict[str, Any]) -> Ack:
        ns = self.ns
        record = self.app.record(session, ns.name, room, payload)
        message = room_message.event(ns.name, record.payload)
        delivered = ns.hub.manager.publish(ns.name, message, room=room)
        return room_message.sent(room, record.seq, delivered)

    def direct(self, session: Session, to: str, frame: str | bytes) -> Ack:
        ns = self.ns
        recipients = [s for s in ns.sessions if s.user == to]
        if not recipients:
            raise EnvelopeError(ErrorCode.UNKNOWN_USER, f"{to!r:.40} is not connected here")
        mine = [s for s in ns.sessions if s.user == session.user and s is not session]
        return {"delivered": ns.hub.deliver(recipients + mine, frame)}
