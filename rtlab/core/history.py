"""Recent room messages, numbered per room, so that a client coming back gets what it missed.

Every message delivered to a room gets the room's next sequence number ``seq``
(1, 2, 3...). A client remembers the last ``seq`` it saw; when it rejoins after a
drop it asks for everything ``since`` that number, as Socket.IO's connection state
recovery does. The server keeps the last ``size`` messages of each room, no older
than ``window`` seconds: a client away for longer is told its recovery is incomplete.

Memory is bounded three ways: ``size`` messages per room, ``rooms`` rooms (the least
recently used room's messages go first), and ``max_bytes`` in all, each message
counted as its JSON plus :data:`RECORD_OVERHEAD` (what Python's objects around it
cost, measured): past it, the least recently used room loses its oldest messages.
Messages only ever go from the oldest end, so ``since`` stays honest.

Numbers outlive messages: a room's last ``seq`` is kept for ``2 * rooms`` rooms, and a
room forgotten beyond that folds its last ``seq`` into one of :data:`FLOORS` floors
(chosen by a stable hash of the room), below which no room of that floor numbers a
message again. So a ``seq`` never repeats in a room, and a client that still holds a
forgotten room's numbers is told its recovery is incomplete instead of being given
old numbers for new messages.
"""

from __future__ import annotations

import collections
import zlib
from dataclasses import dataclass, field
from typing import Any

from rtlab.core.envelope import JSON_ASCII

# Bytes a kept message costs besides its values' own (the dict, the record, its place in
# the deque): traced, 626 bytes per chat message whose values take 276.
RECORD_OVERHEAD = 352
MAX_BYTES = 64 * 2**20  # the default budget for every room's messages together
FLOORS = 1024  # numbering floors for forgotten rooms


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 4 times as much, per message
class Record:
    """One room message as kept: where, its number, when, what was delivered, and who
    sent it with which ``mid`` (to recognise a resend after a restart)."""

    ns: str
    room: str
    seq: int
    time: float
    payload: dict[str, Any]
    user: str | None = None
    mid: str | None = None
    size: int = field(default=0, compare=False)  # its cost, counted when it is kept


def floor_of(ns: str, room: str) -> int:
    """The floor a room's numbers fall back on once it is forgotten (stable across runs)."""
    return zlib.crc32(f"{ns} {room}".encode(errors="surrogatepass")) % FLOORS


_FLAT = frozenset({str, int, float, bool, type(None)})


def cost(record: Record) -> int:
    """What keeping ``record`` counts against ``max_bytes``: its memory, near enough.

    A chat message's values are strings and numbers, whose size Python knows exactly
    (``__sizeof__``: ``sys.getsizeof`` without its look-ups, the same for objects the
    garbage collector does not track, and far cheaper than encoding the payload
    again); anything nested counts its JSON text plus one more overhead for its
    containers. :meth:`History.add` counts it once and keeps it in ``record.size``."""
    size = RECORD_OVERHEAD
    for value in record.payload.values():
        if type(value) in _FLAT:
            size += value.__sizeof__()
        else:
            size += len(JSON_ASCII.encode(value)) + RECORD_OVERHEAD
    return size


