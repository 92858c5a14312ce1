"""The pure presence table, typing deadlines and the client's debounce rule (no sockets)."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtlab.core.presence import (
    Change,
    Debounce,
    Entry,
    Presence,
    Typing,
    debounce,
    iso,
)

USERS = st.sampled_from(["alice", "bob", "carol", "dave"])
ROOMS = st.sampled_from(["lobby", "dev"])
STEPS = st.lists(st.tuples(ROOMS, st.lists(USERS, max_size=6)), max_size=30)


def test_two_tabs_come_online_once_and_go_offline_with_the_last():
    table = Presence()
    assert table.update("lobby", ["alice"], 10.0) == [Change("lobby", "alice", True, 10.0)]
    assert table.update("lobby", ["alice", "alice"], 11.0) == []  # a second tab
    assert table.update("lobby", ["alice"], 12.0) == []  # one tab closed, one left
    assert table.last_seen("lobby", "alice") is None  # still online
    assert table.update("lobby", [], 13.0) == [Change("lobby", "alice", False, 13.0)]
    assert table.last_seen("lobby", "alice") == 13.0
    assert table.entries("lobby") == [Entry("alice", False, 13.0)]
    assert table.update("lobby", ["bob", "alice"], 14.0) == [
        Change("lobby", "alice", True, 14.0),
        Change("lobby", "bob", True, 14.0),
    ]
    assert table.last_seen("lobby", "alice") is None  # back: online again
    assert table.online("lobby") == ["alice", "bob"]
    assert table.online("dev") == [] and table.entries("dev") == []


def test_last_seen_is_bounded_per_room_and_in_rooms():
    table = Presence(max_seen=2, max_rooms=2)
    for t, user in enumerate(["a", "b", "c"]):
        table.update("r1", [user], float(t))
    table.update("r1", [], 3.0)
    # a, b and c all went offline; only the two seen last are remembered
    assert [e.user for e in table.entries("r1")] == ["b", "c"]
    table.update("r2", ["x"], 4.0)
    table.update("r2", [], 5.0)
    table.update("r3", ["y"], 6.0)
    table.update("r3", [], 7.0)
    assert table.entries("r1") == []  # the least recently changed room forgotten
    assert table.last_seen("r3", "y") == 7.0
    assert table.remembered == 2  # x in r2, y in r3
    with pytest.raises(ValueError):
        Presence(max_seen=0)
    with pytest.raises(ValueError):
        Presence(max_entries=0)


def test_last_seen_is_bounded_in_all_rooms_together():
    # Many rooms, each under its own bounds: the total decides, longest gone first.
    table = Presence(max_seen=10, max_rooms=100, max_entries=5)
    for r in range(4):
        table.update(f"r{r}", ["a", "b"], float(r))
        table.update(f"r{r}", [], float(r) + 0.5)
    assert table.remembered == 5
    assert table.entries("r0") == [] and [e.user for e in table.entries("r1")] == ["b"]
    for r in (2, 3):
        assert [e.user for e in table.entries(f"r{r}")] == ["a", "b"]
    # Online users are not remembered entries: they never count against the bound.
    table.update("r9", [f"u{i}" for i in range(50)], 10.0)
    assert table.remembered == 5 and len(table.online("r9")) == 50


@given(STEPS, st.integers(1, 6))
def test_changes_replayed_give_who_is_online(steps, max_entries):
    table = Presence(max_entries=max_entries)
    online: dict[str, set[str]] = {}
    left: dict[tuple[str, str], float] = {}
    for t, (room, users) in enumerate(steps):
        before = set(online.get(room, set()))
        changes = table.update(room, users, float(t))
        assert [c.user for c in changes] == sorted(before ^ set(users))
        for change in changes:
            assert change.online == (change.user not in before)
            if change.online:
                before.add(change.user)
                left.pop((room, change.user), None)
            else:
                before.discard(change.user)
                left[(room, change.user)] = float(t)
        online[room] = before
        assert table.online(room) == sorted(set(users))
        remembered = [e for r in ("lobby", "dev") for e in table.entries(r) if not e.online]
        assert table.remembered == len(remembered) <= max_entries
    for room in ("lobby", "dev"):
        entries = table.entries(room)
        assert [e.user for e in entries] == sorted(e.user for e in entries)
        for entry in entries:
            assert entry.online == (entry.user in online.get(room, set()))
            assert entry.last_seen == (None if entry.online else left[(room, entry.user)])


def test_iso_times_read_as_javascript_writes_them():
    assert iso(0.0) == "1970-01-01T00:00:00.000Z"
    assert iso(1.2345) == "1970-01-01T00:00:01.234Z"
    assert datetime.fromisoformat(iso(1_700_000_000.5)).timestamp() == 1_700_000_000.5


def test_typing_starts_renews_stops_and_expires():
    typing = Typing()
    assert typing.start("lobby", "bob", 0.0, 5.0)
    assert not typing.start("lobby", "bob", 3.0, 5.0)  # a renewal is no news
    assert typing.deadline("lobby", "bob") == 8.0
    assert not typing.expire("lobby", "bob", 7.9)
    assert typing.typing("lobby") == ["bob"]
    assert typing.expire("lobby", "bob", 8.0)
    assert typing.typing("lobby") == [] and len(typing) == 0
    assert not typing.expire("lobby", "bob", 9.0)
    typing.start("lobby", "bob", 10.0)
    assert typing.stop("lobby", "bob")
    assert not typing.stop("lobby", "bob")  # stopping twice tells nobody twice


def test_debounce_says_true_on_the_first_key_and_false_when_idle_or_sent():
    state, signal = debounce(Debounce(), "key", 0.0)
    assert signal is True
    state, signal = debounce(state, "key", 1.0)
    assert signal is None  # still typing: nothing new to say
    state, signal = debounce(state, "tick", 2.5)
    assert signal is None  # 1.5 s since the last key
    state, signal = debounce(state, "tick", 3.0)
    assert signal is False and state == Debounce()
    state, signal = debounce(state, "tick", 9.0)
    assert signal is None
    state, _ = debounce(state, "key", 10.0)
    state, signal = debounce(state, "send", 10.5)
    assert signal is False and not state.typing
    assert debounce(state, "send", 11.0)[1] is None
    with pytest.raises(ValueError):
        debounce(state, "paste", 12.0)  # type: ignore[arg-type]


def test_debounce_renews_a_long_burst_before_the_server_forgets():
    state, signal = debounce(Debounce(), "key", 0.0)
    sent = [signal]
    for t in [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]:
        state, signal = debounce(state, "key", t)
        sent.append(signal)
    assert sent == [True, None, None, None, None, None, True, None]


@given(st.lists(st.tuples(st.sampled_from(["key", "tick", "send"]), st.floats(0, 1.5))))
def test_debounce_alternates_and_never_says_false_twice(inputs):
    state, now, last = Debounce(), 0.0, False
    for what, step in inputs:
        now += step
        state, signal = debounce(state, what, now)
        if signal is False:
            assert last is True  # only an indicator that is on is turned off
        if signal is not None:
            last = signal
        assert state.typing == last
        if what == "key":  # a key always leaves the server told within the last 3 s
            assert state.typing and now - state.sent < 3.0 and state.last_key == now
