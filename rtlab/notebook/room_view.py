"""What a chat pane knows of its room, as plain data: the view model a pane renders.

Members, who was here and when, who types, the messages, the history the join
brought, direct messages and the log's lines. Each server event or connection change
is one method; none does I/O, draws or locks, so tests drive a :class:`RoomView`
with dictionaries as the server sends them, and :class:`~rtlab.notebook.chatpane.ChatPane`
(which holds the lock and the client) renders one after each change.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from rtlab.core.presence import MAX_SEEN

LOG_LINES = 200  # the log keeps the last LOG_LINES lines
KEPT = 10_000  # messages, and direct messages, kept: the last (a flooded room's too)
Kind = Literal["message", "history", "system", "broadcast", "direct"]
Presence = Literal["joined", "left", "presence", "typing"]


@dataclass(frozen=True)
class Line:
    """One line of the log: a message (``user`` said ``text``) or a note of some kind."""

    kind: Kind
    text: str
    user: str | None = None

    @property
    def plain(self) -> str:
        return self.text if self.user is None else f"{self.user}: {self.text}"


def typing_line(users: Iterable[str]) -> str:
    """``'bob is typing…'``, ``'bob and carol are typing…'``, or ``''`` for nobody."""
    names = sorted(users)
    if not names:
        return ""
    if len(names) == 1:
        return f"{names[0]} is typing…"
    return f"{', '.join(names[:-1])} and {names[-1]} are typing…"


class RoomView:
    """One user's view of one room, kept current by the server's events."""

    def __init__(self, user: str, room: str) -> None:
        self.user = user
        self.room = room
        self.messages: collections.deque[tuple[str, str]] = collections.deque(maxlen=KEPT)
        self.received = 0  # the room's messages that arrived, kept or not
        self.online: set[str] = set()
        # Offline users: when last seen (ISO); the last MAX_SEEN gone, as the server keeps.
        self.away: dict[str, str | None] = {}
        self.typing: set[str] = set()  # the others typing in the room
        self.history: list[tuple[str, str]] = []  # the room's messages from before the join
        # Direct messages: from, to, text.
        self.direct: collections.deque[tuple[str, str, str]] = collections.deque(maxlen=KEPT)
        self.lines: collections.deque[Line] = collections.deque(maxlen=LOG_LINES)
        self.connected = False
        self.ended = False
        self.joined = False
        self._early: list[tuple[Presence, dict[str, Any]]] = []  # events before the join's ack

    def note(self, text: str, kind: Kind = "system") -> None:
        """A line of the log that is no message: a system note, a broadcast, a DM."""
        self.lines.append(Line(kind, text))

    def join(self, ack: Any, *, first: bool = False) -> None:
        """The join's answer: who is here and who was, and (the first time) the history;
        then the presence events that came before it."""
        ack = ack if isinstance(ack, dict) else {}
        members = ack.get("members", [])
        presence = [p for p in ack.get("presence", []) if isinstance(p, dict)]
        history = [m for m in ack.get("history", []) if isinstance(m, dict)] if first else []
        self.online = {str(m) for m in members} | {self.user}
        self.away = {
            str(p.get("userId")): p.get("lastSeen")
            for p in presence
            if not p.get("online") and str(p.get("userId")) not in self.online
        }
        if history:
            self.note(f"⋯ {len(history)} earlier messages")
        for message in history:
            user, text = str(message.get("userId", "?")), str(message.get("message", ""))
            self.history.append((user, text))
            self.lines.append(Line("history", text, user))
        self.joined = True
        early, self._early = self._early, []
        for kind, data in early:
            self._presence(kind, data)

    def message(self, data: Any) -> bool:
        """A ``receive-message``; whether it was this room's."""
        if not isinstance(data, dict) or data.get("roomId") != self.room:
            return False
        user, text = str(data.get("userId", "?")), str(data.get("message", ""))
        self.messages.append((user, text))
        self.received += 1
        self.typing.discard(user)  # the message ends the typing (the server says so too)
        self.lines.append(Line("message", text, user))
        return True

    def broadcast(self, data: Any) -> bool:
        if not isinstance(data, dict):
            return False
        self.note(f"📢 {data.get('userId', '?')}: {data.get('message', '')}", "broadcast")
        return True

    def direct_message(self, sender: str, to: str, text: str) -> None:
        """A direct message to or from this user (received, or sent from this pane)."""
        self.direct.append((sender, to, text))
        self.note(f"✉ {sender} → {to}: {text}", "direct")

    def presence(self, kind: Presence, data: Any) -> bool:
        """``user-joined``, ``user-left``, ``presence`` or ``typing``; whether it changed
        what shows (events before the join's answer wait for it)."""
        if not isinstance(data, dict) or data.get("roomId") != self.room:
            return False
        if not self.joined:
            self._early.append((kind, data))
            return False
        self._presence(kind, data)
        return True

    def _presence(self, kind: Presence, data: dict[str, Any]) -> None:
        user = str(data.get("userId", "?"))
        if kind == "typing":
            if user == self.user:
                return  # this user's other tab: not news here
            if data.get("typing") is True and user in self.online:
                self.typing.add(user)
            else:
                self.typing.discard(user)
        elif kind == "presence":
            if data.get("online") is True:
                self.online.add(user)
                self.away.pop(user, None)
            else:
                self.online.discard(user)
                self.typing.discard(user)
                self._gone(user, data.get("lastSeen"))
        elif kind == "joined":
            self.online.add(user)
            self.away.pop(user, None)
            self.note(f"→ {user} joined")
        else:
            self.online.discard(user)
            self.typing.discard(user)
            if user not in self.away:
                self._gone(user, None)  # when: the presence event that follows says
            self.note(f"← {user} left")

    def _gone(self, user: str, when: str | None) -> None:
        self.away.pop(user, None)  # last in the order: the most recently gone
        self.away[user] = when
        if len(self.away) > MAX_SEEN:
            del self.away[next(iter(self.away))]

    def dropped(self) -> bool:
        """The link dropped (the client reconnects); whether that is news."""
        if self.ended or not self.connected:
            return False
        self.note("✖ disconnected")
        self.connected = False
        self._forget_room()
        return True

    def back(self) -> bool:
        """Reconnected: presence events wait for the member list again, as at first."""
        if self.ended:
            return False
        self.connected = True
        self.joined = False
        self.note("✔ reconnected")
        return True

    def end(self) -> bool:
        """Closed for good; whether it was still open."""
        if self.ended:
            return False
        self.ended = True
        if self.connected:
            self.note("✖ disconnected")
        self.connected = False
        self._forget_room()
        return True

    def _forget_room(self) -> None:
        """Offline: who is there and who types are unknown now."""
        self.online.clear()
        self.away.clear()
        self.typing.clear()

    def summary(self) -> str:
        """Who is online, how many messages, and who is away, types, or spoke before."""
        extra = ""
        if self.away:
            extra += f", offline={sorted(self.away)!r}"
        if self.typing:
            extra += f", typing={sorted(self.typing)!r}"
        if self.history:
            extra += f", history={len(self.history)}"
        return f"online={sorted(self.online)!r}, messages={self.received}{extra}"

    def __repr__(self) -> str:
        return f"<RoomView {self.user!r} in {self.room!r}: {self.summary()}>"
