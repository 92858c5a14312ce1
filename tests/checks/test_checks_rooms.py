"""The checks of lesson 03 pass right answers, fail typical wrong ones with the right hint,
and say "not done yet" to a learner copy."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from rtlab.checks import rooms
from rtlab.checks.rooms import CASES, check_recipients, check_shout
from rtlab.core.envelope import EnvelopeError, ErrorCode


@pytest.fixture(autouse=True)
def nothing_printed_and_no_server_left(capfd):
    yield
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


def with_change(change):  # type: ignore[no-untyped-def]
    """The right answer, then ``change(result, sender, event, data, rooms)`` applied to it."""

    def recipients(rooms, online, sender, event, data):  # type: ignore[no-untyped-def]
        result = recipients_right(rooms, online, sender, event, data)
        return change(result, sender, event, data, rooms, online)

    return recipients


def test_recipients_right_answer_passes() -> None:
    verdict = check_recipients(recipients_right)
    assert verdict.passed, verdict
    assert str(verdict) == "✅ recipients: correct"


def test_recipients_another_right_answer_passes() -> None:
    def recipients(rooms, online, sender, event, data):  # type: ignore[no-untyped-def]
        # Changes the rooms it is given, as a simulation would: the check must not mind.
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

    assert check_recipients(recipients).passed


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
    for case in CASES:
        rooms_copy = {room: set(members) for room, members in case.rooms.items()}
        assert recipients_right(rooms_copy, case.online, case.sender, case.event, case.data) == (
            case.expected
        )


def test_recipients_forgetting_the_sender_fails_with_its_hint() -> None:
    def without_sender(result, sender, event, data, rooms, online):  # type: ignore[no-untyped-def]
        return {user: name for user, name in result.items() if user != sender}

    verdict = check_recipients(with_change(without_sender))
    assert not verdict.passed
    assert verdict.message == (
        "recipients: alice sends send-message (lobby) in rooms "
        "{'kitchen': {'bob', 'carol'}, 'lobby': {'alice', 'bob'}}: "
        "you said {'bob': 'receive-message'}, "
        "the server sends {'alice': 'receive-message', 'bob': 'receive-message'}"
    )
    assert verdict.hint == rooms.SENDER_TOO


def test_recipients_telling_the_joiner_fails_with_its_hint() -> None:
    def joiner_told(result, sender, event, data, rooms_, online):  # type: ignore[no-untyped-def]
        if event == "join-room" and result:
            result[sender] = "user-joined"
        return result

    verdict = check_recipients(with_change(joiner_told))
    assert not verdict.passed
    assert "carol sends join-room (lobby)" in verdict.message
    assert verdict.hint == rooms.OTHERS_JOINED


def test_recipients_letting_outsiders_send_fails_with_its_hint() -> None:
    def outsiders_too(result, sender, event, data, rooms_, online):  # type: ignore[no-untyped-def]
        if event == "send-message" and not result:
            members = rooms_.get(data["roomId"], set())
            return {user: "receive-message" for user in members | {sender}}
        return result

    verdict = check_recipients(with_change(outsiders_too))
    assert not verdict.passed
    assert "dave sends send-message (lobby)" in verdict.message
    assert verdict.hint == rooms.NOT_MEMBER


def test_recipients_announcing_a_second_join_fails() -> None:
    def always_told(result, sender, event, data, rooms_, online):  # type: ignore[no-untyped-def]
        if event == "join-room":
            return {user: "user-joined" for user in rooms_.get(data, set()) - {sender}}
        return result

    verdict = check_recipients(with_change(always_told))
    assert not verdict.passed
    assert "alice sends join-room (lobby)" in verdict.message
    assert verdict.hint == rooms.NOTHING_NEW


def test_recipients_broadcast_to_the_rooms_only_fails() -> None:
    def rooms_only(result, sender, event, data, rooms_, online):  # type: ignore[no-untyped-def]
        if event == "broadcast":
            return {user: "broadcast-message" for user in set().union(*rooms_.values())}
        return result

    verdict = check_recipients(with_change(rooms_only))
    assert not verdict.passed
    assert "dave sends broadcast (class starts in 5 minutes)" in verdict.message
    assert "online {'alice', 'bob', 'carol', 'dave'}" in verdict.message
    assert verdict.hint == rooms.EVERYONE


def test_recipients_wrong_types_are_explained() -> None:
    verdict = check_recipients(lambda *args: None)
    assert "returned None; did you forget `return`?" in verdict.message
    assert verdict.hint == rooms.RECIPIENTS_HINT
    verdict = check_recipients(lambda rooms_, online, sender, event, data: set(online))
    assert "returned a set; return a dict {user: event received}" in verdict.message
    verdict = check_recipients("recipients")  # type: ignore[arg-type]
    assert verdict.message == "recipients: expected a function, got str"


def test_recipients_crash_is_reported() -> None:
    verdict = check_recipients(lambda rooms_, online, sender, event, data: rooms_[data])
    assert not verdict.passed
    assert verdict.message.startswith("recipients: raised TypeError")
    assert verdict.hint == rooms.RECIPIENTS_HINT


def test_recipients_not_done_yet() -> None:
    def recipients(rooms_, online, sender, event, data):  # type: ignore[no-untyped-def]
        raise NotImplementedError  # your code here

    verdict = check_recipients(recipients)
    assert not verdict.passed
    assert verdict.message == "recipients: not done yet"
    assert verdict.hint == rooms.RECIPIENTS_HINT


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


def test_shout_right_answer_passes() -> None:
    verdict = check_shout(shout_handler())
    assert verdict.passed, verdict
    assert str(verdict) == "✅ shout: correct"


def test_shout_async_handler_passes() -> None:
    def register_shout(ns):  # type: ignore[no-untyped-def]
        @ns.on("shout")
        async def shout(session, data):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0)
            room = data["roomId"]
            if not ns.has_user(session.user, room):
                raise EnvelopeError(ErrorCode.NOT_MEMBER, "no")
            loud = {"userId": session.user, "roomId": room, "message": data["message"].upper()}
            return {"delivered": ns.emit("shouted", loud, to=room, skip=session)}

    assert check_shout(register_shout).passed


def test_shout_to_the_sender_too_fails() -> None:
    verdict = check_shout(shout_handler(skip=False))
    assert not verdict.passed
    assert verdict.message == "shout: alice, the sender, received her own 'shouted' event"
    assert verdict.hint == "skip the sender: ns.emit(..., to=room, skip=session)"


def test_shout_to_the_whole_namespace_fails() -> None:
    verdict = check_shout(shout_handler(to_room=False))
    assert not verdict.passed
    assert verdict.message == "shout: dave, who is in kitchen, received the shout to lobby"
    assert "to=room" in verdict.hint


def test_shout_not_in_capitals_fails() -> None:
    verdict = check_shout(shout_handler(upper=False))
    assert not verdict.passed
    assert verdict.message == (
        "shout: bob received 'shouted' with "
        "{'message': 'hello, lobby!', 'roomId': 'lobby', 'userId': 'alice'}, "
        "expected {'message': 'HELLO, LOBBY!', 'roomId': 'lobby', 'userId': 'alice'}"
    )
    assert "str.upper()" in verdict.hint


def test_shout_without_the_ack_fails() -> None:
    verdict = check_shout(shout_handler(ack=False))
    assert not verdict.passed
    assert verdict.message == (
        "shout: alice's ack said None, expected {'delivered': 2} (bob and carol)"
    )
    assert "what ns.emit(...) returned" in verdict.hint


def test_shout_from_outside_the_room_must_be_refused() -> None:
    verdict = check_shout(shout_handler(member_check=False))
    assert not verdict.passed
    assert verdict.message == (
        "shout: dave, who is not in lobby, shouted to it and was not refused "
        "(the ack said {'delivered': 3})"
    )
    assert "ErrorCode.NOT_MEMBER" in verdict.hint


def test_shout_refused_with_the_wrong_code_fails() -> None:
    def register_shout(ns):  # type: ignore[no-untyped-def]
        shout_handler()(ns)
        right = ns.handlers["shout"]

        def shout(session, data):  # type: ignore[no-untyped-def]
            try:
                return right(session, data)
            except EnvelopeError as error:
                raise EnvelopeError(ErrorCode.INVALID, error.message) from None

        ns.on("shout")(shout)

    verdict = check_shout(register_shout)
    assert not verdict.passed
    assert verdict.message == (
        "shout: dave, who is not in lobby, was refused with 'invalid', expected 'not_member'"
    )


def test_shout_refused_after_emitting_fails() -> None:
    def register_shout(ns):  # type: ignore[no-untyped-def]
        @ns.on("shout")
        def shout(session, data):  # type: ignore[no-untyped-def]
            room = data["roomId"]
            loud = {"userId": session.user, "roomId": room, "message": data["message"].upper()}
            delivered = ns.emit("shouted", loud, to=room, skip=session)
            if not ns.rooms.is_member(session, room):
                raise EnvelopeError(ErrorCode.NOT_MEMBER, "too late")
            return {"delivered": delivered}

    verdict = check_shout(register_shout)
    assert not verdict.passed
    assert verdict.message == "shout: dave's refused shout still reached alice"
    assert verdict.hint == "check membership first, and raise before calling ns.emit"


def test_shout_that_sends_nothing_times_out() -> None:
    def register_shout(ns):  # type: ignore[no-untyped-def]
        @ns.on("shout")
        def shout(session, data):  # type: ignore[no-untyped-def]
            return {"delivered": 0}

    verdict = check_shout(register_shout, timeout=0.2)
    assert not verdict.passed
    assert verdict.message == (
        "shout: bob, who is in lobby, received no 'shouted' event within 0.2 s"
    )
    assert verdict.hint == rooms.SHOUT_HINT


def test_shout_handler_bug_is_reported() -> None:
    def register_shout(ns):  # type: ignore[no-untyped-def]
        @ns.on("shout")
        def shout(session, data):  # type: ignore[no-untyped-def]
            return {"delivered": ns.emit("shouted", data["text"], to=data["roomId"])}

    verdict = check_shout(register_shout)
    assert not verdict.passed
    assert verdict.message == (
        "shout: alice, who is in lobby, shouted 'hello, lobby!' to it and was refused: "
        "internal: your handler raised KeyError: 'text'"
    )


def test_shout_nothing_registered() -> None:
    def register_shout(ns: Any) -> None:
        @ns.on("shoot")
        def shoot(session, data):  # type: ignore[no-untyped-def]
            return None

    verdict = check_shout(register_shout)
    assert not verdict.passed
    assert verdict.message == "shout: register_shout(ns) registered no 'shout' handler"
    assert "@ns.on('shout')" in verdict.hint


def test_shout_not_done_yet_in_the_handler() -> None:
    def register_shout(ns):  # type: ignore[no-untyped-def]
        @ns.on("shout")
        def shout(session, data):  # type: ignore[no-untyped-def]
            raise NotImplementedError  # your code here

    verdict = check_shout(register_shout)
    assert not verdict.passed
    assert verdict.message == "shout: not done yet"
    assert verdict.hint == rooms.SHOUT_HINT


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
