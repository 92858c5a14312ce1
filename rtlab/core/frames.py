"""WebSocket frames (RFC 6455 §5) and close codes (§7.4), as pure functions on bytes.

After the handshake, every message travels in frames. A frame header is 2 to
14 bytes (§5.2)::

     byte 0:  FIN RSV1 RSV2 RSV3 opcode(4 bits)
     byte 1:  MASK payload-length(7 bits)
     then:    16-bit length if the 7 bits say 126, 64-bit length if 127
     then:    4-byte masking key if MASK is set
     then:    the payload (XORed with the key if masked)

Clients must mask every frame they send; servers must not (§5.1).
"""

import enum
import os
from dataclasses import dataclass
from typing import Self

__all__ = [
    "CLOSE_MEANINGS",
    "CloseCode",
    "Frame",
    "FrameError",
    "Header",
    "Opcode",
    "decode",
    "decode_close",
    "decode_header",
    "describe_close",
    "encode",
    "encode_close",
    "generate_mask",
    "mask",
]

BytesLike = bytes | bytearray | memoryview

MAX_CONTROL_PAYLOAD = 125  # §5.5: control frames carry at most 125 bytes


class FrameError(ValueError):
    """A frame (or close payload) breaks RFC 6455; the message says how."""


class Opcode(enum.IntEnum):
    """What a frame carries (§5.2, §11.8). Values 3-7 and 11-15 are reserved."""

    CONTINUATION = 0x0  # the next fragment of a TEXT or BINARY message
    TEXT = 0x1  # UTF-8 text
    BINARY = 0x2  # arbitrary bytes
    CLOSE = 0x8  # start or confirm the closing handshake
    PING = 0x9  # "are you there?"
    PONG = 0xA  # "yes", echoing the ping's payload

    @property
    def is_control(self) -> bool:
        """True for CLOSE, PING and PONG: opcodes with the high bit set (§5.5)."""
        return self >= 0x8


class CloseCode(enum.IntEnum):
    """Close codes registered by RFC 6455 §7.4.1 and IANA."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    # 1004 is reserved.
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


# One line per registered code. "never sent" codes only report what happened
# locally; §7.4.1 forbids putting them in a close frame.
CLOSE_MEANINGS: dict[int, str] = {
    1000: "normal closure: the purpose of the connection was fulfilled",
    1001: "going away: the server is shutting down or the browser left the page",
    1002: "protocol error: the peer broke the WebSocket protocol",
    1003: "unsupported data: a kind of data the endpoint cannot accept (e.g. binary)",
    1004: "reserved: no meaning yet; never sent",
    1005: "no status received: the close frame had no code (never sent)",
    1006: "abnormal closure: the connection dropped without a close frame (never sent)",
    1007: "invalid data: the payload did not match the message type (e.g. bad UTF-8)",
    1008: "policy violation: a message broke the endpoint's rules",
    1009: "message too big: a message was too large to process",
    1010: "mandatory extension: the client needed an extension the server did not offer",
    1011: "internal error: an unexpected condition stopped the server",
    1012: "service restart: the server is restarting; reconnect later",
    1013: "try again later: the server is overloaded; reconnect later",
    1014: "bad gateway: a gateway or proxy got an invalid upstream response",
    1015: "TLS handshake failure: the TLS handshake failed (never sent)",
}


def describe_close(code: int) -> str:
    """Explain a close code in one line, including the ranges of §7.4.2."""
    if code in CLOSE_MEANINGS:
        return f"{code}: {CLOSE_MEANINGS[code]}"
    if 3000 <= code <= 3999:
        return f"{code}: registered for libraries/frameworks (IANA)"
    if 4000 <= code <= 4999:
        return f"{code}: private use by applications"
    if 1016 <= code <= 2999:
        return f"{code}: invalid (reserved for future versions of the protocol)"
    return f"{code}: invalid (not a WebSocket close code)"


def _is_sendable(code: int) -> bool:
    """True if ``code`` may appear in a close frame (§7.4.1, §7.4.2)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


