"""The checks of lesson 09 pass right answers written in different ways, fail realistic
wrong ones with the hint for the mistake, say "not done yet" (with the nudge) to a learner
copy, and turn whatever the learner's code raises into a cross naming it. The roster
check runs on a live server of its own."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtlab.checks import chat
from rtlab.checks.chat import (
    check_presence_changes,
    check_roster,
    check_typing_signal,
    expected_changes,
)

# -- presence_changes(before, sessions) ------------------------------------------------------


def presence_right(before, sessions):  # type: ignore[no-untyped-def]
    now = set(sessions)
    return sorted([(u, True) for u in now - before] + [(u, False) for u in before - now])


def test_presence_right_answers_pass():
    assert str(check_presence_changes(presence_right)) == "✅ presence_changes: correct"

    def with_a_loop(before, sessions):  # type: ignore[no-untyped-def]
        changes = []
        for user in sorted(set(before) | set(sessions)):
            if (user in sessions) != (user in before):
                changes.append((user, user in sessions))
        return changes

    assert check_presence_changes(with_a_loop).passed


@given(
    st.sets(st.sampled_from("abcde")),
    st.lists(st.sampled_from("abcde"), max_size=8),
)
def test_the_reference_is_the_set_difference(before, sessions):
    assert expected_changes(before, sessions) == presence_right(before, sessions)


def counting_sessions(before, sessions):  # type: ignore[no-untyped-def]
    """Wrong: a user with two tabs counted twice."""
    changes = [(u, True) for u in sessions if u not in before]
    changes += [(u, False) for u in before if u not in sessions]
    return sorted(changes)


@pytest.mark.parametrize(
    ("answer", "words", "hint"),
    [
        (counting_sessions, "expected [('bob', True)]", chat.TABS),
        (lambda before, sessions: [(u, True) for u in sorted(set(sessions) - before)], "", ""),
        (
            lambda before, sessions: sorted((u, u in sessions) for u in before | set(sessions)),
            "expected [('bob', True)]",
            chat.NO_NEWS,
        ),
        (
            lambda before, sessions: (
                [(u, True) for u in sorted(set(sessions) - before)]
                + [(u, False) for u in sorted(before - set(sessions))]
            ),
            "expected [('alice', False), ('bob', True), ('carol', False), ('dave', True)]",
            chat.SORTED,
        ),
        (  # passed when the hash seed happened to order the set (PYTHONHASHSEED=5)
            lambda before, sessions: (
                {(u, True) for u in set(sessions) - before}
                | {(u, False) for u in before - set(sessions)}
            ),
            "returned a set, which has no order",
            chat.SORTED,
        ),
        (lambda before, sessions: None, "did you forget `return`?", chat.PRESENCE_HINT),
        (lambda before, sessions: 42, "expected a list of (user, online) pairs", ""),
        ("not a function", "expected a function, got str", chat.PRESENCE_HINT),
    ],
)
def test_presence_wrong_answers_fail_with_a_hint(answer, words, hint):
    verdict = check_presence_changes(answer)
    assert not verdict.passed
    assert str(verdict).startswith("❌ presence_changes: ")
    assert words in verdict.message
    if hint:
        assert verdict.hint == hint


def test_presence_not_done_yet_and_crashes():
    def learner_copy(before, sessions):  # type: ignore[no-untyped-def]
        raise NotImplementedError  # your code here

    verdict = check_presence_changes(learner_copy)
    assert not verdict.passed
    assert verdict.message == "presence_changes: not done yet"
    assert verdict.hint.startswith(chat.PRESENCE_NUDGE)
    verdict = check_presence_changes(lambda before, sessions: before - sessions)
    assert "raised TypeError" in verdict.message
    assert verdict.hint == chat.PRESENCE_HINT


def test_the_check_does_not_mind_an_answer_that_changes_its_arguments():
    def destructive(before, sessions):  # type: ignore[no-untyped-def]
        result = presence_right(before, sessions)
        before.clear()
        sessions.clear()
        return result

    assert check_presence_changes(destructive).passed


# -- typing_signal(typing, last_key, what, now) ---------------------------------------------


def typing_right(typing, last_key, what, now):  # type: ignore[no-untyped-def]
    if what == "key":
        return None if typing else True
    if what == "tick":
        return False if typing and now - last_key >= 2.0 else None
    return False if typing else None


def test_typing_right_answers_pass():
    assert str(check_typing_signal(typing_right)) == "✅ typing_signal: correct"

    def as_a_table(typing, last_key, what, now):  # type: ignore[no-untyped-def]
        idle = typing and last_key is not None and now - last_key >= 2.0
        return {
            ("key", False): True,
            ("tick", True): False if idle else None,
            ("send", True): False,
        }.get((what, typing))

    assert check_typing_signal(as_a_table).passed


@pytest.mark.parametrize(
    ("change", "hint"),
    [
        # a start on every key: floods the room
        (lambda t, k, w, n: True if w == "key" else typing_right(t, k, w, n), chat.MORE_KEYS),
        # never says stop when idle
        (lambda t, k, w, n: None if w == "tick" else typing_right(t, k, w, n), chat.IDLE),
        # stops at the first tick, idle or not
        (
            lambda t, k, w, n: (False if t else None) if w == "tick" else typing_right(t, k, w, n),
            chat.NOT_YET,
        ),
        # sending does not end typing
        (lambda t, k, w, n: None if w == "send" else typing_right(t, k, w, n), chat.SENT),
        # says False again when already stopped
        (
            lambda t, k, w, n: (
                False if w in ("tick", "send") and not t else typing_right(t, k, w, n)
            ),
            chat.QUIET,
        ),
        # counts idle from the wrong side of 2 s
        (
            lambda t, k, w, n: (
                (False if t and n - k > 2.0 else None) if w == "tick" else typing_right(t, k, w, n)
            ),
            chat.IDLE,
        ),
        # never says it started
        (lambda t, k, w, n: None if w == "key" else typing_right(t, k, w, n), chat.FIRST_KEY),
    ],
)
def test_typing_wrong_answers_fail_with_the_right_hint(change, hint):
    verdict = check_typing_signal(change)
    assert not verdict.passed, verdict
    assert verdict.message.startswith("typing_signal: after ")
    assert "expected" in verdict.message
    assert verdict.hint == hint


def test_typing_not_done_yet_and_not_a_function():
    def learner_copy(typing, last_key, what, now):  # type: ignore[no-untyped-def]
        raise NotImplementedError  # your code here

    verdict = check_typing_signal(learner_copy)
    assert verdict.message == "typing_signal: not done yet"
    assert verdict.hint.startswith(chat.TYPING_NUDGE)
    assert "expected a function" in check_typing_signal(None).message
    assert "raised" in check_typing_signal(lambda typing: True).message


# -- roster(joined, events), on a live server -------------------------------------------------


def roster_right(joined, events):  # type: ignore[no-untyped-def]
    people = {p["userId"]: None if p["online"] else p["lastSeen"] for p in joined}
    for event in events:
        people[event["userId"]] = None if event["online"] else event["lastSeen"]
    return people


def roster_merged(joined, events):  # type: ignore[no-untyped-def]
    """Right, written differently: the last word per user wins, then online means None."""
    last = {p["userId"]: p for p in [*joined, *events]}
    return {user: (p["lastSeen"], None)[p["online"]] for user, p in last.items()}


def roster_mutating(joined, events):  # type: ignore[no-untyped-def]
    """Right, and it empties its arguments as it goes."""
    people = {}
    while joined:
        entry = joined.pop(0)
        people[entry["userId"]] = entry["lastSeen"]
    for event in events:
        people[event["userId"]] = event["lastSeen"] if not event["online"] else None
    events.clear()
    return people


@pytest.mark.parametrize("answer", [roster_right, roster_merged, roster_mutating])
def test_roster_right_answers_pass(answer):
    assert str(check_roster(answer)) == "✅ roster: correct"


def copies_last_seen(joined, events):  # type: ignore[no-untyped-def]
    """Wrong: takes lastSeen as it comes, also from online: true events."""
    return {p["userId"]: p["lastSeen"] for p in [*joined, *events]}


def forgets_who_left(joined, events):  # type: ignore[no-untyped-def]
    people = roster_right(joined, [])
    for event in events:
        if event["online"]:
            people[event["userId"]] = None
        else:
            people.pop(event["userId"], None)
    return people


def newest_first(joined, events):  # type: ignore[no-untyped-def]
    return roster_right(joined, list(reversed(events)))


@pytest.mark.parametrize(
    ("answer", "words", "hint"),
    [
        (copies_last_seen, "bob: expected None, got '20", chat.ONLINE_NO_TIME),
        (forgets_who_left, "alice: expected '20", chat.KEEP_LEFT),
        (
            lambda joined, events: roster_right([], events),
            "erin: expected None, got 'nothing'",
            chat.FROM_ACK,
        ),
        (
            lambda joined, events: roster_right(joined, []),
            "bob: expected None, got 'nothing'",
            chat.APPLY_EVENTS,
        ),
        (newest_first, "dave: expected '20", chat.APPLY_EVENTS),
        (
            lambda joined, events: {e["userId"]: None for e in [*joined, *events]},
            "alice: expected '20",
            chat.KEEP_LEFT,
        ),
        (lambda joined, events: None, "did you forget `return`?", chat.ROSTER_HINT),
        (
            lambda joined, events: list(events),
            "expected a dict user -> lastSeen or None, got list",
            chat.ROSTER_HINT,
        ),
        (
            lambda joined, events: {p["user"]: None for p in joined},
            "raised KeyError: 'user'",
            chat.ROSTER_HINT,
        ),
        ({}, "expected a function, got dict", chat.ROSTER_HINT),
    ],
)
def test_roster_wrong_answers_fail_with_the_hint_for_the_mistake(answer, words, hint):
    verdict = check_roster(answer)
    assert not verdict.passed
    assert str(verdict).startswith("❌ roster: ")
    assert words in verdict.message
    assert verdict.hint == hint


def test_roster_not_done_yet_shows_the_nudge():
    def learner_copy(joined, events):  # type: ignore[no-untyped-def]
        raise NotImplementedError  # your code here

    verdict = check_roster(learner_copy)
    assert verdict.message == "roster: not done yet"
    assert verdict.hint.startswith(chat.ROSTER_NUDGE)


def test_a_roster_that_never_returns_fails_in_time():
    done = threading.Event()  # set at the end: a loop left spinning would hold the GIL for
    # the rest of the run and slow every timed check after it

    def loops(joined, events):  # type: ignore[no-untyped-def]
        people = {}
        while joined and not done.is_set():  # joined.pop(0) forgotten
            people[joined[0]["userId"]] = None
        return people

    try:
        verdict = check_roster(loops, timeout=0.5)
    finally:
        done.set()
    assert verdict.message == "roster: roster did not return within 0.5 s: does a loop never end?"
    assert verdict.hint == chat.ROSTER_HINT


def test_presence_and_typing_answers_that_never_return_fail_in_time(monkeypatch):
    monkeypatch.setattr(chat, "LIMIT", 0.3)
    done = threading.Event()  # set at the end, so that no loop spins on after the test

    def presence_loops(before, sessions):  # type: ignore[no-untyped-def]
        while sessions and not done.is_set():  # sessions.pop() forgotten
            pass
        return []

    def typing_loops(typing, last_key, what, now):  # type: ignore[no-untyped-def]
        while what == "tick" and not done.is_set():  # waits for the key that never comes
            pass
        return True if what == "key" and not typing else None

    try:
        presence = check_presence_changes(presence_loops)
        typing = check_typing_signal(typing_loops)
    finally:
        done.set()
    assert "did not return within 0.3 s: does a loop never end?" in presence.message
    assert "did not return within 0.3 s: does a loop never end?" in typing.message
    assert not presence and not typing
