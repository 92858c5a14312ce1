"""Room membership (rtlab.core.rooms): units, and properties of room delivery.

Delivery is modelled as the event layer does it: a send to room R reaches
``Rooms.members(R)``, and only a member may send. A stateful hypothesis test runs
random join / leave / leave_all / send sequences and checks against a plain
reference model that no non-member ever receives a room message, that every
member receives each exactly once, and that each sender's messages arrive in order.
"""

from __future__ import annotations

import collections

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
)

from rtlab.core.rooms import Rooms


def test_a_new_rooms_is_empty():
    rooms: Rooms[str] = Rooms()
    assert len(rooms) == 0
    assert list(rooms) == []
    assert "lobby" not in rooms
    assert rooms.members("lobby") == frozenset()
    assert rooms.rooms_of("alice") == frozenset()
    assert not rooms.is_member("alice", "lobby")
    assert repr(rooms) == "Rooms({})"


def test_join_is_idempotent():
    rooms: Rooms[str] = Rooms()
    assert rooms.join("alice", "lobby") is True
    assert rooms.join("alice", "lobby") is False
    assert rooms.members("lobby") == {"alice"}
    assert rooms.rooms_of("alice") == {"lobby"}
    assert rooms.is_member("alice", "lobby")
    assert len(rooms) == 1


def test_leave_is_idempotent_and_leaving_a_room_never_joined_is_false():
    rooms: Rooms[str] = Rooms()
    rooms.join("alice", "lobby")
    rooms.join("bob", "lobby")
    assert rooms.leave("alice", "lobby") is True
    assert rooms.leave("alice", "lobby") is False
    assert rooms.leave("alice", "nowhere") is False
    assert rooms.leave("carol", "lobby") is False
    assert rooms.members("lobby") == {"bob"}
    assert rooms.rooms_of("alice") == frozenset()


def test_empty_rooms_vanish():
    rooms: Rooms[str] = Rooms()
    rooms.join("alice", "lobby")
    rooms.join("bob", "lobby")
    rooms.join("bob", "games")
    rooms.leave("alice", "lobby")
    assert "lobby" in rooms
    rooms.leave("bob", "lobby")
    assert "lobby" not in rooms
    assert list(rooms) == ["games"]
    assert len(rooms) == 1
    rooms.leave("bob", "games")
    assert len(rooms) == 0
    assert rooms._members == {}  # nothing left behind, either way round
    assert rooms._rooms == {}


def test_members_is_a_snapshot():
    rooms: Rooms[str] = Rooms()
    rooms.join("alice", "lobby")
    members = rooms.members("lobby")
    rooms.join("bob", "lobby")
    assert members == {"alice"}
    assert isinstance(members, frozenset)


def test_leave_all_returns_the_rooms_sorted_and_empties_them():
    rooms: Rooms[str] = Rooms()
    for room in ["zoo", "art", "music"]:
        rooms.join("alice", room)
    rooms.join("bob", "music")
    assert rooms.leave_all("alice") == ["art", "music", "zoo"]
    assert rooms.rooms_of("alice") == frozenset()
    assert list(rooms) == ["music"]
    assert rooms.members("music") == {"bob"}
    assert rooms.leave_all("alice") == []
    assert rooms.leave_all("nobody") == []


def test_rooms_of_and_iteration_and_repr():
    rooms: Rooms[str] = Rooms()
    rooms.join("alice", "b")
    rooms.join("alice", "a")
    rooms.join("bob", "a")
    assert rooms.rooms_of("alice") == {"a", "b"}
    assert rooms.rooms_of("bob") == {"a"}
    assert list(rooms) == ["a", "b"]
    assert repr(rooms) == "Rooms({'a': 2, 'b': 1})"


def test_members_can_be_any_hashable_object():
    class Member:
        pass

    one, two = Member(), Member()
    rooms: Rooms[Member] = Rooms()
    rooms.join(one, "r")
    rooms.join(two, "r")
    assert rooms.members("r") == {one, two}
    rooms.leave_all(one)
    assert rooms.members("r") == {two}


# -- delivery, against a reference model -------------------------------------------------

MEMBERS = ["alice", "bob", "carol", "dave"]
ROOMS = ["lobby", "games", "music"]


