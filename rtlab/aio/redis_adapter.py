"""Rooms that span server processes: a Redis adapter in the manner of Socket.IO's.

Every ``rtlab serve --redis redis://HOST:PORT/DB`` process subscribes to one
pub/sub channel (``rtlab:events``). An emit to a room or a namespace is published
there **once**; every process, the sender's included, writes each published event
to its own members. Redis orders the channel, so every process delivers the same
events in the same order, and a room's ``seq`` grows in delivery order everywhere.

What must be global lives in Redis, changed by short Lua scripts (atomic there; in
rtlab/aio/lua/, package data). Every key has a TTL or a cap (keep.lua); TTL is
``key_ttl`` (``KEY_TTL``, 6 h, at least the history window), renewed by a use once a
quarter of it has passed since the last renewal and, for the rooms a process has
sessions in, by its heartbeat every ``key_ttl / 4``:

=========================  =========  ===============================================
``rtlab:members:NS:ROOM``  hash       user -> sessions in the room, all processes (TTL)
``rtlab:members:NS:*``     hash       user -> sessions in the namespace (TTL)
``rtlab:proc:UID``         hash       "NS ROOM USER" -> sessions of process UID (TTL)
``rtlab:alive:UID``        string     renewed by UID's heartbeat (TTL ``alive_ttl``)
``rtlab:procs``            set        the processes that registered (TTL)
``rtlab:seq:NS:ROOM``      counter    the room's last message number (INCRBY; TTL
                                      ``seq_ttl``, ``SEQ_TTL``: a week)
``rtlab:history:NS:ROOM``  list       "SEQ TIME DATA" of its last ``history_size``
                                      messages; past ``history_bytes`` in a namespace,
                                      the least recently used rooms' oldest go (TTL)
``rtlab:sizes:NS``         hash       room -> bytes of its history; "*": all (TTL)
``rtlab:seen:NS:ROOM``     hash       user -> when they left, the last ``max_seen`` (TTL)
``rtlab:rooms:NS``         zset       room -> last use, to the second; past ``max_rooms``
                                      the least recent loses its history and last seen,
                                      past twice as many its numbering too, unless
                                      someone is in it (TTL ``seq_ttl``)
``rtlab:mids:USER``        hash       "NS MID" -> ack (over ``MID_ACK`` bytes: a marker),
                                      the last ``MIDS_PER_USER`` within
                                      ``MID_BYTES_PER_USER`` (TTL ``MID_TTL``, renewed
                                      as a room's)
``rtlab:midorder:USER``    list       "BYTES NS MID": the user's mids and the sizes of
                                      their acks, oldest first (same)
``rtlab:midusers``         zset       user -> last mid (to the second); past
                                      ``MID_USERS`` users or ``MID_BYTES`` in all, the
                                      least recent user's mids go (TTL ``MID_TTL``)
``rtlab:midsizes``         hash       user -> bytes of their kept acks; "*": all (same)
=========================  =========  ===============================================

A room message is numbered, kept, deduplicated by ``mid`` and published by one script,
so a message is either published once or not at all, whichever process a resend reaches;
the messages into one room sent before the connection's next write (the end of the next
turn of the loop: ``RedisPipe``) share that script (``SendBatch``). A join is counted
and published by one script whose marker, read back from the channel, is the moment this
process adds the session locally and replays what it missed: nothing is delivered twice
or skipped between replay and live delivery. A user's first session in a room, and a
user gone from it on every process (who left, or whose process died: another one reaps
its sessions), are markers too, which every process hands to its namespace's
``on_joined`` and ``on_gone`` hooks, as a room store in one process raises them
(local_rooms.py): the app that installed them (chat_events.py) says what they mean.
This module names no chat event. While Redis is unreachable, events that need it
are refused with ``unavailable`` (and ``retryAfter``), the server goes on serving,
and the adapter reconnects with backoff, then writes its sessions back.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import logging
import math
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import hiredis
from redis.exceptions import RedisError

from rtlab.aio.redis_pipe import RedisPipe
from rtlab.core.backoff import Reconnection, backoff_delay
from rtlab.core.envelope import EnvelopeError, ErrorCode, event_parts, json_utf8
from rtlab.core.history import MAX_BYTES
from rtlab.core.presence import MAX_SEEN, iso

if TYPE_CHECKING:
    from rtlab.aio.events import EventHub, Namespace, Session

PREFIX = "rtlab"
ONLINE = "*"  # a namespace's pseudo-room of connected users (no room id has a "*")
HEARTBEAT = 1.0  # seconds between renewals of this process's alive key
ALIVE_TTL = 5.0  # seconds without renewal after which a process counts as dead
MID_TTL = 3600  # seconds a user's handled mids are remembered after their last one
MIDS_PER_USER = 1000  # handled mids kept per user (as the one-process hub), oldest first out
MID_BYTES_PER_USER = 256 * 2**10  # bytes of acks kept per user, oldest first out
MID_USERS = 10_000  # users whose mids are kept, the least recently active forgotten
MID_BYTES = 32 * 2**20  # bytes of every user's kept acks, the least recent users' first out
MID_ACK = 16 * 2**10  # a bigger ack is kept as {"duplicate": true}
KEY_TTL = 6 * 3600  # seconds a room's keys outlive its last use (at least the history window)
SEQ_TTL = 7 * 24 * 3600  # seconds its numbering does: a week of classes goes on numbering
ROOMS = 10_000  # rooms per namespace whose history is kept (as History), 2x their numbering
ROOM_KEYS = ("members", "history", "seen")  # a room's keys but its seq (which lives longer)
ANSWER_TIMEOUT = 5.0  # seconds to wait for our own publication to come back
BACKOFF = Reconnection(delay=0.2, delay_max=5.0, randomization_factor=0.2)
FAILURES = (RedisError, OSError, asyncio.TimeoutError)
TOUCHED = 4096  # rooms whose last touch a process remembers (_touch)
HELD = 16 * 2**20  # characters of channel messages held while catching up: past it, again
Command = tuple[str | int | float, ...]  # a Redis command and its arguments


def _lua(name: str) -> str:
    """A script of rtlab/aio/lua/ (package data), its KEYS and ARGV described at its top."""
    return resources.files("rtlab.aio").joinpath("lua", f"{name}.lua").read_text()


# Both the reaper and the resync take a dead process's sessions out (reap.lua), telling
# the rooms it leaves (gone.lua); the resync then writes this process's back (resync.lua).
REAP = _lua("gone") + _lua("keep") + _lua("reap") + "return gone\n"
RESYNC = _lua("gone") + _lua("keep") + _lua("reap") + _lua("resync")
# What keeps keys bounded (keep.lua), in front of every script that writes them.
REMEMBER = (
    _lua("keep") + "remember(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], mid_limits(7))\n"
)


@dataclass(frozen=True)
class Joined:
    """What a join learnt from Redis: who is in the room (every process, sorted), its last
    ``seq``; with ``since``, whether nothing was lost and how many messages were replayed;
    the first time in the room, its recent history (oldest first) and who left it when
    (user -> ISO time)."""

    members: list[str]
    seq: int
    recovered: bool | None = None
    replayed: int | None = None
    history: list[Any] | None = None
    offline: dict[str, str] | None = None


def shown_url(url: str) -> str:
    """``url`` as a log line may show it: a password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:" if parts.username else ":"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}***@{host}"))


