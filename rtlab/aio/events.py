"""The event layer on ``/ws``: sessions, namespaces, rooms, handlers and acknowledgements.

In the vocabulary Socket.IO users know::

    chat = server.namespace("/chat")

    @chat.on("send-message")
    def on_message(session, data):
        chat.emit("receive-message", data, to=data["roomId"])
        return {"ok": True}  # the acknowledgement, when the client asked for one

Each connection's events are handled one at a time, in order, most of them as soon as
they are read (``inline.py``); a handler may be ``async``, and the events behind it then
wait for its answer. A pipelined handler (``Namespace.on``) returns a future instead,
once everything its event does is on its way in order (the Redis store's room
messages): the events behind it go on meanwhile, and the answers go back in order.

Every delivery is written without waiting: one JSON encoding per message, whatever
the number of recipients, and one write per connection per turn of the event loop
(``EventHub.deliver``). A recipient that stops reading cannot stall the others: once
its unsent bytes pass ``max_buffer`` it is dropped with close code 1008.

What a client can make the hub keep is bounded: the acks of handled ``mid`` s by count
and by bytes, per user and in all (the least recently active users forgotten first,
and every user idle for ``REMEMBERED_FOR`` seconds); ``connect``, ``disconnect`` and
``heartbeat``, which the rate limit per user lets through, by a token bucket per
session of their own.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from collections.abc import Set as AbstractSet
from typing import Any, Protocol

from websockets.asyncio.server import ServerConnection

from rtlab.aio.corked_writes import CorkedWriter
from rtlab.aio.inline import MAX_BUFFER, InlineConnection
from rtlab.core.envelope import (
    DEFAULT_NAMESPACE,
    EnvelopeError,
    ErrorCode,
    Event,
    decode_event,
    encode_ack,
    encode_ack_error,
    encode_event,
)
from rtlab.core.ratelimit import FULL, SlidingWindow, TokenBucket, take
from rtlab.core.rooms import Rooms

Handler = Callable[["Session", Any], Any | Awaitable[Any]]
Reply = str | bytes | None  # an acknowledgement to send back, or nothing
Pending = Coroutine[Any, Any, None]  # the rest of handling an event, when it must wait
# A pipelined event waiting for its answer: the event, the future it returned and the
# "NS MID" key the manager keeps it under (EventHub._answered).
Outstanding = tuple[Event, "asyncio.Future[Any]", str | None]

REMEMBERED_MIDS = 1000  # per user: message ids already handled, for safe resends
REMEMBERED_USERS = 10_000  # users whose mids are kept, the least recently active forgotten
REMEMBERED_BYTES = 256 * 2**10  # per user: what their kept acks may take, mids included
REMEMBERED_TOTAL = 32 * 2**20  # every user's kept acks together
REMEMBERED_ACK = 16 * 2**10  # a bigger ack is kept as a marker: a resend gets DUPLICATE
REMEMBERED_FOR = 3600.0  # seconds a user's mids are kept after their last one
KEPT_OVERHEAD = 160  # bytes a kept ack costs besides its text: two strings, a dict slot
DUPLICATE = '{"duplicate":true}'  # the ack data of a resend whose ack was too big to keep
SLOW_CLOSE_CODE = 1008
MAX_REFUSALS = 30  # refused messages in REFUSAL_WINDOW seconds before a session is closed
REFUSAL_WINDOW = 10.0
# Not counted by the rate limit per user: a client needs them whatever it sent. They have
# a token bucket per session of their own instead (when the hub has a rate limit).
# Bytes of messages (each counting BACKLOG_OVERHEAD more) that may wait, read, behind an
# event whose handler awaits (a Redis round trip): past them, websockets queues the next
# and stops reading (server.py's MAX_QUEUE) until the handler is done.
BACKLOG = 16 * 2**10
BACKLOG_OVERHEAD = 64
# Answers a session may have outstanding from pipelined events (``Namespace.on``): past
# them, its next event waits for them all, as behind any handler that awaits.
PIPELINED = 16
CONTROL_EVENTS = frozenset({"connect", "disconnect", "heartbeat"})
CONTROL_RATE = 2.0  # control events per second per session, on average...
CONTROL_BURST = 10  # ...and at once (a reconnection connects its namespaces together)
RateLimit = SlidingWindow | TokenBucket


def _ack(event: Event, result: Any) -> Reply:
    """The acknowledgement of ``event`` with ``result``, if the client asked for one."""
    return encode_ack(event.id, result) if event.id is not None else None


class Issued:
    """What ``_dispatch`` gives for a pipelined event whose handler answered with a
    future: the future, and the "NS MID" key the manager keeps its answer under."""

    __slots__ = ("future", "key")

    def __init__(self, future: asyncio.Future[Any], key: str) -> None:
        self.future = future
        self.key = key


def _done_future(result: Any) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(result)
    return future


def _failed_future(error: Exception) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(error)
    return future


def _later(reply: Any) -> bool:
    """Whether ``_dispatch`` gave something to await rather than an acknowledgement."""
    return reply is not None and not isinstance(reply, (str, bytes))


def _data_text(reply: str | bytes, id: int) -> str | None:
    """The ``data`` of an encoded ack as JSON text; None for a binary one (attachments)."""
    if isinstance(reply, bytes):
        return None
    prefix = f'{{"ack":{id},"data":'
    assert reply.startswith(prefix) and reply.endswith("}")
    return reply[len(prefix) : -1]


class _Kept:
    """One user's kept acks, oldest first: ``"NS MID"`` to the ack's data as JSON text
    (None: a marker), and what they take in bytes (text, plus ``KEPT_OVERHEAD`` each)."""

    __slots__ = ("acks", "at", "bytes")

    def __init__(self) -> None:
        self.acks: collections.OrderedDict[str, str | None] = collections.OrderedDict()
        self.bytes = 0
        self.at = 0.0  # when the user's last mid was kept (time.monotonic)

    @staticmethod
    def cost(key: str, data: str | None) -> int:
        if data is None:
            return len(key) + KEPT_OVERHEAD
        # A str takes 1 byte a character when all are ASCII (isascii is O(1)), else up to 4.
        return len(key) + len(data) * (1 if data.isascii() else 4) + KEPT_OVERHEAD

    def put(self, key: str, data: str | None) -> int:
        """Keep ``data`` under ``key``; by how many bytes that grew what is kept."""
        grown = self.cost(key, data)
        if key in self.acks:
            grown -= self.cost(key, self.acks.pop(key))
        self.acks[key] = data
        self.bytes += grown
        return grown

    def pop_oldest(self) -> int:
        """Forget the oldest ack; how many bytes that freed."""
        key, data = self.acks.popitem(last=False)
        freed = self.cost(key, data)
        self.bytes -= freed
        return freed


# What handlers usually answer: never awaitable, and inspect.isawaitable is slow to say so.
_PLAIN = frozenset({type(None), dict, list, str, int, float, bool})


def _awaitable(result: Any) -> bool:
    """``inspect.isawaitable``, without its slow check for the usual answers (JSON values)."""
    return type(result) not in _PLAIN and inspect.isawaitable(result)


class Manager(Protocol):
    """Where a namespace's emits go and what the hub tells of its sessions, as
    python-socketio's client managers: :class:`LocalManager` keeps everything in this
    process; redis_adapter.py's spans every process on one Redis."""

    def publish(
        self, ns: str, frame: str | bytes, *, room: str | None = None, skip: Session | None = None
    ) -> int:
        """Deliver an encoded event to a room (or the namespace); to how many sessions here."""
        ...

    def online(self, ns: str, user: str, delta: int) -> None:
        """A session of ``user`` connected to (+1) or left (-1) ``ns``."""
        ...

    def left(self, ns: str, room: str, session: Session) -> None:
        """A disconnecting ``session`` is out of ``room``."""
        ...

    def check_mid(self, user: str, key: str) -> Awaitable[tuple[bool, Any]] | None:
        """Whether another process handled ``"NS MID"`` and its ack, or None: ask no one."""
        ...

    def remember(self, user: str, key: str, result: Any) -> None:
        """Note a handled ``"NS MID"`` and its ack, for the processes ``check_mid`` asks."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class LocalManager:
    """Rooms in this process only: an emit is delivered here, nothing is shared."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub

    def publish(
        self, ns: str, frame: str | bytes, *, room: str | None = None, skip: Session | None = None
    ) -> int:
        namespace = self.hub.namespaces[ns]
        targets: Iterable[Session] = (
            namespace.rooms.members(room) if room is not None else namespace.sessions
        )
        if skip is not None:
            targets = [s for s in targets if s is not skip]
        return self.hub.deliver(targets, frame)

    def online(self, ns: str, user: str, delta: int) -> None:
        pass  # the namespace's own sessions say who is online here

    def left(self, ns: str, room: str, session: Session) -> None:
        pass  # the namespace's rooms have it out already

    def check_mid(self, user: str, key: str) -> None:
        return None  # no other process: the hub's own memory of mids is all there is

    def remember(self, user: str, key: str, result: Any) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


