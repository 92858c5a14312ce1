"""Lesson 04's check grades the idea of a Socket.IO event packet against a live server: right
answers written differently pass; realistic mistakes fail with the message a learner sees."""

from __future__ import annotations

import json
import time

import pytest
import socketio

from rtlab.checks import hint
from rtlab.checks.socketio import (
    ACK_PLACE,
    AN_ARRAY,
    CONNECT_FIRST,
    ENGINE_DIGIT,
    JSON,
    KEEP_LOOKING,
    NAMESPACE,
    NO_ACK,
    NO_SESSION,
    PACKET_RECIPE,
    POLLING_ONLY,
    RETURN_DATA,
    SEND_IT,
    SOCKET_DIGIT,
    check_join_by_polling,
    check_packet,
)
from rtlab.notebook.longpoll import LongPolling


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


# -- exercise 2: join_by_polling(url, room, message) ---------------------------------------


def by_hand(url, room, message):
    session = LongPolling(url)
    session.open()
    session.post("40")
    session.get()
    session.post("421" + json.dumps(["join-room", room]))
    while not (acks := [p for p in session.get() if p.startswith("431")]):
        pass
    session.post("42" + json.dumps(["send-message", {"roomId": room, "message": message}]))
    return json.loads(acks[0][3:])[0]


def batched(url, room, message):  # connect and join in one body, separated by \x1e
    session = LongPolling(url)
    session.open()
    session.post("40", '421["join-room",' + json.dumps(room) + "]")
    packets: list[str] = []
    while not any(p.startswith("431") for p in packets):
        packets += session.get()
    body = {"message": message, "roomId": room}
    session.post("42" + json.dumps(["send-message", body], ensure_ascii=False))
    [ack] = [p for p in packets if p.startswith("431")]
    return json.loads(ack[3:])[0]


def library_on_polling(url, room, message):
    client = socketio.Client(reconnection=False)
    client.connect(url, transports=["polling"], wait_timeout=5)
    ack = client.call("join-room", room, timeout=5)
    client.emit("send-message", {"roomId": room, "message": message})
    time.sleep(0.3)
    client.disconnect()
    return ack


@pytest.mark.parametrize("join_by_polling", [by_hand, batched, library_on_polling])
def test_polling_clients_written_differently_pass(join_by_polling):
    verdict = check_join_by_polling(join_by_polling)
    assert str(verdict) == "✅ join_by_polling: correct"


def no_connect(url, room, message):
    session = LongPolling(url, timeout=2)
    session.open()
    session.post("421" + json.dumps(["join-room", room]))
    return session.get()


def no_ack_id(url, room, message):
    session = LongPolling(url, timeout=2)
    session.open()
    session.post("40")
    session.get()
    session.post("42" + json.dumps(["join-room", room]))
    return session.get()  # a ping, a second later: no ack was asked for


def returns_the_packet(url, room, message):
    session = LongPolling(url)
    session.open()
    session.post("40")
    session.get()
    session.post("421" + json.dumps(["join-room", room]))
    ack = session.get()[0]
    session.post("42" + json.dumps(["send-message", {"roomId": room, "message": message}]))
    return ack


def forgets_to_send(url, room, message):
    session = LongPolling(url)
    session.open()
    session.post("40")
    session.get()
    session.post("421" + json.dumps(["join-room", room]))
    while not (acks := [p for p in session.get() if p.startswith("431")]):
        pass
    return json.loads(acks[0][3:])[0]


def never_reads_the_ack(url, room, message):
    session = LongPolling(url)
    session.open()
    session.post("40")
    session.get()
    session.post("421" + json.dumps(["join-room", room]))
    session.post("42" + json.dumps(["send-message", {"roomId": room, "message": message}]))
    return {"roomId": room}  # what the lesson's server answered: made up, not read


def without_an_ack_id(url, room, message):
    session = LongPolling(url)
    session.open()
    session.post("40")
    session.get()
    session.post("42" + json.dumps(["join-room", room]))
    session.post("42" + json.dumps(["send-message", {"roomId": room, "message": message}]))
    return {"roomId": room}


def first_packet_parsed(url, room, message):
    session = LongPolling(url)
    session.open()
    session.post("40")
    session.get()
    session.post("421" + json.dumps(["join-room", room]))
    first = session.get()[0]
    session.post("42" + json.dumps(["send-message", {"roomId": room, "message": message}]))
    return json.loads("[" + first[first.index("[") + 1 :])[-1]  # the last value of the array


def upgrades(url, room, message):
    client = socketio.Client(reconnection=False)
    client.connect(url, wait_timeout=5)
    ack = client.call("join-room", room, timeout=5)
    client.emit("send-message", {"roomId": room, "message": message})
    time.sleep(0.3)
    client.disconnect()
    return ack


def websocket_url(url, room, message):  # a ws:// URL: urllib cannot open it
    return LongPolling(url.replace("http", "ws")).open()


@pytest.mark.parametrize(
    ("join_by_polling", "message", "expected_hint"),
    [
        (no_connect, "a session opened, but never connected to '/'", CONNECT_FIRST),
        (no_ack_id, "the member there received []", SEND_IT),
        (returns_the_packet, 'returned \'42["welcome",{"roomId":"kitchen"}]\'', KEEP_LOOKING),
        (never_reads_the_ack, "returned {'roomId': 'kitchen'}, not the ack's data", RETURN_DATA),
        (without_an_ack_id, "returned {'roomId': 'kitchen'}, not the ack's data", RETURN_DATA),
        (first_packet_parsed, "returned {'roomId': 'kitchen'}, not the ack's data", RETURN_DATA),
        (forgets_to_send, "the member there received []", SEND_IT),
        (upgrades, "the client upgraded to WebSocket", POLLING_ONLY),
        (websocket_url, "the server saw no long-polling request", NO_SESSION),
    ],
)
def test_polling_mistakes_fail_with_what_the_server_saw(join_by_polling, message, expected_hint):
    verdict = check_join_by_polling(join_by_polling)
    assert not verdict.passed
    assert message in verdict.message, verdict.message
    assert verdict.hint == expected_hint


def test_a_polling_client_that_never_returns_is_a_cross_within_the_time_limit():
    def stuck(url, room, message):
        while True:
            time.sleep(0.01)

    started = time.monotonic()
    verdict = check_join_by_polling(stuck)
    assert "did not return within 8 s" in verdict.message
    assert time.monotonic() - started < 12


def test_not_done_yet_nudges_to_the_first_step():
    def join_by_polling(url, room, message):
        raise NotImplementedError

    verdict = check_join_by_polling(join_by_polling)
    assert str(verdict).startswith("❌ join_by_polling: not done yet")
    assert "start with the open" in verdict.hint
