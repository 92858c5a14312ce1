"""The WebSocket opening handshake (RFC 6455 §4), as pure functions on bytes.

A WebSocket connection starts life as HTTP/1.1. The client sends a ``GET``
request asking to *upgrade* the connection; the server answers
``101 Switching Protocols`` and proves that it understood the request by hashing
the client's random ``Sec-WebSocket-Key`` into ``Sec-WebSocket-Accept``. After
the blank line that ends the response, both sides speak WebSocket frames
(see :mod:`rtlab.core.frames`).

Nothing here touches the network: builders return ``bytes`` to send, parsers
take the ``bytes`` received and raise :class:`HandshakeError` with a message
that says exactly what is wrong.
"""

import base64
import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "GUID",
    "HandshakeError",
    "Headers",
    "Request",
    "Response",
    "accept",
    "accept_key",
    "build_rejection",
    "build_request",
    "build_response",
    "generate_key",
    "parse_request",
    "parse_response",
    "split_head",
]

# RFC 6455 §1.3: a fixed string that only a WebSocket server would append to
# the client's key, so that an ordinary HTTP server cannot answer by accident.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CRLF = "\r\n"
END_OF_HEAD = b"\r\n\r\n"  # the empty line that ends an HTTP head

# RFC 9110 §5.1 / RFC 7230 §3.2: header names are "tokens" ...
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
# ... and values are tab, visible ASCII, space, or opaque bytes 0x80-0xFF.
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
# A request target (path and query) is visible ASCII without spaces.
_TARGET = re.compile(r"[\x21-\x7e]+")


class HandshakeError(ValueError):
    """The handshake is invalid; the message says what is wrong.

    ``response`` holds the server's answer when :func:`parse_response` fails
    because the server refused the upgrade (for example ``403 Forbidden``),
    so that its body can be shown.
    """

    def __init__(self, message: str, *, response: "Response | None" = None) -> None:
        super().__init__(message)
        self.response = response


def accept_key(key: str) -> str:
    """Return the ``Sec-WebSocket-Accept`` value for a ``Sec-WebSocket-Key`` (§4.2.2).

    base64(SHA-1(key + GUID)). The key is used as sent (its base64 text),
    not decoded.
    """
    digest = hashlib.sha1((key + GUID).encode()).digest()
    return base64.b64encode(digest).decode("ascii")


def generate_key() -> str:
    """Return a fresh ``Sec-WebSocket-Key``: base64 of 16 random bytes (§4.1)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


class Headers:
    """An immutable list of HTTP header fields with case-insensitive look-up.

    Order and repeated names are kept, as they were on the wire::

        >>> h = Headers([("Host", "example.com"), ("Upgrade", "websocket")])
        >>> h.get("upgrade")
        'websocket'
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: tuple[tuple[str, str], ...] = tuple((str(n), str(v)) for n, v in items)

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of header ``name``, or ``default``."""
        wanted = name.lower()
        for key, value in self._items:
            if key.lower() == wanted:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Return every value of header ``name``, in order (maybe empty)."""
        wanted = name.lower()
        return [value for key, value in self._items if key.lower() == wanted]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(key.lower() == name.lower() for key, _ in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"

    def __str__(self) -> str:
        """The headers as they appear on the wire, one per line."""
        return "\n".join(f"{name}: {value}" for name, value in self._items)


@dataclass(frozen=True)
class Request:
    """A parsed handshake request: ``GET <path> HTTP/1.1`` and its headers."""

    method: str
    path: str
    headers: Headers

    @property
    def key(self) -> str | None:
        """The client's ``Sec-WebSocket-Key``."""
        return self.headers.get("Sec-WebSocket-Key")

    @property
    def protocols(self) -> list[str]:
        """Subprotocols the client offers (``Sec-WebSocket-Protocol``), in order."""
        return _split_list(self.headers.get_all("Sec-WebSocket-Protocol"))


@dataclass(frozen=True)
class Response:
    """A parsed handshake response: status line, headers and (for errors) body."""

    status: int
    reason: str
    headers: Headers
    body: bytes = b""

    @property
    def protocol(self) -> str | None:
        """The subprotocol the server selected, if any."""
        return self.headers.get("Sec-WebSocket-Protocol")


# --------------------------------------------------------------------------
# Building messages (what a client or server sends)
# --------------------------------------------------------------------------


def build_request(
    host: str,
    path: str = "/",
    key: str | None = None,
    *,
    origin: str | None = None,
    protocols: Sequence[str] = (),
    extra_headers: Iterable[tuple[str, str]] = (),
) -> tuple[bytes, str]:
    """Build a client's opening handshake (§4.1); return ``(request bytes, key)``.

    ``host`` is the ``Host`` header (``"example.com"`` or ``"127.0.0.1:8765"``),
    ``path`` the resource with an optional query. Without ``key``, a random one
    is generated; keep it to check the server's answer with :func:`parse_response`.
    """
    if key is None:
        key = generate_key()
    if not _TARGET.fullmatch(path):
        raise ValueError(
            f"invalid request path {path!r}: percent-encode spaces and non-ASCII characters"
        )
    headers = [
        ("Host", host),
        ("Upgrade", "websocket"),  # §4.1 item 5: which protocol we switch to
        ("Connection", "Upgrade"),  # item 6: this hop must act on Upgrade
        ("Sec-WebSocket-Key", key),  # item 7: a nonce the server must hash
        ("Sec-WebSocket-Version", "13"),  # item 9: RFC 6455 is version 13
    ]
    if origin is not None:
        headers.append(("Origin", origin))  # item 8: sent by browsers
    if protocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))  # item 10
    headers.extend(extra_headers)
    return _build_head(f"GET {path} HTTP/1.1", headers), key