class History:
    """The last messages of every room, by namespace and room."""

    def __init__(
        self,
        size: int = 1000,
        window: float = 300.0,
        rooms: int = 10_000,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        if size < 1 or window <= 0:
            raise ValueError(f"need size >= 1 and window > 0, got {size} and {window}")
        if rooms < 1:
            raise ValueError(f"need rooms >= 1, got {rooms}")
        if max_bytes < 1:
            raise ValueError(f"need max_bytes >= 1, got {max_bytes}")
        self.size = size
        self.window = window
        self.max_rooms = rooms  # beyond it, the least recently used room's history goes
        self.max_bytes = max_bytes
        self.bytes = 0  # what the kept messages count against max_bytes
        # (ns, room) -> its messages, least recently used room first.
        self._rooms: dict[tuple[str, str], collections.deque[Record]] = {}
        self._last: dict[tuple[str, str], int] = {}
        self._floors: dict[int, int] = {}

    def last_seq(self, ns: str, room: str) -> int:
        """The number of the newest message of the room (0 if none yet); for a room
        forgotten, its floor: the highest number it may have had."""
        last = self._last.get((ns, room))
        return last if last is not None else self._floors.get(floor_of(ns, room), 0)

    def number(
        self,
        ns: str,
        room: str,
        payload: dict[str, Any],
        now: float,
        user: str | None = None,
        mid: str | None = None,
    ) -> Record:
        """The room's next message, numbered but not kept yet (:meth:`add` keeps it):
        its payload gains ``seq``. Numbering it again before adding gives the same number."""
        seq = self.last_seq(ns, room) + 1
        return Record(ns, room, seq, now, {**payload, "seq": seq}, user, mid)

    def append(self, ns: str, room: str, payload: dict[str, Any], now: float) -> Record:
        """Number a new message and keep it."""
        return self.add(self.number(ns, room, payload, now))

    def add(self, record: Record) -> Record:
        """Keep a record numbered by :meth:`number` or elsewhere (reloading from disk);
        a room's numbers only go up."""
        key = (record.ns, record.room)
        if record.seq <= self._last.get(key, 0):
            raise ValueError(f"seq {record.seq} in {key} is not after {self._last[key]}")
        kept = self._rooms.pop(key, None) or collections.deque()
        if len(kept) == self.size:
            self.bytes -= kept.popleft().size
        record.size = cost(record)
        kept.append(record)
        self.bytes += record.size
        self._rooms[key] = kept  # most recently used last
        self._note(key, record.seq)
        while len(self._rooms) > self.max_rooms:
            self._drop_room(next(iter(self._rooms)))
        while self.bytes > self.max_bytes:
            oldest = next(iter(self._rooms))  # the least recently used room's oldest first
            messages = self._rooms[oldest]
            self.bytes -= messages.popleft().size
            if not messages:
                del self._rooms[oldest]
        return record

    def mark(self, ns: str, room: str, last: int) -> None:
        """A room's last number without its messages (reloading from disk); only up."""
        key = (ns, room)
        if last > self._last.get(key, 0):
            self._note(key, last)

    def raise_floor(self, floor: int, last: int) -> None:
        """No room of ``floor`` numbers a message ``last`` or below again."""
        if last > self._floors.get(floor, 0):
            self._floors[floor] = last

    def _note(self, key: tuple[str, str], seq: int) -> None:
        self._last.pop(key, None)
        self._last[key] = seq
        while len(self._last) > 2 * self.max_rooms:  # numbers outlive messages, in floors
            (ns, room), last = next(iter(self._last.items()))
            del self._last[ns, room]
            self.raise_floor(floor_of(ns, room), last)

    def _drop_room(self, key: tuple[str, str]) -> None:
        self.bytes -= sum(record.size for record in self._rooms.pop(key))

    def since(self, ns: str, room: str, seq: int, now: float) -> tuple[list[dict[str, Any]], bool]:
        """The payloads after ``seq``, oldest first, and whether nothing in between is lost."""
        kept = [r for r in self._rooms.get((ns, room), ()) if now - r.time <= self.window]
        missed = [r.payload for r in kept if r.seq > seq]
        last = self.last_seq(ns, room)
        first_kept = kept[0].seq if kept else last + 1
        complete = seq >= last or seq + 1 >= first_kept
        return missed, complete

    def recent(self, ns: str, room: str, count: int, now: float) -> list[dict[str, Any]]:
        """The last ``count`` payloads of a room within the window, oldest first."""
        kept = self._rooms.get((ns, room), ())
        fresh = [r.payload for r in kept if now - r.time <= self.window]
        return fresh[-count:] if count > 0 else []

    def records(self) -> list[Record]:
        """Everything kept, sorted by namespace and room: what a test or a lesson inspects."""
        return [r for key in sorted(self._rooms) for r in self._rooms[key]]

    def snapshot(
        self,
    ) -> tuple[list[tuple[Record, ...]], list[tuple[str, str, int]], dict[int, int]]:
        """What a journal compacts to, copied quickly (references only): each room's
        records (least recently used room first, so reloading them keeps that order),
        the last number of every room remembered whose newest message is not kept
        (those rooms have none), and the floors."""
        rooms = [tuple(kept) for kept in self._rooms.values()]
        marks = [
            (ns, room, last)
            for (ns, room), last in self._last.items()
            if (ns, room) not in self._rooms or self._rooms[ns, room][-1].seq != last
        ]
        return rooms, marks, dict(self._floors)
