"""The lab's events where rooms span processes: what the chat needs of Redis.

:class:`RedisChatEvents` is the chat events' namespace class (chat_events.py) with what
enters a room, leaves it, sends to it and to a user done through the Redis manager
(redis_adapter.py), which names no chat event itself. In return the chat says what the
manager's markers mean: a user's first session in a room (``user-joined``, then
``presence`` online) and a user gone from it on every process (``presence`` offline, then
``user-left``; ``typing`` false first when their process died), each process to its own
members; and it turns what a join read from Redis into the ack's history and presence.
The lab server installs this class instead of :class:`ChatEvents` when it has Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rtlab.aio.chat_events import ChatEvents
from rtlab.core.envelope import encode_event

if TYPE_CHECKING:
    from rtlab.aio.events import Namespace, Session
    from rtlab.aio.lab_app import LabApp
    from rtlab.aio.redis_adapter import Joined, RedisAdapter


class RedisChatEvents(ChatEvents):
    """The chat events of one namespace, with rooms, history and presence in Redis."""

    def __init__(self, ns: Namespace, app: LabApp, adapter: RedisAdapter) -> None:
        super().__init__(ns, app)
        self.adapter = adapter

    def install(self) -> None:
        super().install()
        self.ns.on_joined.append(self.joined)
        self.ns.on_gone.append(self.gone)

    # -- what the events do through Redis ------------------------------------------------

    async def enter(self, session: Session, room: str, since: int | None) -> dict[str, Any]:
        """The whole join across processes (redis_adapter.py); the ack, with the room's
        history and presence the first time."""
        return self.joined_answer(await self.adapter.join_room(session, self.ns, room, since))

    def left(self, session: Session, room: str) -> None:
        """The manager counts ``session`` out and, if its user is gone everywhere, every
        process says so (``gone``); typing that started here ends here."""
        self.chat.end_typing_of_the_absent(room)

    def send(self, session: Session, room: str, payload: dict[str, Any]) -> Any:
        """Numbered, kept and published by one script: a coroutine, awaited."""
        return self.adapter.send_message(session, self.ns.name, room, payload)

    def direct(self, session: Session, to: str, message: str | bytes) -> Any:
        """To ``to``'s sessions and the sender's others, on every process: a coroutine."""
        assert isinstance(message, str)  # a direct message carries text only
        return self.adapter.direct_message(session, self.ns.name, to, message)

    # -- what the manager's markers and answers mean -----------------------------------------

    def joined_answer(self, joined: Joined) -> dict[str, Any]:
        """The ack; the first time in the room, with its history and who is and was in it."""
        answer = joined.answer
        if joined.history is None or joined.offline is None:
            return answer  # already in the room: as the built-in ack
        members = answer["members"]
        presence = [{"userId": u, "online": True, "lastSeen": None} for u in members]
        presence += [
            {"userId": u, "online": False, "lastSeen": t}
            for u, t in joined.offline.items()
            if u not in members
        ]
        answer["history"] = joined.history
        answer["presence"] = sorted(presence, key=lambda entry: entry["userId"])
        return answer

    def joined(self, room: str, user: str, when: str) -> None:
        """``user``'s first session entered ``room`` (on any process)."""
        joined = {"userId": user, "roomId": room}
        online = {"roomId": room, "userId": user, "online": True, "lastSeen": when}
        self._tell(room, encode_event("user-joined", joined, self.ns.name))
        self._tell(room, encode_event("presence", online, self.ns.name))

    def gone(self, room: str, user: str, when: str, died: bool) -> None:
        """``user`` is out of ``room`` on every process: they left, or their process died
        (which kept their typing and its timer: it ends here)."""
        if died:
            ended = {"roomId": room, "userId": user, "typing": False}
            self._tell(room, encode_event("typing", ended, self.ns.name))
        offline = {"roomId": room, "userId": user, "online": False, "lastSeen": when}
        self._tell(room, encode_event("presence", offline, self.ns.name))
        left = {"userId": user, "roomId": room}
        self._tell(room, encode_event("user-left", left, self.ns.name))

    def _tell(self, room: str, frame: str | bytes) -> None:
        """To this process's members of ``room`` (every process tells its own)."""
        self.ns.hub.deliver(list(self.ns.rooms.members(room)), frame)
