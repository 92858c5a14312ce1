"""The event envelope of protocol v1: JSON objects in text frames (docs/protocol.md).

To the server::

    {"event": "send-message", "data": {...}, "ns": "/chat", "id": 7, "mid": "a1"}

``ns`` defaults to ``"/"``; ``id`` asks for an acknowledgement; ``mid`` is the
sender's unique message id, so that a resent event is not delivered twice.

From the server: events ``{"event", "data", "ns"}``, acknowledgements
``{"ack": 7, "data": ...}`` or ``{"ack": 7, "error": {"code", "message"}}``, and
refusals ``{"event": "error", "data": {"code", "message", "ref": 7}}``.

An event or ack whose data holds bytes travels in one binary frame instead
(rtlab.core.attachments): the encoders return ``bytes`` for it, and the decoders
take a ``bytes`` message as such a frame.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rtlab.core import attachments

DEFAULT_NAMESPACE = "/"
MAX_ID = 2**53 - 1  # the largest integer JavaScript represents exactly
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
NAMESPACE = re.compile(r"/[A-Za-z0-9_-]{0,63}")
MID = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII, no spaces
FIELDS = frozenset({"event", "data", "ns", "id", "mid"})
# json made once, not on every call as json.dumps(..., separators=...) does.
JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
JSON_ASCII = json.JSONEncoder(separators=(",", ":"))  # escapes lone surrogates: \ud800


def _once(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """``encoder.encode`` with its C encoder made once: ``encode`` makes a new one on
    every call, 40% of the time it takes for an event. Without the check for circular
    references (a RecursionError instead): what is sent is decoded JSON or the server's
    own values."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (PyPy, say)
        return encoder.encode
    quote = (
        json.encoder.encode_basestring_ascii
        if encoder.ensure_ascii
        else json.encoder.encode_basestring
    )
    options = (encoder.key_separator, encoder.item_separator, encoder.sort_keys)
    chunks = make(None, encoder.default, quote, None, *options, encoder.skipkeys, encoder.allow_nan)

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


json_text = _once(JSON)  # JSON.encode, faster: what every event sent goes through


def json_utf8(value: Any) -> str:
    """Compact JSON text that has a UTF-8 form (to send, to store on disk or in Redis).

    A lone surrogate ("\\ud800" is valid JSON, a client may send it) has none: then
    everything non-ASCII is escaped instead, which JavaScript reads back the same."""
    text = json_text(value)
    return text if has_utf8(text) else JSON_ASCII.encode(value)


def has_utf8(text: str) -> bool:
    """Whether ``text`` has a UTF-8 form (no lone surrogate)."""
    if text.isascii():  # a flag of the string: no encoding needed to know
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class ErrorCode(enum.StrEnum):
    """Why the server refused something; the ``code`` of an error."""

    INVALID_JSON = "invalid_json"  # not JSON at all
    INVALID = "invalid"  # JSON, but not a valid envelope or payload
    UNSUPPORTED = "unsupported"  # a frame type the protocol does not use
    UNKNOWN_EVENT = "unknown_event"  # no handler for this event
    UNKNOWN_NAMESPACE = "unknown_namespace"  # no such namespace on this server
    NOT_CONNECTED = "not_connected"  # the client has not connected to that namespace
    NOT_MEMBER = "not_member"  # the room exists only for its members
    UNKNOWN_USER = "unknown_user"  # a direct message to a user with no session
    FORBIDDEN = "forbidden"  # an access rule said no
    RATE_LIMITED = "rate_limited"  # too many events too fast: retryAfter says when
    LIMIT_EXCEEDED = "limit_exceeded"  # too many rooms, say
    INTERNAL = "internal"  # a handler failed: the server's fault, not the client's
    UNAVAILABLE = "unavailable"  # a service the server needs (Redis) is away: retryAfter


