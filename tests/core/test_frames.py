"""Frames and close codes, checked against RFC 6455 and the `websockets` library."""

import random
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.exceptions import ProtocolError
from websockets.frames import Close as WsClose
from websockets.frames import CloseCode as WsCloseCode
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode as WsOpcode
from websockets.streams import StreamReader
from websockets.utils import apply_mask

from rtlab.core.frames import (
    CLOSE_MEANINGS,
    CloseCode,
    Frame,
    FrameError,
    Header,
    Opcode,
    decode,
    decode_close,
    decode_header,
    describe_close,
    encode,
    encode_close,
    generate_mask,
    mask,
)

RFC_MASK = bytes.fromhex("37fa213d")  # the key used in RFC 6455 §5.7

DATA_OPCODES = [Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY]
CONTROL_OPCODES = [Opcode.CLOSE, Opcode.PING, Opcode.PONG]
SENDABLE_CODES = [1000, 1001, 1002, 1003, *range(1007, 1015)]

# Lengths around the 7-bit / 16-bit / 64-bit length encodings, and one big payload.
BOUNDARIES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


def _random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


small_payloads = st.binary(max_size=300)
boundary_payloads = st.builds(
    _random_bytes,
    st.one_of(
        st.sampled_from(BOUNDARIES),
        st.builds(
            lambda n, d: n + d, st.sampled_from([125, 126, 65535, 65536]), st.integers(-2, 2)
        ),
    ),
    st.integers(0, 2**32),
)
payloads = st.one_of(small_payloads, boundary_payloads)
mask_keys = st.one_of(st.none(), st.binary(min_size=4, max_size=4))

data_frames = st.builds(
    Frame,
    opcode=st.sampled_from(DATA_OPCODES),
    payload=payloads,
    fin=st.booleans(),
    rsv1=st.booleans(),
    rsv2=st.booleans(),
    rsv3=st.booleans(),
)
control_frames = st.builds(
    Frame,
    opcode=st.sampled_from(CONTROL_OPCODES),
    payload=st.binary(max_size=125),
    fin=st.just(True),
    rsv1=st.booleans(),
    rsv2=st.booleans(),
    rsv3=st.booleans(),
)
frames = st.one_of(data_frames, control_frames)