_NO_EVENTS: frozenset[str] = frozenset()
_DEFAULT_ONLY = (DEFAULT_NAMESPACE,)  # what every session starts in, shared


class Session:
    """One open ``/ws`` connection: who it is and which namespaces it joined."""

    # Slotted: a server holds one per connection (rtlab bench: memory).
    __slots__ = (
        "answers",
        "backlog",
        "backlogged",
        "connection",
        "control",
        "drained",
        "event",
        "finishing",
        "gate",
        "heeded",
        "hub",
        "id",
        "namespaces",
        "refusals",
        "retry_at",
        "user",
    )

    def __init__(self, id: int, user: str, connection: ServerConnection) -> None:
        self.id = id
        self.user = user
        self.connection = connection
        self.namespaces: tuple[str, ...] = _DEFAULT_ONLY  # at most a few: a tuple is enough
        self.event: Event | None = None  # the event being handled, for handlers that need it
        self.hub: EventHub | None = None
        # When its refused messages were, made at the first (an empty deque is 600 bytes)
        self.refusals: collections.deque[float] | None = None
        self.retry_at = 0.0  # when the last rate_limited refusal said to try again
        self.heeded = True  # whether the last refused event waited for that
        self.gate: str | None = None  # the mid refused for rate: nothing else passes first
        self.finishing: asyncio.Task[None] | None = None  # an event still being handled
        # Messages read while it is, in order (made at the first), and what they count.
        self.backlog: collections.deque[str | bytes] | None = None
        self.backlogged = 0
        # Pipelined events not answered yet, in order (made at the first); and what an
        # event that must wait for them all awaits (EventHub._after_answers).
        self.answers: collections.deque[Outstanding] | None = None
        self.drained: asyncio.Future[None] | None = None
        self.control = FULL  # control events' token bucket

    def emit(self, event: str, data: Any = None, ns: str = DEFAULT_NAMESPACE) -> bool:
        """Send an event to this session only (Socket.IO's ``socket.emit``)."""
        if self.hub is None:
            return False
        return self.hub.deliver([self], encode_event(event, data, ns)) == 1

    def __repr__(self) -> str:
        return f"<Session {self.id} {self.user!r}>"


