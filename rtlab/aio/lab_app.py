"""What the lab's events share on one server: room history and its journal, and limits.

The built-in events (builtin_events.py) number and keep room messages here and check
the rooms a connection may be in; the chat events (chat_events.py) read the recent
history for a join's acknowledgement and how long typing lasts. The lab server
(server.py) makes one and installs both on its event hub, which knows none of this.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rtlab.aio.journal import Journal
from rtlab.core.history import History, Record
from rtlab.core.presence import TYPING_EXPIRY

if TYPE_CHECKING:
    from rtlab.aio.events import EventHub, Session

MAX_ROOMS = 50  # rooms one connection may be in, per namespace


class LabApp:
    """The lab's shared state: history (on disk with a journal) and limits."""

    def __init__(
        self,
        *,
        history: History | None = None,
        journal: Journal | None = None,
        max_rooms: int = MAX_ROOMS,
    ) -> None:
        self.history = history or History()
        self.journal = journal
        self.max_rooms = max_rooms
        self.typing_expiry = TYPING_EXPIRY  # seconds a typing=true lasts unless renewed

    def load_journal(self, hub: EventHub) -> int:
        """Reload the history kept on disk, and the mids it saw into ``hub``; how many messages."""
        if self.journal is None:
            return 0
        # Into an empty history: the file has every message this one holds, and a
        # journal loaded into a history that already had them (the same server
        # started again) would compact them all away.
        fresh = History(self.history.size, self.history.window, self.history.max_rooms)
        loaded = self.journal.load(fresh)
        self.history = fresh
        for record, user, mid in loaded:
            if user is not None and mid is not None:
                hub.remember(user, record.ns, mid, {"roomId": record.room, "seq": record.seq})
        return len(loaded)

    def record(self, session: Session, ns: str, room: str, payload: dict[str, Any]) -> Record:
        """Number a room message and keep it (on disk first, when there is a journal)."""
        record = self.history.append(ns, room, payload, time.time())
        if self.journal is not None:
            mid = session.event.mid if session.event is not None else None
            self.journal.append(record, session.user, mid)
        return record
