"""The checks for lesson 01's exercises: accept_key(key) and frame_header(length, masked)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from rtlab.checks import Verdict
from rtlab.checks.handshake import (
    ACCEPT_HINT,
    CASES,
    FRAME_HINT,
    KEYS,
    RFC_KEY,
    check_accept_key,
    check_frame_header,
    expected_header,
)
from rtlab.core import frames
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


def test_accept_key_not_done_yet() -> None:
    def learner_copy(key: str) -> str:
        raise NotImplementedError  # your code here

    verdict = check_accept_key(learner_copy)
    assert not verdict.passed
    assert verdict.message == "accept_key: not done yet"
    assert verdict.hint == ACCEPT_HINT
    assert str(verdict).startswith(
        "❌ accept_key: not done yet\n   Hint: base64(SHA-1(key + GUID))"
    )


def _sha1(text: str) -> bytes:
    return hashlib.sha1(text.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("answer", "diagnosis"),
    [
        (lambda key: _b64(_sha1(key)), "the GUID is missing"),
        (lambda key: hashlib.sha1((key + GUID).encode()).hexdigest(), "hex digest"),
        (
            lambda key: _b64(hashlib.sha1((key + GUID).encode()).hexdigest().encode()),
            "base64 of the hex digest",
        ),
        (lambda key: _b64((key + GUID).encode()), "base64 of key + GUID: hash it"),
        (lambda key: _b64(key.encode()), "base64 of the key itself"),
        (lambda key: base64.b64encode(_sha1(key + GUID)), "it returned bytes"),
        (lambda key: str(base64.b64encode(_sha1(key + GUID))), "str(bytes)"),
        (lambda key: _b64(_sha1(GUID + key)), "the GUID goes after the key"),
        (lambda key: _b64(_sha1(key + GUID.lower())), "in capitals"),
        (lambda key: _b64(hashlib.sha256((key + GUID).encode()).digest()), "SHA-256"),
        (
            lambda key: _b64(hashlib.sha1(base64.b64decode(key) + GUID.encode()).digest()),
            "do not decode it first",
        ),
    ],
)
def test_common_accept_key_slips_are_named(answer, diagnosis) -> None:
    verdict = check_accept_key(answer)
    assert not verdict.passed
    assert verdict.message.startswith(f"accept_key: accept_key({RFC_KEY!r}) returned ")
    assert diagnosis in verdict.message
    assert verdict.hint == ACCEPT_HINT
    assert "Hint: " in str(verdict)


def test_an_answer_right_only_for_the_rfc_sample_fails_on_a_random_key() -> None:
    verdict = check_accept_key(lambda key: RFC_ACCEPT)
    assert not verdict.passed
    assert f"accept_key({KEYS[1]!r}) returned {RFC_ACCEPT!r}" in verdict.message
    assert f"expected {accept_key(KEYS[1])!r}" in verdict.message


def test_a_typo_in_the_guid_shows_the_expected_value() -> None:
    typo = GUID.replace("C5AB", "C5BA")
    verdict = check_accept_key(lambda key: _b64(_sha1(key + typo)))
    assert not verdict.passed
    assert f"expected {RFC_ACCEPT!r}" in verdict.message


def test_accept_key_missing_return_exception_and_not_callable() -> None:
    def forgot_return(key: str) -> None:
        _ = _b64(_sha1(key + GUID))

    verdict = check_accept_key(forgot_return)  # type: ignore[arg-type]
    assert not verdict.passed
    assert "returned None: did you forget `return`?" in verdict.message

    verdict = check_accept_key(lambda key: key + 1)  # type: ignore[operator]
    assert not verdict.passed
    assert verdict.message.startswith(f"accept_key: accept_key({RFC_KEY!r}) raised TypeError")
    assert verdict.hint == ACCEPT_HINT

    verdict = check_accept_key("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")  # type: ignore[arg-type]
    assert not verdict.passed
    assert "expected a function, got str" in verdict.message


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


@pytest.mark.parametrize("n", [0, 1, 5, 125, 126, 300, 65535, 65536, 70000])
@pytest.mark.parametrize("masked", [True, False])
def test_expected_header_agrees_with_the_core_encoder(n: int, masked: bool) -> None:
    key = b"\x37\xfa\x21\x3d"
    wire = frames.encode(frames.Frame.text("x" * n), key if masked else None)
    header = frames.decode_header(wire)
    assert header is not None
    assert expected_header(n, masked) == wire[: header.size - (4 if masked else 0)]


def test_a_correct_frame_header_passes() -> None:
    verdict = check_frame_header(correct_frame_header)
    assert verdict.passed
    assert str(verdict) == "✅ frame_header: correct"


def test_a_header_cut_from_the_core_encoder_passes_for_small_cases() -> None:
    # Returning a bytearray is fine too.
    def via_struct(n: int, masked: bool) -> bytearray:
        out = bytearray([0x81])
        bit = 0x80 if masked else 0
        if n <= 125:
            out.append(bit | n)
        elif n <= 0xFFFF:
            out += bytes([bit | 126]) + n.to_bytes(2, "big")
        else:
            out += bytes([bit | 127]) + n.to_bytes(8, "big")
        return out

    assert check_frame_header(via_struct)


def test_frame_header_not_done_yet() -> None:
    def learner_copy(payload_length: int, masked: bool) -> bytes:
        raise NotImplementedError  # your code here

    verdict = check_frame_header(learner_copy)
    assert not verdict.passed
    assert verdict.message == "frame_header: not done yet"
    assert verdict.hint == FRAME_HINT
    assert "126" in verdict.hint and "127" in verdict.hint
    assert str(verdict).startswith("❌ frame_header: not done yet\n   Hint: byte 0 is 0x81")


def _only_7_bits(n: int, masked: bool) -> bytes:
    return bytes([0x81, (0x80 if masked else 0) | (n & 0x7F)])


def _16_bits_for_everything_long(n: int, masked: bool) -> bytes:
    bit = 0x80 if masked else 0
    if n <= 125:
        return bytes([0x81, bit | n])
    return bytes([0x81, bit | 126]) + n.to_bytes(2, "big")


def _off_by_one_at_126(n: int, masked: bool) -> bytes:
    bit = 0x80 if masked else 0
    if n <= 126:
        return bytes([0x81, bit | n])
    return correct_frame_header(n, masked)


def _off_by_one_at_65535(n: int, masked: bool) -> bytes:
    if n == 65535:
        return bytes([0x81, (0x80 if masked else 0) | 127]) + n.to_bytes(8, "big")
    return correct_frame_header(n, masked)


def _little_endian(n: int, masked: bool) -> bytes:
    header = correct_frame_header(n, masked)
    return header[:2] + int.from_bytes(header[2:], "big").to_bytes(len(header) - 2, "little")


@pytest.mark.parametrize(
    ("answer", "where", "diagnosis"),
    [
        (lambda n, m: bytes([0x01]) + correct_frame_header(n, m)[1:], "(5, masked=True)", "FIN"),
        (
            lambda n, m: bytes([0x82]) + correct_frame_header(n, m)[1:],
            "(5, masked=True)",
            "opcode 1",
        ),
        (lambda n, m: correct_frame_header(n, False), "(5, masked=True)", "MASK bit"),
        (lambda n, m: correct_frame_header(n, True), "(5, masked=False)", "not masked"),
        (_only_7_bits, "(126, masked=True)", "the next 2 bytes hold the length"),
        (_16_bits_for_everything_long, "(65536, masked=True)", "OverflowError"),
        (_off_by_one_at_126, "(126, masked=True)", "2 bytes hold the length"),
        (_off_by_one_at_65535, "(65535, masked=True)", "byte 1's 7-bit length is 127"),
        (_little_endian, "(126, masked=True)", "little-endian"),
        (
            lambda n, m: correct_frame_header(n, m) + (b"\x37\xfa\x21\x3d" if m else b""),
            "(5, masked=True)",
            "leave the 4-byte masking key out",
        ),
    ],
)
def test_common_frame_header_slips_are_named(answer, where, diagnosis) -> None:
    verdict = check_frame_header(answer)
    assert not verdict.passed
    assert verdict.message.startswith(f"frame_header: frame_header{where} ")
    assert diagnosis in verdict.message
    assert verdict.hint == FRAME_HINT


def test_wrong_bytes_show_both_headers_in_hex() -> None:
    verdict = check_frame_header(_only_7_bits)
    assert "returned 81 fe, expected 81 fe 00 7e" in verdict.message


def test_frame_header_wrong_types_missing_return_and_not_callable() -> None:
    verdict = check_frame_header(lambda n, m: list(correct_frame_header(n, m)))
    assert not verdict.passed
    assert "returned list [129, 133]: return bytes" in verdict.message

    verdict = check_frame_header(lambda n, m: correct_frame_header(n, m).hex())
    assert not verdict.passed
    assert "returned str '8185': return bytes" in verdict.message

    verdict = check_frame_header(lambda n, m: None)
    assert not verdict.passed
    assert "returned None: did you forget `return`?" in verdict.message

    verdict = check_frame_header(b"\x81\x85")  # type: ignore[arg-type]
    assert not verdict.passed
    assert "expected a function, got bytes" in verdict.message
