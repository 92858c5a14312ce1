"""Checks for lesson 10, scaling: who delivers what across servers, and catching up.

Exercise 1: ``deliveries(where, members, room)`` says, for a message sent to ``room``,
which users each server process writes ``receive-message`` to. With the Redis adapter
the message is published once, and every process delivers it to its own members.
The cases are fixed, so the cell always shows the same line.

Exercise 2: ``catch_up(client, room, screen)`` is what a client does when its server
died and it connected to another one: join the room again with ``since`` and return
the screen with what it missed, each message once, in order. The check makes the
traffic for real: two lab servers over the lesson's Redis, one of them stopped while
messages go on, then calls ``catch_up`` with a client connected to the other.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Callable
from typing import Any

import redis

from rtlab.checks import Verdict, grade
from rtlab.checks.bounded import STILL_RUNNING, call_within
from rtlab.notebook.background import RunningServer, start_server
from rtlab.notebook.clients import Client, connect

__all__ = ["check_catch_up", "check_deliveries"]

Where = dict[str, str]  # user -> the process (server) that user is connected to
Members = dict[str, set[str]]  # room -> users in it

DELIVERIES_HINT = (
    "each process writes to its own members of the room, and only to them: the users in "
    "`members[room]` whose `where` is that process. A process with no member of the room "
    "writes to nobody (leave it out), and users outside the room get nothing"
)
DELIVERIES_NUDGE = "go through the users in `members[room]` and group them by `where[user]`"
NO_ENTRY = (
    "a room nobody is in has no entry in `members`: `members.get(room, set())` is its "
    "members then, and the answer is {} (no process writes to anyone)"
)

WHERE: Where = {"alice": "A", "bob": "B", "carol": "B", "dave": "A", "erin": "C"}
MEMBERS: Members = {"lobby": {"alice", "bob", "carol"}, "kitchen": {"dave", "erin"}}
DELIVERY_CASES: tuple[tuple[Where, Members, str, dict[str, list[str]]], ...] = (
    (WHERE, MEMBERS, "lobby", {"A": ["alice"], "B": ["bob", "carol"]}),
    (WHERE, MEMBERS, "kitchen", {"A": ["dave"], "C": ["erin"]}),
    (WHERE, MEMBERS, "attic", {}),
    (
        {"u1": "A", "u2": "A", "u3": "A"},
        {"lobby": {"u1", "u2", "u3"}},
        "lobby",
        {"A": ["u1", "u2", "u3"]},
    ),
    (
        {"ann": "p1", "ben": "p2", "cid": "p3", "dot": "p3"},
        {"r": {"ann", "cid"}, "s": {"ben", "dot"}},
        "s",
        {"p2": ["ben"], "p3": ["dot"]},
    ),
)


def _normal(answer: Any) -> dict[str, list[str]] | str:
    """The answer with each process's users sorted, or what is wrong with its shape."""
    if not isinstance(answer, dict):
        return f"expected a dict process -> list of users, got {type(answer).__name__}"
    for process, users in answer.items():
        if not isinstance(users, list | set | tuple | frozenset):
            return (
                f"expected a dict process -> list of users, got {type(users).__name__} "
                f"{users!r:.40} for {process!r}"
            )
    return {str(k): sorted(v) for k, v in answer.items()}


LIMIT = 2.0  # seconds deliveries may take for one case


def check_deliveries(deliveries: Callable[[Where, Members, str], dict[str, Any]]) -> Verdict:
    """Grade ``deliveries(where, members, room)`` on fixed layouts."""

    def attempt() -> str | tuple[str, str] | None:
        for where, members, room, expected in DELIVERY_CASES:
            call = functools.partial(
                deliveries, dict(where), {k: set(v) for k, v in members.items()}, room
            )
            try:
                answer = call_within(call, LIMIT)
            except KeyError as error:  # members[room] for a room nobody is in
                return f"for {room!r} with {where}: raised KeyError {error}", NO_ENTRY
            if answer is STILL_RUNNING:
                return (
                    f"for {room!r} with {where}: no answer within {LIMIT:g} s: a loop never ends?"
                )
            got = _normal(answer)
            if isinstance(got, str):
                return got
            if got == expected:
                continue
            shown = f"for {room!r} with {where}: expected {expected}, got {got}"
            outside = {u for users in got.values() for u in users} - members.get(room, set())
            if outside:
                return shown, f"{sorted(outside)} are not in {room!r}: they get nothing"
            if any(not users for users in got.values()):
                return shown, "leave out a process that has no member of the room"
            return shown
        return None

    return grade("deliveries", attempt, DELIVERIES_HINT, DELIVERIES_NUDGE)


CATCH_UP_NUDGE = (
    "find the seq of the last message on the screen, and join `room` with it as `since`"
)
CATCH_UP_HINT = (
    "last = screen[-1]['seq'] (0 if the screen is empty); client.emit('join-room', "
    "{'roomId': room, 'since': last}, ack=True) makes the server replay what came after it "
    "as receive-message events, before its ack; add those "
    "([e.data for e in client.events('receive-message')]) whose seq is above last, in order, "
    "to the screen and return it"
)
HOW_MANY = (
    "since is the seq of the last message on the screen (screen[-1]['seq']), not how many "
    "messages it shows: the server replays everything after it"
)
FROM_BEFORE = (
    "the ack's history and since=0 hold messages from before alice came, and ones she has: "
    "add only those whose seq is above the last one on the screen"
)
TWICE = "show a message only if its seq is above the last seq on the screen: once, not twice"
NO_REPLAY = (
    "join with {'roomId': room, 'since': last seq on the screen}: the server replays what "
    "you missed before its ack (client.events('receive-message') has it)"
)
OFF_BY_ONE = "since is the last seq you have: the server replays those after it, not from it"
SAME_TEXT = "two messages can say the same thing ('ok'): tell them apart by seq, not by text"
WHOLE_SCREEN = "return the whole screen: what it showed before, then what was missed"
IN_ORDER = "keep the screen in seq order: the order the room's messages were sent in"