BATCH = 100  # room messages at most in one send.lua


class Copy:
    """A room message of ours on its way: its ack's data, answered once both the script's
    reply (``sent``) and our own copy off the channel (``arrived``) are here, in either
    order: the message is delivered here before its ack."""

    __slots__ = ("answer", "data", "here", "ref")

    def __init__(self, ref: str, answer: asyncio.Future[dict[str, Any]]) -> None:
        self.ref = ref
        self.answer = answer
        self.data: dict[str, Any] | None = None
        self.here = False

    def arrived(self) -> None:
        """Our copy was delivered here (or will never be: Redis went away, or too late)."""
        self.here = True
        if self.data is not None and not self.answer.done():
            self.answer.set_result(self.data)

    def sent(self, data: dict[str, Any]) -> None:
        self.data = data
        if self.here and not self.answer.done():
            self.answer.set_result(data)


class SendBatch:
    """Room messages into one room sent in one script (send.lua), packed when the turn's
    commands are written (``RedisPipe.call_deferred``): until then, the next message
    into the same room joins it, unless another command was queued after it."""

    def __init__(self, adapter: RedisAdapter, ns: str, room: str) -> None:
        self.adapter = adapter
        self.ns = ns
        self.room = room
        self.loop = asyncio.get_running_loop()
        self.now = time.time()
        self.touch = adapter._touch(ns, room)
        self.messages: list[str | int] = []  # send.lua's COUNT values for each
        self.waiting: list[Copy] = []
        self.mids: set[tuple[str, str]] = set()

    def fits(self, ns: str, room: str, user: str, mid: str | None) -> bool:
        """Whether a message may join: the same room, room left, and not a mid already
        in the batch (its resend must see the first one noted)."""
        return (
            ns == self.ns
            and room == self.room
            and len(self.waiting) < BATCH
            and (mid is None or (user, mid) not in self.mids)
        )

    def add(
        self, ref: str, head: str, user: str, mid: str | None, count: bool
    ) -> asyncio.Future[dict[str, Any]]:
        """Add a message; the ack's data, once it is answered and delivered here."""
        copy = Copy(ref, self.loop.create_future())
        self.adapter._waiting[ref] = (copy, time.monotonic() + ANSWER_TIMEOUT)
        self.waiting.append(copy)
        field = "" if mid is None else f"{self.ns} {mid}"
        if mid is not None:
            self.mids.add((user, mid))
        self.messages += [ref, head, user if mid is not None else "", field, "1" if count else "0"]
        return copy.answer

    def pack(self) -> bytes:
        head, size = self.adapter._send_head(self.ns, self.room)
        tail = hiredis.pack_command((self.now, "1" if self.touch else "0", *self.messages))
        count = size + 2 + len(self.messages)
        return b"*%d\r\n" % count + head + tail[tail.index(b"\n") + 1 :]


