"""The class's progress on the lab server: namespace ``/progress`` of ``/ws``.

- A student's checks ``report`` each verdict (rtlab/notebook/progress_report.py); the
  server keeps it in a :class:`~rtlab.core.progress.ClassProgress` and tells the
  instructors watching at once (``progress``).
- An instructor (a token made with ``rtlab token --role instructor``) may ``subscribe``:
  the ack is the class as it is now (``class_view``) and their session joins the room
  the ``progress`` events go to; ``snapshot`` answers the class again (who is online,
  rooms, refusals change without a report); ``announce`` sends a message to every
  connection of the server, as the chat's ``broadcast-message``. Anyone else asking for
  these is refused with ``forbidden`` and a message saying how to get an instructor's token.

The grid lives in this process (:class:`LocalProgress`, on disk too with ``--data-dir``)
or in Redis (rtlab/aio/progress_redis.py, with ``--redis``), where every process sees it.

The page ``/teacher`` (rtlab/static/teacher.html) is this namespace's instructor client.
Tokens are read to learn a role, never logged, kept or shown.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from rtlab.aio.admission import Admission, token_of
from rtlab.aio.builtin_events import timestamp
from rtlab.aio.events import EventHub, Namespace, Session
from rtlab.aio.progress_journal import ProgressJournal
from rtlab.aio.progress_redis import RedisProgress
from rtlab.core.envelope import DEFAULT_NAMESPACE, EnvelopeError, ErrorCode
from rtlab.core.progress import ClassProgress, Report, parse_report, rooms_shown
from rtlab.core.tokens import TokenError, verify_claims

NAMESPACE = "/progress"
INSTRUCTORS = "instructors"  # the room of /progress where instructors' sessions watch
MAX_ANNOUNCEMENT = 500  # characters, as a chat message
RETRY_AFTER = 1.0  # seconds, when Redis is away
SHARE_EVERY = 2.0  # seconds between two shares of a process's door figures (with Redis)
NOT_AN_INSTRUCTOR = (
    "the instructor's view needs an instructor's token: make one with "
    "`rtlab token --role instructor --user NAME` and open /teacher with it"
)


def session_token(session: Session) -> str | None:
    """The token ``session`` opened its connection with (``?token=`` or a Bearer header)."""
    request = session.connection.request
    return token_of(request) if request is not None else None


class LocalProgress:
    """The grid in this process; with a journal, on disk too, read by :meth:`load`."""

    def __init__(
        self, progress: ClassProgress | None = None, journal: ProgressJournal | None = None
    ) -> None:
        self.progress = progress or ClassProgress()
        self.journal = journal
        self.loaded = 0  # reports read from the journal by the last load()

    def load(self) -> int:
        """Read the grid from the journal (the lab server holds the folder's lock); how
        many reports. Into a fresh grid: the file has every report the old one counted."""
        if self.journal is None:
            return 0
        old = self.progress
        fresh = ClassProgress(old.max_students, old.max_exercises)
        self.loaded = self.journal.load(fresh)
        self.progress = fresh
        return self.loaded

    async def record(self, report: Report) -> tuple[bool, dict[str, Any]]:
        """Count ``report``: whether its cell changed, and the cell now."""
        changed = self.progress.record(report) is not None
        if changed and self.journal is not None:
            self.journal.append(report)  # on disk before any instructor sees it
        return changed, self.progress.cell(report.user, report.key).to_json()

    async def grid(self) -> dict[str, Any]:
        progress = self.progress
        return {
            **progress.grid(),
            "evicted": progress.evicted,
            "replaced": progress.replaced,
            "ignored": progress.ignored,
        }

    async def close(self) -> None:
        pass


class ProgressEvents:
    """The ``/progress`` namespace's handlers and the class view they share."""

    def __init__(
        self,
        hub: EventHub,
        admission: Admission,
        store: LocalProgress | RedisProgress | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``store``: where the grid lives (default: this process, in memory)."""
        self.hub = hub
        self.admission = admission
        self.store = store or LocalProgress()
        self.clock = clock
        self._sharing: asyncio.Task[None] | None = None  # with Redis: the door, shared
        self._closing = False  # close() was called: _share ends, even if its cancel is lost
        # A namespace of its own, without the chat events every other namespace gets.
        self.namespace = hub.namespaces.setdefault(NAMESPACE, Namespace(hub, NAMESPACE))
        self.namespace.on("report")(self.report)
        self.namespace.on("subscribe")(self.subscribe)
        self.namespace.on("snapshot")(self.snapshot)
        self.namespace.on("announce")(self.announce)

    # -- who may watch --------------------------------------------------------------

    def role(self, session: Session) -> str | None:
        """``student`` or ``instructor`` from the session's token; None without one."""
        token, secret = session_token(session), self.admission.secret
        if not token or not secret:
            return None
        try:
            return verify_claims(secret, token, self.clock()).role
        except TokenError:
            return None

    def is_instructor(self, session: Session) -> bool:
        return self.role(session) == "instructor"

    def _instructor_only(self, session: Session) -> None:
        if not self.is_instructor(session):
            raise EnvelopeError(ErrorCode.FORBIDDEN, NOT_AN_INSTRUCTOR)

    # -- handlers ---------------------------------------------------------------------

    async def report(self, session: Session, data: Any) -> dict[str, Any]:
        """A student's verdict: the ack is their cell as the server has it now."""
        try:
            report = parse_report(session.user, data)
        except ValueError as error:
            raise EnvelopeError(ErrorCode.INVALID, str(error)) from None
        try:
            changed, cell = await self.store.record(report)
        except (RedisError, OSError, TimeoutError):
            raise _unavailable() from None
        if changed:
            update = {"user": report.user, "exercise": report.key, **cell}
            self.namespace.emit("progress", update, to=INSTRUCTORS)
        return cell

    async def subscribe(self, session: Session, data: Any) -> dict[str, Any]:
        self._instructor_only(session)
        self.namespace.join(session, INSTRUCTORS)
        return await self.class_view()

    async def snapshot(self, session: Session, data: Any) -> dict[str, Any]:
        self._instructor_only(session)
        return await self.class_view()

    def announce(self, session: Session, data: Any) -> dict[str, Any]:
        """Send ``{"message"}`` to every connection; the ack says to how many (with
        ``--redis``, how many on this process: the others deliver too, uncounted)."""
        self._instructor_only(session)
        message = data.get("message") if isinstance(data, dict) else None
        if not isinstance(message, str) or not message.strip():
            raise EnvelopeError(ErrorCode.INVALID, "announce needs {message: some text}")
        if len(message) > MAX_ANNOUNCEMENT:
            raise EnvelopeError(
                ErrorCode.INVALID, f"an announcement is at most {MAX_ANNOUNCEMENT} characters"
            )
        # As the chat's broadcast: the chat page and chat panes show it already.
        announcement = {"userId": session.user, "message": message, "timestamp": timestamp()}
        everyone = self.hub.namespaces[DEFAULT_NAMESPACE]  # every connection is in /
        return {"delivered": everyone.emit("broadcast-message", announcement)}

    # -- what an instructor sees --------------------------------------------------------

    async def class_view(self) -> dict[str, Any]:
        """The class now: students online, the grid, rooms, refusals, rate limits."""
        door = self.door()
        try:
            grid = await self.store.grid()
            if isinstance(self.store, RedisProgress):  # every process's
                online, rooms = await self.store.online(), await self.store.rooms(NAMESPACE)
                await self.store.share_door(door)
                door = combine(await self.store.doors())
            else:
                online, rooms = {s.user for s in self.hub.sessions.values()}, self._rooms()
        except (RedisError, OSError, TimeoutError):
            raise _unavailable() from None
        watching = set(door.pop("watching"))
        return {"online": sorted(online - watching), **grid, "rooms": rooms, **door}

    def door(self) -> dict[str, Any]:
        """What this process's door did: refusals by status, who is rate-limited now,
        sessions dropped, and the instructors watching here."""
        limit = self.hub.rate_limit
        return {
            "refused": {str(status): n for status, n in sorted(self.admission.refused.items())},
            "rateLimited": limit.limited(time.monotonic()) if limit is not None else [],
            "dropped": {"slow": self.hub.dropped_slow, "abusive": self.hub.dropped_abusive},
            "watching": sorted({s.user for s in self.namespace.rooms.members(INSTRUCTORS)}),
        }

    async def _share(self) -> None:
        """With Redis: share this process's door every SHARE_EVERY seconds."""
        assert isinstance(self.store, RedisProgress)
        while True:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await self.store.share_door(self.door())
            # redis-py sends under asyncio.wait_for, which on Python 3.11 loses a cancel
            # that comes as the send ends (CPython gh-86296): the sharing went on forever,
            # and close(), awaiting it, never returned (a worker deaf to SIGTERM).
            if self._closing:
                return
            await asyncio.sleep(SHARE_EVERY)

    def start(self) -> None:
        """Begin sharing this process's door, where the grid lives in Redis."""
        if isinstance(self.store, RedisProgress) and self._sharing is None:
            self._closing = False
            self._sharing = asyncio.get_running_loop().create_task(self._share())

    def _rooms(self) -> list[dict[str, Any]]:
        """The rooms with the most members first (rooms_shown)."""
        sizes = (
            (len(namespace.users(room)), name, room)
            for name, namespace in self.hub.namespaces.items()
            if name != NAMESPACE
            for room in namespace.rooms
        )
        return [
            {"ns": name, "room": room, "members": self.hub.namespaces[name].users(room)}
            for _, name, room in rooms_shown(sizes)
        ]

    async def close(self) -> None:
        self._closing = True
        if self._sharing is not None:
            self._sharing.cancel()
            await asyncio.gather(self._sharing, return_exceptions=True)
            self._sharing = None
        await self.store.close()


def combine(doors: list[dict[str, Any]]) -> dict[str, Any]:
    """Several processes' door figures as one: counts summed, names gathered."""
    refused: collections.Counter[str] = collections.Counter()
    dropped: collections.Counter[str] = collections.Counter({"slow": 0, "abusive": 0})
    limited: set[str] = set()
    watching: set[str] = set()
    for door in doors:
        refused.update(door.get("refused", {}))
        dropped.update(door.get("dropped", {}))
        limited.update(door.get("rateLimited", []))
        watching.update(door.get("watching", []))
    return {
        "refused": dict(sorted(refused.items(), key=lambda item: int(item[0]))),
        "rateLimited": sorted(limited),
        "dropped": dict(dropped),
        "watching": sorted(watching),
    }


def _unavailable() -> EnvelopeError:
    return EnvelopeError(
        ErrorCode.UNAVAILABLE,
        "the class's progress lives in Redis, which is away: try again",
        retry_after=RETRY_AFTER,
    )
