"""The checks of lesson 10 pass right answers written in different ways, fail realistic
wrong ones with the hint for the mistake, say "not done yet" (with the nudge) to a
learner copy, and turn whatever the learner's code raises into a cross naming it.
``catch_up`` is graded on two live lab servers over a real redis-server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from rtlab.checks import scaling
from rtlab.checks.scaling import check_catch_up, check_deliveries
from tests.e2e.redis_server import RedisServer

# -- deliveries(where, members, room) --------------------------------------------------------


def good_deliveries(where, members, room):
    out: dict[str, list[str]] = {}
    for user in sorted(members.get(room, set())):
        out.setdefault(where[user], []).append(user)
    return out


def deliveries_by_process(where, members, room):
    """Right, written differently: one comprehension per process, empty ones left out."""
    in_room = members.get(room, set())
    processes = {where[user] for user in in_room}
    return {p: [u for u in where if where[u] == p and u in in_room] for p in processes}


@pytest.mark.parametrize("answer", [good_deliveries, deliveries_by_process])
def test_deliveries_right_answers_pass(answer):
    assert str(check_deliveries(answer)) == "✅ deliveries: correct"


def everyone_there(where, members, room):
    """Wrong: a process writes to all its users, in the room or not."""
    in_room = {where[u] for u in members.get(room, set())}
    return {p: sorted(u for u in where if where[u] == p) for p in in_room}


def with_empty(where, members, room):
    """Wrong: every process listed, also those with no member of the room."""
    out = {p: [] for p in where.values()}
    for user in members.get(room, set()):
        out[where[user]].append(user)
    return out


def sender_only(where, members, room):
    """Wrong: all the room's members on the process of the first one (no fan-out)."""
    users = sorted(members.get(room, set()))
    return {where[users[0]]: users} if users else {}


@pytest.mark.parametrize(
    ("answer", "words", "hint"),
    [
        (everyone_there, "expected", "are not in 'lobby': they get nothing"),
        (with_empty, "expected", "leave out a process that has no member of the room"),
        (sender_only, "expected {'A': ['alice'], 'B': ['bob', 'carol']}", scaling.DELIVERIES_HINT),
        (
            lambda where, members, room: {where[u]: [u] for u in members[room]},
            "expected {'A': ['alice'], 'B': ['bob', 'carol']}, got {",
            scaling.DELIVERIES_HINT,
        ),
        (
            lambda where, members, room: good_deliveries(where, members, room["id"]),
            "raised TypeError",
            "",
        ),
        (
            lambda where, members, room: list(members[room]),
            "expected a dict process -> list of users, got list",
            "",
        ),
        (
            lambda where, members, room: {where[u]: u for u in sorted(members[room])},
            "got str 'alice' for 'A'",
            scaling.DELIVERIES_HINT,
        ),
    ],
)
def test_deliveries_wrong_answers_fail(answer, words, hint):
    verdict = check_deliveries(answer)
    assert not verdict
    assert str(verdict).startswith("❌ deliveries: ")
    assert words in verdict.message
    assert hint in verdict.hint


def test_deliveries_not_done_yet_shows_the_nudge():
    def todo(where, members, room):
        raise NotImplementedError

    verdict = check_deliveries(todo)
    assert verdict.message == "deliveries: not done yet"
    assert verdict.hint.startswith(scaling.DELIVERIES_NUDGE)


# -- catch_up(client, room, screen), on two live servers over Redis ---------------------------


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.kill()


def replayed(client):
    return [event.data for event in client.events("receive-message")]


def catch_up_right(client, room, screen):
    last = screen[-1]["seq"] if screen else 0
    client.emit("join-room", {"roomId": room, "since": last}, ack=True)
    return screen + [m for m in replayed(client) if m["seq"] > last]


def catch_up_waiting(client, room, screen):
    """Right, written differently: waits for as many events as the ack says were replayed."""
    ack = client.emit(
        "join-room", {"roomId": room, "since": max(m["seq"] for m in screen)}, ack=True
    )
    screen.extend(client.wait_for("receive-message", ack["replayed"]))
    return screen


def catch_up_merging(client, room, screen):
    """Right, written differently: everything kept, merged by seq, once each."""
    client.emit("join-room", {"roomId": room, "since": screen[0]["seq"] - 1}, ack=True)
    by_seq = {m["seq"]: m for m in [*screen, *replayed(client)]}
    return [by_seq[seq] for seq in sorted(by_seq)]


@pytest.mark.parametrize("answer", [catch_up_right, catch_up_waiting, catch_up_merging])
def test_catch_up_right_answers_pass(answer, redis_url):
    assert str(check_catch_up(answer, redis_url)) == "✅ catch_up: correct"


def since_count(client, room, screen):
    client.emit("join-room", {"roomId": room, "since": len(screen)}, ack=True)
    return screen + replayed(client)


def with_history(client, room, screen):
    ack = client.emit("join-room", room, ack=True)
    return screen + ack["history"]


def no_since(client, room, screen):
    client.emit("join-room", room, ack=True)
    return screen + replayed(client)


def since_next(client, room, screen):
    client.emit("join-room", {"roomId": room, "since": screen[-1]["seq"] + 1}, ack=True)
    return screen + replayed(client)