class EnvelopeError(ValueError):
    """A message the server refuses: a code, a clear message and the event's id if known."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        ref: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref
        self.retry_after = retry_after

    def to_json(self, ns: str = DEFAULT_NAMESPACE) -> str:
        """The ``error`` event that answers it."""
        return encode_error(self.code, self.message, self.ref, ns, self.retry_after)


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 4 times as much, per message
class Event:
    """One event: its name, its data, its namespace, and optionally an ack id and a mid."""

    event: str
    data: Any = None
    ns: str = DEFAULT_NAMESPACE
    id: int | None = None
    mid: str | None = None


@dataclass(frozen=True)
class Ack:
    """The answer to an event that carried an ``id``: data, or an error."""

    ack: int
    data: Any = None
    error: dict[str, str] | None = None


_scan = json.JSONDecoder().scan_once  # the C scanner json.loads ends in


def _loads(text: str | bytes) -> Any:
    try:
        if type(text) is str:  # the usual text frame, without json.loads' checks around it
            try:
                value, end = _scan(text, 0)
            except (StopIteration, ValueError):
                pass  # not JSON, or with spaces before it: json.loads says which
            else:
                if end == len(text):
                    return value
        return json.loads(text)
    except RecursionError:
        raise EnvelopeError(ErrorCode.INVALID_JSON, "JSON nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise EnvelopeError(ErrorCode.INVALID_JSON, f"not valid JSON: {error}") from None


def _parse(message: str | bytes | bytearray | memoryview, binary: bool | None) -> Any:
    """A text frame's JSON, or a binary frame's envelope with its attachments in place."""
    if binary is False or (binary is None and isinstance(message, str)):
        return _loads(message)
    try:
        return attachments.unpack(message)
    except attachments.AttachmentError as error:
        raw_id = error.header.get("id") if error.header is not None else None
        ref = raw_id if type(raw_id) is int and 0 <= raw_id <= MAX_ID else None
        raise EnvelopeError(ErrorCode.INVALID, f"binary frame: {error.message}", ref) from None


def _ack_id(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= MAX_ID:
        raise EnvelopeError(
            ErrorCode.INVALID, f"id must be a whole number from 0 to {MAX_ID}, got {value!r:.40}"
        )
    return value


_NAMES: set[str] = set()  # event names seen valid: most messages are one of a few
_NAMES_KEPT = 1024  # at most, then forgotten all at once


def _valid_name(name: str) -> bool:
    """Whether ``name`` is an event name; remembered when it is (see ``_NAMES``)."""
    if not NAME.fullmatch(name):
        return False
    if len(_NAMES) >= _NAMES_KEPT:
        _NAMES.clear()
    _NAMES.add(name)
    return True


def decode_event(text: str | bytes, *, binary: bool | None = None) -> Event:
    """Parse and validate a message sent to the server; raise EnvelopeError if it is bad.

    ``bytes`` are a binary frame (JSON envelope and attachments) unless ``binary=False``
    says they are a text frame's UTF-8."""
    message = _parse(text, binary)
    if not isinstance(message, dict):
        raise EnvelopeError(
            ErrorCode.INVALID, f"a message must be a JSON object, got {type(message).__name__}"
        )
    raw_id = message.get("id")
    ref = raw_id if type(raw_id) is int and 0 <= raw_id <= MAX_ID else None
    try:
        ack_id = _ack_id(raw_id)
        if not FIELDS.issuperset(message):
            extra = sorted(set(message) - FIELDS)
            raise EnvelopeError(ErrorCode.INVALID, f"unexpected field {extra[0]!r:.40}")
        name = message.get("event")
        if type(name) is not str or (name not in _NAMES and not _valid_name(name)):
            raise EnvelopeError(
                ErrorCode.INVALID,
                f"event must be a name of 1 to 64 letters, digits or _.:- , got {name!r:.40}",
            )
        ns = message.get("ns", DEFAULT_NAMESPACE)
        if ns is not DEFAULT_NAMESPACE and (not isinstance(ns, str) or not NAMESPACE.fullmatch(ns)):
            raise EnvelopeError(ErrorCode.INVALID, f"ns must look like '/chat', got {ns!r:.40}")
        mid = message.get("mid")
        if mid is not None and (not isinstance(mid, str) or not MID.fullmatch(mid)):
            raise EnvelopeError(
                ErrorCode.INVALID, f"mid must be 1 to 64 printable characters, got {mid!r:.40}"
            )
    except EnvelopeError as error:
        error.ref = ref
        raise
    return Event(name, message.get("data"), ns, ack_id, mid)


