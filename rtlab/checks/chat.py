"""Checks for lesson 09, the chat app: the presence rule, a live presence list, typing.

Exercise 1: ``presence_changes(before, sessions)`` says who came online and who went
offline in a room, given who was online before and the users of the sessions in it
now (one entry per tab). The server's table (rtlab.core.presence.Presence) is the
reference.

Exercise 2: ``roster(joined, events)`` keeps a room's presence list up to date on the
client: the join ack's ``presence`` list, then the ``presence`` events after it. The
check makes real traffic on a lab server of its own and compares the answer with what
the server tells a newcomer at the end.

Exercise 3: ``typing_signal(typing, last_key, what, now)`` says what a text box tells
the server: True (typing), False (stopped) or None (nothing new). The check plays
scripted sessions of keys, timer ticks and sends, and compares every answer with
rtlab.core.presence.debounce (without the renewal, which the lesson shows apart).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

from rtlab.checks import Verdict, grade
from rtlab.checks.bounded import STILL_RUNNING, call_within
from rtlab.core.presence import TYPING_IDLE, Debounce, Input, Presence, debounce
from rtlab.notebook.background import start_server
from rtlab.notebook.clients import Client, connect

__all__ = ["check_presence_changes", "check_roster", "check_typing_signal"]

Problem = tuple[str, str]

# -- exercise 1: presence_changes(before, sessions) ----------------------------------------

LIMIT = 2.0  # seconds presence_changes or typing_signal may take for one case
PRESENCE_NUDGE = "make a set of the users in `sessions`, and compare it with `before`"

PRESENCE_HINT = (
    "presence is per user: a user is online while at least one of their sessions is in "
    "the room. Compare the set of users before with the set of users now; return "
    "(user, True) for each newcomer and (user, False) for each who is gone, sorted by user"
)
TABS = (
    "a user with two tabs is one user: their second tab joining, or one of two tabs "
    "leaving, changes nothing (count users, not sessions)"
)
NO_NEWS = "someone who was online and still is has not changed: leave them out"
SORTED = "sort the changes by user, so that every run tells the room in the same order"

PRESENCE_CASES: tuple[tuple[frozenset[str], tuple[str, ...], str], ...] = (
    (frozenset(), ("alice",), PRESENCE_HINT),
    (frozenset({"alice"}), ("alice", "bob"), NO_NEWS),
    (frozenset({"alice"}), ("alice", "bob", "bob"), TABS),
    (frozenset({"alice", "bob"}), ("alice", "bob", "bob"), TABS),
    (frozenset({"alice", "bob"}), ("bob",), PRESENCE_HINT),
    (frozenset({"alice", "bob"}), ("bob", "bob"), TABS),
    (frozenset({"carol", "alice"}), ("dave", "bob", "bob"), SORTED),
    (frozenset({"alice"}), (), PRESENCE_HINT),
    (frozenset(), (), PRESENCE_HINT),
)


def expected_changes(before: Iterable[str], sessions: Iterable[str]) -> list[tuple[str, bool]]:
    """The reference answer: what the server's presence table says."""
    table = Presence()
    table.update("room", before, 0.0)
    return [(c.user, c.online) for c in table.update("room", sessions, 1.0)]


def _presence_problem(presence_changes: Callable[..., Any]) -> Problem | None:
    if not callable(presence_changes):
        return f"expected a function, got {type(presence_changes).__name__}", PRESENCE_HINT
    for before, sessions, hint in PRESENCE_CASES:
        got = call_within(functools.partial(presence_changes, set(before), list(sessions)), LIMIT)
        where = f"before {sorted(before)}, sessions now {list(sessions)}"
        if got is STILL_RUNNING:
            return f"{where}: did not return within {LIMIT:g} s: does a loop never end?", hint
        if got is None:
            return f"{where}: returned None; did you forget `return`?", PRESENCE_HINT
        if isinstance(got, set | frozenset):  # its order is the hashes', a different one each run
            return f"{where}: returned a set, which has no order: return a sorted list", SORTED
        try:
            answer = [(user, online) for user, online in got]
        except (TypeError, ValueError):
            return f"{where}: expected a list of (user, online) pairs, got {got!r:.80}", hint
        expected = expected_changes(before, sessions)
        if answer != expected:
            if len(set(answer)) < len(answer):
                hint = TABS
            elif sorted(answer) == sorted(expected):
                hint = SORTED
            return f"{where}: expected {expected}, got {answer!r:.120}", hint
    return None