def build_response(
    key: str,
    *,
    protocol: str | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """Build the server's ``101 Switching Protocols`` answer to ``key`` (§4.2.2)."""
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ]
    if protocol is not None:
        headers.append(("Sec-WebSocket-Protocol", protocol))
    headers.extend(extra_headers)
    return _build_head("HTTP/1.1 101 Switching Protocols", headers)


def build_rejection(
    status: int,
    reason: str,
    body: str = "",
    *,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """Build a plain-text HTTP error that refuses the upgrade (e.g. 400, 401, 403, 426).

    RFC 6455 §4.2.2 lets a server refuse with any HTTP status; the connection
    is then closed (``Connection: close``). For a wrong version, §4.4 asks for
    426 with ``Sec-WebSocket-Version: 13``: pass it in ``extra_headers``.
    """
    if not 300 <= status <= 599:
        raise ValueError(f"a rejection needs a status from 300 to 599, got {status}")
    payload = body.encode("utf-8")
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(payload))),
        ("Connection", "close"),
        *extra_headers,
    ]
    return _build_head(f"HTTP/1.1 {status} {reason}", headers) + payload


def accept(request: Request, *, protocol: str | None = None) -> bytes:
    """Build the 101 response for a request validated by :func:`parse_request`.

    ``protocol``, if given, must be one of the subprotocols the client offered.
    """
    key = request.key
    if key is None:
        raise HandshakeError("missing Sec-WebSocket-Key header")
    if protocol is not None and protocol not in request.protocols:
        raise ValueError(
            f"subprotocol {protocol!r} was not offered by the client (offered: {request.protocols})"
        )
    return build_response(key, protocol=protocol)


# --------------------------------------------------------------------------
# Parsing messages (what a server or client receives)
# --------------------------------------------------------------------------


def split_head(buffer: bytes) -> tuple[bytes, bytes] | None:
    """Split ``buffer`` after the first empty line: ``(head, rest)``, or None if not there yet.

    ``head`` ends with the blank line (``b"\\r\\n\\r\\n"``); ``rest`` is what the
    peer sent after it (for a WebSocket, the first frames).
    """
    end = buffer.find(END_OF_HEAD)
    if end < 0:
        return None
    end += len(END_OF_HEAD)
    return bytes(buffer[:end]), bytes(buffer[end:])


def parse_request(data: bytes) -> Request:
    """Parse and validate a client's opening handshake (§4.2.1).

    Bytes after the blank line are ignored. Raises :class:`HandshakeError`.
    """
    head, _ = _require_head(data, "request")
    start, headers = _parse_head(head)

    # §4.2.1 item 1: "An HTTP/1.1 or higher GET request". In practice that is
    # HTTP/1.1: over HTTP/2, WebSockets use a different handshake (RFC 8441).
    parts = start.split(" ")
    if len(parts) != 3 or not all(parts):
        raise HandshakeError(f"malformed request line: {start!r}")
    method, path, version = parts
    if method != "GET":
        raise HandshakeError(f"method must be GET, got {method!r}")
    if version != "HTTP/1.1":
        raise HandshakeError(f"HTTP version must be HTTP/1.1, got {version!r}")
    if not _TARGET.fullmatch(path):
        raise HandshakeError(f"malformed request path: {path!r}")

    # Item 2: a Host header.
    if "Host" not in headers:
        raise HandshakeError("missing Host header")
    # Items 3 and 4: Upgrade and Connection are comma-separated token lists.
    _require_token(headers, "Upgrade", "websocket")
    _require_token(headers, "Connection", "upgrade")
    # Item 5: a nonce that decodes to exactly 16 bytes.
    key = _single(headers, "Sec-WebSocket-Key")
    if not _is_valid_key(key):
        raise HandshakeError(f"Sec-WebSocket-Key must be base64 of 16 bytes, got {key!r}")
    # Item 6: version 13 (§4.4: else answer 426 with Sec-WebSocket-Version: 13).
    version_value = _single(headers, "Sec-WebSocket-Version")
    if version_value != "13":
        raise HandshakeError(f"Sec-WebSocket-Version must be 13, got {version_value!r}")
    return Request(method, path, headers)