def by_text(client, room, screen):
    client.emit("join-room", {"roomId": room, "since": 0}, ack=True)
    texts = {m["message"] for m in screen}
    for message in replayed(client):
        if message["message"] not in texts and message["seq"] > screen[0]["seq"]:
            screen.append(message)
            texts.add(message["message"])
    return screen


def only_missed(client, room, screen):
    client.emit("join-room", {"roomId": room, "since": screen[-1]["seq"]}, ack=True)
    return replayed(client)


def newest_first(client, room, screen):
    return list(reversed(catch_up_right(client, room, screen)))


def twice(client, room, screen):
    """Wrong: the right since, then the replayed messages added again from the history."""
    ack = client.emit("join-room", {"roomId": room, "since": screen[-1]["seq"]}, ack=True)
    return screen + replayed(client) + ack["history"][-1:]


@pytest.mark.parametrize(
    ("answer", "words", "hint"),
    [
        (since_count, "are [3, 4, 3, 4, 5, 6, 7], expected [3, 4, 5, 6, 7]", scaling.HOW_MANY),
        (with_history, "are [3, 4, 1, 2, 3, 4, 5, 6, 7]", scaling.FROM_BEFORE),
        (no_since, "are [3, 4], expected [3, 4, 5, 6, 7]", scaling.NO_REPLAY),
        (since_next, "are [3, 4, 6, 7]", scaling.OFF_BY_ONE),
        (by_text, "are [3, 4, 5, 7]", scaling.SAME_TEXT),
        (only_missed, "are [5, 6, 7]", scaling.WHOLE_SCREEN),
        (newest_first, "are [7, 6, 5, 4, 3]", scaling.IN_ORDER),
        (twice, "are [3, 4, 5, 6, 7, 7]", scaling.TWICE),
        (lambda client, room, screen: None, "did you forget `return`?", scaling.CATCH_UP_HINT),
        (lambda client, room, screen: len(screen), "got int", scaling.CATCH_UP_HINT),
        (
            lambda client, room, screen: [m["message"] for m in screen],
            "expected the screen as a list of receive-message data",
            scaling.CATCH_UP_HINT,
        ),
        (
            lambda client, room, screen: client.emit("join-room", {"room": room}, ack=True),
            "raised AckError",
            scaling.CATCH_UP_HINT,
        ),
        (
            lambda client, room, screen: screen[-1]["seq"] / 0,
            "raised ZeroDivisionError: division by zero",
            scaling.CATCH_UP_HINT,
        ),
        ("catch_up", "expected a function, got str", scaling.CATCH_UP_HINT),
    ],
)
def test_catch_up_wrong_answers_fail_with_the_hint_for_the_mistake(answer, words, hint, redis_url):
    verdict = check_catch_up(answer, redis_url)
    assert not verdict
    assert str(verdict).startswith("❌ catch_up: ")
    assert words in verdict.message
    assert verdict.hint == hint


def test_an_answer_that_waits_for_ever_fails_in_time(redis_url):
    def waits(client, room, screen):
        client.emit("join-room", room, ack=True)
        return screen + client.wait_for("receive-message", 3, timeout=30)

    start = time.monotonic()
    verdict = check_catch_up(waits, redis_url, timeout=1.0)
    assert time.monotonic() - start < 5
    assert "catch_up did not return within 1 s" in verdict.message
    # The servers are gone: the abandoned answer ends on its own, and the next run is clean.
    assert check_catch_up(catch_up_right, redis_url).passed


def test_catch_up_not_done_yet_shows_the_nudge(redis_url):
    def todo(client, room, screen):
        raise NotImplementedError  # your code here

    verdict = check_catch_up(todo, redis_url)
    assert verdict.message == "catch_up: not done yet"
    assert verdict.hint.startswith(scaling.CATCH_UP_NUDGE)


def test_without_redis_the_check_says_so_and_blames_no_code():
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    verdict = check_catch_up(catch_up_right, url)
    assert verdict.message == f"catch_up: no redis-server answers at {url}, so the check cannot run"
    assert verdict.hint == scaling.NO_REDIS


def test_deliveries_that_never_return_fail_in_time(monkeypatch):
    monkeypatch.setattr(scaling, "LIMIT", 0.3)
    done = threading.Event()  # set at the end, so that no loop spins on after the test

    def loops(where, members, room):  # type: ignore[no-untyped-def]
        users = list(members[room])
        while users and not done.is_set():  # users.pop() forgotten
            pass
        return {}

    try:
        verdict = check_deliveries(loops)
    finally:
        done.set()
    assert not verdict
    assert "no answer within 0.3 s: a loop never ends?" in verdict.message


def test_deliveries_indexing_members_for_an_empty_room_is_told_why():
    def indexes(where, members, room):  # type: ignore[no-untyped-def]
        out: dict[str, list[str]] = {}
        for user in members[room]:
            out.setdefault(where[user], []).append(user)
        return out

    verdict = check_deliveries(indexes)
    assert not verdict
    assert verdict.message == (
        "deliveries: for 'attic' with {'alice': 'A', 'bob': 'B', 'carol': 'B', 'dave': 'A', "
        "'erin': 'C'}: raised KeyError 'attic'"
    )
    assert verdict.hint == scaling.NO_ENTRY
