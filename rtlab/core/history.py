"""Recent room messages, numbered per room, so that a client coming back gets what it missed.

Every message delivered to a room gets the room's next sequence number ``seq``
(1, 2, 3...). A client remembers the last ``seq`` it saw; when it rejoins after a
drop it asks for everything ``since`` that number, as Socket.IO's connection state
recovery does. The server keeps the last ``size`` messages of each room, no older
than ``window`` seconds: a client away for longer is told its recovery is incomplete.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Record:
    """One room message as kept: where, its number, when, and what was delivered."""

    ns: str
    room: str
    seq: int
    time: float
    payload: dict[str, Any]


class History:
    """The last messages of every room, by namespace and room."""

    def __init__(self, size: int = 1000, window: float = 300.0, rooms: int = 10_000) -> None:
        if size < 1 or window <= 0:
            raise ValueError(f"need size >= 1 and window > 0, got {size} and {window}")
        if rooms < 1:
            raise ValueError(f"need rooms >= 1, got {rooms}")
        self.size = size
        self.window = window
        self.max_rooms = rooms  # beyond it, the least recently used room's history goes
        self._rooms: dict[tuple[str, str], collections.deque[Record]] = {}
        self._last: dict[tuple[str, str], int] = {}

    def last_seq(self, ns: str, room: str) -> int:
        """The number of the newest message of the room (0 if none yet)."""
        return self._last.get((ns, room), 0)

    def append(self, ns: str, room: str, payload: dict[str, Any], now: float) -> Record:
        """Number a new message and keep it; its payload gains ``seq``."""
        seq = self.last_seq(ns, room) + 1
        return self.add(Record(ns, room, seq, now, {**payload, "seq": seq}))

    def add(self, record: Record) -> Record:
        """Keep a record numbered elsewhere (reloading from disk); numbers only go up."""
        key = (record.ns, record.room)
        if record.seq <= self.last_seq(*key):
            raise ValueError(f"seq {record.seq} in {key} is not after {self.last_seq(*key)}")
        kept = self._rooms.pop(key, None) or collections.deque(maxlen=self.size)
        kept.append(record)
        self._rooms[key] = kept  # most recently used last
        self._last.pop(key, None)
        self._last[key] = record.seq
        while len(self._rooms) > self.max_rooms:
            del self._rooms[next(iter(self._rooms))]
        while len(self._last) > 2 * self.max_rooms:  # numbers outlive messages, not for ever
            del self._last[next(iter(self._last))]
        return record

    def since(self, ns: str, room: str, seq: int, now: float) -> tuple[list[dict[str, Any]], bool]:
        """The payloads after ``seq``, oldest first, and whether nothing in between is lost."""
        kept = [r for r in self._rooms.get((ns, room), ()) if now - r.time <= self.window]
        missed = [r.payload for r in kept if r.seq > seq]
        first_kept = kept[0].seq if kept else self.last_seq(ns, room) + 1
        complete = seq >= self.last_seq(ns, room) or seq + 1 >= first_kept
        return missed, complete

    def recent(self, ns: str, room: str, count: int, now: float) -> list[dict[str, Any]]:
        """The last ``count`` payloads of a room within the window, oldest first."""
        kept = [r.payload for r in self._rooms.get((ns, room), ()) if now - r.time <= self.window]
        return kept[-count:] if count > 0 else []

    def records(self) -> list[Record]:
        """Everything kept, room by room (what a journal compacts to)."""
        return [r for key in sorted(self._rooms) for r in self._rooms[key]]
