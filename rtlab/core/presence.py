"""Presence and typing as pure state: who is online where, last seen, typing deadlines.

No I/O and no clock: every call is given the time. A server without Redis keeps one
:class:`Presence` per namespace (rtlab/aio/local_rooms.py), the chat events one
:class:`Typing` (rtlab/aio/chat_events.py), and a client decides when to send
``typing`` with :func:`debounce`.

Presence is per user, not per connection: a user with two tabs in a room comes
online when the first joins and goes offline when the last leaves. So the table
is told who is in the room now (:meth:`Presence.update`) and works out the changes.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

MAX_SEEN = 1000  # offline users remembered per room, the longest gone forgotten first
MAX_ROOMS = 10_000  # rooms whose offline users are remembered, the least recently changed go
# Offline users remembered in all rooms together (about 150 bytes each, measured from
# outside: 15 MiB); past it the least recently changed room forgets its longest gone.
MAX_ENTRIES = 100_000
TYPING_EXPIRY = 5.0  # seconds a typing=true lasts on the server unless renewed
TYPING_IDLE = 2.0  # seconds without a key before a client says typing=false
TYPING_RENEW = 3.0  # seconds after which a client still typing says typing=true again


def iso(t: float) -> str:
    """A Unix time as JavaScript's ``new Date(t * 1000).toISOString()`` writes it."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Change:
    """A user came online in a room (``online``) or went offline, at ``time``."""

    room: str
    user: str
    online: bool
    time: float


@dataclass(frozen=True)
class Entry:
    """One line of a room's presence list; ``last_seen`` is None while online."""

    user: str
    online: bool
    last_seen: float | None


class Presence:
    """Who is online in each room, and when the others were last seen there."""

    def __init__(
        self, max_seen: int = MAX_SEEN, max_rooms: int = MAX_ROOMS, max_entries: int = MAX_ENTRIES
    ) -> None:
        if min(max_seen, max_rooms, max_entries) < 1:
            raise ValueError(
                "need max_seen, max_rooms and max_entries >= 1, "
                f"got {max_seen}, {max_rooms}, {max_entries}"
            )
        self.max_seen = max_seen
        self.max_rooms = max_rooms
        self.max_entries = max_entries
        self.remembered = 0  # offline users remembered, in every room
        self._online: dict[str, frozenset[str]] = {}
        # room -> offline user -> when they left, the longest gone first
        self._seen: collections.OrderedDict[str, collections.OrderedDict[str, float]] = (
            collections.OrderedDict()
        )

    def update(self, room: str, users: Iterable[str], now: float) -> list[Change]:
        """``users`` are in ``room`` now (repeats allowed: one per tab); the changes, by user."""
        after = frozenset(users)
        before = self._online.get(room, frozenset())
        changes = [Change(room, u, u in after, now) for u in sorted(before ^ after)]
        if after:
            self._online[room] = after
        else:
            self._online.pop(room, None)
        if changes:
            seen = self._seen.pop(room, None) or collections.OrderedDict()
            self.remembered -= len(seen)
            for change in changes:
                seen.pop(change.user, None)
                if not change.online:
                    seen[change.user] = now
            while len(seen) > self.max_seen:
                seen.popitem(last=False)
            self.remembered += len(seen)
            if seen:
                self._seen[room] = seen  # most recently changed rooms last
            while len(self._seen) > self.max_rooms:
                self.remembered -= len(self._seen.popitem(last=False)[1])
            while self.remembered > self.max_entries:  # the least recently changed room's
                oldest = next(iter(self._seen.values()))  # longest gone first
                oldest.popitem(last=False)
                self.remembered -= 1
                if not oldest:
                    self._seen.popitem(last=False)
        return changes

    def online(self, room: str) -> list[str]:
        """Who is online in ``room``, sorted."""
        return sorted(self._online.get(room, ()))

    def last_seen(self, room: str, user: str) -> float | None:
        """When ``user`` left ``room``; None while online, or if never seen (or forgotten)."""
        return self._seen.get(room, {}).get(user)

    def entries(self, room: str) -> list[Entry]:
        """Everyone online in ``room`` or remembered as offline, sorted by user."""
        seen = self._seen.get(room, {})
        online = [Entry(u, True, None) for u in self._online.get(room, ())]
        return sorted([*online, *(Entry(u, False, t) for u, t in seen.items())], key=_by_user)

    def __repr__(self) -> str:
        return f"<Presence {len(self._online)} rooms online, {len(self._seen)} remembered>"


def _by_user(entry: Entry) -> str:
    return entry.user


class Typing:
    """Typing indicators with deadlines: a start lasts ``expiry`` seconds unless renewed."""

    def __init__(self) -> None:
        self._until: dict[tuple[str, str], float] = {}

    def start(self, room: str, user: str, now: float, expiry: float = TYPING_EXPIRY) -> bool:
        """``user`` types in ``room`` until ``now + expiry``; True if that is news."""
        news = (room, user) not in self._until
        self._until[(room, user)] = now + expiry
        return news

    def stop(self, room: str, user: str) -> bool:
        """``user`` stopped typing (said so, sent a message, left); True if they were typing."""
        return self._until.pop((room, user), None) is not None

    def expire(self, room: str, user: str, now: float) -> bool:
        """End ``user``'s typing in ``room`` if its deadline has passed; True if it ended."""
        until = self._until.get((room, user))
        if until is None or until > now:
            return False
        del self._until[(room, user)]
        return True

    def deadline(self, room: str, user: str) -> float | None:
        return self._until.get((room, user))

    def typing(self, room: str) -> list[str]:
        """Who is typing in ``room``, sorted."""
        return sorted(u for r, u in self._until if r == room)

    def __len__(self) -> int:
        return len(self._until)


# -- the client's side: when to say typing=true and typing=false -------------------------

Input = Literal["key", "tick", "send"]


@dataclass(frozen=True)
class Debounce:
    """A text box's typing state: on or off, when the last key came, when "on" was sent."""

    typing: bool = False
    last_key: float = 0.0
    sent: float = 0.0


def debounce(
    state: Debounce,
    what: Input,
    now: float,
    idle: float = TYPING_IDLE,
    renew: float = TYPING_RENEW,
) -> tuple[Debounce, bool | None]:
    """The next state, and what to send: ``True`` (typing), ``False`` (stopped) or None.

    - ``"key"``: the first key sends True; later keys send nothing, except True again
      once ``renew`` seconds passed since it was sent (the server forgets after 5 s);
    - ``"tick"`` (a timer): ``idle`` seconds after the last key, send False;
    - ``"send"``: the message went, so typing is over: False if it was on.
    """
    if what == "key":
        if not state.typing or now - state.sent >= renew:
            return Debounce(True, now, now), True
        return replace(state, last_key=now), None
    if what == "tick":
        if state.typing and now - state.last_key >= idle:
            return Debounce(), False
        return state, None
    if what == "send":
        return Debounce(), (False if state.typing else None)
    raise ValueError(f"what must be 'key', 'tick' or 'send', got {what!r}")
