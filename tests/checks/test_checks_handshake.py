"""The checks for lesson 01's exercises: accept_key(key) and frame_header(length, masked)."""

from __future__ import annotations

import base64
import hashlib
import struct
import threading
import time

import pytest

from rtlab.checks import Verdict
from rtlab.checks.handshake import (
    ACCEPT_HINT,
    ACCEPT_NUDGE,
    CASES,
    FRAME_HINT,
    FRAME_NUDGE,
    KEYS,
    LIVE,
    RFC_KEY,
    YOUR_OWN,
    check_accept_key,
    check_frame_header,
    expected_header,
)
from rtlab.core import frames
from rtlab.core import handshake as core_handshake
from rtlab.core.handshake import GUID, accept_key

RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 §1.3, for RFC_KEY

# --------------------------------------------------------------------------
# Exercise 1: accept_key
# --------------------------------------------------------------------------


def correct_accept_key(key: str) -> str:
    digest = hashlib.sha1((key + GUID).encode()).digest()
    return base64.b64encode(digest).decode()


def test_the_rfc_sample_is_right_and_checked_first() -> None:
    assert accept_key(RFC_KEY) == RFC_ACCEPT == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert KEYS[0] == RFC_KEY
    assert len(set(KEYS)) == len(KEYS) > 40
    assert all(len(base64.b64decode(key)) == 16 for key in KEYS)


def test_the_keys_are_the_same_on_every_import() -> None:
    from rtlab.checks.handshake import _random_keys

    assert _random_keys() == KEYS[1:]


def test_a_correct_accept_key_passes() -> None:
    verdict = check_accept_key(correct_accept_key)
    assert isinstance(verdict, Verdict)
    assert verdict.passed
    assert str(verdict) == "✅ accept_key: correct"
    assert "Hint" not in str(verdict)


def test_the_reference_and_another_correct_form_pass() -> None:
    assert check_accept_key(accept_key)
    assert check_accept_key(
        lambda key: base64.standard_b64encode(
            hashlib.new("sha1", f"{key}{GUID}".encode()).digest()
        ).decode("ascii")
    )


def test_accept_key_not_done_yet_gets_the_nudge() -> None:
    def learner_copy(key: str) -> str:
        raise NotImplementedError  # your code here

    verdict = check_accept_key(learner_copy)
    assert not verdict.passed
    assert str(verdict) == (
        f"❌ accept_key: not done yet\n   Hint: {ACCEPT_NUDGE} (rtlab.hint() shows the recipe)"
    )


