"""The checks of lesson 03 pass right answers written in different ways, fail realistic
wrong ones with the message and hint the learner would see, and nudge a learner copy."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import defaultdict
from typing import Any

import pytest

from rtlab.checks import rooms
from rtlab.checks.rooms import CASES, check_recipients, check_shout
from rtlab.core.envelope import EnvelopeError, ErrorCode


@pytest.fixture(autouse=True)
def nothing_printed_and_no_server_left(capfd):
    yield
    for thread in threading.enumerate():  # a server a stuck handler held stops in the background
        if thread.name == rooms.STOPPER:
            thread.join(10)
    assert capfd.readouterr() == ("", "")
    assert not [t for t in threading.enumerate() if t.name == "rtlab-server" and t.is_alive()]


# -- recipients(rooms, online, sender, event, data) -----------------------------------------


def recipients_right(rooms, online, sender, event, data):  # type: ignore[no-untyped-def]
    if event == "broadcast":
        return {user: "broadcast-message" for user in online}
    room = data["roomId"] if event == "send-message" else data
    members = rooms.get(room, set())
    if event == "send-message":
        return {user: "receive-message" for user in members} if sender in members else {}
    if event == "join-room" and sender not in members:
        return {user: "user-joined" for user in members}
    if event == "leave-room" and sender in members:
        return {user: "user-left" for user in members - {sender}}
    return {}


def recipients_simulated(rooms, online, sender, event, data):  # type: ignore[no-untyped-def]
    """Changes the rooms it is given, as a simulation would: the check must not mind."""
    if event == "broadcast":
        return dict.fromkeys(online, "broadcast-message")
    if event == "send-message":
        members = rooms.get(data["roomId"], set())
        return dict.fromkeys(members, "receive-message") if sender in members else {}
    members = rooms.setdefault(data, set())
    if event == "join-room":
        told = {} if sender in members else dict.fromkeys(members, "user-joined")
        members.add(sender)
        return told
    told = dict.fromkeys(members - {sender}, "user-left") if sender in members else {}
    members.discard(sender)
    return told


def recipients_by_table(rooms, online, sender, event, data):  # type: ignore[no-untyped-def]
    """A table of rules and a defaultdict, reading (and emptying) the data it is given."""
    names = {
        "send-message": "receive-message",
        "join-room": "user-joined",
        "leave-room": "user-left",
        "broadcast": "broadcast-message",
    }
    everyone = defaultdict(set, rooms)
    room = data.pop("roomId") if isinstance(data, dict) else data
    if event == "broadcast":
        told = set(online)
    elif event == "send-message":
        told = everyone[room] if sender in everyone[room] else set()
    elif (sender in everyone[room]) == (event == "leave-room"):  # a real change
        told = everyone[room] - {sender}
    else:
        told = set()
    result: defaultdict[str, str] = defaultdict(str)
    for user in told:
        result[user] = names[event]
    return result


@pytest.mark.parametrize(
    "recipients", [recipients_right, recipients_simulated, recipients_by_table]
)
def test_recipients_right_answers_pass(recipients) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):  # a second run sees the same cases, whatever the first one changed
        verdict = check_recipients(recipients)
        assert verdict.passed, verdict
        assert str(verdict) == "✅ recipients: correct"


def test_the_cases_cover_every_rule() -> None:
    events = {case.event for case in CASES}
    assert events == {"send-message", "join-room", "leave-room", "broadcast"}
    assert any(case.expected == {} for case in CASES if case.event == "send-message")
    assert any(case.expected == {} for case in CASES if case.event == "join-room")
    assert any(case.expected == {} for case in CASES if case.event == "leave-room")
    # Someone online in no room, so that the union of the rooms is not enough for broadcast.
    assert any(
        case.online - set().union(*case.rooms.values())
        for case in CASES
        if case.event == "broadcast"
    )
    # A sender in two rooms, so that "everyone in the sender's rooms" is not enough.
    assert any(
        sum(case.sender in members for members in case.rooms.values()) > 1
        for case in CASES
        if case.event == "send-message"
    )
    for case in CASES:
        rooms_copy = {room: set(members) for room, members in case.rooms.items()}
        assert recipients_right(rooms_copy, case.online, case.sender, case.event, case.data) == (
            case.expected
        )


def with_change(change):  # type: ignore[no-untyped-def]
    """The right answer, then ``change(result, sender, event, data, rooms, online)`` on it."""

    def recipients(rooms_, online, sender, event, data):  # type: ignore[no-untyped-def]
        result = recipients_right(rooms_, online, sender, event, data)
        return change(result, sender, event, data, rooms_, online)

    return recipients


def without_sender(result, sender, event, data, rooms_, online):  # type: ignore[no-untyped-def]
    if event == "send-message":
        return {user: name for user, name in result.items() if user != sender}
    return result


def joiner_told(result, sender, event, data, rooms_, online):  # type: ignore[no-untyped-def]
    if event == "join-room" and result:
        result[sender] = "user-joined"
    return result


def outsiders_too(result, sender, event, data, rooms_, online):  # type: ignore[no-untyped-def]
    if event == "send-message" and not result:
        members = rooms_.get(data["roomId"], set())
        return {user: "receive-message" for user in members | {sender}}
    return result


def all_the_senders_rooms(result, sender, event, data, rooms_, online):  # type: ignore[no-untyped-def]
    if event == "send-message" and result:
        mine = [members for members in rooms_.values() if sender in members]
        return {user: "receive-message" for user in set().union(*mine)}
    return result


def always_joined(result, sender, event, data, rooms_, online):  # type: ignore[no-untyped-def]
    if event == "join-room":
        return {user: "user-joined" for user in rooms_.get(data, set()) - {sender}}
    return result


def joined_to_everyone(result, sender, event, data, rooms_, online):  # type: ignore[no-untyped-def]
    if event == "join-room" and sender not in rooms_.get(data, set()):
        return {user: "user-joined" for user in online - {sender}}
    return result


def leaver_told(result, sender, event, data, rooms_, online):  # type: ignore[no-untyped-def]
    if event == "leave-room" and result:
        result[sender] = "user-left"
    return result


def always_left(result, sender, event, data, rooms_, online):  # type: ignore[no-untyped-def]
    if event == "leave-room":
        return {user: "user-left" for user in rooms_.get(data, set()) - {sender}}
    return result


def broadcast_to_rooms(result, sender, event, data, rooms_, online):  # type: ignore[no-untyped-def]
    if event == "broadcast":
        return {user: "broadcast-message" for user in set().union(*rooms_.values())}
    return result


def broadcast_to_others(result, sender, event, data, rooms_, online):  # type: ignore[no-untyped-def]
    if event == "broadcast":
        return {user: "broadcast-message" for user in online - {sender}}
    return result


def wrong_event_name(result, sender, event, data, rooms_, online):  # type: ignore[no-untyped-def]
    return {user: name.replace("receive-message", "send-message") for user, name in result.items()}


LOBBY_KITCHEN = "in rooms {'kitchen': {'bob', 'carol'}, 'lobby': {'alice', 'bob'}}"

WRONG_RECIPIENTS = [
    (
        without_sender,
        f"alice sends send-message (lobby) {LOBBY_KITCHEN}: you said {{'bob': 'receive-message'}}, "
        "the server sends {'alice': 'receive-message', 'bob': 'receive-message'}",
        rooms.SENDER_TOO,
    ),
    (
        all_the_senders_rooms,
        f"bob sends send-message (kitchen) {LOBBY_KITCHEN}: you said {{'alice': "
        "'receive-message', 'bob': 'receive-message', 'carol': 'receive-message'}, "
        "the server sends {'bob': 'receive-message', 'carol': 'receive-message'}",
        rooms.ONE_ROOM,
    ),
    (
        outsiders_too,
        f"dave sends send-message (lobby) {LOBBY_KITCHEN}: you said {{'alice': "
        "'receive-message', 'bob': 'receive-message', 'dave': 'receive-message'}, "
        "the server sends {}",
        rooms.NOT_MEMBER,
    ),
    (
        joiner_told,
        f"carol sends join-room (lobby) {LOBBY_KITCHEN}: you said {{'alice': 'user-joined', "
        "'bob': 'user-joined', 'carol': 'user-joined'}, the server sends "
        "{'alice': 'user-joined', 'bob': 'user-joined'}",
        rooms.OTHERS_JOINED,
    ),
    (
        joined_to_everyone,
        f"carol sends join-room (lobby) {LOBBY_KITCHEN}: you said {{'alice': 'user-joined', "
        "'bob': 'user-joined', 'dave': 'user-joined'}, the server sends "
        "{'alice': 'user-joined', 'bob': 'user-joined'}",
        rooms.OTHERS_JOINED,
    ),
    (
        always_joined,
        f"alice sends join-room (lobby) {LOBBY_KITCHEN}: you said {{'bob': 'user-joined'}}, "
        "the server sends {}",
        rooms.NOTHING_NEW,
    ),
    (
        leaver_told,
        f"bob sends leave-room (kitchen) {LOBBY_KITCHEN}: you said {{'bob': 'user-left', "
        "'carol': 'user-left'}, the server sends {'carol': 'user-left'}",
        rooms.OTHERS_LEFT,
    ),
    (
        always_left,
        f"dave sends leave-room (lobby) {LOBBY_KITCHEN}: you said {{'alice': 'user-left', "
        "'bob': 'user-left'}, the server sends {}",
        rooms.NOTHING_NEW,
    ),
    (
        broadcast_to_rooms,
        f"dave sends broadcast (class starts in 5 minutes) {LOBBY_KITCHEN}, online "
        "{'alice', 'bob', 'carol', 'dave'}: you said {'alice': 'broadcast-message', "
        "'bob': 'broadcast-message', 'carol': 'broadcast-message'}, the server sends "
        "{'alice': 'broadcast-message', 'bob': 'broadcast-message', "
        "'carol': 'broadcast-message', 'dave': 'broadcast-message'}",
        rooms.EVERYONE,
    ),
    (
        broadcast_to_others,
        f"dave sends broadcast (class starts in 5 minutes) {LOBBY_KITCHEN}, online "
        "{'alice', 'bob', 'carol', 'dave'}: you said {'alice': 'broadcast-message', "
        "'bob': 'broadcast-message', 'carol': 'broadcast-message'}, the server sends "
        "{'alice': 'broadcast-message', 'bob': 'broadcast-message', "
        "'carol': 'broadcast-message', 'dave': 'broadcast-message'}",
        rooms.EVERYONE,
    ),
    (
        wrong_event_name,
        f"alice sends send-message (lobby) {LOBBY_KITCHEN}: you said {{'alice': "
        "'send-message', 'bob': 'send-message'}, the server sends "
        "{'alice': 'receive-message', 'bob': 'receive-message'}",
        rooms.SENDER_TOO,
    ),
]


@pytest.mark.parametrize(
    ("change", "message", "hint"), WRONG_RECIPIENTS, ids=[w[0].__name__ for w in WRONG_RECIPIENTS]
)
def test_recipients_wrong_answers_fail_with_their_hint(change, message, hint) -> None:  # type: ignore[no-untyped-def]
    verdict = check_recipients(with_change(change))
    assert not verdict.passed
    assert verdict.message == f"recipients: {message}"
    assert verdict.hint == hint


def test_recipients_a_room_nobody_is_in_is_explained() -> None:
    def recipients(rooms_, online, sender, event, data):  # type: ignore[no-untyped-def]
        if event == "broadcast":
            return dict.fromkeys(online, "broadcast-message")
        room = data["roomId"] if event == "send-message" else data
        members = rooms_[room]  # KeyError for a room nobody is in
        return recipients_right({room: members}, online, sender, event, data)

    verdict = check_recipients(recipients)
    assert verdict.message == (
        f"recipients: dave sends join-room (attic) {LOBBY_KITCHEN}: raised KeyError: 'attic'"
    )
    assert verdict.hint == rooms.NO_SUCH_ROOM


def test_recipients_every_data_read_as_a_dict_is_explained() -> None:
    def recipients(rooms_, online, sender, event, data):  # type: ignore[no-untyped-def]
        members = rooms_.get(data["roomId"], set())
        return dict.fromkeys(members, "receive-message") if sender in members else {}

    verdict = check_recipients(recipients)
    assert verdict.message.startswith(
        f"recipients: carol sends join-room (lobby) {LOBBY_KITCHEN}: raised TypeError: string "
    )
    assert verdict.hint == rooms.DATA_SHAPES


def test_recipients_endless_loop_is_a_cross(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(rooms, "LEARNER_TIMEOUT", 0.2)

    def recipients(rooms_, online, sender, event, data):  # type: ignore[no-untyped-def]
        time.sleep(0.5)  # stands for a loop that never ends (which would keep a core busy)

    verdict = check_recipients(recipients)
    assert verdict.message == (
        f"recipients: alice sends send-message (lobby) {LOBBY_KITCHEN}: did not return "
        "within 0.2 s: does a loop never end?"
    )
    assert verdict.hint == rooms.RECIPIENTS_HINT


def test_recipients_wrong_types_are_explained() -> None:
    verdict = check_recipients(lambda *args: None)
    assert "returned None; did you forget `return`?" in verdict.message
    assert verdict.hint == rooms.RECIPIENTS_HINT
    verdict = check_recipients(lambda rooms_, online, sender, event, data: set(online))
    assert "returned a set; return a dict {user: event received}" in verdict.message
    verdict = check_recipients("recipients")  # type: ignore[arg-type]
    assert verdict.message == "recipients: expected a function, got str"


def test_recipients_crash_is_reported_even_sys_exit() -> None:
    def recipients(rooms_, online, sender, event, data):  # type: ignore[no-untyped-def]
        sys.exit("bye")

    verdict = check_recipients(recipients)
    assert not verdict.passed
    assert verdict.message.endswith(": raised SystemExit: bye")
    assert verdict.hint == rooms.RECIPIENTS_HINT


def test_recipients_not_done_yet_gets_the_nudge_then_hint_gives_the_recipe() -> None:
    def recipients(rooms_, online, sender, event, data):  # type: ignore[no-untyped-def]
        raise NotImplementedError  # your code here

    verdict = check_recipients(recipients)
    assert not verdict.passed
    assert verdict.message == "recipients: not done yet"
    assert verdict.hint == f"{rooms.RECIPIENTS_NUDGE} (rtlab.hint() shows the recipe)"
    from rtlab.checks import hint

    assert hint().recipe == rooms.RECIPIENTS_HINT


# -- register_shout(ns) -------------------------------------------------------------------


def shout_handler(*, to_room=True, skip=True, upper=True, member_check=True, ack=True):  # type: ignore[no-untyped-def]
    """A register_shout with one thing (or more) done wrong."""

    def register_shout(ns):  # type: ignore[no-untyped-def]
        @ns.on("shout")
        def shout(session, data):  # type: ignore[no-untyped-def]
            room = data["roomId"]
            if member_check and not ns.rooms.is_member(session, room):
                raise EnvelopeError(ErrorCode.NOT_MEMBER, f"join {room!r} first")
            text = data["message"].upper() if upper else data["message"]
            loud = {"userId": session.user, "roomId": room, "message": text}
            n = ns.emit(
                "shouted", loud, to=room if to_room else None, skip=session if skip else None
            )
            return {"delivered": n} if ack else None

    return register_shout


def register_async(ns):  # type: ignore[no-untyped-def]
    @ns.on("shout")
    async def shout(session, data):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        room = data["roomId"]
        if not ns.has_user(session.user, room):
            raise EnvelopeError(ErrorCode.NOT_MEMBER, "no")
        loud = {"userId": session.user, "roomId": room, "message": data["message"].upper()}
        return {"delivered": ns.emit("shouted", loud, to=room, skip=session)}


def register_by_hand(ns):  # type: ignore[no-untyped-def]
    """Counts the others itself, a str error code, registered without the decorator."""

    def shout(session, data):  # type: ignore[no-untyped-def]
        room, text = data["roomId"], data["message"]
        if session not in ns.rooms.members(room):
            raise EnvelopeError("not_member", "members only")  # type: ignore[arg-type]
        others = [s for s in ns.rooms.members(room) if s is not session]
        ns.emit(
            "shouted",
            {"roomId": room, "userId": session.user, "message": text.upper()},
            to=room,
            skip=session,
        )
        return {"delivered": len(others)}

    ns.handlers["shout"] = shout


@pytest.mark.parametrize("register", [shout_handler(), register_async, register_by_hand])
def test_shout_right_answers_pass(register) -> None:  # type: ignore[no-untyped-def]
    verdict = check_shout(register)
    assert verdict.passed, verdict
    assert str(verdict) == "✅ shout: correct"


def register_twice(ns):  # type: ignore[no-untyped-def]
    @ns.on("shout")
    def shout(session, data):  # type: ignore[no-untyped-def]
        room = data["roomId"]
        if not ns.rooms.is_member(session, room):
            raise EnvelopeError(ErrorCode.NOT_MEMBER, "no")
        loud = {"userId": session.user, "roomId": room, "message": data["message"].upper()}
        ns.emit("shouted", loud, to=room, skip=session)
        return {"delivered": ns.emit("shouted", loud, to=room, skip=session)}


def register_hard_coded_two(ns):  # type: ignore[no-untyped-def]
    @ns.on("shout")
    def shout(session, data):  # type: ignore[no-untyped-def]
        room = data["roomId"]
        if not ns.rooms.is_member(session, room):
            raise EnvelopeError(ErrorCode.NOT_MEMBER, "no")
        loud = {"userId": session.user, "roomId": room, "message": data["message"].upper()}
        ns.emit("shouted", loud, to=room, skip=session)
        return {"delivered": 2}


def register_spreading_data(ns):  # type: ignore[no-untyped-def]
    """Copies roomId and message by spreading the data, and whatever else the client sent."""

    @ns.on("shout")
    def shout(session, data):  # type: ignore[no-untyped-def]
        room = data["roomId"]
        if not ns.rooms.is_member(session, room):
            raise EnvelopeError(ErrorCode.NOT_MEMBER, "no")
        loud = {"userId": session.user, **data, "message": data["message"].upper()}
        return {"delivered": ns.emit("shouted", loud, to=room, skip=session)}


def register_counting_people(ns):  # type: ignore[no-untyped-def]
    """Counts the people who heard it, not the connections it was written to."""

    @ns.on("shout")
    def shout(session, data):  # type: ignore[no-untyped-def]
        room = data["roomId"]
        if not ns.rooms.is_member(session, room):
            raise EnvelopeError(ErrorCode.NOT_MEMBER, "no")
        loud = {"userId": session.user, "roomId": room, "message": data["message"].upper()}
        ns.emit("shouted", loud, to=room, skip=session)
        return {"delivered": len(set(ns.users(room)) - {session.user})}


def register_skip_alice(ns):  # type: ignore[no-untyped-def]
    """Leaves out the first sender it saw, by name, instead of the session shouting."""

    @ns.on("shout")
    def shout(session, data):  # type: ignore[no-untyped-def]
        room = data["roomId"]
        if not ns.rooms.is_member(session, room):
            raise EnvelopeError(ErrorCode.NOT_MEMBER, "no")
        loud = {"userId": session.user, "roomId": room, "message": data["message"].upper()}
        alice = next(s for s in ns.rooms.members(room) if s.user == "alice")
        return {"delivered": ns.emit("shouted", loud, to=room, skip=alice)}


def register_refusing_with_value_error(ns):  # type: ignore[no-untyped-def]
    @ns.on("shout")
    def shout(session, data):  # type: ignore[no-untyped-def]
        room = data["roomId"]
        if not ns.rooms.is_member(session, room):
            raise ValueError("not a member")
        loud = {"userId": session.user, "roomId": room, "message": data["message"].upper()}
        return {"delivered": ns.emit("shouted", loud, to=room, skip=session)}


def register_wrong_code(ns):  # type: ignore[no-untyped-def]
    shout_handler()(ns)
    right = ns.handlers["shout"]

    def shout(session, data):  # type: ignore[no-untyped-def]
        try:
            return right(session, data)
        except EnvelopeError as error:
            raise EnvelopeError(ErrorCode.INVALID, error.message) from None

    ns.on("shout")(shout)


def register_emitting_first(ns):  # type: ignore[no-untyped-def]
    @ns.on("shout")
    def shout(session, data):  # type: ignore[no-untyped-def]
        room = data["roomId"]
        loud = {"userId": session.user, "roomId": room, "message": data["message"].upper()}
        delivered = ns.emit("shouted", loud, to=room, skip=session)
        if not ns.rooms.is_member(session, room):
            raise EnvelopeError(ErrorCode.NOT_MEMBER, "too late")
        return {"delivered": delivered}


def register_silent(ns):  # type: ignore[no-untyped-def]
    @ns.on("shout")
    def shout(session, data):  # type: ignore[no-untyped-def]
        return {"delivered": 0}


def register_buggy(ns):  # type: ignore[no-untyped-def]
    @ns.on("shout")
    def shout(session, data):  # type: ignore[no-untyped-def]
        return {"delivered": ns.emit("shouted", data["text"], to=data["roomId"])}


def register_buggy_async(ns):  # type: ignore[no-untyped-def]
    @ns.on("shout")
    async def shout(session, data):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        return {"delivered": ns.emit("shouted", data["message"].upper, to=data["roomId"])}


def register_exiting(ns):  # type: ignore[no-untyped-def]
    @ns.on("shout")
    def shout(session, data):  # type: ignore[no-untyped-def]
        sys.exit(1)


def register_set_in_ack(ns):  # type: ignore[no-untyped-def]
    @ns.on("shout")
    def shout(session, data):  # type: ignore[no-untyped-def]
        room = data["roomId"]
        loud = {"userId": session.user, "roomId": room, "message": data["message"].upper()}
        return {"delivered": {ns.emit("shouted", loud, to=room, skip=session)}}


def register_waiting_forever(ns):  # type: ignore[no-untyped-def]
    @ns.on("shout")
    async def shout(session, data):  # type: ignore[no-untyped-def]
        await asyncio.Event().wait()


def register_sleeping(ns):  # type: ignore[no-untyped-def]
    @ns.on("shout")
    def shout(session, data):  # type: ignore[no-untyped-def]
        time.sleep(2.3)  # blocks the server's loop: everyone waits


def register_on_another_namespace(ns):  # type: ignore[no-untyped-def]
    other = ns.hub.namespace("/chat")
    shout_handler()(other)


def register_the_wrong_event(ns: Any) -> None:
    @ns.on("shoot")
    def shoot(session, data):  # type: ignore[no-untyped-def]
        return None


SKIP_HINT = "skip the sender: ns.emit(..., to=room, skip=session)"
ROOM_HINT = "send to the room only: ns.emit(..., to=room, skip=session)"
ACK_HINT = (
    "return {'delivered': n}, where n is what ns.emit(...) returned: "
    "how many connections it was written to"
)
NOT_REGISTERED = (
    "register_shout(ns) registered no 'shout' handler",
    "decorate your handler with @ns.on('shout') inside register_shout, on the ns it is given",
)
REFUSED_ALICE = "alice, who is in lobby, shouted 'hello, lobby!' to it and was refused: internal: "

WRONG_SHOUTS = [
    (
        "to the sender too",
        shout_handler(skip=False),
        "alice, the sender, got the shout back as 'shouted'",
        SKIP_HINT,
    ),
    (
        "to the whole namespace",
        shout_handler(to_room=False),
        "dave, who is in kitchen, received the shout to lobby",
        ROOM_HINT,
    ),
    (
        "not in capitals",
        shout_handler(upper=False),
        "bob received 'shouted' with {'message': 'hello, lobby!', 'roomId': 'lobby', "
        "'userId': 'alice'}, expected {'message': 'HELLO, LOBBY!', 'roomId': 'lobby', "
        "'userId': 'alice'}",
        rooms.SHOUT_DATA_HINT,
    ),
    (
        "twice",
        register_twice,
        "bob received 'shouted' with 2 events [{'userId': 'alice', 'roomId': 'lobby', "
        "'message': 'HELLO, LOBBY!'}, {'userId': 'alice', 'roomId': 'lobby', "
        "'message': 'HELLO, LOBBY!'}], expected {'message': 'HELLO, LOBBY!', "
        "'roomId': 'lobby', 'userId': 'alice'}",
        rooms.SHOUT_DATA_HINT,
    ),
    (
        "without the ack",
        shout_handler(ack=False),
        "alice's ack said None, expected {'delivered': 3} (bob, carol and carol's tab)",
        ACK_HINT,
    ),
    (
        "an ack hard-coded to 2",
        register_hard_coded_two,
        "alice's ack said {'delivered': 2}, expected {'delivered': 3} (bob, carol and carol's tab)",
        ACK_HINT,
    ),
    (
        "skipping alice, not the sender",
        register_skip_alice,
        "alice, who is in lobby, received no 'shouted' event from dave within 0.5 s",
        rooms.SHOUT_HINT,
    ),
    (
        "outsiders not refused",
        shout_handler(member_check=False),
        "dave, who is not in lobby, shouted to it and was not refused "
        "(the ack said {'delivered': 4})",
        None,
    ),
    (
        "refused with ValueError",
        register_refusing_with_value_error,
        "dave, who is not in lobby, was refused with 'internal' (your handler raised "
        "ValueError: not a member), expected 'not_member'",
        rooms.NOT_MEMBER_HINT,
    ),
    (
        "refused with the wrong code",
        register_wrong_code,
        "dave, who is not in lobby, was refused with 'invalid', expected 'not_member'",
        rooms.NOT_MEMBER_HINT,
    ),
    (
        "refused after emitting",
        register_emitting_first,
        "dave's refused shout still reached alice",
        "check membership first, and raise before calling ns.emit",
    ),
    (
        "sending nothing",
        register_silent,
        "bob, who is in lobby, received no 'shouted' event from alice within 0.5 s",
        rooms.SHOUT_HINT,
    ),
    (
        "a KeyError in the handler",
        register_buggy,
        REFUSED_ALICE + "your handler raised KeyError: 'text'",
        rooms.SHOUT_HINT,
    ),
    (
        "a TypeError in an async handler",
        register_buggy_async,
        REFUSED_ALICE + "your handler raised TypeError: Object of type "
        "builtin_function_or_method is not JSON serializable",
        rooms.SHOUT_HINT,
    ),
    (
        "sys.exit in the handler",
        register_exiting,
        REFUSED_ALICE + "your handler raised SystemExit: 1",
        rooms.SHOUT_HINT,
    ),
    (
        "an ack that is not JSON",
        register_set_in_ack,
        REFUSED_ALICE + "your handler's answer could not be sent: "
        "TypeError('Object of type set is not JSON serializable')",
        rooms.SHOUT_HINT,
    ),
    (
        "a handler that never answers",
        register_waiting_forever,
        "alice's shout got no acknowledgement within 2 s",
        rooms.BLOCKING_HINT,
    ),
    (
        "a handler that blocks",
        register_sleeping,
        "alice's shout got no acknowledgement within 2 s",
        rooms.BLOCKING_HINT,
    ),
    ("registered on another namespace", register_on_another_namespace, *NOT_REGISTERED),
    ("the wrong event", register_the_wrong_event, *NOT_REGISTERED),
    (
        "the data spread into the event: a forged userId",
        register_spreading_data,
        "alice received 'shouted' with {'message': 'ME TOO!', 'roomId': 'lobby', "
        "'userId': 'alice'}, expected {'message': 'ME TOO!', 'roomId': 'lobby', "
        "'userId': 'dave'}",
        rooms.FORGED_HINT.format(sender="dave", claims="alice"),
    ),
    (
        "people counted, not connections",
        register_counting_people,
        "alice's ack said {'delivered': 2}, expected {'delivered': 3} (bob, carol and carol's tab)",
        ACK_HINT,
    ),
]


@pytest.mark.parametrize(
    ("register", "message", "hint"), [w[1:] for w in WRONG_SHOUTS], ids=[w[0] for w in WRONG_SHOUTS]
)
def test_shout_wrong_answers_fail_with_their_hint(register, message, hint) -> None:  # type: ignore[no-untyped-def]
    verdict = check_shout(register, timeout=0.5)
    assert not verdict.passed
    assert verdict.message == f"shout: {message}"
    if hint is not None:
        assert verdict.hint == hint
    else:
        assert "ErrorCode.NOT_MEMBER" in verdict.hint


def test_shout_handler_that_holds_the_server_is_a_cross_at_once() -> None:
    def register_shout(ns):  # type: ignore[no-untyped-def]
        @ns.on("shout")
        def shout(session, data):  # type: ignore[no-untyped-def]
            time.sleep(5)  # stands for an endless loop: the server's loop is held

    start = time.monotonic()
    verdict = check_shout(register_shout)
    assert verdict.message == "shout: alice's shout got no acknowledgement within 2 s"
    assert verdict.hint == rooms.BLOCKING_HINT
    assert time.monotonic() - start < 4.5  # not until the server is free again


def test_shout_register_shout_that_never_returns(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(rooms, "LEARNER_TIMEOUT", 0.2)

    def register_shout(ns):  # type: ignore[no-untyped-def]
        time.sleep(0.5)

    verdict = check_shout(register_shout)
    assert verdict.message == (
        "shout: register_shout(ns) did not return within 0.2 s: does a loop never end?"
    )


def test_shout_not_a_function() -> None:
    verdict = check_shout("shout")  # type: ignore[arg-type]
    assert verdict.message == "shout: expected a function, got str"


def test_shout_register_shout_crash_is_reported() -> None:
    def register_shout(ns):  # type: ignore[no-untyped-def]
        @ns.of("shout")
        def shout(session, data):  # type: ignore[no-untyped-def]
            return None

    verdict = check_shout(register_shout)
    assert verdict.message.startswith("shout: raised AttributeError: ")
    assert verdict.hint == rooms.SHOUT_HINT


def test_shout_not_done_yet_in_the_handler() -> None:
    def register_shout(ns):  # type: ignore[no-untyped-def]
        @ns.on("shout")
        def shout(session, data):  # type: ignore[no-untyped-def]
            raise NotImplementedError  # your code here

    verdict = check_shout(register_shout)
    assert not verdict.passed
    assert verdict.message == "shout: not done yet"
    assert verdict.hint == f"{rooms.SHOUT_NUDGE} (rtlab.hint() shows the recipe)"


def test_shout_not_done_yet_in_register_shout() -> None:
    def register_shout(ns):  # type: ignore[no-untyped-def]
        raise NotImplementedError  # your code here

    verdict = check_shout(register_shout)
    assert verdict.message == "shout: not done yet"


def test_shout_check_runs_inside_an_event_loop() -> None:
    """In a notebook the kernel's loop is running while the check blocks: it must cope."""

    async def main():  # type: ignore[no-untyped-def]
        return check_shout(shout_handler())

    assert asyncio.run(main()).passed