NO_REDIS = (
    "not your code: redis-server is not running (the clean-up cell stops it). Start it "
    "again with `redis_process = start_redis()`, then run the check again"
)

CATCH_UP_ROOM = "relay"
BEFORE = ["hello", "is alice here?"]  # frank's messages before alice joins
SEEN = ["welcome, alice", "ok"]  # what alice's screen shows when her server dies
MISSED = ["lunch at 12?", "ok", "see you there"]  # while she is away
RETURN_WITHIN = 10.0  # seconds catch_up may take before the check gives up on it

Line = tuple[int, str, str]  # seq, user, message: one line of the screen


def _line(message: Any) -> Line:
    return message["seq"], message["userId"], message["message"]


def _clear_room(redis_url: str) -> None:
    """Forget the room's numbers and history from an earlier run: the same traffic each time."""
    store = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        store.delete(
            *(f"rtlab:{kind}:/:{CATCH_UP_ROOM}" for kind in ("seq", "history", "members", "seen"))
        )
    finally:
        store.close()


def _catch_up_problem(
    catch_up: Callable[..., Any], redis_url: str, timeout: float
) -> str | tuple[str, str] | None:
    if not callable(catch_up):
        return f"expected a function, got {type(catch_up).__name__}", CATCH_UP_HINT
    try:
        _clear_room(redis_url)
    except redis.ConnectionError:
        return f"no redis-server answers at {redis_url}, so the check cannot run", NO_REDIS
    servers: list[RunningServer] = []
    clients: list[Client] = []

    def join(server: RunningServer, user: str) -> Client:
        client = connect(server, user)
        clients.append(client)
        client.emit("join-room", CATCH_UP_ROOM, ack=True, timeout=5)
        return client

    def say(client: Client, texts: list[str]) -> None:
        for text in texts:
            data = {"roomId": CATCH_UP_ROOM, "message": text}
            client.emit("send-message", data, ack=True, timeout=5)

    try:
        dying, staying = (start_server(redis=redis_url, ping_interval=None) for _ in range(2))
        servers += [dying, staying]
        frank = join(staying, "frank")
        say(frank, BEFORE)
        alice = join(dying, "alice")
        say(frank, SEEN)
        screen = alice.wait_for("receive-message", len(SEEN), timeout=5)
        dying.stop()  # alice's server dies...
        say(frank, MISSED)  # ...and the room goes on without her
        again = connect(staying, "alice")  # she is back, on the other server
        clients.append(again)
        got = call_within(lambda: catch_up(again, CATCH_UP_ROOM, copy.deepcopy(screen)), timeout)
        if got is STILL_RUNNING:
            return (
                f"catch_up did not return within {timeout:g} s: is it waiting for more "
                "events than the server replays? (the ack's 'replayed' says how many came)",
                CATCH_UP_HINT,
            )
        judge = connect(staying, "judge")
        clients.append(judge)
        judge.emit("join-room", {"roomId": CATCH_UP_ROOM, "since": 0}, ack=True, timeout=5)
        room = [_line(e.data) for e in judge.events("receive-message")]
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
        for server in servers:
            server.stop()
    return _judge_screen(got, [_line(m) for m in screen], room)


def _judge_screen(got: Any, before: list[Line], room: list[Line]) -> str | tuple[str, str] | None:
    """Compare the screen ``catch_up`` returned with the room's messages since alice came."""
    if got is None:
        return "returned None; did you forget `return`?", CATCH_UP_HINT
    if not isinstance(got, list):
        return f"expected a list of messages (the screen), got {type(got).__name__}", CATCH_UP_HINT
    try:
        lines = [_line(m) for m in got]
    except (TypeError, KeyError, IndexError):
        return (
            f"expected the screen as a list of receive-message data (dicts with seq, userId "
            f"and message), got {got!r:.80}",
            CATCH_UP_HINT,
        )
    first = before[0][0]
    expected = [line for line in room if line[0] >= first]
    if lines == expected:
        return None
    seqs, wanted = [line[0] for line in lines], [line[0] for line in expected]
    shown = f"the screen's seq numbers are {seqs}, expected {wanted}: the room's since alice came"
    missed = [seq for seq in wanted if seq not in seqs]
    last = before[-1][0]
    if any(seq < first for seq in seqs):
        return shown, FROM_BEFORE
    if len(set(seqs)) < len(seqs):
        return shown, HOW_MANY if seqs.count(last) > 1 else TWICE
    if missed and all(seq <= last for seq in missed):
        return shown, WHOLE_SCREEN
    if missed == [seq for seq in wanted if seq > last]:
        return shown, NO_REPLAY
    if missed == [last + 1]:
        return shown, OFF_BY_ONE
    texts = {line[2] for line in lines}
    if missed and all(line[2] in texts for line in expected if line[0] in missed):
        return shown, SAME_TEXT
    if sorted(seqs) == wanted:
        return shown, IN_ORDER
    return shown


def check_catch_up(
    catch_up: Callable[..., Any], redis_url: str, timeout: float = RETURN_WITHIN
) -> Verdict:
    """Grade ``catch_up(client, room, screen)`` on live servers over Redis at ``redis_url``;
    an answer that has not returned after ``timeout`` seconds fails."""
    return grade(
        "catch_up",
        lambda: _catch_up_problem(catch_up, redis_url, timeout),
        CATCH_UP_HINT,
        CATCH_UP_NUDGE,
    )
