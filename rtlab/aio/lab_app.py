"""What the lab's events share on one server: room history and its journal, and limits.

The rooms of a server without Redis (local_rooms.py) number and keep room messages
here and read the recent history for a join's acknowledgement; the built-in events
(builtin_events.py) check the rooms a connection may be in, the chat events
(chat_events.py) how long typing lasts. The lab server (server.py) makes one and
installs the events on its event hub, which knows none of this.

A room message is durable before it is visible: numbered, written to the journal,
then kept in the history, then delivered (:meth:`LabApp.record`). A message the
journal could not store is refused with ``unavailable`` and seen by no one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rtlab.aio.journal import Journal, JournalError
from rtlab.core.envelope import EnvelopeError, ErrorCode
from rtlab.core.history import History, Record
from rtlab.core.presence import TYPING_EXPIRY

if TYPE_CHECKING:
    from rtlab.aio.events import EventHub, Session

MAX_ROOMS = 50  # rooms one connection may be in, per namespace
RETRY_STORE = 5.0  # seconds a sender refused for a failed write is told to wait


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
        # Who may send to everyone (broadcast): anyone, but on a class's server
        # (LabServer with a secret) its instructors alone.
        self.may_broadcast: Callable[[Session], bool] = lambda session: True
        self._compaction: asyncio.Task[bool] | None = None

    def load_journal(self, hub: EventHub) -> int:
        """Reload the history kept on disk, and the mids it saw into ``hub``; how many messages."""
        if self.journal is None:
            return 0
        # Into an empty history: the file has every message this one holds, and a
        # journal loaded into a history that already had them (the same server
        # started again) would find them all repeated.
        old = self.history
        fresh = History(old.size, old.window, old.max_rooms, old.max_bytes)
        loaded = self.journal.load(fresh)
        self.history = fresh
        for record in loaded:
            if record.user is not None and record.mid is not None:
                hub.remember(
                    record.user, record.ns, record.mid, {"roomId": record.room, "seq": record.seq}
                )
        return len(loaded)

    def record(self, session: Session, ns: str, room: str, payload: dict[str, Any]) -> Record:
        """Number a room message, write it to the journal (if any), then keep it; the caller
        delivers it. Refused (``unavailable``) when the journal could not store it."""
        mid = session.event.mid if session.event is not None else None
        record = self.history.number(ns, room, payload, time.time(), session.user, mid)
        if self.journal is not None:
            try:
                self.journal.append(record)
            except JournalError as error:
                raise EnvelopeError(
                    ErrorCode.UNAVAILABLE,
                    f"the server could not store your message ({error.reason}): "
                    "it was not delivered",
                    retry_after=RETRY_STORE,
                ) from None
            if self.journal.due() and (self._compaction is None or self._compaction.done()):
                self._compaction = asyncio.get_running_loop().create_task(
                    self.journal.compact(self.history)
                )
        return self.history.add(record)