class Namespace:
    """Handlers and rooms of their own, carried over the same connections as the others."""

    def __init__(self, hub: EventHub, name: str) -> None:
        self.hub = hub
        self.name = name
        self.rooms: Rooms[Session] = Rooms()
        self.sessions: set[Session] = set()
        self.handlers: dict[str, Handler] = {}
        # An access rule: who may connect to this namespace (None: everyone).
        self.authorize: Callable[[Session], bool] | None = None
        # Called as hook(session, room) after a disconnecting session left a room: where
        # an app tells the room (the lab's user-left, presence).
        self.on_leave: list[Callable[[Session, str], None]] = []
        # Called as hook(room, user, when) when the manager (or, in one process, the app's
        # room store) says that ``user`` is the first in ``room`` on any process (joined)
        # or gone from it on every one (gone, with died=True when their process died), at
        # ``when`` (ISO time): where an app tells this process's members of that room.
        self.on_joined: list[Callable[[str, str, str], None]] = []
        self.on_gone: list[Callable[[str, str, str, bool], None]] = []
        # Events whose handler checks and keeps their mid across processes itself.
        self.checks_mid: set[str] = set()
        # Events a resend runs again: no ack of theirs is kept for their mid.
        self.idempotent: set[str] = set()
        # Events whose handler, when it answers with a future, has issued all it does.
        self.pipelined: set[str] = set()

    def on(
        self,
        event: str,
        *,
        checks_mid: bool = False,
        idempotent: bool = False,
        pipelined: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Decorator: handle ``event``; the handler's return value is the acknowledgement.

        ``checks_mid``: with a manager that spans processes, the handler checks and keeps
        the event's mid for every process itself, atomically with what it does (the lab's
        room messages, in one Redis round trip), so the hub makes no check before and no
        note after. ``idempotent``: running it twice does what running it once does (the
        lab's join-room, whose ack carries the room's presence and history), so a resend
        runs it again and the hub keeps nothing for its mid. ``pipelined``: when the
        handler answers with an ``asyncio.Future``, everything the event does is already
        on its way, in order with what the session's next events will do (the lab's room
        messages with Redis: one script each, on one connection), so those need not wait
        for the answer: up to ``PIPELINED`` of them, any other event after waits for
        their answers, and the answers go back in order."""

        def register(handler: Handler) -> Handler:
            self.handlers[event] = handler
            flags = (
                (checks_mid, self.checks_mid),
                (idempotent, self.idempotent),
                (pipelined, self.pipelined),
            )
            for flag, events in flags:
                if flag:
                    events.add(event)
                else:
                    events.discard(event)
            return handler

        return register

    def join(self, session: Session, room: str) -> bool:
        return self.rooms.join(session, room)

    def leave(self, session: Session, room: str) -> bool:
        return self.rooms.leave(session, room)

    def left(self, session: Session, room: str) -> None:
        """Tell the ``on_leave`` hooks that ``session`` is out of ``room``."""
        for hook in self.on_leave:
            hook(session, room)

    def joined(self, room: str, user: str, when: str) -> None:
        """Tell the ``on_joined`` hooks that ``user`` is in ``room`` now, on some process."""
        for hook in self.on_joined:
            hook(room, user, when)

    def gone(self, room: str, user: str, when: str, *, died: bool) -> None:
        """Tell the ``on_gone`` hooks that ``user`` is out of ``room`` on every process."""
        for hook in self.on_gone:
            hook(room, user, when, died)

    def users(self, room: str) -> list[str]:
        """Who is in ``room``, sorted: a user with several sessions (tabs) counts once."""
        return sorted({s.user for s in self.rooms.members(room)})

    def has_user(self, user: str, room: str) -> bool:
        """Whether any session of ``user`` (a notebook, a browser tab...) is in ``room``."""
        return any(s.user == user for s in self.rooms.members(room))

    def emit(
        self, event: str, data: Any = None, *, to: str | None = None, skip: Session | None = None
    ) -> int:
        """Send to a room (``to``) or to everyone in the namespace; ``skip`` one session.

        Returns how many sessions it was written to.
        """
        message = encode_event(event, data, self.name)
        return self.hub.manager.publish(self.name, message, room=to, skip=skip)

    def __repr__(self) -> str:
        return f"<Namespace {self.name} {len(self.sessions)} sessions, {len(self.rooms)} rooms>"


class EventHub:
    """All namespaces of one server, and the loop that serves each ``/ws`` connection."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        max_buffer: int = MAX_BUFFER,
        rate_limit: RateLimit | None = None,
        max_refusals: int = MAX_REFUSALS,
    ) -> None:
        """``rate_limit``: a policy per user, across their connections (None: no limit).
        ``max_refusals`` refused messages within ``REFUSAL_WINDOW`` seconds close the
        connection with 1008."""
        self.logger = logger
        self.namespaces: dict[str, Namespace] = {}
        self.sessions: dict[int, Session] = {}
        self.dropped_slow = 0
        self.dropped_abusive = 0
        self.rate_limit = rate_limit
        self.max_refusals = max_refusals
        self._handled = 0
        self._closing: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._mids: dict[str, _Kept] = {}  # user: their kept acks, least recently active first
        self.remembered_bytes = 0  # what every user's kept acks take (see _Kept)
        self.writer: CorkedWriter[Session] = CorkedWriter(max_buffer, self._too_slow)
        # Bound once, for every connection: what InlineConnection calls with the session.
        self._receive_now = self._receive
        self._too_slow_now = self._too_slow
        # Rooms and mids in this process, or across processes (LabServer(redis=URL)).
        self.manager: Manager = LocalManager(self)
        self._setups: list[Callable[[Namespace], None]] = []
        self.namespace(DEFAULT_NAMESPACE)

    # -- resends ------------------------------------------------------------------------

    def remember(self, user: str, ns: str, mid: str, result: Any) -> None:
        """Note that ``user`` sent ``mid`` and what it was acknowledged with."""
        self._keep(user, f"{ns} {mid}", _data_text(encode_ack(0, result), 0))

    def _keep(self, user: str, key: str, data: str | None) -> None:
        """Keep the ack ``data`` (JSON text) of ``key``; None or too big: a marker."""
        now = time.monotonic()
        kept = self._mids.pop(user, None) or _Kept()
        self._mids[user] = kept  # most recently active users last
        kept.at = now
        if data is not None and len(data) > REMEMBERED_ACK:
            data = None
        self.remembered_bytes += kept.put(key, data)
        while len(kept.acks) > REMEMBERED_MIDS or kept.bytes > REMEMBERED_BYTES:
            self.remembered_bytes -= kept.pop_oldest()
        while self._mids and (
            len(self._mids) > REMEMBERED_USERS
            or self.remembered_bytes > REMEMBERED_TOTAL
            or now - next(iter(self._mids.values())).at > REMEMBERED_FOR
        ):
            self._forget_mids(next(iter(self._mids)))

    def _forget_mids(self, user: str) -> None:
        self.remembered_bytes -= self._mids.pop(user).bytes

    def _resent(self, user: str, key: str) -> tuple[bool, str | None]:
        """Whether ``user`` sent ``key`` before, and its kept ack data (None: a marker)."""
        kept = self._mids.get(user)
        if kept is None or key not in kept.acks:
            return False, None
        if time.monotonic() - kept.at > REMEMBERED_FOR:
            self._forget_mids(user)
            return False, None
        return True, kept.acks[key]

    def install(self, setup: Callable[[Namespace], None]) -> None:
        """Call ``setup`` on every namespace, those there now and those made later: how
        an app installs its handlers (the lab server installs the lab's events)."""
        self._setups.append(setup)
        for namespace in list(self.namespaces.values()):
            setup(namespace)

    def namespace(self, name: str) -> Namespace:
        """The namespace ``name``, made (and set up by what was installed) on first use."""
        if name not in self.namespaces:
            self.namespaces[name] = namespace = Namespace(self, name)
            for setup in self._setups:
                setup(namespace)
        return self.namespaces[name]

    # -- writing -----------------------------------------------------------------

    def deliver(self, sessions: Iterable[Session], message: str | bytes) -> int:
        """Write one encoded message to every session without waiting; drop the slow.

        ``str`` goes in a text frame, ``bytes`` (an event with attachments) in a binary
        one. The message is encoded to bytes once, whatever the number of recipients."""
        text = isinstance(message, str)
        data = message.encode() if text else message
        live, write = self.sessions, self.writer.write  # looked up once: a room may be large
        count = 0
        for session in sessions:
            if session.id in live:
                count += 1
                write(session, session.connection, data, text)
        return count

    def _too_slow(self, session: Session) -> None:
        self.drop(session, f"too slow: over {self.writer.max_buffer} bytes waiting to be sent")

    def drop(self, session: Session, reason: str, *, slow: bool = True) -> None:
        """Forget ``session`` now and close its connection with 1008."""
        if self.sessions.pop(session.id, None) is None:
            return
        if slow:
            self.dropped_slow += 1
        else:
            self.dropped_abusive += 1
        self.logger.warning("dropped session %d (%s): %s", session.id, session.user, reason)
        self._forget(session)
        task = asyncio.get_running_loop().create_task(self._close_slow(session, reason[:120]))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_slow(session: Session, reason: str) -> None:
        """Close with 1008; a peer that never reads cannot hold the connection open."""
        connection = session.connection
        try:
            async with asyncio.timeout(connection.close_timeout):
                await connection.close(SLOW_CLOSE_CODE, reason)
        except TimeoutError:
            if connection.transport is not None:
                connection.transport.abort()

    # -- serving a connection ------------------------------------------------------

    async def serve(self, connection: ServerConnection, user: str) -> None:
        """Read events from one connection until it closes.

        On an ``InlineConnection`` (what LabServer makes) most events are handled as soon
        as they are read, by ``_receive``; this loop gets the others, in order."""
        session = Session(next(self._ids), user, connection)
        session.hub = self
        self.sessions[session.id] = session
        self.namespaces[DEFAULT_NAMESPACE].sessions.add(session)
        self.manager.online(DEFAULT_NAMESPACE, user, 1)
        if isinstance(connection, InlineConnection):
            # Past max_buffer, whatever filled it (pongs too): dropped as a slow reader.
            connection.serve_inline(session, self._receive_now, self._too_slow_now)
        try:
            async for message in connection:
                while (finishing := session.finishing) is not None and not finishing.done():
                    await finishing  # earlier events first, the backlog's too
                if session.id in self.sessions:
                    await self._handle(session, message)
                if session.id not in self.sessions:  # dropped: let our close (1008) finish
                    await connection.wait_closed()
                    break
        finally:
            if isinstance(connection, InlineConnection):
                connection.serve_plain()
            # An async handler, and the backlog after it, end before their connection
            # (pipelined events need not: what they do is on its way already).
            while (finishing := session.finishing) is not None and not finishing.done():
                await finishing
            if self.sessions.pop(session.id, None) is not None:
                self._forget(session)

    def _receive(self, session: Session, message: str | bytes) -> bool:
        """Handle a message as it is read, or keep it for when the event before it is
        done (``BACKLOG``); False if it must wait in websockets' queue instead."""
        if session.id not in self.sessions:
            return True  # dropped: what it still sends is ignored
        if session.finishing is not None:
            cost = len(message) + BACKLOG_OVERHEAD
            if session.backlogged + cost > BACKLOG:
                return False
            if session.backlog is None:
                session.backlog = collections.deque()
            session.backlog.append(message)
            session.backlogged += cost
            return True
        self._start(session, message)
        return True

    def _start(self, session: Session, message: str | bytes) -> None:
        rest = self._handle_now(session, message)
        if rest is not None:  # it awaits something: later messages wait for it
            session.finishing = asyncio.get_running_loop().create_task(
                self._finishing(session, rest)
            )

    async def _finishing(self, session: Session, rest: Pending) -> None:
        """An event's handler to its end, then the messages read meanwhile: in this task,
        so that once it is done the next (or none) is ``session.finishing`` already."""
        try:
            await rest
        finally:
            self._finished(session)

    def _finished(self, session: Session) -> None:
        """The messages read while an event was handled, in order, until one awaits."""
        session.finishing = None
        backlog = session.backlog
        while backlog and session.finishing is None:
            message = backlog.popleft()
            session.backlogged -= len(message) + BACKLOG_OVERHEAD
            if session.id in self.sessions:
                self._start(session, message)

    def _forget(self, session: Session) -> None:
        """Take ``session`` out of every namespace, telling its rooms' members it left."""
        for name in sorted(session.namespaces):
            self._disconnect(session, self.namespaces[name])

    def _disconnect(self, session: Session, namespace: Namespace) -> None:
        for room in namespace.rooms.leave_all(session):
            self.manager.left(namespace.name, room, session)
            namespace.left(session, room)
        namespace.sessions.discard(session)
        self.manager.online(namespace.name, session.user, -1)
        session.namespaces = tuple(n for n in session.namespaces if n != namespace.name)

    async def _handle(self, session: Session, message: str | bytes) -> None:
        rest = self._handle_now(session, message)
        if rest is not None:
            await rest

    def _handle_now(self, session: Session, message: str | bytes) -> Pending | None:
        """Handle one message as far as it goes without waiting; what is left, if anything."""
        try:
            event = decode_event(message)  # bytes: a binary frame, with attachments
        except EnvelopeError as error:
            if session.answers:  # after the answers before it
                return self._after_answers(session, None, error)
            self._refuse(session, error.to_json())
            return None
        answers = session.answers
        if answers and (len(answers) >= PIPELINED or event.event not in self._pipelined(event)):
            return self._after_answers(session, event)
        return self._handle_event(session, event)

    def _handle_event(self, session: Session, event: Event) -> Pending | None:
        try:
            self._check_rate(session, event)
            reply = self._dispatch(session, event)
        except Exception as error:
            if session.answers:  # refused after what came before: answered after it too
                self._queue_answer(session, event, _failed_future(error), None)
            else:
                self._failed(session, event, error)
            return None
        if type(reply) is Issued:
            self._queue_answer(session, event, reply.future, reply.key)
            return None
        if _later(reply):
            return self._finish(session, event, reply)
        if session.answers:
            self._queue_answer(session, event, _done_future(reply), None)
        else:
            self._answer(session, reply)
        return None

    def _pipelined(self, event: Event) -> AbstractSet[str]:
        """The pipelined events of ``event``'s namespace."""
        namespace = self.namespaces.get(event.ns)
        return namespace.pipelined if namespace is not None else _NO_EVENTS

    def _queue_answer(
        self, session: Session, event: Event, future: asyncio.Future[Any], key: str | None
    ) -> None:
        """Answer ``event`` when ``future`` is done and every answer before it went back
        (``key`` None: the future holds the reply itself, not the handler's answer)."""
        answers = session.answers
        if answers is None:
            answers = session.answers = collections.deque()
        answers.append((event, future, key))
        future.add_done_callback(lambda _: self._answer_in_order(session))

    def _answer_in_order(self, session: Session) -> None:
        """Send the answers now due, in order; wake what waits for them all."""
        answers = session.answers
        while answers and answers[0][1].done():
            event, future, key = answers.popleft()
            if future.cancelled():
                continue
            error = future.exception()
            if error is not None:
                self._failed(session, event, error)
                continue
            reply = future.result()
            if key is not None:  # kept for a mid even if its sender is gone
                reply = self._answered(session, event, reply, key)
            self._answer(session, reply)  # (deliver skips a session gone meanwhile)
        drained = session.drained
        if not answers and drained is not None:
            session.drained = None
            drained.set_result(None)

    @staticmethod
    async def _all_answered(session: Session) -> None:
        """Until the session's pipelined events are all answered (at once if none)."""
        while session.answers:
            if session.drained is None:
                session.drained = asyncio.get_running_loop().create_future()
            await session.drained

    async def _after_answers(
        self, session: Session, event: Event | None, refused: EnvelopeError | None = None
    ) -> None:
        """Handle ``event`` (or refuse what could not be read) once the session's
        pipelined events are all answered."""
        await self._all_answered(session)
        if session.id not in self.sessions:  # dropped meanwhile: as the backlog (_finished)
            return
        if event is None:
            assert refused is not None
            self._refuse(session, refused.to_json())
            return
        rest = self._handle_event(session, event)
        if rest is not None:
            await rest

    async def _finish(self, session: Session, event: Event, pending: Awaitable[Reply]) -> None:
        try:
            reply = await pending
        except Exception as error:
            await self._all_answered(session)  # pipelined events before it, if any
            self._failed(session, event, error)
            return
        await self._all_answered(session)
        self._answer(session, reply)

    def _answer(self, session: Session, reply: Reply) -> None:
        if reply is not None:
            self.deliver([session], reply)

    def _failed(self, session: Session, event: Event, error: Exception) -> None:
        """Answer an event that was refused (EnvelopeError) or whose handler failed."""
        if isinstance(error, EnvelopeError):
            # A client that waits as told (retryAfter) is slowed down, not punished; nor is
            # one refused for the server's own trouble (unavailable: Redis, a full disk).
            heeded = error.code == ErrorCode.UNAVAILABLE or (
                error.code == ErrorCode.RATE_LIMITED
                and (session.heeded or session.gate is not None)
            )
            self._refuse(session, self._refusal(event, error), strike=not heeded)
            return
        self.logger.error("handler for %r in %s failed", event.event, event.ns, exc_info=error)
        failure = EnvelopeError(ErrorCode.INTERNAL, f"the {event.event!r} handler failed")
        self._answer(session, self._refusal(event, failure))

    def charge(self, session: Session, events: int) -> None:
        """Count ``events`` more against the user's rate limit, if there is one: what an
        event made the server send beyond its own answer (a replay, say)."""
        if self.rate_limit is not None and events > 0:
            self.rate_limit.charge(session.user, time.monotonic(), events)

    def _check_rate(self, session: Session, event: Event) -> None:
        if self.rate_limit is None:
            return
        now = time.monotonic()
        if event.event in CONTROL_EVENTS:
            self._check_control(session, now)
            return
        self._handled += 1
        if self._handled % 1000 == 0:
            self.rate_limit.forget_idle(now)  # keeps memory to the active users
        if session.gate is not None and event.mid is not None and event.mid != session.gate:
            # Order: after refusing one event for its rate, the others queued behind it
            # (a backlog resent after a drop) wait until it is sent again and passes.
            raise EnvelopeError(
                ErrorCode.RATE_LIMITED,
                "slow down: resend the refused event first",
                retry_after=max(0.0, session.retry_at - now),
            )
        decision = self.rate_limit.check(session.user, now)
        if not decision.allowed:
            session.heeded = now >= session.retry_at
            if session.heeded:  # the first refusal of a burst: one line, not one per event
                self.logger.info(
                    "rate-limited %s (session %d): try again in %.1f s",
                    session.user,
                    session.id,
                    decision.retry_after,
                )
            session.retry_at = now + decision.retry_after
            if event.mid is not None:
                session.gate = event.mid
            raise EnvelopeError(
                ErrorCode.RATE_LIMITED,
                f"slow down: try again in {decision.retry_after:.1f} s",
                retry_after=decision.retry_after,
            )
        if event.mid is not None and event.mid == session.gate:
            session.gate = None

    @staticmethod
    def _check_control(session: Session, now: float) -> None:
        """The control events' token bucket of ``session``: refused past it, and a
        client that does not wait as told earns strikes (``_failed``), as for events."""
        session.control, retry_after = take(session.control, now, CONTROL_RATE, CONTROL_BURST)
        if not retry_after:
            return
        session.heeded = now >= session.retry_at
        session.retry_at = now + retry_after
        raise EnvelopeError(
            ErrorCode.RATE_LIMITED,
            f"slow down: at most {CONTROL_BURST} connect, disconnect and heartbeat at once, "
            f"{CONTROL_RATE:g} a second; try again in {retry_after:.1f} s",
            retry_after=retry_after,
        )

    def _refuse(self, session: Session, answer: str, *, strike: bool = True) -> None:
        """Send a refusal; a session that keeps misbehaving is closed with 1008."""
        if session.id not in self.sessions:
            return
        self.deliver([session], answer)
        if not strike:
            return
        now = time.monotonic()
        refusals = session.refusals
        if refusals is None:
            refusals = session.refusals = collections.deque()
        refusals.append(now)
        while refusals and now - refusals[0] > REFUSAL_WINDOW:
            refusals.popleft()
        if len(refusals) > self.max_refusals:
            reason = f"too many refused messages: over {self.max_refusals} in {REFUSAL_WINDOW:g} s"
            self.drop(session, reason, slow=False)

    @staticmethod
    def _refusal(event: Event, error: EnvelopeError) -> str:
        if event.id is not None:
            return encode_ack_error(event.id, error.code, error.message, error.retry_after)
        error.ref = None
        return error.to_json(event.ns)

    def _dispatch(self, session: Session, event: Event) -> Reply | Awaitable[Reply]:
        """Run the event's handler; the ack to send back, if one was asked for.

        An awaitable instead when the answer needs waiting for (an ``async`` handler,
        or, with Redis, whether another process already handled this mid)."""
        namespace = self.namespaces.get(event.ns)
        if namespace is None:
            raise EnvelopeError(ErrorCode.UNKNOWN_NAMESPACE, f"no namespace {event.ns!r}")
        if event.event in ("connect", "disconnect"):
            result = self._namespace_membership(session, namespace, event.event)
            return _ack(event, result)
        if event.ns not in session.namespaces:
            raise EnvelopeError(
                ErrorCode.NOT_CONNECTED,
                f"connect to {event.ns!r} first: send the event 'connect' with that ns",
            )
        handler = namespace.handlers.get(event.event)
        if handler is None:
            raise EnvelopeError(
                ErrorCode.UNKNOWN_EVENT, f"no handler for {event.event!r} in {event.ns!r}"
            )
        if event.mid is None:
            return self._call(session, event, handler, "")
        if event.event in namespace.idempotent:  # a resend runs it again
            return self._call(session, event, handler, "")
        key = f"{event.ns} {event.mid}"
        seen, data = self._resent(session.user, key)
        if seen:
            # A resend of something already handled: acknowledge again, deliver nothing.
            if event.id is None:
                return None
            return f'{{"ack":{event.id},"data":{DUPLICATE if data is None else data}}}'
        shared = None
        if event.event not in namespace.checks_mid:  # else the handler checks it itself
            shared = self.manager.check_mid(session.user, key)  # by another process?
        if shared is None:
            return self._call(session, event, handler, "")
        return self._call_unless_seen(session, event, handler, key, shared)

    async def _call_unless_seen(
        self,
        session: Session,
        event: Event,
        handler: Handler,
        key: str,
        shared: Awaitable[tuple[bool, Any]],
    ) -> Reply:
        found, answer = await shared
        if found:
            return _ack(event, answer)
        reply = self._call(session, event, handler, key)
        if type(reply) is Issued:
            return self._answered(session, event, await reply.future, reply.key)
        return await reply if _later(reply) else reply

    def _call(
        self, session: Session, event: Event, handler: Handler, key: str
    ) -> Reply | Awaitable[Reply]:
        """Call the handler: its acknowledgement, or an awaitable when it returned one."""
        session.event = event
        try:
            result = handler(session, event.data)
        finally:
            session.event = None
        if _awaitable(result):
            if type(result) is asyncio.Future and event.event in self._pipelined(event):
                return Issued(result, key)
            return self._awaited(session, event, result, key)
        return self._answered(session, event, result, key)

    async def _awaited(self, session: Session, event: Event, result: Any, key: str) -> Reply:
        session.event = event
        try:
            result = await result
        finally:
            session.event = None
        return self._answered(session, event, result, key)

    def _answered(self, session: Session, event: Event, result: Any, key: str) -> Reply:
        """Remember what a mid was answered with; the acknowledgement, if one was asked for."""
        reply = _ack(event, result)
        if event.mid is not None and event.event not in self.namespaces[event.ns].idempotent:
            if reply is None:  # no ack asked for: kept all the same, for a resend that asks
                self.remember(session.user, event.ns, event.mid, result)
            else:  # the ack's own text, not a second encoding
                assert event.id is not None
                self._keep(session.user, f"{event.ns} {event.mid}", _data_text(reply, event.id))
        if key:  # for the other processes: "NS MID", when the manager asked them
            self.manager.remember(session.user, key, result)
        return reply

    def _namespace_membership(self, session: Session, namespace: Namespace, what: str) -> Any:
        if what == "connect":
            if namespace.authorize is not None and not namespace.authorize(session):
                raise EnvelopeError(
                    ErrorCode.FORBIDDEN, f"{session.user} may not connect to {namespace.name!r}"
                )
            namespace.sessions.add(session)
            if namespace.name not in session.namespaces:
                self.manager.online(namespace.name, session.user, 1)
                session.namespaces += (namespace.name,)
            return {"ns": namespace.name}
        if namespace.name == DEFAULT_NAMESPACE:
            raise EnvelopeError(ErrorCode.INVALID, "the default namespace '/' cannot be left")
        if namespace.name in session.namespaces:
            self._disconnect(session, namespace)
        return {"ns": namespace.name}