def parse_response(data: bytes, key: str) -> Response:
    """Parse and validate the server's answer to a request sent with ``key`` (§4.1).

    Raises :class:`HandshakeError`; when the server refused (status other than
    101), the error's ``response`` holds the status, headers and body.
    """
    head, rest = _require_head(data, "response")
    start, headers = _parse_head(head)

    version, _, after = start.partition(" ")
    code, _, reason = after.partition(" ")
    if version != "HTTP/1.1" or not (len(code) == 3 and code.isdigit()):
        raise HandshakeError(f"malformed status line: {start!r}")
    status = int(code)

    if status != 101:
        response = Response(status, reason, headers, _body(headers, rest))
        raise HandshakeError(
            f"expected status 101, got {status} {reason}".rstrip(), response=response
        )
    _require_token(headers, "Upgrade", "websocket")
    _require_token(headers, "Connection", "upgrade")
    # The proof that the server speaks WebSocket and read *our* request.
    got = _single(headers, "Sec-WebSocket-Accept")
    expected = accept_key(key)
    if got != expected:
        raise HandshakeError(f"Sec-WebSocket-Accept mismatch: expected {expected}, got {got}")
    return Response(status, reason, headers)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _build_head(start_line: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """Join a start line and headers with CRLF and end with the blank line."""
    lines = [start_line]
    for name, value in headers:
        # Refuse CR/LF in names or values: they would inject extra headers.
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"invalid header name: {name!r}")
        if not _VALUE.fullmatch(value):
            raise ValueError(f"invalid value for header {name}: {value!r}")
        lines.append(f"{name}: {value}")
    if not _VALUE.fullmatch(start_line):
        raise ValueError(f"invalid start line: {start_line!r}")
    # Latin-1 maps each character below 256 to one byte (RFC 9110 §5.5).
    return (CRLF.join(lines) + CRLF + CRLF).encode("latin-1")


def _require_head(data: bytes, what: str) -> tuple[bytes, bytes]:
    parts = split_head(data)
    if parts is None:
        message = f"{what} is incomplete: no blank line ending the headers"
        if b"\n\n" in data:
            message += " (HTTP lines end with \\r\\n, not just \\n)"
        raise HandshakeError(message)
    return parts


def _parse_head(head: bytes) -> tuple[str, Headers]:
    """Split a head into its start line and validated headers."""
    text = head.decode("latin-1")  # never fails; bytes >= 0x80 stay opaque
    start, *lines = text[: -len(END_OF_HEAD)].split(CRLF)
    fields = []
    for line in [start, *lines]:
        if "\r" in line or "\n" in line:
            raise HandshakeError(f"bare CR or LF in {line!r}: HTTP lines end with \\r\\n")
    for line in lines:
        # RFC 7230 §3.2.4: a line starting with space continues the previous
        # one ("obs-fold"); that is obsolete and must be rejected.
        if line[:1] in (" ", "\t"):
            raise HandshakeError(f"obsolete line folding is not allowed: {line!r}")
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise HandshakeError(f"malformed header line: {line!r}")
        value = value.strip(" \t")
        if not _VALUE.fullmatch(value):
            raise HandshakeError(f"invalid characters in header {name}: {value!r}")
        fields.append((name, value))
    return start, Headers(fields)


def _split_list(values: Iterable[str]) -> list[str]:
    """Split comma-separated header values into their non-empty items."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _require_token(headers: Headers, name: str, token: str) -> None:
    """Check that header ``name`` lists ``token`` (case-insensitively)."""
    values = headers.get_all(name)
    if not values:
        raise HandshakeError(f"missing {name} header")
    if token not in (item.lower() for item in _split_list(values)):
        raise HandshakeError(f"{name} header must include {token!r}, got {', '.join(values)!r}")


def _single(headers: Headers, name: str) -> str:
    """Return the value of a header that must appear exactly once."""
    values = headers.get_all(name)
    if not values:
        raise HandshakeError(f"missing {name} header")
    if len(values) > 1:
        raise HandshakeError(f"multiple {name} headers: {values!r}")
    return values[0]


def _is_valid_key(key: str) -> bool:
    """True if ``key`` is strict base64 of exactly 16 bytes (§4.1 item 7)."""
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except ValueError:  # binascii.Error, or non-ASCII text
        return False


def _body(headers: Headers, rest: bytes) -> bytes:
    """The body of an error response: ``Content-Length`` bytes if announced, else all."""
    length = headers.get("Content-Length")
    if length is not None and length.isdigit():
        return rest[: int(length)]
    return rest