def ws_parse(data: bytes, *, masked: bool, max_size: int | None = None) -> WsFrame:
    """Parse one whole frame with websockets' generator-based parser."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()  # a short frame raises EOFError instead of waiting
    parser = WsFrame.parse(reader.read_exact, mask=masked, max_size=max_size, extensions=[])
    with pytest.raises(StopIteration) as done:
        next(parser)  # all bytes are there, so the parser never yields
    assert not reader.buffer, "websockets should consume exactly one frame"
    return done.value.value


def ws_serialize(frame: Frame, mask_key: bytes | None) -> bytes:
    """Serialize with websockets, forcing its (normally random) mask key."""
    ws_frame = WsFrame(WsOpcode(frame.opcode), frame.payload, frame.fin)
    if mask_key is None:
        return ws_frame.serialize(mask=False, extensions=[])
    with mock.patch("websockets.frames.secrets.token_bytes", return_value=mask_key):
        return ws_frame.serialize(mask=True, extensions=[])


def _has_rsv(frame: Frame) -> bool:
    return frame.rsv1 or frame.rsv2 or frame.rsv3


# --- enums and tables ------------------------------------------------------------


def test_opcodes_match_websockets() -> None:
    assert [int(op) for op in Opcode] == [int(op) for op in WsOpcode]
    assert [op.is_control for op in Opcode] == [False, False, False, True, True, True]


def test_close_codes_match_websockets() -> None:
    assert {c.name: int(c) for c in CloseCode} == {c.name: int(c) for c in WsCloseCode}
    assert set(CloseCode) <= CLOSE_MEANINGS.keys()
    assert set(CLOSE_MEANINGS) == set(range(1000, 1016))


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (1000, "1000: normal closure"),
        (1004, "reserved"),
        (1006, "never sent"),
        (1011, "internal error"),
        (3000, "registered for libraries/frameworks"),
        (3999, "registered for libraries/frameworks"),
        (4000, "private use by applications"),
        (4999, "private use by applications"),
        (999, "invalid"),
        (1016, "invalid"),
        (2999, "invalid"),
        (5000, "invalid"),
    ],
)
def test_describe_close(code: int, words: str) -> None:
    assert words in describe_close(code)


# --- RFC 6455 §5.7 examples, byte for byte --------------------------------------


@pytest.mark.parametrize(
    ("frame", "mask_key", "wire"),
    [
        (Frame.text("Hello"), None, "81 05 48 65 6c 6c 6f"),
        (Frame.text("Hello"), RFC_MASK, "81 85 37 fa 21 3d 7f 9f 4d 51 58"),
        (Frame(Opcode.TEXT, b"Hel", fin=False), None, "01 03 48 65 6c"),
        (Frame(Opcode.CONTINUATION, b"lo"), None, "80 02 6c 6f"),
        (Frame.ping(b"Hello"), None, "89 05 48 65 6c 6c 6f"),
        (Frame.pong(b"Hello"), RFC_MASK, "8a 85 37 fa 21 3d 7f 9f 4d 51 58"),
    ],
)
def test_rfc_examples(frame: Frame, mask_key: bytes | None, wire: str) -> None:
    data = bytes.fromhex(wire)
    assert encode(frame, mask_key) == data
    assert decode(data) == (frame, mask_key is not None, len(data))


def test_rfc_examples_256_bytes_and_64k() -> None:
    payload = _random_bytes(256, 1)
    assert encode(Frame.binary(payload)) == bytes.fromhex("82 7e 01 00") + payload
    payload = _random_bytes(65536, 2)
    data = encode(Frame.binary(payload))
    assert data == bytes.fromhex("82 7f 00 00 00 00 00 01 00 00") + payload
    assert decode(data) == (Frame.binary(payload), False, len(data))


# --- rtlab <-> websockets --------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(frame=frames, mask_key=mask_keys)
def test_rtlab_frames_parsed_by_websockets(frame: Frame, mask_key: bytes | None) -> None:
    data = encode(frame, mask_key)
    if _has_rsv(frame):  # RSV bits need a negotiated extension; websockets has none here
        with pytest.raises(ProtocolError, match="reserved bits must be 0"):
            ws_parse(data, masked=mask_key is not None)
        return
    ws_frame = ws_parse(data, masked=mask_key is not None)
    assert (int(ws_frame.opcode), bytes(ws_frame.data), ws_frame.fin) == (
        frame.opcode,
        frame.payload,
        frame.fin,
    )


@settings(max_examples=200, deadline=None)
@given(frame=frames, mask_key=mask_keys)
def test_websockets_frames_decoded_by_rtlab(frame: Frame, mask_key: bytes | None) -> None:
    frame = Frame(frame.opcode, frame.payload, frame.fin)  # websockets sends no RSV bits
    data = ws_serialize(frame, mask_key)
    assert data == encode(frame, mask_key)  # byte for byte, mask key included
    assert decode(data) == (frame, mask_key is not None, len(data))


@settings(max_examples=50, deadline=None)
@given(frame=frames)
def test_websockets_random_mask_decoded_by_rtlab(frame: Frame) -> None:
    frame = Frame(frame.opcode, frame.payload, frame.fin)
    data = WsFrame(WsOpcode(frame.opcode), frame.payload, frame.fin).serialize(
        mask=True, extensions=[]
    )
    assert decode(data) == (frame, True, len(data))


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), key=st.binary(min_size=4, max_size=4))
def test_mask_is_an_involution_and_matches_websockets(data: bytes, key: bytes) -> None:
    masked = mask(data, key)
    assert masked == apply_mask(data, key)
    assert mask(masked, key) == data


def test_mask_large_payload() -> None:
    data = _random_bytes(1 << 20, 3)
    key = generate_mask()
    assert len(key) == 4
    assert mask(data, key) == apply_mask(data, key)
    assert mask(bytearray(b"abc"), b"\x01\x02\x03\x04") == b"\x60\x60\x60"


# --- round trips and streaming ---------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(frame=frames, mask_key=mask_keys)
def test_round_trip(frame: Frame, mask_key: bytes | None) -> None:
    data = encode(frame, mask_key)
    assert decode(data) == (frame, mask_key is not None, len(data))
    header = decode_header(data)
    assert header is not None
    assert header.frame_size == len(data)
    assert (header.opcode, header.length, header.mask_key) == (
        frame.opcode,
        len(frame.payload),
        mask_key,
    )


@settings(max_examples=100, deadline=None)
@given(frame=frames, mask_key=mask_keys)
def test_every_prefix_is_incomplete(frame: Frame, mask_key: bytes | None) -> None:
    view = memoryview(encode(frame, mask_key))  # slicing a memoryview copies nothing
    header = decode_header(view)
    assert header is not None
    # Every cut inside the header, and a few inside the payload.
    cuts = {*range(header.size + 3), len(view) - 1, len(view) // 2}
    for cut in sorted(c for c in cuts if c < len(view)):
        assert decode(view[:cut]) is None
        assert (decode_header(view[:cut]) is None) == (cut < header.size)


def test_every_prefix_of_a_small_frame_is_incomplete() -> None:
    data = encode(Frame.binary(b"x" * 130), RFC_MASK)
    for cut in range(len(data)):
        assert decode(data[:cut]) is None
    assert decode(data) is not None


@settings(max_examples=100, deadline=None)
@given(first=frames, second=frames, mask_key=mask_keys)
def test_two_frames_back_to_back(first: Frame, second: Frame, mask_key: bytes | None) -> None:
    a, b = encode(first, mask_key), encode(second, mask_key)
    buffer = a + b + b"\x81"  # plus the first byte of a third frame
    result = decode(buffer)
    assert result == (first, mask_key is not None, len(a))
    result = decode(buffer[len(a) :])
    assert result == (second, mask_key is not None, len(b))
    assert decode(buffer[len(a) + len(b) :]) is None


def test_decode_header_fields() -> None:
    data = bytes.fromhex("c1 fe 01 00 37 fa 21 3d")
    assert decode_header(data) == Header(
        fin=True,
        rsv1=True,
        rsv2=False,
        rsv3=False,
        opcode=1,
        masked=True,
        length=256,
        mask_key=RFC_MASK,
        size=8,
    )
    assert decode_header(b"\x81") is None
    assert decode_header(b"\x82\x7f\x00") is None
    assert decode_header(bytes.fromhex("0b 00")).opcode == 0xB  # reserved, but still readable


def test_frame_constructors_and_repr() -> None:
    assert Frame.text("é") == Frame(Opcode.TEXT, "é".encode())
    assert Frame.binary(b"\x00", fin=False) == Frame(Opcode.BINARY, b"\x00", fin=False)
    assert Frame.close() == Frame(Opcode.CLOSE, b"\x03\xe8")
    assert Frame.close(4001, "bye") == Frame(Opcode.CLOSE, b"\x0f\xa1bye")
    assert Frame.close(None) == Frame(Opcode.CLOSE, b"")
    assert Frame.ping() == Frame(Opcode.PING)
    assert Frame(2, bytearray(b"ab")) == Frame.binary(b"ab")  # coerced to Opcode and bytes
    assert repr(Frame.text("Hello")) == "Frame(Opcode.TEXT, b'Hello', fin=True)"
    assert repr(Frame.binary(bytes(70000))).endswith("... (70000 bytes), fin=True)")
    assert "rsv1=True" in repr(Frame(Opcode.BINARY, rsv1=True))
    with pytest.raises(TypeError, match=r"Frame\.text"):
        Frame(Opcode.TEXT, "not bytes")  # type: ignore[arg-type]


# --- close payloads --------------------------------------------------------------

close_codes = st.one_of(st.sampled_from(SENDABLE_CODES), st.integers(3000, 4999))
close_reasons = st.text(max_size=60).filter(
    lambda r: len(r.encode("utf-8", "surrogatepass")) <= 123
)


@settings(max_examples=200, deadline=None)
@given(code=close_codes, reason=close_reasons)
def test_close_round_trip_and_websockets(code: int, reason: str) -> None:
    try:
        payload = encode_close(code, reason)
    except FrameError:  # only lone surrogates cannot be encoded
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in reason)
        return
    assert payload == WsClose(code, reason).serialize()
    assert decode_close(payload) == (code, reason)
    ws_close = WsClose.parse(payload)
    assert (ws_close.code, ws_close.reason) == (code, reason)
    assert decode(encode(Frame.close(code, reason))) is not None


def test_close_special_cases() -> None:
    assert decode_close(b"") == (1005, "")
    assert WsClose.parse(b"").code == 1005
    assert encode_close() == b"\x03\xe8"
    assert encode_close(1000, "x" * 123) == b"\x03\xe8" + b"x" * 123


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_invalid_close_codes(code: int) -> None:
    with pytest.raises(FrameError, match=f"close code {code}"):
        encode_close(code)
    with pytest.raises(FrameError, match=f"invalid close code {code}"):
        decode_close(code.to_bytes(2, "big"))
    with pytest.raises(ProtocolError):  # websockets agrees
        WsClose.parse(code.to_bytes(2, "big"))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x03", "close payload of 1 byte"),
        (b"\x03\xe8\xff", "close reason is not valid UTF-8"),
        (b"\x03\xe8" + b"x" * 124, "close payload of 126 bytes exceeds 125"),
    ],
)
def test_invalid_close_payloads(payload: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        decode_close(payload)


def test_close_reason_too_long() -> None:
    with pytest.raises(FrameError, match="close reason of 124 bytes is too long"):
        encode_close(1000, "x" * 124)
    with pytest.raises(FrameError, match="close reason of 124 bytes"):
        encode_close(1000, "é" * 62)  # 62 characters, 124 bytes of UTF-8


# --- errors ------------------------------------------------------------------------


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcodes(opcode: int) -> None:
    with pytest.raises(FrameError, match=f"reserved opcode 0x{opcode:x}"):
        Frame(opcode)  # type: ignore[arg-type]
    with pytest.raises(FrameError, match=f"reserved opcode 0x{opcode:x}"):
        decode(bytes([0x80 | opcode, 0]))


def test_opcode_out_of_range() -> None:
    with pytest.raises(FrameError, match="opcode must fit in 4 bits, got 16"):
        Frame(16)  # type: ignore[arg-type]


@pytest.mark.parametrize("opcode", CONTROL_OPCODES)
def test_fragmented_control_frame(opcode: Opcode) -> None:
    with pytest.raises(FrameError, match=f"control frame {opcode.name} must not be fragmented"):
        encode(Frame(opcode, fin=False))
    with pytest.raises(FrameError, match="must not be fragmented"):
        decode(bytes([opcode, 0]))  # FIN bit clear


@pytest.mark.parametrize("opcode", CONTROL_OPCODES)
def test_control_payload_too_long(opcode: Opcode) -> None:
    message = f"control frame {opcode.name} payload of 126 bytes exceeds 125 bytes"
    with pytest.raises(FrameError, match=message):
        encode(Frame(opcode, b"x" * 126))
    with pytest.raises(FrameError, match=message):  # from the header alone
        decode(bytes([0x80 | opcode, 126, 0, 126]))
    assert decode(encode(Frame(opcode, b"x" * 125))) is not None


def test_max_size() -> None:
    data = encode(Frame.binary(b"x" * 11))
    with pytest.raises(FrameError, match="frame payload of 11 bytes exceeds max_size 10"):
        decode(data, max_size=10)
    with pytest.raises(FrameError, match="exceeds max_size"):
        decode(data[:2], max_size=10)  # refused before the payload arrives
    assert decode(data, max_size=11) is not None
    big = bytes([0x82, 127]) + (1 << 40).to_bytes(8, "big")
    with pytest.raises(FrameError, match=f"frame payload of {1 << 40} bytes exceeds max_size"):
        decode(big, max_size=1 << 20)


def test_64_bit_length_msb() -> None:
    data = bytes([0x82, 127]) + (1 << 63).to_bytes(8, "big")
    with pytest.raises(FrameError, match="most significant bit"):
        decode_header(data)
    with pytest.raises(FrameError, match="most significant bit"):
        decode(data)


@pytest.mark.parametrize("key", [b"", b"\x00\x01\x02", b"\x00\x01\x02\x03\x04"])
def test_bad_mask_length(key: bytes) -> None:
    with pytest.raises(FrameError, match=f"mask key must be 4 bytes, got {len(key)}"):
        mask(b"data", key)
    with pytest.raises(FrameError, match="mask key must be 4 bytes"):
        encode(Frame.text("hi"), key)