@dataclass(frozen=True)
class Frame:
    """One WebSocket frame, with its payload unmasked.

    The MASK bit, length and masking key are not stored: :func:`encode`
    computes them and :func:`decode` reports whether the frame was masked.
    """

    opcode: Opcode
    payload: bytes = b""
    fin: bool = True  # last fragment of its message
    rsv1: bool = False  # RSV bits: 0 unless an extension (e.g. compression) says so
    rsv2: bool = False
    rsv3: bool = False

    def __post_init__(self) -> None:
        try:
            opcode = Opcode(self.opcode)
        except ValueError:
            value = int(self.opcode)
            if not 0 <= value <= 0xF:
                raise FrameError(f"opcode must fit in 4 bits, got {value}") from None
            raise FrameError(f"reserved opcode 0x{value:x}") from None
        if isinstance(self.payload, str):
            raise TypeError("payload must be bytes; use Frame.text() for str")
        # frozen=True forbids normal assignment, even here.
        object.__setattr__(self, "opcode", opcode)
        object.__setattr__(self, "payload", bytes(self.payload))

    def validate(self) -> None:
        """Raise :class:`FrameError` if this frame breaks the rules for control frames (§5.5)."""
        if self.opcode.is_control:
            if not self.fin:
                raise FrameError(f"control frame {self.opcode.name} must not be fragmented")
            if len(self.payload) > MAX_CONTROL_PAYLOAD:
                raise FrameError(
                    f"control frame {self.opcode.name} payload of {len(self.payload)} bytes "
                    f"exceeds {MAX_CONTROL_PAYLOAD} bytes"
                )

    @classmethod
    def text(cls, data: str, *, fin: bool = True) -> Self:
        """A TEXT frame carrying ``data`` encoded as UTF-8."""
        return cls(Opcode.TEXT, data.encode("utf-8"), fin)

    @classmethod
    def binary(cls, data: bytes, *, fin: bool = True) -> Self:
        """A BINARY frame carrying ``data``."""
        return cls(Opcode.BINARY, data, fin)

    @classmethod
    def close(cls, code: int | None = 1000, reason: str = "") -> Self:
        """A CLOSE frame; ``code=None`` sends an empty payload (read as 1005)."""
        if code is None:
            if reason:
                raise FrameError("a close reason needs a close code")
            return cls(Opcode.CLOSE)
        return cls(Opcode.CLOSE, encode_close(code, reason))

    @classmethod
    def ping(cls, data: bytes = b"") -> Self:
        """A PING frame; the peer answers with a PONG carrying the same bytes (§5.5.2)."""
        return cls(Opcode.PING, data)

    @classmethod
    def pong(cls, data: bytes = b"") -> Self:
        """A PONG frame (§5.5.3)."""
        return cls(Opcode.PONG, data)

    def __repr__(self) -> str:
        payload = repr(self.payload)
        if len(self.payload) > 40:  # keep notebook output readable
            payload = f"{self.payload[:24]!r}... ({len(self.payload)} bytes)"
        flags = "".join(
            f", {name}=True" for name in ("rsv1", "rsv2", "rsv3") if getattr(self, name)
        )
        return f"Frame(Opcode.{self.opcode.name}, {payload}, fin={self.fin}{flags})"


@dataclass(frozen=True)
class Header:
    """The fields of a frame header (§5.2), as found on the wire."""

    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int  # raw 4-bit value; may be reserved
    masked: bool
    length: int  # payload length in bytes
    mask_key: bytes | None
    size: int  # header length in bytes: 2 to 14

    @property
    def frame_size(self) -> int:
        """Header plus payload: the bytes this whole frame takes on the wire."""
        return self.size + self.length


def decode_header(data: BytesLike) -> Header | None:
    """Read a frame header from the start of ``data``; None if more bytes are needed."""
    if len(data) < 2:
        return None
    first, second = data[0], data[1]
    length = second & 0x7F
    size = 2
    # §5.2 "Payload length": 0-125 is the length; 126 means "read 16 bits";
    # 127 means "read 64 bits", whose most significant bit must be 0.
    # (The RFC wants the shortest form; like most receivers we accept longer ones.)
    if length == 126:
        if len(data) < 4:
            return None
        length = int.from_bytes(data[2:4], "big")
        size = 4
    elif length == 127:
        if len(data) < 10:
            return None
        length = int.from_bytes(data[2:10], "big")
        if length >> 63:
            raise FrameError("64-bit payload length has its most significant bit set")
        size = 10
    masked = bool(second & 0x80)
    mask_key = None
    if masked:
        if len(data) < size + 4:
            return None
        mask_key = bytes(data[size : size + 4])
        size += 4
    return Header(
        fin=bool(first & 0x80),
        rsv1=bool(first & 0x40),
        rsv2=bool(first & 0x20),
        rsv3=bool(first & 0x10),
        opcode=first & 0x0F,
        masked=masked,
        length=length,
        mask_key=mask_key,
        size=size,
    )


