"""The chat message's texts written out (rtlab.core.room_message) are the very text the
envelope's encoders give, for every value hypothesis can think of, and anything of
another shape goes to those encoders."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from rtlab.core import room_message
from rtlab.core.envelope import Written, encode_ack, encode_event

# Any text, lone surrogates too (valid JSON a client may send): hypothesis leaves them out
# unless asked.
ANY_TEXT = st.text(st.characters(exclude_categories=()))
ROOM_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True)
NAMESPACES = st.from_regex(r"/[A-Za-z0-9_-]{0,63}", fullmatch=True)


def chat_message(user: str, room: str, text: str, when: str, seq: int) -> dict[str, object]:
    return {"userId": user, "roomId": room, "message": text, "timestamp": when, "seq": seq}


@given(ANY_TEXT, ANY_TEXT, ANY_TEXT, ANY_TEXT, st.integers(), NAMESPACES)
def test_a_chat_message_is_written_as_encode_event_writes_it(user, room, text, when, seq, ns):
    payload = chat_message(user, room, text, when, seq)
    assert room_message.event(ns, payload) == encode_event("receive-message", payload, ns)


def test_a_lone_surrogate_is_escaped_as_encode_event_escapes_it():
    payload = chat_message("ann", "lobby", "\ud800 é", "2026-12-08T04:40:20.123Z", 1)
    written = room_message.event("/", payload)
    assert written == encode_event("receive-message", payload, "/")
    assert written.isascii() and "\\ud800" in written and "\\u00e9" in written


OTHER_SHAPES = [
    {"userId": "ann", "roomId": "lobby", "message": "hi", "timestamp": "t"},  # no seq
    {"roomId": "lobby", "userId": "ann", "message": "hi", "timestamp": "t", "seq": 1},
    {"userId": "ann", "roomId": "lobby", "message": "hi", "timestamp": "t", "seq": True},
    {"userId": "ann", "roomId": "lobby", "message": "hi", "timestamp": "t", "seq": 1.5},
    {"userId": None, "roomId": "lobby", "message": "hi", "timestamp": "t", "seq": 1},
    {"userId": "ann", "roomId": "lobby", "message": ["hi"], "timestamp": "t", "seq": 1},
    {"userId": "ann", "roomId": "lobby", "message": b"hi", "timestamp": "t", "seq": 1},
    {"userId": "ann", "roomId": "lobby", "message": "hi", "timestamp": "t", "seq": 1, "x": 2},
    {},
]


def test_every_other_shape_goes_to_encode_event():
    for payload in OTHER_SHAPES:
        written = room_message.event("/chat", payload)
        assert written == encode_event("receive-message", payload, "/chat")


@given(ROOM_IDS, st.integers(min_value=0), st.integers(min_value=0), st.integers(0, 2**53 - 1))
def test_the_sent_ack_is_written_as_encode_ack_writes_it(room, seq, delivered, id):
    sent = room_message.sent(room, seq, delivered)
    plain = {"roomId": room, "seq": seq, "delivered": delivered}
    assert sent == plain  # to every reader of the answer, a dict
    assert encode_ack(id, sent) == encode_ack(id, plain)
    assert json.loads(encode_ack(id, sent)) == {"ack": id, "data": plain}


def test_a_plain_dict_or_another_written_text_is_encoded_as_it_says():
    written = Written({"a": 1})
    written.text = '{"a":1}'
    assert encode_ack(3, written) == '{"ack":3,"data":{"a":1}}' == encode_ack(3, {"a": 1})