class RoomDelivery(RuleBasedStateMachine):
    """Random joins, leaves and sends; each send goes to ``Rooms.members(room)``."""

    def __init__(self) -> None:
        super().__init__()
        self.rooms: Rooms[str] = Rooms()
        self.model: dict[str, set[str]] = collections.defaultdict(set)  # the reference
        self.inbox: dict[str, list[tuple[str, int, str]]] = {m: [] for m in MEMBERS}
        self.expected: dict[str, list[tuple[str, int, str]]] = {m: [] for m in MEMBERS}
        self.next_seq = collections.Counter[str]()
        self.refused = 0

    sent = Bundle("sent")

    @rule(member=st.sampled_from(MEMBERS), room=st.sampled_from(ROOMS))
    def join(self, member: str, room: str) -> None:
        was = member in self.model[room]
        assert self.rooms.join(member, room) is (not was)
        self.model[room].add(member)

    @rule(member=st.sampled_from(MEMBERS), room=st.sampled_from(ROOMS))
    def leave(self, member: str, room: str) -> None:
        was = member in self.model[room]
        assert self.rooms.leave(member, room) is was
        self.model[room].discard(member)

    @rule(member=st.sampled_from(MEMBERS))
    def leave_all(self, member: str) -> None:  # a disconnect
        mine = sorted(room for room, members in self.model.items() if member in members)
        assert self.rooms.leave_all(member) == mine
        for room in mine:
            self.model[room].discard(member)

    @rule(target=sent, sender=st.sampled_from(MEMBERS), room=st.sampled_from(ROOMS))
    def send(self, sender: str, room: str) -> tuple[str, int, str]:
        seq = self.next_seq[sender]
        self.next_seq[sender] += 1
        message = (sender, seq, room)
        if not self.rooms.is_member(sender, room):  # the server refuses: not_member
            assert sender not in self.model[room]
            self.refused += 1
            return message
        for member in self.rooms.members(room):  # what Namespace.emit(to=room) writes to
            self.inbox[member].append(message)
        for member in sorted(self.model[room]):  # what should have happened
            self.expected[member].append(message)
        return message

    @rule(message=consumes(sent))
    def check_one_message(self, message: tuple[str, int, str]) -> None:
        """A message reached exactly the members of its room at send time, once each."""
        receivers = [m for m in MEMBERS if message in self.inbox[m]]
        assert receivers == [m for m in MEMBERS if message in self.expected[m]]
        for member in receivers:
            assert self.inbox[member].count(message) == 1

    @invariant()
    def inboxes_match_the_model(self) -> None:
        # No non-member received, every member received each exactly once, in order:
        # each inbox equals the reference inbox, message for message.
        assert self.inbox == self.expected
        for messages in self.inbox.values():
            assert len(set(messages)) == len(messages)
            per_sender: dict[str, list[int]] = collections.defaultdict(list)
            for sender, seq, _room in messages:
                per_sender[sender].append(seq)
            for seqs in per_sender.values():
                assert seqs == sorted(seqs)

    @invariant()
    def membership_matches_the_model(self) -> None:
        non_empty = {room for room, members in self.model.items() if members}
        assert list(self.rooms) == sorted(non_empty)  # empty rooms vanish
        assert len(self.rooms) == len(non_empty)
        for room in ROOMS:
            assert self.rooms.members(room) == self.model[room]
            assert (room in self.rooms) is (room in non_empty)
        for member in MEMBERS:
            mine = {room for room, members in self.model.items() if member in members}
            assert self.rooms.rooms_of(member) == mine
            for room in ROOMS:
                assert self.rooms.is_member(member, room) is (room in mine)


RoomDelivery.TestCase.settings = settings(max_examples=200, stateful_step_count=40)
TestRoomDelivery = RoomDelivery.TestCase
TestRoomDelivery.pytestmark = [pytest.mark.slow]


Op = tuple[str, str, str]  # (what, member, room)
ops = st.lists(
    st.tuples(
        st.sampled_from(["join", "leave", "send", "leave_all"]),
        st.sampled_from(MEMBERS),
        st.sampled_from(ROOMS),
    ),
    max_size=60,
)


def simulate(sequence: list[Op]) -> tuple[dict[str, list[tuple[str, int]]], list[Op]]:
    """Run ``sequence`` on Rooms; each member's inbox, and the sends as (sender, seq, room)."""
    rooms: Rooms[str] = Rooms()
    inbox: dict[str, list[tuple[str, int]]] = {m: [] for m in MEMBERS}
    sends = []
    for what, member, room in sequence:
        if what == "join":
            rooms.join(member, room)
        elif what == "leave":
            rooms.leave(member, room)
        elif what == "leave_all":
            rooms.leave_all(member)
        elif rooms.is_member(member, room):
            sends.append((member, len(sends), room))
            for receiver in rooms.members(room):
                inbox[receiver].append((member, len(sends) - 1))
    return inbox, sends


@pytest.mark.slow
@settings(max_examples=300)
@given(ops)
def test_sequences_deliver_to_exactly_the_members_at_send_time(sequence):
    inbox, _sends = simulate(sequence)
    # The reference: replay with plain sets, remembering who was in each room at each send.
    members: dict[str, set[str]] = collections.defaultdict(set)
    expected: dict[str, list[tuple[str, int]]] = {m: [] for m in MEMBERS}
    seq = 0
    for what, member, room in sequence:
        if what == "join":
            members[room].add(member)
        elif what == "leave":
            members[room].discard(member)
        elif what == "leave_all":
            for room_members in members.values():
                room_members.discard(member)
        elif member in members[room]:
            for receiver in members[room]:
                expected[receiver].append((member, seq))
            seq += 1
    for member in MEMBERS:
        got = inbox[member]
        assert sorted(got) == sorted(expected[member])  # nobody else's, none missing
        assert len(set(got)) == len(got)  # exactly once
        for sender in MEMBERS:  # in order per sender
            seqs = [s for who, s in got if who == sender]
            assert seqs == sorted(seqs)
        assert got == expected[member]  # and in the one global order of sends


@pytest.mark.parametrize(
    ("sequence", "receivers"),
    [
        ([("join", "alice", "lobby"), ("send", "alice", "lobby")], {"alice"}),
        ([("join", "alice", "lobby"), ("send", "bob", "lobby")], set()),  # not a member
        (
            [
                ("join", "alice", "lobby"),
                ("join", "bob", "lobby"),
                ("leave", "bob", "lobby"),
                ("send", "alice", "lobby"),
            ],
            {"alice"},
        ),
        (
            [
                ("join", "alice", "lobby"),
                ("join", "bob", "lobby"),
                ("join", "bob", "games"),
                ("send", "alice", "lobby"),
            ],
            {"alice", "bob"},
        ),
        (
            [("join", "alice", "lobby"), ("leave_all", "alice", "x"), ("send", "alice", "lobby")],
            set(),
        ),
    ],
)
def test_simulate_examples(sequence, receivers):
    inbox, _ = simulate(sequence)
    assert {m for m, got in inbox.items() if got} == receivers
