"""Binary attachments (rtlab.core.attachments) and the envelope's binary frames, without I/O."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtlab.core.attachments import AttachmentError, has_bytes, pack, unpack
from rtlab.core.envelope import (
    Ack,
    EnvelopeError,
    ErrorCode,
    Event,
    decode_event,
    decode_reply,
    encode_ack,
    encode_event,
)


def frame(header: object, *attachments: bytes, length: int | None = None) -> bytes:
    """A binary frame built by hand: the header's JSON (or raw bytes) and attachments."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    size = len(raw) if length is None else length
    return struct.pack(">I", size) + raw + b"".join(attachments)


# -- the format, byte by byte -----------------------------------------------------------


def test_pack_writes_the_documented_layout():
    packed = pack({"event": "samples", "data": {"raw": b"\x00\x01\x02", "n": 3}, "ns": "/"})
    (length,) = struct.unpack(">I", packed[:4])
    header = packed[4 : 4 + length]
    assert header == b'{"event":"samples","data":{"raw":{"_bin":0},"n":3},"ns":"/","bin":[3]}'
    assert packed[4 + length :] == b"\x00\x01\x02"


def test_attachments_follow_in_placeholder_order():
    packed = pack({"data": [b"ab", {"x": bytearray(b"cde")}, memoryview(b"")]})
    (length,) = struct.unpack(">I", packed[:4])
    assert json.loads(packed[4 : 4 + length]) == {
        "data": [{"_bin": 0}, {"x": {"_bin": 1}}, {"_bin": 2}],
        "bin": [2, 3, 0],
    }
    assert packed[4 + length :] == b"abcde"
    assert unpack(packed) == {"data": [b"ab", {"x": b"cde"}, b""]}


def test_has_bytes_looks_everywhere():
    assert not has_bytes({"a": [1, "x", None, {"b": 2.5}]})
    assert has_bytes({"a": [1, {"b": [bytearray(1)]}]})
    assert has_bytes(memoryview(b"x"))


def test_a_literal_placeholder_cannot_be_packed():
    with pytest.raises(ValueError, match="reserved for attachments"):
        pack({"data": {"blob": b"x", "fake": {"_bin": 0}}})
    with pytest.raises(ValueError, match="'bin'"):
        pack({"data": b"x", "bin": []})
    with pytest.raises(TypeError):
        pack({"data": [b"x", {1, 2}]})  # a set: no JSON for it


# -- round trips ------------------------------------------------------------------------

keys = st.text(max_size=8).filter(lambda k: k not in ("_bin", "bin"))
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
binaries = st.binary(max_size=64) | st.binary(max_size=64).map(bytearray)
nested = st.recursive(
    scalars | binaries,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)