def mask(data: BytesLike, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated (§5.3); masking twice unmasks.

    Instead of a Python loop over bytes, this XORs two big integers, which is
    fast even for megabytes.
    """
    if len(key) != 4:
        raise FrameError(f"mask key must be 4 bytes, got {len(key)}")
    n = len(data)
    if n == 0:
        return b""
    key_stream = (bytes(key) * (n // 4 + 1))[:n]  # byte i is XORed with key[i % 4]
    masked = int.from_bytes(data, "big") ^ int.from_bytes(key_stream, "big")
    return masked.to_bytes(n, "big")


def generate_mask() -> bytes:
    """A fresh random masking key; §5.3 requires one that peers cannot predict."""
    return os.urandom(4)


def encode(frame: Frame, mask_key: bytes | None = None) -> bytes:
    """Serialize ``frame``; mask it with ``mask_key`` if given (clients must, servers must not)."""
    frame.validate()
    first = (
        (0x80 if frame.fin else 0)
        | (0x40 if frame.rsv1 else 0)
        | (0x20 if frame.rsv2 else 0)
        | (0x10 if frame.rsv3 else 0)
        | frame.opcode
    )
    mask_bit = 0x80 if mask_key is not None else 0
    n = len(frame.payload)
    # §5.2: use the shortest length encoding that fits.
    if n <= 125:
        header = bytes([first, mask_bit | n])
    elif n <= 0xFFFF:
        header = bytes([first, mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([first, mask_bit | 127]) + n.to_bytes(8, "big")
    if mask_key is None:
        return header + frame.payload
    return header + bytes(mask_key) + mask(frame.payload, mask_key)


def decode(data: BytesLike, *, max_size: int | None = None) -> tuple[Frame, bool, int] | None:
    """Parse one frame from the start of ``data``.

    Returns ``(frame, was_masked, bytes_consumed)`` with the payload unmasked,
    or None when ``data`` does not hold a whole frame yet. Raises
    :class:`FrameError` as soon as the header shows a broken or oversized frame,
    before its payload arrives.
    """
    header = decode_header(data)
    if header is None:
        return None
    try:
        opcode = Opcode(header.opcode)
    except ValueError:
        raise FrameError(f"reserved opcode 0x{header.opcode:x}") from None
    if opcode.is_control:
        if not header.fin:
            raise FrameError(f"control frame {opcode.name} must not be fragmented")
        if header.length > MAX_CONTROL_PAYLOAD:
            raise FrameError(
                f"control frame {opcode.name} payload of {header.length} bytes "
                f"exceeds {MAX_CONTROL_PAYLOAD} bytes"
            )
    if max_size is not None and header.length > max_size:
        raise FrameError(f"frame payload of {header.length} bytes exceeds max_size {max_size}")
    end = header.frame_size
    if len(data) < end:
        return None
    payload = data[header.size : end]
    payload = mask(payload, header.mask_key) if header.mask_key is not None else bytes(payload)
    frame = Frame(opcode, payload, header.fin, header.rsv1, header.rsv2, header.rsv3)
    return frame, header.masked, end


def encode_close(code: int = 1000, reason: str = "") -> bytes:
    """Build a close frame's payload: 2-byte code then UTF-8 reason (§5.5.1)."""
    if not _is_sendable(code):
        raise FrameError(f"close code {code} cannot be sent: {describe_close(code)}")
    try:
        raw = reason.encode("utf-8")
    except UnicodeEncodeError:
        raise FrameError(f"close reason {reason!r} cannot be encoded as UTF-8") from None
    if 2 + len(raw) > MAX_CONTROL_PAYLOAD:
        raise FrameError(
            f"close reason of {len(raw)} bytes is too long: at most "
            f"{MAX_CONTROL_PAYLOAD - 2} bytes of UTF-8 fit in a control frame"
        )
    return code.to_bytes(2, "big") + raw


def decode_close(payload: BytesLike) -> tuple[int, str]:
    """Read ``(code, reason)`` from a close frame's payload (§5.5.1, §7.1.5).

    An empty payload means "no code" and reads as 1005 (NO_STATUS_RCVD).
    """
    if len(payload) == 0:
        return 1005, ""  # CloseCode.NO_STATUS_RCVD
    if len(payload) == 1:
        raise FrameError("close payload of 1 byte: the close code needs 2 bytes")
    if len(payload) > MAX_CONTROL_PAYLOAD:
        raise FrameError(
            f"close payload of {len(payload)} bytes exceeds {MAX_CONTROL_PAYLOAD} bytes"
        )
    code = int.from_bytes(payload[:2], "big")
    if not _is_sendable(code):
        raise FrameError(f"invalid close code {code}: {describe_close(code)}")
    try:
        reason = bytes(payload[2:]).decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError("close reason is not valid UTF-8") from None
    return code, reason
