"""Checks for lesson 09, scaling: who delivers what across processes, and exactly once.

Exercise 1: ``deliveries(where, members, room)`` says, for a message sent to ``room``,
which users each server process writes ``receive-message`` to. With the Redis adapter
the message is published once, and every process delivers it to its own members.

Exercise 2: ``not_exactly_once(received, last_seq)`` finds the members whose
``receive-message`` numbers are not exactly 1, 2, ..., ``last_seq``: a message missing,
doubled, or out of order.

The cases are fixed, so a cell that ends with a check always shows the same line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rtlab.checks import Verdict, grade

__all__ = ["check_deliveries", "check_not_exactly_once"]

Where = dict[str, str]  # user -> the process (server) that user is connected to
Members = dict[str, set[str]]  # room -> users in it

DELIVERIES_HINT = (
    "each process writes to its own members of the room, and only to them: the users in "
    "`members[room]` whose `where` is that process. A process with no member of the room "
    "writes to nobody (leave it out), and users outside the room get nothing"
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


def _normal(answer: Any) -> dict[str, list[str]]:
    if not isinstance(answer, dict):
        raise TypeError(f"expected a dict of process -> users, got {type(answer).__name__}")
    return {str(k): sorted(v) for k, v in answer.items()}


def check_deliveries(deliveries: Callable[[Where, Members, str], dict[str, Any]]) -> Verdict:
    """Grade ``deliveries(where, members, room)`` on fixed layouts."""

    def attempt() -> str | tuple[str, str] | None:
        for where, members, room, expected in DELIVERY_CASES:
            got = _normal(deliveries(dict(where), {k: set(v) for k, v in members.items()}, room))
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

    return grade("deliveries", attempt, DELIVERIES_HINT)


EXACTLY_HINT = (
    "a member got every message exactly once when its list of seq numbers is exactly "
    "[1, 2, ..., last_seq]: no number missing, none twice, in order. Return the other "
    "members' names, sorted"
)

EXACTLY_CASES: tuple[tuple[dict[str, list[int]], int, list[str], str], ...] = (
    ({"alice": [1, 2, 3], "bob": [1, 2, 3]}, 3, [], "everyone got everything once"),
    ({"alice": [1, 2, 3], "bob": [1, 3]}, 3, ["bob"], "a missing message counts"),
    ({"alice": [1, 2, 2, 3], "bob": [1, 2, 3]}, 3, ["alice"], "a message twice counts"),
    ({"alice": [2, 1, 3], "bob": [1, 2, 3]}, 3, ["alice"], "out of order counts"),
    ({"carol": [], "dave": [1]}, 1, ["carol"], "nothing at all counts"),
    ({"erin": [1, 2], "fred": [1, 2, 3]}, 2, ["fred"], "a number past last_seq counts"),
    ({"zoe": [], "amy": [1], "max": [1, 1]}, 1, ["max", "zoe"], "sorted names"),
    ({"solo": []}, 0, [], "no message sent: an empty list is right"),
)


def check_not_exactly_once(not_exactly_once: Callable[[dict[str, list[int]], int], Any]) -> Verdict:
    """Grade ``not_exactly_once(received, last_seq)`` on fixed cases."""

    def attempt() -> str | tuple[str, str] | None:
        for received, last_seq, expected, why in EXACTLY_CASES:
            got = not_exactly_once({k: list(v) for k, v in received.items()}, last_seq)
            if not isinstance(got, list):
                return f"expected a list of names, got {type(got).__name__}"
            if got != expected:
                return (
                    f"for {received} with last_seq={last_seq}: expected {expected}, got {got}",
                    f"{why}. {EXACTLY_HINT}",
                )
        return None

    return grade("not_exactly_once", attempt, EXACTLY_HINT)