def as_bytes(value: object) -> object:
    """What comes back: every bytes-like value as ``bytes``."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict):
        return {k: as_bytes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_bytes(v) for v in value]
    return value


@pytest.mark.slow
@settings(max_examples=200)
@given(nested)
def test_any_nested_data_with_bytes_round_trips(data):
    message = {"event": "samples", "data": data, "ns": "/"}
    assert unpack(pack(message)) == as_bytes(message)


@settings(max_examples=100)
@given(nested.filter(has_bytes), st.integers(min_value=0, max_value=2**53 - 1))
def test_events_and_acks_with_bytes_go_binary_and_come_back_the_same(data, id):
    sent = encode_event("samples", data, "/lab", id, "m-1")
    assert isinstance(sent, bytes)
    assert decode_event(sent) == Event("samples", as_bytes(data), "/lab", id, "m-1")
    assert decode_reply(sent) == Event("samples", as_bytes(data), "/lab")
    answer = encode_ack(id, data)
    assert isinstance(answer, bytes)
    assert decode_reply(answer) == Ack(id, as_bytes(data), None)


@pytest.mark.slow
@settings(max_examples=100)
@given(nested.filter(lambda d: not has_bytes(d)))
def test_data_without_bytes_stays_text(data):
    assert isinstance(encode_event("plain", data), str)
    assert isinstance(encode_ack(1, data), str)


def test_a_binary_frame_with_no_attachments_is_accepted():
    assert decode_event(frame({"event": "x", "data": [1], "bin": []})) == Event("x", [1])


def test_text_sent_as_utf8_bytes_is_still_readable_when_said_so():
    assert decode_event(b'{"event": "a"}', binary=False) == Event("a")
    assert decode_reply(b'{"ack": 1}', binary=False) == Ack(1)
    assert isinstance(decode_event(b'{"event": "a"}'.decode()), Event)


# -- malformed frames: clear `invalid` errors ---------------------------------------------

MALFORMED = [
    (b"", "starts with the envelope's length in 4 bytes, got 0 bytes"),
    (b"\x00\x00\x01", "got 3 bytes"),
    (frame({"event": "x", "bin": []}, length=500), "the envelope's length is 500 bytes"),
    (frame(b"{not json"), "the envelope is not valid JSON"),
    (frame(b"\xff\xfe"), "the envelope is not valid JSON"),
    (frame(b"[" * 100_000), "nested too deeply"),
    (frame([1, 2]), "the envelope must be a JSON object, got list"),
    (frame({"event": "x"}), "'bin' must be a list of attachment lengths"),
    (frame({"event": "x", "bin": 3}, b"abc"), "'bin' must be a list"),
    (frame({"event": "x", "bin": [-1]}), "'bin' must be a list"),
    (frame({"event": "x", "bin": [1.5]}, b"ab"), "'bin' must be a list"),
    (frame({"event": "x", "bin": [True]}, b"a"), "'bin' must be a list"),
    (frame({"event": "x", "data": {"_bin": 0}, "bin": [4]}, b"ab"), "says 4 bytes of att"),
    (frame({"event": "x", "data": {"_bin": 0}, "bin": [1]}, b"ab"), "but 2 follow"),
    (frame({"event": "x", "data": {"_bin": 1}, "bin": [1]}, b"a"), "names no attachment"),
    (frame({"event": "x", "data": {"_bin": -1}, "bin": [1]}, b"a"), "names no attachment"),
    (frame({"event": "x", "data": {"_bin": "0"}, "bin": [1]}, b"a"), "names no attachment"),
    (frame({"event": "x", "data": [{"_bin": 0}], "bin": [1, 1]}, b"ab"), "attachment 1 is not"),
    (frame({"event": "x", "data": [{"_bin": 0}] * 2, "bin": [1]}, b"a"), "used twice"),
]


@pytest.mark.parametrize(("message", "words"), MALFORMED)
def test_malformed_binary_frames_are_refused_as_invalid(message, words):
    with pytest.raises(AttachmentError, match=words.replace("(", r"\(")):
        unpack(message)
    with pytest.raises(EnvelopeError) as caught:
        decode_event(message)
    assert caught.value.code is ErrorCode.INVALID
    assert caught.value.message.startswith("binary frame: ")
    assert words in caught.value.message
    assert decode_reply(caught.value.to_json()).event == "error"  # the answer is text


def test_a_malformed_frame_with_a_readable_id_is_refused_with_its_ref():
    bad = frame({"event": "x", "id": 7, "data": {"_bin": 3}, "bin": [1]}, b"a")
    with pytest.raises(EnvelopeError) as caught:
        decode_event(bad)
    assert caught.value.ref == 7


def test_a_binary_envelope_is_validated_like_a_text_one():
    with pytest.raises(EnvelopeError, match="unexpected field 'extra'"):
        decode_event(frame({"event": "x", "extra": 1, "data": {"_bin": 0}, "bin": [1]}, b"a"))
    with pytest.raises(EnvelopeError, match="event must be"):
        decode_event(frame({"event": "no spaces", "data": {"_bin": 0}, "bin": [1]}, b"a"))


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_only_envelope_error(raw):
    try:
        event = decode_event(raw)
    except EnvelopeError as error:
        assert error.code in (ErrorCode.INVALID, ErrorCode.INVALID_JSON)
    else:
        assert isinstance(event, Event)


@settings(max_examples=100)
@given(nested.filter(has_bytes), st.data())
def test_any_truncated_or_extended_frame_is_refused(data, draw):
    packed = pack({"event": "x", "data": data})
    cut = draw.draw(st.integers(min_value=0, max_value=len(packed) - 1))
    for broken in (packed[:cut], packed + b"\x00"):
        with pytest.raises(EnvelopeError) as caught:
            decode_event(broken)
        assert caught.value.code is ErrorCode.INVALID
