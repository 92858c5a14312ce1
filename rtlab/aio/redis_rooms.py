"""The lab's rooms across processes: the room store (room_store.py) over the Redis manager.

:class:`RedisRooms` enters, sends and writes to a user through the scripts of the
:class:`RedisAdapter` (redis_adapter.py), which names no chat event, and makes the acks
of what they answer: a join's with the room's history and who is and was in it.
Leaving needs nothing more of it: the hub (a disconnection) and ``leave-room`` tell the
manager, whose script publishes a ``left`` marker when the user is gone from the room
on every process. Every process hands the adapter's markers to its namespace
(``Namespace.joined``, ``Namespace.gone``), as the local store raises them.
"""

from __future__ import annotations

from asyncio import Future
from typing import TYPE_CHECKING, Any

from rtlab.aio.room_store import REPLAYED_PER_EVENT, Ack
from rtlab.core.envelope import EnvelopeError, ErrorCode

if TYPE_CHECKING:
    from rtlab.aio.events import Namespace, Session
    from rtlab.aio.redis_adapter import Joined, RedisAdapter


class RedisRooms:
    """One namespace's rooms, history and presence, in Redis: each answer a coroutine."""

    def __init__(self, ns: Namespace, adapter: RedisAdapter) -> None:
        self.ns = ns
        self.adapter = adapter

    async def enter(self, session: Session, room: str, since: int | None) -> Ack:
        """The whole join across processes, in one script (redis_adapter.py)."""
        joined = await self.adapter.join_room(session, self.ns, room, since)
        self.ns.hub.charge(session, (joined.replayed or 0) // REPLAYED_PER_EVENT)
        return joined_answer(room, joined)

    def left(self, session: Session, room: str) -> None:
        pass  # the manager was told: its left marker reaches every process

    def send(self, session: Session, room: str, payload: dict[str, Any]) -> Future[Ack]:
        """Numbered, kept, checked against its mid and published by one script."""
        return self.adapter.send_message(session, self.ns.name, room, payload)

    async def direct(self, session: Session, to: str, frame: str | bytes) -> Ack:
        assert isinstance(frame, str)  # a direct message carries text only
        delivered = await self.adapter.direct_message(session, self.ns.name, to, frame)
        if delivered < 0:
            raise EnvelopeError(ErrorCode.UNKNOWN_USER, f"{to!r:.40} is not connected")
        return {"delivered": delivered}


def joined_answer(room: str, joined: Joined) -> Ack:
    """The ack; the first time in the room, with its history and who is and was in it."""
    members = joined.members
    answer: Ack = {"roomId": room, "members": members, "seq": joined.seq}
    if joined.recovered is not None:
        answer["recovered"] = joined.recovered
        answer["replayed"] = joined.replayed
    if joined.history is None or joined.offline is None:
        return answer  # already in the room: as the built-in ack
    presence = [{"userId": u, "online": True, "lastSeen": None} for u in members]
    presence += [
        {"userId": u, "online": False, "lastSeen": t}
        for u, t in joined.offline.items()
        if u not in members
    ]
    answer["history"] = joined.history
    answer["presence"] = sorted(presence, key=lambda entry: entry["userId"])
    return answer
