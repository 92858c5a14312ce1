"""Binary attachments: an event whose data holds bytes travels in one binary frame.

The frame (docs/protocol.md, "Binary payloads")::

    +----------------+----------------------------+---------+---------+-----
    | N: 4 bytes, BE | N bytes: the JSON envelope | bytes 0 | bytes 1 | ...
    +----------------+----------------------------+---------+---------+-----

The envelope is the usual object plus ``"bin": [len0, len1, ...]``; each bytes
value inside it is replaced by the placeholder ``{"_bin": i}``, as Socket.IO
replaces them by ``{"_placeholder": true, "num": i}``. No base64: the bytes
travel as they are, after the header.

:func:`pack` and :func:`unpack` are pure: bytes in, bytes out, nothing else.
"""

from __future__ import annotations

import json
import struct
from typing import Any

PLACEHOLDER = "_bin"  # the one key of a placeholder object
HEADER = struct.Struct(">I")  # the envelope's length, 4 bytes, big-endian
BINARY = (bytes, bytearray, memoryview)


class AttachmentError(ValueError):
    """A binary frame that does not follow the format; ``header`` is its envelope, if readable."""

    def __init__(self, message: str, header: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.header = header


def _is_placeholder(value: Any) -> bool:
    return type(value) is dict and len(value) == 1 and PLACEHOLDER in value


def has_bytes(value: Any) -> bool:
    """Whether ``value`` holds bytes (``bytes``, ``bytearray``, ``memoryview``) anywhere."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, BINARY):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _extract(value: Any, attachments: list[bytes]) -> Any:
    """A copy of ``value`` with each bytes value replaced by its placeholder, in order."""
    if isinstance(value, BINARY):
        attachments.append(bytes(value))
        return {PLACEHOLDER: len(attachments) - 1}
    if isinstance(value, dict):
        if _is_placeholder(value):
            raise ValueError(
                f"an object whose only key is {PLACEHOLDER!r} is reserved for attachments"
            )
        return {key: _extract(item, attachments) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_extract(item, attachments) for item in value]
    return value


def _dumps(message: dict[str, Any]) -> bytes:
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate: escaped, as the text envelope does
        return json.dumps(message, separators=(",", ":")).encode()


def pack(message: dict[str, Any]) -> bytes:
    """One binary frame for ``message``, whose values may hold bytes anywhere.

    Raises ``ValueError`` for a dict that looks like a placeholder (``{"_bin": ...}``)
    and ``TypeError`` for values JSON cannot carry, as :func:`json.dumps` does.
    """
    if "bin" in message:
        raise ValueError("'bin' is the attachment list's field: an envelope cannot use it")
    attachments: list[bytes] = []
    envelope = _extract(message, attachments)
    envelope["bin"] = [len(a) for a in attachments]
    header = _dumps(envelope)
    return b"".join([HEADER.pack(len(header)), header, *attachments])


def _lengths(header: dict[str, Any]) -> list[int]:
    lengths = header.pop("bin", None)
    if type(lengths) is not list or not all(type(n) is int and n >= 0 for n in lengths):
        raise AttachmentError(
            f"'bin' must be a list of attachment lengths in bytes, got {lengths!r:.40}", header
        )
    return lengths


def _insert(header: dict[str, Any], attachments: list[bytes]) -> dict[str, Any]:
    """Replace each placeholder by its attachment, in place; each used exactly once."""
    used = [False] * len(attachments)
    stack: list[Any] = [header]
    while stack:
        container = stack.pop()
        keys = container.keys() if isinstance(container, dict) else range(len(container))
        for key in keys:
            value = container[key]
            if _is_placeholder(value):
                index = value[PLACEHOLDER]
                if type(index) is not int or not 0 <= index < len(attachments):
                    raise AttachmentError(
                        f"placeholder {{{PLACEHOLDER!r}: {index!r:.20}}} names no attachment "
                        f"(there are {len(attachments)})",
                        header,
                    )
                if used[index]:
                    raise AttachmentError(f"attachment {index} is used twice", header)
                used[index] = True
                container[key] = attachments[index]
            elif isinstance(value, dict | list):
                stack.append(value)
    if not all(used):
        raise AttachmentError(
            f"attachment {used.index(False)} is not used by any placeholder", header
        )
    return header


def unpack(frame: bytes | bytearray | memoryview) -> dict[str, Any]:
    """The message a binary frame carries, with its bytes back in place of the placeholders.

    Raises :class:`AttachmentError` saying what is wrong with a malformed frame.
    """
    view = memoryview(frame)
    if len(view) < HEADER.size:
        raise AttachmentError(
            f"a binary frame starts with the envelope's length in 4 bytes, got {len(view)} bytes"
        )
    (length,) = HEADER.unpack_from(view)
    end = HEADER.size + length
    if end > len(view):
        raise AttachmentError(
            f"the envelope's length is {length} bytes, but only {len(view) - HEADER.size} follow"
        )
    try:
        header = json.loads(bytes(view[HEADER.size : end]))
    except RecursionError:
        raise AttachmentError("the envelope is JSON nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise AttachmentError(f"the envelope is not valid JSON: {error}") from None
    if not isinstance(header, dict):
        raise AttachmentError(f"the envelope must be a JSON object, got {type(header).__name__}")
    lengths = _lengths(header)
    if sum(lengths) != len(view) - end:
        raise AttachmentError(
            f"'bin' says {sum(lengths)} bytes of attachments, but {len(view) - end} follow "
            "the envelope",
            header,
        )
    attachments = []
    start = end
    for n in lengths:
        attachments.append(bytes(view[start : start + n]))
        start += n
    return _insert(header, attachments)