def _sha1(text: str) -> bytes:
    return hashlib.sha1(text.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


ACCEPT_RIGHT = [
    pytest.param(correct_accept_key, id="as in the lesson"),
    pytest.param(accept_key, id="rtlab's own"),
    pytest.param(
        lambda key: base64.standard_b64encode(
            hashlib.new("sha1", f"{key}{GUID}".encode()).digest()
        ).decode("ascii"),
        id="hashlib.new and an f-string",
    ),
    pytest.param(
        lambda key: base64.b64encode(
            hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        ).decode(),
        id="bytes joined",
    ),
    pytest.param(
        lambda key: str(base64.b64encode(_sha1(key.strip() + GUID)), "ascii"), id="str(b, enc)"
    ),
]


@pytest.mark.parametrize("answer", ACCEPT_RIGHT)
def test_right_accept_keys_written_differently_pass(answer) -> None:
    verdict = check_accept_key(answer)
    assert verdict.passed, verdict
    assert str(verdict) == "✅ accept_key: correct"


# A wrong answer, and what the learner reads after "returned <the value>: ".
ACCEPT_WRONG = [
    (lambda key: _b64(_sha1(key)), "the GUID is missing: hash key + GUID, not the key alone"),
    (
        lambda key: hashlib.sha1((key + GUID).encode()).hexdigest(),
        "that is the hex digest: base64-encode the raw digest, .digest(), instead",
    ),
    (
        lambda key: _b64(hashlib.sha1((key + GUID).encode()).hexdigest().encode()),
        "that is base64 of the hex digest: base64-encode .digest(), the 20 raw bytes",
    ),
    (
        lambda key: _b64(hashlib.md5((key + GUID).encode()).digest()),
        "that is MD5: the handshake uses SHA-1",
    ),
    (
        lambda key: _b64(hashlib.sha256((key + GUID).encode()).digest()),
        "that is SHA-256: the handshake uses SHA-1",
    ),
    (
        lambda key: _b64((key + GUID).encode()),
        "that is base64 of key + GUID: hash it with SHA-1 first",
    ),
    (lambda key: _b64(key.encode()), "that is base64 of the key itself: hash key + GUID with"),
    (
        lambda key: base64.b64encode(_sha1(key + GUID)),
        "it returned bytes: return a str (call .decode() on the base64 bytes)",
    ),
    (lambda key: str(base64.b64encode(_sha1(key + GUID))), "str(bytes), with b'...' around it"),
    (lambda key: _b64(_sha1(GUID + key)), "the GUID goes after the key: key + GUID"),
    (lambda key: _b64(_sha1(key + GUID.lower())), f"the GUID must be exactly {GUID}"),
    (
        lambda key: _b64(_sha1(key.rstrip("=") + GUID)),
        "use the whole key, its '=' padding included",
    ),
    (lambda key: _b64(_sha1(key + GUID)).rstrip("="), "its '=' padding is part of it"),
    (
        lambda key: base64.urlsafe_b64encode(_sha1(key + GUID)).decode(),
        "that is URL-safe base64 (- and _): use standard base64",
    ),
    (
        lambda key: _b64(hashlib.sha1(base64.b64decode(key) + GUID.encode()).digest()),
        "use the key as sent, its base64 text: do not decode it first",
    ),
    (
        lambda key: base64.encodebytes(_sha1(key + GUID)).decode(),
        "it ends with a newline (base64.encodebytes adds one): use base64.b64encode",
    ),
]


@pytest.mark.parametrize(("answer", "diagnosis"), ACCEPT_WRONG)
def test_wrong_accept_keys_are_named_with_the_recipe(answer, diagnosis) -> None:
    verdict = check_accept_key(answer)
    assert not verdict.passed
    assert verdict.message.startswith(f"accept_key: accept_key({RFC_KEY!r}) returned ")
    assert diagnosis in verdict.message
    assert verdict.hint == ACCEPT_HINT
    assert str(verdict).endswith(f"\n   Hint: {ACCEPT_HINT}")


def test_urlsafe_base64_is_caught_on_a_key_whose_digest_differs() -> None:
    # The RFC key's accept value has no + or /: URL-safe base64 fails on a later key.
    verdict = check_accept_key(lambda key: base64.urlsafe_b64encode(_sha1(key + GUID)).decode())
    assert not verdict.passed
    assert "URL-safe base64" in verdict.message


def test_an_answer_right_only_for_the_rfc_sample_fails_on_a_random_key() -> None:
    verdict = check_accept_key(lambda key: RFC_ACCEPT)
    assert not verdict.passed
    assert verdict.message == (
        f"accept_key: accept_key({KEYS[1]!r}) returned {RFC_ACCEPT!r}, "
        f"expected {accept_key(KEYS[1])!r}"
    )


def test_accept_key_missing_return_exception_and_not_callable() -> None:
    def forgot_return(key: str) -> None:
        _ = _b64(_sha1(key + GUID))

    verdict = check_accept_key(forgot_return)  # type: ignore[arg-type]
    assert verdict.message == (
        f"accept_key: accept_key({RFC_KEY!r}) returned None: did you forget `return`?"
    )

    verdict = check_accept_key(lambda key: key + 1)  # type: ignore[operator]
    assert verdict.message == (
        f"accept_key: accept_key({RFC_KEY!r}) raised TypeError: "
        'can only concatenate str (not "int") to str'
    )
    assert verdict.hint == ACCEPT_HINT

    verdict = check_accept_key("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")  # type: ignore[arg-type]
    assert verdict.message == "accept_key: expected a function, got str"


# --------------------------------------------------------------------------
# Exercise 2: frame_header
# --------------------------------------------------------------------------


def correct_frame_header(payload_length: int, masked: bool) -> bytes:
    first = 0x81
    mask_bit = 0x80 if masked else 0
    if payload_length < 126:
        return bytes([first, mask_bit | payload_length])
    if payload_length < 2**16:
        return bytes([first, mask_bit | 126]) + payload_length.to_bytes(2, "big")
    return bytes([first, mask_bit | 127]) + payload_length.to_bytes(8, "big")


def test_the_cases_cover_every_boundary_of_the_length_rule() -> None:
    lengths = {n for n, _ in CASES}
    assert {0, 125, 126, 65535, 65536} <= lengths
    assert max(lengths) == 2**63 - 1
    assert {masked for _, masked in CASES} == {True, False}
    assert {n for n, _ in LIVE} == {0, 5, 125, 126, 65535, 65536}  # each boundary, live


@pytest.mark.parametrize("n", [0, 1, 5, 125, 126, 300, 65535, 65536, 70000])
@pytest.mark.parametrize("masked", [True, False])
def test_expected_header_agrees_with_the_core_encoder(n: int, masked: bool) -> None:
    key = b"\x37\xfa\x21\x3d"
    wire = frames.encode(frames.Frame.text("x" * n), key if masked else None)
    header = frames.decode_header(wire)
    assert header is not None
    assert expected_header(n, masked) == wire[: header.size - (4 if masked else 0)]


def _via_struct(n: int, masked: bool) -> bytearray:
    out = bytearray([0x81])
    bit = 0x80 if masked else 0
    if n <= 125:
        out.append(bit | n)
    elif n <= 0xFFFF:
        out += struct.pack("!BH", bit | 126, n)
    else:
        out += struct.pack("!BQ", bit | 127, n)
    return out


def _cut_from_the_encoder(n: int, masked: bool) -> bytes:
    if n > 2**20:  # too long to build: fall back on the rule
        return correct_frame_header(n, masked)
    wire = frames.encode(frames.Frame.text("x" * n), b"\0\0\0\0" if masked else None)
    return wire[: len(wire) - n - (4 if masked else 0)]


FRAME_RIGHT = [
    pytest.param(correct_frame_header, id="< 126 and < 2**16"),
    pytest.param(_via_struct, id="struct and a bytearray"),
    pytest.param(_cut_from_the_encoder, id="cut from rtlab's encoder"),
    pytest.param(expected_header, id="the check's own"),
]


@pytest.mark.parametrize("answer", FRAME_RIGHT)
def test_right_frame_headers_written_differently_pass_live(answer) -> None:
    verdict = check_frame_header(answer)
    assert verdict.passed, verdict
    assert str(verdict) == (
        "✅ frame_header: correct; a lab server echoed frames of "
        "0, 5, 125, 126, 65,535, 65,536 bytes"
    )
    assert not [
        t for t in threading.enumerate() if t.name in ("rtlab-server", "rtlab-proxy")
    ]  # stopped


def test_frame_header_not_done_yet_gets_the_nudge() -> None:
    def learner_copy(payload_length: int, masked: bool) -> bytes:
        raise NotImplementedError  # your code here

    verdict = check_frame_header(learner_copy)
    assert not verdict.passed
    assert str(verdict) == (
        f"❌ frame_header: not done yet\n   Hint: {FRAME_NUDGE} (rtlab.hint() shows the recipe)"
    )


def _bit(masked: bool) -> int:
    return 0x80 if masked else 0


def _only_7_bits(n: int, masked: bool) -> bytes:
    return bytes([0x81, _bit(masked) | (n & 0x7F)])


def _16_bits_for_everything_long(n: int, masked: bool) -> bytes:
    if n <= 125:
        return bytes([0x81, _bit(masked) | n])
    return bytes([0x81, _bit(masked) | 126]) + n.to_bytes(2, "big")


def _boundary(short_below: int, medium_below: int):  # type: ignore[no-untyped-def]
    def header(n: int, masked: bool) -> bytes:
        if n < short_below:
            return bytes([0x81, _bit(masked) | (n & 0x7F)])
        if n < medium_below:
            return bytes([0x81, _bit(masked) | 126]) + (n & 0xFFFF).to_bytes(2, "big")
        return bytes([0x81, _bit(masked) | 127]) + n.to_bytes(8, "big")

    return header


def _little_endian(n: int, masked: bool) -> bytes:
    header = correct_frame_header(n, masked)
    return header[:2] + int.from_bytes(header[2:], "big").to_bytes(len(header) - 2, "little")


def _32_bit_long_length(n: int, masked: bool) -> bytes:
    if n > 0xFFFF:
        return bytes([0x81, _bit(masked) | 127]) + n.to_bytes(4, "big")
    return correct_frame_header(n, masked)


def _mask_bit_in_byte_0(n: int, masked: bool) -> bytes:
    header = correct_frame_header(n, False)
    return bytes([header[0] | (0x40 if masked else 0)]) + header[1:]


def _with_the_mask_key(n: int, masked: bool) -> bytes:
    return correct_frame_header(n, masked) + (b"\x37\xfa\x21\x3d" if masked else b"")


SILENT = (
    "it sent nothing back within 1 s: it is still waiting, for bytes your header announced "
    "or for the rest of the message"
)
NON_MINIMAL = "it echoed it, though a sender must use the shortest length form"


def _sent(n: int) -> str:
    return f"; sent to a lab server's /echo with {n:,} bytes of payload, "


# (a wrong answer, the verdict's message after "frame_header: ", and its hint)
FRAME_WRONG = [
    pytest.param(
        lambda n, m: bytes([0x01]) + correct_frame_header(n, m)[1:],
        "frame_header(5, masked=True) returned 01 85, expected 81 85" + _sent(5) + SILENT,
        "byte 0 is 0x01: set the FIN bit too (0x80 | opcode 1 = 0x81)",
        id="FIN missing",
    ),
    pytest.param(
        lambda n, m: bytes([0x82]) + correct_frame_header(n, m)[1:],
        "frame_header(5, masked=True) returned 82 85, expected 81 85"
        + _sent(5)
        + "it answered a BINARY frame of 5 bytes, not the echo",
        "byte 0 is 0x82: a text frame has opcode 1, so byte 0 is 0x81",
        id="binary opcode",
    ),
    pytest.param(
        lambda n, m: correct_frame_header(n, False),
        "frame_header(5, masked=True) returned 81 05, expected 81 85"
        + _sent(5)
        + "it closed the connection with 1002: protocol error: the peer broke the "
        "WebSocket protocol ('incorrect masking')",
        "the MASK bit (0x80 in byte 1) is missing: the frame is masked",
        id="mask bit never set",
    ),
    pytest.param(
        lambda n, m: correct_frame_header(n, True),
        "frame_header(5, masked=False) returned 81 85, expected 81 05",
        "the MASK bit (0x80 in byte 1) is set, but this frame is not masked",
        id="mask bit always set",
    ),
    pytest.param(
        _mask_bit_in_byte_0,
        "frame_header(5, masked=True) returned c1 05, expected 81 85"
        + _sent(5)
        + "it closed the connection with 1002: protocol error: the peer broke the "
        "WebSocket protocol ('incorrect masking')",
        "byte 0 is 0xc1: it should be 0x81 (FIN = 1, opcode 1 = text)",
        id="mask bit in byte 0",
    ),
    pytest.param(
        _boundary(125, 65536),
        "frame_header(125, masked=True) returned 81 fe 00 7d, expected 81 fd"
        + _sent(125)
        + NON_MINIMAL,
        "byte 1's 7-bit length is 126, but 125 fits in the 7-bit field: "
        "byte 1 holds the length itself, 125",
        id="< 125",
    ),
    pytest.param(
        _boundary(127, 65536),
        "frame_header(126, masked=True) returned 81 fe, expected 81 fe 00 7e" + _sent(126) + SILENT,
        "0 byte(s) after byte 1, but 126 is 126 to 65535: byte 1 says 126 and the next 2 "
        "bytes hold the length",
        id="<= 126",
    ),
    pytest.param(
        _boundary(126, 65535),
        "frame_header(65535, masked=True) returned 81 ff 00 00 00 00 00 00 ff ff, expected "
        "81 fe ff ff" + _sent(65535) + NON_MINIMAL,
        "byte 1's 7-bit length is 127, but 65535 is 126 to 65535: byte 1 says 126 and the "
        "next 2 bytes hold the length",
        id="< 65535",
    ),
    pytest.param(
        _boundary(126, 65537),
        "frame_header(65536, masked=True) returned 81 fe 00 00, expected 81 ff 00 00 00 00 00 "
        "01 00 00" + _sent(65536) + "it closed the connection with 1002: protocol error: "
        "the peer broke the WebSocket protocol ('invalid opcode')",
        "byte 1's 7-bit length is 126, but 65536 is over 65535: byte 1 says 127 and the next "
        "8 bytes hold the length",
        id="<= 65536",
    ),
    pytest.param(
        _only_7_bits,
        "frame_header(126, masked=True) returned 81 fe, expected 81 fe 00 7e" + _sent(126) + SILENT,
        "0 byte(s) after byte 1, but 126 is 126 to 65535: byte 1 says 126 and the next 2 "
        "bytes hold the length",
        id="7 bits only",
    ),
    pytest.param(
        _16_bits_for_everything_long,
        "frame_header(65536, masked=True) raised OverflowError: int too big to convert",
        "65536 is over 65535: byte 1 says 127 and the next 8 bytes hold the length. "
        f"The rule: {FRAME_HINT}",
        id="16 bits for everything",
    ),
    pytest.param(
        _little_endian,
        "frame_header(126, masked=True) returned 81 fe 7e 00, expected 81 fe 00 7e"
        + _sent(126)
        + SILENT,
        "the extended length is little-endian: network byte order is big-endian",
        id="little-endian",
    ),
    pytest.param(
        _32_bit_long_length,
        "frame_header(65536, masked=True) returned 81 ff 00 01 00 00, expected 81 ff 00 00 00 "
        "00 00 01 00 00" + _sent(65536) + "it closed the connection with 1009: message too "
        "big: a message was too large to process ('frame with 281475915850045 bytes exceeds "
        "limit of 1048576 bytes')",
        "4 byte(s) after byte 1, but 65536 is over 65535: byte 1 says 127 and the next 8 "
        "bytes hold the length",
        id="4-byte long length",
    ),
    pytest.param(
        _with_the_mask_key,
        "frame_header(5, masked=True) returned 81 85 37 fa 21 3d, expected 81 85"
        + _sent(5)
        + "it closed the connection with 1002: protocol error: the peer broke the "
        "WebSocket protocol ('incorrect masking')",
        "leave the 4-byte masking key out: only the header before it",
        id="mask key included",
    ),
]


@pytest.mark.parametrize(("answer", "message", "hint"), FRAME_WRONG)
def test_wrong_frame_headers_fail_with_what_the_live_server_did(answer, message, hint) -> None:
    verdict = check_frame_header(answer)
    assert not verdict.passed
    assert verdict.message == f"frame_header: {message}"
    assert verdict.hint == hint
    assert not [
        t for t in threading.enumerate() if t.name in ("rtlab-server", "rtlab-proxy")
    ]  # stopped


def test_frame_header_wrong_types_missing_return_and_not_callable() -> None:
    verdict = check_frame_header(lambda n, m: list(correct_frame_header(n, m)))
    assert verdict.message == (
        "frame_header: frame_header(5, masked=True) returned list [129, 133]: "
        "return bytes, e.g. bytes([0x81, 5])"
    )
    assert verdict.hint == FRAME_HINT

    verdict = check_frame_header(lambda n, m: correct_frame_header(n, m).hex())
    assert "returned str '8185': return bytes" in verdict.message

    verdict = check_frame_header(lambda n, m: None)
    assert "returned None: did you forget `return`?" in verdict.message

    verdict = check_frame_header(b"\x81\x85")  # type: ignore[arg-type]
    assert verdict.message == "frame_header: expected a function, got bytes"


def test_answers_that_never_return_are_crosses_not_hung_cells() -> None:
    def stuck_key(key: str) -> str:
        time.sleep(3)  # as good as endless: longer than the check waits
        return accept_key(key)

    def stuck_header(n: int, masked: bool) -> bytes:
        time.sleep(3)
        return expected_header(n, masked)

    started = time.monotonic()
    verdict = check_accept_key(stuck_key)
    assert verdict.message == (
        f"accept_key: accept_key({RFC_KEY!r}) did not return within 2 s: does a loop never end?"
    )
    verdict = check_frame_header(stuck_header)
    assert verdict.message == (
        "frame_header: frame_header(5, masked=True) did not return within 2 s: "
        "does a loop never end?"
    )
    assert time.monotonic() - started < 5.8


def through_the_lessons_module(key):  # type: ignore[no-untyped-def]
    return core_handshake.accept_key(key)


def through_an_alias(key):  # type: ignore[no-untyped-def]
    from websockets.utils import accept_key as accept

    return accept(key)


def through_a_helper(key):  # type: ignore[no-untyped-def]
    return through_the_lessons_module(key).strip()


def from_the_lessons_101(key):  # type: ignore[no-untyped-def]
    head = core_handshake.build_response(key).decode()
    return head.split("Sec-WebSocket-Accept: ")[1].split("\r\n")[0]


def from_the_lessons_accept(key):  # type: ignore[no-untyped-def]
    request = core_handshake.parse_request(core_handshake.build_request("h", "/", key=key)[0])
    head = core_handshake.accept(request).decode()
    return head.split("Sec-WebSocket-Accept: ")[1].split("\r\n")[0]


@pytest.mark.parametrize(
    "answer",
    [
        through_the_lessons_module,
        through_an_alias,
        through_a_helper,
        from_the_lessons_101,
        from_the_lessons_accept,
    ],
)
def test_calling_a_librarys_accept_key_is_not_an_answer(answer) -> None:  # type: ignore[no-untyped-def]
    verdict = check_accept_key(answer)
    assert verdict.message == "accept_key: right answers, but they come from a library's accept_key"
    assert verdict.hint == YOUR_OWN