def unavailable(retry_after: float) -> EnvelopeError:
    return EnvelopeError(
        ErrorCode.UNAVAILABLE,
        f"the room service (Redis) is unreachable: try again in {retry_after:.1f} s",
        retry_after=retry_after,
    )


class RedisAdapter:
    """Publishes this process's emits to Redis and delivers everyone's to local members."""

    def __init__(
        self,
        url: str,
        hub: EventHub,
        *,
        prefix: str = PREFIX,
        history_size: int = 1000,
        history_window: float = 300.0,
        history_event: str,
        recent: int = 50,
        heartbeat: float = HEARTBEAT,
        alive_ttl: float = ALIVE_TTL,
        max_rooms: int = ROOMS,
        max_seen: int = MAX_SEEN,
        history_bytes: int = MAX_BYTES,
    ) -> None:
        self.url = url
        self.shown = shown_url(url)  # what a log line says: never the password
        self.hub = hub
        self.logger: logging.Logger = hub.logger
        self.prefix = prefix
        self.channel = f"{prefix}:events"
        self.uid = secrets.token_hex(6)  # this process, in keys and messages
        self.history_size = history_size
        self.history_window = history_window
        self.history_event = history_event  # the event a room's numbered messages go as
        self.recent = recent  # messages of a room sent with a join's acknowledgement
        self.heartbeat = heartbeat
        self.alive_ttl = alive_ttl
        # Bounds (keep.lua): read at each use, so that a test may shorten them.
        self.key_ttl = max(KEY_TTL, math.ceil(history_window))
        self.seq_ttl = SEQ_TTL  # a room's seq and the namespace's rooms (at least key_ttl)
        self.max_rooms = max_rooms
        self.max_seen = max_seen
        self.history_bytes = history_bytes  # of a namespace's history entries
        self.mid_ttl = MID_TTL
        # Per user: mids, bytes; users, every user's bytes, the largest ack kept whole.
        self.mid_limits = (MIDS_PER_USER, MID_BYTES_PER_USER, MID_USERS, MID_BYTES, MID_ACK)
        self._refreshed = -math.inf  # when the keys of this process's rooms were last renewed
        self.available = False
        self.retry_after = BACKOFF.delay
        self.received = 0  # messages this process read from the channel
        # Every command of this process, in order; the channel on a connection of its own
        # (both opened by _listen, and again after Redis was away).
        self._redis: RedisPipe | None = None
        self._sub: RedisPipe | None = None
        self._held: list[str] | None = None  # messages read while connecting, for after
        self._held_size = 0  # their characters, at most held_limit
        self.held_limit = HELD
        # Our publications on their way back, by ref: each future (or room message's Copy),
        # and when to stop waiting.
        self._waiting: dict[str, tuple[asyncio.Future[Any] | Copy, float]] = {}
        # send.lua's command up to its first argument that changes, packed, per room
        # (at most TOUCHED), with the settings it was packed with (_send_head).
        self._heads: dict[tuple[str, str], tuple[tuple[Any, ...], bytes, int]] = {}
        self._batch: SendBatch | None = None  # room messages of this turn, to one room
        self._pending_users: dict[int, str] = {}  # sessions whose join is on its way
        self._refs = itertools.count(1)
        # Newest seq seen per room with members here (what else the channel numbers is
        # dropped on delivery and at each _refresh).
        self._last_seq: dict[tuple[str, str], int] = {}
        self._touched: dict[tuple[str, str], float] = {}  # rooms touched, when (_touch)
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = asyncio.Event()
        # The scripts, run by their sha (each loaded on connecting: _load_scripts).
        names = ("join", "leave", "send", "count", "direct")
        self._sources = {name: _lua("keep") + _lua(name) for name in names}
        self._sources |= {"remember": REMEMBER, "resync": RESYNC, "reap": REAP}
        self._shas = {
            name: hashlib.sha1(source.encode()).hexdigest()
            for name, source in self._sources.items()
        }

    # -- life cycle ------------------------------------------------------------------

    async def start(self, wait: float = 3.0) -> None:
        """Connect and subscribe (waiting up to ``wait`` seconds; after that the server
        serves anyway and the adapter keeps trying in the background)."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen()), loop.create_task(self._beat())]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._connected.wait()

    async def stop(self) -> None:
        """Finish what is queued, take this process's sessions out, disconnect."""
        if self.available:
            # Replies come in order: when this one is back, what was sent before is done.
            with contextlib.suppress(*FAILURES, EnvelopeError):
                async with asyncio.timeout(2):
                    keys = [self._key("proc", self.uid)]
                    await self._submit(self._script("reap", keys, self._reap_args(True)))
                    await self._submit(("DEL", self._key("alive", self.uid)))
                    await self._submit(("SREM", self._key("procs"), self.uid))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for waiter, _ in self._waiting.values():
            future = waiter.answer if type(waiter) is Copy else waiter
            if not future.done():
                future.cancel()

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _reap_args(self, publish: bool) -> list[Any]:
        now = iso(time.time())
        return [
            self.prefix,
            self.channel,
            "1" if publish else "0",
            now,
            self.key_ttl,
            self.max_seen,
            self.seq_ttl,
        ]

    def _room_args(self, ns: str, room: str) -> list[Any]:
        """What keep.lua's ``touch`` takes: prefix, ns, room, ttl, cap, seq ttl."""
        return [self.prefix, ns, room, self.key_ttl, self.max_rooms, self.seq_ttl]

    def _lost(self, error: BaseException) -> None:
        if self.available:
            self.available = False
            self._connected.clear()
            self.logger.warning("redis %s unreachable: %r; serving without it", self.shown, error)
        for pipe in (self._redis, self._sub):  # _listen wakes, and connects again
            if pipe is not None:
                pipe.close(error)
        self._give_up()  # what was published comes back no more

    def _check(self) -> None:
        if not self.available:
            raise unavailable(self.retry_after)

    # -- the channel: read, and deliver to this process's members -------------------------

    async def _listen(self) -> None:
        """Connect and subscribe, write our sessions back, then deliver as messages are
        read (``_read``), until a connection drops; connect again with backoff."""
        attempt = 0
        while True:
            self._held, self._held_size = [], 0  # read before catching up: delivered after
            try:
                self._sub = await RedisPipe.open(
                    self.url, f"rtlab-sub-{self.uid}", on_message=self._read
                )
                # Named, so that CLIENT LIST on the Redis server tells the processes apart.
                self._redis = await RedisPipe.open(self.url, f"rtlab-{self.uid}")
                await self._sub.call("SUBSCRIBE", self.channel)
                await self._load_scripts()
                await self._register()
                await self._resync_sessions()
                await self._catch_up()
                for pipe in (self._sub, self._redis):
                    if pipe.closed.done():  # lost meanwhile (_read): deliver nothing held
                        raise pipe.closed.exception() or ConnectionError("Redis is gone")
                held, self._held = self._held, None
                for text in held:
                    self._read(text)
                attempt = 0
                self.retry_after = BACKOFF.delay
                self.available = True
                self._connected.set()
                self.logger.info(
                    "redis %s: subscribed to %s as %s", self.shown, self.channel, self.uid
                )
                closed = {self._sub.closed, self._redis.closed}
                done, _ = await asyncio.wait(closed, return_when=asyncio.FIRST_COMPLETED)
                raise done.pop().exception() or ConnectionError("Redis closed the connection")
            except FAILURES as error:
                self._lost(error)
                attempt += 1
                delay = backoff_delay(attempt, BACKOFF)
                self.retry_after = max(delay, BACKOFF.delay)
                self.logger.info(
                    "redis %s: reconnecting in %.1f s (attempt %d)", self.shown, delay, attempt
                )
                await asyncio.sleep(delay)
            finally:
                for pipe in (self._sub, self._redis):
                    if pipe is not None:
                        pipe.close()
                self._sub = self._redis = None

    def _read(self, text: str) -> None:
        """A message read from the channel (all that one read brought, in order). While
        connecting, held for after the catch-up; past ``held_limit`` characters, the
        connection counts as failed (the catch-up takes too long for the channel's rate),
        and the next one catches up from the rooms' history."""
        if self._held is not None:
            self._held_size += len(text)
            if self._held_size > self.held_limit:  # what is held is never delivered
                self._held, self._held_size = [], 0
                error = ConnectionError(
                    f"the channel brought more than {self.held_limit:,} characters "
                    "while this process caught up"
                )
                self.logger.warning("redis %s: %s: connecting again", self.shown, error)
                self._lost(error)
                return
            self._held.append(text)
            return
        self.received += 1
        try:
            self._deliver(text)
        except Exception as error:  # one bad message must not stop the rest
            self.logger.error("redis: cannot deliver %.80r", text, exc_info=error)

    def _deliver(self, text: str) -> None:
        head, _, rest = text.partition("\n")
        try:
            header = json.loads(head)
        except ValueError:
            self.logger.warning("redis: unreadable message on %s: %.80r", self.channel, text)
            return
        namespace = self.hub.namespaces.get(header.get("ns", ""))
        if namespace is None:
            return
        room = header.get("room")
        mine = header.get("o") == self.uid
        seq = header.get("seq")
        if room is not None and type(seq) is int:
            key = (namespace.name, room)
            if seq <= self._last_seq.get(key, 0):  # delivered here already, by _catch_up
                if mine:  # numbered: room messages (send.lua), which list their refs
                    for ref in header.get("refs", ()):
                        self._answer(ref, 0)
                return
            if room in namespace.rooms:
                self._last_seq[key] = seq
            else:  # no member here: nothing to tell apart, nothing to keep
                self._last_seq.pop(key, None)
        if header.get("kind") in ("left", "gone"):  # out of the room on every process
            namespace.gone(room, header["user"], header["at"], died=header["kind"] == "gone")
            return
        if header.get("kind") == "join":
            frames = rest.split("\n") if rest else []  # what the joiner missed, if asked
            if header.get("first"):  # the user's first session in the room, anywhere
                namespace.joined(room, header["user"], header["at"])
            if mine:
                self._joined(namespace, room, header.get("sid"), frames)
        else:
            if header.get("user") is not None:
                user = header["user"]
                targets = [s for s in namespace.sessions if s.user == user]
            elif room is not None:
                targets = list(namespace.rooms.members(room))
            else:
                targets = list(namespace.sessions)
            if mine and header.get("skip") is not None:
                targets = [s for s in targets if s.id != header["skip"]]
            frames = [base64.b64decode(rest)] if header.get("binary") else rest.split("\n")
            count = 0
            for frame in frames:
                count = self.hub.deliver(targets, frame)
            if mine:  # room messages (send.lua) list theirs, one a frame
                for ref in header.get("refs", ()):
                    self._answer(ref, count)
        if mine and header.get("ref") is not None and header.get("kind") == "join":
            self._answer(header["ref"], None)

    async def _catch_up(self) -> None:
        """Deliver the room messages published while this process was not subscribed.

        A channel keeps nothing: after Redis comes back, another process may publish
        before this one has subscribed again. Those messages are in the rooms' history,
        numbered; ``_deliver`` skips what this delivered already (seq not above the last).
        """
        for namespace in list(self.hub.namespaces.values()):
            prefix, suffix = event_parts(self.history_event, namespace.name)
            for room in list(namespace.rooms):
                key = (namespace.name, room)
                history = self._key("history", namespace.name, room)
                for entry in await self._call("LRANGE", history, 0, -1):
                    seq, _, rest = entry.partition(" ")
                    data = rest.partition(" ")[2]  # after the time
                    if int(seq) > self._last_seq.get(key, 0):
                        self._last_seq[key] = int(seq)
                        frame = prefix + data + suffix
                        self.hub.deliver(list(namespace.rooms.members(room)), frame)

    def _joined(self, namespace: Namespace, room: str, sid: Any, replay: list[str]) -> None:
        """Our join's marker came back: from here on the session gets the room's events."""
        session = self.hub.sessions.get(sid) if type(sid) is int else None
        if session is None or namespace.name not in session.namespaces:
            # Gone while the join was on its way: count it out again.
            user = self._pending_users.pop(sid, None) if type(sid) is int else None
            if user is not None:
                self._leave(namespace.name, room, user)
            return
        namespace.rooms.join(session, room)
        for frame in replay:
            self.hub.deliver([session], frame)

    def _expect(self, ref: str) -> asyncio.Future[Any]:
        """What our publication ``ref`` brings back when _deliver reads it; None if it
        has not within ``ANSWER_TIMEOUT`` seconds (the heartbeat's ``_give_up``) or Redis
        went away (``_lost``)."""
        arrived: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[ref] = (arrived, time.monotonic() + ANSWER_TIMEOUT)
        return arrived

    def _answer(self, ref: str, value: Any) -> None:
        waiter, _ = self._waiting.pop(ref, (None, 0.0))
        if type(waiter) is Copy:
            waiter.arrived()
        elif waiter is not None and not waiter.done():
            waiter.set_result(value)

    def _give_up(self, before: float = math.inf) -> None:
        """Stop waiting for our publications due before ``before`` (all by default)."""
        for ref, (_, due) in list(self._waiting.items()):
            if due < before:
                self._answer(ref, None)

    # -- commands: every Redis change of this process, in order ------------------------------

    def _call(self, *command: str | int | float) -> asyncio.Future[Any]:
        """Send a command while connecting (the setup in _listen, before ``available``)."""
        if self._redis is None:
            raise ConnectionError("not connected to Redis")
        return self._redis.call(*command)

    def _submit(self, command: Command) -> asyncio.Future[Any]:
        """Send a command after every earlier one of this process (one connection, which
        Redis answers in order; a turn's commands go in one write); its reply, or
        ``unavailable`` while Redis is away or if it failed (which counts Redis lost)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            pipe = self._pipe()
        except EnvelopeError as error:
            future.set_exception(error)
            return future
        pipe.call(*command).add_done_callback(lambda reply: self._replied(reply, future, pipe))
        return future

    def _pipe(self) -> RedisPipe:
        """The connection commands go on; ``unavailable`` while Redis is away."""
        if not self.available or self._redis is None:
            raise unavailable(self.retry_after)
        return self._redis

    def _replied(
        self, reply: asyncio.Future[Any], future: asyncio.Future[Any], pipe: RedisPipe
    ) -> None:
        error = self._failure(reply, pipe)
        if future.done():
            return
        if error is not None:
            future.set_exception(unavailable(self.retry_after))
        else:
            future.set_result(reply.result())

    def _failure(self, reply: asyncio.Future[Any], pipe: RedisPipe) -> BaseException | None:
        """What a command on ``pipe`` failed with, if it did; a failure on the current
        connection counts Redis lost (NOSCRIPT too: the scripts load again)."""
        error = reply.exception()
        if error is not None and pipe is self._redis:
            self._lost(error)
        return error

    def _script(self, name: str, keys: list[Any], args: list[Any]) -> Command:
        """The command that runs one of the scripts (loaded on connecting)."""
        return ("EVALSHA", self._shas[name], len(keys), *keys, *args)

    async def _load_scripts(self) -> None:
        for name, source in self._sources.items():
            sha = await self._call("SCRIPT", "LOAD", source)
            assert sha == self._shas[name], f"{name}: Redis says {sha}, not {self._shas[name]}"

    # -- liveness ---------------------------------------------------------------------

    async def _register(self) -> None:
        alive = self._key("alive", self.uid)
        await self._call("SET", alive, "1", "PX", int(self.alive_ttl * 1000))
        await self._call("SADD", self._key("procs"), self.uid)
        await self._call("EXPIRE", self._key("procs"), self.key_ttl)

    async def _beat(self) -> None:
        """Renew our alive key; reap the processes whose key expired."""
        while True:
            await asyncio.sleep(self.heartbeat)
            self._give_up(before=time.monotonic())
            if not self.available:
                continue
            try:
                await self._register()
                if time.monotonic() - self._refreshed >= self.key_ttl / 4:
                    await self._refresh()
                if not await self._call("EXISTS", self._key("proc", self.uid)):
                    # Taken for dead (stalled longer than alive_ttl) and reaped: write our
                    # sessions back, in order with the operations queued before this.
                    args = self._resync_args()
                    if args[7]:
                        keys = [self._key("proc", self.uid)]
                        self._submit(self._script("resync", keys, args))
                for uid in await self._call("SMEMBERS", self._key("procs")):
                    if uid == self.uid or await self._call("EXISTS", self._key("alive", uid)):
                        continue
                    keys = [self._key("proc", uid)]
                    gone = await self._call(*self._script("reap", keys, self._reap_args(True)))
                    await self._call("SREM", self._key("procs"), uid)
                    self.logger.warning(
                        "redis: process %s stopped renewing its key; %d room presence(s) reaped",
                        uid,
                        len(gone),
                    )
            except FAILURES as error:
                self._lost(error)

    async def _refresh(self) -> None:
        """Renew the keys of this process and of every room its sessions are in, however
        quiet: a room in use never loses its history or numbering to a TTL."""
        ttl = self.key_ttl
        renewals = [self._call("EXPIRE", self._key("proc", self.uid), ttl)]
        for namespace in list(self.hub.namespaces.values()):
            ns = namespace.name
            renewals.append(self._call("EXPIRE", self._key("members", ns, ONLINE), ttl))
            for room in list(namespace.rooms):
                for kind in ROOM_KEYS:
                    renewals.append(self._call("EXPIRE", self._key(kind, ns, room), ttl))
                renewals.append(self._call("EXPIRE", self._key("seq", ns, room), self.seq_ttl))
        await asyncio.gather(*renewals)  # sent in one write, answered in one go
        self._refreshed = time.monotonic()
        for ns, room in list(self._last_seq):  # rooms that emptied here since
            namespace = self.hub.namespaces.get(ns)
            if namespace is None or room not in namespace.rooms:
                del self._last_seq[ns, room]

    async def _resync_sessions(self) -> None:
        """Write this process's room members back (Redis may have restarted empty)."""
        keys = [self._key("proc", self.uid)]
        await self._call(*self._script("resync", keys, self._resync_args()))

    def _resync_args(self) -> list[Any]:
        """This process's sessions, per room and namespace, and the newest seq seen of
        each room, as RESYNC takes them (a snapshot: what is queued after it adds on)."""
        counts: dict[str, int] = {}
        for namespace in self.hub.namespaces.values():
            for room in namespace.rooms:
                for session in namespace.rooms.members(room):
                    field = f"{namespace.name} {room} {session.user}"
                    counts[field] = counts.get(field, 0) + 1
        for namespace in self.hub.namespaces.values():
            for session in namespace.sessions:
                field = f"{namespace.name} {ONLINE} {session.user}"
                counts[field] = counts.get(field, 0) + 1
        args: list[Any] = [*self._reap_args(False), len(counts)]
        for field, count in sorted(counts.items()):
            args += [field, count]
        for (ns, room), seq in sorted(self._last_seq.items()):
            args += [f"{ns} {room}", seq]
        return args

    # -- what events.py and the lab's room store (redis_rooms.py) call ---------------------

    def publish(
        self,
        ns: str,
        frame: str | bytes,
        *,
        room: str | None = None,
        user: str | None = None,
        skip: Session | None = None,
    ) -> int:
        """Publish an event once, for every process to deliver to its members (a room,
        a user's sessions or the whole namespace). Returns how many of this process's
        sessions it is for; while Redis is away it goes to this process's only."""
        namespace = self.hub.namespaces[ns]
        if user is not None:
            local = [s for s in namespace.sessions if s.user == user]
        elif room is not None:
            local = list(namespace.rooms.members(room))
        else:
            local = list(namespace.sessions)
        if skip is not None:
            local = [s for s in local if s is not skip]
        if not self.available:
            return self.hub.deliver(local, frame)
        header = {"o": self.uid, "ns": ns, "room": room, "user": user}
        if skip is not None:
            header["skip"] = skip.id
        if isinstance(frame, bytes):  # a binary frame (attachments) travels as base64
            header["binary"] = True
            frame = base64.b64encode(frame).decode()
        message = f"{json_utf8(header)}\n{frame}"
        self._submit(("PUBLISH", self.channel, message))
        return len(local)

    def _leave(self, ns: str, room: str, user: str) -> None:
        now = iso(time.time())
        header = {"o": self.uid, "ns": ns, "room": room, "kind": "left", "user": user}
        message = json_utf8({**header, "at": now})
        keys = [self._key("members", ns, room), self._key("proc", self.uid)]
        args = [f"{ns} {room} {user}", user, self.channel, message, now]
        args += [self.prefix, ns, room, time.time(), self.key_ttl, self.max_rooms]
        args += [self.seq_ttl, self.max_seen]
        self._submit(self._script("leave", keys, args))

    def online(self, ns: str, user: str, delta: int) -> None:
        """A session of ``user`` connected to (+1) or left (-1) namespace ``ns``."""
        if self.available:
            keys = [self._key("members", ns, ONLINE), self._key("proc", self.uid)]
            args = [f"{ns} {ONLINE} {user}", user, delta, self.key_ttl]
            self._submit(self._script("count", keys, args))

    async def direct_message(self, session: Session, ns: str, to: str, frame: str) -> int:
        """Publish ``frame`` to every session of ``to`` and the sender's others, on every
        process; to how many, or -1 when ``to`` is connected nowhere."""
        self._check()
        header = {"o": self.uid, "ns": ns, "room": None}
        to_them = f"{json_utf8({**header, 'user': to})}\n{frame}"
        to_mine = f"{json_utf8({**header, 'user': session.user, 'skip': session.id})}\n{frame}"
        keys = [self._key("members", ns, ONLINE)]
        args = [to, session.user, self.channel, to_them, to_mine]
        return int(await self._submit(self._script("direct", keys, args)))

    def left(self, ns: str, room: str, session: Session) -> None:
        """``session`` left ``room`` here; every process hears the room's ``left`` marker if
        the user is gone from it on every process."""
        if self.available:
            self._leave(ns, room, session.user)

    async def join_room(
        self, session: Session, namespace: Namespace, room: str, since: int | None
    ) -> Joined:
        """Count the session in, tell every process if the user is new there (their
        namespace's ``on_joined``), replay what was missed; what the join learnt."""
        self._check()
        ns = namespace.name
        if namespace.rooms.is_member(session, room):
            members_key, seq_key = self._key("members", ns, room), self._key("seq", ns, room)
            members = await self._submit(("HKEYS", members_key))
            last = await self._submit(("GET", seq_key))
            if since is None:
                return Joined(sorted(members), int(last or 0))
            return Joined(sorted(members), int(last or 0), recovered=True, replayed=0)
        ref = f"{self.uid}-{next(self._refs)}"
        header = {"o": self.uid, "ns": ns, "room": room, "kind": "join", "sid": session.id}
        header["ref"] = ref
        first = {**header, "first": True, "user": session.user, "at": iso(time.time())}
        prefix, suffix = event_parts(self.history_event, ns)
        keys = [
            self._key("members", ns, room),
            self._key("proc", self.uid),
            self._key("seq", ns, room),
            self._key("history", ns, room),
            self._key("seen", ns, room),
        ]
        args = [
            f"{ns} {room} {session.user}",
            session.user,
            self.channel,
            json_utf8(first),
            json_utf8(header),
            prefix,
            suffix,
            -1 if since is None else since,
            time.time(),
            self.history_window,
            self.recent,
            *self._room_args(ns, room),
        ]
        arrived = self._expect(ref)
        self._pending_users[session.id] = session.user
        try:
            result = await self._submit(self._script("join", keys, args))
            await arrived  # the session is in the room here from now on
        finally:
            self._waiting.pop(ref, None)
            self._pending_users.pop(session.id, None)
        _, members, last, replayed, complete, recent, seen = result
        return Joined(
            sorted(members),
            int(last),
            None if since is None else bool(complete),
            None if since is None else int(replayed),
            [json.loads(data) for data in recent],
            dict(zip(seen[::2], seen[1::2], strict=True)),
        )

    def send_message(
        self, session: Session, ns: str, room: str, payload: dict[str, Any]
    ) -> asyncio.Future[dict[str, Any]]:
        """Number, keep and publish a room message, sent before this returns (after every
        command sent before it, and before every one after: the hub may pipeline room
        messages); the ack's data, once our own copy of it was delivered here.

        Messages into the same room one after another before the connection's next
        write, with nothing between them on it, go in one script (``SendBatch``)."""
        pipe = self._pipe()
        event = session.event
        mid = event.mid if event is not None else None
        count = event is None or event.id is not None or mid is not None
        batch = self._batch
        if batch is None or pipe.last() is not batch or not batch.fits(ns, room, session.user, mid):
            batch = self._batch = SendBatch(self, ns, room)
            sent = pipe.call_deferred(batch)
            sent.add_done_callback(lambda _: self._sent(batch, sent, pipe))
        ref = f"{self.uid}-{next(self._refs)}"
        return batch.add(ref, json_utf8(payload)[:-1] + ',"seq":', session.user, mid, count)

    def _sent(self, batch: SendBatch, sent: asyncio.Future[Any], pipe: RedisPipe) -> None:
        """send.lua answered: each message's ack data, once our own copy was delivered
        here (the message before its ack), or at once for a resend or a failure."""
        if self._batch is batch:
            self._batch = None
        error = self._failure(sent, pipe)
        for index, copy in enumerate(batch.waiting):
            answer = copy.answer
            if answer.done():  # cancelled: whoever awaited it is gone
                self._waiting.pop(copy.ref, None)
                continue
            if error is not None:
                self._waiting.pop(copy.ref, None)
                answer.set_exception(unavailable(self.retry_after))
                continue
            seq, result = sent.result()[index]
            if seq == 0:  # a resend of a message already published: its answer again
                self._waiting.pop(copy.ref, None)
                answer.set_result(json.loads(result))
                continue
            data = {"roomId": batch.room, "seq": int(seq)}
            if result >= 0:  # else nobody asked how many it reached: not counted
                data["delivered"] = int(result)
            copy.sent(data)

    def _send_head(self, ns: str, room: str) -> tuple[bytes, int]:
        """send.lua's command into ``room`` up to ``now`` (what is the same for every
        script into it while the settings are: read at each use, so that a test may
        change them), packed without the count in front; and how many values it holds."""
        settings = (
            self.history_size,
            self.key_ttl,
            self.max_rooms,
            self.seq_ttl,
            self.history_bytes,
            self.mid_ttl,
            self.mid_limits,
        )
        key = (ns, room)
        found = self._heads.get(key)
        if found is not None and found[0] == settings:
            return found[1], found[2]
        keys = [self._key(kind, ns, room) for kind in ("seq", "history", "members")]
        args = [
            self.channel,
            json_utf8({"o": self.uid, "ns": ns, "room": room})[:-1] + ",",
            *event_parts(self.history_event, ns),
            self.history_size,
            json_utf8({"roomId": room})[:-1] + ',"seq":',
            ',"delivered":',
            *self._room_args(ns, room),
            self.history_bytes,
            self.mid_ttl,
            *self.mid_limits,
        ]
        command = self._script("send", keys, args)
        packed = hiredis.pack_command(command)
        head = packed[packed.index(b"\n") + 1 :]
        if len(self._heads) >= TOUCHED:
            self._heads.clear()
        self._heads[key] = (settings, head, len(command))
        return head, len(command)

    def _touch(self, ns: str, room: str) -> bool:
        """Whether a message into ``room`` needs keep.lua's whole ``touch``: not if this
        process touched the room within the last second and a quarter of the TTL, when
        touch would neither renew its keys nor look its rank up, only move it first by
        less than a second: send.lua leaves it (the registry orders rooms by their last
        use to the second). Remembers ``TOUCHED`` rooms at most, all forgotten past that."""
        now = time.monotonic()
        key = (ns, room)
        if now - self._touched.get(key, -math.inf) < min(1.0, self.key_ttl / 4):
            return False
        if len(self._touched) >= TOUCHED:
            self._touched.clear()
        self._touched[key] = now
        return True

    def check_mid(self, user: str, key: str) -> Awaitable[tuple[bool, Any]]:
        """The hub asks, before handling an event with a ``mid``: see :meth:`seen`."""
        return self.seen(user, key)

    async def seen(self, user: str, key: str) -> tuple[bool, Any]:
        """Whether ``user`` already sent this ``"NS MID"``, on any process, and its ack.
        While Redis is away, only this process's memory says (room messages are checked
        again, atomically, when they are numbered)."""
        if not self.available:
            return False, None
        found = await self._submit(("HGET", self._key("mids", user), key))
        return (False, None) if found is None else (True, json.loads(found))

    def remember(self, user: str, key: str, result: Any) -> None:
        """Note a handled ``"NS MID"`` and its ack for every process: the user's last
        ``MIDS_PER_USER`` mids within ``MID_BYTES_PER_USER`` bytes, for ``MID_TTL`` seconds
        after their last one (keep.lua's ``remember``)."""
        if not self.available:
            return
        try:
            text = json_utf8(result)
        except (TypeError, ValueError):
            return
        args = [self.prefix, user, key, text, time.time(), self.mid_ttl, *self.mid_limits]
        self._submit(self._script("remember", [], args))

    def __repr__(self) -> str:
        state = "connected" if self.available else "unavailable"
        return f"<RedisAdapter {self.shown} {state} as {self.uid}>"