def decode_reply(text: str | bytes, *, binary: bool | None = None) -> Event | Ack:
    """Parse a message from the server (what a client receives); ``bytes`` as in
    :func:`decode_event`."""
    message = _parse(text, binary)
    if not isinstance(message, dict):
        raise EnvelopeError(ErrorCode.INVALID, "a message must be a JSON object")
    if "ack" in message:
        error = message.get("error")
        return Ack(_ack_id(message["ack"]) or 0, message.get("data"), error)
    name = message.get("event")
    if not isinstance(name, str):
        raise EnvelopeError(ErrorCode.INVALID, f"event must be a string, got {name!r:.40}")
    return Event(name, message.get("data"), message.get("ns", DEFAULT_NAMESPACE))


def _dumps(message: dict[str, Any]) -> str | bytes:
    try:
        return json_utf8(message)
    except TypeError:
        if attachments.has_bytes(message):  # checked only here: plain JSON pays nothing
            return attachments.pack(message)
        raise


def encode_event(
    event: str,
    data: Any = None,
    ns: str = DEFAULT_NAMESPACE,
    id: int | None = None,
    mid: str | None = None,
) -> str | bytes:
    """An event as sent on the wire; ``id`` and ``mid`` only when given.

    Text (JSON) unless ``data`` holds bytes: then one binary frame (``bytes``)."""
    message: dict[str, Any] = {"event": event, "data": data, "ns": ns}
    if id is not None:
        message["id"] = id
    if mid is not None:
        message["mid"] = mid
    return _dumps(message)


@functools.lru_cache(maxsize=256)  # asked for on every room message with Redis
def event_parts(event: str, ns: str = DEFAULT_NAMESPACE) -> tuple[str, str]:
    """What goes before and after an event's data already encoded as JSON text.

    ``prefix + data + suffix`` is ``encode_event(event, json.loads(data), ns)``: for data
    encoded elsewhere (kept in Redis, numbered there by a script) and sent as it is."""
    head = JSON.encode({"event": event, "data": None, "ns": ns})
    cut = head.index(',"data":null,') + len(',"data":')
    return head[:cut], head[cut + len("null") :]


class Written(dict[str, Any]):
    """A dict with its JSON text written out already, in ``text`` (set it as you make
    it): ``encode_ack`` puts that in as it is. For the answer sent with every chat message
    (room_message.py); to everything else it is a dict."""

    __slots__ = ("text",)
    text: str


def encode_ack(id: int, data: Any = None) -> str | bytes:
    if type(data) is Written:
        return f'{{"ack":{id},"data":{data.text}}}'
    return _dumps({"ack": id, "data": data})


def _error(code: ErrorCode, message: str, retry_after: float | None) -> dict[str, Any]:
    data: dict[str, Any] = {"code": str(code), "message": message}
    if retry_after is not None:
        data["retryAfter"] = round(retry_after, 3)  # seconds
    return data


def encode_ack_error(
    id: int, code: ErrorCode, message: str, retry_after: float | None = None
) -> str:
    return _dumps({"ack": id, "error": _error(code, message, retry_after)})


def encode_error(
    code: ErrorCode,
    message: str,
    ref: int | None = None,
    ns: str = DEFAULT_NAMESPACE,
    retry_after: float | None = None,
) -> str:
    """The ``error`` event; ``ref`` is the id of the event it answers, when it had one."""
    data = _error(code, message, retry_after)
    if ref is not None:
        data["ref"] = ref
    return encode_event("error", data, ns)
