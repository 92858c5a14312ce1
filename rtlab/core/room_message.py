"""The two texts every chat message makes, written out: the ``receive-message`` event
its room gets and the acknowledgement of ``send-message`` its sender gets.

JSON's encoder pays for every object it starts and every value it looks at, which on
objects this small is most of their cost: 1.8 and 1.4 µs for these two, a tenth of what
the server spends on a chat message in a room of one. Written out here with JSON's own
string quoting they take a third of that. They are the very text ``encode_event`` and
``encode_ack`` give (tests/core/test_room_message.py compares them); anything of
another shape goes to those encoders.
"""

from __future__ import annotations

import json
from typing import Any

from rtlab.core.envelope import Written, encode_event, event_parts, has_utf8

ROOM_MESSAGE = "receive-message"  # the event a room's numbered messages go as

_quote = json.encoder.encode_basestring  # a str as JSON, in C: what the encoder calls


def event(ns: str, payload: dict[str, Any]) -> str | bytes:
    """``encode_event(ROOM_MESSAGE, payload, ns)``: written out when ``payload`` is a
    chat message's userId, roomId, message, timestamp and seq, in that order."""
    try:
        user, room, text, when, seq = payload.values()
        if type(seq) is not int or tuple(payload) != _KEYS:
            raise TypeError
        prefix, suffix = event_parts(ROOM_MESSAGE, ns)
        data = (
            f'{{"userId":{_quote(user)},"roomId":{_quote(room)},"message":{_quote(text)},'
            f'"timestamp":{_quote(when)},"seq":{seq}}}'
        )
    except (TypeError, ValueError):  # another shape (_quote: a value that is no str)
        return encode_event(ROOM_MESSAGE, payload, ns)
    if has_utf8(data):
        return f"{prefix}{data}{suffix}"
    return encode_event(ROOM_MESSAGE, payload, ns)  # a lone surrogate: escaped there


_KEYS = ("userId", "roomId", "message", "timestamp", "seq")


def sent(room: str, seq: int, delivered: int) -> Written:
    """The data of ``send-message``'s acknowledgement (roomId, seq, delivered), with its
    JSON text written out for ``encode_ack``."""
    answer = Written({"roomId": room, "seq": seq, "delivered": delivered})
    answer.text = f'{{"roomId":{_quote(room)},"seq":{seq},"delivered":{delivered}}}'
    return answer