def check_presence_changes(presence_changes: Callable[..., Any]) -> Verdict:
    """Grade ``presence_changes(before, sessions)``: who came online, who went offline."""
    return grade(
        "presence_changes",
        lambda: _presence_problem(presence_changes),
        PRESENCE_HINT,
        PRESENCE_NUDGE,
    )


# -- exercise 2: roster(joined, events), graded on a live server ----------------------------

ROSTER_NUDGE = "make a dict from `joined` (the ack's list), then go through `events` in order"
ROSTER_HINT = (
    "start from the join ack's list: user -> None if online, else their lastSeen. Then apply "
    "each presence event in order: online -> None, offline -> the event's lastSeen (the time "
    "they left). Return the dict"
)
ONLINE_NO_TIME = (
    "in a presence event, lastSeen is the time of that change: for online: true it is when "
    "the user came online. Someone online now has no 'last seen': None"
)
KEEP_LEFT = (
    "a user who went offline stays in the list with the time they left (the lastSeen of "
    "their online: false event), so that the chat can show 'last seen ...'"
)
APPLY_EVENTS = "apply every presence event after the ack's list, in order: a user's last one wins"
FROM_ACK = "start from the join ack's list: it holds those who were there before you came"

ROSTER_ROOM = "roster"
MISSING = "nothing"  # what a verdict shows for a user left out
RETURN_WITHIN = 5.0  # seconds roster may take before the check gives up on it
Roster = dict[str, str | None]  # user -> None while online, else when they left


def _live_roster_traffic() -> tuple[list[Any], list[Any], Roster]:
    """Real traffic on a server of the check's own: the presence list in erin's join ack,
    the presence events she got after it, and what a newcomer is told at the end."""
    server = start_server(ping_interval=None)
    clients: list[Client] = []

    def join(user: str) -> tuple[Client, Any]:
        client = connect(server, user)
        clients.append(client)
        return client, client.emit("join-room", ROSTER_ROOM, ack=True, timeout=5)

    try:
        alice, _ = join("alice")
        carol, _ = join("carol")
        carol.close()  # carol was here and left before erin came
        alice.wait_for("presence", 2, timeout=5)
        erin, ack = join("erin")
        bob_tab, _ = join("bob")  # bob comes online...
        join("bob")  # ...and opens a second tab: no news
        join("carol")  # carol is back
        erin.wait_for("presence", 2, timeout=5)
        alice.close()  # alice goes
        erin.wait_for("presence", 3, timeout=5)
        dave, _ = join("dave")  # dave comes and goes
        dave.close()
        erin.wait_for("presence", 5, timeout=5)
        bob_tab.close()  # one of bob's two tabs: no news
        events = [event.data for event in erin.events("presence")]
        _, told = join("newcomer")
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
        server.stop()
    now = _as_roster(told["presence"])
    del now["newcomer"]
    return ack["presence"], events, now


def _as_roster(entries: list[Any]) -> Roster:
    return {p["userId"]: None if p["online"] else p["lastSeen"] for p in entries}


def _roster_hint(
    got: dict[Any, Any], expected: Roster, joined: list[Any], events: list[Any]
) -> str:
    """The hint for the mistake ``got`` shows."""
    wrong = [u for u in {*got, *expected} if got.get(u, MISSING) != expected.get(u, MISSING)]
    came_online = {e["lastSeen"] for e in events if e["online"]}
    if any(expected.get(u, "") is None and got.get(u) in came_online for u in wrong):
        return ONLINE_NO_TIME
    if got == _as_roster(joined):
        return APPLY_EVENTS
    back = {e["userId"] for e in events if e["online"]}
    if any(
        expected.get(u) is not None and (u not in got or (got[u] is None and u not in back))
        for u in wrong
    ):
        return KEEP_LEFT
    heard = {e["userId"] for e in events}
    if any(u in expected and u not in got and u not in heard for u in wrong):
        return FROM_ACK
    return APPLY_EVENTS


