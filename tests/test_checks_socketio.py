"""Lesson 04's check grades the idea of a Socket.IO event packet against a live server: right
answers written differently pass; realistic mistakes fail with the message a learner sees."""

from __future__ import annotations

import json
import time

import pytest

from rtlab.checks import hint
from rtlab.checks.socketio import (
    ACK_PLACE,
    AN_ARRAY,
    ENGINE_DIGIT,
    JSON,
    NAMESPACE,
    NO_ACK,
    PACKET_RECIPE,
    SOCKET_DIGIT,
    check_packet,
)


def tutorial_like(event, data, ack_id=None):
    return "42" + ("" if ack_id is None else str(ack_id)) + json.dumps([event, data])


def compact_utf8(event, data, ack_id=None):
    body = json.dumps([event, data], separators=(",", ":"), ensure_ascii=False)
    return f"42{ack_id if ack_id is not None else ''}{body}"


def with_default_namespace(event, data, ack_id=None):  # "/," names the default namespace
    return "42/," + ("" if ack_id is None else str(ack_id)) + json.dumps([event, data])


def pieces(event, data, ack_id=None):
    head = ["4", "2"] + ([] if ack_id is None else list(str(ack_id)))
    return "".join(head) + json.dumps([event, data], indent=2)


@pytest.mark.parametrize("packet", [tutorial_like, compact_utf8, with_default_namespace, pieces])
def test_right_answers_written_differently_pass(packet):
    verdict = check_packet(packet)
    assert verdict.passed, str(verdict)
    assert str(verdict) == "✅ packet: correct"


WRONG = [
    # the Engine.IO digit forgotten: "2..." is an Engine.IO ping
    (
        lambda e, d, ack_id=None: (
            "2" + ("" if ack_id is None else str(ack_id)) + json.dumps([e, d])
        ),
        "is not an Engine.IO message",
        ENGINE_DIGIT,
    ),
    # the Socket.IO type forgotten
    (lambda e, d, ack_id=None: "4" + json.dumps([e, d]), "is not a Socket.IO event", SOCKET_DIGIT),
    # the course's /ws envelope instead of an array
    (
        lambda e, d, ack_id=None: "42" + json.dumps({"event": e, "data": d, "id": ack_id}),
        "the data is not a JSON array",
        AN_ARRAY,
    ),
    # Python's repr instead of JSON
    (lambda e, d, ack_id=None: "42" + str([e, d]), "is not JSON", JSON),
    # an array built by hand: the dict becomes a string
    (
        lambda e, d, ack_id=None: f'42{"" if ack_id is None else ack_id}["{e}","{d}"]',
        "not [event, data]",
        JSON,
    ),
    # `if ack_id` drops ack 0, socket.io-client's first
    (
        lambda e, d, ack_id=None: "42" + (str(ack_id) if ack_id else "") + json.dumps([e, d]),
        "asks for ack None, not 0",
        ACK_PLACE,
    ),
    # the ack id after the array
    (
        lambda e, d, ack_id=None: (
            "42" + json.dumps([e, d]) + ("" if ack_id is None else str(ack_id))
        ),
        "the ack id is after the array",
        ACK_PLACE,
    ),
    # an ack asked for every time
    (
        lambda e, d, ack_id=None: "42" + str(ack_id or 0) + json.dumps([e, d]),
        "asks for ack 0",
        NO_ACK,
    ),
    # the event in the wrong namespace: well formed, but nobody there handles it
    (
        lambda e, d, ack_id=None: (
            "42/chat," + ("" if ack_id is None else str(ack_id)) + json.dumps([e, d])
        ),
        "the server sent no ack",
        NAMESPACE,
    ),
    # bytes instead of text
    (
        lambda e, d, ack_id=None: tutorial_like(e, d, ack_id).encode(),
        "returned bytes, not str",
        PACKET_RECIPE,
    ),
]


@pytest.mark.parametrize(("packet", "message", "expected_hint"), WRONG)
def test_realistic_mistakes_fail_with_a_hint_for_the_mistake(packet, message, expected_hint):
    verdict = check_packet(packet)
    assert not verdict.passed
    assert message in verdict.message, verdict.message
    assert verdict.hint == expected_hint


def test_not_done_yet_nudges_and_hint_shows_the_recipe():
    def packet(event, data, ack_id=None):
        raise NotImplementedError

    verdict = check_packet(packet)
    assert str(verdict).startswith("❌ packet: not done yet")
    assert "rtlab.hint()" in verdict.hint
    assert hint().recipe == PACKET_RECIPE


def test_a_crash_or_an_endless_loop_is_a_cross_not_a_traceback_or_a_hang():
    def crashes(event, data, ack_id=None):
        return "42" + json.dumps([event, data["roomId"]])  # data is a str in join-room

    verdict = check_packet(crashes)
    assert not verdict.passed
    assert "TypeError" in verdict.message

    def endless(event, data, ack_id=None):
        while True:
            time.sleep(0.01)

    started = time.monotonic()
    verdict = check_packet(endless)
    assert "did not return within 2 s" in verdict.message
    assert time.monotonic() - started < 5
