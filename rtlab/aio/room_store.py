"""Where the lab's rooms live: the one interface the built-in and chat events go through.

A :class:`RoomStore` enters a session in a room (the join's ack: members, ``seq``, what
was missed, the room's recent history and who is and was in it), hears that a session
left one, sends to a room (numbered, kept, delivered: the ack) and to a user. The lab
server picks one per namespace, with the manager that goes with it: local_rooms.py
(this process: History, the journal, Presence) or redis_rooms.py (every process on one
Redis, through the manager's scripts).

Both report membership changes the same way, through the namespace's markers: a
user's first session in a room (``Namespace.joined``) and a user gone from it
everywhere (``Namespace.gone``), raised at once by the local store and read from the
channel by every process with Redis. The chat app says what they mean.
"""

from __future__ import annotations

from asyncio import Future
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rtlab.aio.events import Session

HISTORY = 50  # messages of a room sent with the join's acknowledgement
# A join with ``since`` costs the rate limit one event more for every this many messages
# it replays: one event must not make the server send a room's whole history again and
# again (6 MB a join, ten joins a second, without it).
REPLAYED_PER_EVENT = 100

Ack = dict[str, Any]


class RoomStore(Protocol):
    """One namespace's rooms, messages and presence; an answer may be awaitable."""

    def enter(self, session: Session, room: str, since: int | None) -> Ack | Awaitable[Ack]:
        """Put ``session`` in ``room``, after replaying to it what came after ``since``;
        the join's ack: roomId, members, seq (recovered and replayed with ``since``), then
        the room's recent history and who is and was in it, last seen (with Redis, only
        when the session was not in the room yet)."""
        ...

    def left(self, session: Session, room: str) -> None:
        """``session`` is out of ``room`` here (and the manager was told)."""
        ...

    def send(self, session: Session, room: str, payload: dict[str, Any]) -> Ack | Future[Ack]:
        """Number, keep (durably first) and deliver a room message; the ack: roomId, seq,
        delivered. Refused with ``unavailable`` when it could not be kept. A future only
        when everything it does was sent already, in order (``send-message`` is
        pipelined: the hub goes on with the session's next events meanwhile)."""
        ...

    def direct(self, session: Session, to: str, frame: str | bytes) -> Ack | Awaitable[Ack]:
        """Write an encoded event to every session of ``to`` and the sender's others;
        the ack: delivered. Refused with ``unknown_user`` when ``to`` is not connected."""
        ...