def _roster_problem(roster: Callable[..., Any], timeout: float) -> Problem | None:
    if not callable(roster):
        return f"expected a function, got {type(roster).__name__}", ROSTER_HINT
    joined, events, expected = _live_roster_traffic()
    got = call_within(lambda: roster(copy.deepcopy(joined), copy.deepcopy(events)), timeout)
    if got is STILL_RUNNING:
        return f"roster did not return within {timeout:g} s: does a loop never end?", ROSTER_HINT
    if got is None:
        return "returned None; did you forget `return`?", ROSTER_HINT
    if not isinstance(got, dict):
        return f"expected a dict user -> lastSeen or None, got {type(got).__name__}", ROSTER_HINT
    if got == expected:
        return None
    wrong = [
        f"{user}: expected {expected.get(user, MISSING)!r}, got {got.get(user, MISSING)!r}"
        for user in sorted({*expected, *got}, key=str)
        if got.get(user, MISSING) != expected.get(user, MISSING)
    ]
    return (
        f"after {len(events)} presence events on a live server, " + "; ".join(wrong[:3]),
        _roster_hint(got, expected, joined, events),
    )


def check_roster(roster: Callable[..., Any], timeout: float = RETURN_WITHIN) -> Verdict:
    """Grade ``roster(joined, events)`` against a live room's traffic: the presence list
    a client keeps up to date must be what the server tells a newcomer. An answer that
    has not returned after ``timeout`` seconds fails."""
    return grade("roster", lambda: _roster_problem(roster, timeout), ROSTER_HINT, ROSTER_NUDGE)


# -- exercise 3: typing_signal(typing, last_key, what, now) --------------------------------

TYPING_NUDGE = "one `if` per kind of `what`: 'key', 'tick', 'send'; start with 'key'"

TYPING_HINT = (
    f"'key': True if the server was not told yet, else None; 'tick': False once "
    f"{TYPING_IDLE:g} s passed since the last key (if typing), else None; 'send': False if "
    f"typing, else None"
)
FIRST_KEY = "the first key says True: from now on the others see '… is typing'"
MORE_KEYS = (
    "further keys say nothing (None): the server knows already, and one event per key "
    "would flood the room"
)
IDLE = f"a tick {TYPING_IDLE:g} s or more after the last key says False: the typist paused"
NOT_YET = f"a tick less than {TYPING_IDLE:g} s after the last key says nothing: still typing"
QUIET = "when not typing, a tick or a send has nothing to say (None): False was said already"
SENT = "sending the message ends typing: say False"

Step = tuple[Input, float]  # what happened, and when (seconds)

TYPING_SESSIONS: tuple[tuple[Step, ...], ...] = (
    (("key", 0.0), ("key", 0.4), ("key", 0.9), ("tick", 2.0), ("tick", 2.9), ("tick", 3.0)),
    (("key", 10.0), ("key", 10.5), ("send", 11.0), ("tick", 12.0), ("send", 13.0)),
    (("tick", 20.0), ("key", 21.0), ("tick", 22.5), ("key", 22.6), ("tick", 24.0), ("tick", 24.7)),
    (("key", 30.0), ("tick", 40.0), ("key", 41.0), ("key", 41.5), ("send", 41.6)),
)


def _hint_for(what: str, typing: bool, expected: bool | None) -> str:
    if what == "key":
        return FIRST_KEY if expected is True else MORE_KEYS
    if not typing:
        return QUIET
    if what == "send":
        return SENT
    return IDLE if expected is False else NOT_YET


def _typing_problem(typing_signal: Callable[..., Any]) -> Problem | None:
    if not callable(typing_signal):
        return f"expected a function, got {type(typing_signal).__name__}", TYPING_HINT
    for session in TYPING_SESSIONS:
        state = Debounce()
        done: list[str] = []
        for what, now in session:
            before = state
            state, expected = debounce(state, what, now, TYPING_IDLE, renew=math.inf)
            last_key = before.last_key if before.typing else None
            call = functools.partial(typing_signal, before.typing, last_key, what, now)
            got = call_within(call, LIMIT)
            done.append(f"{what}@{now:g}")
            if got is STILL_RUNNING:
                return (
                    f"after {', '.join(done)}: did not return within {LIMIT:g} s: "
                    "does a loop never end?",
                    TYPING_HINT,
                )
            if got is not expected:
                steps = ", ".join(done)
                return (
                    f"after {steps} (typing={before.typing}, last_key={last_key}): "
                    f"expected {expected}, got {got!r:.40}",
                    _hint_for(what, before.typing, expected),
                )
    return None


def check_typing_signal(typing_signal: Callable[..., Any]) -> Verdict:
    """Grade ``typing_signal(typing, last_key, what, now)``: True, False or None."""
    return grade("typing_signal", lambda: _typing_problem(typing_signal), TYPING_HINT, TYPING_NUDGE)
